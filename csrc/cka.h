/* Linear CKA between activation sets and PIVOT's Path-Score (paper section 3.2, Algorithm 1).
 *
 * CKA works on N x N Gram matrices over samples. A Gram matrix is built in float32 BLAS
 * products over chunks of features and summed in float64 (pivot_cka_gram); it is then centered
 * in place, biased (H K H, Kornblith et al. 2019) or U-centered for the unbiased HSIC estimator
 * (Song et al. 2012) (pivot_cka_center_gram); HSIC values are inner products of centered Grams,
 * scaled to the estimator's normalisation (pivot_cka_hsic, pivot_cka_hsic_self).
 *
 * Paths are uint8 masks of length D: 1 = the encoder's attention is active, 0 = skipped.
 * cka matrices are (D, D) row-major doubles, cka[i * D + j] = CKA(MLP_i, A_j). */
#ifndef PIVOT_CKA_H
#define PIVOT_CKA_H

#include <stddef.h>
#include <stdint.h>

#include "pivot_status.h"

/* Features summed per float32 BLAS product before the partial Gram is added in float64. */
#define PIVOT_CKA_GRAM_CHUNK 2048

/* gram = (xa - shift)(xb - shift)^T, or (xa - shift)(xa - shift)^T when xb is NULL (then Nb
 * must equal Na and the symmetric result is filled completely). shift may be NULL (no shift).
 * Chunks of PIVOT_CKA_GRAM_CHUNK features run side by side on `threads` threads, each product on
 * one OpenBLAS thread, and are added in chunk order: the result is bit-identical for any thread
 * count and any concurrent calls (OpenBLAS's own threading changes its sums with the number of
 * threads on some CPUs). */
int pivot_cka_gram(double* gram,        // (Na, Nb) out
                   const float* xa,     // (Na, P)
                   const float* xb,     // (Nb, P) or NULL
                   const float* shift,  // (P) or NULL
                   size_t Na, size_t Nb, size_t P, int threads);

/* Centers a symmetric Gram matrix in place: unbiased = 0 gives H K H (H = I - 11^T / N);
 * unbiased = 1 gives the U-centered matrix (zero diagonal) of the unbiased HSIC estimator.
 * Needs N >= 1 (biased) or N >= 4 (unbiased). */
int pivot_cka_center_gram(double* gram,  // (N, N) in place
                          size_t N, int unbiased);

/* hsic[a, b] = <Kx_a, Ly_b> * scale for centered Grams, scale = 1 / (N - 1)^2 (biased, N >= 2)
 * or 1 / (N (N - 3)) (unbiased, N >= 4): the HSIC estimate of each pair. */
int pivot_cka_hsic(double* hsic,            // (Dx, Dy) out
                   const double* grams_x,   // (Dx, N, N) centered
                   const double* grams_y,   // (Dy, N, N) centered
                   size_t Dx, size_t Dy, size_t N, int unbiased);

/* hsic[d] = <K_d, K_d> * scale: the HSIC of each centered Gram with itself. */
int pivot_cka_hsic_self(double* hsic,         // (D) out
                        const double* grams,  // (D, N, N) centered
                        size_t D, size_t N, int unbiased);

/* Algorithm 1: for each active encoder i, add cka[i, j] for the skipped encoders j that follow
 * it, up to the next active encoder. Skipped encoders before the first active one add nothing. */
int pivot_path_score(double* score,         // (1) out
                     const double* cka,     // (D, D)
                     const uint8_t* path,   // (D) 0/1
                     size_t D);

/* The K best of all C(D, effort) paths with `effort` active encoders, best first. Ties in score
 * are broken towards the lexicographically greater mask (the earlier active encoders first).
 * Needs D <= 64 and 1 <= K <= C(D, effort). */
int pivot_rank_paths(double* scores,      // (K) out
                     uint8_t* paths,      // (K, D) out
                     const double* cka,   // (D, D)
                     size_t D, size_t effort, size_t K);

/* The best path of every effort 0..D by dynamic programming, O(D^3) time, O(D^2) memory.
 * Ties are broken as in pivot_rank_paths; scores are recomputed in Algorithm 1's order. */
int pivot_best_paths(double* scores,      // (D + 1) out
                     uint8_t* paths,      // (D + 1, D) out
                     const double* cka,   // (D, D)
                     size_t D);

#endif /* PIVOT_CKA_H */
