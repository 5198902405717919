/* C-level test driver for pivot's csrc/ kernels, with no Python: valid calls on small random
 * inputs (results finite, shapes honoured, bitwise repeatable) and invalid calls (zero, huge and
 * overflowing sizes, NULL pointers, bad path values) that must return a status, never crash.
 * Built and run under AddressSanitizer + UndefinedBehaviorSanitizer and under valgrind memcheck
 * by tests/c/run.sh. Exit status 0 when every check passes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cka.h"
#include "engine.h"
#include "entropy.h"
#include "lvvit.h"
#include "modes.h"
#include "pivot_sim.h"
#include "pivot_status.h"
#include "threads.h"

static int checks = 0, failures = 0;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                            \
    } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float uniform(void) { /* xorshift64*, in [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}
static float *random_floats(size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * uniform();
    return p;
}
static int all_finite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

static void test_kernels(void) {
    const size_t N = 5, C = 8, H = 16;
    float *x = random_floats(N * C, 1.0f), *w = random_floats(C, 1.0f), *b = random_floats(C, 1.0f);
    float *out = calloc(N * C, sizeof(float));
    CHECK(pivot_layernorm_forward(out, x, w, b, N, C, 1e-6f) == PIVOT_OK && all_finite(out, N * C));
    CHECK(pivot_layernorm_forward(out, x, w, b, N, 0, 1e-6f) != PIVOT_OK);
    CHECK(pivot_layernorm_forward(out, x, w, b, N, C, NAN) != PIVOT_OK);
    CHECK(pivot_layernorm_forward(NULL, x, w, b, N, C, 1e-6f) != PIVOT_OK);
    CHECK(pivot_layernorm_forward(out, x, w, b, SIZE_MAX / 2, 4, 1e-6f) == PIVOT_ERR_OVERFLOW);
    CHECK(pivot_gelu_forward(out, x, N * C) == PIVOT_OK && all_finite(out, N * C));
    CHECK(pivot_gelu_forward(NULL, x, N * C) != PIVOT_OK);
    CHECK(pivot_softmax_forward(out, x, N, C) == PIVOT_OK && all_finite(out, N * C));
    float row = 0;
    for (size_t j = 0; j < C; j++) row += out[j];
    CHECK(fabsf(row - 1.0f) < 1e-5f);
    CHECK(pivot_softmax_forward(out, x, N, 0) != PIVOT_OK);
    CHECK(pivot_softmax_forward(out, x, SIZE_MAX / 2, 3) == PIVOT_ERR_OVERFLOW);
    /* NaN in, NaN out for its row only: documented, no crash */
    x[0] = NAN;
    CHECK(pivot_softmax_forward(out, x, N, C) == PIVOT_OK && isnan(out[0]) && all_finite(out + C, (N - 1) * C));
    x[0] = 0.5f;

    float *w1 = random_floats(H * C, 0.1f), *b1 = random_floats(H, 0.1f), *w2 = random_floats(C * H, 0.1f),
          *b2 = random_floats(C, 0.1f);
    CHECK(pivot_mlp_forward(out, x, w1, b1, w2, b2, N, C, H) == PIVOT_OK && all_finite(out, N * C));
    CHECK(pivot_mlp_forward(out, x, w1, b1, w2, b2, N, C, 0) != PIVOT_OK);
    CHECK(pivot_mlp_forward(out, x, NULL, b1, w2, b2, N, C, H) != PIVOT_OK);

    const size_t B = 1, T = 5, NH = 2;
    float *qw = random_floats(3 * C * C, 0.1f), *qb = random_floats(3 * C, 0.1f), *pw = random_floats(C * C, 0.1f),
          *pb = random_floats(C, 0.1f);
    CHECK(pivot_attention_forward(out, x, qw, qb, pw, pb, B, T, C, NH) == PIVOT_OK && all_finite(out, B * T * C));
    CHECK(pivot_attention_forward(out, x, qw, qb, pw, pb, B, T, C, 3) != PIVOT_OK); /* 8 % 3 */
    CHECK(pivot_attention_forward(out, x, qw, qb, pw, pb, B, T, C, 0) != PIVOT_OK);
    CHECK(pivot_attention_forward(out, x, qw, qb, pw, pb, SIZE_MAX / 4, T, C, NH) == PIVOT_ERR_OVERFLOW);
    CHECK(pivot_linear_attention_forward(out, x, qw, qb, pw, pb, B, T, C, NH, 1e-6f) == PIVOT_OK &&
          all_finite(out, B * T * C));
    CHECK(pivot_linear_attention_forward(out, x, qw, qb, pw, pb, SIZE_MAX / 4, T, C, NH, 1e-6f) != PIVOT_OK);
    float *probs = random_floats(B * NH * T * T, 1.0f);
    CHECK(pivot_reuse_attention_forward(out, x, probs, qw, qb, pw, pb, B, T, C, NH) == PIVOT_OK);
    CHECK(pivot_reuse_attention_forward(out, x, NULL, qw, qb, pw, pb, B, T, C, NH) != PIVOT_OK);

    size_t np = 0;
    CHECK(pivot_block_num_params(&np, C, H) == PIVOT_OK && np > 0);
    CHECK(pivot_block_num_params(&np, SIZE_MAX / 2, H) == PIVOT_ERR_OVERFLOW);
    free(x); free(w); free(b); free(out); free(w1); free(b1); free(w2); free(b2);
    free(qw); free(qb); free(pw); free(pb); free(probs);
}

static void test_vit(void) {
    pivot_vit_config cfg = {.img_size = 8, .patch_size = 4, .in_chans = 1, .num_classes = 3, .embed_dim = 8,
                            .depth = 3, .num_heads = 2, .mlp_hidden = 16, .distilled = 0, .norm_eps = 1e-6f};
    size_t np = 0;
    CHECK(pivot_vit_num_params(&np, &cfg) == PIVOT_OK && np > 0);
    const size_t B = 2, T = 5;
    float *params = random_floats(np, 0.05f), *img = random_floats(B * 64, 1.0f);
    float logits[6], again[6];
    float *attn = calloc(3 * B * T * 8, sizeof(float)), *mlp = calloc(3 * B * T * 8, sizeof(float));
    uint8_t path[3] = {1, 0, 1};
    for (int threads = 1; threads <= 3; threads++) {
        CHECK(pivot_vit_forward(logits, attn, mlp, img, params, &cfg, path, B, threads) == PIVOT_OK);
        CHECK(all_finite(logits, 6));
        CHECK(pivot_vit_forward(again, NULL, NULL, img, params, &cfg, path, B, threads) == PIVOT_OK);
        CHECK(memcmp(logits, again, sizeof logits) == 0); /* bitwise repeatable */
    }
    uint8_t bad_path[3] = {1, 3, 1}, reuse_first[3] = {2, 1, 1}, reuse[3] = {1, 2, 0};
    CHECK(pivot_vit_forward(logits, NULL, NULL, img, params, &cfg, bad_path, B, 1) != PIVOT_OK);
    pivot_vit_extras extras;
    memset(&extras, 0, sizeof extras);
    extras.skip_lam = 1.0f;
    CHECK(pivot_vit_forward_ex(logits, NULL, NULL, img, params, &cfg, &extras, reuse, B, 2) == PIVOT_OK);
    CHECK(pivot_vit_forward_ex(logits, NULL, NULL, img, params, &cfg, &extras, reuse_first, B, 2) != PIVOT_OK);
    CHECK(pivot_vit_forward_ex(logits, NULL, NULL, img, params, &cfg, &extras, bad_path, B, 2) != PIVOT_OK);
    extras.attention_kind = PIVOT_ATTENTION_RELU_LINEAR;
    extras.linear_eps = 1e-6f;
    CHECK(pivot_vit_forward_ex(logits, NULL, NULL, img, params, &cfg, &extras, path, B, 2) == PIVOT_OK);
    CHECK(pivot_vit_forward(logits, NULL, NULL, img, params, &cfg, path, 0, 1) != PIVOT_OK || 1); /* B = 0: any status */
    CHECK(pivot_vit_forward(logits, NULL, NULL, img, params, &cfg, path, B, 0) != PIVOT_OK);
    CHECK(pivot_vit_forward(logits, NULL, NULL, img, NULL, &cfg, path, B, 1) != PIVOT_OK);
    CHECK(pivot_vit_forward(logits, NULL, NULL, img, params, NULL, path, B, 1) != PIVOT_OK);
    /* configs that are wrong or whose size products overflow */
    pivot_vit_config bad = cfg;
    bad.patch_size = bad.img_size + 1; /* a patch larger than the image: no patch (a floored grid is fine) */
    CHECK(pivot_vit_num_params(&np, &bad) != PIVOT_OK);
    bad.patch_size = 0;
    CHECK(pivot_vit_num_params(&np, &bad) != PIVOT_OK);
    bad = cfg;
    bad.num_heads = 0;
    CHECK(pivot_vit_num_params(&np, &bad) != PIVOT_OK);
    bad = cfg;
    bad.depth = SIZE_MAX / 4;
    CHECK(pivot_vit_num_params(&np, &bad) == PIVOT_ERR_OVERFLOW);
    bad = cfg;
    bad.img_size = (size_t)1 << 40;
    bad.patch_size = 1;
    CHECK(pivot_vit_num_params(&np, &bad) == PIVOT_ERR_OVERFLOW);
    bad = cfg;
    bad.norm_eps = NAN;
    CHECK(pivot_vit_num_params(&np, &bad) != PIVOT_OK);
    /* NaN and Inf pixels: a documented NaN/Inf result, never a crash */
    img[0] = NAN;
    img[70] = INFINITY;
    CHECK(pivot_vit_forward(logits, NULL, NULL, img, params, &cfg, path, B, 2) == PIVOT_OK);
    free(params); free(img); free(attn); free(mlp);
}

static void test_model(void) {
    pivot_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vit = (pivot_vit_config){.img_size = 8, .patch_size = 4, .in_chans = 3, .num_classes = 3, .embed_dim = 8,
                                 .depth = 2, .num_heads = 2, .mlp_hidden = 16, .distilled = 0, .norm_eps = 1e-5f};
    cfg.stem_channels = 4;
    cfg.skip_lam = 2.0f;
    cfg.aux_head = 1;
    size_t np = 0, ns = 0;
    CHECK(pivot_model_num_params(&np, &ns, &cfg) == PIVOT_OK && np > 0 && ns > 0);
    float *params = random_floats(np, 0.05f), *stem = random_floats(ns, 0.1f), *img = random_floats(2 * 3 * 64, 1.0f);
    float logits[6];
    uint8_t path[2] = {1, 0};
    CHECK(pivot_model_forward(logits, NULL, NULL, NULL, img, stem, params, NULL, NULL, &cfg, path, 2, 2) == PIVOT_OK && all_finite(logits, 6));
    CHECK(pivot_model_forward(logits, NULL, NULL, NULL, img, NULL, params, NULL, NULL, &cfg, path, 2, 2) != PIVOT_OK);
    float *out = calloc(2 * 4 * 16, sizeof(float));
    CHECK(pivot_model_stem_forward(out, img, stem, &cfg, 2, 1) == PIVOT_OK && all_finite(out, 2 * 4 * 16));
    pivot_model_config bad = cfg;
    bad.skip_lam = 0.0f; /* refused by the encoder that uses it */
    CHECK(pivot_model_forward(logits, NULL, NULL, NULL, img, stem, params, NULL, NULL, &bad, path, 2, 2) != PIVOT_OK);
    bad = cfg;
    bad.stem_channels = SIZE_MAX / 8;
    CHECK(pivot_model_num_params(&np, &ns, &bad) != PIVOT_OK);
    float *w = random_floats(4 * 3 * 9, 0.1f), *b = random_floats(4, 0.1f), *conv = calloc(2 * 4 * 64, sizeof(float));
    CHECK(pivot_conv2d_forward(conv, img, w, b, 2, 3, 8, 8, 4, 3, 1, 1, 1, 2) == PIVOT_OK && all_finite(conv, 2 * 4 * 64));
    CHECK(pivot_conv2d_forward(conv, img, w, b, 2, 3, 8, 8, 4, 3, 0, 1, 1, 2) != PIVOT_OK);           /* stride 0 */
    CHECK(pivot_conv2d_forward(conv, img, w, b, 2, 3, 8, 8, 4, 20, 1, 0, 1, 2) != PIVOT_OK);          /* kernel > input */
    CHECK(pivot_conv2d_forward(conv, img, w, b, SIZE_MAX / 2, 3, 8, 8, 4, 3, 1, 1, 1, 1) != PIVOT_OK); /* overflow */
    free(params); free(stem); free(img); free(out); free(w); free(b); free(conv);
}

static void test_cka(void) {
    const size_t N = 6, P = 10, D = 4;
    float *xa = random_floats(N * P, 1.0f), *xb = random_floats(N * P, 1.0f), *shift = random_floats(P, 0.1f);
    double *gram = calloc(N * N, sizeof(double));
    CHECK(pivot_cka_gram(gram, xa, xb, shift, N, N, P, 2) == PIVOT_OK);
    CHECK(pivot_cka_gram(gram, xa, NULL, NULL, N, N, P, 1) == PIVOT_OK);
    CHECK(pivot_cka_gram(gram, xa, NULL, NULL, N, N + 1, P, 1) != PIVOT_OK);
    CHECK(pivot_cka_gram(gram, xa, xb, NULL, SIZE_MAX / 2, 4, P, 1) == PIVOT_ERR_OVERFLOW);
    CHECK(pivot_cka_gram(gram, xa, xb, NULL, (size_t)1 << 32, (size_t)1 << 29, P, 1) == PIVOT_ERR_OVERFLOW); /* *8 wraps */
    CHECK(pivot_cka_center_gram(gram, N, 1) == PIVOT_OK);
    CHECK(pivot_cka_center_gram(gram, 3, 1) != PIVOT_OK);
    CHECK(pivot_cka_center_gram(gram, SIZE_MAX / 2, 0) == PIVOT_ERR_OVERFLOW);
    double *grams = calloc(2 * N * N, sizeof(double)), hsic[4], self[2];
    memcpy(grams, gram, N * N * sizeof(double));
    memcpy(grams + N * N, gram, N * N * sizeof(double));
    CHECK(pivot_cka_hsic(hsic, grams, grams, 2, 2, N, 1) == PIVOT_OK);
    CHECK(pivot_cka_hsic_self(self, grams, 2, N, 1) == PIVOT_OK && fabs(self[0] - hsic[0]) <= 1e-9 * fabs(hsic[0]));
    CHECK(pivot_cka_hsic(hsic, grams, grams, 2, 2, SIZE_MAX / 2, 0) == PIVOT_ERR_OVERFLOW);

    double cka[16];
    for (size_t i = 0; i < D * D; i++) cka[i] = 0.5 + 0.5 * uniform();
    uint8_t path[4] = {1, 0, 1, 1}, bad[4] = {1, 5, 1, 1};
    double score = 0;
    CHECK(pivot_path_score(&score, cka, path, D) == PIVOT_OK && isfinite(score));
    CHECK(pivot_path_score(&score, cka, bad, D) != PIVOT_OK);
    double scores[6], best[5];
    uint8_t paths[6 * 4], best_paths[5 * 4];
    CHECK(pivot_rank_paths(scores, paths, cka, D, 2, 6) == PIVOT_OK && scores[0] >= scores[5]);
    CHECK(pivot_rank_paths(scores, paths, cka, D, 2, 7) != PIVOT_OK); /* k > C(4, 2) */
    CHECK(pivot_rank_paths(scores, paths, cka, D, 5, 1) != PIVOT_OK); /* effort > D */
    /* k up to C(64, 32) ~ 1.8e18: k * sizeof(entry) wraps around 2^64 -> must be refused, not under-allocated */
    double *cka64 = calloc(64 * 64, sizeof(double));
    CHECK(pivot_rank_paths(scores, paths, cka64, 64, 32, (size_t)1 << 60) == PIVOT_ERR_OVERFLOW);
    CHECK(pivot_rank_paths(scores, paths, cka64, 65, 1, 1) != PIVOT_OK);
    CHECK(pivot_best_paths(best, best_paths, cka, D) == PIVOT_OK);
    CHECK(pivot_best_paths(best, best_paths, cka, SIZE_MAX) == PIVOT_ERR_OVERFLOW);
    CHECK(pivot_best_paths(best, best_paths, cka, (size_t)1 << 31) == PIVOT_ERR_OVERFLOW); /* D*D*8 wraps */

    float logits[2 * 3] = {1, 2, 3, NAN, 0, 0}, ent[2], probs[6];
    CHECK(pivot_softmax_entropy(probs, ent, logits, 2, 3) == PIVOT_OK && isfinite(ent[0]) && isnan(ent[1]));
    CHECK(pivot_softmax_entropy(NULL, ent, logits, 2, 1) != PIVOT_OK);
    free(xa); free(xb); free(shift); free(gram); free(grams); free(cka64);
}

static pivot_sim_hw zcu102(void) {
    /* pivot.sim.ZCU102 in SI units, as csrc/bind/sim.c reads it */
    pivot_sim_hw hw = {.array_rows = 64, .array_cols = 36, .dataflow = PIVOT_SIM_IS, .clock_hz = 125000000.0,
                       .word_bytes = 1.0, .global_buffer_bytes = 16384.0, .ipmem_bytes = 8192.0,
                       .wtmem_bytes = 8192.0, .opmem_bytes = 8192.0, .sram_active_fraction = 0.5,
                       .dram_bytes_per_s = 19200000000.0, .ps_clock_hz = 1200000000.0, .softmax_cycles = 14.68,
                       .gelu_cycles = 0.125, .layernorm_cycles = 0.25, .entropy_cycles = 36.0,
                       .mac_energy_j = 1.888e-11, .sram_access_energy_j = 5e-12, .dram_energy_j_per_byte = 4e-11,
                       .ps_active_power_w = 4.101, .pe_array_static_w = 0.8, .sram_static_w = 0.3,
                       .periphery_static_w = 1.5, .ps_static_w = 1.2};
    return hw;
}

static void test_sim(void) {
    pivot_sim_hw hw = zcu102();
    CHECK(pivot_sim_check_hw(&hw) == PIVOT_OK);
    pivot_sim_vit vit = {.batch = 1, .depth = 12, .embed_dim = 384, .num_heads = 6, .mlp_hidden = 1536,
                         .num_tokens = 197, .num_patches = 196, .patch_dim = 768, .num_classes = 1000,
                         .num_prefix_tokens = 1, .distilled = 0};
    uint8_t path[12], reuse[12];
    for (int i = 0; i < 12; i++) path[i] = i % 3 != 1, reuse[i] = i % 3 == 1 ? 2 : 1;
    double totals[PIVOT_SIM_TOT_FIELDS];
    int64_t max_rows = pivot_sim_max_rows(12, 3, PIVOT_ATTENTION_RELU_LINEAR, 1), n = 0;
    double *rows = calloc((size_t)max_rows * PIVOT_SIM_ROW_FIELDS, sizeof(double));
    int64_t cycles = 0;
    CHECK(pivot_sim_gemm_cycles(&cycles, 197, 1152, 384, 64, 36, 0) == PIVOT_OK && cycles > 0);
    CHECK(pivot_sim_gemm_cycles(&cycles, INT64_MAX, INT64_MAX, INT64_MAX, 64, 36, 0) != PIVOT_OK);
    CHECK(pivot_sim_gemm_cycles(&cycles, 1, 1, 1, 0, 36, 0) != PIVOT_OK);
    const pivot_sim_layers plain = {.entropy = 1}, linear = {.attention_kind = PIVOT_ATTENTION_RELU_LINEAR, .entropy = 1};
    int64_t stem[9] = {12544, 64, 147, 12544, 64, 576, 12544, 64, 576};
    const pivot_sim_layers lvvit = {.stem = stem, .n_stem = 3, .aux_head = 1, .entropy = 1};
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &plain, path, max_rows) == PIVOT_OK && n > 0);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &plain, path, 3) != PIVOT_OK); /* too few rows */
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &plain, reuse, max_rows) == PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &linear, reuse, max_rows) != PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &lvvit, path, max_rows) == PIVOT_OK);
    pivot_sim_vit bad = vit;
    bad.batch = INT64_MAX / 2;
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &bad, &plain, path, max_rows) != PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &bad, &linear, path, max_rows) != PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &bad, &lvvit, path, max_rows) != PIVOT_OK);
    /* depth just under the old bound: max-rows arithmetic must not overflow (it would be UB) */
    bad = vit;
    bad.depth = (INT64_MAX - 5) / 10;
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &bad, &lvvit, path, max_rows) != PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &bad, &plain, path, max_rows) != PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &bad, &linear, path, max_rows) != PIVOT_OK);
    bad = vit;
    bad.embed_dim = INT64_MAX / 2;
    bad.num_heads = 1;
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &bad, &plain, path, max_rows) != PIVOT_OK);
    uint8_t active[12];
    memset(active, 1, sizeof(active));
    pivot_sim_layers layers = {.stem = stem, .n_stem = 3, .attention_kind = PIVOT_ATTENTION_RELU_LINEAR, .aux_head = 1,
                               .entropy = 1};
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &layers, active, max_rows) == PIVOT_OK &&
          n == pivot_sim_max_rows(12, 3, PIVOT_ATTENTION_RELU_LINEAR, 1) - 1); /* every row but head_dist */
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &layers, reuse, max_rows) != PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &layers, active, n - 1) != PIVOT_OK);
    layers.n_stem = PIVOT_SIM_MAX_STEM + 1;
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &layers, active, max_rows) != PIVOT_OK);
    CHECK(pivot_sim_max_rows(0, 0, 0, 0) < 0 && pivot_sim_max_rows(PIVOT_SIM_MAX_DEPTH + 1, 0, 0, 0) < 0);
    active[5] = 3;
    CHECK(pivot_sim_forward(rows, &n, totals, &hw, &vit, &plain, active, max_rows) != PIVOT_OK);
    int64_t shapes[8] = {197, 1152, 384, 12, INT64_MAX, INT64_MAX, 2, 1};
    CHECK(pivot_sim_gemms(rows, totals, &hw, shapes, 1) == PIVOT_OK);
    CHECK(pivot_sim_gemms(rows, totals, &hw, shapes, 2) != PIVOT_OK);
    pivot_sim_hw bad_hw = hw;
    bad_hw.clock_hz = NAN;
    CHECK(pivot_sim_check_hw(&bad_hw) != PIVOT_OK);
    CHECK(pivot_sim_forward(rows, &n, totals, &bad_hw, &vit, &plain, path, max_rows) != PIVOT_OK);
    free(rows);
}

static void noop_team(void *arg, pivot_team *team, int tid, int nthreads) {}

static void test_thread_cap(void) {
    /* one cap, refused beyond it (never lowered silently) */
    CHECK(pivot_clamp_threads(PIVOT_MAX_THREADS) == PIVOT_MAX_THREADS && pivot_clamp_threads(1) == 1);
    CHECK(pivot_clamp_threads(PIVOT_MAX_THREADS + 1) < 0 && pivot_clamp_threads(0) < 0);
    CHECK(pivot_team_run(noop_team, NULL, PIVOT_MAX_THREADS + 1) == PIVOT_ERR_VALUE);
    CHECK(pivot_team_run(noop_team, NULL, 2) == PIVOT_OK);
}

int main(void) {
    test_kernels();
    test_vit();
    test_model();
    test_cka();
    test_sim();
    test_thread_cap();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
