/* Linear CKA kernels and Path-Score search (see cka.h). */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cka.h"
#include "pivot_blas.h"
#include "threads.h"

/* ------------------------------------------------------------------------------- Gram matrices */

/* dst = src[:, c0:c0+w] - shift[c0:c0+w], packed to a contiguous (N, w) block. */
static void pack_shifted_chunk(float* dst,          // (N, w)
                               const float* src,    // (N, P)
                               const float* shift,  // (P)
                               size_t N, size_t P, size_t c0, size_t w) {
    for (size_t r = 0; r < N; r++) {
        const float* s = src + r * P + c0;
        float* d = dst + r * w;
        const float* m = shift + c0;
        for (size_t k = 0; k < w; k++) d[k] = s[k] - m[k];
    }
}

typedef struct {
    double* gram;           // (Na, Nb)
    float* partials;        // (threads, Na, Nb): one chunk's float32 product per thread
    float *a_bufs, *b_bufs; // (threads, Na, chunk), (threads, Nb, chunk): shifted chunks, or unused
    const float *xa, *xb, *shift;
    size_t Na, Nb, P, chunk, nchunks;
} gram_job;

/* One chunk of features [c0, c0 + w) into part: a float32 product on one OpenBLAS thread (the
 * upper triangle by syrk for a self Gram). */
static void gram_chunk(float* part, float* a_buf, float* b_buf, const gram_job* g, size_t c0, size_t w) {
    const float* a = g->xa + c0;
    const float* b = g->xb ? g->xb + c0 : NULL;
    int ld = (int)g->P;
    if (g->shift) {
        pack_shifted_chunk(a_buf, g->xa, g->shift, g->Na, g->P, c0, w);
        a = a_buf;
        if (b) {
            pack_shifted_chunk(b_buf, g->xb, g->shift, g->Nb, g->P, c0, w);
            b = b_buf;
        }
        ld = (int)w;
    }
    if (b)
        pivot_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->Na, (int)g->Nb, (int)w, 1.0f, a, ld, b, ld,
                          0.0f, part, (int)g->Nb);
    else
        pivot_cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)g->Na, (int)w, 1.0f, a, ld, 0.0f, part,
                          (int)g->Na);
}

/* Rounds of one chunk per thread (chunk = round * nthreads + tid), each on one OpenBLAS thread;
 * then every thread adds its share of rows of the round's products in chunk order. Each value
 * is thus the same sum, in the same order, for any thread count. */
static void gram_team(void* arg, pivot_team* team, int tid, int nthreads) {
    const gram_job* g = (const gram_job*)arg;
    size_t gram_size = g->Na * g->Nb, r0, r1;
    pivot_split_range(g->Na, tid, nthreads, &r0, &r1);
    float* part = g->partials + (size_t)tid * gram_size;
    for (size_t first = 0; first < g->nchunks; first += (size_t)nthreads) {
        size_t c = first + (size_t)tid;
        if (c < g->nchunks) {
            size_t c0 = c * g->chunk, w = g->P - c0 < g->chunk ? g->P - c0 : g->chunk;
            gram_chunk(part, g->a_bufs + (size_t)tid * g->Na * g->chunk, g->b_bufs + (size_t)tid * g->Nb * g->chunk,
                       g, c0, w);
        }
        pivot_team_barrier(team);
        size_t count = g->nchunks - first < (size_t)nthreads ? g->nchunks - first : (size_t)nthreads;
        for (size_t t = 0; t < count; t++) {
            const float* p = g->partials + t * gram_size;
            for (size_t i = r0; i < r1; i++)
                for (size_t j = g->xb ? 0 : i; j < g->Nb; j++) g->gram[i * g->Nb + j] += (double)p[i * g->Nb + j];
        }
        pivot_team_barrier(team);
    }
}

int pivot_cka_gram(double* gram, const float* xa, const float* xb, const float* shift,
                   size_t Na, size_t Nb, size_t P, int threads) {
    if (gram == NULL || xa == NULL || Na == 0 || Nb == 0 || pivot_clamp_threads(threads) < 0) return PIVOT_ERR_VALUE;
    if (xb == NULL && Nb != Na) return PIVOT_ERR_SHAPE;
    size_t gram_size;
    if (pivot_mul_size(&gram_size, Na, Nb) || gram_size > SIZE_MAX / sizeof(double)) return PIVOT_ERR_OVERFLOW;
    memset(gram, 0, gram_size * sizeof(double));
    if (P == 0) return PIVOT_OK;
    // BLAS takes int sizes; a chunk is at most PIVOT_CKA_GRAM_CHUNK wide, P itself is a leading dimension.
    if (Na > INT_MAX || Nb > INT_MAX || P > INT_MAX) return PIVOT_ERR_OVERFLOW;

    size_t chunk = P < PIVOT_CKA_GRAM_CHUNK ? P : PIVOT_CKA_GRAM_CHUNK, nchunks = (P + chunk - 1) / chunk;
    size_t nt = (size_t)threads < nchunks ? (size_t)threads : nchunks;  // more threads than chunks idle
    size_t a_size, b_size, p_size;
    if (pivot_mul_size(&a_size, Na, chunk) || pivot_mul_size(&b_size, Nb, chunk) ||
        pivot_mul_size(&a_size, a_size, nt) || pivot_mul_size(&b_size, b_size, nt) ||
        pivot_mul_size(&p_size, gram_size, nt))
        return PIVOT_ERR_OVERFLOW;
    // Without a shift the chunks are read in place (leading dimension P); with one they are packed.
    if (a_size > SIZE_MAX / sizeof(float) || b_size > SIZE_MAX / sizeof(float) || p_size > SIZE_MAX / sizeof(float))
        return PIVOT_ERR_OVERFLOW;
    gram_job job = {gram, malloc(p_size * sizeof(float)), shift ? malloc(a_size * sizeof(float)) : NULL,
                    (shift && xb) ? malloc(b_size * sizeof(float)) : NULL, xa, xb, shift, Na, Nb, P, chunk, nchunks};
    int status = PIVOT_OK;
    if (job.partials == NULL || (shift && job.a_bufs == NULL) || (shift && xb && job.b_bufs == NULL))
        status = PIVOT_ERR_NOMEM;
    else
        status = pivot_team_run(gram_team, &job, (int)nt);
    if (status == PIVOT_OK && xb == NULL) {  // syrk filled the upper triangle
        for (size_t i = 0; i < Na; i++)
            for (size_t j = 0; j < i; j++) gram[i * Na + j] = gram[j * Na + i];
    }
    free(job.a_bufs);
    free(job.b_bufs);
    free(job.partials);
    return status;
}

int pivot_cka_center_gram(double* gram, size_t N, int unbiased) {
    if (gram == NULL || N == 0 || (unbiased && N < 4)) return PIVOT_ERR_VALUE;
    size_t size;
    if (pivot_mul_size(&size, N, N)) return PIVOT_ERR_OVERFLOW;
    double* means = malloc(N * sizeof(double));
    if (means == NULL) return PIVOT_ERR_NOMEM;

    if (unbiased) {
        // U-centering (Szekely & Rizzo 2014): zero diagonal, then subtract row and column sums
        // over N - 2 and add back the total over (N - 1)(N - 2). <U(K), U(L)> / (N (N - 3)) is
        // exactly Song et al.'s unbiased HSIC estimator.
        for (size_t i = 0; i < N; i++) gram[i * N + i] = 0.0;
        double total = 0.0;
        for (size_t i = 0; i < N; i++) {
            double row = 0.0;
            for (size_t j = 0; j < N; j++) row += gram[i * N + j];
            means[i] = row / (double)(N - 2);
            total += means[i];
        }
        double correction = total / (2.0 * (double)(N - 1));
        for (size_t i = 0; i < N; i++) means[i] -= correction;
        for (size_t i = 0; i < N; i++) {
            for (size_t j = 0; j < N; j++) gram[i * N + j] -= means[i] + means[j];
            gram[i * N + i] = 0.0;
        }
    } else {
        // H K H: subtract row and column means, add back the grand mean.
        double grand = 0.0;
        for (size_t i = 0; i < N; i++) {
            double row = 0.0;
            for (size_t j = 0; j < N; j++) row += gram[i * N + j];
            means[i] = row / (double)N;
            grand += means[i];
        }
        grand /= (double)N;
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++) gram[i * N + j] += grand - means[i] - means[j];
    }
    free(means);
    return PIVOT_OK;
}

/* The estimator's normalisation, or 0 when N is too small for it. */
static double hsic_scale(size_t N, int unbiased) {
    double n = (double)N;
    if (unbiased) return N >= 4 ? 1.0 / (n * (n - 3.0)) : 0.0;
    return N >= 2 ? 1.0 / ((n - 1.0) * (n - 1.0)) : 0.0;
}

int pivot_cka_hsic(double* hsic, const double* grams_x, const double* grams_y,
                   size_t Dx, size_t Dy, size_t N, int unbiased) {
    if (hsic == NULL || grams_x == NULL || grams_y == NULL || Dx == 0 || Dy == 0) return PIVOT_ERR_VALUE;
    double scale = hsic_scale(N, unbiased);
    if (scale == 0.0) return PIVOT_ERR_VALUE;
    size_t nn;
    if (pivot_mul_size(&nn, N, N)) return PIVOT_ERR_OVERFLOW;
    if (nn > INT_MAX || Dx > INT_MAX || Dy > INT_MAX) return PIVOT_ERR_OVERFLOW;
    // All pairs at once: (Dx, N*N) x (Dy, N*N)^T, on one OpenBLAS thread (its sums then never
    // depend on the pool size other calls set).
    pivot_blas_guard_enter(1);
    pivot_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Dx, (int)Dy, (int)nn,
                      scale, grams_x, (int)nn, grams_y, (int)nn, 0.0, hsic, (int)Dy);
    pivot_blas_guard_leave();
    return PIVOT_OK;
}

int pivot_cka_hsic_self(double* hsic, const double* grams, size_t D, size_t N, int unbiased) {
    if (hsic == NULL || grams == NULL || D == 0) return PIVOT_ERR_VALUE;
    double scale = hsic_scale(N, unbiased);
    if (scale == 0.0) return PIVOT_ERR_VALUE;
    size_t nn;
    if (pivot_mul_size(&nn, N, N)) return PIVOT_ERR_OVERFLOW;
    for (size_t d = 0; d < D; d++) {
        const double* g = grams + d * nn;
        double sum = 0.0;
        for (size_t k = 0; k < nn; k++) sum += g[k] * g[k];
        hsic[d] = sum * scale;
    }
    return PIVOT_OK;
}

/* ---------------------------------------------------------------------------------- Path-Score */

/* Algorithm 1 on a 0/1 mask. Every path score in this file goes through here, so that equal
 * paths get bit-identical scores whichever function produced them. */
static double score_mask(const double* cka, const uint8_t* path, size_t D) {
    double score = 0.0;
    for (size_t i = 0; i < D; i++) {
        if (!path[i]) continue;
        for (size_t j = i + 1; j < D && !path[j]; j++) score += cka[i * D + j];
    }
    return score;
}

int pivot_path_score(double* score, const double* cka, const uint8_t* path, size_t D) {
    if (score == NULL || cka == NULL || path == NULL || D == 0) return PIVOT_ERR_VALUE;
    for (size_t i = 0; i < D; i++)
        if (path[i] > 1) return PIVOT_ERR_VALUE;
    *score = score_mask(cka, path, D);
    return PIVOT_OK;
}

/* A path while ranking: key has encoder i at bit D - 1 - i, so that comparing keys as numbers
 * compares masks lexicographically. */
typedef struct {
    double score;
    uint64_t key;
} ranked_path;

/* > 0 when a ranks before b: higher score first, then the greater key. */
static int rank_order(const ranked_path* a, const ranked_path* b) {
    if (a->score != b->score) return a->score > b->score ? 1 : -1;
    if (a->key != b->key) return a->key > b->key ? 1 : -1;
    return 0;
}

/* Sorts best first: a bottom-up merge sort (its comparison inlines, unlike qsort's). */
static void sort_best_first(ranked_path* items,    // (n) in place
                            ranked_path* scratch,  // (n)
                            size_t n) {
    ranked_path *src = items, *dst = scratch;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, out = lo;
            while (a < mid && b < hi) dst[out++] = rank_order(&src[b], &src[a]) > 0 ? src[b++] : src[a++];
            while (a < mid) dst[out++] = src[a++];
            while (b < hi) dst[out++] = src[b++];
        }
        ranked_path* t = src;
        src = dst;
        dst = t;
    }
    if (src != items) memcpy(items, src, n * sizeof(ranked_path));
}

/* Min-heap by rank_order: heap[0] is the worst path kept. */
static void sift_down(ranked_path* heap, size_t n, size_t i) {
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = 2 * i + 2;
        if (l < n && rank_order(&heap[l], &heap[worst]) < 0) worst = l;
        if (r < n && rank_order(&heap[r], &heap[worst]) < 0) worst = r;
        if (worst == i) return;
        ranked_path t = heap[i];
        heap[i] = heap[worst];
        heap[worst] = t;
        i = worst;
    }
}

static void sift_up(ranked_path* heap, size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (rank_order(&heap[i], &heap[parent]) >= 0) return;
        ranked_path t = heap[i];
        heap[i] = heap[parent];
        heap[parent] = t;
        i = parent;
    }
}

static size_t gcd_size(size_t a, size_t b) {
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* C(n, k), or 0 when it does not fit in a size_t. */
static size_t binomial(size_t n, size_t k) {
    if (k > n) return 0;
    if (k > n - k) k = n - k;
    size_t c = 1;  // C(n - k + i, i) after step i
    for (size_t i = 1; i <= k; i++) {
        // c * num / i is an integer; with g = gcd(c, i), i / g divides num, so no step overflows early.
        size_t num = n - k + i, g = gcd_size(c, i);
        size_t c_div = c / g, factor = num / (i / g);
        if (factor != 0 && c_div > SIZE_MAX / factor) return 0;
        c = c_div * factor;
    }
    return c;
}

int pivot_rank_paths(double* scores, uint8_t* paths, const double* cka, size_t D, size_t effort, size_t K) {
    if (scores == NULL || paths == NULL || cka == NULL || D == 0 || effort > D) return PIVOT_ERR_VALUE;
    if (D > 64) return PIVOT_ERR_VALUE;
    size_t total = binomial(D, effort);
    if (total == 0) return PIVOT_ERR_OVERFLOW;
    if (K == 0 || K > total) return PIVOT_ERR_VALUE;
    // K can be up to C(64, 32) ~ 1.8e18: K * 16 bytes would wrap around to a small allocation.
    size_t kept_bytes;
    if (pivot_mul_size(&kept_bytes, K, sizeof(ranked_path))) return PIVOT_ERR_OVERFLOW;

    ranked_path* kept = malloc(kept_bytes);
    ranked_path* scratch = malloc(kept_bytes);
    uint8_t* mask = calloc(D, 1);
    size_t* active = malloc((effort + 1) * sizeof(size_t));
    if (kept == NULL || scratch == NULL || mask == NULL || active == NULL) {
        free(kept);
        free(scratch);
        free(mask);
        free(active);
        return PIVOT_ERR_NOMEM;
    }

    // Visit every combination of `effort` active encoders in lexicographic order of indices.
    for (size_t m = 0; m < effort; m++) {
        active[m] = m;
        mask[m] = 1;
    }
    size_t n_kept = 0;
    for (;;) {
        uint64_t key = 0;
        for (size_t m = 0; m < effort; m++) key |= (uint64_t)1 << (D - 1 - active[m]);
        ranked_path p = {score_mask(cka, mask, D), key};
        if (n_kept < K) {
            kept[n_kept] = p;
            if (K < total) sift_up(kept, n_kept);
            n_kept++;
        } else if (rank_order(&p, &kept[0]) > 0) {
            kept[0] = p;
            sift_down(kept, K, 0);
        }
        // Next combination: the rightmost index that can move moves up by one, the rest follow it.
        size_t m = effort;
        while (m > 0 && active[m - 1] == D - effort + (m - 1)) m--;
        if (m == 0) break;
        m--;
        mask[active[m]] = 0;
        active[m]++;
        mask[active[m]] = 1;
        for (size_t r = m + 1; r < effort; r++) {
            mask[active[r]] = 0;
            active[r] = active[r - 1] + 1;
        }
        for (size_t r = m + 1; r < effort; r++) mask[active[r]] = 1;
    }

    sort_best_first(kept, scratch, K);
    for (size_t r = 0; r < K; r++) {
        scores[r] = kept[r].score;
        for (size_t i = 0; i < D; i++) paths[r * D + i] = (uint8_t)((kept[r].key >> (D - 1 - i)) & 1u);
    }
    free(kept);
    free(scratch);
    free(mask);
    free(active);
    return PIVOT_OK;
}

int pivot_best_paths(double* scores, uint8_t* paths, const double* cka, size_t D) {
    if (scores == NULL || paths == NULL || cka == NULL || D == 0) return PIVOT_ERR_VALUE;
    size_t table, table_bytes, run_bytes;
    if (D == SIZE_MAX || pivot_mul_size(&table, D, D + 1) || pivot_mul_size(&run_bytes, D * D, sizeof(double)) ||
        pivot_mul_size(&table_bytes, table, sizeof(double)) || sizeof(size_t) > sizeof(double))
        return PIVOT_ERR_OVERFLOW;
    // run[i * D + k] = sum of cka[i, j] for i < j <= k: what active i earns when i+1..k are skipped.
    double* run = malloc(run_bytes);
    // best[i * (D + 1) + e]: best score of encoders i..D-1 with i active and e active in all.
    double* best = malloc(table_bytes);
    // next[i * (D + 1) + e]: the next active encoder after i on that best suffix (D: none).
    size_t* next = malloc(table_bytes);  // sizeof(size_t) <= sizeof(double), checked above
    if (run == NULL || best == NULL || next == NULL) {
        free(run);
        free(best);
        free(next);
        return PIVOT_ERR_NOMEM;
    }
    for (size_t i = 0; i < D; i++) {
        double sum = 0.0;
        run[i * D + i] = 0.0;
        for (size_t k = i + 1; k < D; k++) {
            sum += cka[i * D + k];
            run[i * D + k] = sum;
        }
    }
    const size_t W = D + 1;
    for (size_t i = D; i-- > 0;) {
        best[i * W + 1] = run[i * D + D - 1];  // i is the last active encoder
        next[i * W + 1] = D;
        for (size_t e = 2; e <= D - i; e++) {
            // The next active encoder k leaves room for e - 2 more after it; the smallest k wins ties.
            double top = -INFINITY;
            size_t arg = D;
            for (size_t k = i + 1; k + (e - 1) <= D; k++) {
                double v = run[i * D + k - 1] + best[k * W + e - 1];
                if (v > top) {
                    top = v;
                    arg = k;
                }
            }
            best[i * W + e] = top;
            next[i * W + e] = arg;
        }
    }

    memset(paths, 0, table);
    scores[0] = 0.0;  // effort 0: every attention skipped, nothing precedes them
    for (size_t e = 1; e <= D; e++) {
        // Encoders before the first active one add nothing; the smallest first index wins ties.
        double top = -INFINITY;
        size_t first = D;
        for (size_t i = 0; i + e <= D; i++) {
            if (best[i * W + e] > top) {
                top = best[i * W + e];
                first = i;
            }
        }
        uint8_t* path = paths + e * D;
        for (size_t i = first, left = e; left > 0; left--) {
            path[i] = 1;
            i = next[i * W + left];
        }
        scores[e] = score_mask(cka, path, D);
    }
    free(run);
    free(best);
    free(next);
    return PIVOT_OK;
}
