/* pivot's int8 path: the quantized ViT encoder steps, on the int8 GEMM kernels of qgemm.h.
 *
 * Integerization (operation reordering): every matrix product of an encoder takes 8-bit operands,
 * accumulates exactly in int32, and only then is dequantized with the product of the operand
 * scales (plus the bias). LayerNorm, softmax and GELU stay float.
 * The GEMM operands, the packed weight layout and the kernels: qgemm.h. */
#ifndef PIVOT_QUANT_H
#define PIVOT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "pivot_status.h"
#include "qgemm.h"

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
/* probs_cap: (B, NH, T, T) the probabilities this path-1 encoder applies, dequantized, or NULL;
 * rows: the query rows of each image to compute (T; fewer for the pooled tokens of the last
 * encoder, the other rows' outputs are then left unwritten). */
void pivot_qencoder_attention(const pivot_qencoder *q, int tid, int nthreads, size_t i, int mode, int keep,
                              float *probs_cap, size_t rows);
void pivot_qencoder_post_rows(const pivot_qencoder *q, int tid, size_t i, int active, float *attn_cap, float *mlp_cap,
                              size_t r0, size_t r1);

#endif /* PIVOT_QUANT_H */
