/* PIVOT-Sim rows for the encoder modes of csrc/modes.h (attention reuse, ReLU linear attention).
 * pivot/reference/modes.py (vit_rows) is the plain-Python specification. */
#include "modes.h"
#include "pivot_sim.h"

int64_t pivot_sim_vit_modes_max_rows(int64_t depth) { return 1 + 11 * depth + 4; }

static int64_t sim_mul(int64_t a, int64_t b, int *ok) {
    if (a > 0 && b > INT64_MAX / a) { *ok = 0; return 0; }
    return a * b;
}

/* A PS row for an elementwise pass that costs what the GELU lookup costs per element; the op
 * column is then set to `op` (pivot_sim_ps_row prices only the ops it knows). */
static int elementwise_row(double *row, const pivot_sim_hw *hw, int op, int64_t r, int64_t c, int64_t count,
                           int64_t block) {
    int st = pivot_sim_ps_row(row, hw, PIVOT_SIM_OP_RELU, r, c, count, block, PIVOT_SIM_OTHER);
    row[PIVOT_SIM_ROW_OP] = op;
    return st;
}

int pivot_sim_vit_modes_forward(double *rows, int64_t *num_rows, double *totals, const pivot_sim_hw *hw,
                                const pivot_sim_vit *vit, const uint8_t *path, int attention_kind, int entropy,
                                int64_t max_rows) {
    int status = pivot_sim_check_hw(hw);
    if (status != PIVOT_OK) return status;
    const int64_t B = vit->batch, T = vit->num_tokens, C = vit->embed_dim, H = vit->num_heads;
    if (B < 1 || vit->depth < 1 || C < 1 || H < 1 || C % H != 0 || vit->mlp_hidden < 1 || T < 1 ||
        vit->num_patches < 1 || vit->patch_dim < 1 || vit->num_classes < 1 || vit->num_prefix_tokens < 1)
        return PIVOT_ERR_VALUE;
    /* rows before path: a depth beyond what `rows` holds is refused before path[depth - 1] is read */
    if (vit->depth > (INT64_MAX - 5) / 11 || max_rows < pivot_sim_vit_modes_max_rows(vit->depth)) return PIVOT_ERR_SHAPE;
    if ((status = pivot_modes_check_path(path, (size_t)vit->depth, attention_kind))) return status;
    if (C > INT64_MAX / 3) return PIVOT_ERR_OVERFLOW;
    const int64_t hd = C / H;
    int ok = 1;
    const int64_t BT = sim_mul(B, T, &ok), BP = sim_mul(B, vit->num_patches, &ok), BH = sim_mul(B, H, &ok);
    const int64_t Bprefix = sim_mul(B, vit->num_prefix_tokens, &ok);
    if (!ok) return PIVOT_ERR_OVERFLOW;
    int64_t n = 0;
#define ROW (rows + n * PIVOT_SIM_ROW_FIELDS)
#define CHECK(call)                               \
    do {                                          \
        if ((status = (call)) != PIVOT_OK) return status; \
        n++;                                      \
    } while (0)
    CHECK(pivot_sim_gemm_row(ROW, hw, BP, C, vit->patch_dim, 1, PIVOT_SIM_OP_PATCH_EMBED, -1, PIVOT_SIM_OTHER));
    for (int64_t i = 0; i < vit->depth; i++) {
        if (path[i] != PIVOT_PATH_SKIP)
            CHECK(pivot_sim_ps_row(ROW, hw, PIVOT_SIM_OP_NORM1, BT, C, 1, i, PIVOT_SIM_OTHER));
        if (path[i] == PIVOT_PATH_REUSE) {
            CHECK(pivot_sim_gemm_row(ROW, hw, BT, C, C, 1, PIVOT_SIM_OP_V, i, PIVOT_SIM_ATTENTION_MAC));
            CHECK(pivot_sim_gemm_row(ROW, hw, T, hd, T, BH, PIVOT_SIM_OP_SV, i, PIVOT_SIM_ATTENTION_MAC));
        } else if (path[i] == PIVOT_PATH_ACTIVE && attention_kind == PIVOT_ATTENTION_RELU_LINEAR) {
            CHECK(pivot_sim_gemm_row(ROW, hw, BT, 3 * C, C, 1, PIVOT_SIM_OP_QKV, i, PIVOT_SIM_ATTENTION_MAC));
            CHECK(elementwise_row(ROW, hw, PIVOT_SIM_OP_RELU_QK, BT, 2 * C, 1, i));
            CHECK(pivot_sim_gemm_row(ROW, hw, hd, hd + 1, T, BH, PIVOT_SIM_OP_KV, i, PIVOT_SIM_ATTENTION_MAC));
            CHECK(pivot_sim_gemm_row(ROW, hw, T, hd + 1, hd, BH, PIVOT_SIM_OP_Q_KV, i, PIVOT_SIM_ATTENTION_MAC));
            CHECK(elementwise_row(ROW, hw, PIVOT_SIM_OP_LINEAR_DIV, T, hd, BH, i));
        } else if (path[i] == PIVOT_PATH_ACTIVE) {
            CHECK(pivot_sim_gemm_row(ROW, hw, BT, 3 * C, C, 1, PIVOT_SIM_OP_QKV, i, PIVOT_SIM_ATTENTION_MAC));
            CHECK(pivot_sim_gemm_row(ROW, hw, T, T, hd, BH, PIVOT_SIM_OP_QK, i, PIVOT_SIM_ATTENTION_MAC));
            CHECK(pivot_sim_ps_row(ROW, hw, PIVOT_SIM_OP_SOFTMAX, T, T, BH, i, PIVOT_SIM_SOFTMAX));
            CHECK(pivot_sim_gemm_row(ROW, hw, T, hd, T, BH, PIVOT_SIM_OP_SV, i, PIVOT_SIM_ATTENTION_MAC));
        }
        if (path[i] != PIVOT_PATH_SKIP)
            CHECK(pivot_sim_gemm_row(ROW, hw, BT, C, C, 1, PIVOT_SIM_OP_PROJ, i, PIVOT_SIM_ATTENTION_MAC));
        CHECK(pivot_sim_ps_row(ROW, hw, PIVOT_SIM_OP_NORM2, BT, C, 1, i, PIVOT_SIM_OTHER));
        CHECK(pivot_sim_gemm_row(ROW, hw, BT, vit->mlp_hidden, C, 1, PIVOT_SIM_OP_FC1, i, PIVOT_SIM_MLP));
        CHECK(pivot_sim_ps_row(ROW, hw, PIVOT_SIM_OP_GELU, BT, vit->mlp_hidden, 1, i, PIVOT_SIM_MLP));
        CHECK(pivot_sim_gemm_row(ROW, hw, BT, C, vit->mlp_hidden, 1, PIVOT_SIM_OP_FC2, i, PIVOT_SIM_MLP));
    }
    CHECK(pivot_sim_ps_row(ROW, hw, PIVOT_SIM_OP_NORM, Bprefix, C, 1, -1, PIVOT_SIM_OTHER));
    CHECK(pivot_sim_gemm_row(ROW, hw, B, vit->num_classes, C, 1, PIVOT_SIM_OP_HEAD, -1, PIVOT_SIM_OTHER));
    if (vit->distilled)
        CHECK(pivot_sim_gemm_row(ROW, hw, B, vit->num_classes, C, 1, PIVOT_SIM_OP_HEAD_DIST, -1, PIVOT_SIM_OTHER));
    if (entropy) CHECK(pivot_sim_ps_row(ROW, hw, PIVOT_SIM_OP_ENTROPY, B, vit->num_classes, 1, -1, PIVOT_SIM_OTHER));
#undef ROW
#undef CHECK
    *num_rows = n;
    pivot_sim_totals(totals, rows, n);
    return PIVOT_OK;
}
