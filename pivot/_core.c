/* pivot._core: the one file that includes Python.h and NumPy's headers.
 *
 * Each function here validates its arguments (dtype, shape, contiguity, alignment), releases
 * the GIL around the C call into csrc/, and turns a pivot_status into a Python exception.
 * Sections are kept per area (engine, simulator, cka, ...) so that each area adds its own
 * functions and method-table entries between its own markers. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL pivot_ARRAY_API
#include <numpy/arrayobject.h>

#include "pivot_blas.h"
#include "pivot_status.h"

/* ===================================================================== common helpers */

/* Sets the Python exception matching a pivot status; returns NULL for `return raise_status(...)`. */
static PyObject *raise_status(int status, const char *context) {
    PyObject *type;
    switch (status) {
    case PIVOT_ERR_NOMEM: type = PyExc_MemoryError; break;
    case PIVOT_ERR_VALUE:
    case PIVOT_ERR_SHAPE: type = PyExc_ValueError; break;
    case PIVOT_ERR_OVERFLOW: type = PyExc_OverflowError; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_Format(type, "%s: %s", context, pivot_status_string(status));
    return NULL;
}

/* Checks that obj is a NumPy array of the given type and rank (ndim < 0: any rank), C-contiguous
 * and aligned. Returns a borrowed PyArrayObject*, or NULL with a TypeError/ValueError naming `name`. */
static PyArrayObject *check_array(PyObject *obj, const char *name, int typenum, int ndim) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy array, got %s", name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != typenum) {
        PyArray_Descr *want = PyArray_DescrFromType(typenum);
        PyErr_Format(PyExc_TypeError, "%s must have dtype %S, got %S", name, (PyObject *)want,
                     (PyObject *)PyArray_DESCR(arr));
        Py_XDECREF(want);
        return NULL;
    }
    if (!PyArray_ISNOTSWAPPED(arr)) {
        PyErr_Format(PyExc_ValueError, "%s must be in native byte order", name);
        return NULL;
    }
    if (ndim >= 0 && PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, got %d", name, ndim, PyArray_NDIM(arr));
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISALIGNED(arr)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous and aligned", name);
        return NULL;
    }
    return arr;
}

/* Checks that a writable output array was given (for functions that write into caller memory). */
static int check_writable(PyArrayObject *arr, const char *name) {
    if (!PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError, "%s must be writable", name);
        return -1;
    }
    return 0;
}

/* ===================================================================== blas */

static PyObject *py_blas_set_num_threads(PyObject *self, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 1 || n > 1024) {
        PyErr_Format(PyExc_ValueError, "threads must be in [1, 1024], got %ld", n);
        return NULL;
    }
    pivot_blas_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *py_blas_get_num_threads(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(pivot_blas_get_num_threads());
}

/* ===================================================================== engine */

/* ===================================================================== end engine */

/* ===================================================================== simulator */

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
    if (status != PIVOT_OK) return raise_status(status, "sim_gemm_cycles");
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
    PyArrayObject *path = check_array(path_obj, "path", NPY_UINT8, 1);
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
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : raise_status(status, "sim_vit");
    free(rows);
    return out;
}

/* sim_gemms(hw, shapes int64 (n, 4): M, N, K, count) */
static PyObject *py_sim_gemms(PyObject *self, PyObject *args) {
    PyObject *hw_obj, *shapes_obj;
    if (!PyArg_ParseTuple(args, "OO", &hw_obj, &shapes_obj)) return NULL;
    pivot_sim_hw hw;
    if (parse_sim_hw(hw_obj, &hw) != 0) return NULL;
    PyArrayObject *shapes = check_array(shapes_obj, "shapes", NPY_INT64, 2);
    if (shapes == NULL) return NULL;
    if (PyArray_DIM(shapes, 1) != 4) {
        PyErr_Format(PyExc_ValueError, "shapes must have 4 columns (M, N, K, count), got %zd",
                     (Py_ssize_t)PyArray_DIM(shapes, 1));
        return NULL;
    }
    const int64_t n = PyArray_DIM(shapes, 0);
    size_t bytes;
    if (pivot_mul_size(&bytes, (size_t)n, PIVOT_SIM_ROW_FIELDS * sizeof(double)) != PIVOT_OK)
        return raise_status(PIVOT_ERR_OVERFLOW, "sim_gemms");
    double *rows = malloc(bytes > 0 ? bytes : 1);
    if (rows == NULL) return PyErr_NoMemory();
    double totals[PIVOT_SIM_TOT_FIELDS];
    int status;
    const int64_t *s = PyArray_DATA(shapes);
    Py_BEGIN_ALLOW_THREADS
    status = pivot_sim_gemms(rows, totals, &hw, s, n);
    Py_END_ALLOW_THREADS
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : raise_status(status, "sim_gemms");
    free(rows);
    return out;
}

/* ===================================================================== end simulator */

/* ===================================================================== cka */

/* ===================================================================== end cka */

/* ===================================================================== module */

static PyMethodDef core_methods[] = {
    {"blas_set_num_threads", py_blas_set_num_threads, METH_O, "Set the OpenBLAS thread count used by pivot."},
    {"blas_get_num_threads", py_blas_get_num_threads, METH_NOARGS, "OpenBLAS thread count used by pivot."},

    /* engine methods */

    /* end engine methods */

    /* simulator methods */
    {"sim_gemm_cycles", py_sim_gemm_cycles, METH_VARARGS, "Compute cycles of one GEMM (see pivot.sim.gemm_cycles)."},
    {"sim_vit", py_sim_vit, METH_VARARGS, "Rows and totals of one ViT inference (see pivot.sim.simulate)."},
    {"sim_gemms", py_sim_gemms, METH_VARARGS, "Rows and totals of a list of GEMMs (see pivot.sim.simulate_gemms)."},

    /* end simulator methods */

    /* cka methods */

    /* end cka methods */

    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "pivot._core", "pivot's C core (see csrc/).", -1, core_methods,
};

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) return NULL;
    /* module setup: engine */
    /* end module setup: engine */
    /* module setup: simulator */
    if (PyModule_AddIntConstant(m, "SIM_ROW_FIELDS", PIVOT_SIM_ROW_FIELDS) < 0 ||
        PyModule_AddIntConstant(m, "SIM_TOT_FIELDS", PIVOT_SIM_TOT_FIELDS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* end module setup: simulator */
    /* module setup: cka */
    /* end module setup: cka */
    return m;
}
