/* Scalar exp and exact GELU shared by the engine (csrc/engine.c) and the packed GEMM's portable
 * epilogues (csrc/gemm.c): one definition, so both paths round the same way. */
#ifndef PIVOT_FAST_MATH_H
#define PIVOT_FAST_MATH_H

#include <stdint.h>
#include <string.h>

/* The constants of exp_fast and gelu_scalar, named once: their AVX2 / AVX-512 forms
 * (simd_math.h) evaluate the same formulas with them. exp: x = n ln2 + r with ln2 split in two
 * (Cody-Waite), e^r = 1 + r + r^2 (C0 + C1 r + ... + C5 r^5). erfcc (Numerical Recipes):
 * erfc(z) = t exp(-z^2 + C0 + C1 t + ... + C9 t^9), t = 1 / (1 + z / 2). */
#define PIVOT_EXP_LOG2E 1.44269504088896341f
#define PIVOT_EXP_SHIFTER 12582912.0f /* 1.5 * 2^23: adding it rounds, leaving n in the low bits */
#define PIVOT_EXP_LN2_HI 0.693359375f
#define PIVOT_EXP_LN2_LO -2.12194440e-4f
#define PIVOT_EXP_C0 5.0000001201e-1f
#define PIVOT_EXP_C1 1.6666665459e-1f
#define PIVOT_EXP_C2 4.1665795894e-2f
#define PIVOT_EXP_C3 8.3334519073e-3f
#define PIVOT_EXP_C4 1.3981999507e-3f
#define PIVOT_EXP_C5 1.9875691500e-4f
#define PIVOT_RSQRT2 0.70710678118654752440f
#define PIVOT_ERFCC_C0 -1.26551223f
#define PIVOT_ERFCC_C1 1.00002368f
#define PIVOT_ERFCC_C2 0.37409196f
#define PIVOT_ERFCC_C3 0.09678418f
#define PIVOT_ERFCC_C4 -0.18628806f
#define PIVOT_ERFCC_C5 0.27886807f
#define PIVOT_ERFCC_C6 -1.13520398f
#define PIVOT_ERFCC_C7 1.48851587f
#define PIVOT_ERFCC_C8 -0.82215223f
#define PIVOT_ERFCC_C9 0.17087277f

/* exp(x) with relative error ~2e-7, branch-free so that loops over it vectorize (libm's expf is
 * a call per element). Cody-Waite range reduction x = n ln2 + r, a degree-6 polynomial for e^r,
 * and 2^n built in the exponent bits. NaN stays NaN; below -87 gives 0, above 88 gives e^88. */
static inline float exp_fast(float x_in) {
    float x = x_in < -87.0f ? -87.0f : x_in;
    x = x > 88.0f ? 88.0f : x;
    float kd = x * PIVOT_EXP_LOG2E + PIVOT_EXP_SHIFTER;
    uint32_t ki;
    memcpy(&ki, &kd, sizeof ki);
    float n = kd - PIVOT_EXP_SHIFTER;
    float r = x - n * PIVOT_EXP_LN2_HI - n * PIVOT_EXP_LN2_LO;
    float p = PIVOT_EXP_C5;
    p = p * r + PIVOT_EXP_C4;
    p = p * r + PIVOT_EXP_C3;
    p = p * r + PIVOT_EXP_C2;
    p = p * r + PIVOT_EXP_C1;
    p = p * r + PIVOT_EXP_C0;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (ki + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x_in < -87.0f ? 0.0f : p * scale;
}

/* Exact (erf) GELU: 0.5 x erfc(-x / sqrt(2)), with erfc from Numerical Recipes' erfcc
 * (fractional error < 1.2e-7 everywhere), so negative inputs keep their relative accuracy. */
static inline float gelu_scalar(float x) {
    float z = x * -PIVOT_RSQRT2;
    float az = z < 0.0f ? -z : z;
    float t = 1.0f / (1.0f + 0.5f * az);
    float poly = PIVOT_ERFCC_C8 + t * PIVOT_ERFCC_C9;
    poly = PIVOT_ERFCC_C7 + t * poly;
    poly = PIVOT_ERFCC_C6 + t * poly;
    poly = PIVOT_ERFCC_C5 + t * poly;
    poly = PIVOT_ERFCC_C4 + t * poly;
    poly = PIVOT_ERFCC_C3 + t * poly;
    poly = PIVOT_ERFCC_C2 + t * poly;
    poly = PIVOT_ERFCC_C1 + t * poly;
    poly = PIVOT_ERFCC_C0 + t * poly;
    float erfc_az = t * exp_fast(-az * az + poly);
    float erfc_z = z >= 0.0f ? erfc_az : 2.0f - erfc_az;
    return 0.5f * x * erfc_z;
}

#endif /* PIVOT_FAST_MATH_H */
