/* Row kernels at every SIMD level (see rowops.h). */
#include "rowops.h"

#include <math.h>
#include <string.h>

#include "cpu.h"
#include "fast_math.h"
#include "simd_math.h"

/* ------------------------------------------------------------------ portable (the reference) */

static void layernorm_ref(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                          size_t C, float eps) {
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        /* two passes in double: stable for large magnitudes, cheap next to the GEMMs */
        double sum = 0.0;
        for (size_t c = 0; c < C; c++) sum += x[c];
        double mean = sum / (double)C;
        double sq = 0.0;
        for (size_t c = 0; c < C; c++) {
            double d = (double)x[c] - mean;
            sq += d * d;
        }
        float rstd = (float)(1.0 / sqrt(sq / (double)C + (double)eps));
        float m = (float)mean;
        for (size_t c = 0; c < C; c++) y[c] = (x[c] - m) * rstd * weight[c] + bias[c];
    }
}

/* RmsNorm: y = x / sqrt(mean(x^2) + eps) * weight; the sum of squares in double. */
static void rmsnorm_ref(float *out, const float *inp, const float *weight, size_t N, size_t C, float eps) {
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        double sq = 0.0;
        for (size_t c = 0; c < C; c++) sq += (double)x[c] * (double)x[c];
        float r = (float)(1.0 / sqrt(sq / (double)C + (double)eps));
        for (size_t c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
    }
}

PIVOT_MULTIVERSION
static void softmax_ref(float *x, size_t N, size_t C, size_t ld) {
    enum { LANES = 16 }; /* partial max/sum lanes: the compiler vectorizes these reductions */
    for (size_t n = 0; n < N; n++) {
        float *y = x + n * ld;
        float lane[LANES];
        for (int l = 0; l < LANES; l++) lane[l] = y[0];
        size_t c = 0;
        for (; c + LANES <= C; c += LANES)
            for (int l = 0; l < LANES; l++) lane[l] = y[c + l] > lane[l] ? y[c + l] : lane[l];
        float maxval = y[0];
        for (int l = 0; l < LANES; l++) maxval = lane[l] > maxval ? lane[l] : maxval;
        for (; c < C; c++) maxval = y[c] > maxval ? y[c] : maxval;
        for (c = 0; c < C; c++) y[c] = exp_fast(y[c] - maxval);
        for (int l = 0; l < LANES; l++) lane[l] = 0.0f;
        for (c = 0; c + LANES <= C; c += LANES)
            for (int l = 0; l < LANES; l++) lane[l] += y[c + l];
        float sum = 0.0f;
        for (int l = 0; l < LANES; l++) sum += lane[l];
        for (; c < C; c++) sum += y[c];
        /* a NaN anywhere in the row (the max comparisons skip it) makes the sum, so the row, NaN */
        float inv = 1.0f / sum;
        for (c = 0; c < C; c++) y[c] *= inv;
    }
}

PIVOT_MULTIVERSION
static void gelu_ref(float *x, const float *bias, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++) x[n * C + c] = gelu_scalar(x[n * C + c] + (bias ? bias[c] : 0.0f));
}

#if PIVOT_X86_BUILD
/* ------------------------------------------------------------------ AVX2 + FMA */

/* The first `left` (< 8) lanes of p, the rest `fill`; stores write only `left` lanes. */
PIVOT_AVX2 static inline __m256i avx2_mask(size_t left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), idx);
}

PIVOT_AVX2 static inline __m256 avx2_load(const float *p, size_t left, float fill) {
    if (left >= 8) return _mm256_loadu_ps(p);
    __m256i m = avx2_mask(left);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}

PIVOT_AVX2 static inline void avx2_store(float *p, size_t left, __m256 v) {
    if (left >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, avx2_mask(left), v);
}

PIVOT_AVX2 static inline float avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

PIVOT_AVX2 static inline float avx2_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

PIVOT_AVX2 static void layernorm_avx2(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                                      size_t C, float eps) {
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        __m256 vsum = _mm256_setzero_ps();
        for (size_t c = 0; c < C; c += 8) vsum = _mm256_add_ps(vsum, avx2_load(x + c, C - c, 0.0f));
        float mean = avx2_hsum(vsum) / (float)C;
        __m256 m = _mm256_set1_ps(mean), vsq = _mm256_setzero_ps();
        for (size_t c = 0; c < C; c += 8) {
            __m256 d = _mm256_sub_ps(avx2_load(x + c, C - c, mean), m); /* padding lanes give 0 */
            vsq = _mm256_fmadd_ps(d, d, vsq);
        }
        float rstd = (float)(1.0 / sqrt((double)avx2_hsum(vsq) / (double)C + (double)eps));
        __m256 r = _mm256_set1_ps(rstd);
        for (size_t c = 0; c < C; c += 8) {
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(avx2_load(x + c, C - c, 0.0f), m), r);
            __m256 v = _mm256_fmadd_ps(d, avx2_load(weight + c, C - c, 0.0f), avx2_load(bias + c, C - c, 0.0f));
            avx2_store(y + c, C - c, v);
        }
    }
}

PIVOT_AVX2 static void rmsnorm_avx2(float *out, const float *inp, const float *weight, size_t N, size_t C, float eps) {
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        __m256 vsq = _mm256_setzero_ps();
        for (size_t c = 0; c < C; c += 8) {
            __m256 v = avx2_load(x + c, C - c, 0.0f);
            vsq = _mm256_fmadd_ps(v, v, vsq);
        }
        __m256 r = _mm256_set1_ps((float)(1.0 / sqrt((double)avx2_hsum(vsq) / (double)C + (double)eps)));
        for (size_t c = 0; c < C; c += 8) {
            __m256 v = _mm256_mul_ps(_mm256_mul_ps(avx2_load(x + c, C - c, 0.0f), r), avx2_load(weight + c, C - c, 0.0f));
            avx2_store(y + c, C - c, v);
        }
    }
}

/* R rows at a time, as softmax_avx512 below (and for the same reason). */
#define SOFTMAX_AVX2_ROWS(R)                                                                                \
    PIVOT_AVX2 PIVOT_SCHEDULE static void softmax_avx2_##R(float *x, size_t C, size_t ld) {                 \
        __m256 vmax[R], vsum[R], m[R], inv[R];                                                              \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) vmax[r] = _mm256_set1_ps(-INFINITY);            \
        for (size_t c = 0; c < C; c += 8)                                                                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                             \
                vmax[r] = _mm256_max_ps(vmax[r], avx2_load(x + r * ld + c, C - c, -INFINITY));              \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                               \
            m[r] = _mm256_set1_ps(avx2_hmax(vmax[r]));                                                      \
            vsum[r] = _mm256_setzero_ps();                                                                  \
        }                                                                                                   \
        for (size_t c = 0; c < C; c += 8)                                                                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                           \
                /* padding: exp(-inf) = 0 */                                                                \
                __m256 e = exp_avx2(_mm256_sub_ps(avx2_load(x + r * ld + c, C - c, -INFINITY), m[r]));      \
                vsum[r] = _mm256_add_ps(vsum[r], e);                                                        \
                avx2_store(x + r * ld + c, C - c, e);                                                       \
            }                                                                                               \
        /* a NaN was skipped by max but made its exp, so the sum, NaN: the whole row becomes NaN */        \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) inv[r] = _mm256_set1_ps(1.0f / avx2_hsum(vsum[r])); \
        for (size_t c = 0; c < C; c += 8)                                                                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) avx2_store(                                 \
                x + r * ld + c, C - c, _mm256_mul_ps(avx2_load(x + r * ld + c, C - c, 0.0f), inv[r]));      \
    }
SOFTMAX_AVX2_ROWS(4)
SOFTMAX_AVX2_ROWS(1)

PIVOT_AVX2 static void softmax_avx2(float *x, size_t N, size_t C, size_t ld) {
    size_t n = 0;
    for (; n + 4 <= N; n += 4) softmax_avx2_4(x + n * ld, C, ld);
    for (; n < N; n++) softmax_avx2_1(x + n * ld, C, ld);
}

PIVOT_AVX2 PIVOT_SCHEDULE static void gelu_avx2_rows(float *x, const float *bias, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        float *row = x + n * C;
        size_t c = 0;
        if (!bias)
            for (; c + 32 <= C; c += 32) { /* four vectors in flight (PIVOT_SCHEDULE) */
                __m256 v0 = _mm256_loadu_ps(row + c), v1 = _mm256_loadu_ps(row + c + 8);
                __m256 v2 = _mm256_loadu_ps(row + c + 16), v3 = _mm256_loadu_ps(row + c + 24);
                v0 = gelu_avx2(v0);
                v1 = gelu_avx2(v1);
                v2 = gelu_avx2(v2);
                v3 = gelu_avx2(v3);
                _mm256_storeu_ps(row + c, v0);
                _mm256_storeu_ps(row + c + 8, v1);
                _mm256_storeu_ps(row + c + 16, v2);
                _mm256_storeu_ps(row + c + 24, v3);
            }
        for (; c < C; c += 8) {
            __m256 v = avx2_load(row + c, C - c, 0.0f);
            if (bias) v = _mm256_add_ps(v, avx2_load(bias + c, C - c, 0.0f));
            avx2_store(row + c, C - c, gelu_avx2(v));
        }
    }
}

/* ------------------------------------------------------------------ AVX-512 */

PIVOT_AVX512 static inline __mmask16 tail_mask(size_t left) {
    return (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1u);
}

PIVOT_AVX512 PIVOT_SCHEDULE static void gelu_avx512_rows(float *x, const float *bias, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        float *row = x + n * C;
        size_t c = 0;
        if (!bias)
            for (; c + 64 <= C; c += 64) { /* four vectors in flight (PIVOT_SCHEDULE) */
                __m512 v0 = _mm512_loadu_ps(row + c), v1 = _mm512_loadu_ps(row + c + 16);
                __m512 v2 = _mm512_loadu_ps(row + c + 32), v3 = _mm512_loadu_ps(row + c + 48);
                v0 = gelu_avx512(v0);
                v1 = gelu_avx512(v1);
                v2 = gelu_avx512(v2);
                v3 = gelu_avx512(v3);
                _mm512_storeu_ps(row + c, v0);
                _mm512_storeu_ps(row + c + 16, v1);
                _mm512_storeu_ps(row + c + 32, v2);
                _mm512_storeu_ps(row + c + 48, v3);
            }
        for (; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 v = _mm512_maskz_loadu_ps(m, row + c);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            _mm512_mask_storeu_ps(row + c, m, gelu_avx512(v));
        }
    }
}

/* Softmax of `R` rows together (R a compile-time constant): each row's passes are chains of
 * dependent steps (the running max, its horizontal reduction, the running sum, the reciprocal) that
 * leave the core idle, and R independent rows fill it (figures: docs/performance.md). Each row's
 * arithmetic is that of the row alone, in the same order. */
#define SOFTMAX_AVX512_ROWS(R)                                                                              \
    PIVOT_AVX512 PIVOT_SCHEDULE static void softmax_avx512_##R(float *x, size_t C, size_t ld) {             \
        __m512 vmax[R], vsum[R], m[R], inv[R];                                                              \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) vmax[r] = _mm512_set1_ps(-INFINITY);            \
        for (size_t c = 0; c < C; c += 16) {                                                                \
            __mmask16 k = tail_mask(C - c);                                                                 \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) vmax[r] = _mm512_max_ps(                    \
                vmax[r], _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + r * ld + c));               \
        }                                                                                                   \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                               \
            m[r] = _mm512_set1_ps(_mm512_reduce_max_ps(vmax[r]));                                           \
            vsum[r] = _mm512_setzero_ps();                                                                  \
        }                                                                                                   \
        for (size_t c = 0; c < C; c += 16) {                                                                \
            __mmask16 k = tail_mask(C - c);                                                                 \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                           \
                __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + r * ld + c), m[r]));       \
                e = _mm512_maskz_mov_ps(k, e);                                                              \
                vsum[r] = _mm512_add_ps(vsum[r], e);                                                        \
                _mm512_mask_storeu_ps(x + r * ld + c, k, e);                                                \
            }                                                                                               \
        }                                                                                                   \
        /* a NaN was skipped by max but made its exp, so the sum, NaN: the whole row becomes NaN */        \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                 \
            inv[r] = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum[r]));                                 \
        for (size_t c = 0; c < C; c += 16) {                                                                \
            __mmask16 k = tail_mask(C - c);                                                                 \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(                      \
                x + r * ld + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + r * ld + c), inv[r]));         \
        }                                                                                                   \
    }
SOFTMAX_AVX512_ROWS(4)
SOFTMAX_AVX512_ROWS(1)

PIVOT_AVX512 static void softmax_avx512(float *x, size_t N, size_t C, size_t ld) {
    size_t n = 0;
    for (; n + 4 <= N; n += 4) softmax_avx512_4(x + n * ld, C, ld);
    for (; n < N; n++) softmax_avx512_1(x + n * ld, C, ld);
}

PIVOT_AVX512 static void layernorm_avx512(float *out, const float *inp, const float *weight, const float *bias,
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
PIVOT_AVX512 static void rmsnorm_avx512(float *out, const float *inp, const float *weight, size_t N, size_t C,
                                        float eps) {
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *y = out + n * C;
        __m512 vsq = _mm512_setzero_ps();
        for (size_t c = 0; c < C; c += 16) {
            __m512 v = _mm512_maskz_loadu_ps(tail_mask(C - c), x + c);
            vsq = _mm512_fmadd_ps(v, v, vsq);
        }
        __m512 r = _mm512_set1_ps((float)(1.0 / sqrt((double)_mm512_reduce_add_ps(vsq) / (double)C + (double)eps)));
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 k = tail_mask(C - c);
            __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + c), r), _mm512_maskz_loadu_ps(k, weight + c));
            _mm512_mask_storeu_ps(y + c, k, v);
        }
    }
}
#endif /* PIVOT_X86_BUILD */

/* ------------------------------------------------------------------ dispatch */

void pivot_layernorm_rows(float *out, const float *inp, const float *weight, const float *bias, size_t N, size_t C,
                          float eps) {
#if PIVOT_X86_BUILD
    int level = pivot_simd_level();
    if (level >= PIVOT_SIMD_AVX512) { layernorm_avx512(out, inp, weight, bias, N, C, eps); return; }
    if (level >= PIVOT_SIMD_AVX2) { layernorm_avx2(out, inp, weight, bias, N, C, eps); return; }
#endif
    layernorm_ref(out, inp, weight, bias, N, C, eps);
}

void pivot_rmsnorm_rows(float *out, const float *inp, const float *weight, size_t N, size_t C, float eps) {
#if PIVOT_X86_BUILD
    int level = pivot_simd_level();
    if (level >= PIVOT_SIMD_AVX512) { rmsnorm_avx512(out, inp, weight, N, C, eps); return; }
    if (level >= PIVOT_SIMD_AVX2) { rmsnorm_avx2(out, inp, weight, N, C, eps); return; }
#endif
    rmsnorm_ref(out, inp, weight, N, C, eps);
}

void pivot_softmax_rows(float *x, size_t N, size_t C, size_t ld) {
#if PIVOT_X86_BUILD
    int level = pivot_simd_level();
    if (level >= PIVOT_SIMD_AVX512) { softmax_avx512(x, N, C, ld); return; }
    if (level >= PIVOT_SIMD_AVX2) { softmax_avx2(x, N, C, ld); return; }
#endif
    softmax_ref(x, N, C, ld);
}

void pivot_gelu_rows(float *x, const float *bias, size_t N, size_t C) {
#if PIVOT_X86_BUILD
    int level = pivot_simd_level();
    if (level >= PIVOT_SIMD_AVX512) { gelu_avx512_rows(x, bias, N, C); return; }
    if (level >= PIVOT_SIMD_AVX2) { gelu_avx2_rows(x, bias, N, C); return; }
#endif
    gelu_ref(x, bias, N, C);
}

/* ------------------------------------------------------------------ checked reference entry points */

int pivot_layernorm_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                            size_t C, float eps) {
    if (C == 0 || !(eps >= 0.0f)) return PIVOT_ERR_VALUE;
    if (N == 0) return PIVOT_OK;
    if (!out || !inp || !weight || !bias) return PIVOT_ERR_VALUE;
    size_t tmp;
    if (pivot_mul_size(&tmp, N, C)) return PIVOT_ERR_OVERFLOW;
    layernorm_ref(out, inp, weight, bias, N, C, eps);
    return PIVOT_OK;
}

int pivot_gelu_forward(float *out, const float *inp, size_t N) {
    if (N == 0) return PIVOT_OK;
    if (!out || !inp) return PIVOT_ERR_VALUE;
    if (out != inp) memcpy(out, inp, N * sizeof(float));
    gelu_ref(out, NULL, 1, N);
    return PIVOT_OK;
}

int pivot_softmax_forward(float *out, const float *inp, size_t N, size_t C) {
    if (C == 0) return PIVOT_ERR_VALUE;
    if (N == 0) return PIVOT_OK;
    if (!out || !inp) return PIVOT_ERR_VALUE;
    size_t tmp;
    if (pivot_mul_size(&tmp, N, C)) return PIVOT_ERR_OVERFLOW;
    if (out != inp) memcpy(out, inp, tmp * sizeof(float));
    softmax_ref(out, N, C, C);
    return PIVOT_OK;
}
