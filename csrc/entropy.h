/* Softmax and normalized prediction entropy (PIVOT, equation 3). */
#ifndef PIVOT_ENTROPY_H
#define PIVOT_ENTROPY_H

#include <stddef.h>

/* For each row b of logits: probs[b] = softmax(logits[b]) (skipped when probs is NULL) and
 * entropy[b] = -(1 / log K) * sum_k p_k log p_k, in [0, 1] (1: uniform, 0: one class certain).
 * Computed in double from max-shifted logits, so any finite logits are safe.
 * +inf logits share the probability mass equally; a row with a NaN logit, or with every logit
 * -inf, gives NaN entropy and NaN probabilities.
 * Returns PIVOT_ERR_VALUE when K < 2 (the normalization by log K needs two classes) or a
 * pointer is NULL while B > 0, PIVOT_ERR_OVERFLOW when B * K overflows. */
int pivot_softmax_entropy(float* probs,         // (B, K) or NULL
                          float* entropy,       // (B,)
                          const float* logits,  // (B, K)
                          size_t B, size_t K);

#endif /* PIVOT_ENTROPY_H */
