/* Bindings of PIVOT-Sim (csrc/pivot_sim.h). The hardware and the model cross by attribute name
 * (pivot.sim.HardwareConfig, pivot.ViTConfig), every argument by keyword, and the results come back
 * as dicts of named columns, so that no field is matched by its position. */
#include "bind.h"

#include <stdlib.h>
#include <string.h>

#include "modes.h"
#include "pivot_sim.h"

/* The names of the report columns (csrc/pivot_sim.h PIVOT_SIM_ROW_* and PIVOT_SIM_TOT_*), as the
 * result dicts key them. Units are in the names. */
static const char *const row_names[PIVOT_SIM_ROW_FIELDS] = {
    [PIVOT_SIM_ROW_OP] = "op", [PIVOT_SIM_ROW_BLOCK] = "block", [PIVOT_SIM_ROW_MODULE] = "module",
    [PIVOT_SIM_ROW_IS_PS] = "is_ps", [PIVOT_SIM_ROW_M] = "M", [PIVOT_SIM_ROW_N] = "N", [PIVOT_SIM_ROW_K] = "K",
    [PIVOT_SIM_ROW_COUNT] = "count", [PIVOT_SIM_ROW_MACS] = "macs",
    [PIVOT_SIM_ROW_COMPUTE_CYCLES] = "compute_cycles", [PIVOT_SIM_ROW_STALL_CYCLES] = "stall_cycles",
    [PIVOT_SIM_ROW_PS_CYCLES] = "ps_cycles", [PIVOT_SIM_ROW_UTILIZATION_PCT] = "utilization_pct",
    [PIVOT_SIM_ROW_SRAM_READS] = "sram_reads_words", [PIVOT_SIM_ROW_SRAM_WRITES] = "sram_writes_words",
    [PIVOT_SIM_ROW_DRAM_READS] = "dram_reads_words", [PIVOT_SIM_ROW_DRAM_WRITES] = "dram_writes_words",
    [PIVOT_SIM_ROW_DELAY_S] = "delay_s", [PIVOT_SIM_ROW_ENERGY_PE_ARRAY] = "energy_pe_array_j",
    [PIVOT_SIM_ROW_ENERGY_SRAM] = "energy_sram_j", [PIVOT_SIM_ROW_ENERGY_PERIPHERY] = "energy_periphery_j",
    [PIVOT_SIM_ROW_ENERGY_PS] = "energy_ps_j", [PIVOT_SIM_ROW_ENERGY] = "energy_j",
};
static const char *const total_names[PIVOT_SIM_TOT_FIELDS] = {
    [PIVOT_SIM_TOT_DELAY_S] = "delay_s", [PIVOT_SIM_TOT_ENERGY] = "energy_j",
    [PIVOT_SIM_TOT_ENERGY_PE_ARRAY] = "energy_pe_array_j", [PIVOT_SIM_TOT_ENERGY_SRAM] = "energy_sram_j",
    [PIVOT_SIM_TOT_ENERGY_PERIPHERY] = "energy_periphery_j", [PIVOT_SIM_TOT_ENERGY_PS] = "energy_ps_j",
    [PIVOT_SIM_TOT_COMPUTE_CYCLES] = "compute_cycles", [PIVOT_SIM_TOT_STALL_CYCLES] = "stall_cycles",
    [PIVOT_SIM_TOT_PS_CYCLES] = "ps_cycles", [PIVOT_SIM_TOT_MACS] = "macs",
    [PIVOT_SIM_TOT_SRAM_READS] = "sram_reads_words", [PIVOT_SIM_TOT_SRAM_WRITES] = "sram_writes_words",
    [PIVOT_SIM_TOT_DRAM_READS] = "dram_reads_words", [PIVOT_SIM_TOT_DRAM_WRITES] = "dram_writes_words",
    [PIVOT_SIM_TOT_MODULE_S + PIVOT_SIM_ATTENTION_MAC] = "delay_attention_mac_s",
    [PIVOT_SIM_TOT_MODULE_S + PIVOT_SIM_SOFTMAX] = "delay_softmax_s",
    [PIVOT_SIM_TOT_MODULE_S + PIVOT_SIM_MLP] = "delay_mlp_s",
    [PIVOT_SIM_TOT_MODULE_S + PIVOT_SIM_OTHER] = "delay_other_s",
};

/* ------------------------------------------------------------------ reading objects by attribute */

/* Attribute `name` of obj as an integer (not a bool) in [lo, hi]. */
static int sim_attr_i64(PyObject *obj, const char *owner, const char *name, int64_t lo, int64_t hi, int64_t *out) {
    PyObject *v = pivot_py_attr(obj, owner, name);
    if (!v) return -1;
    if (PyBool_Check(v) || !PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s.%s must be an int, got %s", owner, name, Py_TYPE(v)->tp_name);
        Py_DECREF(v);
        return -1;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (overflow || n < lo || n > hi) {
        PyErr_Format(PyExc_ValueError, "%s.%s must be in [%lld, %lld]", owner, name, (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int64_t)n;
    return 0;
}

/* Attribute `name` of obj as a double (a Python float or int; range checks are pivot_sim_check_hw's). */
static int sim_attr_f64(PyObject *obj, const char *owner, const char *name, double *out) {
    PyObject *v = pivot_py_attr(obj, owner, name);
    if (!v) return -1;
    if (PyBool_Check(v) || !(PyFloat_Check(v) || PyLong_Check(v))) {
        PyErr_Format(PyExc_TypeError, "%s.%s must be a number, got %s", owner, name, Py_TYPE(v)->tp_name);
        Py_DECREF(v);
        return -1;
    }
    double d = PyFloat_AsDouble(v);
    Py_DECREF(v);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    *out = d;
    return 0;
}


/* Fills a pivot_sim_hw from a pivot.sim.HardwareConfig, read by attribute name, in SI units. The
 * operand width scales the word size (bits / 8), the energy per MAC ((bits / 8)^2) and per SRAM
 * access (bits / 8); see pivot.sim.bit_width_report. */
static int sim_read_hw(PyObject *obj, pivot_sim_hw *hw) {
    static const char *const dataflows[] = {"is", "ws", "os"};
    static const char *const reals[] = {
        "clock_mhz", "word_bytes", "global_buffer_bytes", "ipmem_bytes", "wtmem_bytes", "opmem_bytes",
        "sram_active_fraction", "dram_bandwidth_gbps", "ps_clock_mhz", "softmax_cycles_per_element",
        "gelu_cycles_per_element", "layernorm_cycles_per_element", "entropy_cycles_per_element", "mac_energy_pj",
        "sram_access_energy_pj", "dram_energy_pj_per_byte", "ps_active_power_w", "pe_array_static_w",
        "sram_static_w", "periphery_static_w", "ps_static_w"};
    enum { N_REALS = sizeof reals / sizeof reals[0] };
    double r[N_REALS];
    int64_t operand_bits;
    memset(hw, 0, sizeof *hw);
    if (sim_attr_i64(obj, "hw", "array_rows", 1, INT64_MAX, &hw->array_rows) ||
        sim_attr_i64(obj, "hw", "array_cols", 1, INT64_MAX, &hw->array_cols) ||
        sim_attr_i64(obj, "hw", "operand_bits", 1, 1024, &operand_bits))
        return -1;
    if ((hw->dataflow = pivot_py_attr_choice(obj, "hw", "dataflow", dataflows, 3)) < 0) return -1;
    for (int i = 0; i < N_REALS; i++)
        if (sim_attr_f64(obj, "hw", reals[i], &r[i])) return -1;
    const double bits = (double)operand_bits / 8.0;
    hw->clock_hz = r[0] * 1e6;
    hw->word_bytes = r[1] * bits;
    hw->global_buffer_bytes = r[2];
    hw->ipmem_bytes = r[3];
    hw->wtmem_bytes = r[4];
    hw->opmem_bytes = r[5];
    hw->sram_active_fraction = r[6];
    hw->dram_bytes_per_s = r[7] * 1e9;
    hw->ps_clock_hz = r[8] * 1e6;
    hw->softmax_cycles = r[9];
    hw->gelu_cycles = r[10];
    hw->layernorm_cycles = r[11];
    hw->entropy_cycles = r[12];
    hw->mac_energy_j = r[13] * bits * bits * 1e-12;
    hw->sram_access_energy_j = r[14] * bits * 1e-12;
    hw->dram_energy_j_per_byte = r[15] * 1e-12;
    hw->ps_active_power_w = r[16];
    hw->pe_array_static_w = r[17];
    hw->sram_static_w = r[18];
    hw->periphery_static_w = r[19];
    hw->ps_static_w = r[20];
    if (pivot_sim_check_hw(hw) != PIVOT_OK) {
        PyErr_SetString(PyExc_ValueError, "hw has an out-of-range field (see pivot.sim.HardwareConfig)");
        return -1;
    }
    return 0;
}

/* Fills the model shape and layer list from a pivot.ViTConfig, read by attribute name. */
static int sim_read_model(PyObject *obj, pivot_sim_vit *vit, pivot_sim_layers *layers, int *conv_stem) {
    static const char *const sizes[] = {"depth", "embed_dim", "num_heads", "mlp_hidden", "num_tokens",
                                        "num_patches", "num_classes", "head_norm_tokens"}; /* the rows the final norm runs on */
    static const char *const stems[] = {"patch", "lvvit_conv"};
    static const char *const kinds[] = {"softmax", "relu_linear"};
    int64_t *fields[] = {&vit->depth, &vit->embed_dim, &vit->num_heads, &vit->mlp_hidden, &vit->num_tokens,
                         &vit->num_patches, &vit->num_classes, &vit->num_prefix_tokens};
    int64_t in_chans, kernel;
    int distilled, stem, aux_head, kind;
    for (int i = 0; i < 8; i++)
        if (sim_attr_i64(obj, "config", sizes[i], 1, INT64_MAX, fields[i])) return -1;
    if (sim_attr_i64(obj, "config", "proj_in_chans", 1, INT64_MAX, &in_chans) ||
        sim_attr_i64(obj, "config", "proj_kernel", 1, INT64_MAX, &kernel) ||
        pivot_py_attr_bool(obj, "config", "distilled", &distilled) || pivot_py_attr_bool(obj, "config", "aux_head", &aux_head))
        return -1;
    if ((stem = pivot_py_attr_choice(obj, "config", "stem", stems, 2)) < 0 ||
        (kind = pivot_py_attr_choice(obj, "config", "attention", kinds, 2)) < 0)
        return -1;
    if (kernel > INT64_MAX / kernel || in_chans > INT64_MAX / (kernel * kernel)) {
        PyErr_SetString(PyExc_OverflowError, "config: proj_in_chans * proj_kernel^2 overflows");
        return -1;
    }
    vit->patch_dim = in_chans * kernel * kernel;
    vit->distilled = distilled;
    layers->aux_head = aux_head;
    layers->attention_kind = kind;
    *conv_stem = stem == 1; /* its convolutions come as their GEMM shapes (`stem=`) */
    return 0;
}

/* {"rows": {column: float64 (n,)}, "totals": {column: float}} from C buffers. */
static PyObject *sim_result(const double *rows, int64_t n, const double *totals) {
    PyObject *cols = PyDict_New(), *tots = PyDict_New();
    if (!cols || !tots) goto fail;
    for (int j = 0; j < PIVOT_SIM_ROW_FIELDS; j++) {
        npy_intp dims[1] = {(npy_intp)n};
        PyObject *col = PyArray_SimpleNew(1, dims, NPY_FLOAT64);
        if (!col) goto fail;
        double *c = PyArray_DATA((PyArrayObject *)col);
        for (int64_t i = 0; i < n; i++) c[i] = rows[i * PIVOT_SIM_ROW_FIELDS + j];
        int bad = PyDict_SetItemString(cols, row_names[j], col);
        Py_DECREF(col);
        if (bad) goto fail;
    }
    for (int j = 0; j < PIVOT_SIM_TOT_FIELDS; j++) {
        PyObject *v = PyFloat_FromDouble(totals[j]);
        int bad = !v || PyDict_SetItemString(tots, total_names[j], v);
        Py_XDECREF(v);
        if (bad) goto fail;
    }
    return Py_BuildValue("{sNsN}", "rows", cols, "totals", tots);
fail:
    Py_XDECREF(cols);
    Py_XDECREF(tots);
    return NULL;
}

/* ------------------------------------------------------------------ the bindings */

/* sim_gemm_cycles(*, M, N, K, rows, cols, dataflow) */
static PyObject *py_sim_gemm_cycles(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kw[] = {"M", "N", "K", "rows", "cols", "dataflow", NULL};
    long long M, N, K, rows, cols;
    int dataflow;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$LLLLLi", kw, &M, &N, &K, &rows, &cols, &dataflow)) return NULL;
    int64_t cycles = 0;
    int status = pivot_sim_gemm_cycles(&cycles, M, N, K, rows, cols, dataflow);
    if (status != PIVOT_OK) return pivot_py_raise_status(status, "sim_gemm_cycles");
    return PyLong_FromLongLong(cycles);
}

/* sim_forward(*, hw, config, batch, path uint8 (depth,), stem int64 (n, 3) or None, entropy):
 * every row of one inference (pivot_sim_forward) and their totals, as named columns. */
static PyObject *py_sim_forward(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kw[] = {"hw", "config", "batch", "path", "stem", "entropy", NULL};
    PyObject *hw_obj, *config_obj, *path_obj, *stem_obj;
    long long batch;
    int entropy;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOLOOp", kw, &hw_obj, &config_obj, &batch, &path_obj, &stem_obj,
                                     &entropy))
        return NULL;
    pivot_sim_hw hw;
    pivot_sim_vit vit = {0};
    pivot_sim_layers layers = {0};
    int conv_stem;
    if (sim_read_hw(hw_obj, &hw) || sim_read_model(config_obj, &vit, &layers, &conv_stem)) return NULL;
    if (conv_stem != (stem_obj != Py_None)) {
        PyErr_SetString(PyExc_ValueError, conv_stem ? "config has a convolution stem: pass its GEMM shapes as stem="
                                                    : "stem= is for a config with a convolution stem (lvvit_conv)");
        return NULL;
    }
    if (batch < 1) {
        PyErr_Format(PyExc_ValueError, "batch must be positive, got %lld", batch);
        return NULL;
    }
    vit.batch = batch;
    layers.entropy = entropy;
    PyArrayObject *path = pivot_py_array(path_obj, "path", NPY_UINT8, 1);
    if (path == NULL) return NULL;
    if (vit.depth > PIVOT_SIM_MAX_DEPTH || PyArray_DIM(path, 0) != vit.depth) {
        PyErr_Format(PyExc_ValueError, "path has %zd entries, depth is %lld (must be in [1, %d])",
                     (Py_ssize_t)PyArray_DIM(path, 0), (long long)vit.depth, PIVOT_SIM_MAX_DEPTH);
        return NULL;
    }
    PyArrayObject *stem = NULL;
    if (stem_obj != Py_None) {
        if ((stem = pivot_py_array(stem_obj, "stem", NPY_INT64, 2)) == NULL) return NULL;
        if (PyArray_DIM(stem, 1) != 3 || PyArray_DIM(stem, 0) > PIVOT_SIM_MAX_STEM) {
            PyErr_Format(PyExc_ValueError, "stem must have shape (n <= %d, 3): M, N, K of each convolution",
                         PIVOT_SIM_MAX_STEM);
            return NULL;
        }
        layers.n_stem = PyArray_DIM(stem, 0);
    }
    const int64_t max_rows = pivot_sim_max_rows(vit.depth, layers.n_stem, layers.attention_kind, layers.aux_head);
    /* path and stem are read without the GIL: private copies no other thread can change */
    PyObject *path_copy = PyArray_NewCopy(path, NPY_CORDER);
    PyObject *stem_copy = stem ? PyArray_NewCopy(stem, NPY_CORDER) : NULL;
    double *rows = malloc((size_t)max_rows * PIVOT_SIM_ROW_FIELDS * sizeof(double));
    PyObject *out = NULL;
    if (!path_copy || (stem && !stem_copy) || !rows) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    layers.stem = stem_copy ? PyArray_DATA((PyArrayObject *)stem_copy) : NULL;
    const uint8_t *p = PyArray_DATA((PyArrayObject *)path_copy);
    double totals[PIVOT_SIM_TOT_FIELDS];
    int64_t n = 0;
    int status;
    PIVOT_PY_CALL(status, pivot_sim_forward(rows, &n, totals, &hw, &vit, &layers, p, max_rows));
    out = status == PIVOT_OK ? sim_result(rows, n, totals) : pivot_py_raise_status(status, "sim_forward");
done:
    free(rows);
    Py_XDECREF(path_copy);
    Py_XDECREF(stem_copy);
    return out;
}

/* sim_gemms(*, hw, shapes int64 (n, 4): M, N, K, count): rows and totals as sim_forward's. */
static PyObject *py_sim_gemms(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kw[] = {"hw", "shapes", NULL};
    PyObject *hw_obj, *shapes_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OO", kw, &hw_obj, &shapes_obj)) return NULL;
    pivot_sim_hw hw;
    if (sim_read_hw(hw_obj, &hw) != 0) return NULL;
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
    PyObject *copy = PyArray_NewCopy(shapes, NPY_CORDER); /* read without the GIL */
    PyObject *out = NULL;
    if (!rows || !copy) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
    } else {
        double totals[PIVOT_SIM_TOT_FIELDS];
        int status;
        const int64_t *s = PyArray_DATA((PyArrayObject *)copy);
        PIVOT_PY_CALL(status, pivot_sim_gemms(rows, totals, &hw, s, n));
        out = status == PIVOT_OK ? sim_result(rows, n, totals) : pivot_py_raise_status(status, "sim_gemms");
    }
    free(rows);
    Py_XDECREF(copy);
    return out;
}

PyMethodDef pivot_sim_methods[] = {
    {"sim_gemm_cycles", (PyCFunction)(void (*)(void))py_sim_gemm_cycles, METH_VARARGS | METH_KEYWORDS,
     "Compute cycles of one GEMM (see pivot.sim.gemm_cycles); keyword arguments only."},
    {"sim_forward", (PyCFunction)(void (*)(void))py_sim_forward, METH_VARARGS | METH_KEYWORDS,
     "Named rows and totals of one model inference (see pivot.sim.simulate); keyword arguments only."},
    {"sim_gemms", (PyCFunction)(void (*)(void))py_sim_gemms, METH_VARARGS | METH_KEYWORDS,
     "Named rows and totals of a list of GEMMs (see pivot.sim.simulate_gemms); keyword arguments only."},
    {NULL, NULL, 0, NULL},
};
