/* pivot's int8 GEMM kernels (kernels layer): packing, the u8 x s8 GEMM and the row quantizers.
 *
 * Operands. The left operand A (activations) is uint8 with a zero point per row:
 * real = scale * (a - zero_point). The right operand W (weights, K and V of attention) is int8,
 * symmetric: real = scale * w. A product is then
 *     sum_k (a[m,k] - zp[m]) * w[n,k] = sum_k a[m,k] w[n,k] - zp[m] * colsum[n]
 * which is what VNNI's vpdpbusd (u8 x s8 dot products of 4) computes natively, corrected by the
 * column sums of W. Signed int8 activations are the special case zp = 128 (the "+128 trick").
 *
 * Packed W: the layout every kernel reads. Columns (output features) come in panels of 16, the
 * reduction dimension in groups of 4: byte (n, k) lives at panel n/16, offset
 * ((k/4) * 16 + n%16) * 4 + k%4 within the panel (Kp = K rounded up to 4, so a panel has 16*Kp
 * bytes); padding bytes are 0. After the panels, int32 column sums colsum[Np] (Np = N rounded up
 * to 16), then one int32: the largest |w| (the AVX2 kernel's choice of tile). pivot_int8_packed_bytes
 * gives the size.
 *
 * A rows are read 4 bytes at a time up to Kp: up to 3 bytes past K of each row are read (and
 * multiplied by zero padding), so A must be readable up to (M-1)*lda + Kp bytes.
 *
 * Kernels: PIVOT_INT8_KERNEL_AMX (AMX tiles, TDPBUSD, on products whose padded K is a multiple of
 * 64; the VNNI tile elsewhere), _VNNI (AVX-512 VNNI vpdpbusd), _AVXVNNI (VEX vpdpbusd on 256-bit
 * registers: AVX-VNNI, which Alder Lake and later and Zen 5 have, also without AVX-512), _AVX2 (vpmaddubsw + vpmaddwd on
 * weights in [-63, 63], where the int16 pair sums cannot saturate; otherwise vpmaddwd on bytes
 * widened to int16) and _PORTABLE (plain C). All give the same int32 results bit for bit.
 * _AUTO picks the best one the CPU supports (amx > vnni > avxvnni > avx2 > portable), capped by
 * the SIMD level (csrc/cpu.h: level 0 portable, 1 AVX-VNNI and AVX2, 2 adds VNNI, 3 AMX) and by
 * the environment variable PIVOT_INT8_KERNEL=portable|avx2|avxvnni|vnni|amx (that kernel or a
 * lesser one in that order; read on every call). */
#ifndef PIVOT_QGEMM_H
#define PIVOT_QGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "pivot_status.h"

#define PIVOT_INT8_PANEL 16 /* output columns per packed panel */

enum {
    PIVOT_INT8_KERNEL_AUTO = 0,
    PIVOT_INT8_KERNEL_PORTABLE = 1,
    PIVOT_INT8_KERNEL_AVX2 = 2,
    PIVOT_INT8_KERNEL_VNNI = 3,
    PIVOT_INT8_KERNEL_AMX = 4,
    PIVOT_INT8_KERNEL_AVXVNNI = 5,
    PIVOT_INT8_KERNEL_MAX = PIVOT_INT8_KERNEL_AVXVNNI, /* the largest code (codes are not in preference order) */
};

/* 1 when this CPU can run `kernel` (PORTABLE always), else 0. */
int pivot_int8_kernel_supported(int kernel);

/* The kernel a call with `kernel` runs: AUTO -> the best supported one, capped by
 * PIVOT_INT8_KERNEL; another value -> itself when supported. PIVOT_ERR_VALUE when the kernel is
 * unknown or unsupported, or the environment variable has an unknown value. */
int pivot_int8_kernel_resolve(int *out, int kernel);

/* The PIVOT_INT8_KERNEL name of a kernel code ("portable", "avx2", "avxvnni", "vnni", "amx"), or
 * NULL for AUTO or an unknown code. */
const char *pivot_int8_kernel_name(int kernel);

/* Bytes of a packed (N, K) weight (panels + column sums). */
int pivot_int8_packed_bytes(size_t *out, size_t N, size_t K);

/* Packs W (N, K) int8 with element (n, k) at w[n * stride_n + k * stride_k] (so V^T of attention
 * packs without a copy), and its column sums. */
int pivot_int8_pack(int8_t *packed,  /* (pivot_int8_packed_bytes) */
                    const int8_t *w, /* element (n, k) at n * stride_n + k * stride_k */
                    size_t N, size_t K, size_t stride_n, size_t stride_k);

/* out[m, n] = sum_k (a[m, k] - zero_point[m]) * w[n, k], exact in int32, with `packed` from
 * pivot_int8_pack. threads >= 1 (rows are split among them). */
int pivot_int8_gemm(int32_t *out,              /* (M, N) */
                    const uint8_t *a,          /* (M, lda), readable up to K rounded up to 4 */
                    const int32_t *zero_point, /* (M), each in [0, 255] */
                    const int8_t *packed,      /* (pivot_int8_packed_bytes(N, K)) */
                    size_t M, size_t N, size_t K, size_t lda, int kernel, int threads);

/* Asymmetric uint8 quantization of rows: out = clamp(rint(x * inv_scale[row]) + zp[row], 0, 255)
 * in float32 arithmetic (round half to even); NaN gives the zero point. per_row = 0: the scalar
 * inv_scale[0], zp[0] for every row. */
int pivot_quantize_u8(uint8_t *out,            /* (N, C) */
                      const float *x,          /* (N, C) */
                      const float *inv_scale,  /* (N) or (1) */
                      const int32_t *zp,       /* (N) or (1) */
                      size_t N, size_t C, int per_row);

/* Symmetric int8 quantization (attention's K and V): out = clamp(rint(x * inv_scale), -127, 127). */
int pivot_quantize_s8(int8_t *out,      /* (N, C) */
                      const float *x,   /* (N, C) */
                      float inv_scale, size_t N, size_t C);

/* Dynamic per-row (per-token) asymmetric parameters: lo = min(0, min x), hi = max(0, max x),
 * scale = (hi - lo) / 255 (1 when hi == lo), inv_scale = 1 / scale, zp = clamp(rint(-lo * inv_scale),
 * 0, 255), all in float32; then quantizes as pivot_quantize_u8. Non-finite values are ignored
 * for the range. */
int pivot_quantize_u8_rows(uint8_t *out,      /* (N, C) */
                           float *scale,      /* (N) */
                           int32_t *zp,       /* (N) */
                           const float *x,    /* (N, C) */
                           size_t N, size_t C);

/* ------------------------------------------------------- the pieces the int8 encoder builds on */

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
} pivot_int8_epilogue;

/* Rows [0, M) of A (pointer already at the first row; zp and e->row_scale likewise, e's outputs
 * at row m0 of the full output) times panels [p_begin, p_end) of the packed (N, K) weight, on the
 * calling thread, with a resolved kernel (pivot_int8_kernel_resolve). No argument checks.
 * a_pairs_bounded = 1 promises that a[m, k] + a[m, k + 1] <= 256 for every even k < K (softmax
 * probabilities in steps of 1/255): then u8 x s8 pair sums fit int16 even for 8-bit weights. */
void pivot_int8_gemm_rows(const uint8_t *a,        /* (M, lda), readable up to K rounded up to 4 */
                          size_t lda,
                          const int32_t *zp,       /* (M) */
                          const int8_t *packed,    /* (pivot_int8_packed_bytes(N, K)) */
                          size_t N, size_t K, size_t p_begin, size_t p_end, size_t M, size_t m0,
                          const pivot_int8_epilogue *e, int kernel, int a_pairs_bounded);

/* One row: out = clamp(rint(x * inv) + zp, 0, 255) (round half to even; NaN -> zp). Returns 1
 * when every x is finite, else 0. */
int pivot_int8_quantize_row(uint8_t *out, /* (C) */ const float *x, /* (C) */ float inv, int32_t zp, size_t C);

/* One row, int8 symmetric: out = clamp(rint(x * inv), -127, 127). Returns 1 when every x is finite. */
int pivot_int8_quantize_row_s8(int8_t *out, /* (C) */ const float *x, /* (C) */ float inv, size_t C);

/* One row's dynamic asymmetric parameters (see pivot_quantize_u8_rows). */
void pivot_int8_row_params(float *scale, float *inv, int32_t *zp, const float *x, /* (C) */ size_t C);

#endif /* PIVOT_QGEMM_H */
