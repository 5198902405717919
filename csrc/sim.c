/* PIVOT-Sim: analytical cycle, memory and energy model of ViT inference on a systolic array.
 * Formulas and their SCALE-Sim provenance are documented in pivot/reference/sim.py and
 * pivot/sim/__init__.py; this file follows the reference line by line. */
#include <math.h>
#include <string.h>

#include "modes.h"
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
    case PIVOT_SIM_OP_NORM:
    case PIVOT_SIM_OP_NORM_PATCHES: per_element = hw->layernorm_cycles; break;
    case PIVOT_SIM_OP_RELU:
    case PIVOT_SIM_OP_AUX_MAX:
    case PIVOT_SIM_OP_RELU_QK:
    case PIVOT_SIM_OP_LINEAR_DIV: /* one elementwise pass, priced as the GELU lookup */
    case PIVOT_SIM_OP_GELU: per_element = hw->gelu_cycles; break;
    case PIVOT_SIM_OP_SOFTMAX: per_element = hw->softmax_cycles; break;
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

int64_t pivot_sim_max_rows(int64_t depth, int64_t n_stem, int attention_kind, int aux_head) {
    if (depth < 1 || depth > PIVOT_SIM_MAX_DEPTH || n_stem < 0 || n_stem > PIVOT_SIM_MAX_STEM) return -1;
    const int64_t per_encoder = attention_kind == PIVOT_ATTENTION_RELU_LINEAR ? 11 : 10;
    return 2 * n_stem + 1 + per_encoder * depth + 3 + (aux_head ? 3 : 0) + 1;
}

/* Where the next row goes; each emit checks its sizes and advances n. Running out of rows means
 * pivot_sim_max_rows missed a row: an internal error, never a write past the buffer. */
typedef struct {
    double *rows; /* (max_rows, PIVOT_SIM_ROW_FIELDS) */
    int64_t n, max_rows;
    const pivot_sim_hw *hw;
} sim_emitter;

static int emit_gemm(sim_emitter *e, int op, int64_t M, int64_t N, int64_t K, int64_t count, int64_t block,
                     int module) {
    if (e->n >= e->max_rows) return PIVOT_ERR_INTERNAL;
    int status = pivot_sim_gemm_row(e->rows + e->n * PIVOT_SIM_ROW_FIELDS, e->hw, M, N, K, count, op, block, module);
    e->n += status == PIVOT_OK;
    return status;
}

static int emit_ps(sim_emitter *e, int op, int64_t rows, int64_t cols, int64_t count, int64_t block, int module) {
    if (e->n >= e->max_rows) return PIVOT_ERR_INTERNAL;
    int status = pivot_sim_ps_row(e->rows + e->n * PIVOT_SIM_ROW_FIELDS, e->hw, op, rows, cols, count, block, module);
    e->n += status == PIVOT_OK;
    return status;
}

/* Encoder i's rows: its attention branch as `mode` says (PIVOT_PATH_*), then its MLP branch. */
static int emit_encoder(sim_emitter *e, const pivot_sim_vit *vit, int64_t i, int mode, int attention_kind,
                        int64_t BT, int64_t BH) {
    const int64_t T = vit->num_tokens, C = vit->embed_dim, hd = C / vit->num_heads, hidden = vit->mlp_hidden;
    const int A = PIVOT_SIM_ATTENTION_MAC, O = PIVOT_SIM_OTHER;
    int status = PIVOT_OK;
    if (mode != PIVOT_PATH_SKIP && (status = emit_ps(e, PIVOT_SIM_OP_NORM1, BT, C, 1, i, O))) return status;
    if (mode == PIVOT_PATH_REUSE) {
        if ((status = emit_gemm(e, PIVOT_SIM_OP_V, BT, C, C, 1, i, A)) ||
            (status = emit_gemm(e, PIVOT_SIM_OP_SV, T, hd, T, BH, i, A)))
            return status;
    } else if (mode == PIVOT_PATH_ACTIVE && attention_kind == PIVOT_ATTENTION_RELU_LINEAR) {
        if ((status = emit_gemm(e, PIVOT_SIM_OP_QKV, BT, 3 * C, C, 1, i, A)) ||
            (status = emit_ps(e, PIVOT_SIM_OP_RELU_QK, BT, 2 * C, 1, i, O)) ||
            (status = emit_gemm(e, PIVOT_SIM_OP_KV, hd, hd + 1, T, BH, i, A)) ||
            (status = emit_gemm(e, PIVOT_SIM_OP_Q_KV, T, hd + 1, hd, BH, i, A)) ||
            (status = emit_ps(e, PIVOT_SIM_OP_LINEAR_DIV, T, hd, BH, i, O)))
            return status;
    } else if (mode == PIVOT_PATH_ACTIVE) {
        if ((status = emit_gemm(e, PIVOT_SIM_OP_QKV, BT, 3 * C, C, 1, i, A)) ||
            (status = emit_gemm(e, PIVOT_SIM_OP_QK, T, T, hd, BH, i, A)) ||
            (status = emit_ps(e, PIVOT_SIM_OP_SOFTMAX, T, T, BH, i, PIVOT_SIM_SOFTMAX)) ||
            (status = emit_gemm(e, PIVOT_SIM_OP_SV, T, hd, T, BH, i, A)))
            return status;
    }
    if (mode != PIVOT_PATH_SKIP && (status = emit_gemm(e, PIVOT_SIM_OP_PROJ, BT, C, C, 1, i, A))) return status;
    if ((status = emit_ps(e, PIVOT_SIM_OP_NORM2, BT, C, 1, i, O)) ||
        (status = emit_gemm(e, PIVOT_SIM_OP_FC1, BT, hidden, C, 1, i, PIVOT_SIM_MLP)) ||
        (status = emit_ps(e, PIVOT_SIM_OP_GELU, BT, hidden, 1, i, PIVOT_SIM_MLP)) ||
        (status = emit_gemm(e, PIVOT_SIM_OP_FC2, BT, C, hidden, 1, i, PIVOT_SIM_MLP)))
        return status;
    return PIVOT_OK;
}

int pivot_sim_forward(double *rows, int64_t *num_rows, double *totals, const pivot_sim_hw *hw,
                      const pivot_sim_vit *vit, const pivot_sim_layers *layers, const uint8_t *path,
                      int64_t max_rows) {
    int status = pivot_sim_check_hw(hw);
    if (status != PIVOT_OK) return status;
    const int64_t B = vit->batch, C = vit->embed_dim, H = vit->num_heads;
    const int O = PIVOT_SIM_OTHER;
    if (B < 1 || C < 1 || H < 1 || C % H != 0 || vit->mlp_hidden < 1 || vit->num_tokens < 1 ||
        vit->num_patches < 1 || vit->patch_dim < 1 || vit->num_classes < 1 || vit->num_prefix_tokens < 1 ||
        (layers->n_stem > 0 && !layers->stem))
        return PIVOT_ERR_VALUE;
    /* rows before path: a depth beyond what `rows` holds is refused before path[depth - 1] is read */
    const int64_t need = pivot_sim_max_rows(vit->depth, layers->n_stem, layers->attention_kind, layers->aux_head);
    if (need < 0) return PIVOT_ERR_VALUE;
    if (max_rows < need) return PIVOT_ERR_SHAPE;
    if ((status = pivot_modes_check_path(path, (size_t)vit->depth, layers->attention_kind))) return status;
    if (C > INT64_MAX / 3) return PIVOT_ERR_OVERFLOW;
    int64_t BT, BP, BH, Bprefix;
    if ((status = mul_i64(&BT, B, vit->num_tokens)) || (status = mul_i64(&BP, B, vit->num_patches)) ||
        (status = mul_i64(&BH, B, H)) || (status = mul_i64(&Bprefix, B, vit->num_prefix_tokens)))
        return status;
    sim_emitter e = {rows, 0, need, hw};
    for (int64_t i = 0; i < layers->n_stem; i++) {
        const int64_t *s = layers->stem + 3 * i; /* M, N, K of one image */
        int64_t BM;
        if (s[0] < 1) return PIVOT_ERR_VALUE;
        if ((status = mul_i64(&BM, B, s[0])) ||
            (status = emit_gemm(&e, PIVOT_SIM_OP_STEM_CONV, BM, s[1], s[2], 1, i + 1, O)) ||
            (status = emit_ps(&e, PIVOT_SIM_OP_RELU, BM, s[1], 1, i + 1, O)))
            return status;
    }
    if ((status = emit_gemm(&e, PIVOT_SIM_OP_PATCH_EMBED, BP, C, vit->patch_dim, 1, -1, O))) return status;
    for (int64_t i = 0; i < vit->depth; i++)
        if ((status = emit_encoder(&e, vit, i, path[i], layers->attention_kind, BT, BH))) return status;
    /* Only the class (and distillation) tokens reach the head, so only they are normalized. */
    if ((status = emit_ps(&e, PIVOT_SIM_OP_NORM, Bprefix, C, 1, -1, O)) ||
        (status = emit_gemm(&e, PIVOT_SIM_OP_HEAD, B, vit->num_classes, C, 1, -1, O)) ||
        (vit->distilled && (status = emit_gemm(&e, PIVOT_SIM_OP_HEAD_DIST, B, vit->num_classes, C, 1, -1, O))))
        return status;
    if (layers->aux_head &&
        ((status = emit_ps(&e, PIVOT_SIM_OP_NORM_PATCHES, BP, C, 1, -1, O)) ||
         (status = emit_gemm(&e, PIVOT_SIM_OP_AUX_HEAD, BP, vit->num_classes, C, 1, -1, O)) ||
         (status = emit_ps(&e, PIVOT_SIM_OP_AUX_MAX, BP, vit->num_classes, 1, -1, O))))
        return status;
    if (layers->entropy && (status = emit_ps(&e, PIVOT_SIM_OP_ENTROPY, B, vit->num_classes, 1, -1, O))) return status;
    *num_rows = e.n;
    pivot_sim_totals(totals, rows, e.n);
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
