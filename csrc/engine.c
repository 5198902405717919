/* pivot's ViT encoder: one loop for every path (skip, active, reuse, ReLU linear attention) and
 * model (timm ViT / DeiT, LV-ViT's skip_lam and aux head). See engine.h for the parameter layout.
 *
 * Threading: a forward call runs a team of `threads` threads (csrc/threads.h) over the whole
 * network SPMD-style. Token-wise work (LayerNorm, every Linear, bias, GELU, residual) is split by
 * token rows, and each thread keeps the same rows from one encoder to the next, so only attention
 * needs all tokens: an encoder with attention costs two barriers (before and after attention,
 * which is split by (batch, head, query chunk)); a skipped encoder costs none.
 *
 * Memory: one workspace allocation per call, nothing allocated in the hot loop; the call only
 * reads the parameters, so concurrent calls on the same parameters are safe.
 *
 * Kernels follow the SIMD level (csrc/cpu.h): row kernels from csrc/rowops.h at every level;
 * Linears as OpenBLAS sgemm plus an epilogue pass at the portable level (the reference the tests
 * compare with), and from the AVX2 level, given packed weights (extras->packed, from
 * pivot_vit_pack), csrc/gemm.c's packed kernels with bias, GELU and the residual update fused;
 * from the AVX2 level q k^T and probabilities @ V run on its micro-tiles too. */
#define _POSIX_C_SOURCE 200809L
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "gemm.h"
#include "modes.h"
#include "pivot_blas.h"
#include "quant.h"
#include "rowops.h"
#include "threads.h"

#define TILE_ROWS 256    /* token rows per sgemm in token-wise phases (keeps activations in L2) */
#define ALIGN_FLOATS 16  /* 64-byte alignment of workspace sub-buffers */
#define CHUNK_BYTES ((size_t)12 << 20) /* activations of one chunk of a large batch (see pivot_vit_forward_ex) */

/* ================================================================== elementwise kernels */

/* out = inp @ weight^T (no bias), row-major, with leading dimensions. */
static void linear_nobias(float *out,          /* (N, OC), row stride ldo */
                          const float *inp,    /* (N, IC), row stride ldi */
                          const float *weight, /* (OC, IC) */
                          size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo) {
    if (N == 0) return;
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)IC, 1.0f, inp,
                      (int)ldi, weight, (int)IC, 0.0f, out, (int)ldo);
}

PIVOT_MULTIVERSION
static void add_bias_rows(float *x,          /* (N, C) */
                          const float *bias, /* (C) */
                          size_t N, size_t C) {
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++) x[n * C + c] += bias[c];
}

/* branch += bias (optional); capture = branch (optional); x += branch * scale, or with layer
 * scale x += branch * gamma * scale (scale = 1 / skip_lam, 1 for timm: multiplying by 1.0f is
 * exact, so plain ViTs compute what they did without the scale). */
PIVOT_MULTIVERSION
static void bias_capture_residual(float *x,           /* (N, C) */
                                  float *capture,     /* (N, C) or NULL */
                                  float *branch,      /* (N, C) */
                                  const float *bias,  /* (C) or NULL */
                                  const float *gamma, /* (C) layer scale, or NULL */
                                  float scale, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        float *br = branch + n * C, *xr = x + n * C;
        if (bias)
            for (size_t c = 0; c < C; c++) br[c] += bias[c];
        if (gamma)
            for (size_t c = 0; c < C; c++) xr[c] += br[c] * gamma[c] * scale;
        else
            for (size_t c = 0; c < C; c++) xr[c] += br[c] * scale;
        if (capture) memcpy(capture + n * C, br, C * sizeof(float));
    }
}

/* x = act(x + bias) in place for the activations other than exact GELU (pivot_gelu_rows):
 * tanh GELU 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), SiLU x sigmoid(x) and QuickGELU
 * x sigmoid(1.702 x). */
PIVOT_MULTIVERSION
static void act_rows(float *x, const float *bias, size_t N, size_t C, int act) {
    for (size_t n = 0; n < N; n++) {
        float *r = x + n * C;
        for (size_t c = 0; c < C; c++) {
            float v = r[c] + (bias ? bias[c] : 0.0f);
            if (act == PIVOT_ACT_GELU_TANH)
                r[c] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
            else if (act == PIVOT_ACT_SILU)
                r[c] = v / (1.0f + expf(-v));
            else
                r[c] = v / (1.0f + expf(-1.702f * v));
        }
    }
}

/* SwiGLU's gate on N rows of [g | x] (2H wide, fc1's bias already added): act(g) * x, compacted
 * in place into N contiguous rows of H (row n is written below where rows >= n are read). */
PIVOT_MULTIVERSION
static void glu_rows(float *h, size_t N, size_t H, int act) {
    for (size_t n = 0; n < N; n++) {
        float *g = h + n * 2 * H, *o = h + n * H;
        const float *x = g + H;
        act_rows(g, NULL, 1, H, act);
        for (size_t c = 0; c < H; c++) o[c] = g[c] * x[c];
    }
}

/* The MLP's activation on hidden rows, bias included. */
static void activation_rows(float *x, const float *bias, size_t N, size_t C, int act) {
    if (act == PIVOT_ACT_GELU) pivot_gelu_rows(x, bias, N, C);
    else act_rows(x, bias, N, C, act);
}

/* kt (hd, T) <- K^T hd^-0.5 of head h of image b. */
static void scaled_kt(float *kt, const float *qkv /* (B, T, 3C) */, size_t b, size_t h, size_t T, size_t C,
                      size_t NH) {
    size_t hd = C / NH, ld = 3 * C;
    const float *k = qkv + b * T * ld + C + h * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (size_t t = 0; t < T; t++)
        for (size_t d = 0; d < hd; d++) kt[d * T + t] = k[t * ld + d] * scale;
}

/* One attention work item: query rows [q0, q1) of head h of image b.
 * qkv rows are timm's (3, NH, hd) layout, so q, k, v of head h are column blocks of width hd at
 * offsets h*hd, C + h*hd, 2C + h*hd with row stride 3C: no gather or transpose is needed.
 * The probabilities go to `probs` when it is given (kept for reuse or captured), else to the
 * scratch. From AVX2 up q k^T and probabilities @ V run on the packed GEMM's micro-tiles
 * (csrc/gemm.h) against kt, the head's K^T scaled by hd^-0.5 (scaled_kt; the caller builds it
 * once for the query chunks of a head that follow each other on a thread). */
static void attention_item(float *attn,      /* (B, T, C) concatenated heads */
                           float *probs,     /* (q1 - q0, T) or NULL */
                           float *scratch,   /* (q1 - q0, T) */
                           const float *kt,  /* (hd, T) scaled_kt of (b, h) when fast, else unread */
                           const float *qkv, /* (B, T, 3C) */
                           size_t b, size_t h, size_t q0, size_t q1, size_t T, size_t C, size_t NH, int fast) {
    size_t hd = C / NH, ld = 3 * C;
    const float *base = qkv + b * T * ld;
    const float *q = base + q0 * ld + h * hd;
    const float *k = base + C + h * hd;
    const float *v = base + 2 * C + h * hd;
    size_t M = q1 - q0;
    float scale = 1.0f / sqrtf((float)hd);
    float *scores = probs ? probs : scratch;
    float *out = attn + (b * T + q0) * C + h * hd;
    if (fast) {
        pivot_gemm_nn_fast(scores, q, kt, M, hd, T, ld, T, T);
        pivot_softmax_rows(scores, M, T, T);
        pivot_gemm_nn_fast(out, scores, v, M, T, hd, T, ld, C);
        return;
    }
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)T, (int)hd, scale, q, (int)ld,
                      k, (int)ld, 0.0f, scores, (int)T);
    pivot_softmax_rows(scores, M, T, T);
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)hd, (int)T, 1.0f, scores,
                      (int)T, v, (int)ld, 0.0f, out, (int)C);
}

/* Query rows [q0, q1) of head h of image b reusing an earlier encoder's probabilities:
 * attn = probs @ V_h (only the V columns of qkv were computed). */
static void reuse_item(float *attn, const float *probs, const float *qkv, size_t b, size_t h, size_t q0, size_t q1,
                       size_t T, size_t C, size_t NH, int fast) {
    size_t hd = C / NH, ld = 3 * C;
    const float *v = qkv + b * T * ld + 2 * C + h * hd;
    float *out = attn + (b * T + q0) * C + h * hd;
    if (fast) pivot_gemm_nn_fast(out, probs, v, q1 - q0, T, hd, T, ld, C);
    else pivot_reuse_attention_item(attn, probs, qkv, b, h, q0, q1, T, C, NH);
}

/* ================================================================== model plan */

typedef struct {
    const float *norm1_w, *norm1_b; /* (C) (C) */
    const float *qkv_w, *qkv_b;     /* (3C, C) (3C) */
    const float *proj_w, *proj_b;   /* (C, C) (C) */
    const float *norm2_w, *norm2_b; /* (C) (C) */
    const float *fc1_w, *fc1_b;     /* (H, C) (H) */
    const float *fc2_w, *fc2_b;     /* (C, H) (C) */
    const float *ls1, *ls2;         /* (C) (C) layer scale, or NULL */
    const float *qn_w, *qn_b, *kn_w, *kn_b; /* (hd) each: q_norm and k_norm, or NULL */
    const float *an_w, *an_b;       /* (C) (C) attn.norm before proj (scale_attn_norm), or NULL */
    const float *mn_w, *mn_b;       /* (H) (H) mlp.norm before fc2 (scale_mlp_norm), or NULL */
    /* SwiGLU: fc1_w / fc1_b are (2H, C) / (2H), fc1_g's rows then fc1_x's */
    /* packed weights (csrc/gemm.h), all NULL when the call runs OpenBLAS */
    const float *qkv_p, *proj_p, *fc1_p, *fc2_p;
} block_params;

/* Points bp at the 12 tensors of a block packed in timm order, then the layer scales, the q/k
 * norms and the attention-output and MLP-hidden norms when the config has them; returns the
 * pointer past them. */
static const float *block_params_at(block_params *bp, const float *p, size_t C, size_t H, size_t hd,
                                    const pivot_vit_config *cfg) {
    int layer_scale = cfg->layer_scale, qk_norm = cfg->qk_norm;
    size_t H1 = cfg->swiglu ? 2 * H : H; /* fc1's outputs */
    bp->norm1_w = p; p += C;
    bp->norm1_b = p; p += C;
    bp->qkv_w = p; p += 3 * C * C;
    bp->qkv_b = p; p += 3 * C;
    bp->proj_w = p; p += C * C;
    bp->proj_b = p; p += C;
    bp->norm2_w = p; p += C;
    bp->norm2_b = p; p += C;
    bp->fc1_w = p; p += H1 * C;
    bp->fc1_b = p; p += H1;
    bp->fc2_w = p; p += C * H;
    bp->fc2_b = p; p += C;
    bp->ls1 = bp->ls2 = bp->qn_w = bp->qn_b = bp->kn_w = bp->kn_b = NULL;
    if (layer_scale) {
        bp->ls1 = p; p += C;
        bp->ls2 = p; p += C;
    }
    if (qk_norm) {
        bp->qn_w = p; p += hd;
        bp->qn_b = p; p += hd;
        bp->kn_w = p; p += hd;
        bp->kn_b = p; p += hd;
    }
    bp->an_w = bp->an_b = bp->mn_w = bp->mn_b = NULL;
    if (cfg->scale_attn_norm) {
        bp->an_w = p; p += C;
        bp->an_b = p; p += C;
    }
    if (cfg->scale_mlp_norm) {
        bp->mn_w = p; p += H;
        bp->mn_b = p; p += H;
    }
    bp->qkv_p = bp->proj_p = bp->fc1_p = bp->fc2_p = NULL; /* set by packed_walk */
    return p;
}

/* Everything a team needs for one forward call; shared read-only except the buffers, which the
 * threads write in disjoint row ranges between barriers. */
typedef struct {
    size_t B, T, C, NH, H, D;
    size_t H1;                /* fc1's outputs: H, or 2H for SwiGLU ([g | x]) */
    float eps;
    const uint8_t *path;      /* (D) */
    const block_params *blocks;

    /* optional stages (NULL: not run) */
    const float *images;      /* (B, in_chans, img, img) */
    size_t in_chans, img, patch, grid, prefix;
    const float *tokens, *pos_embed, *patch_w, *patch_b; /* (prefix, C) (Tpos, C) (C, K2) (C) */
    int pos_prefix;           /* 1: pos_embed covers the prefix tokens too (T rows), 0: the patches only */
    const float *patch_p;     /* packed patch_w, or NULL */
    const float *norm_pre_w, *norm_pre_b; /* (C) (C) or NULL */
    const float *patch_norm_w, *patch_norm_b; /* (C) (C) norm of the patch tokens before pos_embed, or NULL */
    float *logits;            /* (B, K), or (B, C) when K == 0 */
    const float *norm_w, *norm_b, *head_w, *head_b, *head_dist_w, *head_dist_b;
    size_t K;
    int pool, fc_norm, act, distilled, rms_norm;
    size_t pool_from;         /* first token that avg / max / map pool: prefix, or 0 with pool_include_prefix */
    const float *map[13];     /* attn_pool: latent, q.{w,b}, kv.{w,b}, proj.{w,b}, norm.{w,b}, fc1.{w,b}, fc2.{w,b} */
    float *pool_tmp;          /* (pool_floats) thread 0's scratch of the pooling head */
    float residual_scale;     /* 1 / skip_lam: x += branch * residual_scale (1 for timm) */
    const float *aux_w, *aux_b; /* (K, C) (K) LV-ViT's token-labeling head, or NULL */

    float *attn_capture;      /* (n_attention, B*T, C) or NULL: encoders with path != 0 */
    int attention_kind;       /* PIVOT_ATTENTION_SOFTMAX / _RELU_LINEAR */
    float linear_eps;
    float *probs;             /* (B, NH, T, T) workspace when an encoder reuses and nothing is captured */
    float *probs_capture;     /* (n_active, B, NH, T, T) softmax outputs of the path == 1 encoders, or NULL */
    float *mlp_capture;       /* (D, B*T, C) or NULL */

    /* workspace */
    float *x;                 /* (B*T, C) residual stream */
    float *qkv;               /* (B*T, 3C) */
    float *attn;              /* (B*T, C) concatenated heads */
    float *head_in;           /* (prefix*B, C) */
    float *head_tmp;          /* (B, K) */
    float *aux_max;           /* (threads, B, K) per-thread max of aux_head over patch tokens */
    float *scratch;           /* (threads, scratch_stride) */
    size_t scratch_stride;
    size_t q_chunks;          /* query chunks per (b, h) attention item */
    size_t last_rows;         /* query and MLP rows per image of the last encoder when only the pooled
                               * tokens (1, or 2 distilled) are read from it; 0: every row */
    int fast;                 /* attention products on the packed GEMM's micro-tiles (AVX2 up) */
    const pivot_int8_blocks *int8; /* int8 encoders, or NULL */
    const pivot_linear_inputs *lin; /* Linear inputs captured for calibration, or NULL */
    const pivot_qencoder *q;  /* their phases, bound to x once the workspace exists */
} forward_plan;

/* The model's norm on N rows of n: LayerNorm, or RmsNorm (weight only; b unread). */
static void norm_rows(const forward_plan *pl, float *out, const float *in, const float *w, const float *b, size_t N,
                      size_t n, float eps) {
    if (pl->rms_norm) pivot_rmsnorm_rows(out, in, w, N, n, eps);
    else pivot_layernorm_rows(out, in, w, b, N, n, eps);
}

/* Per-thread scratch layout (floats). */
typedef struct {
    float *xn;      /* (TILE_ROWS, C) */
    float *branch;  /* (TILE_ROWS, C) */
    float *hidden;  /* (TILE_ROWS, max(H, in_chans*patch*patch, K if aux head)) */
    float *scores;  /* (ceil(T / q_chunks), T) */
} thread_scratch;

static size_t round_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* Sizes of the scratch sub-buffers; all products were checked by plan_workspace. */
static void scratch_sizes(const forward_plan *pl, size_t *xn, size_t *hidden, size_t *scores) {
    size_t k2 = pl->images ? pl->in_chans * pl->patch * pl->patch : 0;
    size_t wide = pl->H1 > k2 ? pl->H1 : k2;
    if (pl->aux_w && pl->K > wide) wide = pl->K;
    *xn = round_up(TILE_ROWS * pl->C);
    *hidden = round_up(TILE_ROWS * wide);
    size_t qrows = (pl->T + pl->q_chunks - 1) / pl->q_chunks;
    *scores = round_up(qrows * pl->T) + round_up(pl->C / pl->NH * pl->T); /* + K^T of a head */
    if (pl->attention_kind == PIVOT_ATTENTION_RELU_LINEAR) {
        size_t lin = round_up(pivot_linear_attention_scratch(pl->C / pl->NH, qrows));
        if (lin > *scores) *scores = lin;
    }
}

static thread_scratch scratch_for(const forward_plan *pl, int tid) {
    size_t xn, hidden, scores;
    scratch_sizes(pl, &xn, &hidden, &scores);
    float *base = pl->scratch + (size_t)tid * pl->scratch_stride;
    thread_scratch s = {base, base + xn, base + 2 * xn, base + 2 * xn + hidden};
    return s;
}

/* Overflow-checked size of a product of up to three factors, rounded for alignment, added to *total. */
static int add_buffer(size_t *offset, size_t *total, size_t a, size_t b, size_t c) {
    size_t n;
    if (pivot_mul_size(&n, a, b) || pivot_mul_size(&n, n, c)) return PIVOT_ERR_OVERFLOW;
    if (n > SIZE_MAX - ALIGN_FLOATS || *total > SIZE_MAX - round_up(n)) return PIVOT_ERR_OVERFLOW;
    *offset = *total;
    *total += round_up(n);
    return PIVOT_OK;
}

/* Floats of the pooling head's scratch: a row for LayerNorm, or for attention pooling the
 * normalized tokens, k|v, q, the scores and four rows of C and H. T*3C was checked by the caller. */
static size_t pool_floats(const forward_plan *pl) {
    if (pl->pool != PIVOT_POOL_MAP) return 2 * pl->C;
    return pl->T * 3 * pl->C + pl->T + 4 * pl->C + pl->H;
}

/* Allocates the one workspace of a call (release it with pivot_workspace_release(*workspace,
 * *capacity)) and points the plan's buffers into it. */
static int plan_workspace(forward_plan *pl, int threads, float **workspace, size_t *capacity) {
    size_t BT, total = 0, o_x, o_qkv = 0, o_attn = 0, o_hin = 0, o_htmp = 0, o_aux = 0, o_scr, tmp_probs;
    int st;
    if ((st = pivot_mul_size(&BT, pl->B, pl->T))) return st;
    int any_active = 0;
    for (size_t i = 0; i < pl->D; i++) any_active |= pl->path[i] != 0;

    /* enough query chunks that every thread has attention work even at batch 1 */
    size_t items = pl->B * pl->NH; /* B*T*C was checked below before use; B*NH <= B*C */
    size_t want = 4 * (size_t)threads;
    pl->q_chunks = items >= want ? 1 : (want + items - 1) / items;
    if (pl->q_chunks > pl->T) pl->q_chunks = pl->T;

    if ((st = add_buffer(&o_x, &total, BT, pl->C, 1))) return st;
    any_active |= pl->lin != NULL;  /* the capture runs every encoder's attention */
    any_active &= pl->int8 == NULL; /* the int8 phases keep their own buffers */
    if (any_active) {
        if ((st = add_buffer(&o_qkv, &total, BT, pl->C, 3))) return st;
        if ((st = add_buffer(&o_attn, &total, BT, pl->C, 1))) return st;
    }
    /* probabilities of the last active encoder, kept for the reuse encoders after it */
    size_t o_probs = 0;
    int need_probs = 0;
    for (size_t i = 0; i < pl->D; i++) need_probs |= pl->path[i] == PIVOT_PATH_REUSE;
    need_probs &= pl->probs_capture == NULL && pl->int8 == NULL;
    if (need_probs && ((st = pivot_mul_size(&tmp_probs, pl->T, pl->T)) ||
                       (st = add_buffer(&o_probs, &total, pl->B * pl->NH, tmp_probs, 1))))
        return st;
    size_t o_pool = 0;
    if (pl->logits) {
        if ((st = add_buffer(&o_hin, &total, pl->distilled ? 2 : 1, pl->B, pl->C))) return st;
        if ((st = add_buffer(&o_htmp, &total, pl->B, pl->K, 1))) return st;
        if ((st = add_buffer(&o_pool, &total, pool_floats(pl), 1, 1))) return st;
        if (pl->aux_w && (st = add_buffer(&o_aux, &total, (size_t)threads, pl->B, pl->K))) return st;
    }
    /* per-thread scratch: check the products that scratch_sizes computes unchecked */
    size_t k2 = 0, wide, qrows = (pl->T + pl->q_chunks - 1) / pl->q_chunks, tmp;
    if (pl->images && ((st = pivot_mul_size(&k2, pl->in_chans, pl->patch)) ||
                       (st = pivot_mul_size(&k2, k2, pl->patch))))
        return st;
    wide = pl->H1 > k2 ? pl->H1 : k2;
    if (pl->aux_w && pl->K > wide) wide = pl->K;
    if ((st = pivot_mul_size(&tmp, TILE_ROWS, pl->C)) || (st = pivot_mul_size(&tmp, TILE_ROWS, wide)) ||
        (st = pivot_mul_size(&tmp, qrows, pl->T)) || (st = pivot_mul_size(&tmp, pl->C, pl->C)))
        return st;
    size_t xn, hidden, scores;
    scratch_sizes(pl, &xn, &hidden, &scores);
    size_t stride = 2 * xn;
    if (stride > SIZE_MAX - hidden || stride + hidden > SIZE_MAX - scores) return PIVOT_ERR_OVERFLOW;
    stride += hidden + scores;
    pl->scratch_stride = stride;
    if ((st = add_buffer(&o_scr, &total, stride, (size_t)threads, 1))) return st;

    size_t bytes;
    if ((st = pivot_mul_size(&bytes, total, sizeof(float)))) return st;
    float *ws = (float *)pivot_workspace_acquire(bytes, capacity);
    if (!ws) return PIVOT_ERR_NOMEM;
    pl->x = ws + o_x;
    pl->qkv = any_active ? ws + o_qkv : NULL;
    pl->attn = any_active ? ws + o_attn : NULL;
    pl->head_in = pl->logits ? ws + o_hin : NULL;
    pl->head_tmp = pl->logits ? ws + o_htmp : NULL;
    pl->pool_tmp = pl->logits ? ws + o_pool : NULL;
    pl->aux_max = pl->logits && pl->aux_w ? ws + o_aux : NULL;
    pl->scratch = ws + o_scr;
    pl->probs = need_probs ? ws + o_probs : NULL;
    *workspace = ws;
    return PIVOT_OK;
}

/* ================================================================== forward phases */

/* Patch embedding (im2col + sgemm), class/dist tokens and position embedding, for this thread's
 * share of patches. The patches of each image go through the product in fixed chunks of
 * EMBED_ROWS, whatever the thread count: OpenBLAS picks its kernels by the product's size, so
 * fixed chunks keep the tokens (and the int8 path's quantization of them) independent of threads. */
#define EMBED_ROWS TILE_ROWS
static void embed_phase(const forward_plan *pl, int tid, int nthreads) {
    thread_scratch s = scratch_for(pl, tid);
    size_t C = pl->C, T = pl->T, P = pl->patch, G = pl->grid, NP = G * G, img = pl->img;
    size_t K2 = pl->in_chans * P * P, chunks = (NP + EMBED_ROWS - 1) / EMBED_ROWS;
    /* On the packed GEMM (per-row arithmetic) a small batch's patches split among all threads: at
     * batch 1 one 256-row chunk kept the other threads waiting at the first barrier. On OpenBLAS
     * the chunks stay fixed: its kernels, so the rounding, follow the product's size. */
    if (pl->patch_p && pl->B * chunks < (size_t)nthreads) chunks = ((size_t)nthreads + pl->B - 1) / pl->B;
    size_t rows = (NP + chunks - 1) / chunks; /* <= EMBED_ROWS */
    size_t b0, b1, i0, i1;
    pivot_split_range(pl->B, tid, nthreads, &b0, &b1);
    for (size_t b = b0; b < b1; b++) {
        float *row = pl->x + b * T * C;
        for (size_t j = 0; j < pl->prefix * C; j++)
            row[j] = pl->pos_prefix ? pl->tokens[j] + pl->pos_embed[j] : pl->tokens[j];
    }
    pivot_split_range(pl->B * chunks, tid, nthreads, &i0, &i1);
    for (size_t item = i0; item < i1; item++) {
        size_t b = item / chunks, p0 = item % chunks * rows;
        if (p0 >= NP) continue;
        size_t m = NP - p0 < rows ? NP - p0 : rows;
        const float *image = pl->images + b * pl->in_chans * img * img;
        for (size_t i = 0; i < m; i++) {
            size_t p = p0 + i, gy = p / G, gx = p % G;
            float *col = s.hidden + i * K2;
            for (size_t ch = 0; ch < pl->in_chans; ch++)
                for (size_t ky = 0; ky < P; ky++)
                    memcpy(col + (ch * P + ky) * P, image + (ch * img + gy * P + ky) * img + gx * P,
                           P * sizeof(float));
        }
        float *out = pl->x + (b * T + pl->prefix + p0) * C;
        if (pl->patch_p)
            pivot_linear_forward(out, NULL, s.hidden, NULL, pl->patch_p, NULL, m, K2, C, K2, C, PIVOT_EPI_STORE, 1.0f);
        else
            linear_nobias(out, s.hidden, pl->patch_w, m, K2, C, K2, C);
        const float *pos = pl->pos_embed + ((pl->pos_prefix ? pl->prefix : 0) + p0) * C;
        if (pl->patch_norm_w) { /* timm's embed_norm_layer: proj + bias, norm, then pos_embed */
            add_bias_rows(out, pl->patch_b, m, C);
            norm_rows(pl, out, out, pl->patch_norm_w, pl->patch_norm_b, m, C, pl->eps);
            for (size_t i = 0; i < m * C; i++) out[i] += pos[i];
        } else {
            for (size_t i = 0; i < m; i++)
                for (size_t c = 0; c < C; c++) out[i * C + c] += pl->patch_b[c] + pos[i * C + c];
        }
    }
}

/* timm's qk_norm: LayerNorm over head_dim of each head's q and k, in place on m qkv rows. */
static void qk_norm_rows(const forward_plan *pl, const block_params *bp, float *q, size_t m) {
    size_t C = pl->C, hd = C / pl->NH;
    for (size_t i = 0; i < m; i++) {
        float *row = q + i * 3 * C;
        norm_rows(pl, row, row, bp->qn_w, bp->qn_b, pl->NH, hd, pl->eps);
        norm_rows(pl, row + C, row + C, bp->kn_w, bp->kn_b, pl->NH, hd, pl->eps);
    }
}

/* norm1 + qkv for rows [r0, r1). A reuse encoder (mode 2) computes only the V third
 * (into the V columns); linear attention applies phi = ReLU to Q and K (after qk_norm). With
 * `queries` < T (the last encoder, pooled tokens only) Q is computed for the first `queries`
 * tokens of each image alone, where the packed panels allow it. */
static void qkv_rows(const forward_plan *pl, const thread_scratch *s, const block_params *bp, size_t r0,
                     size_t r1, int mode, float *in_cap, float *qkv_cap, size_t queries) {
    size_t C = pl->C, T = pl->T;
    size_t first = mode == PIVOT_PATH_REUSE ? 2 * C : 0;
    if (!first && queries < T && bp->qkv_p && !bp->qn_w && pl->attention_kind == PIVOT_ATTENTION_SOFTMAX &&
        C % PIVOT_GEMM_PANEL == 0)
        first = C;
    for (size_t r = r0; r < r1; r += TILE_ROWS) {
        size_t m = r1 - r < TILE_ROWS ? r1 - r : TILE_ROWS;
        float *q = pl->qkv + r * 3 * C;
        norm_rows(pl, s->xn, pl->x + r * C, bp->norm1_w, bp->norm1_b, m, C, pl->eps);
        if (in_cap) memcpy(in_cap + r * C, s->xn, m * C * sizeof(float));
        if (first == C) /* Q of the pooled tokens among these rows; K and V below */
            for (size_t b = r / T; b * T < r + m; b++) {
                size_t lo = b * T > r ? b * T : r, hi = b * T + queries < r + m ? b * T + queries : r + m;
                if (lo < hi)
                    pivot_linear_forward(pl->qkv + lo * 3 * C, NULL, s->xn + (lo - r) * C, NULL, bp->qkv_p, bp->qkv_b,
                                         hi - lo, C, C, C, 3 * C, PIVOT_EPI_STORE, 1.0f);
            }
        if (bp->qkv_p && first % PIVOT_GEMM_PANEL == 0) { /* packed GEMM, bias fused */
            const float *panels = bp->qkv_p + first * pivot_gemm_padded_k(C); /* panel first / 32 */
            pivot_linear_forward(q + first, NULL, s->xn, NULL, panels, bp->qkv_b + first, m, C, 3 * C - first, C,
                                 3 * C, PIVOT_EPI_STORE, 1.0f);
            if (!first && bp->qn_w) qk_norm_rows(pl, bp, q, m);
            if (!first && pl->attention_kind == PIVOT_ATTENTION_RELU_LINEAR) pivot_relu_qk_rows(q, m, C);
        } else if (first) {
            linear_nobias(q + first, s->xn, bp->qkv_w + first * C, m, C, C, C, 3 * C);
            for (size_t i = 0; i < m; i++) add_bias_rows(q + i * 3 * C + first, bp->qkv_b + first, 1, C);
        } else {
            linear_nobias(q, s->xn, bp->qkv_w, m, C, 3 * C, C, 3 * C);
            add_bias_rows(q, bp->qkv_b, m, 3 * C);
            if (bp->qn_w) qk_norm_rows(pl, bp, q, m);
            if (pl->attention_kind == PIVOT_ATTENTION_RELU_LINEAR) pivot_relu_qk_rows(q, m, C);
        }
        if (qkv_cap) memcpy(qkv_cap + r * 3 * C, q, m * 3 * C * sizeof(float));
    }
}

/* For rows [r0, r1): (if active) proj + residual, then norm2 + MLP + residual. */
static void post_attention_rows(const forward_plan *pl, const thread_scratch *s, const block_params *bp,
                                int active, float *attn_cap, float *mlp_cap, size_t r0, size_t r1, size_t i) {
    size_t C = pl->C, H = pl->H, BT = pl->B * pl->T;
    const pivot_linear_inputs *lin = pl->lin; /* calibration captures of encoder i */
    for (size_t r = r0; r < r1; r += TILE_ROWS) {
        size_t m = r1 - r < TILE_ROWS ? r1 - r : TILE_ROWS;
        float *x = pl->x + r * C;
        float *acap = attn_cap ? attn_cap + r * C : NULL, *mcap = mlp_cap ? mlp_cap + r * C : NULL;
        /* scale_attn_norm: the attention output of these rows normalized in place before proj */
        if (active && bp->an_w)
            norm_rows(pl, pl->attn + r * C, pl->attn + r * C, bp->an_w, bp->an_b, m, C, pl->eps);
        if (lin) memcpy(lin->proj_in + (i * BT + r) * C, pl->attn + r * C, m * C * sizeof(float));
        if (bp->proj_p) { /* packed GEMMs with bias, GELU and the residual update fused */
            /* layer scale: the branch with its bias, then one pass scales it into the residual */
            if (active && bp->ls1) {
                pivot_linear_forward(s->branch, NULL, pl->attn + r * C, NULL, bp->proj_p, bp->proj_b, m, C, C, C, C,
                                     PIVOT_EPI_STORE, 1.0f);
                bias_capture_residual(x, acap, s->branch, NULL, bp->ls1, pl->residual_scale, m, C);
            } else if (active) {
                pivot_linear_forward(x, acap, pl->attn + r * C, NULL, bp->proj_p, bp->proj_b, m, C, C, C, C,
                                     PIVOT_EPI_RESIDUAL, pl->residual_scale);
            }
            norm_rows(pl, s->xn, x, bp->norm2_w, bp->norm2_b, m, C, pl->eps);
            int fused = pl->act == PIVOT_ACT_GELU && pl->H1 == H;
            pivot_linear_forward(s->hidden, NULL, s->xn, NULL, bp->fc1_p, bp->fc1_b, m, C, pl->H1, C, pl->H1,
                                 fused ? PIVOT_EPI_GELU : PIVOT_EPI_STORE, 1.0f);
            if (pl->H1 != H) glu_rows(s->hidden, m, H, pl->act);
            else if (!fused) act_rows(s->hidden, NULL, m, H, pl->act);
            if (bp->mn_w) norm_rows(pl, s->hidden, s->hidden, bp->mn_w, bp->mn_b, m, H, pl->eps);
        } else {
            if (active) {
                linear_nobias(s->branch, pl->attn + r * C, bp->proj_w, m, C, C, C, C);
                bias_capture_residual(x, acap, s->branch, bp->proj_b, bp->ls1, pl->residual_scale, m, C);
            }
            norm_rows(pl, s->xn, x, bp->norm2_w, bp->norm2_b, m, C, pl->eps);
            linear_nobias(s->hidden, s->xn, bp->fc1_w, m, C, pl->H1, C, pl->H1);
            if (pl->H1 != H) {
                add_bias_rows(s->hidden, bp->fc1_b, m, pl->H1);
                glu_rows(s->hidden, m, H, pl->act);
            } else {
                activation_rows(s->hidden, bp->fc1_b, m, H, pl->act);
            }
            if (bp->mn_w) norm_rows(pl, s->hidden, s->hidden, bp->mn_w, bp->mn_b, m, H, pl->eps);
        }
        if (lin) {
            memcpy(lin->fc1_in + (i * BT + r) * C, s->xn, m * C * sizeof(float));
            memcpy(lin->fc2_in + (i * BT + r) * H, s->hidden, m * H * sizeof(float));
        }
        if (bp->fc2_p) {
            if (bp->ls2) {
                pivot_linear_forward(s->branch, NULL, s->hidden, NULL, bp->fc2_p, bp->fc2_b, m, H, C, H, C,
                                     PIVOT_EPI_STORE, 1.0f);
                bias_capture_residual(x, mcap, s->branch, NULL, bp->ls2, pl->residual_scale, m, C);
            } else {
                pivot_linear_forward(x, mcap, s->hidden, NULL, bp->fc2_p, bp->fc2_b, m, H, C, H, C,
                                     PIVOT_EPI_RESIDUAL, pl->residual_scale);
            }
            continue;
        }
        linear_nobias(s->branch, s->hidden, bp->fc2_w, m, H, C, H, C);
        bias_capture_residual(x, mcap, s->branch, bp->fc2_b, bp->ls2, pl->residual_scale, m, C);
    }
}

/* Mode 1 with probs != NULL keeps the softmax output there ((B, NH, T, T)); mode 2
 * (reuse) reads it from probs instead of computing q k^T and softmax; linear attention replaces
 * both by pivot_linear_attention_item. */
static void attention_phase(const forward_plan *pl, const thread_scratch *s, int tid, int nthreads, int mode,
                            float *probs, size_t queries /* query rows per (b, h): T, or the pooled tokens */) {
    size_t QC = queries < pl->T ? 1 : pl->q_chunks, T = pl->T;
    float *kt = s->scores + round_up((T + pl->q_chunks - 1) / pl->q_chunks * T); /* see scratch_sizes */
    size_t i0, i1, kt_of = SIZE_MAX; /* the (b, h) whose K^T is in kt */
    pivot_split_range(pl->B * pl->NH * QC, tid, nthreads, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
        size_t qc = i % QC, bh = i / QC, h = bh % pl->NH, b = bh / pl->NH;
        size_t q0 = queries * qc / QC, q1 = queries * (qc + 1) / QC;
        if (q1 <= q0) continue;
        float *rows = probs ? probs + (bh * T + q0) * T : NULL; /* (q1 - q0, T) of (b, h) */
        if (mode == PIVOT_PATH_REUSE) {
            reuse_item(pl->attn, rows, pl->qkv, b, h, q0, q1, T, pl->C, pl->NH, pl->fast);
        } else if (pl->attention_kind == PIVOT_ATTENTION_RELU_LINEAR) {
            pivot_linear_attention_item(pl->attn, s->scores, pl->qkv, b, h, q0, q1, T, pl->C, pl->NH, pl->linear_eps,
                                        pl->fast);
        } else {
            if (pl->fast && kt_of != bh) {
                scaled_kt(kt, pl->qkv, b, h, T, pl->C, pl->NH);
                kt_of = bh;
            }
            attention_item(pl->attn, rows, s->scores, kt, pl->qkv, b, h, q0, q1, T, pl->C, pl->NH, pl->fast);
        }
    }
}

/* LV-ViT's token-labeling head on this thread's rows [r0, r1): final norm, aux_head (without its
 * bias, added after the max, which rounding cannot change) and the running max over the patch
 * tokens of each image into the thread's slot of aux_max. NaN propagates, as in torch.max. */
static void aux_head_rows(const forward_plan *pl, const thread_scratch *s, int tid, size_t r0, size_t r1) {
    size_t C = pl->C, T = pl->T, K = pl->K;
    float *pmax = pl->aux_max + (size_t)tid * pl->B * K;
    for (size_t i = 0; i < pl->B * K; i++) pmax[i] = -INFINITY;
    for (size_t r = r0; r < r1; r += TILE_ROWS) {
        size_t m = r1 - r < TILE_ROWS ? r1 - r : TILE_ROWS;
        norm_rows(pl, s->xn, pl->x + r * C, pl->norm_w, pl->norm_b, m, C, pl->eps);
        linear_nobias(s->hidden, s->xn, pl->aux_w, m, C, K, C, K);
        for (size_t i = 0; i < m; i++) {
            size_t b = (r + i) / T, t = (r + i) % T;
            if (t < pl->prefix) continue; /* class/dist tokens are not labeled */
            const float *v = s->hidden + i * K;
            float *pm = pmax + b * K;
            for (size_t k = 0; k < K; k++) pm[k] = (v[k] > pm[k] || v[k] != v[k]) ? v[k] : pm[k];
        }
    }
}

/* Row t of image b's final tokens into out: normalized by the final norm unless it runs after
 * pooling (fc_norm) or there is none. */
static void final_token(const forward_plan *pl, float *out, size_t b, size_t t) {
    const float *row = pl->x + (b * pl->T + t) * pl->C;
    if (pl->fc_norm || !pl->norm_w) memcpy(out, row, pl->C * sizeof(float));
    else norm_rows(pl, out, row, pl->norm_w, pl->norm_b, 1, pl->C, pl->eps);
}

/* timm's AttentionPoolLatent for image b into out (C): one latent query attends over the final
 * patch tokens (k, v = kv(tokens); the prefix tokens are left out unless pool_include_prefix),
 * per head softmax(q k^T hd^-0.5) v, proj, then y + mlp(norm(y)). */
static void map_pool(const forward_plan *pl, float *out, size_t b) {
    size_t C = pl->C, T = pl->T - pl->pool_from, H = pl->H, NH = pl->NH, hd = C / NH;
    const float *const *w = pl->map; /* latent, q, kv, proj, norm, fc1, fc2 (weight, bias pairs) */
    float *xn = pl->pool_tmp, *kv = xn + T * C, *q = kv + T * 2 * C, *sc = q + C, *o = sc + T, *y = o + C,
          *yn = y + C, *h = yn + C;
    for (size_t t = 0; t < T; t++) final_token(pl, xn + t * C, b, pl->pool_from + t);
    linear_nobias(kv, xn, w[3], T, C, 2 * C, C, 2 * C);
    add_bias_rows(kv, w[4], T, 2 * C);
    linear_nobias(q, w[0], w[1], 1, C, C, C, C);
    add_bias_rows(q, w[2], 1, C);
    float scale = 1.0f / sqrtf((float)hd);
    for (size_t hh = 0; hh < NH; hh++) {
        for (size_t t = 0; t < T; t++) {
            float acc = 0.0f;
            for (size_t d = 0; d < hd; d++) acc += q[hh * hd + d] * kv[t * 2 * C + hh * hd + d];
            sc[t] = acc * scale;
        }
        pivot_softmax_rows(sc, 1, T, T);
        for (size_t d = 0; d < hd; d++) {
            float acc = 0.0f;
            for (size_t t = 0; t < T; t++) acc += sc[t] * kv[t * 2 * C + C + hh * hd + d];
            o[hh * hd + d] = acc;
        }
    }
    linear_nobias(y, o, w[5], 1, C, C, C, C);
    add_bias_rows(y, w[6], 1, C);
    norm_rows(pl, yn, y, w[7], w[8], 1, C, pl->eps);
    linear_nobias(h, yn, w[9], 1, C, H, C, H);
    activation_rows(h, w[10], 1, H, pl->act);
    linear_nobias(out, h, w[11], 1, H, C, H, C);
    for (size_t c = 0; c < C; c++) out[c] += w[12][c] + y[c];
}

/* The pooled features of image b into out (C): the first token, the patch tokens pooled
 * (avg, max or their mean; NaN propagates as in torch.amax) or attention pooling. */
static void pool_image(const forward_plan *pl, float *out, size_t b) {
    size_t C = pl->C;
    if (pl->pool == PIVOT_POOL_TOKEN) {
        final_token(pl, out, b, 0);
    } else if (pl->pool == PIVOT_POOL_MAP) {
        map_pool(pl, out, b);
    } else {
        float *row = pl->pool_tmp, *mx = pl->pool_tmp + C;
        size_t n = pl->T - pl->pool_from;
        for (size_t c = 0; c < C; c++) {
            out[c] = 0.0f;
            mx[c] = -INFINITY;
        }
        for (size_t t = pl->pool_from; t < pl->T; t++) {
            final_token(pl, row, b, t);
            for (size_t c = 0; c < C; c++) {
                out[c] += row[c];
                mx[c] = (row[c] > mx[c] || row[c] != row[c]) ? row[c] : mx[c];
            }
        }
        for (size_t c = 0; c < C; c++) {
            float avg = out[c] / (float)n;
            out[c] = pl->pool == PIVOT_POOL_AVG ? avg : pl->pool == PIVOT_POOL_MAX ? mx[c] : 0.5f * (avg + mx[c]);
        }
    }
}

/* Final norm, pooling and the head(s); thread 0 only, after a barrier. nthreads: the team size
 * (how many aux_max slots the threads filled). Headless (K = 0): the pooled features are the output. */
static void head_phase(const forward_plan *pl, int nthreads) {
    size_t B = pl->B, C = pl->C, K = pl->K;
    for (size_t b = 0; b < B; b++) {
        float *f = pl->head_in + b * C;
        pool_image(pl, f, b);
        if (pl->fc_norm) norm_rows(pl, f, f, pl->norm_w, pl->norm_b, 1, C, pl->eps);
        if (pl->distilled) final_token(pl, pl->head_in + (B + b) * C, b, 1);
    }
    if (!K) {
        memcpy(pl->logits, pl->head_in, B * C * sizeof(float));
        return;
    }
    linear_nobias(pl->logits, pl->head_in, pl->head_w, B, C, K, C, K);
    add_bias_rows(pl->logits, pl->head_b, B, K);
    if (pl->distilled) {
        /* DeiT distilled at eval: (head(x[:, 0]) + head_dist(x[:, 1])) / 2, as timm */
        linear_nobias(pl->head_tmp, pl->head_in + B * C, pl->head_dist_w, B, C, K, C, K);
        add_bias_rows(pl->head_tmp, pl->head_dist_b, B, K);
        for (size_t i = 0; i < B * K; i++) pl->logits[i] = (pl->logits[i] + pl->head_tmp[i]) / 2.0f;
    }
    if (pl->aux_w) {
        /* LV-ViT at eval: head(x_cls) + 0.5 * max over patch tokens of aux_head(x_patch) */
        for (size_t i = 0; i < B * K; i++) {
            float m = pl->aux_max[i];
            for (int t = 1; t < nthreads; t++) {
                float v = pl->aux_max[(size_t)t * B * K + i];
                m = (v > m || v != v) ? v : m;
            }
            pl->logits[i] += 0.5f * (m + pl->aux_b[i % K]);
        }
    }
}

/* Phase 3 of encoder i on rows [r0, r1), at the plan's precision. */
static void post_phase(const forward_plan *pl, const thread_scratch *s, int tid, size_t i, int active, float *attn_cap,
                       float *mlp_cap, size_t r0, size_t r1) {
    if (pl->q) pivot_qencoder_post_rows(pl->q, tid, i, active, attn_cap, mlp_cap, r0, r1);
    else post_attention_rows(pl, s, &pl->blocks[i], active, attn_cap, mlp_cap, r0, r1, i);
}

/* The one encoder loop: per encoder its mode (0 skip, 1 active, 2 reuse), the probabilities an
 * active encoder keeps for the reuse encoders after it, the captures, and the precision's three
 * phases with the two barriers of an encoder with attention. */
static void forward_team(void *arg, pivot_team *tm, int tid, int nthreads) {
    const forward_plan *pl = (const forward_plan *)arg;
    thread_scratch s = scratch_for(pl, tid);
    size_t BT = pl->B * pl->T, BTC = BT * pl->C, r0, r1;
    pivot_split_range(BT, tid, nthreads, &r0, &r1);
    if (pl->q) pivot_qencoder_thread_init(pl->q, tid);

    if (pl->images) {
        embed_phase(pl, tid, nthreads);
        pivot_team_barrier(tm);
        /* norm_pre on this thread's rows, which it keeps through the encoders */
        for (size_t r = r0; pl->norm_pre_w && r < r1; r += TILE_ROWS) {
            size_t m = r1 - r < TILE_ROWS ? r1 - r : TILE_ROWS;
            norm_rows(pl, pl->x + r * pl->C, pl->x + r * pl->C, pl->norm_pre_w, pl->norm_pre_b, m, pl->C,
                                 pl->eps);
        }
    }
    size_t active_seen = 0;
    size_t probs_seen = 0, TT = pl->T * pl->T;
    float *last_probs = NULL; /* probabilities that a reuse encoder reads */
    for (size_t i = 0; i < pl->D; i++) {
        int mode = pl->path[i]; /* 0 skip, 1 active, 2 reuse */
        size_t rows = i + 1 == pl->D && pl->last_rows ? pl->last_rows : pl->T; /* query rows per image */
        int active = mode != 0;
        float *attn_cap = NULL;
        if (active || pl->lin) { /* a skipped encoder's attention runs only for the calibration capture */
            float *probs = NULL; /* where an active encoder keeps (or captures) its probabilities */
            int keep = mode == PIVOT_PATH_REUSE;
            if (mode == PIVOT_PATH_ACTIVE && pl->attention_kind == PIVOT_ATTENTION_SOFTMAX) {
                for (size_t j = i + 1; j < pl->D && pl->path[j] != PIVOT_PATH_ACTIVE; j++)
                    keep |= pl->path[j] == PIVOT_PATH_REUSE;
                if (pl->probs_capture) probs = pl->probs_capture + probs_seen++ * pl->B * pl->NH * TT;
                else if (keep) probs = pl->probs;
                last_probs = probs;
            } else if (mode == PIVOT_PATH_REUSE) {
                probs = last_probs;
            }
            if (pl->q) {
                pivot_qencoder_qkv_rows(pl->q, tid, i, mode, r0, r1);
            } else {
                float *in_cap = pl->lin ? pl->lin->qkv_in + i * BTC : NULL;
                float *qkv_cap = pl->lin ? pl->lin->qkv + i * 3 * BTC : NULL;
                qkv_rows(pl, &s, &pl->blocks[i], r0, r1, pl->lin ? PIVOT_PATH_ACTIVE : mode, in_cap, qkv_cap, rows);
            }
            pivot_team_barrier(tm);
            if (pl->q)
                pivot_qencoder_attention(pl->q, tid, nthreads, i, mode, keep,
                                         mode == PIVOT_PATH_ACTIVE ? probs : NULL, rows);
            else
                attention_phase(pl, &s, tid, nthreads, active ? mode : PIVOT_PATH_ACTIVE, probs, rows);
            pivot_team_barrier(tm);
            if (pl->attn_capture && active) attn_cap = pl->attn_capture + active_seen * BTC;
            active_seen += active;
        }
        float *mlp_cap = pl->mlp_capture ? pl->mlp_capture + i * BTC : NULL;
        if (rows == pl->T) {
            post_phase(pl, &s, tid, i, active, attn_cap, mlp_cap, r0, r1);
            continue;
        }
        /* the pooled tokens among this thread's rows: a row stays with the thread that updated it
         * in the encoder before (a skipped encoder has no barrier in between) */
        for (size_t b = r0 / pl->T; b * pl->T < r1; b++) {
            size_t lo = b * pl->T > r0 ? b * pl->T : r0, hi = b * pl->T + rows < r1 ? b * pl->T + rows : r1;
            if (lo < hi) post_phase(pl, &s, tid, i, active, NULL, NULL, lo, hi);
        }
    }
    if (pl->logits) {
        if (pl->aux_w) aux_head_rows(pl, &s, tid, r0, r1);
        pivot_team_barrier(tm);
        if (tid == 0) head_phase(pl, nthreads);
    }
}

/* Checks the sizes that every sgemm call receives as int. */
static int check_int_sizes(size_t BT, size_t C, size_t H) {
    size_t lim = (size_t)2147483647, tmp;
    if (BT > lim || C > lim / 3 || H > lim) return PIVOT_ERR_OVERFLOW;
    if (pivot_mul_size(&tmp, BT, 3 * C)) return PIVOT_ERR_OVERFLOW;
    return PIVOT_OK;
}

/* Allocates the workspace, binds the int8 phases to it, runs the team and frees it all. x_in
 * (optional) is the residual stream to start from, x_out (optional) where to leave it. */
static int run_plan(forward_plan *pl, int threads, const float *x_in, float *x_out) {
    float *workspace = NULL;
    size_t capacity = 0;
    pivot_qencoder *q = NULL;
    int st = plan_workspace(pl, threads, &workspace, &capacity);
    if (st) return st;
    size_t n = pl->B * pl->T * pl->C;
    if (x_in) memcpy(pl->x, x_in, n * sizeof(float));
    if (pl->int8)
        st = pivot_qencoder_create(&q, pl->x, pl->int8->weights, pl->int8->floats, pl->path, pl->B, pl->T, pl->C,
                                   pl->NH, pl->H, pl->D, pl->eps, pl->int8->per_token, pl->int8->kernel, threads);
    pl->q = q;
    if (!st) st = pivot_team_run(forward_team, pl, threads);
    if (!st && x_out) memcpy(x_out, pl->x, n * sizeof(float));
    pivot_qencoder_destroy(q);
    pivot_workspace_release(workspace, capacity);
    return st;
}

/* ================================================================== public kernels */

int pivot_attention_forward(float *out, const float *inp, const float *qkv_w, const float *qkv_b,
                            const float *proj_w, const float *proj_b, size_t B, size_t T, size_t C, size_t NH) {
    if (T == 0 || C == 0 || NH == 0 || C % NH) return PIVOT_ERR_SHAPE;
    if (B == 0) return PIVOT_OK;
    if (!out || !inp || !qkv_w || !qkv_b || !proj_w || !proj_b) return PIVOT_ERR_VALUE;
    size_t BT, n_qkv, n_cat, n_scores, total;
    int st;
    if ((st = pivot_mul_size(&BT, B, T)) || (st = check_int_sizes(BT, C, 1))) return st;
    if ((st = pivot_mul_size(&n_qkv, BT, 3 * C)) || (st = pivot_mul_size(&n_cat, BT, C)) ||
        (st = pivot_mul_size(&n_scores, T, T)))
        return st;
    if (n_qkv > SIZE_MAX - n_cat || n_qkv + n_cat > SIZE_MAX - n_scores) return PIVOT_ERR_OVERFLOW;
    total = n_qkv + n_cat + n_scores;
    if ((st = pivot_mul_size(&total, total, sizeof(float)))) return st;
    float *ws = (float *)malloc(total);
    if (!ws) return PIVOT_ERR_NOMEM;
    float *qkv = ws, *cat = ws + n_qkv, *scores = cat + n_cat;
    pivot_blas_guard_enter(1);
    linear_nobias(qkv, inp, qkv_w, BT, C, 3 * C, C, 3 * C);
    add_bias_rows(qkv, qkv_b, BT, 3 * C);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) attention_item(cat, NULL, scores, NULL, qkv, b, h, 0, T, T, C, NH, 0);
    linear_nobias(out, cat, proj_w, BT, C, C, C, C);
    add_bias_rows(out, proj_b, BT, C);
    pivot_blas_guard_leave();
    free(ws);
    return PIVOT_OK;
}

int pivot_mlp_forward(float *out, const float *inp, const float *fc1_w, const float *fc1_b, const float *fc2_w,
                      const float *fc2_b, size_t N, size_t C, size_t H) {
    if (C == 0 || H == 0) return PIVOT_ERR_SHAPE;
    if (N == 0) return PIVOT_OK;
    if (!out || !inp || !fc1_w || !fc1_b || !fc2_w || !fc2_b) return PIVOT_ERR_VALUE;
    size_t n_hidden;
    int st;
    if ((st = check_int_sizes(N, C, H)) || (st = pivot_mul_size(&n_hidden, N, H)) ||
        (st = pivot_mul_size(&n_hidden, n_hidden, sizeof(float))))
        return st;
    float *hidden = (float *)malloc(n_hidden);
    if (!hidden) return PIVOT_ERR_NOMEM;
    pivot_blas_guard_enter(1);
    linear_nobias(hidden, inp, fc1_w, N, C, H, C, H);
    pivot_gelu_rows(hidden, fc1_b, N, H);
    linear_nobias(out, hidden, fc2_w, N, H, C, H, C);
    add_bias_rows(out, fc2_b, N, C);
    pivot_blas_guard_leave();
    free(hidden);
    return PIVOT_OK;
}

int pivot_block_num_params(size_t *out, size_t C, size_t H) {
    /* 2C + 3C*C + 3C + C*C + C + 2C + H*C + H + C*H + C = 4C*C + 2H*C + 9C + H */
    size_t cc, hc, acc;
    if (pivot_mul_size(&cc, C, C) || pivot_mul_size(&cc, cc, 4) || pivot_mul_size(&hc, H, C) ||
        pivot_mul_size(&hc, hc, 2))
        return PIVOT_ERR_OVERFLOW;
    if (cc > SIZE_MAX - hc) return PIVOT_ERR_OVERFLOW;
    acc = cc + hc;
    size_t lin;
    if (pivot_mul_size(&lin, C, 9) || acc > SIZE_MAX - lin || acc + lin > SIZE_MAX - H) return PIVOT_ERR_OVERFLOW;
    *out = acc + lin + H;
    return PIVOT_OK;
}

int pivot_block_forward(float *out, const float *inp, const float *block, size_t B, size_t T, size_t C,
                        size_t NH, size_t H, float eps, int attn_active, int threads) {
    if (T == 0 || C == 0 || H == 0 || NH == 0 || C % NH) return PIVOT_ERR_SHAPE;
    if ((threads = pivot_clamp_threads(threads)) < 0 || !(eps >= 0.0f)) return PIVOT_ERR_VALUE;
    if (B == 0) return PIVOT_OK;
    if (!out || !inp || !block) return PIVOT_ERR_VALUE;
    size_t BT, n, np;
    int st;
    if ((st = pivot_mul_size(&BT, B, T)) || (st = check_int_sizes(BT, C, H)) ||
        (st = pivot_mul_size(&n, BT, C)) || (st = pivot_block_num_params(&np, C, H)))
        return st;
    if (attn_active > 1) return PIVOT_ERR_VALUE; /* reuse needs an earlier encoder's probabilities */
    block_params bp;
    pivot_vit_config plain;
    memset(&plain, 0, sizeof plain); /* timm's plain block */
    block_params_at(&bp, block, C, H, C / NH, &plain);
    uint8_t path = attn_active ? 1 : 0;
    forward_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.B = B; pl.T = T; pl.C = C; pl.NH = NH; pl.H = H; pl.H1 = H; pl.D = 1; pl.eps = eps;
    pl.residual_scale = 1.0f;
    pl.path = &path;
    pl.blocks = &bp;
    return run_plan(&pl, threads, inp, out);
}

/* ================================================================== whole model */

static int check_config(const pivot_vit_config *cfg) {
    if (!cfg) return PIVOT_ERR_VALUE;
    if (cfg->img_size == 0 || cfg->patch_size == 0 || cfg->in_chans == 0 || cfg->embed_dim == 0 ||
        cfg->depth == 0 || cfg->num_heads == 0 || cfg->mlp_hidden == 0)
        return PIVOT_ERR_VALUE;
    /* img_size % patch_size pixels at the right and bottom are not read (timm's conv floors the grid) */
    if (cfg->img_size < cfg->patch_size || cfg->embed_dim % cfg->num_heads) return PIVOT_ERR_SHAPE;
    if (!(cfg->norm_eps >= 0.0f)) return PIVOT_ERR_VALUE;
    if (cfg->act < PIVOT_ACT_GELU || cfg->act > PIVOT_ACT_SILU || cfg->pool < PIVOT_POOL_TOKEN ||
        cfg->pool > PIVOT_POOL_MAP || cfg->reg_tokens > 65536)
        return PIVOT_ERR_VALUE;
    size_t pre = pivot_vit_num_prefix(cfg);
    if (cfg->fc_norm && cfg->no_final_norm) return PIVOT_ERR_VALUE;
    if (cfg->swiglu && (cfg->pool == PIVOT_POOL_MAP || cfg->mlp_hidden > SIZE_MAX / 4)) return PIVOT_ERR_VALUE;
    if ((cfg->pool == PIVOT_POOL_TOKEN && pre == 0) ||
        (cfg->distilled && (cfg->no_class_token || cfg->pool != PIVOT_POOL_TOKEN || cfg->num_classes == 0)))
        return PIVOT_ERR_VALUE;
    return PIVOT_OK;
}

size_t pivot_vit_num_prefix(const pivot_vit_config *cfg) {
    return (size_t)!cfg->no_class_token + (size_t)(cfg->distilled != 0) + cfg->reg_tokens;
}

/* Walks the flat parameter array of engine.h's layout: take() returns the next a*b floats
 * (NULL when only sizes are wanted) and sets err on overflow. */
typedef struct {
    const float *base; /* params, or NULL to count */
    size_t off;
    int err;
} param_walk;

static const float *take(param_walk *w, size_t a, size_t b) {
    size_t n;
    if (w->err) return NULL;
    if (pivot_mul_size(&n, a, b) || w->off > SIZE_MAX - n) {
        w->err = PIVOT_ERR_OVERFLOW;
        return NULL;
    }
    const float *p = w->base ? w->base + w->off : NULL;
    w->off += n;
    return p;
}

/* Points the plan's parameters (when pl != NULL) and the blocks (when blocks != NULL; skipped
 * when with_blocks is 0, the int8 layout) into params; *total = floats of the array. */
static int model_layout(size_t *total, forward_plan *pl, block_params *blocks, const float *params,
                        const pivot_vit_config *cfg, int with_blocks) {
    int st = check_config(cfg);
    if (st) return st;
    forward_plan dummy;
    if (!pl) pl = &dummy;
    size_t C = cfg->embed_dim, H = cfg->mlp_hidden, K = cfg->num_classes, hd = C / cfg->num_heads;
    size_t G = cfg->img_size / cfg->patch_size, NP, pre = pivot_vit_num_prefix(cfg), k2;
    if (pivot_mul_size(&NP, G, G) || NP > SIZE_MAX - pre || pivot_mul_size(&k2, cfg->in_chans, cfg->patch_size) ||
        pivot_mul_size(&k2, k2, cfg->patch_size))
        return PIVOT_ERR_OVERFLOW;
    param_walk w = {params, 0, 0};
    pl->tokens = take(&w, pre, C);
    pl->pos_embed = take(&w, cfg->no_embed_class ? NP : NP + pre, C);
    pl->patch_w = take(&w, C, k2);
    pl->patch_b = take(&w, C, 1);
    pl->patch_norm_w = cfg->patch_norm ? take(&w, C, 1) : NULL;
    pl->patch_norm_b = cfg->patch_norm ? take(&w, C, 1) : NULL;
    pl->norm_pre_w = cfg->norm_pre ? take(&w, C, 1) : NULL;
    pl->norm_pre_b = cfg->norm_pre ? take(&w, C, 1) : NULL;
    if (with_blocks) {
        size_t block;
        if ((st = pivot_block_num_params(&block, C, H))) return st;
        block += (cfg->layer_scale ? 2 * C : 0) + (cfg->qk_norm ? 4 * hd : 0) + (cfg->scale_attn_norm ? 2 * C : 0) +
                 (cfg->scale_mlp_norm ? 2 * H : 0) + (cfg->swiglu ? H * C + H : 0); /* H*C was checked by
                                                                                      pivot_block_num_params */
        const float *first = take(&w, block, cfg->depth);
        for (size_t i = 0; blocks && first && i < cfg->depth; i++)
            block_params_at(&blocks[i], first + i * block, C, H, hd, cfg);
    }
    pl->norm_w = cfg->no_final_norm ? NULL : take(&w, C, 1);
    pl->norm_b = cfg->no_final_norm ? NULL : take(&w, C, 1);
    memset(pl->map, 0, sizeof pl->map);
    if (cfg->pool == PIVOT_POOL_MAP) {
        size_t sizes[13][2] = {{C, 1}, {C, C}, {C, 1}, {2 * C, C}, {2 * C, 1}, {C, C}, {C, 1},
                               {C, 1}, {C, 1}, {H, C}, {H, 1}, {C, H}, {C, 1}};
        for (int i = 0; i < 13; i++) pl->map[i] = take(&w, sizes[i][0], sizes[i][1]);
    }
    pl->head_w = pl->head_b = pl->head_dist_w = pl->head_dist_b = NULL;
    if (K) {
        pl->head_w = take(&w, K, C);
        pl->head_b = take(&w, K, 1);
    }
    if (cfg->distilled) {
        pl->head_dist_w = take(&w, K, C);
        pl->head_dist_b = take(&w, K, 1);
    }
    if (w.err) return w.err;
    *total = w.off;
    return PIVOT_OK;
}

int pivot_vit_num_params(size_t *out, const pivot_vit_config *cfg) {
    return model_layout(out, NULL, NULL, NULL, cfg, 1);
}

/* The packed weights of a model, in pivot_vit_pack's order; with_blocks = 0: the patch embedding's
 * panels alone (pivot_vit_pack_stem, the int8 models' fp32 stem). With blocks == NULL only the
 * total size is computed (into *size); otherwise patch_p and the blocks' packed pointers are set. */
static int packed_walk(size_t *size, const float **patch_p, block_params *blocks, const float *packed,
                       const pivot_vit_config *cfg, int with_blocks) {
    size_t C = cfg->embed_dim, H = cfg->mlp_hidden, k2 = cfg->in_chans * cfg->patch_size * cfg->patch_size;
    size_t n_patch, n_qkv, n_proj, n_fc1, n_fc2, block, total = 0, H1 = cfg->swiglu ? 2 * H : H;
    if (pivot_gemm_packed_size(&n_patch, C, k2) || pivot_gemm_packed_size(&n_qkv, 3 * C, C) ||
        pivot_gemm_packed_size(&n_proj, C, C) || pivot_gemm_packed_size(&n_fc1, H1, C) ||
        pivot_gemm_packed_size(&n_fc2, C, H))
        return PIVOT_ERR_OVERFLOW;
    block = n_qkv + n_proj; /* each term fits: the sum of four sizes that fit in memory is checked below */
    if (block < n_qkv || block + n_fc1 < block || block + n_fc1 + n_fc2 < block + n_fc1) return PIVOT_ERR_OVERFLOW;
    block += n_fc1 + n_fc2;
    if (with_blocks && (pivot_mul_size(&total, block, cfg->depth) || total > SIZE_MAX - n_patch))
        return PIVOT_ERR_OVERFLOW;
    total += n_patch;
    if (size) *size = total;
    if (!patch_p) return PIVOT_OK;
    const float *q = packed;
    *patch_p = q; q += n_patch;
    for (size_t i = 0; with_blocks && i < cfg->depth; i++) {
        blocks[i].qkv_p = q; q += n_qkv;
        blocks[i].proj_p = q; q += n_proj;
        blocks[i].fc1_p = q; q += n_fc1;
        blocks[i].fc2_p = q; q += n_fc2;
    }
    return PIVOT_OK;
}

int pivot_vit_packed_size(size_t *out, const pivot_vit_config *cfg) {
    int st = check_config(cfg);
    if (st) return st;
    return packed_walk(out, NULL, NULL, NULL, cfg, 1);
}

int pivot_vit_stem_packed_size(size_t *out, const pivot_vit_config *cfg) {
    int st = check_config(cfg);
    if (st) return st;
    return packed_walk(out, NULL, NULL, NULL, cfg, 0);
}

/* pivot_vit_pack (with_blocks = 1, params of pivot_vit_num_params) or pivot_vit_pack_stem
 * (with_blocks = 0, params without the blocks, as the int8 engine reads them). */
static int vit_pack(float *packed, const float *params, const pivot_vit_config *cfg, int with_blocks) {
    size_t np;
    int st = model_layout(&np, NULL, NULL, NULL, cfg, with_blocks);
    if (st) return st;
    if (!packed || !params) return PIVOT_ERR_VALUE;
    size_t C = cfg->embed_dim, H = cfg->mlp_hidden, D = cfg->depth, G = cfg->img_size / cfg->patch_size;
    size_t T = G * G + pivot_vit_num_prefix(cfg), k2 = cfg->in_chans * cfg->patch_size * cfg->patch_size;
    if ((st = check_int_sizes(T, C, cfg->swiglu ? 2 * H : H)) || k2 > 2147483647u) return st ? st : PIVOT_ERR_OVERFLOW;
    block_params *blocks = (block_params *)calloc(D, sizeof(block_params));
    if (!blocks) return PIVOT_ERR_NOMEM;
    forward_plan pl;
    const float *patch_p = NULL;
    st = model_layout(&np, &pl, blocks, params, cfg, with_blocks);
    if (!st) st = packed_walk(NULL, &patch_p, blocks, packed, cfg, with_blocks);
    if (!st) st = pivot_gemm_pack((float *)patch_p, pl.patch_w, C, k2);
    for (size_t i = 0; with_blocks && i < D && !st; i++) {
        const block_params *bp = &blocks[i];
        if ((st = pivot_gemm_pack((float *)bp->qkv_p, bp->qkv_w, 3 * C, C)) ||
            (st = pivot_gemm_pack((float *)bp->proj_p, bp->proj_w, C, C)) ||
            (st = pivot_gemm_pack((float *)bp->fc1_p, bp->fc1_w, cfg->swiglu ? 2 * H : H, C)))
            break;
        st = pivot_gemm_pack((float *)bp->fc2_p, bp->fc2_w, C, H);
    }
    free(blocks);
    return st;
}

int pivot_vit_pack(float *packed, const float *params, const pivot_vit_config *cfg) {
    return vit_pack(packed, params, cfg, 1);
}

int pivot_vit_pack_stem(float *packed, const float *params, const pivot_vit_config *cfg) {
    return vit_pack(packed, params, cfg, 0);
}

int pivot_vit_forward(float *logits, float *attn_capture, float *mlp_capture, const float *images,
                      const float *params, const pivot_vit_config *cfg, const uint8_t *path, size_t B,
                      int threads) {
    return pivot_vit_forward_ex(logits, attn_capture, mlp_capture, images, params, cfg, NULL, path, B, threads);
}

int pivot_vit_forward_ex(float *logits, float *attn_capture, float *mlp_capture, const float *images,
                         const float *params, const pivot_vit_config *cfg, const pivot_vit_extras *extras,
                         const uint8_t *path, size_t B, int threads) {
    size_t np;
    int st = pivot_vit_num_params(&np, cfg);
    if (st) return st;
    if (extras && (!(extras->skip_lam > 0.0f) || isinf(extras->skip_lam) ||
                   (extras->aux_head_w != NULL) != (extras->aux_head_b != NULL) ||
                   (extras->aux_head_w && (cfg->distilled || cfg->num_classes == 0))))
        return PIVOT_ERR_VALUE;
    if ((threads = pivot_clamp_threads(threads)) < 0) return PIVOT_ERR_VALUE;
    if (B == 0) return PIVOT_OK;
    if (!logits || !images || !params || !path) return PIVOT_ERR_VALUE;
    size_t C = cfg->embed_dim, H = cfg->mlp_hidden, D = cfg->depth, G = cfg->img_size / cfg->patch_size;
    size_t pre = pivot_vit_num_prefix(cfg), T = G * G + pre, BT, k2;
    int attention_kind = extras ? extras->attention_kind : PIVOT_ATTENTION_SOFTMAX;
    if ((st = pivot_modes_check_path(path, D, attention_kind))) return st;
    if (extras && attention_kind == PIVOT_ATTENTION_RELU_LINEAR && !(extras->linear_eps >= 0.0f)) return PIVOT_ERR_VALUE;
    if (extras && extras->probs_capture && attention_kind != PIVOT_ATTENTION_SOFTMAX) return PIVOT_ERR_VALUE;
    const pivot_int8_blocks *int8 = extras ? extras->int8 : NULL;
    const pivot_linear_inputs *lin = extras ? extras->linear_inputs : NULL;
    if (lin && (int8 || attention_kind != PIVOT_ATTENTION_SOFTMAX || !lin->qkv_in || !lin->qkv || !lin->proj_in ||
                !lin->fc1_in || !lin->fc2_in))
        return PIVOT_ERR_VALUE;
    if (int8) { /* params without the blocks; int8 attention is softmax, its residual adds unscaled */
        /* the int8 encoder steps know timm's plain blocks only: refused, not ignored */
        if (attention_kind != PIVOT_ATTENTION_SOFTMAX || extras->skip_lam != 1.0f || !int8->weights || !int8->floats ||
            cfg->layer_scale || cfg->qk_norm || cfg->act != PIVOT_ACT_GELU || cfg->scale_attn_norm ||
            cfg->scale_mlp_norm || cfg->rms_norm || cfg->swiglu || cfg->patch_norm)
            return PIVOT_ERR_VALUE;
        if ((st = model_layout(&np, NULL, NULL, NULL, cfg, 0))) return st;
    }
    if ((st = pivot_mul_size(&BT, B, T)) || (st = check_int_sizes(BT, C, cfg->swiglu ? 2 * H : H)) ||
        (st = pivot_mul_size(&k2, cfg->in_chans * cfg->patch_size, cfg->patch_size)) ||
        k2 > 2147483647u || cfg->num_classes > 2147483647u)
        return st ? st : PIVOT_ERR_OVERFLOW;

    block_params *blocks = (block_params *)calloc(D, sizeof(block_params));
    if (!blocks) return PIVOT_ERR_NOMEM;
    forward_plan pl;
    memset(&pl, 0, sizeof pl);
    size_t used;
    st = model_layout(&used, &pl, blocks, params, cfg, !int8);
    if (!st && used != np) st = PIVOT_ERR_INTERNAL;
    if (!st && extras && extras->packed && pivot_simd_level() >= PIVOT_SIMD_AVX2)
        st = packed_walk(NULL, &pl.patch_p, blocks, extras->packed, cfg, !int8);
    if (st) {
        free(blocks);
        return st;
    }
    pl.B = B; pl.T = T; pl.C = C; pl.NH = cfg->num_heads; pl.H = H; pl.D = D; pl.eps = cfg->norm_eps;
    pl.H1 = cfg->swiglu ? 2 * H : H;
    pl.path = path;
    pl.blocks = blocks;
    pl.images = images;
    pl.in_chans = cfg->in_chans; pl.img = cfg->img_size; pl.patch = cfg->patch_size; pl.grid = G;
    pl.prefix = pre;
    pl.pos_prefix = !cfg->no_embed_class;
    pl.pool = cfg->pool;
    pl.fc_norm = cfg->fc_norm;
    pl.rms_norm = cfg->rms_norm;
    pl.pool_from = cfg->pool_include_prefix ? 0 : pre;
    pl.act = cfg->act;
    pl.distilled = cfg->distilled;
    pl.logits = logits;
    pl.K = cfg->num_classes;
    pl.attn_capture = attn_capture;
    pl.mlp_capture = mlp_capture;
    pl.residual_scale = extras ? (float)(1.0 / (double)extras->skip_lam) : 1.0f;
    pl.aux_w = extras ? extras->aux_head_w : NULL;
    pl.aux_b = extras ? extras->aux_head_b : NULL;
    pl.attention_kind = attention_kind;
    pl.fast = pivot_simd_level() >= PIVOT_SIMD_AVX2;
    pl.linear_eps = extras ? extras->linear_eps : 0.0f;
    pl.probs_capture = extras ? extras->probs_capture : NULL;
    pl.int8 = int8;
    pl.lin = lin;
    /* Only the pooled tokens of the last encoder reach the head (class pooling): its queries,
     * attention output, proj and MLP run on those rows alone (K and V on every token), which
     * saves most of that encoder's multiply-adds. Where every kernel of that encoder is per-row arithmetic (packed
     * GEMMs, pivot's attention tiles, the int8 encoders: AVX2 up) the logits are the same bits;
     * captures, LV-ViT's token head and OpenBLAS paths take every row. */
    const block_params *last = &blocks[D - 1];
    if (cfg->pool == PIVOT_POOL_TOKEN && !pl.aux_w && !attn_capture && !mlp_capture && !pl.probs_capture && !lin &&
        pivot_simd_level() >= PIVOT_SIMD_AVX2 &&
        (int8 || (last->qkv_p && last->proj_p && last->fc1_p && last->fc2_p)))
        pl.last_rows = cfg->distilled ? 2 : 1;
    /* A large batch runs in chunks of images, each through every encoder, so that the encoder's
     * activations (x, qkv, attention output: ~5 C floats per token) stay in the last-level cache
     * instead of streaming from memory in every phase (figures: docs/performance.md). The
     * logits of a chunk are those of a call with that chunk alone; against the whole batch in one
     * piece they differ in rounding only, as between any two batch sizes (the head's OpenBLAS
     * product rounds by its row count). Captures keep the whole batch in one piece: their layouts
     * are per batch. */
    size_t chunk = B;
    if (!attn_capture && !mlp_capture && !pl.probs_capture && !lin) {
        size_t per_image = T * C * 5 * sizeof(float);
        chunk = CHUNK_BYTES / per_image;
        if (chunk < 1) chunk = 1;
    }
    size_t image_floats = cfg->in_chans * cfg->img_size * cfg->img_size, out_floats = pl.K ? pl.K : C;
    for (size_t b0 = 0; !st && b0 < B; b0 += chunk) {
        pl.B = B - b0 < chunk ? B - b0 : chunk;
        pl.images = images + b0 * image_floats;
        pl.logits = logits + b0 * out_floats;
        st = run_plan(&pl, threads, NULL, NULL);
    }
    free(blocks);
    return st;
}
