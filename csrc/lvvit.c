/* LV-ViT: the convolutional stem as im2col + sgemm, and the whole model on the engine.
 * See lvvit.h. The transformer, its skip_lam residual scale and the aux head run in engine.c
 * (pivot_vit_forward_ex); this file adds the stem in front of it. */
#define _POSIX_C_SOURCE 200809L
#include "lvvit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pivot_blas.h"

#define CONV_TILE_PIXELS 512 /* output pixels per im2col tile: whole output rows, about this many */
#define LVVIT_CHUNK 8        /* images per stem + transformer pass when nothing is captured */
#define LVVIT_MAX_THREADS 256 /* as the engine's team */
#define INT_LIMIT ((size_t)2147483647)

/* ================================================================== convolution */

/* One convolution over `B` images, with its im2col tiling. */
typedef struct {
    float *out;          /* (B, Cout, Ho, Wo) */
    const float *inp;    /* (B, Cin, H, W) */
    const float *weight; /* (Cout, Cin*k*k) */
    const float *bias;   /* (Cout) */
    size_t B, Cin, H, W, Cout, k, stride, pad, Ho, Wo;
    size_t tile_rows;    /* output rows per tile */
    size_t tiles;        /* tiles per image */
    int relu;
} conv_layer;

/* Fills a conv_layer's sizes and tiling; checks that every sgemm size fits an int. */
static int conv_layer_init(conv_layer *L, size_t B, size_t Cin, size_t H, size_t W, size_t Cout, size_t k,
                           size_t stride, size_t pad, int relu) {
    if (B == 0 || Cin == 0 || H == 0 || W == 0 || Cout == 0 || k == 0 || stride == 0) return PIVOT_ERR_SHAPE;
    if (pad > SIZE_MAX / 4 || H > SIZE_MAX / 4 || W > SIZE_MAX / 4 || H + 2 * pad < k || W + 2 * pad < k)
        return PIVOT_ERR_SHAPE;
    memset(L, 0, sizeof *L);
    L->B = B; L->Cin = Cin; L->H = H; L->W = W; L->Cout = Cout; L->k = k; L->stride = stride; L->pad = pad;
    L->Ho = (H + 2 * pad - k) / stride + 1;
    L->Wo = (W + 2 * pad - k) / stride + 1;
    L->relu = relu;
    L->tile_rows = L->Wo >= CONV_TILE_PIXELS ? 1 : CONV_TILE_PIXELS / L->Wo;
    if (L->tile_rows > L->Ho) L->tile_rows = L->Ho;
    L->tiles = (L->Ho + L->tile_rows - 1) / L->tile_rows;
    size_t kd, hw, tmp;
    if (pivot_mul_size(&kd, Cin, k) || pivot_mul_size(&kd, kd, k) || pivot_mul_size(&hw, L->Ho, L->Wo) ||
        pivot_mul_size(&tmp, kd, L->tile_rows * L->Wo) || pivot_mul_size(&tmp, hw, Cout) ||
        pivot_mul_size(&tmp, tmp, B) || pivot_mul_size(&tmp, Cin, H) || pivot_mul_size(&tmp, tmp, W) ||
        pivot_mul_size(&tmp, tmp, B))
        return PIVOT_ERR_OVERFLOW;
    if (kd > INT_LIMIT || hw > INT_LIMIT || Cout > INT_LIMIT) return PIVOT_ERR_OVERFLOW;
    return PIVOT_OK;
}

/* Floats of one thread's im2col buffer. */
static size_t conv_cols_floats(const conv_layer *L) { return L->Cin * L->k * L->k * L->tile_rows * L->Wo; }

/* im2col of output rows [y0, y1) of one image: row (ci, ky, kx) of cols holds the input pixel
 * that kernel tap meets at each output pixel (0 in the padding), so that
 * out[:, pixels] = weight (Cout, Cin*k*k) @ cols (Cin*k*k, pixels). */
static void im2col_rows(float *cols,      /* (Cin*k*k, (y1 - y0) * Wo) */
                        const float *img, /* (Cin, H, W) */
                        const conv_layer *L, size_t y0, size_t y1) {
    size_t k = L->k, Wo = L->Wo, npix = (y1 - y0) * Wo;
    for (size_t ci = 0; ci < L->Cin; ci++)
        for (size_t ky = 0; ky < k; ky++)
            for (size_t kx = 0; kx < k; kx++) {
                float *dst = cols + ((ci * k + ky) * k + kx) * npix;
                for (size_t y = y0; y < y1; y++) {
                    float *d = dst + (y - y0) * Wo;
                    size_t iy = y * L->stride + ky; /* padded coordinates: the input row is iy - pad */
                    if (iy < L->pad || iy - L->pad >= L->H) {
                        memset(d, 0, Wo * sizeof(float));
                        continue;
                    }
                    const float *src = img + (ci * L->H + (iy - L->pad)) * L->W;
                    /* output columns [x0, x1) read inside the row; the rest read the padding */
                    size_t x0 = kx >= L->pad ? 0 : (L->pad - kx + L->stride - 1) / L->stride;
                    size_t x1 = L->W + L->pad > kx ? (L->W + L->pad - kx + L->stride - 1) / L->stride : 0;
                    if (x1 > Wo) x1 = Wo;
                    if (x0 > x1) x0 = x1;
                    for (size_t x = 0; x < x0; x++) d[x] = 0.0f;
                    const float *s0 = src + (x0 * L->stride + kx - L->pad);
                    if (L->stride == 1)
                        memcpy(d + x0, s0, (x1 - x0) * sizeof(float));
                    else
                        for (size_t x = x0; x < x1; x++) d[x] = s0[(x - x0) * L->stride];
                    for (size_t x = x1; x < Wo; x++) d[x] = 0.0f;
                }
            }
}

/* Output rows [y0, y1) of image b: im2col, sgemm straight into the NCHW output (row stride
 * Ho*Wo), then bias and ReLU. NaN stays NaN through the ReLU, as torch's. */
static void conv_tile(const conv_layer *L, float *cols, size_t b, size_t y0, size_t y1) {
    size_t kd = L->Cin * L->k * L->k, hw = L->Ho * L->Wo, npix = (y1 - y0) * L->Wo;
    im2col_rows(cols, L->inp + b * L->Cin * L->H * L->W, L, y0, y1);
    float *out = L->out + b * L->Cout * hw + y0 * L->Wo;
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L->Cout, (int)npix, (int)kd, 1.0f, L->weight,
                      (int)kd, cols, (int)npix, 0.0f, out, (int)hw);
    for (size_t co = 0; co < L->Cout; co++) {
        float *o = out + co * hw, bias = L->bias[co];
        if (L->relu)
            for (size_t p = 0; p < npix; p++) {
                float v = o[p] + bias;
                o[p] = v < 0.0f ? 0.0f : v;
            }
        else
            for (size_t p = 0; p < npix; p++) o[p] += bias;
    }
}

/* This thread's share of the layer's (image, tile) items. */
static void conv_items(const conv_layer *L, float *cols, int tid, int nthreads) {
    size_t i0, i1;
    pivot_split_range(L->B * L->tiles, tid, nthreads, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
        size_t b = i / L->tiles, y0 = (i % L->tiles) * L->tile_rows;
        size_t y1 = y0 + L->tile_rows < L->Ho ? y0 + L->tile_rows : L->Ho;
        conv_tile(L, cols, b, y0, y1);
    }
}

typedef struct {
    const conv_layer *layer;
    float *cols;       /* (threads, cols_stride) */
    size_t cols_stride;
} conv_job;

static void conv_team(void *arg, pivot_team *tm, int tid, int nthreads) {
    const conv_job *job = (const conv_job *)arg;
    conv_items(job->layer, job->cols + (size_t)tid * job->cols_stride, tid, nthreads);
}


/* Aligned buffer of n floats (n > 0). */
static float *alloc_floats(size_t n, int *status) {
    void *p = NULL;
    size_t bytes;
    if (pivot_mul_size(&bytes, n ? n : 1, sizeof(float))) {
        *status = PIVOT_ERR_OVERFLOW;
        return NULL;
    }
    if (posix_memalign(&p, 64, bytes) != 0) {
        *status = PIVOT_ERR_NOMEM;
        return NULL;
    }
    return (float *)p;
}

int pivot_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, size_t B,
                         size_t Cin, size_t H, size_t W, size_t Cout, size_t ksize, size_t stride, size_t pad,
                         int relu, int threads) {
    if ((threads = pivot_clamp_threads(threads)) < 0) return PIVOT_ERR_VALUE;
    if (B == 0) return PIVOT_OK;
    if (!out || !inp || !weight || !bias) return PIVOT_ERR_VALUE;
    conv_layer L;
    int st = conv_layer_init(&L, B, Cin, H, W, Cout, ksize, stride, pad, relu);
    if (st) return st;
    L.out = out; L.inp = inp; L.weight = weight; L.bias = bias;
    size_t stride_floats = (conv_cols_floats(&L) + 15) / 16 * 16, total;
    if (pivot_mul_size(&total, stride_floats, (size_t)threads)) return PIVOT_ERR_OVERFLOW;
    float *cols = alloc_floats(total, &st);
    if (!cols) return st;
    conv_job job = {&L, cols, stride_floats};
    st = pivot_team_run(conv_team, &job, threads);
    free(cols);
    return st;
}

/* ================================================================== stem */

/* The transformer's config: what `proj` sees (the stem's map without a stem, the images without). */
int pivot_model_engine_config(pivot_vit_config *t, const pivot_model_config *cfg) {
    if (!cfg) return PIVOT_ERR_VALUE;
    *t = cfg->vit;
    if (cfg->stem_channels) {
        if (cfg->vit.img_size % 2 || cfg->vit.patch_size % 2 || cfg->vit.img_size % cfg->vit.patch_size)
            return PIVOT_ERR_SHAPE;
        t->img_size = cfg->vit.img_size / 2;
        t->patch_size = cfg->vit.patch_size / 2;
        t->in_chans = cfg->stem_channels;
    }
    return PIVOT_OK;
}

/* The three stem layers (conv1 7x7/2 pad 3, conv2 and conv3 3x3/1 pad 1), each + ReLU, over B
 * images; weights point into the folded stem array. */
static int stem_layers(conv_layer L[3], const pivot_model_config *cfg, const float *stem, size_t B) {
    size_t S = cfg->stem_channels, img = cfg->vit.img_size, half = img / 2;
    int st;
    if ((st = conv_layer_init(&L[0], B, cfg->vit.in_chans, img, img, S, 7, 2, 3, 1)) ||
        (st = conv_layer_init(&L[1], B, S, half, half, S, 3, 1, 1, 1)) ||
        (st = conv_layer_init(&L[2], B, S, half, half, S, 3, 1, 1, 1)))
        return st;
    if (L[0].Ho != half || L[0].Wo != half) return PIVOT_ERR_INTERNAL; /* even img: (img - 1) / 2 + 1 */
    const float *p = stem;
    for (int i = 0; i < 3; i++) {
        L[i].weight = p;
        p += S * L[i].Cin * L[i].k * L[i].k;
        L[i].bias = p;
        p += S;
    }
    return PIVOT_OK;
}

int pivot_model_num_params(size_t *params, size_t *stem, const pivot_model_config *cfg) {
    pivot_vit_config t;
    int st = pivot_model_engine_config(&t, cfg);
    if (st) return st;
    /* skip_lam is checked by the encoder that uses it (pivot_vit_forward_ex) */
    if ((cfg->aux_head && cfg->vit.distilled) || ((cfg->aux_head || cfg->stem_channels) && cfg->vit.num_classes == 0))
        return PIVOT_ERR_VALUE; /* LV-ViT's stem and aux head come with a classifier */
    size_t np, aux = 0, s = 0, C = cfg->vit.embed_dim, K = cfg->vit.num_classes;
    if ((st = pivot_vit_num_params(&np, &t))) return st;
    if (cfg->aux_head) {
        if ((st = pivot_mul_size(&aux, K, C + 1))) return st;
        if (np > SIZE_MAX - aux) return PIVOT_ERR_OVERFLOW;
    }
    if (cfg->stem_channels) {
        size_t S = cfg->stem_channels, a, b;
        /* S*(in*49) + S + 2 * (S*S*9 + S) */
        if (pivot_mul_size(&a, cfg->vit.in_chans, 49) || pivot_mul_size(&a, a + 1, S) || pivot_mul_size(&b, S, 9) ||
            pivot_mul_size(&b, b + 1, S) || pivot_mul_size(&b, b, 2) || a > SIZE_MAX - b)
            return PIVOT_ERR_OVERFLOW;
        s = a + b;
    }
    *params = np + aux;
    *stem = s;
    return PIVOT_OK;
}

typedef struct {
    conv_layer layers[3]; /* over one image each; inp/out set per image */
    const float *images;  /* (B, in_chans, img, img) */
    float *features;      /* (B, S, img/2, img/2) */
    float *t1, *t2;       /* (S, img/2, img/2) each */
    float *cols;          /* (threads, cols_stride) */
    size_t cols_stride, B;
} stem_job;

/* Image by image (so that only two single-image intermediate maps exist), each layer split by
 * output-row tiles over the team. Barriers: conv2 reads all of conv1's map, conv3 all of conv2's;
 * the next image's conv1 overwrites t1 only after every thread passed conv2's barrier. */
static void stem_team(void *arg, pivot_team *tm, int tid, int nthreads) {
    stem_job *job = (stem_job *)arg;
    float *cols = job->cols + (size_t)tid * job->cols_stride;
    const conv_layer *L = job->layers;
    size_t in_floats = L[0].Cin * L[0].H * L[0].W, out_floats = L[2].Cout * L[2].Ho * L[2].Wo;
    for (size_t b = 0; b < job->B; b++) {
        conv_layer l1 = L[0], l2 = L[1], l3 = L[2];
        l1.inp = job->images + b * in_floats; l1.out = job->t1;
        l2.inp = job->t1; l2.out = job->t2;
        l3.inp = job->t2; l3.out = job->features + b * out_floats;
        conv_items(&l1, cols, tid, nthreads);
        pivot_team_barrier(tm);
        conv_items(&l2, cols, tid, nthreads);
        pivot_team_barrier(tm);
        conv_items(&l3, cols, tid, nthreads);
    }
}

/* Floats of the stem's scratch for `threads` threads: two feature maps and the im2col tiles. */
static int stem_scratch_floats(size_t *out, const pivot_model_config *cfg, const float *stem, int threads) {
    conv_layer layers[3];
    int st = stem_layers(layers, cfg, stem, 1);
    if (st) return st;
    size_t map = layers[1].Cin * layers[1].H * layers[1].W, cols = 0, total;
    for (int i = 0; i < 3; i++) {
        size_t c = conv_cols_floats(&layers[i]);
        cols = c > cols ? c : cols;
    }
    cols = (cols + 15) / 16 * 16;
    if (pivot_mul_size(&total, cols, (size_t)threads) || total > SIZE_MAX - 2 * map) return PIVOT_ERR_OVERFLOW;
    *out = total + 2 * map;
    return PIVOT_OK;
}

/* Runs the stem on B images into features, with scratch of stem_scratch_floats. */
static int run_stem(float *features, float *scratch, const float *images, const float *stem,
                    const pivot_model_config *cfg, size_t B, int threads) {
    stem_job job;
    memset(&job, 0, sizeof job);
    int st = stem_layers(job.layers, cfg, stem, 1);
    if (st) return st;
    size_t map = job.layers[1].Cin * job.layers[1].H * job.layers[1].W, cols = 0;
    for (int i = 0; i < 3; i++) {
        size_t c = conv_cols_floats(&job.layers[i]);
        cols = c > cols ? c : cols;
    }
    job.cols_stride = (cols + 15) / 16 * 16;
    job.t1 = scratch;
    job.t2 = scratch + map;
    job.cols = scratch + 2 * map;
    job.images = images;
    job.features = features;
    job.B = B;
    return pivot_team_run(stem_team, &job, threads);
}

/* The stem on B images into features, its scratch from the workspace cache. */
static int run_stem_alone(float *features, const float *images, const float *stem, const pivot_model_config *cfg,
                          size_t B, int threads) {
    size_t n, bytes, capacity;
    int st = stem_scratch_floats(&n, cfg, stem, threads);
    if (st || (st = pivot_mul_size(&bytes, n, sizeof(float)))) return st;
    float *scratch = (float *)pivot_workspace_acquire(bytes, &capacity);
    if (!scratch) return PIVOT_ERR_NOMEM;
    st = run_stem(features, scratch, images, stem, cfg, B, threads);
    pivot_workspace_release(scratch, capacity);
    return st;
}

int pivot_model_stem_forward(float *out, const float *images, const float *stem, const pivot_model_config *cfg,
                             size_t B, int threads) {
    size_t np, ns;
    int st = pivot_model_num_params(&np, &ns, cfg);
    if (st) return st;
    if (!cfg->stem_channels) return PIVOT_ERR_VALUE;
    if ((threads = pivot_clamp_threads(threads)) < 0) return PIVOT_ERR_VALUE;
    if (B == 0) return PIVOT_OK;
    if (!out || !images || !stem) return PIVOT_ERR_VALUE;
    conv_layer check[3];
    if ((st = stem_layers(check, cfg, stem, B))) return st; /* overflow checks for the whole batch */
    return run_stem_alone(out, images, stem, cfg, B, threads);
}

/* ================================================================== whole model */

int pivot_model_forward(float *logits, float *attn_capture, float *mlp_capture, float *probs_capture,
                        const float *images, const float *stem, const float *params, const float *packed,
                        const pivot_int8_blocks *int8, const pivot_model_config *cfg, const uint8_t *path, size_t B,
                        int threads) {
    size_t np, ns;
    int st = pivot_model_num_params(&np, &ns, cfg);
    if (st) return st;
    if ((threads = pivot_clamp_threads(threads)) < 0) return PIVOT_ERR_VALUE;
    if (B == 0) return PIVOT_OK;
    if (!logits || !images || !params || !path || (cfg->stem_channels && !stem)) return PIVOT_ERR_VALUE;
    pivot_vit_config t;
    pivot_model_engine_config(&t, cfg);
    size_t vit_np, C = cfg->vit.embed_dim, K = cfg->vit.num_classes;
    pivot_vit_num_params(&vit_np, &t);
    pivot_vit_extras extras;
    memset(&extras, 0, sizeof extras);
    extras.skip_lam = cfg->skip_lam;
    extras.attention_kind = cfg->attention_kind;
    extras.linear_eps = cfg->linear_eps;
    extras.probs_capture = probs_capture;
    extras.packed = packed;
    extras.int8 = int8;
    if (int8 && (cfg->stem_channels || cfg->aux_head)) return PIVOT_ERR_VALUE; /* int8 is for timm ViTs */
    if (cfg->aux_head) {
        extras.aux_head_w = params + vit_np;
        extras.aux_head_b = params + vit_np + K * C;
    }
    if (!cfg->stem_channels)
        return pivot_vit_forward_ex(logits, attn_capture, mlp_capture, images, params, &t, &extras, path, B, threads);

    conv_layer check[3];
    if ((st = stem_layers(check, cfg, stem, B))) return st; /* overflow checks for the whole batch */
    size_t chunk = (attn_capture || mlp_capture || probs_capture) ? B : (B < LVVIT_CHUNK ? B : LVVIT_CHUNK);
    size_t img_floats = check[0].Cin * check[0].H * check[0].W, map = check[2].Cout * check[2].Ho * check[2].Wo;
    size_t n_features, n_scratch, bytes, capacity;
    if (pivot_mul_size(&n_features, map, chunk)) return PIVOT_ERR_OVERFLOW;
    if ((st = stem_scratch_floats(&n_scratch, cfg, stem, threads))) return st;
    if (n_features > SIZE_MAX - n_scratch || pivot_mul_size(&bytes, n_features + n_scratch, sizeof(float)))
        return PIVOT_ERR_OVERFLOW;
    float *features = (float *)pivot_workspace_acquire(bytes, &capacity);
    if (!features) return PIVOT_ERR_NOMEM;
    for (size_t b0 = 0; b0 < B && st == PIVOT_OK; b0 += chunk) {
        size_t n = B - b0 < chunk ? B - b0 : chunk;
        st = run_stem(features, features + n_features, images + b0 * img_floats, stem, cfg, n, threads);
        if (st == PIVOT_OK)
            st = pivot_vit_forward_ex(logits + b0 * K, attn_capture, mlp_capture, features, params, &t, &extras, path,
                                      n, threads);
    }
    pivot_workspace_release(features, capacity);
    return st;
}
