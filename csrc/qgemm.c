/* pivot's int8 GEMM kernels (AMX, VNNI, AVX-VNNI, AVX2, portable), their packing and the row quantizers.
 * See qgemm.h for the operand conventions and the packed weight layout.
 *
 * GEMM structure: a "tile" computes up to 8 rows x 2 panels (32 columns) of raw u8 x s8 dot
 * products over the whole reduction (K is at most a few thousand here, so a panel pair of W,
 * 32 * Kp bytes, stays in L1/L2 while the rows stream); the epilogue then subtracts
 * zp[m] * colsum[n] and either stores int32 or dequantizes to float (scale, bias). Loops run
 * panel pairs outside and row tiles inside, over row chunks that fit L2. */
#define _POSIX_C_SOURCE 200809L
#include "qgemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "gemm.h" /* pivot_amx_configure_tiles */
#include "threads.h"

#if PIVOT_X86_BUILD
#include <immintrin.h>
#endif

#define PANEL PIVOT_INT8_PANEL /* output columns per packed panel */
#define TILE_M 8         /* rows per micro tile */
#define TILE_NP 2        /* panels per micro tile */
#define CHUNK_ROWS 96    /* rows of A kept hot in L2 while the panels sweep */

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* ================================================================== dispatch */

int pivot_int8_kernel_supported(int kernel) {
    switch (kernel) {
    case PIVOT_INT8_KERNEL_PORTABLE: return 1;
#if PIVOT_X86_BUILD
    case PIVOT_INT8_KERNEL_AVX2: return __builtin_cpu_supports("avx2") ? 1 : 0;
    /* libgcc reports avxvnni only where the OS saves the YMM state (as for avx2) */
    case PIVOT_INT8_KERNEL_AVXVNNI:
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni")) ? 1 : 0;
    case PIVOT_INT8_KERNEL_VNNI:
        return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vnni")) ? 1 : 0;
    case PIVOT_INT8_KERNEL_AMX:
        return (pivot_int8_kernel_supported(PIVOT_INT8_KERNEL_VNNI) && pivot_amx_usable()) ? 1 : 0;
#endif
    default: return 0;
    }
}

/* The kernels best first (auto's preference), the SIMD level (csrc/cpu.h) each needs, and the
 * PIVOT_INT8_KERNEL name that caps at it. The codes' numeric order is not the preference order
 * (AVXVNNI came last), so resolution walks this table. */
static const struct {
    int kernel, level;
    const char *name;
} kernel_order[] = {
    {PIVOT_INT8_KERNEL_AMX, 3, "amx"},
    {PIVOT_INT8_KERNEL_VNNI, 2, "vnni"},
    {PIVOT_INT8_KERNEL_AVXVNNI, 1, "avxvnni"},
    {PIVOT_INT8_KERNEL_AVX2, 1, "avx2"},
    {PIVOT_INT8_KERNEL_PORTABLE, 0, "portable"},
};
#define N_KERNELS (int)(sizeof kernel_order / sizeof kernel_order[0])

const char *pivot_int8_kernel_name(int kernel) {
    for (int i = 0; i < N_KERNELS; i++)
        if (kernel_order[i].kernel == kernel) return kernel_order[i].name;
    return NULL;
}

int pivot_int8_kernel_resolve(int *out, int kernel) {
    if (kernel != PIVOT_INT8_KERNEL_AUTO) {
        if (!pivot_int8_kernel_supported(kernel)) return PIVOT_ERR_VALUE;
        *out = kernel;
        return PIVOT_OK;
    }
    int first = 0; /* capped by PIVOT_INT8_KERNEL: that kernel or a lesser one */
    const char *env = getenv("PIVOT_INT8_KERNEL");
    if (env && *env) {
        for (first = 0; first < N_KERNELS && strcmp(env, kernel_order[first].name); first++) {}
        if (first == N_KERNELS) return PIVOT_ERR_VALUE;
    }
    /* and by the SIMD level (PIVOT_SIMD, pivot_set_simd_level) */
    int level = pivot_simd_level();
    for (int i = first; i < N_KERNELS; i++)
        if (kernel_order[i].level <= level && pivot_int8_kernel_supported(kernel_order[i].kernel)) {
            *out = kernel_order[i].kernel;
            return PIVOT_OK;
        }
    *out = PIVOT_INT8_KERNEL_PORTABLE;
    return PIVOT_OK;
}

/* ================================================================== packing */

int pivot_int8_packed_bytes(size_t *out, size_t N, size_t K) {
    if (N == 0 || K == 0) return PIVOT_ERR_SHAPE;
    size_t Np = round_up(N, PANEL), Kp = round_up(K, 4), panels, sums;
    if (Np < N || Kp < K || pivot_mul_size(&panels, Np, Kp) || pivot_mul_size(&sums, Np, 4) ||
        panels > SIZE_MAX - sums - 4)
        return PIVOT_ERR_OVERFLOW;
    *out = panels + sums + 4; /* + the int32 largest |w| */
    return PIVOT_OK;
}

/* Column sums (PANEL) and largest |w| of one packed panel, Kp bytes deep. */
static void panel_sums(int32_t *sums, int32_t *wmax, const int8_t *panel, size_t Kp) {
    int32_t big = 0;
#if PIVOT_X86_BUILD
    /* SSE2 (x86-64 baseline): a 16-byte quarter of a step is 4 columns x 4 k; bytes widen to
     * int16 and vpmaddwd by ones leaves (k0+k1, k2+k3) of two columns per half */
    __m128i acc[4][2], hi8 = _mm_setzero_si128(), lo8 = _mm_set1_epi8((char)0xFF);
    const __m128i ones = _mm_set1_epi16(1), flip = _mm_set1_epi8((char)0x80);
    for (int q = 0; q < 4; q++) acc[q][0] = acc[q][1] = _mm_setzero_si128();
    for (size_t k4 = 0; k4 < Kp / 4; k4++)
        for (int q = 0; q < 4; q++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(panel + k4 * 4 * PANEL + 16 * q));
            __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8), hi = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);
            acc[q][0] = _mm_add_epi32(acc[q][0], _mm_madd_epi16(lo, ones));
            acc[q][1] = _mm_add_epi32(acc[q][1], _mm_madd_epi16(hi, ones));
            __m128i u = _mm_xor_si128(x, flip); /* signed order as unsigned */
            hi8 = _mm_max_epu8(hi8, u);
            lo8 = _mm_min_epu8(lo8, u);
        }
    for (int q = 0; q < 4; q++)
        for (int h = 0; h < 2; h++) {
            int32_t l[4];
            _mm_storeu_si128((__m128i *)(void *)l, acc[q][h]);
            sums[4 * q + 2 * h] = l[0] + l[1];
            sums[4 * q + 2 * h + 1] = l[2] + l[3];
        }
    uint8_t mx[16], mn[16];
    _mm_storeu_si128((__m128i *)(void *)mx, hi8);
    _mm_storeu_si128((__m128i *)(void *)mn, lo8);
    for (int i = 0; i < 16; i++) {
        int32_t a = (int32_t)mx[i] - 128, b = 128 - (int32_t)mn[i];
        big = a > big ? a : big;
        big = b > big ? b : big;
    }
#else
    for (int c = 0; c < PANEL; c++) sums[c] = 0;
    for (size_t k4 = 0; k4 < Kp / 4; k4++)
        for (int c = 0; c < PANEL; c++)
            for (int i = 0; i < 4; i++) {
                int32_t v = panel[(k4 * PANEL + (size_t)c) * 4 + (size_t)i];
                sums[c] += v;
                big = v > big ? v : (-v > big ? -v : big);
            }
#endif
    *wmax = big;
}

static void pack_unchecked(int8_t *packed, const int8_t *w, size_t N, size_t K, size_t sn, size_t sk) {
    size_t Np = round_up(N, PANEL), Kp = round_up(K, 4), K4 = K / 4;
    memset(packed, 0, Np * Kp);
    for (size_t p = 0; p < Np / PANEL; p++) {
        int8_t *panel = packed + p * PANEL * Kp;
        size_t n0 = p * PANEL, cols = N - n0 < PANEL ? N - n0 : PANEL, k0 = 0;
        if (sk == 1) { /* rows contiguous along k (weights, attention's K): 4-byte groups */
            for (size_t c = 0; c < cols; c++) {
                const int8_t *row = w + (n0 + c) * sn;
                for (size_t k4 = 0; k4 < K4; k4++) memcpy(panel + (k4 * PANEL + c) * 4, row + 4 * k4, 4);
            }
            k0 = 4 * K4;
        }
#if PIVOT_X86_BUILD
        else if (sn == 1 && cols == PANEL) { /* columns contiguous (attention's V^T): 4 x 16 byte transposes */
            for (size_t k4 = 0; k4 < K4; k4++) {
                const int8_t *r = w + 4 * k4 * sk + n0;
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)r);
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(r + sk));
                __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(r + 2 * sk));
                __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(r + 3 * sk));
                __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
                __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
                __m128i *o = (__m128i *)(void *)(panel + k4 * 4 * PANEL);
                _mm_storeu_si128(o, _mm_unpacklo_epi16(ab0, cd0));
                _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab0, cd0));
                _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab1, cd1));
                _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab1, cd1));
            }
            k0 = 4 * K4;
        }
#endif
        for (size_t c = 0; c < cols; c++) /* what the fast paths left: the K tail, or everything */
            for (size_t k = k0; k < K; k++) panel[((k / 4) * PANEL + c) * 4 + k % 4] = w[(n0 + c) * sn + k * sk];
    }
    int32_t sums[PANEL], wmax = 0;
    int8_t *tail = packed + Np * Kp;
    for (size_t p = 0; p < Np / PANEL; p++) { /* column sums in PANEL-sized steps: tail may be unaligned */
        int32_t big;
        panel_sums(sums, &big, packed + p * PANEL * Kp, Kp);
        memcpy(tail + p * PANEL * sizeof(int32_t), sums, sizeof sums);
        wmax = big > wmax ? big : wmax;
    }
    memcpy(tail + Np * sizeof(int32_t), &wmax, sizeof wmax);
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

/* Named accumulators, not an array: GCC kept c[r][j] arrays in registers only by copying them
 * between registers on every k step (a move per product), which cost a third of the tile's
 * speed; with names each row's two sums stay put (docs/performance.md). */
#define VNNI_ACC(r) __m512i c##r##a = _mm512_setzero_si512(), c##r##b = _mm512_setzero_si512();
#define VNNI_ROW(r)                                                                                         \
    if (MR > r) {                                                                                           \
        __m512i av = _mm512_set1_epi32(load_a4(a + (size_t)r * lda + 4 * k));                               \
        c##r##a = _mm512_dpbusd_epi32(c##r##a, av, w0);                                                     \
        if (NP > 1) c##r##b = _mm512_dpbusd_epi32(c##r##b, av, w1);                                         \
    }
#define VNNI_STORE(r)                                                                                       \
    if (MR > r) {                                                                                           \
        _mm512_storeu_si512((void *)(acc + (size_t)r * TILE_NP * PANEL), c##r##a);                          \
        if (NP > 1) _mm512_storeu_si512((void *)(acc + (size_t)r * TILE_NP * PANEL + PANEL), c##r##b);       \
    }

VNNI_TARGET __attribute__((always_inline))
static inline void vnni_tile_fixed(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels,
                                   size_t panel_bytes, size_t K4, const int MR, const int NP) {
    VNNI_ACC(0) VNNI_ACC(1) VNNI_ACC(2) VNNI_ACC(3) VNNI_ACC(4) VNNI_ACC(5) VNNI_ACC(6) VNNI_ACC(7)
    const int8_t *p1 = panels + panel_bytes;
    for (size_t k = 0; k < K4; k++) {
        __m512i w0 = _mm512_loadu_si512((const void *)(panels + k * 64));
        __m512i w1 = NP > 1 ? _mm512_loadu_si512((const void *)(p1 + k * 64)) : w0;
        VNNI_ROW(0) VNNI_ROW(1) VNNI_ROW(2) VNNI_ROW(3) VNNI_ROW(4) VNNI_ROW(5) VNNI_ROW(6) VNNI_ROW(7)
    }
    VNNI_STORE(0) VNNI_STORE(1) VNNI_STORE(2) VNNI_STORE(3) VNNI_STORE(4) VNNI_STORE(5) VNNI_STORE(6) VNNI_STORE(7)
}
#undef VNNI_ACC
#undef VNNI_ROW
#undef VNNI_STORE

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

/* Exact on AVX2 for any int8 weights: bytes widen to int16 and vpmaddwd adds pairs of int16
 * products in int32. A 16-byte quarter of a panel step holds 4 columns x 4 k; vpmaddwd leaves
 * each column's sum in two int32 lanes, which the end of the tile adds. The GEMM runs it only on
 * weights with a code outside [-63, 63] (attention's K, 8-bit weights of older files), unless the
 * caller vouches for A (see pivot_int8_gemm_rows). */
AVX2_TARGET __attribute__((always_inline))
static inline void avx2_wide_tile_fixed(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panel, size_t K4,
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
static void tile_avx2_wide(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels, size_t panel_bytes,
                           size_t K4, int mr, int np) {
    for (int j = 0; j < np; j++)
        for (int r = 0; r < mr; r += 2) {
            int32_t *out = acc + (size_t)r * TILE_NP * PANEL + (size_t)j * PANEL;
            const int8_t *panel = panels + (size_t)j * panel_bytes;
            if (mr - r >= 2) avx2_wide_tile_fixed(out, a + (size_t)r * lda, lda, panel, K4, 2);
            else avx2_wide_tile_fixed(out, a + (size_t)r * lda, lda, panel, K4, 1);
        }
}

/* Both 256-bit byte tiles (`avx2`, `avxvnni`) are 4 rows x 16 columns: 8 accumulators, the two
 * ymm of a packed panel step (64 bytes = 16 columns x 4 k) and the broadcast of A's 4 bytes;
 * they differ only in how one step multiplies and adds (MULADD(acc, a, w)), so one macro makes
 * each one's register tile (fixed row count) and its driver over the 8 x 2-panel call. */
#define BYTE_TILE_ROWS 4
#define DEFINE_BYTE_TILE(NAME, TARGET, MULADD)                                                              \
    TARGET __attribute__((always_inline)) static inline void NAME##_fixed(                                  \
        int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panel, size_t K4, const int MR) {         \
        __m256i c[BYTE_TILE_ROWS][2];                                                                        \
        const __m256i ones = _mm256_set1_epi16(1);                                                           \
        (void)ones;                                                                                          \
        for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();                             \
        for (size_t k = 0; k < K4; k++) {                                                                    \
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(panel + k * 64));                              \
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(panel + k * 64 + 32));                         \
            for (int r = 0; r < MR; r++) {                                                                   \
                __m256i av = _mm256_set1_epi32(load_a4(a + (size_t)r * lda + 4 * k));                        \
                c[r][0] = MULADD(c[r][0], av, w0);                                                           \
                c[r][1] = MULADD(c[r][1], av, w1);                                                           \
            }                                                                                                \
        }                                                                                                    \
        for (int r = 0; r < MR; r++) {                                                                       \
            _mm256_storeu_si256((__m256i *)(acc + (size_t)r * TILE_NP * PANEL), c[r][0]);                    \
            _mm256_storeu_si256((__m256i *)(acc + (size_t)r * TILE_NP * PANEL + 8), c[r][1]);                \
        }                                                                                                    \
    }                                                                                                        \
    TARGET static void NAME(int32_t *acc, const uint8_t *a, size_t lda, const int8_t *panels,                \
                            size_t panel_bytes, size_t K4, int mr, int np) {                                 \
        for (int j = 0; j < np; j++)                                                                         \
            for (int r = 0; r < mr; r += BYTE_TILE_ROWS) {                                                   \
                int32_t *out = acc + (size_t)r * TILE_NP * PANEL + (size_t)j * PANEL;                        \
                const int8_t *panel = panels + (size_t)j * panel_bytes;                                      \
                const uint8_t *ar = a + (size_t)r * lda;                                                     \
                switch (mr - r >= BYTE_TILE_ROWS ? BYTE_TILE_ROWS : mr - r) {                                \
                case 4: NAME##_fixed(out, ar, lda, panel, K4, 4); break;                                     \
                case 3: NAME##_fixed(out, ar, lda, panel, K4, 3); break;                                     \
                case 2: NAME##_fixed(out, ar, lda, panel, K4, 2); break;                                     \
                default: NAME##_fixed(out, ar, lda, panel, K4, 1); break;                                    \
                }                                                                                            \
            }                                                                                                \
    }

/* The fast AVX2 tile, for 7-bit weights (|w| <= 63): vpmaddubsw multiplies 32 u8 x s8 pairs and
 * adds neighbours into int16, exact since 2 * 255 * 63 < 2^15 (with 8-bit weights it would
 * saturate: ONNX Runtime's reduce_range keeps weights in 7 bits for the same reason); vpmaddwd by
 * ones adds those into int32 column sums of 4 k. 32 x 4 products per 2 multiplies. */
#define AVX2_MULADD(c, av, w) _mm256_add_epi32((c), _mm256_madd_epi16(_mm256_maddubs_epi16((av), (w)), ones))
DEFINE_BYTE_TILE(tile_avx2, AVX2_TARGET, AVX2_MULADD)

/* AVX-VNNI (VEX vpdpbusd on ymm, Alder Lake and later, Zen 5): one instruction multiplies 32
 * u8 x s8 pairs and adds each 4 into int32, exact for any int8 weights (no int16 step), so it
 * needs neither 7-bit weights nor a wide fallback. 4 rows x 16 columns rather than 6 x 16 (12
 * accumulators), whose 8-row calls end in a 2-row tile (measured slower: docs/int8.md). */
#define AVXVNNI_TARGET __attribute__((target("avx2,avxvnni")))
#define AVXVNNI_MULADD(c, av, w) _mm256_dpbusd_avx_epi32((c), (av), (w))
DEFINE_BYTE_TILE(tile_avxvnni, AVXVNNI_TARGET, AVXVNNI_MULADD)

#undef AVX2_MULADD
#undef AVXVNNI_MULADD
#undef DEFINE_BYTE_TILE

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
    if (kernel == PIVOT_INT8_KERNEL_AVXVNNI) return tile_avxvnni;
    if (kernel == PIVOT_INT8_KERNEL_AVX2) return tile_avx2;
#endif
    return tile_portable;
}

/* ================================================================== GEMM driver + epilogue */

typedef pivot_int8_epilogue epilogue;

/* The epilogue of a tile (mr rows of acc, ncols <= TILE_NP * PANEL columns): acc - zp[r] *
 * colsum[c], stored as int32 or dequantized as float(that) * (row_scale[r] * col_scale[c]) (+
 * bias[c]), a multiply then an add (no FMA: every level gives the portable bits). */
PIVOT_MULTIVERSION
static void apply_epilogue_portable(const int32_t *acc, int mr, size_t ncols, size_t m0, size_t n0,
                                    const int32_t *zp, const int32_t *colsum, const epilogue *e) {
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

#if PIVOT_X86_BUILD
__attribute__((target("avx512f"))) static void apply_epilogue_avx512(const int32_t *acc, int mr, size_t ncols,
                                                                     size_t m0, size_t n0, const int32_t *zp,
                                                                     const int32_t *colsum, const epilogue *e) {
    enum { V = TILE_NP * PANEL / 16 };
    __mmask16 m[V];
    __m512i cs_i[V];
    __m512 cs[V], b[V];
    for (int v = 0; v < V; v++) {
        size_t c = (size_t)v * 16, left = ncols > c ? ncols - c : 0;
        m[v] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        cs_i[v] = _mm512_maskz_loadu_epi32(m[v], colsum + c);
        cs[v] = e->out_i32 ? _mm512_setzero_ps()
                : e->col_scale_scalar ? _mm512_set1_ps(e->col_scale[0])
                : _mm512_maskz_loadu_ps(m[v], e->col_scale + n0 + c);
        b[v] = e->bias && !e->out_i32 && !e->col_scale_scalar ? _mm512_maskz_loadu_ps(m[v], e->bias + n0 + c)
                                                               : _mm512_setzero_ps();
    }
    for (int r = 0; r < mr; r++) {
        const int32_t *ar = acc + (size_t)r * TILE_NP * PANEL;
        __m512i z = _mm512_set1_epi32(zp[r]);
        if (e->out_i32) {
            int32_t *o = e->out_i32 + (m0 + (size_t)r) * e->ldo + n0;
            for (int v = 0; v < V; v++)
                if (m[v]) _mm512_mask_storeu_epi32(o + 16 * v, m[v], _mm512_sub_epi32(_mm512_loadu_si512(ar + 16 * v),
                                                                                       _mm512_mullo_epi32(z, cs_i[v])));
            continue;
        }
        float *o = e->out + (m0 + (size_t)r) * e->ldo + n0;
        __m512 rs = _mm512_set1_ps(e->row_scale[r]);
        for (int v = 0; v < V; v++) {
            if (!m[v]) continue;
            __m512 x = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(ar + 16 * v), _mm512_mullo_epi32(z, cs_i[v])));
            __m512 y = _mm512_mul_ps(x, _mm512_mul_ps(rs, cs[v]));
            if (e->bias && !e->col_scale_scalar) y = _mm512_add_ps(y, b[v]);
            _mm512_mask_storeu_ps(o + 16 * v, m[v], y);
        }
    }
}
#endif

static void apply_epilogue(const int32_t *acc, int mr, size_t ncols, size_t m0, size_t n0, const int32_t *zp,
                           const int32_t *colsum, const epilogue *e) {
#if PIVOT_X86_BUILD
    if (pivot_simd_level() >= PIVOT_SIMD_AVX512) {
        apply_epilogue_avx512(acc, mr, ncols, m0, n0, zp, colsum, e);
        return;
    }
#endif
    apply_epilogue_portable(acc, mr, ncols, m0, n0, zp, colsum, e);
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

static void gemm_rows(tile_fn tile, const uint8_t *a, size_t lda, const int32_t *zp, const int8_t *packed,
                      size_t N, size_t K, size_t p_begin, size_t p_end, size_t M, size_t m0, const epilogue *e,
                      int a_pairs_bounded) {
    size_t Np = round_up(N, PANEL), Kp = round_up(K, 4), panel_bytes = PANEL * Kp;
#if QUANT_HAVE_AMX
    if (tile == tile_amx && Kp % 64 == 0 && Kp <= AMX_MAX_KP) {
        gemm_rows_amx(a, lda, zp, packed, N, K, p_begin, p_end, M, m0, e);
        return;
    }
#endif
    const int32_t *colsum_all = (const int32_t *)(const void *)(packed + Np * Kp);
#if PIVOT_X86_BUILD
    int32_t wmax;
    memcpy(&wmax, colsum_all + Np, sizeof wmax);
    if (tile == tile_avx2 && wmax > 63 && !a_pairs_bounded) tile = tile_avx2_wide;
#endif
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

void pivot_int8_gemm_rows(const uint8_t *a, size_t lda, const int32_t *zp, const int8_t *packed, size_t N, size_t K,
                          size_t p_begin, size_t p_end, size_t M, size_t m0, const pivot_int8_epilogue *e, int kernel,
                          int a_pairs_bounded) {
    gemm_rows(tile_for(kernel), a, lda, zp, packed, N, K, p_begin, p_end, M, m0, e, a_pairs_bounded);
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
              round_up(j->N, PANEL) / PANEL, r1 - r0, r0, &e, 0);
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
static inline int32_t quant_code(float x, float inv, int32_t zp, int32_t lo, int32_t hi) {
    float v = x * inv;
    v = v == v ? v : 0.0f;
    v = v > 512.0f ? 512.0f : v;
    v = v < -512.0f ? -512.0f : v;
    v = (v + 12582912.0f) - 12582912.0f;
    int32_t q = (int32_t)v + zp;
    return q < lo ? lo : (q > hi ? hi : q);
}

/* The row quantizers' one formula: byte c = clamp(rint(x[c] * inv) + zp, lo, hi) (NaN -> 0 before
 * the zero point, |x * inv| clamped to 512 first); u8 codes are (zp, 0, 255), symmetric s8 ones
 * (0, -127, 127). Returns 1 when every x[c] is finite (the int8 encoder's NaN rows; checked in
 * the same pass). Portable, AVX2 and AVX-512 versions by the SIMD level give the same bytes (the
 * vector ones round with the explicit nearest-even mode, not MXCSR's). */
static int quantize_codes_portable(uint8_t *out, const float *x, float inv, int32_t zp, int32_t lo, int32_t hi,
                                   size_t C) {
    uint32_t bad = 0;
    for (size_t c = 0; c < C; c++) {
        uint32_t u;
        memcpy(&u, x + c, sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
        out[c] = (uint8_t)quant_code(x[c], inv, zp, lo, hi);
    }
    return !bad;
}

#if PIVOT_X86_BUILD
__attribute__((target("avx512f,avx512bw"))) static int quantize_codes_avx512(uint8_t *out, const float *x, float inv,
                                                                             int32_t zp, int32_t lo, int32_t hi,
                                                                             size_t C) {
    const __m512 vinv = _mm512_set1_ps(inv), big = _mm512_set1_ps(512.0f), nbig = _mm512_set1_ps(-512.0f);
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    __mmask16 finite = 0xFFFF;
    for (size_t c = 0; c < C; c += 16) {
        __mmask16 m = C - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (C - c)) - 1u);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
        finite &= _mm512_cmp_ps_mask(_mm512_sub_ps(xv, xv), _mm512_setzero_ps(), _CMP_EQ_OQ); /* inf - inf: NaN */
        __m512 v = _mm512_mul_ps(xv, vinv);
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
        v = _mm512_min_ps(_mm512_max_ps(v, nbig), big);
        __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzp);
        q = _mm512_min_epi32(_mm512_max_epi32(q, vlo), vhi);
        _mm512_mask_cvtepi32_storeu_epi8(out + c, m, q);
    }
    return finite == 0xFFFF;
}

__attribute__((target("avx2"))) static int quantize_codes_avx2(uint8_t *out, const float *x, float inv, int32_t zp,
                                                               int32_t lo, int32_t hi, size_t C) {
    const __m256 vinv = _mm256_set1_ps(inv), big = _mm256_set1_ps(512.0f), nbig = _mm256_set1_ps(-512.0f);
    const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    /* byte 0 of each int32 to the front of its 128-bit lane, then the two lanes' first dwords together */
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    __m256 finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    size_t c = 0;
    for (; c + 8 <= C; c += 8) {
        __m256 xv = _mm256_loadu_ps(x + c);
        finite = _mm256_and_ps(finite, _mm256_cmp_ps(_mm256_sub_ps(xv, xv), _mm256_setzero_ps(), _CMP_EQ_OQ));
        __m256 v = _mm256_mul_ps(xv, vinv);
        v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
        v = _mm256_min_ps(_mm256_max_ps(v, nbig), big);
        v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i q = _mm256_add_epi32(_mm256_cvttps_epi32(v), vzp);
        q = _mm256_min_epi32(_mm256_max_epi32(q, vlo), vhi);
        q = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(q, pick), join);
        _mm_storel_epi64((__m128i *)(void *)(out + c), _mm256_castsi256_si128(q));
    }
    int ok = _mm256_movemask_ps(finite) == 0xFF;
    if (c < C) ok &= quantize_codes_portable(out + c, x + c, inv, zp, lo, hi, C - c);
    return ok;
}
#endif

static int quantize_codes(uint8_t *out, const float *x, float inv, int32_t zp, int32_t lo, int32_t hi, size_t C) {
#if PIVOT_X86_BUILD
    int level = pivot_simd_level();
    if (level >= PIVOT_SIMD_AVX512) return quantize_codes_avx512(out, x, inv, zp, lo, hi, C);
    if (level >= PIVOT_SIMD_AVX2) return quantize_codes_avx2(out, x, inv, zp, lo, hi, C);
#endif
    return quantize_codes_portable(out, x, inv, zp, lo, hi, C);
}

int pivot_int8_quantize_row(uint8_t *out, const float *x, float inv, int32_t zp, size_t C) {
    return quantize_codes(out, x, inv, zp, 0, 255, C);
}

/* int8 symmetric: clamp(rint(x * inv), -127, 127), stored as int8. */
int pivot_int8_quantize_row_s8(int8_t *out, const float *x, float inv, size_t C) {
    return quantize_codes((uint8_t *)out, x, inv, 0, -127, 127, C);
}

/* Per-row dynamic range -> scale, zero point (see quant.h). */
void pivot_int8_row_params(float *scale, float *inv, int32_t *zp, const float *x, size_t C) {
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
    *zp = quant_code(-lo, is, 0, 0, 255);
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
        pivot_int8_quantize_row(out + n * C, x + n * C, inv_scale[per_row ? n : 0], zp[per_row ? n : 0], C);
    return PIVOT_OK;
}

int pivot_quantize_s8(int8_t *out, const float *x, float inv_scale, size_t N, size_t C) {
    if (C == 0) return PIVOT_ERR_SHAPE;
    if (N == 0) return PIVOT_OK;
    if (!out || !x || !isfinite(inv_scale)) return PIVOT_ERR_VALUE;
    size_t tmp;
    if (pivot_mul_size(&tmp, N, C)) return PIVOT_ERR_OVERFLOW;
    for (size_t n = 0; n < N; n++) pivot_int8_quantize_row_s8(out + n * C, x + n * C, inv_scale, C);
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
        pivot_int8_row_params(&scale[n], &inv, &zp[n], x + n * C, C);
        pivot_int8_quantize_row(out + n * C, x + n * C, inv, zp[n], C);
    }
    return PIVOT_OK;
}
