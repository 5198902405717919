/* PIVOT-Sim: analytical cycle, memory and energy model of ViT inference on a systolic array.
 * Formulas and their SCALE-Sim provenance are documented in pivot/reference/sim.py and
 * pivot/sim.py; this file follows the reference line by line. */
#include <math.h>
#include <string.h>

#include "pivot_sim.h"

/* ------------------------------------------------------------------ checked int64 arithmetic */

/* out = a * b for a, b >= 0, or PIVOT_ERR_OVERFLOW when the product exceeds INT64_MAX. */
static int mul_i64(int64_t *out, int64_t a, int64_t b) {
    size_t p;
    if (pivot_mul_size(&p, (size_t)a, (size_t)b) != PIVOT_OK || p > (size_t)INT64_MAX) return PIVOT_ERR_OVERFLOW;
    *out = (int64_t)p;
    return PIVOT_OK;
}

static int mul3_i64(int64_t *out, int64_t a, int64_t b, int64_t c) {
    int64_t ab;
    int status = mul_i64(&ab, a, b);
    if (status != PIVOT_OK) return status;
    return mul_i64(out, ab, c);
}

static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

static int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Counts above 2^53 would lose exactness in the double rows. */
#define PIVOT_SIM_MAX_EXACT ((int64_t)1 << 53)

/* ------------------------------------------------------------------ cycles */

/* (S_r, S_c, T) of SCALE-Sim: along the array rows, along its columns, streamed in time. */
static void sim_mapping(int64_t *Sr, int64_t *Sc, int64_t *T, int64_t M, int64_t N, int64_t K, int dataflow) {
    if (dataflow == PIVOT_SIM_IS) { *Sr = K; *Sc = M; *T = N; }
    else if (dataflow == PIVOT_SIM_WS) { *Sr = K; *Sc = N; *T = M; }
    else { *Sr = M; *Sc = N; *T = K; }
}

int pivot_sim_gemm_cycles(int64_t *cycles, int64_t M, int64_t N, int64_t K, int64_t rows, int64_t cols,
                          int dataflow) {
    if (M < 1 || N < 1 || K < 1 || rows < 1 || cols < 1) return PIVOT_ERR_VALUE;
    if (dataflow != PIVOT_SIM_IS && dataflow != PIVOT_SIM_WS && dataflow != PIVOT_SIM_OS) return PIVOT_ERR_VALUE;
    if (rows > INT64_MAX / 4 || cols > INT64_MAX / 4) return PIVOT_ERR_OVERFLOW;
    int64_t Sr, Sc, T;
    sim_mapping(&Sr, &Sc, &T, M, N, K, dataflow);
    /* One fold: IS/WS load the stationary tile (R), stream (T) and drain the skew (R + C - 2);
     * OS has no stationary load. */
    int64_t fold_base = (dataflow == PIVOT_SIM_OS ? rows : 2 * rows) + cols - 2;
    if (fold_base > INT64_MAX - T) return PIVOT_ERR_OVERFLOW;
    int64_t total;
    int status = mul3_i64(&total, ceil_div(Sr, rows), ceil_div(Sc, cols), fold_base + T);
    if (status != PIVOT_OK) return status;
    *cycles = total - 1; /* SCALE-Sim reports the last cycle's index, counting from 0 */
    return PIVOT_OK;
}

/* ------------------------------------------------------------------ hardware */

static int finite_nonneg(double x) { return isfinite(x) && x >= 0.0; }
static int finite_pos(double x) { return isfinite(x) && x > 0.0; }

int pivot_sim_check_hw(const pivot_sim_hw *hw) {
    if (hw->array_rows < 1 || hw->array_cols < 1) return PIVOT_ERR_VALUE;
    if (hw->dataflow != PIVOT_SIM_IS && hw->dataflow != PIVOT_SIM_WS && hw->dataflow != PIVOT_SIM_OS)
        return PIVOT_ERR_VALUE;
    if (!finite_pos(hw->clock_hz) || !finite_pos(hw->word_bytes) || !finite_pos(hw->ps_clock_hz)) return PIVOT_ERR_VALUE;
    if (!finite_nonneg(hw->global_buffer_bytes) || !finite_pos(hw->ipmem_bytes) || !finite_pos(hw->wtmem_bytes) ||
        !finite_pos(hw->opmem_bytes))
        return PIVOT_ERR_VALUE;
    if (!(hw->sram_active_fraction > 0.0 && hw->sram_active_fraction <= 1.0)) return PIVOT_ERR_VALUE;
    if (!(hw->dram_bytes_per_s > 0.0)) return PIVOT_ERR_VALUE; /* +inf allowed, NaN rejected */
    const double nonneg[] = {hw->softmax_cycles, hw->gelu_cycles, hw->layernorm_cycles, hw->entropy_cycles,
                             hw->mac_energy_j, hw->sram_access_energy_j, hw->dram_energy_j_per_byte,
                             hw->ps_active_power_w, hw->pe_array_static_w, hw->sram_static_w,
                             hw->periphery_static_w, hw->ps_static_w};
    for (size_t i = 0; i < sizeof(nonneg) / sizeof(nonneg[0]); i++)
        if (!finite_nonneg(nonneg[i])) return PIVOT_ERR_VALUE;
    return PIVOT_OK;
}

/* ------------------------------------------------------------------ memory */

/* On-chip words available for reuse: the active part of each SRAM; the GB's adds to the inputs. */
static void sim_capacities(double *cap_in, double *cap_wt, double *cap_out, const pivot_sim_hw *hw) {
    double a = hw->sram_active_fraction, w = hw->word_bytes, gb = hw->global_buffer_bytes;
    *cap_in = floor((hw->ipmem_bytes + gb) * a / w);
    *cap_wt = floor((hw->wtmem_bytes + gb) * a / w);
    *cap_out = floor(hw->opmem_bytes * a / w);
}

typedef struct {
    int64_t compute;                  /* cycles of one GEMM */
    int64_t ifmap_reads, filter_reads, ofmap_writes;   /* array-side SRAM words */
    int64_t dram_reads, dram_writes;  /* DRAM words */
    double exposed;                   /* words moved while the array waits (fill + drain) */
} sim_gemm_counts;

static int sim_gemm_counts_of(sim_gemm_counts *g, const pivot_sim_hw *hw, int64_t M, int64_t N, int64_t K) {
    const int64_t R = hw->array_rows, C = hw->array_cols;
    const int df = hw->dataflow;
    int status = pivot_sim_gemm_cycles(&g->compute, M, N, K, R, C, df);
    if (status != PIVOT_OK) return status;
    int64_t Sr, Sc, T;
    sim_mapping(&Sr, &Sc, &T, M, N, K, df);
    const int64_t row_folds = ceil_div(Sr, R), col_folds = ceil_div(Sc, C);
    int64_t MK, KN, MN;
    if ((status = mul_i64(&MK, M, K)) || (status = mul_i64(&KN, K, N)) || (status = mul_i64(&MN, M, N))) return status;
    double cap_in, cap_wt, cap_out;
    sim_capacities(&cap_in, &cap_wt, &cap_out, hw);

    /* Array-side SRAM accesses (SCALE-Sim's SRAM IFMAP/Filter reads and OFMAP writes). */
    int64_t a_passes = 1, b_passes = 1, out_passes = 1;
    if (df == PIVOT_SIM_IS) { b_passes = col_folds; out_passes = row_folds; }
    else if (df == PIVOT_SIM_WS) { a_passes = col_folds; out_passes = row_folds; }
    else { a_passes = col_folds; b_passes = row_folds; }
    if ((status = mul_i64(&g->ifmap_reads, MK, a_passes)) || (status = mul_i64(&g->filter_reads, KN, b_passes)) ||
        (status = mul_i64(&g->ofmap_writes, MN, out_passes)))
        return status;

    /* DRAM: an operand is fetched once when what it re-streams fits on chip, else once per pass. */
    int64_t a_dram, b_dram, pass_outputs;
    if (df == PIVOT_SIM_IS) {
        a_dram = MK;
        b_dram = (double)KN <= cap_wt ? KN : g->filter_reads;
        status = mul_i64(&pass_outputs, min_i64(C, M), N);
    } else if (df == PIVOT_SIM_WS) {
        a_dram = (double)MK <= cap_in ? MK : g->ifmap_reads;
        b_dram = KN;
        status = mul_i64(&pass_outputs, M, min_i64(C, N));
    } else {
        int64_t b_slice;
        a_dram = (double)MK <= cap_in ? MK : g->ifmap_reads;
        status = mul_i64(&b_slice, K, min_i64(C, N));
        b_dram = (double)b_slice <= cap_wt ? KN : g->filter_reads;
        pass_outputs = 0; /* OS accumulates in the PEs */
    }
    if (status != PIVOT_OK) return status;
    int64_t partial_reads = 0;
    if (df != PIVOT_SIM_OS && row_folds > 1 && (double)pass_outputs > cap_out) {
        /* Partial sums do not fit in OPMEM: every fold's go out, all but the first come back. */
        g->dram_writes = g->ofmap_writes;
        if ((status = mul_i64(&partial_reads, MN, row_folds - 1))) return status;
    } else {
        g->dram_writes = MN;
    }
    if (a_dram > PIVOT_SIM_MAX_EXACT || b_dram > PIVOT_SIM_MAX_EXACT || partial_reads > PIVOT_SIM_MAX_EXACT ||
        g->filter_reads > PIVOT_SIM_MAX_EXACT || g->ifmap_reads > PIVOT_SIM_MAX_EXACT ||
        g->ofmap_writes > PIVOT_SIM_MAX_EXACT)
        return PIVOT_ERR_OVERFLOW;
    g->dram_reads = a_dram + b_dram + partial_reads;
    if (g->dram_reads > PIVOT_SIM_MAX_EXACT) return PIVOT_ERR_OVERFLOW;

    /* Fill (first fold's operands) and drain (last fold's outputs), each capped by its SRAM part. */
    const int64_t r0 = min_i64(R, Sr), c0 = min_i64(C, Sc);
    const int64_t r_last = Sr - (row_folds - 1) * R, c_last = Sc - (col_folds - 1) * C;
    double fill, drain;
    if (df == PIVOT_SIM_IS) {
        fill = fmin((double)r0 * (double)c0, cap_in) + fmin((double)r0 * (double)T, cap_wt);
        drain = (double)c_last * (double)T;
    } else if (df == PIVOT_SIM_WS) {
        fill = fmin((double)r0 * (double)c0, cap_wt) + fmin((double)r0 * (double)T, cap_in);
        drain = (double)c_last * (double)T;
    } else {
        fill = fmin((double)r0 * (double)T, cap_in) + fmin((double)T * (double)c0, cap_wt);
        drain = (double)r_last * (double)c_last;
    }
    g->exposed = fill + fmin(drain, cap_out);
    return PIVOT_OK;
}

/* Cycles the array waits: exposed fill/drain plus the transfer time double buffering cannot hide. */
static double sim_stall_cycles(const pivot_sim_hw *hw, const sim_gemm_counts *g) {
    double bytes_per_cycle = hw->dram_bytes_per_s / hw->clock_hz;
    if (isinf(bytes_per_cycle)) return 0.0;
    double transfer = (double)(g->dram_reads + g->dram_writes) * hw->word_bytes / bytes_per_cycle;
    double exposed = g->exposed * hw->word_bytes / bytes_per_cycle;
    return ceil(exposed + fmax(0.0, transfer - exposed - (double)g->compute));
}

/* ------------------------------------------------------------------ energy */

/* Energy by component: activity times energy per event plus static power times the row's delay.
 * staged_words: words moved to or from DRAM, each costing a GB and an IP/WT/OPMEM access. */
static void sim_energy(double *row, const pivot_sim_hw *hw, double staged_words) {
    const double d = row[PIVOT_SIM_ROW_DELAY_S];
    const double dram_bytes = (row[PIVOT_SIM_ROW_DRAM_READS] + row[PIVOT_SIM_ROW_DRAM_WRITES]) * hw->word_bytes;
    const double pe = row[PIVOT_SIM_ROW_MACS] * hw->mac_energy_j + hw->pe_array_static_w * d;
    const double sram = (row[PIVOT_SIM_ROW_SRAM_READS] + row[PIVOT_SIM_ROW_SRAM_WRITES] + 2.0 * staged_words) *
                            hw->sram_access_energy_j + hw->sram_static_w * d;
    const double periphery = dram_bytes * hw->dram_energy_j_per_byte + hw->periphery_static_w * d;
    const double ps = row[PIVOT_SIM_ROW_PS_CYCLES] / hw->ps_clock_hz * hw->ps_active_power_w + hw->ps_static_w * d;
    row[PIVOT_SIM_ROW_ENERGY_PE_ARRAY] = pe;
    row[PIVOT_SIM_ROW_ENERGY_SRAM] = sram;
    row[PIVOT_SIM_ROW_ENERGY_PERIPHERY] = periphery;
    row[PIVOT_SIM_ROW_ENERGY_PS] = ps;
    row[PIVOT_SIM_ROW_ENERGY] = pe + sram + periphery + ps;
}

/* ------------------------------------------------------------------ rows */

int pivot_sim_gemm_row(double *row, const pivot_sim_hw *hw, int64_t M, int64_t N, int64_t K, int64_t count,
                       int op, int64_t block, int module) {
    if (count < 1) return PIVOT_ERR_VALUE;
    sim_gemm_counts g;
    int status = sim_gemm_counts_of(&g, hw, M, N, K);
    if (status != PIVOT_OK) return status;
    int64_t macs;
    if ((status = mul3_i64(&macs, M, N, K)) || (status = mul_i64(&macs, macs, count))) return status;
    if (macs > PIVOT_SIM_MAX_EXACT) return PIVOT_ERR_OVERFLOW;
    const double n = (double)count;
    const double stall = sim_stall_cycles(hw, &g);
    const double busy = (double)g.compute + stall;
    memset(row, 0, PIVOT_SIM_ROW_FIELDS * sizeof(double));
    row[PIVOT_SIM_ROW_OP] = op;
    row[PIVOT_SIM_ROW_BLOCK] = (double)block;
    row[PIVOT_SIM_ROW_MODULE] = module;
    row[PIVOT_SIM_ROW_IS_PS] = 0.0;
    row[PIVOT_SIM_ROW_M] = (double)M;
    row[PIVOT_SIM_ROW_N] = (double)N;
    row[PIVOT_SIM_ROW_K] = (double)K;
    row[PIVOT_SIM_ROW_COUNT] = n;
    row[PIVOT_SIM_ROW_MACS] = (double)macs;
    row[PIVOT_SIM_ROW_COMPUTE_CYCLES] = n * (double)g.compute;
    row[PIVOT_SIM_ROW_STALL_CYCLES] = n * stall;
    row[PIVOT_SIM_ROW_UTILIZATION_PCT] =
        100.0 * ((double)M * (double)N * (double)K) / ((double)hw->array_rows * (double)hw->array_cols * busy);
    row[PIVOT_SIM_ROW_SRAM_READS] = n * (double)(g.ifmap_reads + g.filter_reads);
    row[PIVOT_SIM_ROW_SRAM_WRITES] = n * (double)g.ofmap_writes;
    row[PIVOT_SIM_ROW_DRAM_READS] = n * (double)g.dram_reads;
    row[PIVOT_SIM_ROW_DRAM_WRITES] = n * (double)g.dram_writes;
    row[PIVOT_SIM_ROW_DELAY_S] = n * busy / hw->clock_hz;
    sim_energy(row, hw, n * (double)(g.dram_reads + g.dram_writes));
    return PIVOT_OK;
}

int pivot_sim_ps_row(double *row, const pivot_sim_hw *hw, int op, int64_t rows, int64_t cols, int64_t count,
                     int64_t block, int module) {
    if (rows < 1 || cols < 1 || count < 1) return PIVOT_ERR_VALUE;
    double per_element;
    switch (op) {
    case PIVOT_SIM_OP_NORM1:
    case PIVOT_SIM_OP_NORM2:
    case PIVOT_SIM_OP_NORM: per_element = hw->layernorm_cycles; break;
    case PIVOT_SIM_OP_SOFTMAX: per_element = hw->softmax_cycles; break;
    case PIVOT_SIM_OP_GELU: per_element = hw->gelu_cycles; break;
    case PIVOT_SIM_OP_ENTROPY: per_element = hw->entropy_cycles; break;
    default: return PIVOT_ERR_VALUE;
    }
    int64_t elements;
    int status = mul3_i64(&elements, count, rows, cols);
    if (status != PIVOT_OK) return status;
    if (elements > PIVOT_SIM_MAX_EXACT) return PIVOT_ERR_OVERFLOW;
    const double ps_cycles = (double)elements * per_element;
    memset(row, 0, PIVOT_SIM_ROW_FIELDS * sizeof(double));
    row[PIVOT_SIM_ROW_OP] = op;
    row[PIVOT_SIM_ROW_BLOCK] = (double)block;
    row[PIVOT_SIM_ROW_MODULE] = module;
    row[PIVOT_SIM_ROW_IS_PS] = 1.0;
    row[PIVOT_SIM_ROW_M] = (double)rows;
    row[PIVOT_SIM_ROW_N] = (double)cols;
    row[PIVOT_SIM_ROW_COUNT] = (double)count;
    row[PIVOT_SIM_ROW_PS_CYCLES] = ps_cycles;
    /* The PS reads its input from DRAM and writes its output back (entropy: one value per row). */
    row[PIVOT_SIM_ROW_DRAM_READS] = (double)elements;
    row[PIVOT_SIM_ROW_DRAM_WRITES] = op == PIVOT_SIM_OP_ENTROPY ? (double)(count * rows) : (double)elements;
    row[PIVOT_SIM_ROW_DELAY_S] = ps_cycles / hw->ps_clock_hz;
    sim_energy(row, hw, 0.0);
    return PIVOT_OK;
}

/* ------------------------------------------------------------------ totals */

void pivot_sim_totals(double *totals, const double *rows, int64_t n) {
    memset(totals, 0, PIVOT_SIM_TOT_FIELDS * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        const double *r = rows + i * PIVOT_SIM_ROW_FIELDS;
        totals[PIVOT_SIM_TOT_DELAY_S] += r[PIVOT_SIM_ROW_DELAY_S];
        totals[PIVOT_SIM_TOT_ENERGY] += r[PIVOT_SIM_ROW_ENERGY];
        totals[PIVOT_SIM_TOT_ENERGY_PE_ARRAY] += r[PIVOT_SIM_ROW_ENERGY_PE_ARRAY];
        totals[PIVOT_SIM_TOT_ENERGY_SRAM] += r[PIVOT_SIM_ROW_ENERGY_SRAM];
        totals[PIVOT_SIM_TOT_ENERGY_PERIPHERY] += r[PIVOT_SIM_ROW_ENERGY_PERIPHERY];
        totals[PIVOT_SIM_TOT_ENERGY_PS] += r[PIVOT_SIM_ROW_ENERGY_PS];
        totals[PIVOT_SIM_TOT_COMPUTE_CYCLES] += r[PIVOT_SIM_ROW_COMPUTE_CYCLES];
        totals[PIVOT_SIM_TOT_STALL_CYCLES] += r[PIVOT_SIM_ROW_STALL_CYCLES];
        totals[PIVOT_SIM_TOT_PS_CYCLES] += r[PIVOT_SIM_ROW_PS_CYCLES];
        totals[PIVOT_SIM_TOT_MACS] += r[PIVOT_SIM_ROW_MACS];
        totals[PIVOT_SIM_TOT_SRAM_READS] += r[PIVOT_SIM_ROW_SRAM_READS];
        totals[PIVOT_SIM_TOT_SRAM_WRITES] += r[PIVOT_SIM_ROW_SRAM_WRITES];
        totals[PIVOT_SIM_TOT_DRAM_READS] += r[PIVOT_SIM_ROW_DRAM_READS];
        totals[PIVOT_SIM_TOT_DRAM_WRITES] += r[PIVOT_SIM_ROW_DRAM_WRITES];
        totals[PIVOT_SIM_TOT_MODULE_S + (int)r[PIVOT_SIM_ROW_MODULE]] += r[PIVOT_SIM_ROW_DELAY_S];
    }
}

/* ------------------------------------------------------------------ whole models */

int64_t pivot_sim_vit_max_rows(int64_t depth) { return 1 + 10 * depth + 4; }

int pivot_sim_vit_forward(double *rows, int64_t *num_rows, double *totals, const pivot_sim_hw *hw,
                          const pivot_sim_vit *vit, const uint8_t *path, int entropy, int64_t max_rows) {
    int status = pivot_sim_check_hw(hw);
    if (status != PIVOT_OK) return status;
    const int64_t B = vit->batch, T = vit->num_tokens, C = vit->embed_dim, H = vit->num_heads;
    if (B < 1 || vit->depth < 1 || C < 1 || H < 1 || C % H != 0 || vit->mlp_hidden < 1 || T < 1 ||
        vit->num_patches < 1 || vit->patch_dim < 1 || vit->num_classes < 1 || vit->num_prefix_tokens < 1)
        return PIVOT_ERR_VALUE;
    if (vit->depth > (INT64_MAX - 5) / 10 || max_rows < pivot_sim_vit_max_rows(vit->depth)) return PIVOT_ERR_SHAPE;
    if (C > INT64_MAX / 3) return PIVOT_ERR_OVERFLOW;
    const int64_t hd = C / H;
    int64_t BT, BP, BH, Bprefix;
    if ((status = mul_i64(&BT, B, T)) || (status = mul_i64(&BP, B, vit->num_patches)) ||
        (status = mul_i64(&BH, B, H)) || (status = mul_i64(&Bprefix, B, vit->num_prefix_tokens)))
        return status;
    int64_t n = 0;
#define GEMM(M_, N_, K_, COUNT_, OP_, BLOCK_, MODULE_)                                                      \
    do {                                                                                                    \
        status = pivot_sim_gemm_row(rows + n * PIVOT_SIM_ROW_FIELDS, hw, M_, N_, K_, COUNT_, OP_, BLOCK_, MODULE_); \
        if (status != PIVOT_OK) return status;                                                              \
        n++;                                                                                                \
    } while (0)
#define PS(OP_, R_, C_, COUNT_, BLOCK_, MODULE_)                                                             \
    do {                                                                                                    \
        status = pivot_sim_ps_row(rows + n * PIVOT_SIM_ROW_FIELDS, hw, OP_, R_, C_, COUNT_, BLOCK_, MODULE_); \
        if (status != PIVOT_OK) return status;                                                              \
        n++;                                                                                                \
    } while (0)
    GEMM(BP, C, vit->patch_dim, 1, PIVOT_SIM_OP_PATCH_EMBED, -1, PIVOT_SIM_OTHER);
    for (int64_t i = 0; i < vit->depth; i++) {
        if (path[i]) {
            PS(PIVOT_SIM_OP_NORM1, BT, C, 1, i, PIVOT_SIM_OTHER);
            GEMM(BT, 3 * C, C, 1, PIVOT_SIM_OP_QKV, i, PIVOT_SIM_ATTENTION_MAC);
            GEMM(T, T, hd, BH, PIVOT_SIM_OP_QK, i, PIVOT_SIM_ATTENTION_MAC);
            PS(PIVOT_SIM_OP_SOFTMAX, T, T, BH, i, PIVOT_SIM_SOFTMAX);
            GEMM(T, hd, T, BH, PIVOT_SIM_OP_SV, i, PIVOT_SIM_ATTENTION_MAC);
            GEMM(BT, C, C, 1, PIVOT_SIM_OP_PROJ, i, PIVOT_SIM_ATTENTION_MAC);
        }
        PS(PIVOT_SIM_OP_NORM2, BT, C, 1, i, PIVOT_SIM_OTHER);
        GEMM(BT, vit->mlp_hidden, C, 1, PIVOT_SIM_OP_FC1, i, PIVOT_SIM_MLP);
        PS(PIVOT_SIM_OP_GELU, BT, vit->mlp_hidden, 1, i, PIVOT_SIM_MLP);
        GEMM(BT, C, vit->mlp_hidden, 1, PIVOT_SIM_OP_FC2, i, PIVOT_SIM_MLP);
    }
    /* Only the class (and distillation) tokens reach the head, so only they are normalized. */
    PS(PIVOT_SIM_OP_NORM, Bprefix, C, 1, -1, PIVOT_SIM_OTHER);
    GEMM(B, vit->num_classes, C, 1, PIVOT_SIM_OP_HEAD, -1, PIVOT_SIM_OTHER);
    if (vit->distilled) GEMM(B, vit->num_classes, C, 1, PIVOT_SIM_OP_HEAD_DIST, -1, PIVOT_SIM_OTHER);
    if (entropy) PS(PIVOT_SIM_OP_ENTROPY, B, vit->num_classes, 1, -1, PIVOT_SIM_OTHER);
#undef GEMM
#undef PS
    *num_rows = n;
    pivot_sim_totals(totals, rows, n);
    return PIVOT_OK;
}

int pivot_sim_gemms(double *rows, double *totals, const pivot_sim_hw *hw, const int64_t *shapes, int64_t n) {
    int status = pivot_sim_check_hw(hw);
    if (status != PIVOT_OK) return status;
    for (int64_t i = 0; i < n; i++) {
        const int64_t *s = shapes + 4 * i;
        status = pivot_sim_gemm_row(rows + i * PIVOT_SIM_ROW_FIELDS, hw, s[0], s[1], s[2], s[3], PIVOT_SIM_OP_GEMM, -1,
                                    PIVOT_SIM_OTHER);
        if (status != PIVOT_OK) return status;
    }
    pivot_sim_totals(totals, rows, n);
    return PIVOT_OK;
}
