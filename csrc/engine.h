/* pivot's ViT encoder (timm VisionTransformer / DeiT family, LV-ViT's extras).
 *
 * Conventions (llm.c style): outputs first, sizes last, a shape comment on every pointer.
 * Every public function returns a pivot_status (csrc/pivot_status.h) and never prints or exits.
 * Matrices are row-major; Linear weights have timm's (out_features, in_features) layout, so a
 * Linear is out = inp @ weight^T + bias.
 *
 * Parameters of a whole model live in ONE flat float array, close to timm's state-dict order:
 * the prefix tokens (NPRE, C) ([cls_token] [dist_token] [reg_token x R]), pos_embed (Tpos, C),
 * patch_embed.proj.{weight,bias}, [patch_embed.norm.{w,b}], [norm_pre.{w,b}], per block norm1.{w,b} attn.qkv.{w,b}
 * attn.proj.{w,b} norm2.{w,b} mlp.fc1.{w,b} mlp.fc2.{w,b} [ls1.gamma ls2.gamma]
 * [attn.q_norm.{w,b} attn.k_norm.{w,b}] [attn.norm.{w,b} (C)] [mlp.norm.{w,b} (H)],
 * the final norm (timm's norm or fc_norm).{w,b} unless no_final_norm,
 * [attn_pool: latent (C), q.{w,b}, kv.{w,b}, proj.{w,b}, norm.{w,b}, mlp.fc1.{w,b}, mlp.fc2.{w,b}],
 * [head.{w,b}] (K > 0), [head_dist.{w,b}]. Absent biases (qkv, patch) are zeros in the array.
 * A zero-initialized field of pivot_vit_config means DeiT's choice. */
#ifndef PIVOT_ENGINE_H
#define PIVOT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "pivot_status.h"
#include "rowops.h"
#include "threads.h"

typedef struct {
    size_t img_size;     /* input height = width, in pixels */
    size_t patch_size;   /* conv kernel = stride of the patch embedding */
    size_t in_chans;     /* image channels */
    size_t num_classes;  /* K */
    size_t embed_dim;    /* C */
    size_t depth;        /* D, number of encoders */
    size_t num_heads;    /* NH; C % NH == 0 */
    size_t mlp_hidden;   /* H, hidden size of the MLP */
    int distilled;       /* 1: tokens [cls, dist, patches] and a head_dist (DeiT distilled) */
    float norm_eps;      /* LayerNorm epsilon (1e-6 for DeiT) */
    /* timm VisionTransformer's options beyond DeiT (zero: DeiT) */
    int no_class_token;  /* 1: no cls token */
    size_t reg_tokens;   /* register tokens after cls (and dist) */
    int no_embed_class;  /* 1: pos_embed covers the patches only (Tpos = patches) */
    int norm_pre;        /* 1: LayerNorm of the tokens before the first encoder */
    int layer_scale;     /* 1: branches scaled per channel by ls1 / ls2 before the residual add */
    int qk_norm;         /* 1: LayerNorm (head_dim) of q and k per head */
    int act;             /* PIVOT_ACT_* of the MLPs */
    int pool;            /* PIVOT_POOL_* */
    int fc_norm;         /* 1: the final norm runs after pooling (timm's fc_norm) instead of before */
    int no_final_norm;   /* 1: no final norm at all (timm's final_norm=False) */
    int pool_include_prefix; /* 1: avg / max / avgmax / map pool over the prefix tokens too */
    int scale_attn_norm; /* 1: LayerNorm (C) of the attention output before proj (attn.norm) */
    int scale_mlp_norm;  /* 1: LayerNorm (H) of the MLP's hidden activations before fc2 (mlp.norm) */
    int rms_norm;        /* 1: every norm is timm's RmsNorm (weight only; the biases in the array are unread) */
    int swiglu;          /* 1: timm's SwiGLU MLP: fc2(act(fc1_g x) * fc1_x x); fc1 is (2H, C) = [fc1_g; fc1_x] */
    int patch_norm;      /* 1: a norm of the patch tokens before pos_embed (timm's embed_norm_layer) */
} pivot_vit_config;

enum { PIVOT_ACT_GELU = 0, PIVOT_ACT_GELU_TANH = 1, PIVOT_ACT_QUICK_GELU = 2, PIVOT_ACT_SILU = 3 };
/* Pooling of the final tokens: the first token, or over the patch tokens (all tokens with
 * pool_include_prefix) (avg, max, 0.5 * (avg + max), and timm's AttentionPoolLatent: one latent
 * query over them). */
enum { PIVOT_POOL_TOKEN = 0, PIVOT_POOL_AVG = 1, PIVOT_POOL_MAX = 2, PIVOT_POOL_AVGMAX = 3, PIVOT_POOL_MAP = 4 };

/* Tokens before the patches (cls, dist, registers). */
size_t pivot_vit_num_prefix(const pivot_vit_config *cfg);

/* ------------------------------------------------------------------ single branches */

/* pivot_attention_forward and pivot_mlp_forward run on the calling thread (the model and block
 * entry points are the threaded ones); they exist so that tests can hold each piece equal. */

/* Multi-head self-attention branch of a timm Block, without norm1 and the residual:
 * qkv = inp @ qkv_w^T + qkv_b split as timm's reshape(B, T, 3, NH, hd); per head
 * softmax(q k^T * hd^-0.5) v; heads concatenated; out = concat @ proj_w^T + proj_b. */
int pivot_attention_forward(float *out,          /* (B, T, C) */
                            const float *inp,    /* (B, T, C) */
                            const float *qkv_w,  /* (3C, C) */
                            const float *qkv_b,  /* (3C) */
                            const float *proj_w, /* (C, C) */
                            const float *proj_b, /* (C) */
                            size_t B, size_t T, size_t C, size_t NH);

/* MLP branch: out = gelu(inp @ fc1_w^T + fc1_b) @ fc2_w^T + fc2_b. */
int pivot_mlp_forward(float *out,         /* (N, C) */
                      const float *inp,   /* (N, C) */
                      const float *fc1_w, /* (H, C) */
                      const float *fc1_b, /* (H) */
                      const float *fc2_w, /* (C, H) */
                      const float *fc2_b, /* (C) */
                      size_t N, size_t C, size_t H);

/* One pre-norm encoder. attn_active = 1: x + attn(norm1(x)) then + mlp(norm2(.));
 * attn_active = 0 (skipped): out = x + mlp(norm2(x)) only. `block` points at the block's
 * 12 parameters packed in timm order (norm1.w, norm1.b, qkv.w, qkv.b, proj.w, proj.b, norm2.w,
 * norm2.b, fc1.w, fc1.b, fc2.w, fc2.b); pivot_block_num_params gives its length. */
int pivot_block_forward(float *out,         /* (B, T, C) */
                        const float *inp,   /* (B, T, C) */
                        const float *block, /* (pivot_block_num_params) */
                        size_t B, size_t T, size_t C, size_t NH, size_t H, float eps,
                        int attn_active, int threads);

int pivot_block_num_params(size_t *out, size_t C, size_t H);

/* ------------------------------------------------------------------ whole model */

/* Number of floats in the flat parameter array of a config (checks the config first). */
int pivot_vit_num_params(size_t *out, const pivot_vit_config *cfg);

/* Full forward pass; logits are (B, num_classes), or (B, embed_dim) pooled features when
 * num_classes is 0 (headless). path[i] = 1: encoder i's attention runs; 0: skipped; 2: reuses the
 * probabilities of the nearest earlier active encoder (see pivot_vit_extras).
 * attn_capture (optional, may be NULL): attention-branch outputs (after proj, before the residual
 * add) of the ACTIVE encoders only, in order; mlp_capture (optional): MLP-branch outputs of every
 * encoder. threads >= 1 worker threads (the caller's thread included). */
int pivot_vit_forward(float *logits,              /* (B, K) */
                      float *attn_capture,        /* (n_active, B, T, C) or NULL */
                      float *mlp_capture,         /* (D, B, T, C) or NULL */
                      const float *images,        /* (B, in_chans, img_size, img_size) */
                      const float *params,        /* (pivot_vit_num_params) */
                      const pivot_vit_config *cfg,
                      const uint8_t *path,        /* (D) */
                      size_t B, int threads);

/* Options beyond timm's ViT (LV-ViT); pivot_vit_forward is pivot_vit_forward_ex with extras NULL,
 * which means skip_lam 1 and no aux head. */
typedef struct {
    float skip_lam;          /* > 0: every block computes x + branch / skip_lam (as x + branch * (1/skip_lam));
                              * the captured branches are taken BEFORE this division */
    const float *aux_head_w; /* (K, C) token-labeling head, or NULL; not with distilled. Logits become
                              * head(x_cls) + 0.5 * max over patch tokens of aux_head(norm(x_patch)) */
    const float *aux_head_b; /* (K), NULL exactly when aux_head_w is */
    /* attention kind (csrc/modes.h); zero = timm's softmax attention, nothing captured.
     * In every forward entry point a path value may also be 2 (reuse the probabilities of the
     * nearest earlier path-1 encoder: only V = norm1(x) @ qkv_w[2C:]^T + b is computed, then per
     * head probs @ v and proj; pivot_modes_check_path says which paths are valid); attn_capture
     * then holds every encoder with path != 0, in order. */
    int attention_kind;      /* PIVOT_ATTENTION_SOFTMAX (0) or PIVOT_ATTENTION_RELU_LINEAR (1) */
    float linear_eps;        /* >= 0, denominator epsilon of ReLU linear attention */
    float *probs_capture;    /* (n_active, B, NH, T, T) softmax outputs of the path-1 encoders, or NULL */
    /* the model's Linear weights packed by pivot_vit_pack (csrc/gemm.h), or NULL; with int8,
     * the patch embedding alone, packed by pivot_vit_pack_stem. Used only from the AVX2 level up
     * (csrc/cpu.h); below it OpenBLAS runs on the unpacked parameters. */
    const float *packed;     /* (pivot_vit_packed_size), with int8 (pivot_vit_stem_packed_size) */
    /* the encoders in int8 (csrc/quant.h), or NULL; params then hold no block parameters (the
     * stem, tokens and heads stay fp32, packed holds the stem only); probs_capture then holds the
     * dequantized uint8 probabilities the int8 attention applied; skip_lam must be 1 */
    const struct pivot_int8_blocks *int8;
    /* every encoder's Linear inputs, captured for int8 calibration, or NULL (fp32 softmax only) */
    const struct pivot_linear_inputs *linear_inputs;
} pivot_vit_extras;

/* The inputs of every encoder's Linear layers (for int8 calibration, pivot/quant.py), each
 * (D, B*T, width): qkv_in (width C, norm1's output), qkv (3C, qkv's output), proj_in (C, the
 * concatenated heads), fc1_in (C, norm2's output), fc2_in (H, GELU's output). With them every
 * encoder computes its attention: a skipped one (path 0) without adding it to the residual
 * stream (calibration sees what another path would activate), a reusing one (path 2) with its
 * full qkv. */
typedef struct pivot_linear_inputs {
    float *qkv_in, *qkv, *proj_in, *fc1_in, *fc2_in;
} pivot_linear_inputs;

/* Quantized encoder blocks: the packed int8 weights and float parameters of pivot_qblock_* layout
 * (csrc/quant.h), per_token activation quantization, and the int8 GEMM kernel (PIVOT_INT8_KERNEL_*). */
typedef struct pivot_int8_blocks {
    const int8_t *weights; /* (D * pivot_qblock_num_bytes) */
    const float *floats;   /* (D * pivot_qblock_num_floats) */
    int per_token;
    int kernel;
} pivot_int8_blocks;

/* Floats of the packed copy of a model's patch-embedding, qkv, proj, fc1 and fc2 weights. */
int pivot_vit_packed_size(size_t *out, const pivot_vit_config *cfg);

/* Fills packed (pivot_vit_packed_size floats) from the flat parameters: patch_embed.proj,
 * then per block qkv, proj, fc1, fc2, each packed by pivot_gemm_pack. */
int pivot_vit_pack(float *packed,        /* (pivot_vit_packed_size) */
                   const float *params,  /* (pivot_vit_num_params) */
                   const pivot_vit_config *cfg);

/* Floats of the packed patch-embedding weight alone (the first part of pivot_vit_pack's layout):
 * the fp32 stem of an int8 model, whose encoders carry their own int8 packing. */
int pivot_vit_stem_packed_size(size_t *out, const pivot_vit_config *cfg);

/* Fills packed (pivot_vit_stem_packed_size floats) from the parameters without the blocks (the
 * int8 engine's params: tokens, patch embedding, final norm, heads). */
int pivot_vit_pack_stem(float *packed,       /* (pivot_vit_stem_packed_size) */
                        const float *params, /* (pivot_vit_num_params less the blocks) */
                        const pivot_vit_config *cfg);

int pivot_vit_forward_ex(float *logits,              /* (B, K) */
                         float *attn_capture,        /* (n_active, B, T, C) or NULL */
                         float *mlp_capture,         /* (D, B, T, C) or NULL */
                         const float *images,        /* (B, in_chans, img_size, img_size) */
                         const float *params,        /* (pivot_vit_num_params) */
                         const pivot_vit_config *cfg,
                         const pivot_vit_extras *extras, /* or NULL */
                         const uint8_t *path,        /* (D) */
                         size_t B, int threads);

#endif /* PIVOT_ENGINE_H */
