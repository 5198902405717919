/* pivot's int8 path: integer GEMM kernels (VNNI, AVX2, portable) and the quantized encoders.
 * See quant.h for the operand conventions and the packed weight layout.
 *
 * GEMM structure: a "tile" computes up to 8 rows x 2 panels (32 columns) of raw u8 x s8 dot
 * products over the whole reduction (K is at most a few thousand here, so a panel pair of W,
 * 32 * Kp bytes, stays in L1/L2 while the rows stream); the epilogue then subtracts
 * zp[m] * colsum[n] and either stores int32 or dequantizes to float (scale, bias). Loops run
 * panel pairs outside and row tiles inside, over row chunks that fit L2. */
#define _POSIX_C_SOURCE 200809L
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "gemm.h" /* pivot_amx_configure_tiles */
#include "rowops.h"
#include "threads.h"
#include "modes.h"

#if PIVOT_X86_BUILD
#include <immintrin.h>
#endif

#define PANEL 16         /* output columns per packed panel */
#define TILE_M 8         /* rows per micro tile */
#define TILE_NP 2        /* panels per micro tile */
#define CHUNK_ROWS 96    /* rows of A kept hot in L2 while the panels sweep */
#define ROW_TILE 64      /* token rows per step of the token-wise phases */
#define PAD_BYTES 64     /* slack after uint8 buffers: rows are read up to 3 bytes past K */

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* ================================================================== dispatch */

int pivot_int8_kernel_supported(int kernel) {
    switch (kernel) {
    case PIVOT_INT8_KERNEL_PORTABLE: return 1;
#if PIVOT_X86_BUILD
    case PIVOT_INT8_KERNEL_AVX2: return __builtin_cpu_supports("avx2") ? 1 : 0;
    case PIVOT_INT8_KERNEL_VNNI:
        return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vnni")) ? 1 : 0;
    case PIVOT_INT8_KERNEL_AMX:
        return (pivot_int8_kernel_supported(PIVOT_INT8_KERNEL_VNNI) && pivot_amx_usable()) ? 1 : 0;
#endif
    default: return 0;
    }
}

int pivot_int8_kernel_resolve(int *out, int kernel) {
    if (kernel != PIVOT_INT8_KERNEL_AUTO) {
        if (!pivot_int8_kernel_supported(kernel)) return PIVOT_ERR_VALUE;
        *out = kernel;
        return PIVOT_OK;
    }
    int cap = PIVOT_INT8_KERNEL_AMX;
    const char *env = getenv("PIVOT_INT8_KERNEL");
    if (env && *env) {
        if (!strcmp(env, "portable")) cap = PIVOT_INT8_KERNEL_PORTABLE;
        else if (!strcmp(env, "avx2")) cap = PIVOT_INT8_KERNEL_AVX2;
        else if (!strcmp(env, "vnni")) cap = PIVOT_INT8_KERNEL_VNNI;
        else if (!strcmp(env, "amx")) cap = PIVOT_INT8_KERNEL_AMX;
        else return PIVOT_ERR_VALUE;
    }
    for (int k = cap; k > PIVOT_INT8_KERNEL_PORTABLE; k--)
        if (pivot_int8_kernel_supported(k)) { *out = k; return PIVOT_OK; }
    *out = PIVOT_INT8_KERNEL_PORTABLE;
    return PIVOT_OK;
}

/* ================================================================== packing */

int pivot_int8_packed_bytes(size_t *out, size_t N, size_t K) {
    if (N == 0 || K == 0) return PIVOT_ERR_SHAPE;
    size_t Np = round_up(N, PANEL), Kp = round_up(K, 4), panels, sums;
    if (Np < N || Kp < K || pivot_mul_size(&panels, Np, Kp) || pivot_mul_size(&sums, Np, 4) ||
        panels > SIZE_MAX - sums)
        return PIVOT_ERR_OVERFLOW;
    *out = panels + sums;
    return PIVOT_OK;
}

static void pack_unchecked(int8_t *packed, const int8_t *w, size_t N, size_t K, size_t sn, size_t sk) {
    size_t Np = round_up(N, PANEL), Kp = round_up(K, 4);
    memset(packed, 0, Np * Kp);
    int32_t colsum[PANEL];
    int8_t *sums = packed + Np * Kp;
    for (size_t p = 0; p < Np / PANEL; p++) {
        int8_t *panel = packed + p * PANEL * Kp;
        for (int c = 0; c < PANEL; c++) colsum[c] = 0;
        for (int c = 0; c < PANEL; c++) {
            size_t n = p * PANEL + (size_t)c;
            if (n >= N) break;
            const int8_t *row = w + n * sn;
            for (size_t k = 0; k < K; k++) {
                int8_t v = row[k * sk];
                panel[((k / 4) * PANEL + (size_t)c) * 4 + k % 4] = v;
                colsum[c] += v;
            }
        }
        memcpy(sums + p * PANEL * sizeof(int32_t), colsum, sizeof colsum);
    }
}

int pivot_int8_pack(int8_t *packed, const int8_t *w, size_t N, size_t K, size_t stride_n, size_t stride_k) {
    size_t bytes;
    int st = pivot_int8_packed_bytes(&bytes, N, K);
    if (st) return st;
    if (!packed || !w) return PIVOT_ERR_VALUE;
    pack_unchecked(packed, w, N, K, stride_n, stride_k);
    return PIVOT_OK;
}

/* ================================================================== micro tiles */

/* Each computes acc[r][c] = sum_{k < Kp} a[r * lda + k] * panel[c] (raw, no zero point) for
 * r < mr, c < 16 * np; acc has TILE_NP * PANEL columns. */
typedef void (*tile_fn)(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels, size_t panel_bytes,
                        size_t K4, int mr, int np);

static inline int32_t load_a4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

PIVOT_MULTIVERSION
static void tile_portable(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels, size_t panel_bytes,
                          size_t K4, int mr, int np) {
    for (int r = 0; r < mr; r++) {
        const uint8_t *ar = a + (size_t)r * lda;
        for (int j = 0; j < np; j++) {
            const int8_t *pw = panels + (size_t)j * panel_bytes;
            int32_t s[PANEL] = {0};
            for (size_t k = 0; k < K4; k++) {
                const uint8_t *a4 = ar + 4 * k;
                const int8_t *w4 = pw + k * PANEL * 4;
                for (int c = 0; c < PANEL; c++)
                    s[c] += (int32_t)a4[0] * w4[4 * c] + (int32_t)a4[1] * w4[4 * c + 1] +
                            (int32_t)a4[2] * w4[4 * c + 2] + (int32_t)a4[3] * w4[4 * c + 3];
            }
            memcpy(acc + (size_t)r * TILE_NP * PANEL + (size_t)j * PANEL, s, sizeof s);
        }
    }
}

#if PIVOT_X86_BUILD
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

VNNI_TARGET __attribute__((always_inline))
static inline void vnni_tile_fixed(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels,
                                   size_t panel_bytes, size_t K4, const int MR, const int NP) {
    __m512i c[TILE_M][TILE_NP];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NP; j++) c[r][j] = _mm512_setzero_si512();
    const int8_t *p1 = panels + panel_bytes;
    for (size_t k = 0; k < K4; k++) {
        __m512i w0 = _mm512_loadu_si512((const void *)(panels + k * 64));
        __m512i w1 = NP > 1 ? _mm512_loadu_si512((const void *)(p1 + k * 64)) : w0;
        for (int r = 0; r < MR; r++) {
            __m512i av = _mm512_set1_epi32(load_a4(a + (size_t)r * lda + 4 * k));
            c[r][0] = _mm512_dpbusd_epi32(c[r][0], av, w0);
            if (NP > 1) c[r][1] = _mm512_dpbusd_epi32(c[r][1], av, w1);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NP; j++) _mm512_storeu_si512((void *)(acc + (size_t)r * TILE_NP * PANEL + j * PANEL), c[r][j]);
}

VNNI_TARGET
static void tile_vnni(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels, size_t panel_bytes,
                      size_t K4, int mr, int np) {
#define VNNI_CASE(R) \
    case R: \
        if (np == 2) vnni_tile_fixed(acc, a, lda, panels, panel_bytes, K4, R, 2); \
        else vnni_tile_fixed(acc, a, lda, panels, panel_bytes, K4, R, 1); \
        break;
    switch (mr) {
        VNNI_CASE(1) VNNI_CASE(2) VNNI_CASE(3) VNNI_CASE(4) VNNI_CASE(5) VNNI_CASE(6) VNNI_CASE(7) VNNI_CASE(8)
    default: break;
    }
#undef VNNI_CASE
}

#define AVX2_TARGET __attribute__((target("avx2")))

/* Exact on AVX2: bytes widen to int16 and vpmaddwd adds pairs of int16 products in int32 (the
 * u8 x s8 vpmaddubsw would saturate its int16 pair sums at 2 * 255 * 127). A 16-byte quarter
 * of a panel step holds 4 columns x 4 k; vpmaddwd leaves each column's sum in two int32 lanes,
 * which the end of the tile adds. */
AVX2_TARGET __attribute__((always_inline))
static inline void avx2_tile_fixed(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panel, size_t K4,
                                   const int MR) {
    __m256i c[2][4];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) c[r][q] = _mm256_setzero_si256();
    for (size_t k = 0; k < K4; k++) {
        const int8_t *w = panel + k * 64;
        __m256i w16[4];
        for (int q = 0; q < 4; q++) w16[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16 * q)));
        for (int r = 0; r < MR; r++) {
            __m128i a8 = _mm_cvtsi32_si128(load_a4(a + (size_t)r * lda + 4 * k));
            __m256i a16 = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(a8));
            for (int q = 0; q < 4; q++) c[r][q] = _mm256_add_epi32(c[r][q], _mm256_madd_epi16(a16, w16[q]));
        }
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < 4; q++) {
            int32_t lanes[8];
            _mm256_storeu_si256((__m256i *)lanes, c[r][q]);
            for (int i = 0; i < 4; i++) acc[(size_t)r * TILE_NP * PANEL + 4 * q + i] = lanes[2 * i] + lanes[2 * i + 1];
        }
}

AVX2_TARGET
static void tile_avx2(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels, size_t panel_bytes,
                      size_t K4, int mr, int np) {
    for (int j = 0; j < np; j++)
        for (int r = 0; r < mr; r += 2) {
            int32_t *out = acc + (size_t)r * TILE_NP * PANEL + (size_t)j * PANEL;
            const int8_t *panel = panels + (size_t)j * panel_bytes;
            if (mr - r >= 2) avx2_tile_fixed(out, a + (size_t)r * lda, lda, panel, K4, 2);
            else avx2_tile_fixed(out, a + (size_t)r * lda, lda, panel, K4, 1);
        }
}
#endif

#if PIVOT_AMX_BUILD
#define QUANT_HAVE_AMX 1
/* The AMX kernel's tile function: gemm_rows recognises it and runs whole products on AMX tiles
 * (gemm_rows_amx); called as a tile (padded K not a multiple of 64) it is the VNNI tile. */
static void tile_amx(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels, size_t panel_bytes,
                     size_t K4, int mr, int np) {
    tile_vnni(acc, a, lda, panels, panel_bytes, K4, mr, np);
}
#else
#define QUANT_HAVE_AMX 0
#endif

static tile_fn tile_for(int kernel) {
#if QUANT_HAVE_AMX
    if (kernel == PIVOT_INT8_KERNEL_AMX) return tile_amx;
#endif
#if PIVOT_X86_BUILD
    if (kernel == PIVOT_INT8_KERNEL_VNNI) return tile_vnni;
    if (kernel == PIVOT_INT8_KERNEL_AVX2) return tile_avx2;
#endif
    return tile_portable;
}

/* ================================================================== GEMM driver + epilogue */

/* What to do with corrected sums acc - zp[m] * colsum[n]: store them as int32 (out_i32), or
 * store (float)(corrected) * (row_scale[m] * col_scale[n]) + bias[n] (bias may be NULL). */
typedef struct {
    int32_t *out_i32;
    float *out;
    size_t ldo;
    const float *row_scale; /* (M) */
    const float *col_scale; /* (N) or one value when col_scale_scalar */
    int col_scale_scalar;
    const float *bias;      /* (N) or NULL */
} epilogue;

PIVOT_MULTIVERSION
static void apply_epilogue(const int32_t *acc, int mr, size_t ncols, size_t m0, size_t n0, const int32_t *zp,
                           const int32_t *colsum, const epilogue *e) {
    for (int r = 0; r < mr; r++) {
        const int32_t *ar = acc + (size_t)r * TILE_NP * PANEL;
        int32_t z = zp[r];
        if (e->out_i32) {
            int32_t *o = e->out_i32 + (m0 + (size_t)r) * e->ldo + n0;
            for (size_t c = 0; c < ncols; c++) o[c] = ar[c] - z * colsum[c];
            continue;
        }
        float *o = e->out + (m0 + (size_t)r) * e->ldo + n0;
        float rs = e->row_scale[r];
        if (e->col_scale_scalar) {
            float s = rs * e->col_scale[0];
            for (size_t c = 0; c < ncols; c++) o[c] = (float)(ar[c] - z * colsum[c]) * s;
        } else {
            const float *cs = e->col_scale + n0;
            if (e->bias) {
                const float *b = e->bias + n0;
                for (size_t c = 0; c < ncols; c++) o[c] = (float)(ar[c] - z * colsum[c]) * (rs * cs[c]) + b[c];
            } else {
                for (size_t c = 0; c < ncols; c++) o[c] = (float)(ar[c] - z * colsum[c]) * (rs * cs[c]);
            }
        }
    }
}

#if QUANT_HAVE_AMX
#define AMX_INT8_TARGET __attribute__((target("amx-tile,amx-int8,avx512f")))
#define AMX_MAX_KP 4096 /* a partial 16-row block of A is copied to the stack: 16 * Kp bytes */

/* gemm_rows on AMX: 32 rows x 2 panels per step in four 16 x 16 int32 tiles, TDPBUSD over
 * k-blocks of 64 (the packed panel's 16 groups of 4 k are exactly a VNNI B tile of 1 KiB, rows 64
 * bytes apart; A rows load in place). Same raw sums as the other tiles, then the same epilogue.
 * Needs Kp % 64 == 0 and Kp <= AMX_MAX_KP (checked by gemm_rows). */
AMX_INT8_TARGET static void gemm_rows_amx(const uint8_t *a, size_t lda, const int32_t *zp, const int8_t *packed,
                                          size_t N, size_t K, size_t p_begin, size_t p_end, size_t M, size_t m0,
                                          const epilogue *e) {
    size_t Np = round_up(N, PANEL), Kp = round_up(K, 4), panel_bytes = PANEL * Kp, nkb = Kp / 64;
    const int32_t *colsum_all = (const int32_t *)(const void *)(packed + Np * Kp);
    int32_t acc[32 * TILE_NP * PANEL] __attribute__((aligned(64)));
    uint8_t pad[16 * AMX_MAX_KP] __attribute__((aligned(64)));
    pivot_amx_configure_tiles();
    epilogue sub = *e;
    for (size_t c0 = 0; c0 < M; c0 += CHUNK_ROWS) { /* CHUNK_ROWS is a multiple of 32 */
        size_t c1 = c0 + CHUNK_ROWS < M ? c0 + CHUNK_ROWS : M;
        for (size_t p = p_begin; p < p_end; p += TILE_NP) {
            int two_panels = p + 1 < p_end;
            size_t n0 = p * PANEL;
            size_t width = (size_t)(two_panels ? 2 : 1) * PANEL, ncols = n0 + width <= N ? width : N - n0;
            int32_t colsum[TILE_NP * PANEL];
            memcpy(colsum, colsum_all + n0, width * sizeof(int32_t));
            const int8_t *b0 = packed + p * panel_bytes, *b1 = b0 + panel_bytes;
            for (size_t m = c0; m < c1; m += 32) {
                size_t rows = c1 - m < 32 ? c1 - m : 32;
                const uint8_t *a0 = a + m * lda, *a1 = a0 + 16 * lda;
                size_t s0 = lda, s1 = lda;
                int second = rows > 16;
                if (rows < 16 || (second && rows < 32)) { /* the partial half goes through a zeroed copy */
                    size_t first_rows = second ? rows - 16 : rows;
                    const uint8_t *src = second ? a1 : a0;
                    memset(pad, 0, 16 * Kp);
                    for (size_t i = 0; i < first_rows; i++) memcpy(pad + i * Kp, src + i * lda, K);
                    if (second) { a1 = pad; s1 = Kp; } else { a0 = pad; s0 = Kp; }
                }
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (size_t kb = 0; kb < nkb; kb++) {
                    _tile_loadd(4, a0 + kb * 64, s0);
                    _tile_loadd(6, b0 + kb * 1024, 64);
                    _tile_dpbusd(0, 4, 6);
                    if (two_panels) {
                        _tile_loadd(7, b1 + kb * 1024, 64);
                        _tile_dpbusd(1, 4, 7);
                    }
                    if (second) {
                        _tile_loadd(5, a1 + kb * 64, s1);
                        _tile_dpbusd(2, 5, 6);
                        if (two_panels) _tile_dpbusd(3, 5, 7);
                    }
                }
                _tile_stored(0, acc, TILE_NP * PANEL * 4);
                _tile_stored(1, acc + PANEL, TILE_NP * PANEL * 4);
                _tile_stored(2, acc + 16 * TILE_NP * PANEL, TILE_NP * PANEL * 4);
                _tile_stored(3, acc + 16 * TILE_NP * PANEL + PANEL, TILE_NP * PANEL * 4);
                sub.row_scale = e->row_scale ? e->row_scale + m : NULL;
                apply_epilogue(acc, (int)rows, ncols, m0 + m, n0, zp + m, colsum, &sub);
            }
        }
    }
    _tile_release();
}
#endif

/* Rows [0, M) of A (pointer already at the first row; zp and e->row_scale likewise, e's outputs
 * at row m0 of the full output) times panels [p_begin, p_end) of the packed (N, K) weight. */
static void gemm_rows(tile_fn tile, const uint8_t *a, size_t lda, const int32_t *zp, const int8_t *packed,
                      size_t N, size_t K, size_t p_begin, size_t p_end, size_t M, size_t m0, const epilogue *e) {
    size_t Np = round_up(N, PANEL), Kp = round_up(K, 4), panel_bytes = PANEL * Kp;
#if QUANT_HAVE_AMX
    if (tile == tile_amx && Kp % 64 == 0 && Kp <= AMX_MAX_KP) {
        gemm_rows_amx(a, lda, zp, packed, N, K, p_begin, p_end, M, m0, e);
        return;
    }
#endif
    const int32_t *colsum_all = (const int32_t *)(const void *)(packed + Np * Kp);
    int32_t acc[TILE_M * TILE_NP * PANEL];
    epilogue sub = *e;
    for (size_t c0 = 0; c0 < M; c0 += CHUNK_ROWS) {
        size_t c1 = c0 + CHUNK_ROWS < M ? c0 + CHUNK_ROWS : M;
        for (size_t p = p_begin; p < p_end; p += TILE_NP) {
            int np = p + TILE_NP <= p_end ? TILE_NP : (int)(p_end - p);
            size_t n0 = p * PANEL;
            size_t ncols = n0 + (size_t)np * PANEL <= N ? (size_t)np * PANEL : N - n0;
            int32_t colsum[TILE_NP * PANEL];
            memcpy(colsum, colsum_all + n0, (size_t)np * PANEL * sizeof(int32_t));
            for (size_t m = c0; m < c1; m += TILE_M) {
                int mr = m + TILE_M <= c1 ? TILE_M : (int)(c1 - m);
                tile(acc, a + m * lda, lda, packed + p * panel_bytes, panel_bytes, Kp / 4, mr, np);
                sub.row_scale = e->row_scale ? e->row_scale + m : NULL;
                apply_epilogue(acc, mr, ncols, m0 + m, n0, zp + m, colsum, &sub);
            }
        }
    }
}

typedef struct {
    int32_t *out;
    const uint8_t *a;
    const int32_t *zp;
    const int8_t *packed;
    size_t M, N, K, lda;
    tile_fn tile;
} gemm_job;


static void gemm_team(void *arg, pivot_team *team, int tid, int nthreads) {
    const gemm_job *j = (const gemm_job *)arg;
    size_t r0, r1;
    pivot_split_range(j->M, tid, nthreads, &r0, &r1);
    if (r0 == r1) return;
    epilogue e = {j->out, NULL, j->N, NULL, NULL, 0, NULL};
    gemm_rows(j->tile, j->a + r0 * j->lda, j->lda, j->zp + r0, j->packed, j->N, j->K, 0,
              round_up(j->N, PANEL) / PANEL, r1 - r0, r0, &e);
}

int pivot_int8_gemm(int32_t *out, const uint8_t *a, const int32_t *zero_point, const int8_t *packed, size_t M,
                    size_t N, size_t K, size_t lda, int kernel, int threads) {
    size_t bytes;
    int st = pivot_int8_packed_bytes(&bytes, N, K);
    if (st) return st;
    if (lda < K || threads < 1) return PIVOT_ERR_VALUE;
    if (M == 0) return PIVOT_OK;
    if (!out || !a || !zero_point || !packed) return PIVOT_ERR_VALUE;
    size_t tmp;
    if (pivot_mul_size(&tmp, M, lda) || pivot_mul_size(&tmp, M, N)) return PIVOT_ERR_OVERFLOW;
    for (size_t m = 0; m < M; m++)
        if (zero_point[m] < 0 || zero_point[m] > 255) return PIVOT_ERR_VALUE;
    int resolved;
    if ((st = pivot_int8_kernel_resolve(&resolved, kernel))) return st;
    gemm_job job = {out, a, zero_point, packed, M, N, K, lda, tile_for(resolved)};
    return pivot_team_run(gemm_team, &job, threads);
}

/* ================================================================== quantization */

/* Round half to even for |v| <= 2^22 without libm (the default build has no SSE4.1 roundss):
 * adding 1.5 * 2^23 leaves the rounded value in the mantissa's low bits. */
static inline int32_t quant_code(float x, float inv, int32_t zp) {
    float v = x * inv;
    v = v == v ? v : 0.0f;
    v = v > 512.0f ? 512.0f : v;
    v = v < -512.0f ? -512.0f : v;
    v = (v + 12582912.0f) - 12582912.0f;
    int32_t q = (int32_t)v + zp;
    return q < 0 ? 0 : (q > 255 ? 255 : q);
}

PIVOT_MULTIVERSION
static void quantize_row(uint8_t *out, const float *x, float inv, int32_t zp, size_t C) {
    for (size_t c = 0; c < C; c++) out[c] = (uint8_t)quant_code(x[c], inv, zp);
}

/* int8 symmetric: clamp(rint(x * inv), -127, 127), stored as int8. */
PIVOT_MULTIVERSION
static void quantize_row_s8(int8_t *out, const float *x, float inv, size_t C) {
    for (size_t c = 0; c < C; c++) {
        int32_t q = quant_code(x[c], inv, 128) - 128;
        out[c] = (int8_t)(q < -127 ? -127 : q);
    }
}

/* Per-row dynamic range -> scale, zero point (see quant.h). */
static void row_params(float *scale, float *inv, int32_t *zp, const float *x, size_t C) {
    float lo = 0.0f, hi = 0.0f;
    for (size_t c = 0; c < C; c++) {
        float v = x[c];
        if (!isfinite(v)) continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) s = 1.0f;
    float is = 1.0f / s;
    *scale = s;
    *inv = is;
    *zp = quant_code(-lo, is, 0);
}

int pivot_quantize_u8(uint8_t *out, const float *x, const float *inv_scale, const int32_t *zp, size_t N, size_t C,
                      int per_row) {
    if (C == 0) return PIVOT_ERR_SHAPE;
    if (N == 0) return PIVOT_OK;
    if (!out || !x || !inv_scale || !zp) return PIVOT_ERR_VALUE;
    size_t tmp;
    if (pivot_mul_size(&tmp, N, C)) return PIVOT_ERR_OVERFLOW;
    for (size_t n = 0; n < (per_row ? N : 1); n++)
        if (zp[n] < 0 || zp[n] > 255 || !isfinite(inv_scale[n])) return PIVOT_ERR_VALUE;
    for (size_t n = 0; n < N; n++)
        quantize_row(out + n * C, x + n * C, inv_scale[per_row ? n : 0], zp[per_row ? n : 0], C);
    return PIVOT_OK;
}

int pivot_quantize_u8_rows(uint8_t *out, float *scale, int32_t *zp, const float *x, size_t N, size_t C) {
    if (C == 0) return PIVOT_ERR_SHAPE;
    if (N == 0) return PIVOT_OK;
    if (!out || !scale || !zp || !x) return PIVOT_ERR_VALUE;
    size_t tmp;
    if (pivot_mul_size(&tmp, N, C)) return PIVOT_ERR_OVERFLOW;
    for (size_t n = 0; n < N; n++) {
        float inv;
        row_params(&scale[n], &inv, &zp[n], x + n * C, C);
        quantize_row(out + n * C, x + n * C, inv, zp[n], C);
    }
    return PIVOT_OK;
}

/* ================================================================== quantized encoders */

int pivot_qblock_num_floats(size_t *out, size_t C, size_t H) {
    size_t c14, h2;
    if (pivot_mul_size(&c14, C, 14) || pivot_mul_size(&h2, H, 2) || c14 > SIZE_MAX - h2 - PIVOT_QACT_COUNT)
        return PIVOT_ERR_OVERFLOW;
    *out = c14 + h2 + PIVOT_QACT_COUNT;
    return PIVOT_OK;
}

static int block_byte_parts(size_t part[4], size_t C, size_t H) {
    int st;
    if ((st = pivot_int8_packed_bytes(&part[0], 3 * C, C)) || (st = pivot_int8_packed_bytes(&part[1], C, C)) ||
        (st = pivot_int8_packed_bytes(&part[2], H, C)) || (st = pivot_int8_packed_bytes(&part[3], C, H)))
        return st;
    for (int i = 0; i < 4; i++) part[i] = round_up(part[i], 64);
    return PIVOT_OK;
}

int pivot_qblock_num_bytes(size_t *out, size_t C, size_t H) {
    if (C == 0 || H == 0 || C > SIZE_MAX / 8) return PIVOT_ERR_SHAPE;
    size_t part[4];
    int st = block_byte_parts(part, C, H);
    if (st) return st;
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        if (total > SIZE_MAX - part[i]) return PIVOT_ERR_OVERFLOW;
        total += part[i];
    }
    *out = total;
    return PIVOT_OK;
}

typedef struct {
    const int8_t *qkv_w, *proj_w, *fc1_w, *fc2_w; /* packed */
    const float *norm1_w, *norm1_b, *qkv_b, *qkv_s, *proj_b, *proj_s, *norm2_w, *norm2_b, *fc1_b, *fc1_s,
        *fc2_b, *fc2_s, *act;
} qblock;

static void qblock_at(qblock *qb, const int8_t *w, const float *f, const size_t part[4], size_t C, size_t H) {
    qb->qkv_w = w; w += part[0];
    qb->proj_w = w; w += part[1];
    qb->fc1_w = w; w += part[2];
    qb->fc2_w = w;
    qb->norm1_w = f; f += C;
    qb->norm1_b = f; f += C;
    qb->qkv_b = f; f += 3 * C;
    qb->qkv_s = f; f += 3 * C;
    qb->proj_b = f; f += C;
    qb->proj_s = f; f += C;
    qb->norm2_w = f; f += C;
    qb->norm2_b = f; f += C;
    qb->fc1_b = f; f += H;
    qb->fc1_s = f; f += H;
    qb->fc2_b = f; f += C;
    qb->fc2_s = f; f += C;
    qb->act = f;
}

typedef struct {
    float *x;          /* (BT, C) the engine's residual stream */
    const qblock *blocks;
    size_t B, T, C, NH, H, D;
    float eps;
    int per_token;
    tile_fn tile;
    /* shared buffers */
    float *qkv;        /* (BT, 3C) */
    float *cat;        /* (BT, C) concatenated heads */
    uint8_t *q8;       /* (BT, C) + pad */
    int8_t *k8, *v8;   /* (BT, C) */
    uint8_t *probs_keep; /* (B, NH, T, T) + pad, or NULL */
    uint8_t *bad;      /* (BT) 1 where the token's qkv row of the current encoder is not finite */
    /* per-thread scratch */
    uint8_t *scratch;
    size_t scratch_bytes;
} qplan;

struct pivot_qencoder {
    qplan pl;
    qblock *blocks;
    void *workspace;
};

typedef struct {
    float *ln, *branch, *hidden, *row_scale, *scores;
    int32_t *zp, *zero;
    uint8_t *a8, *probs;
    int8_t *kpack, *vpack;
} qscratch;

static size_t carve(size_t *offset, size_t bytes) {
    size_t at = *offset;
    *offset = round_up(at + bytes, 64);
    return at;
}

/* Offsets within one thread's scratch; returns its size. */
static size_t scratch_layout(const qplan *pl, size_t off[11]) {
    size_t C = pl->C, H = pl->H, T = pl->T, hd = C / pl->NH, o = 0, kp, vp;
    size_t width = H > C ? H : C, rows = ROW_TILE > T ? ROW_TILE : T;
    pivot_int8_packed_bytes(&kp, T, hd);
    pivot_int8_packed_bytes(&vp, hd, T);
    off[0] = carve(&o, ROW_TILE * C * sizeof(float));          /* ln */
    off[1] = carve(&o, ROW_TILE * C * sizeof(float));          /* branch */
    off[2] = carve(&o, ROW_TILE * H * sizeof(float));          /* hidden */
    off[3] = carve(&o, rows * sizeof(float));                  /* row_scale */
    off[4] = carve(&o, T * T * sizeof(float));                 /* scores */
    off[5] = carve(&o, rows * sizeof(int32_t));                /* zp */
    off[6] = carve(&o, rows * sizeof(int32_t));                /* zero */
    off[7] = carve(&o, ROW_TILE * width + PAD_BYTES);          /* a8 */
    off[8] = carve(&o, T * T + PAD_BYTES);                     /* probs */
    off[9] = carve(&o, kp);                                    /* kpack */
    off[10] = carve(&o, vp);                                   /* vpack */
    return o;
}

static qscratch scratch_for(const qplan *pl, int tid) {
    size_t off[11];
    scratch_layout(pl, off);
    uint8_t *base = pl->scratch + (size_t)tid * pl->scratch_bytes;
    qscratch s;
    s.ln = (float *)(void *)(base + off[0]);
    s.branch = (float *)(void *)(base + off[1]);
    s.hidden = (float *)(void *)(base + off[2]);
    s.row_scale = (float *)(void *)(base + off[3]);
    s.scores = (float *)(void *)(base + off[4]);
    s.zp = (int32_t *)(void *)(base + off[5]);
    s.zero = (int32_t *)(void *)(base + off[6]);
    s.a8 = base + off[7];
    s.probs = base + off[8];
    s.kpack = (int8_t *)(base + off[9]);
    s.vpack = (int8_t *)(base + off[10]);
    return s;
}

void pivot_qencoder_thread_init(const pivot_qencoder *q, int tid) {
    const qplan *pl = &q->pl;
    qscratch s = scratch_for(pl, tid);
    size_t rows = ROW_TILE > pl->T ? ROW_TILE : pl->T;
    memset(s.zero, 0, rows * sizeof(int32_t));
    /* bytes past K of the last rows are read (times zero weights): keep them defined */
    memset(s.a8, 0, ROW_TILE * (pl->H > pl->C ? pl->H : pl->C) + PAD_BYTES);
    memset(s.probs, 0, pl->T * pl->T + PAD_BYTES);
}

/* 1 when every value of the row is finite (an exponent test, so the loop vectorizes). */
PIVOT_MULTIVERSION
static int row_finite(const float *x, size_t C) {
    uint32_t bad = 0;
    for (size_t c = 0; c < C; c++) {
        uint32_t u;
        memcpy(&u, x + c, sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return !bad;
}

/* Quantizes n rows of x (width C) into s->a8 with per-tensor (scale, zp) or per-token parameters,
 * leaving the dequantization row scales in s->row_scale and the zero points in s->zp. A row with
 * a NaN or infinity gets a NaN row scale, so its product is NaN as in fp32 (not the finite product
 * of the zero point its codes would give). */
static void quantize_input(qscratch *s, const float *x, size_t n, size_t C, float scale, float zp_f, int per_token) {
    if (per_token) {
        for (size_t r = 0; r < n; r++) {
            float inv;
            row_params(&s->row_scale[r], &inv, &s->zp[r], x + r * C, C);
            quantize_row(s->a8 + r * C, x + r * C, inv, s->zp[r], C);
            if (!row_finite(x + r * C, C)) s->row_scale[r] = NAN;
        }
        return;
    }
    int32_t zp = (int32_t)zp_f;
    float inv = 1.0f / scale;
    for (size_t r = 0; r < n; r++) {
        s->row_scale[r] = row_finite(x + r * C, C) ? scale : NAN;
        s->zp[r] = zp;
        quantize_row(s->a8 + r * C, x + r * C, inv, zp, C);
    }
}

/* out (n, N) = dequantized s->a8 (n, K) @ W^T + bias over panels [p_begin, p_end). */
static void linear_q(const qplan *pl, qscratch *s, float *out, size_t ldo, const int8_t *packed, const float *wscale,
                     const float *bias, size_t n, size_t N, size_t K, size_t p_begin, size_t p_end) {
    epilogue e = {NULL, out, ldo, s->row_scale, wscale, 0, bias};
    gemm_rows(pl->tile, s->a8, K, s->zp, packed, N, K, p_begin, p_end, n, 0, &e);
}

PIVOT_MULTIVERSION
static void add_rows(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* Phase 1 of an encoder with attention: norm1, qkv (only V for a reuse encoder), then q, k, v
 * quantized for the attention products. */
static void qkv_rows(const qplan *pl, qscratch *s, const qblock *qb, size_t r0, size_t r1, int mode) {
    size_t C = pl->C, C3 = 3 * C;
    const float *act = qb->act;
    size_t p_begin = mode == PIVOT_PATH_REUSE ? (2 * C) / PANEL : 0, p_end = round_up(C3, PANEL) / PANEL;
    float q_inv = 1.0f / act[PIVOT_QACT_Q_SCALE], k_inv = 1.0f / act[PIVOT_QACT_K_SCALE],
          v_inv = 1.0f / act[PIVOT_QACT_V_SCALE];
    int32_t q_zp = (int32_t)act[PIVOT_QACT_Q_ZP];
    for (size_t t0 = r0; t0 < r1; t0 += ROW_TILE) {
        size_t n = t0 + ROW_TILE <= r1 ? ROW_TILE : r1 - t0;
        pivot_layernorm_rows(s->ln, pl->x + t0 * C, qb->norm1_w, qb->norm1_b, n, C, pl->eps);
        quantize_input(s, s->ln, n, C, act[PIVOT_QACT_QKV_IN_SCALE], act[PIVOT_QACT_QKV_IN_ZP], pl->per_token);
        float *qkv = pl->qkv + t0 * C3;
        linear_q(pl, s, qkv, C3, qb->qkv_w, qb->qkv_s, qb->qkv_b, n, C3, C, p_begin, p_end);
        for (size_t r = 0; r < n; r++) {
            const float *row = qkv + r * C3;
            size_t at = (t0 + r) * C;
            pl->bad[t0 + r] = mode == PIVOT_PATH_REUSE ? !row_finite(row + 2 * C, C) : !row_finite(row, C3);
            if (mode != PIVOT_PATH_REUSE) {
                quantize_row(pl->q8 + at, row, q_inv, q_zp, C);
                quantize_row_s8(pl->k8 + at, row + C, k_inv, C);
            }
            quantize_row_s8(pl->v8 + at, row + 2 * C, v_inv, C);
        }
    }
}

/* Phase 2: attention items (image b, head h). probs_keep: where a path-1 encoder keeps its uint8
 * probabilities for later reuse (NULL: scratch), or where a reuse encoder reads them;
 * probs_cap: (B, NH, T, T) the probabilities applied, dequantized (code / 255), or NULL. An image
 * with a non-finite q, k or v row gets NaN outputs (and captured probabilities), as softmax
 * attention over a NaN gives in fp32. */
static void attention_items(const qplan *pl, qscratch *s, const qblock *qb, int tid, int nthreads, int mode,
                            uint8_t *probs_keep, float *probs_cap) {
    size_t T = pl->T, C = pl->C, NH = pl->NH, hd = C / NH, TT = T * T, i0, i1;
    const float *act = qb->act;
    float score_scale = act[PIVOT_QACT_Q_SCALE] * act[PIVOT_QACT_K_SCALE] * (1.0f / sqrtf((float)hd));
    float pv_scale = act[PIVOT_QACT_V_SCALE] * (1.0f / 255.0f);
    float one = 1.0f, inv255 = 255.0f;
    int32_t q_zp = (int32_t)act[PIVOT_QACT_Q_ZP];
    pivot_split_range(pl->B * NH, tid, nthreads, &i0, &i1);
    for (size_t T_i = 0; T_i < T; T_i++) s->zp[T_i] = q_zp;
    for (size_t T_i = 0; T_i < T; T_i++) s->row_scale[T_i] = one;
    for (size_t item = i0; item < i1; item++) {
        size_t b = item / NH, h = item % NH, base = b * T * C + h * hd;
        uint8_t *probs = probs_keep ? probs_keep + item * TT : s->probs;
        if (memchr(pl->bad + b * T, 1, T)) {
            for (size_t t = 0; t < T; t++)
                for (size_t j = 0; j < hd; j++) pl->cat[base + t * C + j] = NAN;
            if (probs_cap)
                for (size_t i = 0; i < TT; i++) probs_cap[item * TT + i] = NAN;
            continue;
        }
        if (mode != PIVOT_PATH_REUSE) {
            pivot_int8_pack(s->kpack, pl->k8 + base, T, hd, C, 1);
            epilogue e = {NULL, s->scores, T, s->row_scale, &score_scale, 1, NULL};
            gemm_rows(pl->tile, pl->q8 + base, C, s->zp, s->kpack, T, hd, 0, round_up(T, PANEL) / PANEL, T, 0, &e);
            pivot_softmax_rows(s->scores, T, T, T);
            for (size_t r = 0; r < T; r++) quantize_row(probs + r * T, s->scores + r * T, inv255, 0, T);
            if (probs_cap)
                for (size_t i = 0; i < TT; i++) probs_cap[item * TT + i] = (float)probs[i] * (1.0f / 255.0f);
        }
        pivot_int8_pack(s->vpack, pl->v8 + base, hd, T, 1, C);
        epilogue e = {NULL, pl->cat + b * T * C + h * hd, C, s->row_scale, &pv_scale, 1, NULL};
        gemm_rows(pl->tile, probs, T, s->zero, s->vpack, hd, T, 0, round_up(hd, PANEL) / PANEL, T, 0, &e);
    }
}

/* Phase 3: proj + residual (active encoders), then norm2, fc1, GELU, fc2 + residual. */
static void post_attention_rows(const qplan *pl, qscratch *s, const qblock *qb, int active, float *attn_cap,
                                float *mlp_cap, size_t r0, size_t r1) {
    size_t C = pl->C, H = pl->H;
    const float *act = qb->act;
    for (size_t t0 = r0; t0 < r1; t0 += ROW_TILE) {
        size_t n = t0 + ROW_TILE <= r1 ? ROW_TILE : r1 - t0;
        float *x = pl->x + t0 * C;
        if (active) {
            quantize_input(s, pl->cat + t0 * C, n, C, act[PIVOT_QACT_PROJ_IN_SCALE], act[PIVOT_QACT_PROJ_IN_ZP],
                           pl->per_token);
            linear_q(pl, s, s->branch, C, qb->proj_w, qb->proj_s, qb->proj_b, n, C, C, 0, round_up(C, PANEL) / PANEL);
            if (attn_cap) memcpy(attn_cap + t0 * C, s->branch, n * C * sizeof(float));
            add_rows(x, s->branch, n * C);
        }
        pivot_layernorm_rows(s->ln, x, qb->norm2_w, qb->norm2_b, n, C, pl->eps);
        quantize_input(s, s->ln, n, C, act[PIVOT_QACT_FC1_IN_SCALE], act[PIVOT_QACT_FC1_IN_ZP], pl->per_token);
        linear_q(pl, s, s->hidden, H, qb->fc1_w, qb->fc1_s, qb->fc1_b, n, H, C, 0, round_up(H, PANEL) / PANEL);
        pivot_gelu_rows(s->hidden, NULL, n, H);
        quantize_input(s, s->hidden, n, H, act[PIVOT_QACT_FC2_IN_SCALE], act[PIVOT_QACT_FC2_IN_ZP], pl->per_token);
        linear_q(pl, s, s->branch, C, qb->fc2_w, qb->fc2_s, qb->fc2_b, n, C, H, 0, round_up(C, PANEL) / PANEL);
        if (mlp_cap) memcpy(mlp_cap + t0 * C, s->branch, n * C * sizeof(float));
        add_rows(x, s->branch, n * C);
    }
}

void pivot_qencoder_qkv_rows(const pivot_qencoder *q, int tid, size_t i, int mode, size_t r0, size_t r1) {
    qscratch s = scratch_for(&q->pl, tid);
    qkv_rows(&q->pl, &s, &q->blocks[i], r0, r1, mode);
}

void pivot_qencoder_attention(const pivot_qencoder *q, int tid, int nthreads, size_t i, int mode, int keep,
                              float *probs_cap) {
    qscratch s = scratch_for(&q->pl, tid);
    attention_items(&q->pl, &s, &q->blocks[i], tid, nthreads, mode, keep ? q->pl.probs_keep : NULL, probs_cap);
}

void pivot_qencoder_post_rows(const pivot_qencoder *q, int tid, size_t i, int active, float *attn_cap, float *mlp_cap,
                              size_t r0, size_t r1) {
    qscratch s = scratch_for(&q->pl, tid);
    post_attention_rows(&q->pl, &s, &q->blocks[i], active, attn_cap, mlp_cap, r0, r1);
}

static int check_act(const float *act) {
    static const int scales[] = {PIVOT_QACT_QKV_IN_SCALE, PIVOT_QACT_Q_SCALE, PIVOT_QACT_K_SCALE, PIVOT_QACT_V_SCALE,
                                 PIVOT_QACT_PROJ_IN_SCALE, PIVOT_QACT_FC1_IN_SCALE, PIVOT_QACT_FC2_IN_SCALE};
    static const int zps[] = {PIVOT_QACT_QKV_IN_ZP, PIVOT_QACT_Q_ZP, PIVOT_QACT_PROJ_IN_ZP, PIVOT_QACT_FC1_IN_ZP,
                              PIVOT_QACT_FC2_IN_ZP};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        float v = act[scales[i]];
        if (!(v > 0.0f) || !isfinite(v) || !isfinite(1.0f / v)) return PIVOT_ERR_VALUE;
    }
    for (size_t i = 0; i < sizeof zps / sizeof zps[0]; i++) {
        float v = act[zps[i]];
        if (!(v >= 0.0f && v <= 255.0f) || v != floorf(v)) return PIVOT_ERR_VALUE;
    }
    return PIVOT_OK;
}

int pivot_qencoder_create(pivot_qencoder **out, float *x, const int8_t *weights, const float *floats,
                          const uint8_t *path, size_t B, size_t T, size_t C, size_t NH, size_t H, size_t D, float eps,
                          int per_token, int kernel, int threads) {
    *out = NULL;
    if (T == 0 || C == 0 || NH == 0 || H == 0 || D == 0 || C % NH) return PIVOT_ERR_SHAPE;
    if (threads < 1 || !(eps >= 0.0f)) return PIVOT_ERR_VALUE;
    if (!x || !weights || !floats || !path) return PIVOT_ERR_VALUE;
    int st, resolved;
    if ((st = pivot_modes_check_path(path, D, 0))) return st;
    if ((st = pivot_int8_kernel_resolve(&resolved, kernel))) return st;
    size_t nf, nb, part[4], BT, tmp;
    if ((st = pivot_qblock_num_floats(&nf, C, H)) || (st = pivot_qblock_num_bytes(&nb, C, H)) ||
        (st = block_byte_parts(part, C, H)))
        return st;
    if ((st = pivot_mul_size(&BT, B, T)) || (st = pivot_mul_size(&tmp, BT, 3 * C)) ||
        (st = pivot_mul_size(&tmp, T, T)) || (st = pivot_mul_size(&tmp, tmp, B * NH)) ||
        (st = pivot_mul_size(&tmp, ROW_TILE, H)) || (st = pivot_mul_size(&tmp, nb, D)))
        return st;
    if (T > (size_t)1 << 20 || C > (size_t)1 << 20 || H > (size_t)1 << 22) return PIVOT_ERR_OVERFLOW;
    for (size_t i = 0; i < D; i++)
        if ((st = check_act(floats + i * nf + (nf - PIVOT_QACT_COUNT)))) return st;

    pivot_qencoder *q = (pivot_qencoder *)calloc(1, sizeof *q);
    qblock *blocks = (qblock *)malloc(D * sizeof(qblock));
    if (!q || !blocks) {
        free(q);
        free(blocks);
        return PIVOT_ERR_NOMEM;
    }
    for (size_t i = 0; i < D; i++) qblock_at(&blocks[i], weights + i * nb, floats + i * nf, part, C, H);
    qplan *pl = &q->pl;
    pl->x = x;
    pl->blocks = blocks;
    pl->B = B; pl->T = T; pl->C = C; pl->NH = NH; pl->H = H; pl->D = D; pl->eps = eps;
    pl->per_token = per_token ? 1 : 0;
    pl->tile = tile_for(resolved);
    int any_reuse = 0;
    for (size_t i = 0; i < D; i++) any_reuse |= path[i] == PIVOT_PATH_REUSE;

    size_t off[11], o = 0;
    pl->scratch_bytes = round_up(scratch_layout(pl, off), 64);
    int nthreads = pivot_clamp_threads(threads);
    size_t at_qkv = carve(&o, BT * 3 * C * sizeof(float));
    size_t at_cat = carve(&o, BT * C * sizeof(float));
    size_t at_q8 = carve(&o, BT * C + PAD_BYTES);
    size_t at_k8 = carve(&o, BT * C);
    size_t at_v8 = carve(&o, BT * C);
    size_t at_keep = any_reuse ? carve(&o, B * NH * T * T + PAD_BYTES) : 0;
    size_t at_bad = carve(&o, BT);
    size_t at_scratch = carve(&o, pl->scratch_bytes * (size_t)nthreads);
    if (posix_memalign(&q->workspace, 64, o) != 0) {
        free(blocks);
        free(q);
        return PIVOT_ERR_NOMEM;
    }
    uint8_t *base = (uint8_t *)q->workspace;
    pl->qkv = (float *)(void *)(base + at_qkv);
    pl->cat = (float *)(void *)(base + at_cat);
    pl->q8 = base + at_q8;
    pl->k8 = (int8_t *)(base + at_k8);
    pl->v8 = (int8_t *)(base + at_v8);
    pl->probs_keep = any_reuse ? base + at_keep : NULL;
    pl->bad = base + at_bad;
    pl->scratch = base + at_scratch;
    /* the padding bytes past each uint8 buffer are read (times zero weights): keep them defined */
    memset(pl->q8 + BT * C, 0, PAD_BYTES);
    if (any_reuse) memset(pl->probs_keep + B * NH * T * T, 0, PAD_BYTES);
    q->blocks = blocks;
    *out = q;
    return PIVOT_OK;
}

void pivot_qencoder_destroy(pivot_qencoder *q) {
    if (!q) return;
    free(q->workspace);
    free(q->blocks);
    free(q);
}
