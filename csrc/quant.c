/* pivot's int8 encoder phases: the quantized ViT encoder steps the engine's loop runs, on the
 * int8 GEMM kernels of qgemm.c. See quant.h. */
#define _POSIX_C_SOURCE 200809L
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "rowops.h"
#include "threads.h"
#include "modes.h"

#define PANEL PIVOT_INT8_PANEL
#define ROW_TILE 64      /* token rows per step of the token-wise phases */
#define PAD_BYTES 64     /* slack after uint8 buffers: rows are read up to 3 bytes past K */

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

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
    int kernel;        /* resolved PIVOT_INT8_KERNEL_* */
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
    void *workspace;    /* from pivot_workspace_acquire: a call reuses the last call's pages */
    size_t capacity;
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

/* Quantizes row r of x (width C, x at that row) into row r of s->a8 with per-tensor (scale, zp)
 * or per-token parameters, leaving the dequantization row scale in s->row_scale[r] and the zero
 * point in s->zp[r]. A row with a NaN or infinity gets a NaN row scale, so its product is NaN as
 * in fp32 (not the finite product of the zero point its codes would give). */
static void quantize_row_at(qscratch *s, const float *x, size_t r, size_t C, float scale, float zp_f,
                            int per_token) {
    float inv = 1.0f / scale;
    if (per_token) pivot_int8_row_params(&scale, &inv, &s->zp[r], x, C);
    else s->zp[r] = (int32_t)zp_f;
    s->row_scale[r] = pivot_int8_quantize_row(s->a8 + r * C, x, inv, s->zp[r], C) ? scale : NAN;
}

/* quantize_row_at over n rows of x (n, C). */
static void quantize_input(qscratch *s, const float *x, size_t n, size_t C, float scale, float zp_f, int per_token) {
    for (size_t r = 0; r < n; r++) quantize_row_at(s, x + r * C, r, C, scale, zp_f, per_token);
}

/* out (n, N) = dequantized s->a8 (n, K) @ W^T + bias over panels [p_begin, p_end). */
static void linear_q(const qplan *pl, qscratch *s, float *out, size_t ldo, const int8_t *packed, const float *wscale,
                     const float *bias, size_t n, size_t N, size_t K, size_t p_begin, size_t p_end) {
    pivot_int8_epilogue e = {NULL, out, ldo, s->row_scale, wscale, 0, bias};
    pivot_int8_gemm_rows(s->a8, K, s->zp, packed, N, K, p_begin, p_end, n, 0, &e, pl->kernel, 0);
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
        for (size_t r = 0; r < n; r++) { /* bad: a non-finite value among the q, k, v this encoder uses */
            const float *row = qkv + r * C3;
            size_t at = (t0 + r) * C;
            int ok = 1;
            if (mode != PIVOT_PATH_REUSE) {
                ok &= pivot_int8_quantize_row(pl->q8 + at, row, q_inv, q_zp, C);
                ok &= pivot_int8_quantize_row_s8(pl->k8 + at, row + C, k_inv, C);
            }
            ok &= pivot_int8_quantize_row_s8(pl->v8 + at, row + 2 * C, v_inv, C);
            pl->bad[t0 + r] = (uint8_t)!ok;
        }
    }
}

/* Phase 2: attention items (image b, head h). probs_keep: where a path-1 encoder keeps its uint8
 * probabilities for later reuse (NULL: scratch), or where a reuse encoder reads them;
 * probs_cap: (B, NH, T, T) the probabilities applied, dequantized (code / 255), or NULL. An image
 * with a non-finite q, k or v row gets NaN outputs (and captured probabilities), as softmax
 * attention over a NaN gives in fp32. */
static void attention_items(const qplan *pl, qscratch *s, const qblock *qb, int tid, int nthreads, int mode,
                            uint8_t *probs_keep, float *probs_cap, size_t rows /* query rows: T, or fewer */) {
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
            pivot_int8_epilogue e = {NULL, s->scores, T, s->row_scale, &score_scale, 1, NULL};
            pivot_int8_gemm_rows(pl->q8 + base, C, s->zp, s->kpack, T, hd, 0, round_up(T, PANEL) / PANEL, rows, 0, &e,
                                 pl->kernel, 0);
            pivot_softmax_rows(s->scores, rows, T, T);
            for (size_t r = 0; r < rows; r++) pivot_int8_quantize_row(probs + r * T, s->scores + r * T, inv255, 0, T);
            if (probs_cap)
                for (size_t i = 0; i < TT; i++) probs_cap[item * TT + i] = (float)probs[i] * (1.0f / 255.0f);
        }
        pivot_int8_pack(s->vpack, pl->v8 + base, hd, T, 1, C);
        pivot_int8_epilogue e = {NULL, pl->cat + b * T * C + h * hd, C, s->row_scale, &pv_scale, 1, NULL};
        /* probabilities in steps of 1/255: two neighbours sum to at most 256 */
        pivot_int8_gemm_rows(probs, T, s->zero, s->vpack, hd, T, 0, round_up(hd, PANEL) / PANEL, rows, 0, &e, pl->kernel,
                             1);
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
        for (size_t r = 0; r < n; r++) { /* GELU and quantize each row while it is in L1 */
            pivot_gelu_rows(s->hidden + r * H, NULL, 1, H);
            quantize_row_at(s, s->hidden + r * H, r, H, act[PIVOT_QACT_FC2_IN_SCALE], act[PIVOT_QACT_FC2_IN_ZP],
                            pl->per_token);
        }
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
                              float *probs_cap, size_t rows) {
    qscratch s = scratch_for(&q->pl, tid);
    attention_items(&q->pl, &s, &q->blocks[i], tid, nthreads, mode, keep ? q->pl.probs_keep : NULL, probs_cap, rows);
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
    pl->kernel = resolved;
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
    if (!(q->workspace = pivot_workspace_acquire(o, &q->capacity))) {
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
    pivot_workspace_release(q->workspace, q->capacity);
    free(q->blocks);
    free(q);
}
