/* Bindings of PIVOT-Sim (csrc/pivot_sim.h). */
#include "bind.h"

#include <stdlib.h>

#include "pivot_sim.h"

/* Fills a pivot_sim_hw from the tuple pivot.sim.HardwareConfig packs (SI units, order of the struct). */
static int parse_sim_hw(PyObject *obj, pivot_sim_hw *hw) {
    if (!PyTuple_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "hw must be the tuple packed by pivot.sim.HardwareConfig");
        return -1;
    }
    if (!PyArg_ParseTuple(obj, "LLiddddddddddddddddddddd;hw must be the tuple packed by pivot.sim.HardwareConfig",
                          &hw->array_rows, &hw->array_cols, &hw->dataflow, &hw->clock_hz, &hw->word_bytes,
                          &hw->global_buffer_bytes, &hw->ipmem_bytes, &hw->wtmem_bytes, &hw->opmem_bytes,
                          &hw->sram_active_fraction, &hw->dram_bytes_per_s, &hw->ps_clock_hz, &hw->softmax_cycles,
                          &hw->gelu_cycles, &hw->layernorm_cycles, &hw->entropy_cycles, &hw->mac_energy_j,
                          &hw->sram_access_energy_j, &hw->dram_energy_j_per_byte, &hw->ps_active_power_w,
                          &hw->pe_array_static_w, &hw->sram_static_w, &hw->periphery_static_w, &hw->ps_static_w))
        return -1;
    if (pivot_sim_check_hw(hw) != PIVOT_OK) {
        PyErr_SetString(PyExc_ValueError, "hw has an out-of-range field (see pivot.sim.HardwareConfig)");
        return -1;
    }
    return 0;
}

/* (rows array (n, PIVOT_SIM_ROW_FIELDS), totals array (PIVOT_SIM_TOT_FIELDS,)) from C buffers. */
static PyObject *sim_result(const double *rows, int64_t n, const double *totals) {
    npy_intp rdims[2] = {(npy_intp)n, PIVOT_SIM_ROW_FIELDS};
    npy_intp tdims[1] = {PIVOT_SIM_TOT_FIELDS};
    PyObject *r = PyArray_SimpleNew(2, rdims, NPY_FLOAT64);
    PyObject *t = PyArray_SimpleNew(1, tdims, NPY_FLOAT64);
    if (r == NULL || t == NULL) {
        Py_XDECREF(r);
        Py_XDECREF(t);
        return NULL;
    }
    if (n > 0) memcpy(PyArray_DATA((PyArrayObject *)r), rows, (size_t)n * PIVOT_SIM_ROW_FIELDS * sizeof(double));
    memcpy(PyArray_DATA((PyArrayObject *)t), totals, PIVOT_SIM_TOT_FIELDS * sizeof(double));
    return Py_BuildValue("(NN)", r, t);
}

static PyObject *py_sim_gemm_cycles(PyObject *self, PyObject *args) {
    long long M, N, K, rows, cols;
    int dataflow;
    if (!PyArg_ParseTuple(args, "LLLLLi", &M, &N, &K, &rows, &cols, &dataflow)) return NULL;
    int64_t cycles = 0;
    int status = pivot_sim_gemm_cycles(&cycles, M, N, K, rows, cols, dataflow);
    if (status != PIVOT_OK) return pivot_py_raise_status(status, "sim_gemm_cycles");
    return PyLong_FromLongLong(cycles);
}

/* sim_vit(hw, (batch, depth, embed_dim, num_heads, mlp_hidden, num_tokens, num_patches, patch_dim,
 *              num_classes, num_prefix_tokens, distilled), path uint8 (depth,), entropy) */
static PyObject *py_sim_vit(PyObject *self, PyObject *args) {
    PyObject *hw_obj, *path_obj;
    int entropy;
    pivot_sim_vit vit;
    if (!PyArg_ParseTuple(args, "O(LLLLLLLLLLL)Op", &hw_obj, &vit.batch, &vit.depth, &vit.embed_dim, &vit.num_heads,
                          &vit.mlp_hidden, &vit.num_tokens, &vit.num_patches, &vit.patch_dim, &vit.num_classes,
                          &vit.num_prefix_tokens, &vit.distilled, &path_obj, &entropy))
        return NULL;
    pivot_sim_hw hw;
    if (parse_sim_hw(hw_obj, &hw) != 0) return NULL;
    PyArrayObject *path = pivot_py_array(path_obj, "path", NPY_UINT8, 1);
    if (path == NULL) return NULL;
    if (vit.depth < 1 || vit.depth > 1000000) {
        PyErr_Format(PyExc_ValueError, "depth must be in [1, 1000000], got %lld", (long long)vit.depth);
        return NULL;
    }
    if (PyArray_DIM(path, 0) != vit.depth) {
        PyErr_Format(PyExc_ValueError, "path has %zd entries but the model has %lld encoders",
                     (Py_ssize_t)PyArray_DIM(path, 0), (long long)vit.depth);
        return NULL;
    }
    const int64_t max_rows = pivot_sim_vit_max_rows(vit.depth);
    double *rows = malloc((size_t)max_rows * PIVOT_SIM_ROW_FIELDS * sizeof(double));
    if (rows == NULL) return PyErr_NoMemory();
    double totals[PIVOT_SIM_TOT_FIELDS];
    int64_t n = 0;
    int status;
    const uint8_t *p = PyArray_DATA(path);
    Py_BEGIN_ALLOW_THREADS
    status = pivot_sim_vit_forward(rows, &n, totals, &hw, &vit, p, entropy, max_rows);
    Py_END_ALLOW_THREADS
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : pivot_py_raise_status(status, "sim_vit");
    free(rows);
    return out;
}

/* sim_gemms(hw, shapes int64 (n, 4): M, N, K, count) */
static PyObject *py_sim_gemms(PyObject *self, PyObject *args) {
    PyObject *hw_obj, *shapes_obj;
    if (!PyArg_ParseTuple(args, "OO", &hw_obj, &shapes_obj)) return NULL;
    pivot_sim_hw hw;
    if (parse_sim_hw(hw_obj, &hw) != 0) return NULL;
    PyArrayObject *shapes = pivot_py_array(shapes_obj, "shapes", NPY_INT64, 2);
    if (shapes == NULL) return NULL;
    if (PyArray_DIM(shapes, 1) != 4) {
        PyErr_Format(PyExc_ValueError, "shapes must have 4 columns (M, N, K, count), got %zd",
                     (Py_ssize_t)PyArray_DIM(shapes, 1));
        return NULL;
    }
    const int64_t n = PyArray_DIM(shapes, 0);
    size_t bytes;
    if (pivot_mul_size(&bytes, (size_t)n, PIVOT_SIM_ROW_FIELDS * sizeof(double)) != PIVOT_OK)
        return pivot_py_raise_status(PIVOT_ERR_OVERFLOW, "sim_gemms");
    double *rows = malloc(bytes > 0 ? bytes : 1);
    if (rows == NULL) return PyErr_NoMemory();
    double totals[PIVOT_SIM_TOT_FIELDS];
    int status;
    const int64_t *s = PyArray_DATA(shapes);
    Py_BEGIN_ALLOW_THREADS
    status = pivot_sim_gemms(rows, totals, &hw, s, n);
    Py_END_ALLOW_THREADS
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : pivot_py_raise_status(status, "sim_gemms");
    free(rows);
    return out;
}

/* sim_lvvit(hw, (batch, depth, embed_dim, num_heads, mlp_hidden, num_tokens, num_patches, patch_dim,
 *            num_classes, num_prefix_tokens, distilled), stem int64 (n, 3): M, N, K, aux_head, path uint8,
 *            entropy) -> (rows, totals), as sim_vit (csrc/sim_lvvit.c) */
static PyObject *py_sim_lvvit(PyObject *self, PyObject *args) {
    PyObject *hw_obj, *stem_obj, *path_obj;
    int aux_head, entropy;
    pivot_sim_vit vit;
    if (!PyArg_ParseTuple(args, "O(LLLLLLLLLLL)OpOp", &hw_obj, &vit.batch, &vit.depth, &vit.embed_dim, &vit.num_heads,
                          &vit.mlp_hidden, &vit.num_tokens, &vit.num_patches, &vit.patch_dim, &vit.num_classes,
                          &vit.num_prefix_tokens, &vit.distilled, &stem_obj, &aux_head, &path_obj, &entropy))
        return NULL;
    pivot_sim_hw hw;
    if (parse_sim_hw(hw_obj, &hw) != 0) return NULL;
    PyArrayObject *stem = pivot_py_array(stem_obj, "stem", NPY_INT64, 2);
    PyArrayObject *path = stem ? pivot_py_array(path_obj, "path", NPY_UINT8, 1) : NULL;
    if (path == NULL) return NULL;
    if (PyArray_DIM(stem, 1) != 3 || PyArray_DIM(stem, 0) > 1000) {
        PyErr_SetString(PyExc_ValueError, "stem must have shape (n <= 1000, 3): M, N, K of each convolution");
        return NULL;
    }
    if (vit.depth < 1 || vit.depth > 1000000) {
        PyErr_Format(PyExc_ValueError, "depth must be in [1, 1000000], got %lld", (long long)vit.depth);
        return NULL;
    }
    if (PyArray_DIM(path, 0) != vit.depth) {
        PyErr_Format(PyExc_ValueError, "path has %zd entries but the model has %lld encoders",
                     (Py_ssize_t)PyArray_DIM(path, 0), (long long)vit.depth);
        return NULL;
    }
    const int64_t n_stem = PyArray_DIM(stem, 0);
    const int64_t max_rows = pivot_sim_lvvit_max_rows(vit.depth, n_stem);
    double *rows = malloc((size_t)max_rows * PIVOT_SIM_ROW_FIELDS * sizeof(double));
    if (rows == NULL) return PyErr_NoMemory();
    double totals[PIVOT_SIM_TOT_FIELDS];
    int64_t n = 0;
    int status;
    const uint8_t *p = PyArray_DATA(path);
    const int64_t *st = PyArray_DATA(stem);
    Py_BEGIN_ALLOW_THREADS
    status = pivot_sim_lvvit_forward(rows, &n, totals, &hw, &vit, st, n_stem, aux_head, p, entropy, max_rows);
    Py_END_ALLOW_THREADS
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : pivot_py_raise_status(status, "sim_lvvit");
    free(rows);
    return out;
}

/* sim_vit_modes(hw, vit tuple (as sim_vit), path uint8 (0/1/2), attention_kind, entropy) */
static PyObject *py_sim_vit_modes(PyObject *self, PyObject *args) {
    PyObject *hw_obj, *path_obj;
    int entropy, kind;
    pivot_sim_vit vit;
    if (!PyArg_ParseTuple(args, "O(LLLLLLLLLLL)Oip", &hw_obj, &vit.batch, &vit.depth, &vit.embed_dim, &vit.num_heads,
                          &vit.mlp_hidden, &vit.num_tokens, &vit.num_patches, &vit.patch_dim, &vit.num_classes,
                          &vit.num_prefix_tokens, &vit.distilled, &path_obj, &kind, &entropy))
        return NULL;
    pivot_sim_hw hw;
    if (parse_sim_hw(hw_obj, &hw) != 0) return NULL;
    PyArrayObject *path = pivot_py_array(path_obj, "path", NPY_UINT8, 1);
    if (path == NULL) return NULL;
    if (vit.depth < 1 || vit.depth > 1000000 || PyArray_DIM(path, 0) != vit.depth) {
        PyErr_Format(PyExc_ValueError, "path has %zd entries, depth is %lld (must be in [1, 1000000])",
                     (Py_ssize_t)PyArray_DIM(path, 0), (long long)vit.depth);
        return NULL;
    }
    const int64_t max_rows = pivot_sim_vit_modes_max_rows(vit.depth);
    double *rows = malloc((size_t)max_rows * PIVOT_SIM_ROW_FIELDS * sizeof(double));
    if (rows == NULL) return PyErr_NoMemory();
    double totals[PIVOT_SIM_TOT_FIELDS];
    int64_t n = 0;
    int status;
    const uint8_t *p = PyArray_DATA(path);
    Py_BEGIN_ALLOW_THREADS
    status = pivot_sim_vit_modes_forward(rows, &n, totals, &hw, &vit, p, kind, entropy, max_rows);
    Py_END_ALLOW_THREADS
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : pivot_py_raise_status(status, "sim_vit_modes");
    free(rows);
    return out;
}

/* The path arrays are read again without the GIL after they sized the outputs: private copies. */
static PyObject *py_sim_vit_private(PyObject *self, PyObject *args) { return pivot_py_private_arg(self, args, 2, py_sim_vit); }
static PyObject *py_sim_lvvit_private(PyObject *self, PyObject *args) { return pivot_py_private_arg(self, args, 4, py_sim_lvvit); }
static PyObject *py_sim_vit_modes_private(PyObject *self, PyObject *args) {
    return pivot_py_private_arg(self, args, 2, py_sim_vit_modes);
}

PyMethodDef pivot_sim_methods[] = {
    {"sim_gemm_cycles", py_sim_gemm_cycles, METH_VARARGS, "Compute cycles of one GEMM (see pivot.sim.gemm_cycles)."},
    {"sim_vit", py_sim_vit_private, METH_VARARGS, "Rows and totals of one ViT inference (see pivot.sim.simulate)."},
    {"sim_gemms", py_sim_gemms, METH_VARARGS, "Rows and totals of a list of GEMMs (see pivot.sim.simulate_gemms)."},
    {"sim_lvvit", py_sim_lvvit_private, METH_VARARGS, "Rows and totals of one inference of a ViT with LV-ViT's stem and aux head (see pivot.sim.simulate)."},
    {"sim_vit_modes", py_sim_vit_modes_private, METH_VARARGS, "Rows and totals of one ViT inference with reuse / linear attention (see pivot.sim.simulate)."},
    {NULL, NULL, 0, NULL},
};
