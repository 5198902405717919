/* exp and exact GELU on AVX2 (8 lanes) and AVX-512 (16 lanes): the formulas of fast_math.h,
 * evaluated with fused multiply-adds, their polynomials by Estrin's scheme rather than Horner's
 * (same coefficients, a shorter dependency chain, the same worst errors below), and 1/(1 + z/2) as
 * a reciprocal estimate refined by one Newton step (a division was no faster on Zen 5). Accuracy
 * against float64 erf on every float of [-10, 10) with step 2^-12 (tests/test_perf_kernels.py):
 * absolute error <= 4e-7; relative error <= 1.5e-6 for x >= -3 and <= 1e-5 below (|gelu| < 4e-3
 * there; float32 rounding of the exp argument dominates), no worse than the portable version.
 * Include only from files that check the CPU level before calling these (csrc/cpu.h). */
#ifndef PIVOT_SIMD_MATH_H
#define PIVOT_SIMD_MATH_H

#include <math.h>

#include "cpu.h"
#include "fast_math.h"

#if PIVOT_X86_BUILD
#include <immintrin.h>

#define PIVOT_AVX2 __attribute__((target("avx2,fma")))
#define PIVOT_AVX512 __attribute__((target("avx512f")))

/* For loops that evaluate GELU on four vectors at a time: each GELU is one long dependency chain
 * (~120 cycles), and the out-of-order core does not overlap four of them in program order by
 * itself; GCC's pre-allocation scheduler interleaves them (two or eight at a time gained less;
 * figures: docs/performance.md). */
#if defined(__GNUC__) && !defined(__clang__)
#define PIVOT_SCHEDULE __attribute__((noinline, optimize("schedule-insns", "sched-pressure")))
#else
#define PIVOT_SCHEDULE __attribute__((noinline))
#endif

/* exp without the NaN: a NaN input gives a finite value (GELU's NaN propagates through x instead) */
PIVOT_AVX2 static inline __m256 exp_finite_avx2(__m256 x_in) {
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f), shifter = _mm256_set1_ps(PIVOT_EXP_SHIFTER);
    __m256 x = _mm256_min_ps(_mm256_max_ps(x_in, lo), hi);
    __m256 kd = _mm256_fmadd_ps(x, _mm256_set1_ps(PIVOT_EXP_LOG2E), shifter);
    __m256 n = _mm256_sub_ps(kd, shifter);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(PIVOT_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(PIVOT_EXP_LN2_LO), r);
    /* the polynomial by Estrin's scheme (pairs, then powers of r^2): a third of Horner's
     * dependency chain, which is what bounds GELU and softmax here */
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 a = _mm256_fmadd_ps(_mm256_set1_ps(PIVOT_EXP_C1), r, _mm256_set1_ps(PIVOT_EXP_C0));
    __m256 b = _mm256_fmadd_ps(_mm256_set1_ps(PIVOT_EXP_C3), r, _mm256_set1_ps(PIVOT_EXP_C2));
    __m256 c = _mm256_fmadd_ps(_mm256_set1_ps(PIVOT_EXP_C5), r, _mm256_set1_ps(PIVOT_EXP_C4));
    __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(c, r2, b), r2, a);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(kd), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_and_ps(y, _mm256_cmp_ps(x_in, lo, _CMP_NLT_UQ)); /* below -87: 0 */
}

PIVOT_AVX2 static inline __m256 exp_avx2(__m256 x_in) {
    /* NaN: min/max returned the bound, so restore NaN from the input */
    return _mm256_blendv_ps(exp_finite_avx2(x_in), x_in, _mm256_cmp_ps(x_in, x_in, _CMP_UNORD_Q));
}

PIVOT_AVX2 static inline __m256 gelu_avx2(__m256 x_in) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    /* infinite inputs as in gelu_avx512 below: no special case after the formula */
    __m256 x = _mm256_max_ps(_mm256_set1_ps(-1e4f), x_in);
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(-PIVOT_RSQRT2));
    __m256 az = _mm256_min_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), z), _mm256_set1_ps(1e4f));
    __m256 d = _mm256_fmadd_ps(_mm256_set1_ps(0.5f), az, one);
    __m256 t = _mm256_rcp_ps(d);                                       /* relative error < 1.5 * 2^-12 */
    t = _mm256_mul_ps(t, _mm256_fnmadd_ps(d, t, _mm256_set1_ps(2.0f))); /* Newton: ~2^-23 */
    /* erfcc's degree-9 polynomial in t by Estrin's scheme (depth 4 instead of 9) */
    __m256 t2 = _mm256_mul_ps(t, t), t4 = _mm256_mul_ps(t2, t2), t8 = _mm256_mul_ps(t4, t4);
    __m256 p01 = _mm256_fmadd_ps(t, _mm256_set1_ps(PIVOT_ERFCC_C1), _mm256_set1_ps(PIVOT_ERFCC_C0));
    __m256 p23 = _mm256_fmadd_ps(t, _mm256_set1_ps(PIVOT_ERFCC_C3), _mm256_set1_ps(PIVOT_ERFCC_C2));
    __m256 p45 = _mm256_fmadd_ps(t, _mm256_set1_ps(PIVOT_ERFCC_C5), _mm256_set1_ps(PIVOT_ERFCC_C4));
    __m256 p67 = _mm256_fmadd_ps(t, _mm256_set1_ps(PIVOT_ERFCC_C7), _mm256_set1_ps(PIVOT_ERFCC_C6));
    __m256 p89 = _mm256_fmadd_ps(t, _mm256_set1_ps(PIVOT_ERFCC_C9), _mm256_set1_ps(PIVOT_ERFCC_C8));
    __m256 q0 = _mm256_fmadd_ps(p23, t2, p01), q1 = _mm256_fmadd_ps(p67, t2, p45);
    __m256 poly = _mm256_fmadd_ps(p89, t8, _mm256_fmadd_ps(q1, t4, q0));
    __m256 erfc_az = _mm256_mul_ps(t, exp_finite_avx2(_mm256_fnmadd_ps(az, az, poly)));
    __m256 z_nonneg = _mm256_cmp_ps(z, zero, _CMP_GE_OQ);
    __m256 erfc_z = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), erfc_az), erfc_az, z_nonneg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), erfc_z);
}

/* exp without the NaN: a NaN input gives a finite value (GELU's NaN propagates through x instead) */
PIVOT_AVX512 static inline __m512 exp_finite_avx512(__m512 x_in) {
    const __m512 lo = _mm512_set1_ps(-87.0f), hi = _mm512_set1_ps(88.0f), shifter = _mm512_set1_ps(PIVOT_EXP_SHIFTER);
    __m512 x = _mm512_min_ps(_mm512_max_ps(x_in, lo), hi);
    __m512 kd = _mm512_fmadd_ps(x, _mm512_set1_ps(PIVOT_EXP_LOG2E), shifter);
    __m512 n = _mm512_sub_ps(kd, shifter);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(PIVOT_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(PIVOT_EXP_LN2_LO), r);
    /* the polynomial by Estrin's scheme (pairs, then powers of r^2): a third of Horner's
     * dependency chain, which is what bounds GELU and softmax here */
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 a = _mm512_fmadd_ps(_mm512_set1_ps(PIVOT_EXP_C1), r, _mm512_set1_ps(PIVOT_EXP_C0));
    __m512 b = _mm512_fmadd_ps(_mm512_set1_ps(PIVOT_EXP_C3), r, _mm512_set1_ps(PIVOT_EXP_C2));
    __m512 c = _mm512_fmadd_ps(_mm512_set1_ps(PIVOT_EXP_C5), r, _mm512_set1_ps(PIVOT_EXP_C4));
    __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(c, r2, b), r2, a);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(kd), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x_in, lo, _CMP_NLT_UQ), y); /* below -87: 0 */
}

PIVOT_AVX512 static inline __m512 exp_avx512(__m512 x_in) {
    /* NaN: min/max returned the bound, so restore NaN from the input */
    return _mm512_mask_mov_ps(exp_finite_avx512(x_in), _mm512_cmp_ps_mask(x_in, x_in, _CMP_UNORD_Q), x_in);
}

PIVOT_AVX512 static inline __m512 gelu_avx512(__m512 x_in) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    /* infinite inputs: -inf as -1e4 and |z| at most 1e4 give the portable gelu(-inf) = -0 and
     * gelu(+inf) = +inf through the formula (rcp14 of +inf would be 0 and its Newton step NaN);
     * every finite input gives the bits it would without them. max(c, x) keeps a NaN x. */
    __m512 x = _mm512_max_ps(_mm512_set1_ps(-1e4f), x_in);
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(-PIVOT_RSQRT2));
    __m512 az = _mm512_min_ps(_mm512_abs_ps(z), _mm512_set1_ps(1e4f));
    __m512 d = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), az, one);
    __m512 t = _mm512_rcp14_ps(d);                               /* relative error < 2^-14 */
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f))); /* Newton: ~2^-28 */
    /* erfcc's degree-9 polynomial in t by Estrin's scheme (depth 4 instead of 9) */
    __m512 t2 = _mm512_mul_ps(t, t), t4 = _mm512_mul_ps(t2, t2), t8 = _mm512_mul_ps(t4, t4);
    __m512 p01 = _mm512_fmadd_ps(t, _mm512_set1_ps(PIVOT_ERFCC_C1), _mm512_set1_ps(PIVOT_ERFCC_C0));
    __m512 p23 = _mm512_fmadd_ps(t, _mm512_set1_ps(PIVOT_ERFCC_C3), _mm512_set1_ps(PIVOT_ERFCC_C2));
    __m512 p45 = _mm512_fmadd_ps(t, _mm512_set1_ps(PIVOT_ERFCC_C5), _mm512_set1_ps(PIVOT_ERFCC_C4));
    __m512 p67 = _mm512_fmadd_ps(t, _mm512_set1_ps(PIVOT_ERFCC_C7), _mm512_set1_ps(PIVOT_ERFCC_C6));
    __m512 p89 = _mm512_fmadd_ps(t, _mm512_set1_ps(PIVOT_ERFCC_C9), _mm512_set1_ps(PIVOT_ERFCC_C8));
    __m512 q0 = _mm512_fmadd_ps(p23, t2, p01), q1 = _mm512_fmadd_ps(p67, t2, p45);
    __m512 poly = _mm512_fmadd_ps(p89, t8, _mm512_fmadd_ps(q1, t4, q0));
    __m512 erfc_az = _mm512_mul_ps(t, exp_finite_avx512(_mm512_fnmadd_ps(az, az, poly)));
    __mmask16 z_nonneg = _mm512_cmp_ps_mask(z, zero, _CMP_GE_OQ);
    __m512 erfc_z = _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_set1_ps(2.0f), erfc_az), z_nonneg, erfc_az);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), erfc_z);
}

#endif /* PIVOT_X86_BUILD */

#endif /* PIVOT_SIMD_MATH_H */
