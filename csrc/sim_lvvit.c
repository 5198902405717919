/* PIVOT-Sim rows of LV-ViT's additions around a ViT: the conv stem's convolutions as im2col GEMMs
 * on the array (BatchNorm folded into them: no cost of its own) with their ReLUs on the PS, and
 * the token-labeling aux head. skip_lam costs nothing: dividing a residual branch by it is the
 * same as scaling that branch's last layer (proj, fc2) by 1 / skip_lam, done once offline.
 * pivot/reference/sim.py vit_rows is the specification. */
#include <string.h>

#include "pivot_sim.h"

int64_t pivot_sim_lvvit_max_rows(int64_t depth, int64_t n_stem) {
    return pivot_sim_vit_max_rows(depth) + 2 * n_stem + 3;
}

int pivot_sim_lvvit_forward(double *rows, int64_t *num_rows, double *totals, const pivot_sim_hw *hw,
                            const pivot_sim_vit *vit, const int64_t *stem, int64_t n_stem, int aux_head,
                            const uint8_t *path, int entropy, int64_t max_rows) {
    int status = pivot_sim_check_hw(hw);
    if (status != PIVOT_OK) return status;
    /* depth bound: pivot_sim_lvvit_max_rows (10 * depth + 5 + 2 * n_stem + 3) must not overflow */
    if (n_stem < 0 || n_stem > 1000 || (n_stem > 0 && !stem) || vit->depth < 1 ||
        vit->depth > (INT64_MAX - 5 - 2 * 1000 - 3) / 10)
        return PIVOT_ERR_VALUE;
    if (max_rows < pivot_sim_lvvit_max_rows(vit->depth, n_stem)) return PIVOT_ERR_SHAPE;
    const int64_t B = vit->batch;
    if (B < 1 || vit->num_patches < 1 || vit->num_classes < 1 || vit->embed_dim < 1) return PIVOT_ERR_VALUE;
    int64_t n = 0;
    for (int64_t i = 0; i < n_stem; i++) {
        const int64_t M = stem[3 * i], N = stem[3 * i + 1], K = stem[3 * i + 2];
        if (M < 1 || N < 1 || K < 1 || M > INT64_MAX / B) return PIVOT_ERR_VALUE;
        if ((status = pivot_sim_gemm_row(rows + n++ * PIVOT_SIM_ROW_FIELDS, hw, B * M, N, K, 1, PIVOT_SIM_OP_STEM_CONV,
                                         i + 1, PIVOT_SIM_OTHER)) ||
            (status = pivot_sim_ps_row(rows + n++ * PIVOT_SIM_ROW_FIELDS, hw, PIVOT_SIM_OP_RELU, B * M, N, 1, i + 1,
                                       PIVOT_SIM_OTHER)))
            return status;
    }
    int64_t m = 0;
    double vit_totals[PIVOT_SIM_TOT_FIELDS];
    status = pivot_sim_vit_forward(rows + n * PIVOT_SIM_ROW_FIELDS, &m, vit_totals, hw, vit, path, 0, max_rows - n);
    if (status != PIVOT_OK) return status;
    n += m;
    if (aux_head) {
        const int64_t BP = B * vit->num_patches; /* B * patches <= B * tokens, checked by the ViT rows */
        if ((status = pivot_sim_ps_row(rows + n++ * PIVOT_SIM_ROW_FIELDS, hw, PIVOT_SIM_OP_NORM_PATCHES, BP,
                                       vit->embed_dim, 1, -1, PIVOT_SIM_OTHER)) ||
            (status = pivot_sim_gemm_row(rows + n++ * PIVOT_SIM_ROW_FIELDS, hw, BP, vit->num_classes, vit->embed_dim, 1,
                                         PIVOT_SIM_OP_AUX_HEAD, -1, PIVOT_SIM_OTHER)) ||
            (status = pivot_sim_ps_row(rows + n++ * PIVOT_SIM_ROW_FIELDS, hw, PIVOT_SIM_OP_AUX_MAX, BP,
                                       vit->num_classes, 1, -1, PIVOT_SIM_OTHER)))
            return status;
    }
    if (entropy && (status = pivot_sim_ps_row(rows + n++ * PIVOT_SIM_ROW_FIELDS, hw, PIVOT_SIM_OP_ENTROPY, B,
                                              vit->num_classes, 1, -1, PIVOT_SIM_OTHER)))
        return status;
    *num_rows = n;
    pivot_sim_totals(totals, rows, n);
    return PIVOT_OK;
}
