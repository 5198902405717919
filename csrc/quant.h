/* pivot's int8 path: integer GEMM kernels and the quantized ViT encoder stack.
 *
 * Integerization (operation reordering): every matrix product of an encoder takes 8-bit operands,
 * accumulates exactly in int32, and only then is dequantized with the product of the operand
 * scales (plus the bias). LayerNorm, softmax and GELU stay float.
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
 * to 16). pivot_int8_packed_bytes gives the size.
 *
 * A rows are read 4 bytes at a time up to Kp: up to 3 bytes past K of each row are read (and
 * multiplied by zero padding), so A must be readable up to (M-1)*lda + Kp bytes.
 *
 * Kernels: PIVOT_INT8_KERNEL_AMX (AMX tiles, TDPBUSD, on products whose padded K is a multiple of
 * 64; the VNNI tile elsewhere), _VNNI (AVX-512 VNNI vpdpbusd), _AVX2 (vpmaddwd on int16, exact:
 * no int16 saturation) and _PORTABLE (plain C). All give the same int32 results bit for bit.
 * _AUTO picks the best one the CPU supports, capped by the environment variable
 * PIVOT_INT8_KERNEL=portable|avx2|vnni|amx (read on every call). */
#ifndef PIVOT_QUANT_H
#define PIVOT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "pivot_status.h"

enum {
    PIVOT_INT8_KERNEL_AUTO = 0,
    PIVOT_INT8_KERNEL_PORTABLE = 1,
    PIVOT_INT8_KERNEL_AVX2 = 2,
    PIVOT_INT8_KERNEL_VNNI = 3,
    PIVOT_INT8_KERNEL_AMX = 4,
};

/* 1 when this CPU can run `kernel` (PORTABLE always), else 0. */
int pivot_int8_kernel_supported(int kernel);

/* The kernel a call with `kernel` runs: AUTO -> the best supported one, capped by
 * PIVOT_INT8_KERNEL; another value -> itself when supported. PIVOT_ERR_VALUE when the kernel is
 * unknown or unsupported, or the environment variable has an unknown value. */
int pivot_int8_kernel_resolve(int *out, int kernel);

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

/* Dynamic per-row (per-token) asymmetric parameters: lo = min(0, min x), hi = max(0, max x),
 * scale = (hi - lo) / 255 (1 when hi == lo), inv_scale = 1 / scale, zp = clamp(rint(-lo * inv_scale),
 * 0, 255), all in float32; then quantizes as pivot_quantize_u8. Non-finite values are ignored
 * for the range. */
int pivot_quantize_u8_rows(uint8_t *out,      /* (N, C) */
                           float *scale,      /* (N) */
                           int32_t *zp,       /* (N) */
                           const float *x,    /* (N, C) */
                           size_t N, size_t C);

/* --------------------------------------------------------------------- quantized encoders */

/* Per-block activation quantization parameters, in this order in the float parameters
 * (zero points are integers stored as floats). k and v are symmetric int8 (no zero point);
 * attention probabilities are always uint8 with scale 1/255, zero point 0. */
enum {
    PIVOT_QACT_QKV_IN_SCALE, PIVOT_QACT_QKV_IN_ZP,
    PIVOT_QACT_Q_SCALE, PIVOT_QACT_Q_ZP,
    PIVOT_QACT_K_SCALE, PIVOT_QACT_V_SCALE,
    PIVOT_QACT_PROJ_IN_SCALE, PIVOT_QACT_PROJ_IN_ZP,
    PIVOT_QACT_FC1_IN_SCALE, PIVOT_QACT_FC1_IN_ZP,
    PIVOT_QACT_FC2_IN_SCALE, PIVOT_QACT_FC2_IN_ZP,
    PIVOT_QACT_COUNT
};

/* Floats per block: norm1.w, norm1.b (C each), qkv.bias, qkv.weight_scale (3C each), proj.bias,
 * proj.weight_scale (C each), norm2.w, norm2.b (C each), fc1.bias, fc1.weight_scale (H each),
 * fc2.bias, fc2.weight_scale (C each), then PIVOT_QACT_COUNT activation parameters. */
int pivot_qblock_num_floats(size_t *out, size_t C, size_t H);

/* Bytes per block of packed weights: qkv (3C, C), proj (C, C), fc1 (H, C), fc2 (C, H), each
 * from pivot_int8_pack and starting at a multiple of 64 bytes from the block's start. */
int pivot_qblock_num_bytes(size_t *out, size_t C, size_t H);

/* The int8 encoder phases that the engine's one encoder loop runs (csrc/engine.c,
 * pivot_vit_forward_ex with int8 weights): create binds the
 * quantized blocks to the engine's residual stream x and allocates the int8 buffers for up to
 * `threads` threads; each thread calls thread_init once, then per encoder i the three phases with
 * the engine's barriers between them (qkv_rows and post_rows on the thread's token rows
 * [r0, r1), attention split over the team). keep = 1: the uint8 probabilities of this active
 * encoder are kept for a later reuse encoder (mode 2, which reads them with keep = 1).
 * per_token = 1: the inputs of qkv, proj, fc1 and fc2 are quantized per token with dynamic
 * ranges instead of the calibrated per-tensor parameters. Captures (attn_cap, mlp_cap: the encoder's
 * (B*T, C) capture or NULL; rows r0..r1 are written) are the branch outputs before the residual add.
 * Non-finite values propagate as in fp32: a linear layer's input row with a NaN or infinity gives
 * a NaN output row, and an image with a non-finite q, k or v row NaN attention outputs. */
typedef struct pivot_qencoder pivot_qencoder;

int pivot_qencoder_create(pivot_qencoder **out,
                          float *x,                /* (B, T, C) the residual stream the phases update */
                          const int8_t *weights,   /* (D * pivot_qblock_num_bytes) */
                          const float *floats,     /* (D * pivot_qblock_num_floats) */
                          const uint8_t *path,     /* (D) */
                          size_t B, size_t T, size_t C, size_t NH, size_t H, size_t D, float eps, int per_token,
                          int kernel, int threads);
void pivot_qencoder_destroy(pivot_qencoder *q);
void pivot_qencoder_thread_init(const pivot_qencoder *q, int tid);
void pivot_qencoder_qkv_rows(const pivot_qencoder *q, int tid, size_t i, int mode, size_t r0, size_t r1);
/* probs_cap: (B, NH, T, T) the probabilities this path-1 encoder applies, dequantized, or NULL. */
void pivot_qencoder_attention(const pivot_qencoder *q, int tid, int nthreads, size_t i, int mode, int keep,
                              float *probs_cap);
void pivot_qencoder_post_rows(const pivot_qencoder *q, int tid, size_t i, int active, float *attn_cap, float *mlp_cap,
                              size_t r0, size_t r1);

#endif /* PIVOT_QUANT_H */
