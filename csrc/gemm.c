/* pivot's GEMM layer (see gemm.h).
 *
 * Why a kernel of our own: at batch 1 a DeiT-S Linear is a (197 x 384) @ (384 x 1536)-sized
 * product. OpenBLAS re-packs the weight on every call (~14% of a forward in a perf profile) and
 * writes C before a separate pass adds the bias / applies GELU / updates the residual. Here the
 * weights are packed once per model, and the micro-kernel keeps a 12 x 32 tile of C in 24 zmm
 * registers over the whole K loop, reading A rows in place (one broadcast per row and k), then
 * applies the epilogue on the registers.
 *
 * Loop order: column panel (32 columns, its (IC, 32) packed weights stay in L1/L2) outer, row
 * blocks of 12 inner, full K in the micro-kernel (no partial sums written back). */
#define _POSIX_C_SOURCE 200809L
#include "gemm.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h" /* pivot_team_run: holds OpenBLAS at one thread */
#include "pivot_blas.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define PIVOT_HAVE_AVX512_BUILD 1
#include <immintrin.h>
#else
#define PIVOT_HAVE_AVX512_BUILD 0
#endif

#define PANEL PIVOT_GEMM_PANEL
#define MR 12 /* rows of the micro-kernel tile: 12 x 2 accumulators + 2 weight vectors of 32 zmm */

/* ================================================================== dispatch */

/* -1: not decided yet; else the level. Decided once: CPU features, capped by PIVOT_SIMD. */
static atomic_int simd_level = -1;

int pivot_gemm_simd_level(void) {
    int level = atomic_load_explicit(&simd_level, memory_order_relaxed);
    if (level >= 0) return level;
    level = 0;
#if PIVOT_HAVE_AVX512_BUILD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) level = 1;
#endif
    const char *cap = getenv("PIVOT_SIMD");
    if (cap && cap[0] == '0' && cap[1] == '\0') level = 0;
    atomic_store(&simd_level, level);
    return level;
}

int pivot_gemm_set_simd_level(int level) {
    int supported = 0;
#if PIVOT_HAVE_AVX512_BUILD
    __builtin_cpu_init();
    supported = __builtin_cpu_supports("avx512f") ? 1 : 0;
#endif
    level = level < 0 ? 0 : level > supported ? supported : level;
    atomic_store(&simd_level, level);
    return level;
}

/* ================================================================== portable pieces */

#include "fast_math.h"

/* The epilogue on one row of acc (bias not yet added), portable. */
static void epilogue_row_portable(float *out, float *capture, float *acc, const float *bias, size_t OC,
                                  int epilogue, float scale) {
    for (size_t c = 0; c < OC; c++) {
        float v = acc[c] + (bias ? bias[c] : 0.0f);
        if (epilogue == PIVOT_EPI_GELU) out[c] = gelu_scalar(v);
        else if (epilogue == PIVOT_EPI_RESIDUAL) {
            if (capture) capture[c] = v;
            out[c] += v * scale;
        } else out[c] = v;
    }
}

/* Plain path: OpenBLAS sgemm, then the epilogue per row. EPI_STORE / EPI_GELU compute in place in
 * out; EPI_RESIDUAL needs the product apart from the residual stream (capture, or a temporary). */
static int linear_plain(float *out, float *capture, const float *inp, const float *weight, const float *bias,
                        size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo, int epilogue, float scale) {
    float *tmp = NULL, *acc = out;
    size_t lda = ldo;
    if (epilogue == PIVOT_EPI_RESIDUAL) {
        if (capture) {
            acc = capture;
        } else {
            size_t n;
            if (pivot_mul_size(&n, N, OC) || pivot_mul_size(&n, n, sizeof(float))) return PIVOT_ERR_OVERFLOW;
            tmp = (float *)malloc(n ? n : 1);
            if (!tmp) return PIVOT_ERR_NOMEM;
            acc = tmp;
        }
        lda = OC;
    }
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)IC, 1.0f, inp, (int)ldi, weight,
                      (int)IC, 0.0f, acc, (int)lda);
    for (size_t n = 0; n < N; n++)
        epilogue_row_portable(out + n * ldo, capture ? capture + n * OC : NULL, acc + n * lda, bias, OC, epilogue,
                              scale);
    free(tmp);
    return PIVOT_OK;
}

/* Portable packed kernel (used when the packed layout is given but AVX-512 is not available):
 * one row at a time against each panel. Slow but exact to the layout; the engine does not call
 * it (without AVX-512 it keeps OpenBLAS on the unpacked weights). */
static void linear_packed_portable(float *out, float *capture, const float *inp, const float *packed,
                                   const float *bias, size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo,
                                   int epilogue, float scale) {
    float acc[PANEL];
    for (size_t p0 = 0; p0 < OC; p0 += PANEL) {
        size_t nc = OC - p0 < PANEL ? OC - p0 : PANEL;
        const float *panel = packed + p0 * IC;
        for (size_t n = 0; n < N; n++) {
            const float *a = inp + n * ldi;
            for (size_t j = 0; j < PANEL; j++) acc[j] = 0.0f;
            for (size_t k = 0; k < IC; k++)
                for (size_t j = 0; j < PANEL; j++) acc[j] += a[k] * panel[k * PANEL + j];
            epilogue_row_portable(out + n * ldo + p0, capture ? capture + n * OC + p0 : NULL, acc,
                                  bias ? bias + p0 : NULL, nc, epilogue, scale);
        }
    }
}

/* ================================================================== AVX-512 */

#if PIVOT_HAVE_AVX512_BUILD
#define AVX512 __attribute__((target("avx512f")))

/* exp and GELU on 16 lanes: the portable formulas above, evaluated with fused multiply-adds and
 * 1/(1 + z/2) as a reciprocal estimate refined by one Newton step (a division costs ~16 cycles
 * per vector, more than the rest of GELU). Accuracy against float64 erf on every float of
 * [-10, 10) with step 2^-12 (tests/test_perf_kernels.py): absolute error <= 4e-7; relative
 * error <= 1.5e-6 for x >= -3 and <= 1e-5 below (|gelu| < 4e-3 there; float32 rounding of the
 * exp argument dominates), no worse than the portable version. */
AVX512 static inline __m512 exp_avx512(__m512 x_in) {
    const __m512 lo = _mm512_set1_ps(-87.0f), hi = _mm512_set1_ps(88.0f), shifter = _mm512_set1_ps(12582912.0f);
    __m512 x = _mm512_min_ps(_mm512_max_ps(x_in, lo), hi);
    __m512 kd = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), shifter);
    __m512 n = _mm512_sub_ps(kd, shifter);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(kd), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    /* below -87: 0; NaN: min/max above returned the bound, so restore NaN from the input */
    y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x_in, lo, _CMP_NLT_UQ), y);
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x_in, x_in, _CMP_UNORD_Q), x_in);
}

AVX512 static inline __m512 gelu_avx512(__m512 x) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(-0.70710678118654752440f));
    __m512 az = _mm512_abs_ps(z);
    __m512 d = _mm512_fmadd_ps(_mm512_set1_ps(0.5f), az, one);
    __m512 t = _mm512_rcp14_ps(d);                               /* relative error < 2^-14 */
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f))); /* Newton: ~2^-28 */
    __m512 poly = _mm512_fmadd_ps(t, _mm512_set1_ps(0.17087277f), _mm512_set1_ps(-0.82215223f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(1.48851587f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(-1.13520398f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(0.27886807f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(-0.18628806f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(0.09678418f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(0.37409196f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(1.00002368f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(-1.26551223f));
    __m512 erfc_az = _mm512_mul_ps(t, exp_avx512(_mm512_fnmadd_ps(az, az, poly)));
    __mmask16 z_nonneg = _mm512_cmp_ps_mask(z, zero, _CMP_GE_OQ);
    __m512 erfc_z = _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_set1_ps(2.0f), erfc_az), z_nonneg, erfc_az);
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), erfc_z);
    /* rcp14 of +inf is 0 and the Newton step gives NaN (0 * inf): gelu(-inf) = -0 * 0 -> keep the
     * portable result for infinite inputs: gelu(+inf) = +inf, gelu(-inf) = -0 (NaN stays NaN) */
    __mmask16 inf = _mm512_cmp_ps_mask(az, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_mov_ps(y, inf, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ), x));
}

/* Epilogue of 16 columns of one row: v = acc + bias, then store / gelu / residual. */
AVX512 static inline void epilogue16(float *out, float *capture, __m512 acc, __m512 bias, __mmask16 mask,
                                     int epilogue, __m512 scale) {
    __m512 v = _mm512_add_ps(acc, bias);
    if (epilogue == PIVOT_EPI_GELU) {
        _mm512_mask_storeu_ps(out, mask, gelu_avx512(v));
    } else if (epilogue == PIVOT_EPI_RESIDUAL) {
        if (capture) _mm512_mask_storeu_ps(capture, mask, v);
        __m512 x = _mm512_maskz_loadu_ps(mask, out);
        _mm512_mask_storeu_ps(out, mask, _mm512_add_ps(x, _mm512_mul_ps(v, scale)));
    } else {
        _mm512_mask_storeu_ps(out, mask, v);
    }
}

/* GELU in place on a stored (rows x 32) tile, still in L1. A loop of independent iterations
 * rather than GELU on the accumulators: the out-of-order core then overlaps the long dependency
 * chains of several vectors (measured: 2x less epilogue time on the fc1 shape). */
AVX512 static void gelu_tile(float *out, int rows, size_t ldo, __mmask16 m0, __mmask16 m1) {
    for (int i = 0; i < rows; i++) {
        float *row = out + (size_t)i * ldo;
        __m512 v0 = _mm512_maskz_loadu_ps(m0, row), v1 = _mm512_maskz_loadu_ps(m1, row + 16);
        _mm512_mask_storeu_ps(row, m0, gelu_avx512(v0));
        _mm512_mask_storeu_ps(row + 16, m1, gelu_avx512(v1));
    }
}

/* One (ROWS x 32) tile over the full K: out[i, 0:32] <- epilogue(a[i, :] @ panel), where panel
 * row k (32 floats, masked by m0/m1 on the last panel) is at panel + k * ldb. ROWS is a
 * compile-time constant in each instance so that the accumulators live in registers. */
#define TILE_FMA(ROWS)                                                                                      \
    _Pragma("GCC unroll 12") for (int i = 0; i < ROWS; i++) {                                               \
        __m512 av = _mm512_set1_ps(a[i * lda + k]);                                                         \
        c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);                                                             \
        c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);                                                             \
    }
#define DEFINE_TILE_KERNEL(ROWS)                                                                            \
    AVX512 static void tile_##ROWS(float *out, float *capture, const float *a, const float *panel,          \
                                   const float *bias, size_t K, size_t lda, size_t ldb, size_t ldo,         \
                                   size_t ldc, __mmask16 m0, __mmask16 m1, int padded, int epilogue,        \
                                   float scale) {                                                           \
        __m512 c0[ROWS], c1[ROWS];                                                                          \
        _Pragma("GCC unroll 12") for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm512_setzero_ps();        \
        if (padded || (m0 == 0xFFFF && m1 == 0xFFFF)) { /* packed (zero padded) or a full panel */        \
            for (size_t k = 0; k < K; k++) {                                                                \
                __m512 b0 = _mm512_loadu_ps(panel + k * ldb), b1 = _mm512_loadu_ps(panel + k * ldb + 16);   \
                TILE_FMA(ROWS)                                                                              \
            }                                                                                               \
        } else { /* masked loads (8% slower) only on the last panel of an unpadded matrix */                \
            for (size_t k = 0; k < K; k++) {                                                                \
                __m512 b0 = _mm512_maskz_loadu_ps(m0, panel + k * ldb);                                     \
                __m512 b1 = _mm512_maskz_loadu_ps(m1, panel + k * ldb + 16);                                \
                TILE_FMA(ROWS)                                                                              \
            }                                                                                               \
        }                                                                                                   \
        __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();                        \
        __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();                   \
        __m512 sc = _mm512_set1_ps(scale);                                                                  \
        int store_epi = epilogue == PIVOT_EPI_GELU ? PIVOT_EPI_STORE : epilogue;                             \
        _Pragma("GCC unroll 12") for (int i = 0; i < ROWS; i++) {                                           \
            float *cap = capture ? capture + i * ldc : NULL;                                                \
            epilogue16(out + i * ldo, cap, c0[i], bias0, m0, store_epi, sc);                                \
            epilogue16(out + i * ldo + 16, cap ? cap + 16 : NULL, c1[i], bias1, m1, store_epi, sc);         \
        }                                                                                                   \
        if (epilogue == PIVOT_EPI_GELU) gelu_tile(out, ROWS, ldo, m0, m1);                                  \
    }

DEFINE_TILE_KERNEL(12)
DEFINE_TILE_KERNEL(11)
DEFINE_TILE_KERNEL(10)
DEFINE_TILE_KERNEL(9)
DEFINE_TILE_KERNEL(8)
DEFINE_TILE_KERNEL(7)
DEFINE_TILE_KERNEL(6)
DEFINE_TILE_KERNEL(5)
DEFINE_TILE_KERNEL(4)
DEFINE_TILE_KERNEL(3)
DEFINE_TILE_KERNEL(2)
DEFINE_TILE_KERNEL(1)

typedef void (*tile_fn)(float *, float *, const float *, const float *, const float *, size_t, size_t, size_t,
                        size_t, size_t, __mmask16, __mmask16, int, int, float);
static const tile_fn tile_kernels[MR + 1] = {NULL,    tile_1, tile_2, tile_3,  tile_4,  tile_5, tile_6,
                                              tile_7, tile_8, tile_9, tile_10, tile_11, tile_12};

/* out (N, OC) <- epilogue(inp (N, IC) @ B) where B's 32-column panel starting at column p0 is at
 * b + (p0 / 32) * panel_step with rows ldb apart: packed weights (panel_step = 32 IC, ldb = 32) or
 * a row-major (IC, OC) matrix with row stride ldb (panel_step = 32). packed_b: b is gemm_pack's
 * zero-padded layout (full panels may be read; the next panel is prefetched). */
AVX512 static void gemm_panels_avx512(float *out, float *capture, const float *inp, const float *b,
                                      size_t panel_step, size_t ldb, int packed_b, const float *bias, size_t N,
                                      size_t IC, size_t OC, size_t ldi, size_t ldo, int epilogue, float scale) {
    for (size_t p0 = 0; p0 < OC; p0 += PANEL) {
        size_t nc = OC - p0 < PANEL ? OC - p0 : PANEL;
        __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFF : (1u << nc) - 1u);
        __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFF : nc <= 16 ? 0 : (1u << (nc - 16)) - 1u);
        const float *panel = b + p0 / PANEL * panel_step;
        /* The weights of a forward (~88 MB for DeiT-S) come from DRAM; the hardware prefetchers
         * stop at 4 KiB pages, so the first row block of each panel would stall on them. Each row
         * block therefore prefetches its share of the NEXT panel into L2 (measured: +10-20% on
         * cold weights). */
        const char *next = packed_b && p0 + PANEL < OC ? (const char *)(panel + panel_step) : NULL;
        size_t next_bytes = PANEL * IC * sizeof(float), blocks = (N + MR - 1) / MR, block = 0;
        for (size_t r = 0; r < N; r += MR) {
            size_t rows = N - r < MR ? N - r : MR;
            if (next) {
                size_t lo = next_bytes * block / blocks, hi = next_bytes * (block + 1) / blocks;
                for (size_t off = lo & ~(size_t)63; off < hi; off += 64) _mm_prefetch(next + off, _MM_HINT_T1);
                block++;
            }
            tile_kernels[rows](out + r * ldo + p0, capture ? capture + r * OC + p0 : NULL, inp + r * ldi, panel,
                               bias ? bias + p0 : NULL, IC, ldi, ldb, ldo, OC, m0, m1, packed_b, epilogue, scale);
        }
    }
}

AVX512 static void gelu_rows_avx512(float *x, const float *bias, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        float *row = x + n * C;
        for (size_t c = 0; c < C; c += 16) {
            size_t left = C - c;
            __mmask16 m = (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1u);
            __m512 v = _mm512_maskz_loadu_ps(m, row + c);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            _mm512_mask_storeu_ps(row + c, m, gelu_avx512(v));
        }
    }
}
static inline __mmask16 tail_mask(size_t left) {
    return (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1u);
}

AVX512 static void softmax_rows_avx512(float *x, size_t N, size_t C, size_t ld) {
    for (size_t n = 0; n < N; n++) {
        float *row = x + n * ld;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (size_t c = 0; c < C; c += 16)
            vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(C - c), row + c));
        __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 vsum = _mm512_setzero_ps();
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 k = tail_mask(C - c);
            __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + c), m));
            e = _mm512_maskz_mov_ps(k, e);
            vsum = _mm512_add_ps(vsum, e);
            _mm512_mask_storeu_ps(row + c, k, e);
        }
        /* a NaN was skipped by max but made its exp, so the sum, NaN: the whole row becomes NaN */
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 k = tail_mask(C - c);
            _mm512_mask_storeu_ps(row + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + c), inv));
        }
    }
}

AVX512 static void layernorm_rows_avx512(float *out, const float *inp, const float *weight, const float *bias,
                                         size_t N, size_t C, float eps) {
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        __m512 vsum = _mm512_setzero_ps();
        for (size_t c = 0; c < C; c += 16) vsum = _mm512_add_ps(vsum, _mm512_maskz_loadu_ps(tail_mask(C - c), x + c));
        float mean = _mm512_reduce_add_ps(vsum) / (float)C;
        __m512 m = _mm512_set1_ps(mean), vsq = _mm512_setzero_ps();
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 k = tail_mask(C - c);
            __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + c), m);
            vsq = _mm512_fmadd_ps(d, d, vsq);
        }
        float rstd = (float)(1.0 / sqrt((double)_mm512_reduce_add_ps(vsq) / (double)C + (double)eps));
        __m512 r = _mm512_set1_ps(rstd);
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 k = tail_mask(C - c);
            __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), m), r);
            __m512 v = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, weight + c), _mm512_maskz_loadu_ps(k, bias + c));
            _mm512_mask_storeu_ps(y + c, k, v);
        }
    }
}
#endif /* PIVOT_HAVE_AVX512_BUILD */

/* ================================================================== public */

int pivot_gemm_packed_size(size_t *out, size_t OC, size_t IC) {
    if (OC > SIZE_MAX - PANEL) return PIVOT_ERR_OVERFLOW;
    size_t cols = (OC + PANEL - 1) / PANEL * PANEL;
    return pivot_mul_size(out, cols, IC);
}

int pivot_gemm_pack(float *packed, const float *weight, size_t OC, size_t IC) {
    size_t n;
    int st = pivot_gemm_packed_size(&n, OC, IC);
    if (st) return st;
    if (n == 0) return PIVOT_OK;
    if (!packed || !weight) return PIVOT_ERR_VALUE;
    for (size_t p0 = 0; p0 < OC; p0 += PANEL) {
        float *panel = packed + p0 * IC;
        for (size_t k = 0; k < IC; k++)
            for (size_t j = 0; j < PANEL; j++)
                panel[k * PANEL + j] = p0 + j < OC ? weight[(p0 + j) * IC + k] : 0.0f;
    }
    return PIVOT_OK;
}

int pivot_linear_forward(float *out, float *capture, const float *inp, const float *weight, const float *packed,
                         const float *bias, size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo, int epilogue,
                         float scale) {
    if (epilogue < PIVOT_EPI_STORE || epilogue > PIVOT_EPI_RESIDUAL) return PIVOT_ERR_VALUE;
    if (IC == 0 || OC == 0 || ldi < IC || ldo < OC) return PIVOT_ERR_SHAPE;
    if (N == 0) return PIVOT_OK;
    if (!out || !inp || (!weight && !packed)) return PIVOT_ERR_VALUE;
    if (capture && epilogue != PIVOT_EPI_RESIDUAL) return PIVOT_ERR_VALUE;
    size_t tmp;
    if (N > 2147483647u || IC > 2147483647u || OC > 2147483647u || ldi > 2147483647u || ldo > 2147483647u ||
        pivot_mul_size(&tmp, N, ldi) || pivot_mul_size(&tmp, N, ldo) || pivot_gemm_packed_size(&tmp, OC, IC))
        return PIVOT_ERR_OVERFLOW;
    if (packed) {
#if PIVOT_HAVE_AVX512_BUILD
        if (pivot_gemm_simd_level() >= 1) {
            gemm_panels_avx512(out, capture, inp, packed, PANEL * IC, PANEL, 1, bias, N, IC, OC, ldi, ldo, epilogue, scale);
            return PIVOT_OK;
        }
#endif
        if (!weight) {
            linear_packed_portable(out, capture, inp, packed, bias, N, IC, OC, ldi, ldo, epilogue, scale);
            return PIVOT_OK;
        }
    }
    return linear_plain(out, capture, inp, weight, bias, N, IC, OC, ldi, ldo, epilogue, scale);
}

typedef struct {
    float *out;
    const float *a, *b;
    size_t M, N, K;
} sgemm_call;

static void sgemm_team(void *arg, pivot_team *team, int tid, int nthreads) {
    const sgemm_call *c = (const sgemm_call *)arg;
    int ld = (int)(c->K ? c->K : 1);
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->M, (int)c->N, (int)c->K, 1.0f, c->a, ld, c->b,
                      ld, 0.0f, c->out, (int)c->N);
}

int pivot_sgemm_nt(float *out, const float *a, const float *b, size_t M, size_t N, size_t K) {
    if (M > 2147483647u || N > 2147483647u || K > 2147483647u) return PIVOT_ERR_OVERFLOW;
    if (M == 0 || N == 0) return PIVOT_OK;
    if (!out || !a || !b) return PIVOT_ERR_VALUE;
    sgemm_call call = {out, a, b, M, N, K};
    return pivot_team_run(sgemm_team, &call, 1); /* one thread, OpenBLAS held single-threaded */
}

void pivot_gelu_rows_fast(float *x, const float *bias, size_t N, size_t C) {
#if PIVOT_HAVE_AVX512_BUILD
    if (pivot_gemm_simd_level() >= 1) {
        gelu_rows_avx512(x, bias, N, C);
        return;
    }
#endif
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++) x[n * C + c] = gelu_scalar(x[n * C + c] + (bias ? bias[c] : 0.0f));
}

void pivot_softmax_rows_fast(float *x, size_t N, size_t C, size_t ld) {
#if PIVOT_HAVE_AVX512_BUILD
    if (pivot_gemm_simd_level() >= 1) {
        softmax_rows_avx512(x, N, C, ld);
        return;
    }
#endif
    for (size_t n = 0; n < N; n++) {
        float *row = x + n * ld, maxval = row[0], sum = 0.0f;
        for (size_t c = 1; c < C; c++) maxval = row[c] > maxval ? row[c] : maxval;
        for (size_t c = 0; c < C; c++) sum += (row[c] = exp_fast(row[c] - maxval));
        float inv = 1.0f / sum;
        for (size_t c = 0; c < C; c++) row[c] *= inv;
    }
}

void pivot_layernorm_rows_fast(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                               size_t C, float eps) {
#if PIVOT_HAVE_AVX512_BUILD
    if (pivot_gemm_simd_level() >= 1) {
        layernorm_rows_avx512(out, inp, weight, bias, N, C, eps);
        return;
    }
#endif
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C, sum = 0.0f, sq = 0.0f;
        for (size_t c = 0; c < C; c++) sum += x[c];
        float mean = sum / (float)C;
        for (size_t c = 0; c < C; c++) sq += (x[c] - mean) * (x[c] - mean);
        float rstd = (float)(1.0 / sqrt((double)sq / (double)C + (double)eps));
        for (size_t c = 0; c < C; c++) y[c] = (x[c] - mean) * rstd * weight[c] + bias[c];
    }
}

void pivot_gemm_nn_fast(float *out, const float *a, const float *b, size_t M, size_t K, size_t N, size_t lda,
                        size_t ldb, size_t ldo) {
#if PIVOT_HAVE_AVX512_BUILD
    if (pivot_gemm_simd_level() >= 1) {
        gemm_panels_avx512(out, NULL, a, b, PANEL, ldb, 0, NULL, M, K, N, lda, ldo, PIVOT_EPI_STORE, 1.0f);
        return;
    }
#endif
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (size_t k = 0; k < K; k++) acc += a[i * lda + k] * b[k * ldb + j];
            out[i * ldo + j] = acc;
        }
}
