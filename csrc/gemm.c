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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "fast_math.h"
#include "pivot_blas.h"
#include "simd_math.h"
#include "threads.h"

#define PANEL PIVOT_GEMM_PANEL
#define MR 12 /* rows of the micro-kernel tile: 12 x 2 accumulators + 2 weight vectors of 32 zmm */

/* ================================================================== portable pieces */

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
        const float *panel = packed + p0 * pivot_gemm_padded_k(IC);
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

#if PIVOT_X86_BUILD
#define AVX512 PIVOT_AVX512

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
 * chains of several vectors (measured: 2x less epilogue time on the fc1 shape); two rows (four
 * vectors) at a time, interleaved by PIVOT_SCHEDULE (simd_math.h). */
AVX512 PIVOT_SCHEDULE static void gelu_tile(float *out, int rows, size_t ldo, __mmask16 m0, __mmask16 m1) {
    int i = 0;
    for (; i + 1 < rows; i += 2) { /* two rows: four vectors in flight */
        float *r0 = out + (size_t)i * ldo, *r1 = r0 + ldo;
        __m512 v0 = _mm512_maskz_loadu_ps(m0, r0), v1 = _mm512_maskz_loadu_ps(m1, r0 + 16);
        __m512 v2 = _mm512_maskz_loadu_ps(m0, r1), v3 = _mm512_maskz_loadu_ps(m1, r1 + 16);
        v0 = gelu_avx512(v0);
        v1 = gelu_avx512(v1);
        v2 = gelu_avx512(v2);
        v3 = gelu_avx512(v3);
        _mm512_mask_storeu_ps(r0, m0, v0);
        _mm512_mask_storeu_ps(r0 + 16, m1, v1);
        _mm512_mask_storeu_ps(r1, m0, v2);
        _mm512_mask_storeu_ps(r1 + 16, m1, v3);
    }
    for (; i < rows; i++) {
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

/* Row block `block` of `blocks` prefetches its share of the next panel (`bytes` long) into L2. */
static inline void prefetch_share(const char *next, size_t bytes, size_t block, size_t blocks) {
    size_t lo = bytes * block / blocks, hi = bytes * (block + 1) / blocks;
    for (size_t off = lo & ~(size_t)63; off < hi; off += 64) _mm_prefetch(next + off, _MM_HINT_T1);
}

/* Rows of the next row block of a `full`-row tile when `left` rows remain: full, except that a
 * remainder of 1-3 rows after a full block is shared with it (AVX-512, 12 rows: 13-15 as 7+6,
 * 7+7, 8+7; AVX2, 6 rows: 7-9 as 4+3, 4+4, 5+4). A tile of r rows keeps 2r independent FMA
 * chains; with 4-cycle FMA latency and two FMA pipes a 1-, 2- or 3-row tile runs at 1/4, 1/2 or
 * 3/4 of the FMA rate (sharing a remainder of 4 or more measured slower: docs/performance.md).
 * Batch 1 on 2 threads splits 197 rows as 98 + 99, and attention's query chunks likewise. */
static inline size_t block_rows(size_t left, size_t full) {
    if (left > full && left <= full + 3) return (left + 1) / 2;
    return left < full ? left : full;
}

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
        for (size_t r = 0, rows; r < N; r += rows) {
            rows = block_rows(N - r, MR);
            if (next) prefetch_share(next, next_bytes, block++, blocks); /* as many blocks as ceil(N / 12) */
            tile_kernels[rows](out + r * ldo + p0, capture ? capture + r * OC + p0 : NULL, inp + r * ldi, panel,
                               bias ? bias + p0 : NULL, IC, ldi, ldb, ldo, OC, m0, m1, packed_b, epilogue, scale);
        }
    }
}

/* ================================================================== AVX2 */

/* The AVX2 + FMA kernel reads the same packed panels: a tile is 6 rows x 16 columns (half a
 * panel) in 12 ymm accumulators over the full K, A read in place with one broadcast per row and
 * k, then the epilogue on the registers (GELU on the stored tile, as above). */
#define MR2 6

PIVOT_AVX2 static inline __m256i avx2_cols(size_t left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), idx);
}

/* out[0:n] <- epilogue(acc + bias) for n <= 8 columns (mask m). */
PIVOT_AVX2 static inline void epilogue8(float *out, float *capture, __m256 acc, __m256 bias, __m256i m, int full,
                                        int epilogue, __m256 scale) {
    __m256 v = _mm256_add_ps(acc, bias);
    if (epilogue == PIVOT_EPI_RESIDUAL) {
        if (capture) {
            if (full) _mm256_storeu_ps(capture, v);
            else _mm256_maskstore_ps(capture, m, v);
        }
        __m256 x = full ? _mm256_loadu_ps(out) : _mm256_maskload_ps(out, m);
        v = _mm256_fmadd_ps(v, scale, x);
    }
    if (full) _mm256_storeu_ps(out, v);
    else _mm256_maskstore_ps(out, m, v);
}

/* GELU in place on a stored (rows x nc) tile, nc <= 16, still in L1: four vectors at a time,
 * interleaved by PIVOT_SCHEDULE (simd_math.h). */
PIVOT_AVX2 PIVOT_SCHEDULE static void gelu_tile_avx2(float *out /* (rows, ldo), nc columns */, int rows, size_t ldo,
                                                      size_t nc) {
    int i = 0;
    if (nc == 16)
        for (; i + 1 < rows; i += 2) {
            float *r0 = out + (size_t)i * ldo, *r1 = r0 + ldo;
            __m256 v0 = _mm256_loadu_ps(r0), v1 = _mm256_loadu_ps(r0 + 8);
            __m256 v2 = _mm256_loadu_ps(r1), v3 = _mm256_loadu_ps(r1 + 8);
            v0 = gelu_avx2(v0);
            v1 = gelu_avx2(v1);
            v2 = gelu_avx2(v2);
            v3 = gelu_avx2(v3);
            _mm256_storeu_ps(r0, v0);
            _mm256_storeu_ps(r0 + 8, v1);
            _mm256_storeu_ps(r1, v2);
            _mm256_storeu_ps(r1 + 8, v3);
        }
    __m256i m0 = avx2_cols(nc), m1 = avx2_cols(nc > 8 ? nc - 8 : 0);
    for (; i < rows; i++) {
        float *row = out + (size_t)i * ldo;
        __m256 v0 = _mm256_maskload_ps(row, m0), v1 = _mm256_maskload_ps(row + 8, m1);
        v0 = gelu_avx2(v0);
        v1 = gelu_avx2(v1);
        _mm256_maskstore_ps(row, m0, v0);
        _mm256_maskstore_ps(row + 8, m1, v1);
    }
}

#define TILE2_FMA(ROWS)                                                                                     \
    _Pragma("GCC unroll 6") for (int i = 0; i < ROWS; i++) {                                                \
        __m256 av = _mm256_broadcast_ss(a + i * lda + k);                                                   \
        c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);                                                             \
        c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);                                                             \
    }
#define DEFINE_TILE2_KERNEL(ROWS)                                                                           \
    PIVOT_AVX2 static void tile2_##ROWS(float *out, float *capture, const float *a, const float *half,      \
                                        const float *bias, size_t K, size_t lda, size_t ldb, size_t ldo,    \
                                        size_t ldc, size_t nc, int epilogue, float scale) {                 \
        __m256 c0[ROWS], c1[ROWS];                                                                          \
        _Pragma("GCC unroll 6") for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm256_setzero_ps();         \
        for (size_t k = 0; k < K; k++) {                                                                    \
            __m256 b0 = _mm256_loadu_ps(half + k * ldb), b1 = _mm256_loadu_ps(half + k * ldb + 8);          \
            TILE2_FMA(ROWS)                                                                                 \
        }                                                                                                   \
        __m256i m0 = avx2_cols(nc), m1 = avx2_cols(nc > 8 ? nc - 8 : 0);                                    \
        int f0 = nc >= 8, f1 = nc >= 16;                                                                    \
        __m256 bias0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();                           \
        __m256 bias1 = bias && nc > 8 ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();             \
        __m256 sc = _mm256_set1_ps(scale);                                                                  \
        int store_epi = epilogue == PIVOT_EPI_GELU ? PIVOT_EPI_STORE : epilogue;                             \
        _Pragma("GCC unroll 6") for (int i = 0; i < ROWS; i++) {                                            \
            float *cap = capture ? capture + i * ldc : NULL;                                                \
            epilogue8(out + i * ldo, cap, c0[i], bias0, m0, f0, store_epi, sc);                             \
            if (nc > 8) epilogue8(out + i * ldo + 8, cap ? cap + 8 : NULL, c1[i], bias1, m1, f1, store_epi, sc); \
        }                                                                                                   \
        if (epilogue == PIVOT_EPI_GELU) gelu_tile_avx2(out, ROWS, ldo, nc);                                 \
    }

DEFINE_TILE2_KERNEL(6)
DEFINE_TILE2_KERNEL(5)
DEFINE_TILE2_KERNEL(4)
DEFINE_TILE2_KERNEL(3)
DEFINE_TILE2_KERNEL(2)
DEFINE_TILE2_KERNEL(1)

typedef void (*tile2_fn)(float *, float *, const float *, const float *, const float *, size_t, size_t, size_t,
                         size_t, size_t, size_t, int, float);
static const tile2_fn tile2_kernels[MR2 + 1] = {NULL, tile2_1, tile2_2, tile2_3, tile2_4, tile2_5, tile2_6};

/* out (N, OC) <- epilogue(inp (N, IC) @ packed^T): panel (32 columns) outer, then half panel
 * (16 columns: its (IC, 16) weights stay in L1 over the row blocks), row blocks of 6 inner, full
 * K in the micro-kernel. As on the AVX-512 path, each row block prefetches its share of the NEXT
 * panel into L2: the weights of a forward stream from DRAM and the hardware prefetchers stop at
 * 4 KiB pages (a gain on cold weights, a small loss on cached ones: docs/performance.md). */
PIVOT_AVX2 static void gemm_panels_avx2(float *out, float *capture, const float *inp, const float *packed,
                                        const float *bias, size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo,
                                        int epilogue, float scale) {
    size_t panel_step = PANEL * pivot_gemm_padded_k(IC);
    size_t next_bytes = panel_step * sizeof(float), blocks = 2 * ((N + MR2 - 1) / MR2);
    for (size_t p0 = 0; p0 < OC; p0 += PANEL) {
        const float *panel = packed + p0 / PANEL * panel_step;
        const char *next = p0 + PANEL < OC ? (const char *)(panel + panel_step) : NULL;
        size_t block = 0;
        for (size_t c0 = p0; c0 < p0 + PANEL && c0 < OC; c0 += 16) {
            size_t nc = OC - c0 < 16 ? OC - c0 : 16;
            for (size_t r = 0, rows; r < N; r += rows) {
                rows = block_rows(N - r, MR2);
                if (next) prefetch_share(next, next_bytes, block++, blocks);
                tile2_kernels[rows](out + r * ldo + c0, capture ? capture + r * OC + c0 : NULL, inp + r * ldi,
                                    panel + (c0 - p0), bias ? bias + c0 : NULL, IC, ldi, PANEL, ldo, OC, nc, epilogue,
                                    scale);
            }
        }
    }
}

/* out (M, N) = a (M, K) @ b (K, N) with b's rows read in place (ldb apart): 16-column blocks of
 * the same micro-tiles, the last block moved left to end at column N (it recomputes a few columns
 * of the one before: a tile must not read past b's rows); N < 16 in plain loops. */
PIVOT_AVX2 static void gemm_nn_avx2(float *out, const float *a, const float *b, size_t M, size_t K, size_t N,
                                    size_t lda, size_t ldb, size_t ldo) {
    if (N < 16) {
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                float acc = 0.0f;
                for (size_t k = 0; k < K; k++) acc += a[i * lda + k] * b[k * ldb + j];
                out[i * ldo + j] = acc;
            }
        return;
    }
    for (size_t c = 0; c < N; c += 16) {
        size_t c0 = c + 16 <= N ? c : N - 16;
        for (size_t r = 0, rows; r < M; r += rows) {
            rows = block_rows(M - r, MR2);
            tile2_kernels[rows](out + r * ldo + c0, NULL, a + r * lda, b + c0, NULL, K, lda, ldb, ldo, 0, 16,
                                PIVOT_EPI_STORE, 1.0f);
        }
    }
}

static inline __mmask16 tail_mask(size_t left) {
    return (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1u);
}

#endif /* PIVOT_X86_BUILD */

/* ================================================================== AMX */

#if PIVOT_AMX_BUILD
/* Why: AMX's tile multiply (TDPBF16PS) does 512 bf16 multiply-adds per cycle against AVX-512's
 * 32 fp32 ones. fp32 accuracy is kept with the bf16x3 split (oneDNN's "fp32 via bf16x3"): each
 * fp32 value x = hi + lo with hi = bf16(x), lo = bf16(x - hi) (16 significant bits), and
 * a.b ~= a_hi.b_hi + a_hi.b_lo + a_lo.b_hi, accumulated in fp32 inside the tiles. The dropped
 * a_lo.b_lo and the 17th+ bits leave a relative error of ~2^-16 per product: on DeiT-S shapes
 * the error of a Linear's output is ~1e-5 of sum |a||b| (tests/test_perf_kernels.py), where
 * fp32 sgemm is ~1e-6; the whole forward stays within the engine's 1e-4 of timm.
 *
 * Packed layout (same size as the fp32 panels): panel p (32 output columns) is a run of k-blocks
 * of 32 input columns; each k-block holds four 16 x 16-pair tiles of 1 KiB in the VNNI order
 * TDPBF16PS reads: hi columns 0-15, hi 16-31, lo 0-15, lo 16-31. Element (pair kk, column j) of
 * a tile is at kk * 32 + 2 j + {0, 1} and holds weight[col j][k = 32 kb + 2 kk + {0, 1}].
 * Activations are split into hi / lo row-major bf16 copies (rows padded to 16, k to 32) once per
 * call; the 32 x 32 micro-kernel keeps 4 accumulator tiles and reloads A / B tiles per k-block. */
#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bf16")))
#define KB PIVOT_GEMM_KBLOCK

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tile_config;

AMX_TARGET void pivot_amx_configure_tiles(void) {
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    /* GCC's _tile_loadconfig tells the compiler it reads 8 bytes only, so without this barrier
     * the stores of rows / colsb were dropped as dead (tiles then fault with SIGILL) */
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig(&cfg);
}

/* Per-thread scratch for the bf16 split of A: engine worker threads come and go per forward,
 * so the buffer is freed by the key's destructor when its thread exits. */
static pthread_key_t amx_scratch_key;
static pthread_once_t amx_scratch_once = PTHREAD_ONCE_INIT;
typedef struct {
    uint16_t *buf;
    size_t cap; /* in uint16 */
} amx_scratch;
static void amx_scratch_free(void *p) {
    amx_scratch *s = (amx_scratch *)p;
    if (s) free(s->buf);
    free(s);
}
static void amx_scratch_init(void) { (void)pthread_key_create(&amx_scratch_key, amx_scratch_free); }
static uint16_t *amx_scratch_get(size_t n) {
    pthread_once(&amx_scratch_once, amx_scratch_init);
    amx_scratch *s = (amx_scratch *)pthread_getspecific(amx_scratch_key);
    if (!s) {
        if (!(s = (amx_scratch *)calloc(1, sizeof *s))) return NULL;
        if (pthread_setspecific(amx_scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->cap < n) {
        free(s->buf);
        s->buf = (uint16_t *)aligned_alloc(64, (n * sizeof(uint16_t) + 63) / 64 * 64);
        s->cap = s->buf ? n : 0;
    }
    return s->buf;
}

/* Index of weight (column j of the panel, pair kk, element e of the pair) in a k-block's hi
 * tiles; the lo tiles follow 1024 further. */
static inline size_t amx_tile_offset(size_t j, size_t kk, size_t e) {
    return (j / 16) * 512 + kk * 32 + (j % 16) * 2 + e;
}

static inline uint16_t bf16_round(float x) { /* round to nearest even; NaN stays NaN */
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* hi / lo bf16 rows of a (M, K) fp32 block into (Mp, Kp) buffers, zero padded. */
AMX_TARGET static void amx_split_rows(uint16_t *hi, uint16_t *lo, const float *a, size_t M, size_t K, size_t lda,
                                      size_t Mp, size_t Kp) {
    for (size_t i = 0; i < Mp; i++) {
        uint16_t *h = hi + i * Kp, *l = lo + i * Kp;
        if (i >= M) {
            memset(h, 0, Kp * sizeof(uint16_t));
            memset(l, 0, Kp * sizeof(uint16_t));
            continue;
        }
        const float *row = a + i * lda;
        for (size_t k = 0; k < Kp; k += 16) {
            __mmask16 m = tail_mask(K > k ? K - k : 0);
            __m512 x = _mm512_maskz_loadu_ps(m, row + k);
            __m256bh xh = _mm512_cvtneps_pbh(x);
            __m512 xhf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)xh), 16));
            __m256bh xl = _mm512_cvtneps_pbh(_mm512_sub_ps(x, xhf));
            _mm256_storeu_si256((__m256i *)(h + k), (__m256i)xh);
            _mm256_storeu_si256((__m256i *)(l + k), (__m256i)xl);
        }
    }
}

/* C tiles 0..3 (rows r0 / r0 + 16, columns 0-15 / 16-31) += bf16x3 products over all k-blocks.
 * two_rows = 0: only tiles 0 and 1 (a 16-row remainder). */
AMX_TARGET static void amx_block(const uint16_t *ahi, const uint16_t *alo, size_t Kp, const uint16_t *panel,
                                 int two_rows) {
    size_t stride = Kp * sizeof(uint16_t), nkb = Kp / KB;
    _tile_zero(0);
    _tile_zero(1);
    if (two_rows) {
        _tile_zero(2);
        _tile_zero(3);
        for (size_t kb = 0; kb < nkb; kb++) {
            const uint16_t *bt = panel + kb * 4 * 512, *a0 = ahi + kb * KB, *l0 = alo + kb * KB;
            _tile_loadd(4, a0, stride);
            _tile_loadd(5, a0 + 16 * Kp, stride);
            _tile_loadd(6, bt, 64);
            _tile_loadd(7, bt + 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
            _tile_loadd(6, bt + 1024, 64); /* B lo */
            _tile_loadd(7, bt + 1536, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
            _tile_loadd(4, l0, stride); /* A lo x B hi */
            _tile_loadd(5, l0 + 16 * Kp, stride);
            _tile_loadd(6, bt, 64);
            _tile_loadd(7, bt + 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    } else {
        /* the same order of products as above, so a row's result does not depend on whether it
         * falls in a 32-row block or the 16-row remainder (batch 1 equals a row of a batch) */
        for (size_t kb = 0; kb < nkb; kb++) {
            const uint16_t *bt = panel + kb * 4 * 512;
            _tile_loadd(4, ahi + kb * KB, stride);
            _tile_loadd(5, alo + kb * KB, stride);
            _tile_loadd(6, bt, 64);
            _tile_loadd(7, bt + 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_loadd(2, bt + 1024, 64); /* B lo, in the tiles the 32-row case uses for C */
            _tile_loadd(3, bt + 1536, 64);
            _tile_dpbf16ps(0, 4, 2);
            _tile_dpbf16ps(1, 4, 3);
            _tile_dpbf16ps(0, 5, 6);
            _tile_dpbf16ps(1, 5, 7);
        }
    }
}

/* The AMX kernel's arithmetic in plain loops on the same packed layout (bf16x3 products summed in
 * fp32): its fallback when the scratch for the split cannot be allocated. */
static void linear_amx_layout_portable(float *out, float *capture, const float *inp, const float *packed,
                                       const float *bias, size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo,
                                       int epilogue, float scale) {
    size_t Kp = (IC + KB - 1) / KB * KB;
    float acc[PANEL];
    for (size_t p0 = 0; p0 < OC; p0 += PANEL) {
        size_t nc = OC - p0 < PANEL ? OC - p0 : PANEL;
        const uint16_t *panel = (const uint16_t *)(packed + p0 * Kp);
        for (size_t n = 0; n < N; n++) {
            const float *a = inp + n * ldi;
            for (size_t j = 0; j < PANEL; j++) acc[j] = 0.0f;
            for (size_t k = 0; k < IC; k++) {
                uint16_t ah = bf16_round(a[k]);
                float ahf = bf16_to_float(ah), alf = bf16_to_float(bf16_round(a[k] - ahf));
                const uint16_t *blk = panel + k / KB * 4 * 512;
                size_t kk = (k % KB) / 2, e = k % 2;
                for (size_t j = 0; j < PANEL; j++) {
                    size_t at = amx_tile_offset(j, kk, e);
                    float bh = bf16_to_float(blk[at]), bl = bf16_to_float(blk[1024 + at]);
                    acc[j] += ahf * bh + ahf * bl + alf * bh;
                }
            }
            epilogue_row_portable(out + n * ldo + p0, capture ? capture + n * OC + p0 : NULL, acc,
                                  bias ? bias + p0 : NULL, nc, epilogue, scale);
        }
    }
}

AMX_TARGET static int linear_amx(float *out, float *capture, const float *inp, const float *packed,
                                 const float *bias, size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo,
                                 int epilogue, float scale) {
    size_t Kp = (IC + KB - 1) / KB * KB, Mp = (N + 15) / 16 * 16, n;
    if (pivot_mul_size(&n, Mp, Kp) || pivot_mul_size(&n, n, 2)) return PIVOT_ERR_OVERFLOW;
    uint16_t *ahi = amx_scratch_get(n);
    if (!ahi) { /* no memory for the split: the plain loops read the same layout, slowly */
        linear_amx_layout_portable(out, capture, inp, packed, bias, N, IC, OC, ldi, ldo, epilogue, scale);
        return PIVOT_OK;
    }
    uint16_t *alo = ahi + Mp * Kp;
    amx_split_rows(ahi, alo, inp, N, IC, ldi, Mp, Kp);

    pivot_amx_configure_tiles();
    float cbuf[32 * 32] __attribute__((aligned(64)));
    __m512 sc = _mm512_set1_ps(scale);
    int store_epi = epilogue == PIVOT_EPI_GELU ? PIVOT_EPI_STORE : epilogue;
    for (size_t p0 = 0; p0 < OC; p0 += PANEL) {
        size_t nc = OC - p0 < PANEL ? OC - p0 : PANEL;
        __mmask16 m0 = tail_mask(nc), m1 = tail_mask(nc > 16 ? nc - 16 : 0);
        const uint16_t *panel = (const uint16_t *)(packed + p0 * Kp);
        __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias + p0) : _mm512_setzero_ps();
        __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + p0 + 16) : _mm512_setzero_ps();
        for (size_t r = 0; r < N; r += 32) {
            int two = N - r > 16;
            amx_block(ahi + r * Kp, alo + r * Kp, Kp, panel, two);
            _tile_stored(0, cbuf, 128);
            _tile_stored(1, cbuf + 16, 128);
            if (two) {
                _tile_stored(2, cbuf + 16 * 32, 128);
                _tile_stored(3, cbuf + 16 * 32 + 16, 128);
            }
            size_t rows = N - r < 32 ? N - r : 32;
            float *o = out + r * ldo + p0;
            for (size_t i = 0; i < rows; i++) {
                float *cap = capture ? capture + (r + i) * OC + p0 : NULL;
                epilogue16(o + i * ldo, cap, _mm512_load_ps(cbuf + i * 32), bias0, m0, store_epi, sc);
                epilogue16(o + i * ldo + 16, cap ? cap + 16 : NULL, _mm512_load_ps(cbuf + i * 32 + 16), bias1, m1,
                           store_epi, sc);
            }
            if (epilogue == PIVOT_EPI_GELU) gelu_tile(o, (int)rows, ldo, m0, m1);
        }
    }
    _tile_release();
    return PIVOT_OK;
}

/* Packs one 32-column panel of weight (OC, IC) in the AMX layout above. */
static void amx_pack_panel(uint16_t *panel, const float *weight, size_t OC, size_t IC, size_t p0) {
    size_t Kp = (IC + KB - 1) / KB * KB;
    for (size_t kb = 0; kb < Kp / KB; kb++) {
        uint16_t *blk = panel + kb * 4 * 512;
        for (size_t kk = 0; kk < 16; kk++)
            for (size_t j = 0; j < PANEL; j++)
                for (size_t e = 0; e < 2; e++) {
                    size_t k = kb * KB + 2 * kk + e, col = p0 + j;
                    float w = col < OC && k < IC ? weight[col * IC + k] : 0.0f;
                    uint16_t hi = bf16_round(w), lo = bf16_round(w - bf16_to_float(hi));
                    size_t at = amx_tile_offset(j, kk, e);
                    blk[at] = hi;
                    blk[1024 + at] = lo;
                }
    }
}
#endif /* PIVOT_AMX_BUILD */

/* ================================================================== public */

int pivot_gemm_packed_size(size_t *out, size_t OC, size_t IC) {
    if (OC > SIZE_MAX - PANEL) return PIVOT_ERR_OVERFLOW;
    size_t cols = (OC + PANEL - 1) / PANEL * PANEL, Kp = pivot_gemm_padded_k(IC);
    if (Kp == 0 && IC != 0) return PIVOT_ERR_OVERFLOW;
    return pivot_mul_size(out, cols, Kp);
}

int pivot_gemm_pack(float *packed, const float *weight, size_t OC, size_t IC) {
    size_t n;
    int st = pivot_gemm_packed_size(&n, OC, IC);
    if (st) return st;
    if (n == 0) return PIVOT_OK;
    if (!packed || !weight) return PIVOT_ERR_VALUE;
    size_t Kp = pivot_gemm_padded_k(IC);
    for (size_t p0 = 0; p0 < OC; p0 += PANEL) {
        float *panel = packed + p0 * Kp;
#if PIVOT_AMX_BUILD
        if (pivot_simd_level() >= PIVOT_SIMD_AMX) {
            amx_pack_panel((uint16_t *)panel, weight, OC, IC, p0);
            continue;
        }
#endif
        for (size_t k = 0; k < Kp; k++)
            for (size_t j = 0; j < PANEL; j++)
                panel[k * PANEL + j] = p0 + j < OC && k < IC ? weight[(p0 + j) * IC + k] : 0.0f;
    }
    return PIVOT_OK;
}

size_t pivot_gemm_padded_k(size_t IC) {
    if (IC > SIZE_MAX - (PIVOT_GEMM_KBLOCK - 1)) return 0;
    return (IC + PIVOT_GEMM_KBLOCK - 1) / PIVOT_GEMM_KBLOCK * PIVOT_GEMM_KBLOCK;
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
#if PIVOT_AMX_BUILD
        if (pivot_simd_level() >= PIVOT_SIMD_AMX)
            return linear_amx(out, capture, inp, packed, bias, N, IC, OC, ldi, ldo, epilogue, scale);
#endif
#if PIVOT_X86_BUILD
        if (pivot_simd_level() >= PIVOT_SIMD_AVX512) {
            gemm_panels_avx512(out, capture, inp, packed, PANEL * pivot_gemm_padded_k(IC), PANEL, 1, bias, N, IC, OC,
                               ldi, ldo, epilogue, scale);
            return PIVOT_OK;
        }
        if (pivot_simd_level() >= PIVOT_SIMD_AVX2) {
            gemm_panels_avx2(out, capture, inp, packed, bias, N, IC, OC, ldi, ldo, epilogue, scale);
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

void pivot_gemm_nn_fast(float *out, const float *a, const float *b, size_t M, size_t K, size_t N, size_t lda,
                        size_t ldb, size_t ldo) {
#if PIVOT_X86_BUILD
    if (pivot_simd_level() >= PIVOT_SIMD_AVX512) {
        gemm_panels_avx512(out, NULL, a, b, PANEL, ldb, 0, NULL, M, K, N, lda, ldo, PIVOT_EPI_STORE, 1.0f);
        return;
    }
    if (pivot_simd_level() >= PIVOT_SIMD_AVX2) {
        gemm_nn_avx2(out, a, b, M, K, N, lda, ldb, ldo);
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
