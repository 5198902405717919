/* PIVOT-Sim: cycles, memory traffic and energy of ViT inference on a systolic-array FPGA
 * accelerator (PL) with an ARM processing system (PS). The model is documented in pivot/sim/__init__.py;
 * pivot/reference/sim.py is its plain-Python specification.
 *
 * GEMM convention (SCALE-Sim's GEMM mode): out (M, N) = A (M, K) @ B (K, N). A is the "ifmap"
 * (IPMEM), B the "filter" (WTMEM), out the "ofmap" (OPMEM). */
#ifndef PIVOT_SIM_H
#define PIVOT_SIM_H

#include <stdint.h>

#include "pivot_status.h"

enum { PIVOT_SIM_IS = 0, PIVOT_SIM_WS = 1, PIVOT_SIM_OS = 2 };

/* Row kinds, in the order of pivot/reference/sim.py OPS. The stem rows' block column holds the stem
 * layer (from 1); v is a reusing encoder's V projection; relu_qk (PS) is linear attention's phi on
 * Q and K, kv = phi(K)^T [V | 1], q_kv = phi(Q) [KV | ksum], linear_div (PS) the row division. */
enum {
    PIVOT_SIM_OP_GEMM = 0, PIVOT_SIM_OP_PATCH_EMBED, PIVOT_SIM_OP_NORM1, PIVOT_SIM_OP_QKV, PIVOT_SIM_OP_QK,
    PIVOT_SIM_OP_SOFTMAX, PIVOT_SIM_OP_SV, PIVOT_SIM_OP_PROJ, PIVOT_SIM_OP_NORM2, PIVOT_SIM_OP_FC1,
    PIVOT_SIM_OP_GELU, PIVOT_SIM_OP_FC2, PIVOT_SIM_OP_NORM, PIVOT_SIM_OP_HEAD, PIVOT_SIM_OP_HEAD_DIST,
    PIVOT_SIM_OP_ENTROPY, PIVOT_SIM_OP_STEM_CONV, PIVOT_SIM_OP_RELU, PIVOT_SIM_OP_NORM_PATCHES,
    PIVOT_SIM_OP_AUX_HEAD, PIVOT_SIM_OP_AUX_MAX, PIVOT_SIM_OP_V, PIVOT_SIM_OP_RELU_QK, PIVOT_SIM_OP_KV,
    PIVOT_SIM_OP_Q_KV, PIVOT_SIM_OP_LINEAR_DIV,
};

/* Modules of the delay breakdown (Fig. 6a), plus everything else. */
enum { PIVOT_SIM_ATTENTION_MAC = 0, PIVOT_SIM_SOFTMAX = 1, PIVOT_SIM_MLP = 2, PIVOT_SIM_OTHER = 3 };

/* Columns of one report row (all double; counts are exact integers below 2^53). */
enum {
    PIVOT_SIM_ROW_OP = 0, PIVOT_SIM_ROW_BLOCK, PIVOT_SIM_ROW_MODULE, PIVOT_SIM_ROW_IS_PS,
    PIVOT_SIM_ROW_M, PIVOT_SIM_ROW_N, PIVOT_SIM_ROW_K, PIVOT_SIM_ROW_COUNT, PIVOT_SIM_ROW_MACS,
    PIVOT_SIM_ROW_COMPUTE_CYCLES, PIVOT_SIM_ROW_STALL_CYCLES, PIVOT_SIM_ROW_PS_CYCLES,
    PIVOT_SIM_ROW_UTILIZATION_PCT, PIVOT_SIM_ROW_SRAM_READS, PIVOT_SIM_ROW_SRAM_WRITES,
    PIVOT_SIM_ROW_DRAM_READS, PIVOT_SIM_ROW_DRAM_WRITES, PIVOT_SIM_ROW_DELAY_S,
    PIVOT_SIM_ROW_ENERGY_PE_ARRAY, PIVOT_SIM_ROW_ENERGY_SRAM, PIVOT_SIM_ROW_ENERGY_PERIPHERY,
    PIVOT_SIM_ROW_ENERGY_PS, PIVOT_SIM_ROW_ENERGY,
    PIVOT_SIM_ROW_FIELDS
};

/* Columns of the totals: sums of the rows' delay, energies and counts, and delay per module. */
enum {
    PIVOT_SIM_TOT_DELAY_S = 0, PIVOT_SIM_TOT_ENERGY, PIVOT_SIM_TOT_ENERGY_PE_ARRAY, PIVOT_SIM_TOT_ENERGY_SRAM,
    PIVOT_SIM_TOT_ENERGY_PERIPHERY, PIVOT_SIM_TOT_ENERGY_PS, PIVOT_SIM_TOT_COMPUTE_CYCLES,
    PIVOT_SIM_TOT_STALL_CYCLES, PIVOT_SIM_TOT_PS_CYCLES, PIVOT_SIM_TOT_MACS, PIVOT_SIM_TOT_SRAM_READS,
    PIVOT_SIM_TOT_SRAM_WRITES, PIVOT_SIM_TOT_DRAM_READS, PIVOT_SIM_TOT_DRAM_WRITES,
    PIVOT_SIM_TOT_MODULE_S, /* 4 entries, one per module */
    PIVOT_SIM_TOT_FIELDS = PIVOT_SIM_TOT_MODULE_S + 4
};

/* The hardware, in SI units (Hz, bytes, bytes/s, J, W). */
typedef struct {
    int64_t array_rows;            /* PE rows R */
    int64_t array_cols;            /* PE columns C */
    int32_t dataflow;              /* PIVOT_SIM_IS / WS / OS */
    double clock_hz;               /* PL clock */
    double word_bytes;             /* bytes per operand word */
    double global_buffer_bytes;    /* GB: staging between DRAM and the SRAMs, >= 0 */
    double ipmem_bytes;            /* input (A) SRAM */
    double wtmem_bytes;            /* weight (B) SRAM */
    double opmem_bytes;            /* output SRAM */
    double sram_active_fraction;   /* part of each SRAM serving the array (rest is prefetching) */
    double dram_bytes_per_s;       /* shared DRAM interface; +inf: never stalls */
    double ps_clock_hz;            /* processing-system clock */
    double softmax_cycles;         /* PS cycles per element */
    double gelu_cycles;
    double layernorm_cycles;
    double entropy_cycles;
    double mac_energy_j;           /* per MAC */
    double sram_access_energy_j;   /* per SRAM word access */
    double dram_energy_j_per_byte; /* interconnect and memory controller, per DRAM byte */
    double ps_active_power_w;      /* PS power above idle while it computes */
    double pe_array_static_w;
    double sram_static_w;
    double periphery_static_w;
    double ps_static_w;
} pivot_sim_hw;

/* The shape of a ViT: see pivot.ViTConfig. */
typedef struct {
    int64_t batch;
    int64_t depth;
    int64_t embed_dim;
    int64_t num_heads;
    int64_t mlp_hidden;
    int64_t num_tokens;
    int64_t num_patches;
    int64_t patch_dim;          /* in_chans * patch_size^2 */
    int64_t num_classes;
    int64_t num_prefix_tokens;  /* tokens that reach the head(s) */
    int64_t distilled;          /* 1: a second head (head_dist) */
} pivot_sim_vit;

/* Compute cycles of one GEMM on a rows x cols array, equal to SCALE-Sim's stall-free cycles. */
int pivot_sim_gemm_cycles(int64_t *cycles, int64_t M, int64_t N, int64_t K, int64_t rows, int64_t cols,
                          int dataflow);

/* PIVOT_OK when every field of hw is in range, else PIVOT_ERR_VALUE. */
int pivot_sim_check_hw(const pivot_sim_hw *hw);

/* One report row for `count` back-to-back GEMMs of shape (M, N, K). */
int pivot_sim_gemm_row(double *row, // (PIVOT_SIM_ROW_FIELDS)
                       const pivot_sim_hw *hw, int64_t M, int64_t N, int64_t K, int64_t count,
                       int op, int64_t block, int module);

/* One report row for an elementwise PS op over `count` (rows x cols) tensors. */
int pivot_sim_ps_row(double *row, // (PIVOT_SIM_ROW_FIELDS)
                     const pivot_sim_hw *hw, int op, int64_t rows, int64_t cols, int64_t count,
                     int64_t block, int module);

/* Rows and totals of a list of GEMMs. */
int pivot_sim_gemms(double *rows,          // (n, PIVOT_SIM_ROW_FIELDS)
                    double *totals,        // (PIVOT_SIM_TOT_FIELDS)
                    const pivot_sim_hw *hw,
                    const int64_t *shapes, // (n, 4): M, N, K, count
                    int64_t n);

/* The limits pivot_sim_forward accepts (pivot_sim_max_rows cannot overflow within them). */
#define PIVOT_SIM_MAX_DEPTH 1000000
#define PIVOT_SIM_MAX_STEM 1000

/* The layers around and inside the encoders besides the ViT's shape; zero-initialized it is a plain
 * ViT with softmax attention and no entropy. */
typedef struct {
    const int64_t *stem; /* (n_stem, 3): M, N, K of each stem convolution for one image; NULL if none */
    int64_t n_stem;
    int attention_kind;  /* PIVOT_ATTENTION_SOFTMAX or PIVOT_ATTENTION_RELU_LINEAR (csrc/modes.h) */
    int aux_head;        /* LV-ViT's token-labeling head after the class head(s) */
    int entropy;         /* the entropy of the logits on the PS, last */
} pivot_sim_layers;

/* Rows pivot_sim_forward can need, or -1 when depth is outside [1, PIVOT_SIM_MAX_DEPTH] or n_stem
 * outside [0, PIVOT_SIM_MAX_STEM]: per stem convolution 2, the patch embedding 1, per encoder 10
 * (11 with linear attention), norm, head, head_dist 3, the aux head 3, the entropy 1. */
int64_t pivot_sim_max_rows(int64_t depth, int64_t n_stem, int attention_kind, int aux_head);

/* Every row of one inference, in execution order, and their totals:
 *   per stem convolution i: an im2col GEMM (batch * M, N, K) (BatchNorm folded into it) and its
 *     ReLU on the PS, block column i + 1;
 *   the patch embedding (batch * patches, C, vit->patch_dim);
 *   per encoder i, by path[i]: 0 skip: no attention rows; 1 active: norm1, qkv (B*T, 3C, C), then
 *     with softmax QK^T (T, T, hd), softmax (PS), SMxV (T, hd, T) per image and head, or with ReLU
 *     linear attention phi on Q and K (PS), kv (hd, hd + 1, T), q_kv (T, hd + 1, hd) per image and
 *     head (the extra column carries the normalizer) and the division (PS); 2 reuse the nearest
 *     earlier active encoder's probabilities (softmax only): norm1, V (B*T, C, C), SMxV; then proj
 *     (B*T, C, C) unless skipped; always norm2, fc1, GELU (PS), fc2;
 *   the final norm of the prefix tokens (PS), head (B, classes, C), head_dist when distilled;
 *   with aux_head: the norm of the patch tokens (PS), the aux head over them and its max (PS);
 *   with entropy: the entropy of the logits (PS).
 * ReLU, the aux max, phi and the division cost gelu_cycles per element (one elementwise pass). */
int pivot_sim_forward(double *rows,                  // (max_rows, PIVOT_SIM_ROW_FIELDS)
                      int64_t *num_rows,
                      double *totals,                // (PIVOT_SIM_TOT_FIELDS)
                      const pivot_sim_hw *hw, const pivot_sim_vit *vit, const pivot_sim_layers *layers,
                      const uint8_t *path,           // (depth): 0 skip, 1 active, 2 reuse
                      int64_t max_rows);

/* Sums of n rows. */
void pivot_sim_totals(double *totals,      // (PIVOT_SIM_TOT_FIELDS)
                      const double *rows,  // (n, PIVOT_SIM_ROW_FIELDS)
                      int64_t n);

#endif /* PIVOT_SIM_H */
