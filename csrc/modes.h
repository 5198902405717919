/* Encoder modes beyond active/skipped (area `modes`): TReX-style attention reuse and Trio-ViT-style
 * softmax-free ReLU linear attention. The per-item kernels run inside the engine's thread team
 * (csrc/engine.c calls them from its attention phase); the *_forward entry points run one
 * attention branch on the calling thread so that tests can hold each piece equal.
 *
 * Layouts are the engine's: qkv rows are timm's (3, NH, hd) split with row stride 3C, attention
 * output rows are the heads concatenated (row stride C), probabilities are (B, NH, T, T). */
#ifndef PIVOT_MODES_H
#define PIVOT_MODES_H

#include <stddef.h>
#include <stdint.h>

#include "pivot_status.h"

/* Path values: 0 skip, 1 active, 2 reuse the probabilities of the nearest earlier active encoder. */
enum { PIVOT_PATH_SKIP = 0, PIVOT_PATH_ACTIVE = 1, PIVOT_PATH_REUSE = 2 };
/* Attention kinds (pivot.ViTConfig.attention). */
enum { PIVOT_ATTENTION_SOFTMAX = 0, PIVOT_ATTENTION_RELU_LINEAR = 1 };
/* Denominator epsilon of ReLU linear attention (pivot.config.LINEAR_ATTENTION_EPS is the same). */
#define PIVOT_LINEAR_ATTENTION_EPS 1e-6f

/* PIVOT_OK when every value is 0/1/2, every 2 has a 1 before it, and no 2 appears with linear
 * attention (it has no probabilities to reuse); else PIVOT_ERR_VALUE. */
int pivot_modes_check_path(const uint8_t *path, size_t D, int attention_kind);

/* Query rows [q0, q1) of head h of image b reusing probabilities: attn = probs @ V_h. */
void pivot_reuse_attention_item(float *attn,        /* (B, T, C) concatenated heads */
                                const float *probs, /* (q1 - q0, T) rows q0.. of (b, h) */
                                const float *qkv,   /* (B, T, 3C); only the V columns are read */
                                size_t b, size_t h, size_t q0, size_t q1, size_t T, size_t C, size_t NH);

/* Floats of scratch one linear attention item needs. */
size_t pivot_linear_attention_scratch(size_t head_dim, size_t query_rows);

/* Query rows [q0, q1) of head h of image b, linear attention on Q and K that are ALREADY ReLU'd
 * (pivot_relu_qk_rows): attn = (phi(Q) (phi(K)^T V)) / (phi(Q) (phi(K)^T 1) + eps), row-wise.
 * fast: phi(Q) (phi(K)^T V) on pivot_gemm_nn_fast (a row's bits whatever the query range; the
 * engine at AVX2 up), else OpenBLAS. */
void pivot_linear_attention_item(float *attn,      /* (B, T, C) concatenated heads */
                                 float *scratch,   /* (pivot_linear_attention_scratch) */
                                 const float *qkv, /* (B, T, 3C) */
                                 size_t b, size_t h, size_t q0, size_t q1, size_t T, size_t C, size_t NH,
                                 float eps, int fast);

/* phi = ReLU on the Q and K columns (the first 2C of each 3C row), in place. */
void pivot_relu_qk_rows(float *qkv, /* (N, 3C) */
                        size_t N, size_t C);

/* Attention branch with reused probabilities: v = inp @ qkv_w[2C:3C]^T + qkv_b[2C:3C];
 * per head probs @ v_h; out = concat @ proj_w^T + proj_b. */
int pivot_reuse_attention_forward(float *out,          /* (B, T, C) */
                                  const float *inp,    /* (B, T, C) */
                                  const float *probs,  /* (B, NH, T, T) */
                                  const float *qkv_w,  /* (3C, C) */
                                  const float *qkv_b,  /* (3C) */
                                  const float *proj_w, /* (C, C) */
                                  const float *proj_b, /* (C) */
                                  size_t B, size_t T, size_t C, size_t NH);

/* ReLU linear attention branch (qkv, phi on q and k, per head linear attention, proj). */
int pivot_linear_attention_forward(float *out,          /* (B, T, C) */
                                   const float *inp,    /* (B, T, C) */
                                   const float *qkv_w,  /* (3C, C) */
                                   const float *qkv_b,  /* (3C) */
                                   const float *proj_w, /* (C, C) */
                                   const float *proj_b, /* (C) */
                                   size_t B, size_t T, size_t C, size_t NH, float eps);

#endif /* PIVOT_MODES_H */
