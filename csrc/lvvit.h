/* The whole model on pivot's engine: timm's ViT and LV-ViT ("All tokens matter: token labeling",
 * Jiang et al. 2021).
 *
 * What LV-ViT adds to a timm ViT, and where it runs:
 * - the convolutional patch embedding (TokenLabeling's PatchEmbed4_2): conv 7x7 stride 2 pad 3,
 *   then two conv 3x3 stride 1 pad 1, each followed by BatchNorm (eval: running statistics) and
 *   ReLU, then `proj`, a conv with kernel = stride = patch/2. The three stem convolutions run here
 *   as im2col + sgemm with BatchNorm FOLDED into their weights and a bias (done once when the
 *   model is built, pivot/lvvit.py fold_batchnorm); `proj` is the engine's patch embedding run on
 *   the stem's output map;
 * - residual branches divided by skip_lam and the token-labeling aux head: pivot_vit_forward_ex.
 * qkv without bias is the engine's qkv with a zero bias (packed by pivot/lvvit.py).
 *
 * Conventions as engine.h: outputs first, sizes last, NCHW images, row-major matrices. */
#ifndef PIVOT_LVVIT_H
#define PIVOT_LVVIT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "pivot_status.h"

/* 2-D convolution with a square kernel, symmetric zero padding and an optional ReLU:
 * out[b, co, y, x] = relu?(bias[co] + sum_{ci, ky, kx} weight[co, ci, ky, kx] *
 *                         inp[b, ci, y*stride + ky - pad, x*stride + kx - pad]),
 * Ho = (H + 2 pad - ksize) / stride + 1 (floor), likewise Wo. weight is torch's Conv2d layout.
 * Runs as im2col (column tiles of a few output rows) + sgemm on `threads` threads. */
int pivot_conv2d_forward(float *out,          /* (B, Cout, Ho, Wo) */
                         const float *inp,    /* (B, Cin, H, W) */
                         const float *weight, /* (Cout, Cin, ksize, ksize) */
                         const float *bias,   /* (Cout) */
                         size_t B, size_t Cin, size_t H, size_t W, size_t Cout, size_t ksize, size_t stride,
                         size_t pad, int relu, int threads);

/* A whole model: the stem (timm's patch embedding, or LV-ViT's conv stem then the projection),
 * the encoder stack and the heads, as pivot.ViTConfig describes it. vit describes the model as its
 * images see it (img_size, patch_size, in_chans of the input; embed_dim, depth, ...). With
 * stem_channels > 0 the conv stem turns the images into a (stem_channels, img/2, img/2) map first
 * and proj has kernel = stride = patch/2 over stem_channels channels; patch_size and img_size must
 * be even. stem_channels = 0: timm's patch embedding. */
typedef struct {
    pivot_vit_config vit;
    size_t stem_channels; /* 0: no conv stem */
    float skip_lam;       /* > 0; 1 = timm blocks */
    int aux_head;         /* 1: token-labeling aux head after the head's parameters */
    int attention_kind;   /* PIVOT_ATTENTION_SOFTMAX or PIVOT_ATTENTION_RELU_LINEAR (csrc/modes.h) */
    float linear_eps;     /* >= 0, denominator epsilon of ReLU linear attention */
} pivot_model_config;

/* The config the encoder engine sees (csrc/engine.h): with a conv stem, the projection's input
 * (img/2, patch/2, stem_channels in-channels). */
int pivot_model_engine_config(pivot_vit_config *out, const pivot_model_config *cfg);

/* Floats of the two parameter arrays:
 * params: the engine's flat array of the transformer (pivot_vit_num_params of the config that the
 *         projection sees: img/2, patch/2, stem_channels in-channels), then aux_head.weight (K, C)
 *         and aux_head.bias (K) when aux_head;
 * stem:   per stem conv i = 1, 2, 3 its BatchNorm-folded weight (stem_channels, cin_i, k_i, k_i)
 *         and bias (stem_channels), k = 7, 3, 3 (0 floats without a stem). */
int pivot_model_num_params(size_t *params, size_t *stem, const pivot_model_config *cfg);

/* The conv stem alone: three (BatchNorm-folded) conv + ReLU layers. */
int pivot_model_stem_forward(float *out,         /* (B, stem_channels, img/2, img/2) */
                             const float *images, /* (B, in_chans, img, img) */
                             const float *stem,   /* (stem floats of pivot_model_num_params) */
                             const pivot_model_config *cfg, size_t B, int threads);

/* Full forward pass; logits, captures, packed weights and path as pivot_vit_forward_ex (the
 * captured branches are the attention / MLP outputs before the division by skip_lam). packed is
 * pivot_vit_pack of the engine config's parameters (with int8: pivot_vit_pack_stem), or NULL.
 * Batches are processed in chunks when nothing is captured, so the stem's feature maps
 * (stem_channels * (img/2)^2 floats an image, 5.3x the image) never need more than a chunk's
 * worth of memory. */
int pivot_model_forward(float *logits,              /* (B, K) */
                        float *attn_capture,        /* (n_attention, B, T, C) or NULL */
                        float *mlp_capture,         /* (D, B, T, C) or NULL */
                        float *probs_capture,       /* (n_active, B, NH, T, T) or NULL */
                        const float *images,        /* (B, in_chans, img_size, img_size) */
                        const float *stem,          /* (stem floats) or NULL without a stem */
                        const float *params,        /* (params floats) */
                        const float *packed,        /* (pivot_vit_packed_size; int8: stem_packed_size) or NULL */
                        const pivot_int8_blocks *int8, /* int8 encoders, or NULL (params then hold no blocks) */
                        const pivot_model_config *cfg,
                        const uint8_t *path,        /* (D) */
                        size_t B, int threads);

#endif /* PIVOT_LVVIT_H */
