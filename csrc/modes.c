/* Attention reuse and ReLU linear attention kernels (see modes.h). */
#include "modes.h"

#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pivot_blas.h"

int pivot_modes_check_path(const uint8_t *path, size_t D, int attention_kind) {
    if (!path || (attention_kind != PIVOT_ATTENTION_SOFTMAX && attention_kind != PIVOT_ATTENTION_RELU_LINEAR))
        return PIVOT_ERR_VALUE;
    int seen_active = 0;
    for (size_t i = 0; i < D; i++) {
        if (path[i] > PIVOT_PATH_REUSE) return PIVOT_ERR_VALUE;
        if (path[i] == PIVOT_PATH_REUSE && (!seen_active || attention_kind != PIVOT_ATTENTION_SOFTMAX))
            return PIVOT_ERR_VALUE;
        seen_active |= path[i] == PIVOT_PATH_ACTIVE;
    }
    return PIVOT_OK;
}

void pivot_reuse_attention_item(float *attn, const float *probs, const float *qkv, size_t b, size_t h, size_t q0,
                                size_t q1, size_t T, size_t C, size_t NH) {
    size_t hd = C / NH, ld = 3 * C;
    const float *v = qkv + b * T * ld + 2 * C + h * hd;
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(q1 - q0), (int)hd, (int)T, 1.0f, probs,
                      (int)T, v, (int)ld, 0.0f, attn + (b * T + q0) * C + h * hd, (int)C);
}

size_t pivot_linear_attention_scratch(size_t head_dim, size_t query_rows) {
    return head_dim * head_dim + head_dim + query_rows;
}

void pivot_linear_attention_item(float *attn, float *scratch, const float *qkv, size_t b, size_t h, size_t q0,
                                 size_t q1, size_t T, size_t C, size_t NH, float eps, int fast) {
    size_t hd = C / NH, ld = 3 * C, M = q1 - q0;
    const float *base = qkv + b * T * ld;
    const float *q = base + q0 * ld + h * hd, *k = base + C + h * hd, *v = base + 2 * C + h * hd;
    float *kv = scratch;             /* (hd, hd) phi(K)^T V */
    float *ksum = kv + hd * hd;      /* (hd) phi(K)^T 1 */
    float *denom = ksum + hd;        /* (M) */
    float *out = attn + (b * T + q0) * C + h * hd;
    /* each item recomputes its head's (hd x hd) summary: T*hd*hd MACs, cheap next to the
     * projections, and no barrier or shared buffer is needed between query chunks */
    pivot_cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)hd, (int)hd, (int)T, 1.0f, k, (int)ld, v,
                      (int)ld, 0.0f, kv, (int)hd);
    for (size_t j = 0; j < hd; j++) ksum[j] = 0.0f;
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < hd; j++) ksum[j] += k[t * ld + j];
    if (fast) /* per-row arithmetic: a row's output does not depend on the query range */
        pivot_gemm_nn_fast(out, q, kv, M, hd, hd, ld, hd, C);
    else
        pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)hd, (int)hd, 1.0f, q, (int)ld, kv,
                          (int)hd, 0.0f, out, (int)C);
    for (size_t m = 0; m < M; m++) {
        float s = 0.0f;
        for (size_t j = 0; j < hd; j++) s += q[m * ld + j] * ksum[j];
        denom[m] = 1.0f / (s + eps);
    }
    for (size_t m = 0; m < M; m++)
        for (size_t j = 0; j < hd; j++) out[m * C + j] *= denom[m];
}

void pivot_relu_qk_rows(float *qkv, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        float *row = qkv + n * 3 * C;
        for (size_t c = 0; c < 2 * C; c++) row[c] = row[c] > 0.0f ? row[c] : 0.0f;
    }
}

/* ------------------------------------------------------------------ single-thread branches */

static int branch_sizes(size_t *BT, size_t B, size_t T, size_t C, size_t NH) {
    if (T == 0 || C == 0 || NH == 0 || C % NH) return PIVOT_ERR_SHAPE;
    if (pivot_mul_size(BT, B, T)) return PIVOT_ERR_OVERFLOW;
    size_t tmp;
    if (*BT > 2147483647u || C > 2147483647u / 3 || T > 2147483647u || pivot_mul_size(&tmp, *BT, 3 * C))
        return PIVOT_ERR_OVERFLOW;
    return PIVOT_OK;
}

static void linear_bias(float *out, const float *inp, const float *w, const float *bias, size_t N, size_t IC,
                        size_t OC, size_t ldo) {
    pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)IC, 1.0f, inp, (int)IC, w,
                      (int)IC, 0.0f, out, (int)ldo);
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < OC; c++) out[n * ldo + c] += bias[c];
}

int pivot_reuse_attention_forward(float *out, const float *inp, const float *probs, const float *qkv_w,
                                  const float *qkv_b, const float *proj_w, const float *proj_b, size_t B, size_t T,
                                  size_t C, size_t NH) {
    size_t BT, n_qkv, n_cat;
    int st = branch_sizes(&BT, B, T, C, NH);
    if (st) return st;
    if (B == 0) return PIVOT_OK;
    if (!out || !inp || !probs || !qkv_w || !qkv_b || !proj_w || !proj_b) return PIVOT_ERR_VALUE;
    if (pivot_mul_size(&n_qkv, BT, 3 * C) || pivot_mul_size(&n_cat, BT, C) || n_qkv > SIZE_MAX - n_cat ||
        pivot_mul_size(&n_cat, n_qkv + n_cat, sizeof(float)))
        return PIVOT_ERR_OVERFLOW;
    float *qkv = (float *)malloc(n_cat);
    if (!qkv) return PIVOT_ERR_NOMEM;
    float *cat = qkv + n_qkv;
    /* only the V third: rows of qkv_w from 2C, written into the V columns of the (BT, 3C) buffer */
    linear_bias(qkv + 2 * C, inp, qkv_w + 2 * C * C, qkv_b + 2 * C, BT, C, C, 3 * C);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            pivot_reuse_attention_item(cat, probs + (b * NH + h) * T * T, qkv, b, h, 0, T, T, C, NH);
    linear_bias(out, cat, proj_w, proj_b, BT, C, C, C);
    free(qkv);
    return PIVOT_OK;
}

int pivot_linear_attention_forward(float *out, const float *inp, const float *qkv_w, const float *qkv_b,
                                   const float *proj_w, const float *proj_b, size_t B, size_t T, size_t C,
                                   size_t NH, float eps) {
    size_t BT, n_qkv, n_cat, n_scr;
    int st = branch_sizes(&BT, B, T, C, NH);
    if (st) return st;
    if (!(eps >= 0.0f)) return PIVOT_ERR_VALUE;
    if (B == 0) return PIVOT_OK;
    if (!out || !inp || !qkv_w || !qkv_b || !proj_w || !proj_b) return PIVOT_ERR_VALUE;
    n_scr = pivot_linear_attention_scratch(C / NH, T);
    if (pivot_mul_size(&n_qkv, BT, 3 * C) || pivot_mul_size(&n_cat, BT, C) || n_qkv > SIZE_MAX - n_cat - n_scr ||
        pivot_mul_size(&n_cat, n_qkv + n_cat + n_scr, sizeof(float)))
        return PIVOT_ERR_OVERFLOW;
    float *qkv = (float *)malloc(n_cat);
    if (!qkv) return PIVOT_ERR_NOMEM;
    float *cat = qkv + n_qkv, *scratch = cat + BT * C;
    linear_bias(qkv, inp, qkv_w, qkv_b, BT, C, 3 * C, 3 * C);
    pivot_relu_qk_rows(qkv, BT, C);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) pivot_linear_attention_item(cat, scratch, qkv, b, h, 0, T, T, C, NH, eps, 0);
    linear_bias(out, cat, proj_w, proj_b, BT, C, C, C);
    free(qkv);
    return PIVOT_OK;
}
