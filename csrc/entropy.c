/* Softmax and normalized prediction entropy (PIVOT, equation 3), one row at a time. */
#include "entropy.h"

#include <math.h>

#include "pivot_status.h"

/* Fills one row's outputs with NaN (undefined softmax: a NaN logit, or every logit -inf). */
static void undefined_row(float* probs_row, // (K,) or NULL
                          float* entropy,   // (1,)
                          size_t K) {
    if (probs_row != NULL) {
        for (size_t k = 0; k < K; k++) probs_row[k] = NAN;
    }
    *entropy = NAN;
}

/* Softmax and entropy of one row. With m = max(x), s = sum exp(x - m):
 * H = -sum p log p = log s - sum p (x - m), which needs no log of a tiny probability. */
static void softmax_entropy_row(float* probs_row,      // (K,) or NULL
                                float* entropy,        // (1,)
                                const float* logits_row, // (K,)
                                size_t K, double inv_log_k) {
    double max = -INFINITY;
    size_t n_posinf = 0;
    for (size_t k = 0; k < K; k++) {
        float x = logits_row[k];
        if (isnan(x)) { undefined_row(probs_row, entropy, K); return; }
        if (x > max) max = x;
        if (isinf(x) && x > 0) n_posinf++;
    }
    if (n_posinf > 0) {
        // The limit of softmax as those logits grow: the +inf entries share the mass equally.
        double p = 1.0 / (double)n_posinf;
        if (probs_row != NULL) {
            for (size_t k = 0; k < K; k++) {
                probs_row[k] = (isinf(logits_row[k]) && logits_row[k] > 0) ? (float)p : 0.0f;
            }
        }
        *entropy = (float)(log((double)n_posinf) * inv_log_k);
        return;
    }
    if (isinf(max)) { undefined_row(probs_row, entropy, K); return; }  // every logit -inf

    double sum = 0.0, weighted = 0.0;  // sum of e_k, sum of e_k * (x_k - m)
    for (size_t k = 0; k < K; k++) {
        double shifted = (double)logits_row[k] - max;
        double e = exp(shifted);
        sum += e;
        if (e > 0.0) weighted += e * shifted;  // skip exp(-inf) = 0 (0 * -inf would be NaN)
    }
    if (probs_row != NULL) {
        double inv_sum = 1.0 / sum;
        for (size_t k = 0; k < K; k++) {
            probs_row[k] = (float)(exp((double)logits_row[k] - max) * inv_sum);
        }
    }
    double h = (log(sum) - weighted / sum) * inv_log_k;
    // Rounding can leave h a hair outside [0, 1]; equation 3 is bounded there.
    if (h < 0.0) h = 0.0;
    if (h > 1.0) h = 1.0;
    *entropy = (float)h;
}

int pivot_softmax_entropy(float* probs,         // (B, K) or NULL
                          float* entropy,       // (B,)
                          const float* logits,  // (B, K)
                          size_t B, size_t K) {
    if (K < 2) return PIVOT_ERR_VALUE;
    size_t total;
    int status = pivot_mul_size(&total, B, K);
    if (status != PIVOT_OK) return status;
    if (B == 0) return PIVOT_OK;
    if (entropy == NULL || logits == NULL) return PIVOT_ERR_VALUE;
    double inv_log_k = 1.0 / log((double)K);
    for (size_t b = 0; b < B; b++) {
        softmax_entropy_row(probs != NULL ? probs + b * K : NULL, entropy + b, logits + b * K, K, inv_log_k);
    }
    return PIVOT_OK;
}
