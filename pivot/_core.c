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

#include "engine.h"

/* Parses a config tuple (img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads,
 * mlp_hidden, distilled, norm_eps) as built by pivot/model.py. */
static int parse_vit_config(PyObject *obj, pivot_vit_config *cfg) {
    Py_ssize_t v[8];
    int distilled;
    float eps;
    if (!PyArg_ParseTuple(obj, "nnnnnnnnpf;config must be a tuple (img_size, patch_size, in_chans, "
                               "num_classes, embed_dim, depth, num_heads, mlp_hidden, distilled, norm_eps)",
                          &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &distilled, &eps))
        return -1;
    for (int i = 0; i < 8; i++)
        if (v[i] < 1) {
            PyErr_SetString(PyExc_ValueError, "config sizes must be positive");
            return -1;
        }
    cfg->img_size = (size_t)v[0];
    cfg->patch_size = (size_t)v[1];
    cfg->in_chans = (size_t)v[2];
    cfg->num_classes = (size_t)v[3];
    cfg->embed_dim = (size_t)v[4];
    cfg->depth = (size_t)v[5];
    cfg->num_heads = (size_t)v[6];
    cfg->mlp_hidden = (size_t)v[7];
    cfg->distilled = distilled;
    cfg->norm_eps = eps;
    return 0;
}

static int check_dim(PyArrayObject *arr, const char *name, int axis, npy_intp want) {
    if (PyArray_DIM(arr, axis) != want) {
        PyErr_Format(PyExc_ValueError, "%s has size %zd along axis %d, expected %zd", name,
                     (Py_ssize_t)PyArray_DIM(arr, axis), axis, (Py_ssize_t)want);
        return -1;
    }
    return 0;
}

static int check_threads(int threads) {
    if (threads < 1 || threads > 1024) {
        PyErr_Format(PyExc_ValueError, "threads must be in [1, 1024], got %d", threads);
        return -1;
    }
    return 0;
}

static PyArrayObject *new_float_array(int ndim, npy_intp *dims) {
    return (PyArrayObject *)PyArray_SimpleNew(ndim, dims, NPY_FLOAT32);
}

#define F32(a) ((float *)PyArray_DATA(a))

static PyObject *py_layernorm_forward(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_w, *o_b;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOf", &o_inp, &o_w, &o_b, &eps)) return NULL;
    PyArrayObject *inp = check_array(o_inp, "inp", NPY_FLOAT32, 2);
    PyArrayObject *w = inp ? check_array(o_w, "weight", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *b = w ? check_array(o_b, "bias", NPY_FLOAT32, 1) : NULL;
    if (!b) return NULL;
    npy_intp N = PyArray_DIM(inp, 0), C = PyArray_DIM(inp, 1);
    if (check_dim(w, "weight", 0, C) || check_dim(b, "bias", 0, C)) return NULL;
    PyArrayObject *out = new_float_array(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_layernorm_forward(F32(out), F32(inp), F32(w), F32(b), (size_t)N, (size_t)C, eps);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "layernorm_forward"); }
    return (PyObject *)out;
}

static PyObject *py_gelu_forward(PyObject *self, PyObject *arg) {
    PyArrayObject *inp = check_array(arg, "inp", NPY_FLOAT32, -1);
    if (!inp) return NULL;
    PyArrayObject *out = new_float_array(PyArray_NDIM(inp), PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_gelu_forward(F32(out), F32(inp), (size_t)PyArray_SIZE(inp));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "gelu_forward"); }
    return (PyObject *)out;
}

static PyObject *py_softmax_forward(PyObject *self, PyObject *arg) {
    PyArrayObject *inp = check_array(arg, "inp", NPY_FLOAT32, 2);
    if (!inp) return NULL;
    PyArrayObject *out = new_float_array(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_softmax_forward(F32(out), F32(inp), (size_t)PyArray_DIM(inp, 0), (size_t)PyArray_DIM(inp, 1));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "softmax_forward"); }
    return (PyObject *)out;
}

static PyObject *py_attention_forward(PyObject *self, PyObject *args) {
    PyObject *o[5];
    Py_ssize_t NH;
    if (!PyArg_ParseTuple(args, "OOOOOn", &o[0], &o[1], &o[2], &o[3], &o[4], &NH)) return NULL;
    PyArrayObject *inp = check_array(o[0], "inp", NPY_FLOAT32, 3);
    if (!inp) return NULL;
    npy_intp B = PyArray_DIM(inp, 0), T = PyArray_DIM(inp, 1), C = PyArray_DIM(inp, 2);
    PyArrayObject *qw = check_array(o[1], "qkv_w", NPY_FLOAT32, 2);
    PyArrayObject *qb = qw ? check_array(o[2], "qkv_b", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *pw = qb ? check_array(o[3], "proj_w", NPY_FLOAT32, 2) : NULL;
    PyArrayObject *pb = pw ? check_array(o[4], "proj_b", NPY_FLOAT32, 1) : NULL;
    if (!pb) return NULL;
    if (check_dim(qw, "qkv_w", 0, 3 * C) || check_dim(qw, "qkv_w", 1, C) || check_dim(qb, "qkv_b", 0, 3 * C) ||
        check_dim(pw, "proj_w", 0, C) || check_dim(pw, "proj_w", 1, C) || check_dim(pb, "proj_b", 0, C))
        return NULL;
    if (NH < 1 || C % NH) {
        PyErr_Format(PyExc_ValueError, "num_heads (%zd) must be positive and divide C (%zd)", NH, (Py_ssize_t)C);
        return NULL;
    }
    PyArrayObject *out = new_float_array(3, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_attention_forward(F32(out), F32(inp), F32(qw), F32(qb), F32(pw), F32(pb), (size_t)B, (size_t)T,
                                 (size_t)C, (size_t)NH);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "attention_forward"); }
    return (PyObject *)out;
}

static PyObject *py_mlp_forward(PyObject *self, PyObject *args) {
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4])) return NULL;
    PyArrayObject *inp = check_array(o[0], "inp", NPY_FLOAT32, 2);
    PyArrayObject *w1 = inp ? check_array(o[1], "fc1_w", NPY_FLOAT32, 2) : NULL;
    PyArrayObject *b1 = w1 ? check_array(o[2], "fc1_b", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *w2 = b1 ? check_array(o[3], "fc2_w", NPY_FLOAT32, 2) : NULL;
    PyArrayObject *b2 = w2 ? check_array(o[4], "fc2_b", NPY_FLOAT32, 1) : NULL;
    if (!b2) return NULL;
    npy_intp N = PyArray_DIM(inp, 0), C = PyArray_DIM(inp, 1), H = PyArray_DIM(w1, 0);
    if (check_dim(w1, "fc1_w", 1, C) || check_dim(b1, "fc1_b", 0, H) || check_dim(w2, "fc2_w", 0, C) ||
        check_dim(w2, "fc2_w", 1, H) || check_dim(b2, "fc2_b", 0, C))
        return NULL;
    PyArrayObject *out = new_float_array(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_mlp_forward(F32(out), F32(inp), F32(w1), F32(b1), F32(w2), F32(b2), (size_t)N, (size_t)C, (size_t)H);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "mlp_forward"); }
    return (PyObject *)out;
}

static PyObject *py_block_forward(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_block;
    Py_ssize_t NH, H;
    float eps;
    int active, threads;
    if (!PyArg_ParseTuple(args, "OOnnfpi", &o_inp, &o_block, &NH, &H, &eps, &active, &threads)) return NULL;
    PyArrayObject *inp = check_array(o_inp, "inp", NPY_FLOAT32, 3);
    PyArrayObject *blk = inp ? check_array(o_block, "block", NPY_FLOAT32, 1) : NULL;
    if (!blk || check_threads(threads)) return NULL;
    npy_intp B = PyArray_DIM(inp, 0), T = PyArray_DIM(inp, 1), C = PyArray_DIM(inp, 2);
    if (NH < 1 || C % NH || H < 1) {
        PyErr_Format(PyExc_ValueError, "num_heads (%zd) must divide C (%zd) and hidden (%zd) be positive", NH,
                     (Py_ssize_t)C, H);
        return NULL;
    }
    size_t np;
    int st = pivot_block_num_params(&np, (size_t)C, (size_t)H);
    if (st) return raise_status(st, "block_forward");
    if (check_dim(blk, "block", 0, (npy_intp)np)) return NULL;
    PyArrayObject *out = new_float_array(3, PyArray_DIMS(inp));
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_block_forward(F32(out), F32(inp), F32(blk), (size_t)B, (size_t)T, (size_t)C, (size_t)NH, (size_t)H,
                             eps, active, threads);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "block_forward"); }
    return (PyObject *)out;
}

static PyObject *py_engine_blas_threads(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(pivot_engine_blas_threads());
}

static PyObject *py_vit_num_params(PyObject *self, PyObject *arg) {
    pivot_vit_config cfg;
    if (parse_vit_config(arg, &cfg)) return NULL;
    size_t n;
    int st = pivot_vit_num_params(&n, &cfg);
    if (st) return raise_status(st, "vit_num_params");
    return PyLong_FromSize_t(n);
}

/* vit_forward(images, params, config, path, threads, capture, packed=None) -> logits, or with capture
 * (logits, attn (n_active, B, T, C), mlp (D, B, T, C)). packed (perf): vit_pack(params, config). */
static PyObject *py_vit_forward(PyObject *self, PyObject *args) {
    PyObject *o_img, *o_params, *o_cfg, *o_path, *o_packed = Py_None;
    int threads, capture;
    if (!PyArg_ParseTuple(args, "OOOOip|O", &o_img, &o_params, &o_cfg, &o_path, &threads, &capture, &o_packed))
        return NULL;
    pivot_vit_config cfg;
    if (parse_vit_config(o_cfg, &cfg) || check_threads(threads)) return NULL;
    PyArrayObject *img = check_array(o_img, "images", NPY_FLOAT32, 4);
    PyArrayObject *params = img ? check_array(o_params, "params", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *path = params ? check_array(o_path, "path", NPY_UINT8, 1) : NULL;
    if (!path) return NULL;
    size_t np;
    int st = pivot_vit_num_params(&np, &cfg);
    if (st) return raise_status(st, "vit_forward");
    npy_intp B = PyArray_DIM(img, 0);
    if (check_dim(params, "params", 0, (npy_intp)np) || check_dim(path, "path", 0, (npy_intp)cfg.depth) ||
        check_dim(img, "images", 1, (npy_intp)cfg.in_chans) || check_dim(img, "images", 2, (npy_intp)cfg.img_size) ||
        check_dim(img, "images", 3, (npy_intp)cfg.img_size))
        return NULL;
    PyArrayObject *packed = NULL; /* perf */
    if (o_packed != Py_None) {
        size_t n_packed;
        if ((st = pivot_vit_packed_size(&n_packed, &cfg))) return raise_status(st, "vit_forward");
        if (!(packed = check_array(o_packed, "packed", NPY_FLOAT32, 1)) ||
            check_dim(packed, "packed", 0, (npy_intp)n_packed))
            return NULL;
    }
    pivot_vit_extras extras; /* perf: timm's ViT plus the packed weights */
    memset(&extras, 0, sizeof extras);
    extras.skip_lam = 1.0f;
    extras.packed = packed ? F32(packed) : NULL;
    const uint8_t *pp = (const uint8_t *)PyArray_DATA(path);
    npy_intp n_active = 0;
    for (size_t i = 0; i < cfg.depth; i++) {
        if (pp[i] > 1) {
            PyErr_Format(PyExc_ValueError, "path values must be 0 or 1, got %d at %zu", (int)pp[i], i);
            return NULL;
        }
        n_active += pp[i];
    }
    npy_intp T = (npy_intp)((cfg.img_size / cfg.patch_size) * (cfg.img_size / cfg.patch_size) + (cfg.distilled ? 2 : 1));
    npy_intp dl[2] = {B, (npy_intp)cfg.num_classes};
    npy_intp da[4] = {n_active, B, T, (npy_intp)cfg.embed_dim};
    npy_intp dm[4] = {(npy_intp)cfg.depth, B, T, (npy_intp)cfg.embed_dim};
    PyArrayObject *logits = new_float_array(2, dl), *attn = NULL, *mlp = NULL;
    if (!logits) return NULL;
    if (capture) {
        attn = new_float_array(4, da);
        mlp = attn ? new_float_array(4, dm) : NULL;
        if (!mlp) { Py_DECREF(logits); Py_XDECREF(attn); return NULL; }
    }
    Py_BEGIN_ALLOW_THREADS
    st = pivot_vit_forward_ex(F32(logits), attn ? F32(attn) : NULL, mlp ? F32(mlp) : NULL, F32(img), F32(params),
                              &cfg, &extras, pp, (size_t)B, threads);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(logits); Py_XDECREF(attn); Py_XDECREF(mlp);
        return raise_status(st, "vit_forward");
    }
    if (!capture) return (PyObject *)logits;
    return Py_BuildValue("(NNN)", logits, attn, mlp);
}

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

#include "cka.h"

/* Optional float32 argument: Py_None gives NULL. */
static int optional_float_array(PyObject *obj, const char *name, int ndim, PyArrayObject **out) {
    *out = NULL;
    if (obj == Py_None) return 0;
    *out = check_array(obj, name, NPY_FLOAT32, ndim);
    return *out == NULL ? -1 : 0;
}

/* cka_gram(xa, xb, shift) -> (Na, Nb) float64: (xa - shift)(xb - shift)^T; xb None = xa. */
static PyObject *py_cka_gram(PyObject *self, PyObject *args) {
    PyObject *xa_obj, *xb_obj, *shift_obj;
    if (!PyArg_ParseTuple(args, "OOO", &xa_obj, &xb_obj, &shift_obj)) return NULL;
    PyArrayObject *xa = check_array(xa_obj, "xa", NPY_FLOAT32, 2), *xb, *shift;
    if (xa == NULL || optional_float_array(xb_obj, "xb", 2, &xb) || optional_float_array(shift_obj, "shift", 1, &shift))
        return NULL;
    npy_intp Na = PyArray_DIM(xa, 0), P = PyArray_DIM(xa, 1), Nb = xb ? PyArray_DIM(xb, 0) : Na;
    if (Na < 1 || Nb < 1) {
        PyErr_SetString(PyExc_ValueError, "cka_gram: need at least one sample in xa and xb");
        return NULL;
    }
    if (xb && PyArray_DIM(xb, 1) != P) {
        PyErr_Format(PyExc_ValueError, "cka_gram: xa has %zd features per sample but xb has %zd",
                     (Py_ssize_t)P, (Py_ssize_t)PyArray_DIM(xb, 1));
        return NULL;
    }
    if (shift && PyArray_DIM(shift, 0) != P) {
        PyErr_Format(PyExc_ValueError, "cka_gram: shift has %zd entries but samples have %zd features",
                     (Py_ssize_t)PyArray_DIM(shift, 0), (Py_ssize_t)P);
        return NULL;
    }
    npy_intp dims[2] = {Na, Nb};
    PyArrayObject *gram = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    if (gram == NULL) return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pivot_cka_gram((double *)PyArray_DATA(gram), (const float *)PyArray_DATA(xa),
                            xb ? (const float *)PyArray_DATA(xb) : NULL,
                            shift ? (const float *)PyArray_DATA(shift) : NULL,
                            (size_t)Na, (size_t)Nb, (size_t)P);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) {
        Py_DECREF(gram);
        return raise_status(status, "cka_gram");
    }
    return (PyObject *)gram;
}

/* cka_center_gram(gram, unbiased) -> None: centers a (N, N) float64 Gram matrix in place. */
static PyObject *py_cka_center_gram(PyObject *self, PyObject *args) {
    PyObject *gram_obj;
    int unbiased;
    if (!PyArg_ParseTuple(args, "Op", &gram_obj, &unbiased)) return NULL;
    PyArrayObject *gram = check_array(gram_obj, "gram", NPY_FLOAT64, 2);
    if (gram == NULL || check_writable(gram, "gram")) return NULL;
    npy_intp N = PyArray_DIM(gram, 0);
    if (PyArray_DIM(gram, 1) != N) {
        PyErr_Format(PyExc_ValueError, "cka_center_gram: gram must be square, got (%zd, %zd)",
                     (Py_ssize_t)N, (Py_ssize_t)PyArray_DIM(gram, 1));
        return NULL;
    }
    if (N < (unbiased ? 4 : 1)) {
        PyErr_Format(PyExc_ValueError, "cka_center_gram: %s centering needs at least %d samples, got %zd",
                     unbiased ? "unbiased" : "biased", unbiased ? 4 : 1, (Py_ssize_t)N);
        return NULL;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pivot_cka_center_gram((double *)PyArray_DATA(gram), (size_t)N, unbiased);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) return raise_status(status, "cka_center_gram");
    Py_RETURN_NONE;
}

/* Checks a stack of centered Grams (D, N, N) float64 with D >= 1 and N large enough. */
static PyArrayObject *check_grams(PyObject *obj, const char *name, int unbiased) {
    PyArrayObject *grams = check_array(obj, name, NPY_FLOAT64, 3);
    if (grams == NULL) return NULL;
    npy_intp N = PyArray_DIM(grams, 1);
    if (PyArray_DIM(grams, 2) != N || PyArray_DIM(grams, 0) < 1) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (D >= 1, N, N), got (%zd, %zd, %zd)", name,
                     (Py_ssize_t)PyArray_DIM(grams, 0), (Py_ssize_t)N, (Py_ssize_t)PyArray_DIM(grams, 2));
        return NULL;
    }
    if (N < (unbiased ? 4 : 2)) {
        PyErr_Format(PyExc_ValueError, "%s: the %s HSIC estimator needs at least %d samples, got %zd", name,
                     unbiased ? "unbiased" : "biased", unbiased ? 4 : 2, (Py_ssize_t)N);
        return NULL;
    }
    return grams;
}

/* cka_hsic(grams_x, grams_y, unbiased) -> (Dx, Dy) float64 HSIC of every pair of centered Grams. */
static PyObject *py_cka_hsic(PyObject *self, PyObject *args) {
    PyObject *x_obj, *y_obj;
    int unbiased;
    if (!PyArg_ParseTuple(args, "OOp", &x_obj, &y_obj, &unbiased)) return NULL;
    PyArrayObject *gx = check_grams(x_obj, "grams_x", unbiased);
    if (gx == NULL) return NULL;
    PyArrayObject *gy = check_grams(y_obj, "grams_y", unbiased);
    if (gy == NULL) return NULL;
    npy_intp N = PyArray_DIM(gx, 1);
    if (PyArray_DIM(gy, 1) != N) {
        PyErr_Format(PyExc_ValueError, "cka_hsic: grams_x are over %zd samples but grams_y over %zd",
                     (Py_ssize_t)N, (Py_ssize_t)PyArray_DIM(gy, 1));
        return NULL;
    }
    npy_intp dims[2] = {PyArray_DIM(gx, 0), PyArray_DIM(gy, 0)};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    if (out == NULL) return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pivot_cka_hsic((double *)PyArray_DATA(out), (const double *)PyArray_DATA(gx),
                            (const double *)PyArray_DATA(gy), (size_t)dims[0], (size_t)dims[1], (size_t)N, unbiased);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) {
        Py_DECREF(out);
        return raise_status(status, "cka_hsic");
    }
    return (PyObject *)out;
}

/* cka_hsic_self(grams, unbiased) -> (D,) float64 HSIC of each centered Gram with itself. */
static PyObject *py_cka_hsic_self(PyObject *self, PyObject *args) {
    PyObject *g_obj;
    int unbiased;
    if (!PyArg_ParseTuple(args, "Op", &g_obj, &unbiased)) return NULL;
    PyArrayObject *grams = check_grams(g_obj, "grams", unbiased);
    if (grams == NULL) return NULL;
    npy_intp D = PyArray_DIM(grams, 0);
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &D, NPY_FLOAT64);
    if (out == NULL) return NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pivot_cka_hsic_self((double *)PyArray_DATA(out), (const double *)PyArray_DATA(grams), (size_t)D,
                                 (size_t)PyArray_DIM(grams, 1), unbiased);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) {
        Py_DECREF(out);
        return raise_status(status, "cka_hsic_self");
    }
    return (PyObject *)out;
}

/* Checks a (D, D) float64 CKA matrix with D >= 1. */
static PyArrayObject *check_cka_matrix(PyObject *obj) {
    PyArrayObject *cka = check_array(obj, "cka", NPY_FLOAT64, 2);
    if (cka == NULL) return NULL;
    if (PyArray_DIM(cka, 0) != PyArray_DIM(cka, 1) || PyArray_DIM(cka, 0) < 1) {
        PyErr_Format(PyExc_ValueError, "cka must be a square (D, D) matrix with D >= 1, got (%zd, %zd)",
                     (Py_ssize_t)PyArray_DIM(cka, 0), (Py_ssize_t)PyArray_DIM(cka, 1));
        return NULL;
    }
    return cka;
}

/* path_score(cka, path) -> float: Algorithm 1. */
static PyObject *py_path_score(PyObject *self, PyObject *args) {
    PyObject *cka_obj, *path_obj;
    if (!PyArg_ParseTuple(args, "OO", &cka_obj, &path_obj)) return NULL;
    PyArrayObject *cka = check_cka_matrix(cka_obj);
    if (cka == NULL) return NULL;
    PyArrayObject *path = check_array(path_obj, "path", NPY_UINT8, 1);
    if (path == NULL) return NULL;
    npy_intp D = PyArray_DIM(cka, 0);
    if (PyArray_DIM(path, 0) != D) {
        PyErr_Format(PyExc_ValueError, "path has %zd entries but cka is (%zd, %zd)",
                     (Py_ssize_t)PyArray_DIM(path, 0), (Py_ssize_t)D, (Py_ssize_t)D);
        return NULL;
    }
    double score;
    int status = pivot_path_score(&score, (const double *)PyArray_DATA(cka), (const uint8_t *)PyArray_DATA(path), (size_t)D);
    if (status != PIVOT_OK) return raise_status(status, "path_score (path values must be 0 or 1)");
    return PyFloat_FromDouble(score);
}

/* rank_paths(cka, effort, k) -> (scores (k,), paths (k, D) uint8): the k best paths, best first. */
static PyObject *py_rank_paths(PyObject *self, PyObject *args) {
    PyObject *cka_obj;
    Py_ssize_t effort, k;
    if (!PyArg_ParseTuple(args, "Onn", &cka_obj, &effort, &k)) return NULL;
    PyArrayObject *cka = check_cka_matrix(cka_obj);
    if (cka == NULL) return NULL;
    npy_intp D = PyArray_DIM(cka, 0);
    if (D > 64) {
        PyErr_Format(PyExc_ValueError, "rank_paths enumerates paths of at most 64 encoders, got D = %zd", (Py_ssize_t)D);
        return NULL;
    }
    if (effort < 0 || effort > D) {
        PyErr_Format(PyExc_ValueError, "effort must be in [0, %zd], got %zd", (Py_ssize_t)D, effort);
        return NULL;
    }
    if (k < 1) {
        PyErr_Format(PyExc_ValueError, "rank_paths: k must be >= 1, got %zd", k);
        return NULL;
    }
    npy_intp dims[2] = {(npy_intp)k, D};
    PyArrayObject *scores = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_FLOAT64);
    PyArrayObject *paths = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_UINT8);
    if (scores == NULL || paths == NULL) {
        Py_XDECREF(scores);
        Py_XDECREF(paths);
        return NULL;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pivot_rank_paths((double *)PyArray_DATA(scores), (uint8_t *)PyArray_DATA(paths),
                              (const double *)PyArray_DATA(cka), (size_t)D, (size_t)effort, (size_t)k);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) {
        Py_DECREF(scores);
        Py_DECREF(paths);
        return raise_status(status, "rank_paths (k must be at most C(D, effort))");
    }
    return Py_BuildValue("NN", scores, paths);
}

/* best_paths(cka) -> (scores (D + 1,), paths (D + 1, D) uint8): the best path of each effort. */
static PyObject *py_best_paths(PyObject *self, PyObject *arg) {
    PyArrayObject *cka = check_cka_matrix(arg);
    if (cka == NULL) return NULL;
    npy_intp D = PyArray_DIM(cka, 0);
    npy_intp dims[2] = {D + 1, D};
    PyArrayObject *scores = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_FLOAT64);
    PyArrayObject *paths = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_UINT8);
    if (scores == NULL || paths == NULL) {
        Py_XDECREF(scores);
        Py_XDECREF(paths);
        return NULL;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pivot_best_paths((double *)PyArray_DATA(scores), (uint8_t *)PyArray_DATA(paths),
                              (const double *)PyArray_DATA(cka), (size_t)D);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) {
        Py_DECREF(scores);
        Py_DECREF(paths);
        return raise_status(status, "best_paths");
    }
    return Py_BuildValue("NN", scores, paths);
}

/* ===================================================================== end cka */

/* ===================================================================== search */

#include "entropy.h"

/* softmax_entropy(logits, with_probs) -> entropy (B,) float32, or (probs (B, K), entropy (B,)).
 * logits: float32 (B, K), C-contiguous, K >= 2. */
static PyObject *py_softmax_entropy(PyObject *self, PyObject *args) {
    PyObject *logits_obj;
    int with_probs = 0;
    if (!PyArg_ParseTuple(args, "O|p:softmax_entropy", &logits_obj, &with_probs)) return NULL;
    PyArrayObject *logits = check_array(logits_obj, "logits", NPY_FLOAT32, 2);
    if (logits == NULL) return NULL;
    npy_intp B = PyArray_DIM(logits, 0), K = PyArray_DIM(logits, 1);
    if (K < 2) {
        PyErr_Format(PyExc_ValueError,
                     "logits must have at least 2 classes (entropy is normalized by log K), got K=%zd", (Py_ssize_t)K);
        return NULL;
    }
    npy_intp entropy_dims[1] = {B};
    PyArrayObject *entropy = (PyArrayObject *)PyArray_SimpleNew(1, entropy_dims, NPY_FLOAT32);
    if (entropy == NULL) return NULL;
    PyArrayObject *probs = NULL;
    if (with_probs) {
        npy_intp probs_dims[2] = {B, K};
        probs = (PyArrayObject *)PyArray_SimpleNew(2, probs_dims, NPY_FLOAT32);
        if (probs == NULL) { Py_DECREF(entropy); return NULL; }
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pivot_softmax_entropy(probs != NULL ? (float *)PyArray_DATA(probs) : NULL,
                                   (float *)PyArray_DATA(entropy), (const float *)PyArray_DATA(logits),
                                   (size_t)B, (size_t)K);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) {
        Py_DECREF(entropy);
        Py_XDECREF(probs);
        return raise_status(status, "softmax_entropy");
    }
    if (probs == NULL) return (PyObject *)entropy;
    return Py_BuildValue("(NN)", probs, entropy);
}

/* ===================================================================== end search */

/* ===================================================================== lvvit */

#include "lvvit.h"

/* Parses (vit config tuple, stem_channels, skip_lam, aux_head) as pivot/lvvit.py packs it; the vit
 * tuple is the engine's (parse_vit_config), of the model as its images see it. */
static int parse_lvvit_config(PyObject *obj, pivot_lvvit_config *cfg) {
    PyObject *vit;
    Py_ssize_t stem_channels;
    float skip_lam;
    int aux_head;
    if (!PyArg_ParseTuple(obj, "Onfp;lvvit config must be a tuple (vit config, stem_channels, skip_lam, aux_head)",
                          &vit, &stem_channels, &skip_lam, &aux_head))
        return -1;
    if (parse_vit_config(vit, &cfg->vit)) return -1;
    if (stem_channels < 0 || !(skip_lam > 0.0f) || isinf(skip_lam)) {
        PyErr_SetString(PyExc_ValueError, "stem_channels must be >= 0 and skip_lam positive and finite");
        return -1;
    }
    cfg->stem_channels = (size_t)stem_channels;
    cfg->skip_lam = skip_lam;
    cfg->aux_head = aux_head;
    return 0;
}

/* conv2d_forward(inp (B, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout), stride, pad, relu, threads) */
static PyObject *py_conv2d_forward(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_w, *o_b;
    Py_ssize_t stride, pad;
    int relu, threads;
    if (!PyArg_ParseTuple(args, "OOOnnpi", &o_inp, &o_w, &o_b, &stride, &pad, &relu, &threads)) return NULL;
    PyArrayObject *inp = check_array(o_inp, "inp", NPY_FLOAT32, 4);
    PyArrayObject *w = inp ? check_array(o_w, "weight", NPY_FLOAT32, 4) : NULL;
    PyArrayObject *b = w ? check_array(o_b, "bias", NPY_FLOAT32, 1) : NULL;
    if (!b || check_threads(threads)) return NULL;
    npy_intp B = PyArray_DIM(inp, 0), Cin = PyArray_DIM(inp, 1), H = PyArray_DIM(inp, 2), W = PyArray_DIM(inp, 3);
    npy_intp Cout = PyArray_DIM(w, 0), k = PyArray_DIM(w, 2);
    if (check_dim(w, "weight", 1, Cin) || check_dim(w, "weight", 3, k) || check_dim(b, "bias", 0, Cout)) return NULL;
    if (stride < 1 || pad < 0 || k < 1 || Cout < 1 || Cin < 1 || H + 2 * pad < k || W + 2 * pad < k) {
        PyErr_Format(PyExc_ValueError, "conv2d: need stride >= 1, pad >= 0 and a kernel (%zd) that fits the padded "
                     "input (%zd x %zd, pad %zd)", (Py_ssize_t)k, (Py_ssize_t)H, (Py_ssize_t)W, pad);
        return NULL;
    }
    npy_intp dims[4] = {B, Cout, (H + 2 * pad - k) / stride + 1, (W + 2 * pad - k) / stride + 1};
    PyArrayObject *out = new_float_array(4, dims);
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_conv2d_forward(F32(out), F32(inp), F32(w), F32(b), (size_t)B, (size_t)Cin, (size_t)H, (size_t)W,
                              (size_t)Cout, (size_t)k, (size_t)stride, (size_t)pad, relu, threads);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "conv2d_forward"); }
    return (PyObject *)out;
}

/* lvvit_num_params(config) -> (params floats, stem floats) */
static PyObject *py_lvvit_num_params(PyObject *self, PyObject *arg) {
    pivot_lvvit_config cfg;
    if (parse_lvvit_config(arg, &cfg)) return NULL;
    size_t np, ns;
    int st = pivot_lvvit_num_params(&np, &ns, &cfg);
    if (st) return raise_status(st, "lvvit_num_params");
    return Py_BuildValue("(nn)", (Py_ssize_t)np, (Py_ssize_t)ns);
}

/* Checks images (B, in_chans, img, img) and the stem array against a config; returns B or -1. */
static npy_intp check_lvvit_inputs(PyArrayObject *img, PyArrayObject *stem, const pivot_lvvit_config *cfg, size_t ns) {
    if (check_dim(img, "images", 1, (npy_intp)cfg->vit.in_chans) || check_dim(img, "images", 2, (npy_intp)cfg->vit.img_size) ||
        check_dim(img, "images", 3, (npy_intp)cfg->vit.img_size))
        return -1;
    if (stem && check_dim(stem, "stem", 0, (npy_intp)ns)) return -1;
    return PyArray_DIM(img, 0);
}

/* lvvit_stem_forward(images, stem, config, threads) -> (B, stem_channels, img/2, img/2) */
static PyObject *py_lvvit_stem_forward(PyObject *self, PyObject *args) {
    PyObject *o_img, *o_stem, *o_cfg;
    int threads;
    if (!PyArg_ParseTuple(args, "OOOi", &o_img, &o_stem, &o_cfg, &threads)) return NULL;
    pivot_lvvit_config cfg;
    if (parse_lvvit_config(o_cfg, &cfg) || check_threads(threads)) return NULL;
    if (!cfg.stem_channels) {
        PyErr_SetString(PyExc_ValueError, "lvvit_stem_forward: the config has no conv stem (stem_channels 0)");
        return NULL;
    }
    PyArrayObject *img = check_array(o_img, "images", NPY_FLOAT32, 4);
    PyArrayObject *stem = img ? check_array(o_stem, "stem", NPY_FLOAT32, 1) : NULL;
    if (!stem) return NULL;
    size_t np, ns;
    int st = pivot_lvvit_num_params(&np, &ns, &cfg);
    if (st) return raise_status(st, "lvvit_stem_forward");
    npy_intp B = check_lvvit_inputs(img, stem, &cfg, ns);
    if (B < 0) return NULL;
    npy_intp dims[4] = {B, (npy_intp)cfg.stem_channels, (npy_intp)cfg.vit.img_size / 2, (npy_intp)cfg.vit.img_size / 2};
    PyArrayObject *out = new_float_array(4, dims);
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_lvvit_stem_forward(F32(out), F32(img), F32(stem), &cfg, (size_t)B, threads);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "lvvit_stem_forward"); }
    return (PyObject *)out;
}

/* lvvit_forward(images, stem or None, params, config, path, threads, capture) -> logits, or with
 * capture (logits, attn (n_active, B, T, C), mlp (D, B, T, C)). */
static PyObject *py_lvvit_forward(PyObject *self, PyObject *args) {
    PyObject *o_img, *o_stem, *o_params, *o_cfg, *o_path;
    int threads, capture;
    if (!PyArg_ParseTuple(args, "OOOOOip", &o_img, &o_stem, &o_params, &o_cfg, &o_path, &threads, &capture))
        return NULL;
    pivot_lvvit_config cfg;
    if (parse_lvvit_config(o_cfg, &cfg) || check_threads(threads)) return NULL;
    size_t np, ns;
    int st = pivot_lvvit_num_params(&np, &ns, &cfg);
    if (st) return raise_status(st, "lvvit_forward");
    if ((o_stem == Py_None) != (cfg.stem_channels == 0)) {
        PyErr_SetString(PyExc_ValueError, "lvvit_forward: pass the stem array exactly when the config has a conv stem");
        return NULL;
    }
    PyArrayObject *img = check_array(o_img, "images", NPY_FLOAT32, 4);
    PyArrayObject *stem = NULL;
    if (img && o_stem != Py_None && !(stem = check_array(o_stem, "stem", NPY_FLOAT32, 1))) return NULL;
    PyArrayObject *params = img ? check_array(o_params, "params", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *path = params ? check_array(o_path, "path", NPY_UINT8, 1) : NULL;
    if (!path) return NULL;
    npy_intp B = check_lvvit_inputs(img, stem, &cfg, ns);
    if (B < 0 || check_dim(params, "params", 0, (npy_intp)np) || check_dim(path, "path", 0, (npy_intp)cfg.vit.depth))
        return NULL;
    const uint8_t *pp = (const uint8_t *)PyArray_DATA(path);
    npy_intp n_active = 0;
    for (size_t i = 0; i < cfg.vit.depth; i++) {
        if (pp[i] > 1) {
            PyErr_Format(PyExc_ValueError, "path values must be 0 or 1, got %d at %zu", (int)pp[i], i);
            return NULL;
        }
        n_active += pp[i];
    }
    npy_intp G = (npy_intp)(cfg.vit.img_size / cfg.vit.patch_size);
    npy_intp T = G * G + (cfg.vit.distilled ? 2 : 1);
    npy_intp dl[2] = {B, (npy_intp)cfg.vit.num_classes};
    npy_intp da[4] = {n_active, B, T, (npy_intp)cfg.vit.embed_dim};
    npy_intp dm[4] = {(npy_intp)cfg.vit.depth, B, T, (npy_intp)cfg.vit.embed_dim};
    PyArrayObject *logits = new_float_array(2, dl), *attn = NULL, *mlp = NULL;
    if (!logits) return NULL;
    if (capture) {
        attn = new_float_array(4, da);
        mlp = attn ? new_float_array(4, dm) : NULL;
        if (!mlp) { Py_DECREF(logits); Py_XDECREF(attn); return NULL; }
    }
    Py_BEGIN_ALLOW_THREADS
    st = pivot_lvvit_forward(F32(logits), attn ? F32(attn) : NULL, mlp ? F32(mlp) : NULL, F32(img),
                             stem ? F32(stem) : NULL, F32(params), &cfg, pp, (size_t)B, threads);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(logits); Py_XDECREF(attn); Py_XDECREF(mlp);
        return raise_status(st, "lvvit_forward");
    }
    if (!capture) return (PyObject *)logits;
    return Py_BuildValue("(NNN)", logits, attn, mlp);
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
    PyArrayObject *stem = check_array(stem_obj, "stem", NPY_INT64, 2);
    PyArrayObject *path = stem ? check_array(path_obj, "path", NPY_UINT8, 1) : NULL;
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
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : raise_status(status, "sim_lvvit");
    free(rows);
    return out;
}

/* ===================================================================== end lvvit */

/* ===================================================================== modes */

#include "modes.h"

/* modes_vit_forward(images, params, config tuple, path uint8 (0/1/2), threads, capture, attention_kind,
 * linear_eps, capture_probs) -> logits, or with capture (logits, attn (n_attention, B, T, C),
 * mlp (D, B, T, C), probs (n_active, B, NH, T, T) or None). */
static PyObject *py_modes_vit_forward(PyObject *self, PyObject *args) {
    PyObject *o_img, *o_params, *o_cfg, *o_path;
    int threads, capture, kind, capture_probs;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOOipifp", &o_img, &o_params, &o_cfg, &o_path, &threads, &capture, &kind, &eps,
                          &capture_probs))
        return NULL;
    pivot_vit_config cfg;
    if (parse_vit_config(o_cfg, &cfg) || check_threads(threads)) return NULL;
    PyArrayObject *img = check_array(o_img, "images", NPY_FLOAT32, 4);
    PyArrayObject *params = img ? check_array(o_params, "params", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *path = params ? check_array(o_path, "path", NPY_UINT8, 1) : NULL;
    if (!path) return NULL;
    size_t np;
    int st = pivot_vit_num_params(&np, &cfg);
    if (st) return raise_status(st, "modes_vit_forward");
    npy_intp B = PyArray_DIM(img, 0);
    if (check_dim(params, "params", 0, (npy_intp)np) || check_dim(path, "path", 0, (npy_intp)cfg.depth) ||
        check_dim(img, "images", 1, (npy_intp)cfg.in_chans) || check_dim(img, "images", 2, (npy_intp)cfg.img_size) ||
        check_dim(img, "images", 3, (npy_intp)cfg.img_size))
        return NULL;
    const uint8_t *pp = (const uint8_t *)PyArray_DATA(path);
    if (pivot_modes_check_path(pp, cfg.depth, kind) != PIVOT_OK) {
        PyErr_SetString(PyExc_ValueError, "path values must be 0, 1 or 2, every 2 after a 1, and no 2 with linear attention");
        return NULL;
    }
    if (capture_probs && kind != PIVOT_ATTENTION_SOFTMAX) {
        PyErr_SetString(PyExc_ValueError, "attention probabilities exist only for softmax attention");
        return NULL;
    }
    npy_intp n_attn = 0, n_active = 0;
    for (size_t i = 0; i < cfg.depth; i++) {
        n_attn += pp[i] != 0;
        n_active += pp[i] == 1;
    }
    npy_intp T = (npy_intp)((cfg.img_size / cfg.patch_size) * (cfg.img_size / cfg.patch_size) + (cfg.distilled ? 2 : 1));
    npy_intp dl[2] = {B, (npy_intp)cfg.num_classes};
    npy_intp da[4] = {n_attn, B, T, (npy_intp)cfg.embed_dim};
    npy_intp dm[4] = {(npy_intp)cfg.depth, B, T, (npy_intp)cfg.embed_dim};
    npy_intp dp[5] = {n_active, B, (npy_intp)cfg.num_heads, T, T};
    PyArrayObject *logits = new_float_array(2, dl), *attn = NULL, *mlp = NULL, *probs = NULL;
    if (!logits) return NULL;
    if (capture) {
        attn = new_float_array(4, da);
        mlp = attn ? new_float_array(4, dm) : NULL;
        probs = mlp && capture_probs ? new_float_array(5, dp) : NULL;
        if (!mlp || (capture_probs && !probs)) {
            Py_DECREF(logits); Py_XDECREF(attn); Py_XDECREF(mlp);
            return NULL;
        }
    }
    pivot_vit_extras extras;
    memset(&extras, 0, sizeof extras);
    extras.skip_lam = 1.0f;
    extras.attention_kind = kind;
    extras.linear_eps = eps;
    extras.probs_capture = probs ? F32(probs) : NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_vit_forward_ex(F32(logits), attn ? F32(attn) : NULL, mlp ? F32(mlp) : NULL, F32(img), F32(params),
                              &cfg, &extras, pp, (size_t)B, threads);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(logits); Py_XDECREF(attn); Py_XDECREF(mlp); Py_XDECREF(probs);
        return raise_status(st, "modes_vit_forward");
    }
    if (!capture) return (PyObject *)logits;
    if (!probs) { Py_INCREF(Py_None); probs = (PyArrayObject *)Py_None; }
    return Py_BuildValue("(NNNN)", logits, attn, mlp, probs);
}

/* Shared checks of the single-branch kernels: inp (B, T, C), qkv_w (3C, C), qkv_b (3C), proj_w (C, C), proj_b (C). */
static int modes_branch_args(PyObject *const *objs, PyArrayObject **arrs, Py_ssize_t NH) {
    static const char *names[] = {"inp", "qkv_w", "qkv_b", "proj_w", "proj_b"};
    static const int ranks[] = {3, 2, 1, 2, 1};
    for (int i = 0; i < 5; i++)
        if (!(arrs[i] = check_array(objs[i], names[i], NPY_FLOAT32, ranks[i]))) return -1;
    npy_intp C = PyArray_DIM(arrs[0], 2);
    if (NH < 1 || C % NH) {
        PyErr_Format(PyExc_ValueError, "num_heads (%zd) must divide C (%zd)", NH, (Py_ssize_t)C);
        return -1;
    }
    if (check_dim(arrs[1], "qkv_w", 0, 3 * C) || check_dim(arrs[1], "qkv_w", 1, C) ||
        check_dim(arrs[2], "qkv_b", 0, 3 * C) || check_dim(arrs[3], "proj_w", 0, C) ||
        check_dim(arrs[3], "proj_w", 1, C) || check_dim(arrs[4], "proj_b", 0, C))
        return -1;
    return 0;
}

/* reuse_attention_forward(inp (B, T, C), probs (B, NH, T, T), qkv_w, qkv_b, proj_w, proj_b, num_heads) */
static PyObject *py_reuse_attention_forward(PyObject *self, PyObject *args) {
    PyObject *o[5], *o_probs;
    Py_ssize_t NH;
    if (!PyArg_ParseTuple(args, "OOOOOOn", &o[0], &o_probs, &o[1], &o[2], &o[3], &o[4], &NH)) return NULL;
    PyArrayObject *a[5];
    if (modes_branch_args(o, a, NH)) return NULL;
    PyArrayObject *probs = check_array(o_probs, "probs", NPY_FLOAT32, 4);
    npy_intp B = PyArray_DIM(a[0], 0), T = PyArray_DIM(a[0], 1), C = PyArray_DIM(a[0], 2);
    if (!probs || check_dim(probs, "probs", 0, B) || check_dim(probs, "probs", 1, NH) ||
        check_dim(probs, "probs", 2, T) || check_dim(probs, "probs", 3, T))
        return NULL;
    PyArrayObject *out = new_float_array(3, PyArray_DIMS(a[0]));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_reuse_attention_forward(F32(out), F32(a[0]), F32(probs), F32(a[1]), F32(a[2]), F32(a[3]), F32(a[4]),
                                       (size_t)B, (size_t)T, (size_t)C, (size_t)NH);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "reuse_attention_forward"); }
    return (PyObject *)out;
}

/* linear_attention_forward(inp (B, T, C), qkv_w, qkv_b, proj_w, proj_b, num_heads, eps) */
static PyObject *py_linear_attention_forward(PyObject *self, PyObject *args) {
    PyObject *o[5];
    Py_ssize_t NH;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOOOnf", &o[0], &o[1], &o[2], &o[3], &o[4], &NH, &eps)) return NULL;
    PyArrayObject *a[5];
    if (modes_branch_args(o, a, NH)) return NULL;
    npy_intp B = PyArray_DIM(a[0], 0), T = PyArray_DIM(a[0], 1), C = PyArray_DIM(a[0], 2);
    PyArrayObject *out = new_float_array(3, PyArray_DIMS(a[0]));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_linear_attention_forward(F32(out), F32(a[0]), F32(a[1]), F32(a[2]), F32(a[3]), F32(a[4]), (size_t)B,
                                        (size_t)T, (size_t)C, (size_t)NH, eps);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "linear_attention_forward"); }
    return (PyObject *)out;
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
    PyArrayObject *path = check_array(path_obj, "path", NPY_UINT8, 1);
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
    PyObject *out = status == PIVOT_OK ? sim_result(rows, n, totals) : raise_status(status, "sim_vit_modes");
    free(rows);
    return out;
}

/* ===================================================================== end modes */

/* ===================================================================== perf */

#include "gemm.h"

static PyObject *py_gemm_simd_level(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(pivot_gemm_simd_level());
}

static PyObject *py_gemm_set_simd_level(PyObject *self, PyObject *arg) {
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred()) return NULL;
    if (level < 0 || level > 2) {
        PyErr_Format(PyExc_ValueError, "level must be 0 (portable), 1 (AVX-512) or 2 (AMX), got %ld", level);
        return NULL;
    }
    return PyLong_FromLong(pivot_gemm_set_simd_level((int)level));
}

static PyObject *py_gemm_pack(PyObject *self, PyObject *arg) {
    PyArrayObject *w = check_array(arg, "weight", NPY_FLOAT32, 2);
    if (!w) return NULL;
    size_t OC = (size_t)PyArray_DIM(w, 0), IC = (size_t)PyArray_DIM(w, 1), n;
    int st = pivot_gemm_packed_size(&n, OC, IC);
    if (st) return raise_status(st, "gemm_pack");
    npy_intp dims[1] = {(npy_intp)n};
    PyArrayObject *out = new_float_array(1, dims);
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_gemm_pack(F32(out), F32(w), OC, IC);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "gemm_pack"); }
    return (PyObject *)out;
}

/* linear_forward(inp (N, IC), weight (OC, IC) or None, bias (OC) or None, epilogue, residual (N, OC)
 * or None, capture, scale, packed or None) -> out, or (out, capture) when capture is true.
 * epilogue 0 store, 1 gelu, 2 residual (out = residual + (inp @ weight^T + bias) * scale; residual
 * is not modified). */
static PyObject *py_linear_forward(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_w, *o_b, *o_res, *o_packed;
    int epilogue, capture;
    float scale;
    Py_ssize_t OC_arg;
    if (!PyArg_ParseTuple(args, "OOOiOpfOn", &o_inp, &o_w, &o_b, &epilogue, &o_res, &capture, &scale, &o_packed,
                          &OC_arg))
        return NULL;
    PyArrayObject *inp = check_array(o_inp, "inp", NPY_FLOAT32, 2);
    if (!inp) return NULL;
    npy_intp N = PyArray_DIM(inp, 0), IC = PyArray_DIM(inp, 1), OC = (npy_intp)OC_arg;
    if (epilogue < 0 || epilogue > 2) {
        PyErr_Format(PyExc_ValueError, "epilogue must be 0 (store), 1 (gelu) or 2 (residual), got %d", epilogue);
        return NULL;
    }
    if (OC < 1 || IC < 1) {
        PyErr_SetString(PyExc_ValueError, "in and out features must be positive");
        return NULL;
    }
    PyArrayObject *w = NULL, *b = NULL, *res = NULL, *packed = NULL;
    if (o_w != Py_None) {
        if (!(w = check_array(o_w, "weight", NPY_FLOAT32, 2))) return NULL;
        if (check_dim(w, "weight", 0, OC) || check_dim(w, "weight", 1, IC)) return NULL;
    }
    if (o_packed != Py_None) {
        if (!(packed = check_array(o_packed, "packed", NPY_FLOAT32, 1))) return NULL;
        size_t n;
        int st = pivot_gemm_packed_size(&n, (size_t)OC, (size_t)IC);
        if (st) return raise_status(st, "linear_forward");
        if (check_dim(packed, "packed", 0, (npy_intp)n)) return NULL;
    }
    if (!w && !packed) {
        PyErr_SetString(PyExc_ValueError, "give weight or packed");
        return NULL;
    }
    if (o_b != Py_None) {
        if (!(b = check_array(o_b, "bias", NPY_FLOAT32, 1)) || check_dim(b, "bias", 0, OC)) return NULL;
    }
    if ((epilogue == PIVOT_EPI_RESIDUAL) != (o_res != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "residual is required with epilogue 2 and only then");
        return NULL;
    }
    if (capture && epilogue != PIVOT_EPI_RESIDUAL) {
        PyErr_SetString(PyExc_ValueError, "capture needs epilogue 2 (residual)");
        return NULL;
    }
    if (o_res != Py_None) {
        if (!(res = check_array(o_res, "residual", NPY_FLOAT32, 2)) || check_dim(res, "residual", 0, N) ||
            check_dim(res, "residual", 1, OC))
            return NULL;
    }
    npy_intp dims[2] = {N, OC};
    PyArrayObject *out = res ? (PyArrayObject *)PyArray_NewCopy(res, NPY_CORDER) : new_float_array(2, dims);
    PyArrayObject *cap = out && capture ? new_float_array(2, dims) : NULL;
    if (!out || (capture && !cap)) { Py_XDECREF(out); return NULL; }
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_linear_forward(F32(out), cap ? F32(cap) : NULL, F32(inp), w ? F32(w) : NULL,
                              packed ? F32(packed) : NULL, b ? F32(b) : NULL, (size_t)N, (size_t)IC, (size_t)OC,
                              (size_t)IC, (size_t)OC, epilogue, scale);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); Py_XDECREF(cap); return raise_status(st, "linear_forward"); }
    if (!capture) return (PyObject *)out;
    return Py_BuildValue("(NN)", out, cap);
}

static PyObject *py_sgemm_nt(PyObject *self, PyObject *args) {
    PyObject *o_a, *o_b;
    if (!PyArg_ParseTuple(args, "OO", &o_a, &o_b)) return NULL;
    PyArrayObject *a = check_array(o_a, "a", NPY_FLOAT32, 2);
    PyArrayObject *b = a ? check_array(o_b, "b", NPY_FLOAT32, 2) : NULL;
    if (!b || check_dim(b, "b", 1, PyArray_DIM(a, 1))) return NULL;
    npy_intp dims[2] = {PyArray_DIM(a, 0), PyArray_DIM(b, 0)};
    PyArrayObject *out = new_float_array(2, dims);
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_sgemm_nt(F32(out), F32(a), F32(b), (size_t)dims[0], (size_t)dims[1], (size_t)PyArray_DIM(a, 1));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "sgemm_nt"); }
    return (PyObject *)out;
}

/* Copy of a float32 (N, C) array with fn applied to its rows in place (the fast-path row kernels,
 * for tests and the int8 reference). */
static PyObject *rows_fast(PyObject *arg, void (*fn)(float *, size_t, size_t)) {
    PyArrayObject *inp = check_array(arg, "inp", NPY_FLOAT32, 2);
    if (!inp) return NULL;
    if (PyArray_DIM(inp, 1) < 1) {
        PyErr_SetString(PyExc_ValueError, "inp rows must not be empty");
        return NULL;
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_NewCopy(inp, NPY_CORDER);
    if (!out) return NULL;
    size_t N = (size_t)PyArray_DIM(inp, 0), C = (size_t)PyArray_DIM(inp, 1);
    Py_BEGIN_ALLOW_THREADS
    fn(F32(out), N, C);
    Py_END_ALLOW_THREADS
    return (PyObject *)out;
}

static void gelu_rows(float *x, size_t N, size_t C) { pivot_gelu_rows_fast(x, NULL, N, C); }
static void softmax_rows(float *x, size_t N, size_t C) { pivot_softmax_rows_fast(x, N, C, C); }

/* gelu_fast(inp (N, C)): the int8 path's (and its NumPy reference's) GELU. */
static PyObject *py_gelu_fast(PyObject *self, PyObject *arg) { return rows_fast(arg, gelu_rows); }

/* softmax_fast(inp (N, C)) -> row softmax by the engine's fast-path kernel. */
static PyObject *py_softmax_fast(PyObject *self, PyObject *arg) { return rows_fast(arg, softmax_rows); }

/* layernorm_fast(inp (N, C), weight (C), bias (C), eps) -> LayerNorm by the fast-path kernel (tests). */
static PyObject *py_layernorm_fast(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_w, *o_b;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOf", &o_inp, &o_w, &o_b, &eps)) return NULL;
    PyArrayObject *inp = check_array(o_inp, "inp", NPY_FLOAT32, 2);
    PyArrayObject *w = inp ? check_array(o_w, "weight", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *b = w ? check_array(o_b, "bias", NPY_FLOAT32, 1) : NULL;
    if (!b) return NULL;
    npy_intp C = PyArray_DIM(inp, 1);
    if (check_dim(w, "weight", 0, C) || check_dim(b, "bias", 0, C)) return NULL;
    if (C < 1 || !(eps >= 0.0f)) {
        PyErr_SetString(PyExc_ValueError, "need C >= 1 and eps >= 0");
        return NULL;
    }
    PyArrayObject *out = new_float_array(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    pivot_layernorm_rows_fast(F32(out), F32(inp), F32(w), F32(b), (size_t)PyArray_DIM(inp, 0), (size_t)C, eps);
    Py_END_ALLOW_THREADS
    return (PyObject *)out;
}

/* vit_pack(params, config) -> the packed Linear weights that vit_forward's `packed` takes. */
static PyObject *py_vit_pack(PyObject *self, PyObject *args) {
    PyObject *o_params, *o_cfg;
    if (!PyArg_ParseTuple(args, "OO", &o_params, &o_cfg)) return NULL;
    pivot_vit_config cfg;
    if (parse_vit_config(o_cfg, &cfg)) return NULL;
    PyArrayObject *params = check_array(o_params, "params", NPY_FLOAT32, 1);
    if (!params) return NULL;
    size_t np, n;
    int st = pivot_vit_num_params(&np, &cfg);
    if (!st) st = pivot_vit_packed_size(&n, &cfg);
    if (st) return raise_status(st, "vit_pack");
    if (check_dim(params, "params", 0, (npy_intp)np)) return NULL;
    npy_intp dims[1] = {(npy_intp)n};
    PyArrayObject *out = new_float_array(1, dims);
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_vit_pack(F32(out), F32(params), &cfg);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "vit_pack"); }
    return (PyObject *)out;
}

/* ===================================================================== end perf */

/* ===================================================================== rel */

/* The functions below read their uint8 path with the GIL released, after counting its active
 * entries to size the capture outputs. Another Python thread could change the caller's path array
 * in between (a 0 becoming 1 would overflow those outputs), so each is called through this
 * wrapper, which hands it a private copy of argument `index` that no other thread can reach. */
static PyObject *call_with_private_arg(PyObject *self, PyObject *args, Py_ssize_t index, PyCFunction impl) {
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) <= index || !PyArray_Check(PyTuple_GET_ITEM(args, index)))
        return impl(self, args); /* impl reports the bad arguments */
    PyObject *copy = PyArray_NewCopy((PyArrayObject *)PyTuple_GET_ITEM(args, index), NPY_CORDER);
    if (copy == NULL) return NULL;
    /* A new tuple (PyTuple_GetSlice of the whole tuple would return `args` itself, which the
     * caller may still hold, e.g. f(*t)): the same items, the copy at `index`. */
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *private_args = PyTuple_New(n);
    if (private_args == NULL) { Py_DECREF(copy); return NULL; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = i == index ? copy : Py_NewRef(PyTuple_GET_ITEM(args, i));
        PyTuple_SET_ITEM(private_args, i, item); /* steals the reference */
    }
    PyObject *result = impl(self, private_args);
    Py_DECREF(private_args);
    return result;
}

#define PRIVATE_PATH_WRAPPER(name, impl, index) \
    static PyObject *name(PyObject *self, PyObject *args) { return call_with_private_arg(self, args, index, impl); }
PRIVATE_PATH_WRAPPER(py_vit_forward_private, py_vit_forward, 3)
PRIVATE_PATH_WRAPPER(py_lvvit_forward_private, py_lvvit_forward, 4)
PRIVATE_PATH_WRAPPER(py_modes_vit_forward_private, py_modes_vit_forward, 3)
PRIVATE_PATH_WRAPPER(py_sim_vit_private, py_sim_vit, 2)
PRIVATE_PATH_WRAPPER(py_sim_lvvit_private, py_sim_lvvit, 4)
PRIVATE_PATH_WRAPPER(py_sim_vit_modes_private, py_sim_vit_modes, 2)
#undef PRIVATE_PATH_WRAPPER

/* ===================================================================== end rel */

/* ===================================================================== module */

/* ===================================================================== int8 */
/* --- int8 */

#include "quant.h"

static int check_kernel_arg(int kernel) {
    if (kernel < PIVOT_INT8_KERNEL_AUTO || kernel > PIVOT_INT8_KERNEL_AMX) {
        PyErr_Format(PyExc_ValueError, "int8 kernel must be 0 (auto), 1 (portable), 2 (avx2), 3 (vnni) or 4 (amx), got %d",
                     kernel);
        return -1;
    }
    int resolved;
    if (pivot_int8_kernel_resolve(&resolved, kernel)) {
        if (kernel == PIVOT_INT8_KERNEL_AUTO)
            PyErr_Format(PyExc_ValueError, "environment variable PIVOT_INT8_KERNEL=%s is not one of portable, avx2, vnni, amx",
                         getenv("PIVOT_INT8_KERNEL"));
        else
            PyErr_Format(PyExc_ValueError, "int8 kernel %d (%s) is not supported by this CPU", kernel,
                         kernel == PIVOT_INT8_KERNEL_AVX2 ? "avx2" : kernel == PIVOT_INT8_KERNEL_VNNI ? "vnni" : "amx");
        return -1;
    }
    return 0;
}

static PyObject *py_int8_kernel_supported(PyObject *self, PyObject *arg) {
    long k = PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred()) return NULL;
    return PyBool_FromLong(k >= 1 && k <= PIVOT_INT8_KERNEL_AMX ? pivot_int8_kernel_supported((int)k) : 0);
}

static PyObject *py_int8_kernel_resolve(PyObject *self, PyObject *arg) {
    long k = PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (k < 0 || k > PIVOT_INT8_KERNEL_AMX) return PyErr_Format(PyExc_ValueError, "int8 kernel must be in 0..4, got %ld", k);
    if (check_kernel_arg((int)k)) return NULL;
    int resolved;
    pivot_int8_kernel_resolve(&resolved, (int)k);
    return PyLong_FromLong(resolved);
}

/* int8_pack(w int8 (N, K)) -> packed int8 (pivot_int8_packed_bytes) */
static PyObject *py_int8_pack(PyObject *self, PyObject *arg) {
    PyArrayObject *w = check_array(arg, "w", NPY_INT8, 2);
    if (!w) return NULL;
    size_t N = (size_t)PyArray_DIM(w, 0), K = (size_t)PyArray_DIM(w, 1), bytes;
    int st = pivot_int8_packed_bytes(&bytes, N, K);
    if (st) return raise_status(st, "int8_pack (w must have N >= 1 rows and K >= 1 columns)");
    npy_intp dims[1] = {(npy_intp)bytes};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT8);
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_int8_pack((int8_t *)PyArray_DATA(out), (const int8_t *)PyArray_DATA(w), N, K, K, 1);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "int8_pack"); }
    return (PyObject *)out;
}

/* int8_gemm(a uint8 (M, K), zero_point int32 (M), packed int8, N, kernel, threads) -> int32 (M, N) */
static PyObject *py_int8_gemm(PyObject *self, PyObject *args) {
    PyObject *o_a, *o_zp, *o_packed;
    Py_ssize_t N;
    int kernel, threads;
    if (!PyArg_ParseTuple(args, "OOOnii", &o_a, &o_zp, &o_packed, &N, &kernel, &threads)) return NULL;
    if (check_threads(threads) || check_kernel_arg(kernel)) return NULL;
    PyArrayObject *a = check_array(o_a, "a", NPY_UINT8, 2);
    PyArrayObject *zp = a ? check_array(o_zp, "zero_point", NPY_INT32, 1) : NULL;
    PyArrayObject *packed = zp ? check_array(o_packed, "packed", NPY_INT8, 1) : NULL;
    if (!packed) return NULL;
    size_t M = (size_t)PyArray_DIM(a, 0), K = (size_t)PyArray_DIM(a, 1), bytes;
    if (N < 1) return PyErr_Format(PyExc_ValueError, "int8_gemm: N must be >= 1, got %zd", N);
    int st = pivot_int8_packed_bytes(&bytes, (size_t)N, K);
    if (st) return raise_status(st, "int8_gemm (a must have K >= 1 columns)");
    if (check_dim(zp, "zero_point", 0, (npy_intp)M) || check_dim(packed, "packed", 0, (npy_intp)bytes)) return NULL;
    const int32_t *z = (const int32_t *)PyArray_DATA(zp);
    for (size_t m = 0; m < M; m++)
        if (z[m] < 0 || z[m] > 255)
            return PyErr_Format(PyExc_ValueError, "int8_gemm: zero_point[%zu] = %d is outside [0, 255]", m, (int)z[m]);
    npy_intp dims[2] = {(npy_intp)M, N};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT32);
    if (!out) return NULL;
    /* the kernels read rows up to K rounded up to 4: copy A with slack after it */
    uint8_t *padded = (uint8_t *)malloc(M * K + 64);
    if (!padded) { Py_DECREF(out); return PyErr_NoMemory(); }
    memcpy(padded, PyArray_DATA(a), M * K);
    memset(padded + M * K, 0, 64);
    Py_BEGIN_ALLOW_THREADS
    st = pivot_int8_gemm((int32_t *)PyArray_DATA(out), padded, z, (const int8_t *)PyArray_DATA(packed), M, (size_t)N,
                         K, K, kernel, threads);
    Py_END_ALLOW_THREADS
    free(padded);
    if (st) { Py_DECREF(out); return raise_status(st, "int8_gemm"); }
    return (PyObject *)out;
}

/* quantize_u8(x f32 (N, C), inv_scale f32 (N) or (1), zp int32 same) -> uint8 (N, C) */
static PyObject *py_quantize_u8(PyObject *self, PyObject *args) {
    PyObject *o_x, *o_inv, *o_zp;
    if (!PyArg_ParseTuple(args, "OOO", &o_x, &o_inv, &o_zp)) return NULL;
    PyArrayObject *x = check_array(o_x, "x", NPY_FLOAT32, 2);
    PyArrayObject *inv = x ? check_array(o_inv, "inv_scale", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *zp = inv ? check_array(o_zp, "zp", NPY_INT32, 1) : NULL;
    if (!zp) return NULL;
    npy_intp N = PyArray_DIM(x, 0), n = PyArray_DIM(inv, 0);
    if ((n != 1 && n != N) || PyArray_DIM(zp, 0) != n)
        return PyErr_Format(PyExc_ValueError, "quantize_u8: inv_scale and zp must both have 1 or N = %zd entries", (Py_ssize_t)N);
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(x), NPY_UINT8);
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_quantize_u8((uint8_t *)PyArray_DATA(out), F32(x), F32(inv), (const int32_t *)PyArray_DATA(zp), (size_t)N,
                           (size_t)PyArray_DIM(x, 1), n != 1 || N == 1);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return raise_status(st, "quantize_u8 (zero points in [0, 255], finite inv_scale, C >= 1)"); }
    return (PyObject *)out;
}

/* quantize_u8_rows(x f32 (N, C)) -> (uint8 (N, C), scale f32 (N), zp int32 (N)) */
static PyObject *py_quantize_u8_rows(PyObject *self, PyObject *arg) {
    PyArrayObject *x = check_array(arg, "x", NPY_FLOAT32, 2);
    if (!x) return NULL;
    npy_intp N = PyArray_DIM(x, 0);
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(x), NPY_UINT8);
    PyArrayObject *scale = out ? (PyArrayObject *)PyArray_SimpleNew(1, &N, NPY_FLOAT32) : NULL;
    PyArrayObject *zp = scale ? (PyArrayObject *)PyArray_SimpleNew(1, &N, NPY_INT32) : NULL;
    if (!zp) { Py_XDECREF(out); Py_XDECREF(scale); return NULL; }
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_quantize_u8_rows((uint8_t *)PyArray_DATA(out), F32(scale), (int32_t *)PyArray_DATA(zp), F32(x), (size_t)N,
                                (size_t)PyArray_DIM(x, 1));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); Py_DECREF(scale); Py_DECREF(zp); return raise_status(st, "quantize_u8_rows"); }
    return Py_BuildValue("(NNN)", out, scale, zp);
}

static PyObject *py_qblock_sizes(PyObject *self, PyObject *args) {
    Py_ssize_t C, H;
    if (!PyArg_ParseTuple(args, "nn", &C, &H)) return NULL;
    if (C < 1 || H < 1) return PyErr_Format(PyExc_ValueError, "qblock_sizes: C and H must be >= 1");
    size_t nf, nb;
    int st = pivot_qblock_num_floats(&nf, (size_t)C, (size_t)H);
    if (!st) st = pivot_qblock_num_bytes(&nb, (size_t)C, (size_t)H);
    if (st) return raise_status(st, "qblock_sizes");
    return Py_BuildValue("(nnn)", (Py_ssize_t)nf, (Py_ssize_t)nb, (Py_ssize_t)PIVOT_QACT_COUNT);
}

/* qvit_blocks_forward(x f32 (B, T, C), weights int8 (D * bytes), floats f32 (D * floats), path uint8 (D),
 * num_heads, hidden, eps, per_token, kernel, threads, capture) -> x or (x, attn (n_active, B, T, C), mlp (D, B, T, C)) */
static PyObject *py_qvit_blocks_forward(PyObject *self, PyObject *args) {
    PyObject *o_x, *o_w, *o_f, *o_path;
    Py_ssize_t NH, H;
    float eps;
    int per_token, kernel, threads, capture;
    if (!PyArg_ParseTuple(args, "OOOOnnfpiip", &o_x, &o_w, &o_f, &o_path, &NH, &H, &eps, &per_token, &kernel,
                          &threads, &capture))
        return NULL;
    if (check_threads(threads) || check_kernel_arg(kernel)) return NULL;
    PyArrayObject *x = check_array(o_x, "x", NPY_FLOAT32, 3);
    PyArrayObject *w = x ? check_array(o_w, "weights", NPY_INT8, 1) : NULL;
    PyArrayObject *f = w ? check_array(o_f, "floats", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *path = f ? check_array(o_path, "path", NPY_UINT8, 1) : NULL;
    if (!path) return NULL;
    npy_intp B = PyArray_DIM(x, 0), T = PyArray_DIM(x, 1), C = PyArray_DIM(x, 2), D = PyArray_DIM(path, 0);
    if (NH < 1 || H < 1 || C < 1 || T < 1 || D < 1 || C % NH)
        return PyErr_Format(PyExc_ValueError, "qvit_blocks_forward: need C %% num_heads == 0 and positive sizes");
    size_t nf, nb;
    int st = pivot_qblock_num_floats(&nf, (size_t)C, (size_t)H);
    if (!st) st = pivot_qblock_num_bytes(&nb, (size_t)C, (size_t)H);
    if (st) return raise_status(st, "qvit_blocks_forward");
    if (check_dim(w, "weights", 0, (npy_intp)(nb * (size_t)D)) || check_dim(f, "floats", 0, (npy_intp)(nf * (size_t)D)))
        return NULL;
    const uint8_t *pp = (const uint8_t *)PyArray_DATA(path);
    npy_intp n_active = 0;
    for (npy_intp i = 0; i < D; i++) {
        if (pp[i] > 2) return PyErr_Format(PyExc_ValueError, "path values must be 0, 1 or 2, got %d at %zd", (int)pp[i], (Py_ssize_t)i);
        n_active += pp[i] != 0;
    }
    if (pivot_modes_check_path(pp, (size_t)D, 0))
        return PyErr_Format(PyExc_ValueError, "path: a reuse encoder (2) needs an earlier active encoder (1)");
    PyArrayObject *out = (PyArrayObject *)PyArray_NewCopy(x, NPY_CORDER), *attn = NULL, *mlp = NULL;
    if (!out) return NULL;
    if (capture) {
        npy_intp da[4] = {n_active, B, T, C}, dm[4] = {D, B, T, C};
        attn = new_float_array(4, da);
        mlp = attn ? new_float_array(4, dm) : NULL;
        if (!mlp) { Py_DECREF(out); Py_XDECREF(attn); return NULL; }
    }
    Py_BEGIN_ALLOW_THREADS
    st = pivot_qvit_blocks_forward(F32(out), attn ? F32(attn) : NULL, mlp ? F32(mlp) : NULL,
                                   (const int8_t *)PyArray_DATA(w), F32(f), pp, (size_t)B, (size_t)T, (size_t)C,
                                   (size_t)NH, (size_t)H, (size_t)D, eps, per_token, kernel, threads);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out); Py_XDECREF(attn); Py_XDECREF(mlp);
        return raise_status(st, "qvit_blocks_forward (activation scales must be positive and finite, zero points integers in [0, 255])");
    }
    if (!capture) return (PyObject *)out;
    return Py_BuildValue("(NNN)", out, attn, mlp);
}

/* --- end int8 */

static PyMethodDef core_methods[] = {
    {"blas_set_num_threads", py_blas_set_num_threads, METH_O, "Set the OpenBLAS thread count used by pivot."},
    {"blas_get_num_threads", py_blas_get_num_threads, METH_NOARGS, "OpenBLAS thread count used by pivot."},

    /* engine methods */
    {"layernorm_forward", py_layernorm_forward, METH_VARARGS, "layernorm_forward(inp (N, C), weight (C), bias (C), eps) -> (N, C)"},
    {"gelu_forward", py_gelu_forward, METH_O, "gelu_forward(inp) -> exact-erf GELU of inp"},
    {"softmax_forward", py_softmax_forward, METH_O, "softmax_forward(inp (N, C)) -> row-wise softmax"},
    {"attention_forward", py_attention_forward, METH_VARARGS, "attention_forward(inp (B, T, C), qkv_w, qkv_b, proj_w, proj_b, num_heads) -> (B, T, C)"},
    {"mlp_forward", py_mlp_forward, METH_VARARGS, "mlp_forward(inp (N, C), fc1_w, fc1_b, fc2_w, fc2_b) -> (N, C)"},
    {"block_forward", py_block_forward, METH_VARARGS, "block_forward(inp (B, T, C), block params (flat), num_heads, hidden, eps, attn_active, threads) -> (B, T, C)"},
    {"engine_blas_threads", py_engine_blas_threads, METH_NOARGS, "OpenBLAS thread count as set by the user (the engine holds it at 1 during calls)"},
    {"vit_num_params", py_vit_num_params, METH_O, "vit_num_params(config tuple) -> length of the flat parameter array"},
    {"vit_forward", py_vit_forward_private, METH_VARARGS, "vit_forward(images, params, config tuple, path uint8, threads, capture) -> logits or (logits, attn, mlp)"},

    /* end engine methods */

    /* simulator methods */
    {"sim_gemm_cycles", py_sim_gemm_cycles, METH_VARARGS, "Compute cycles of one GEMM (see pivot.sim.gemm_cycles)."},
    {"sim_vit", py_sim_vit_private, METH_VARARGS, "Rows and totals of one ViT inference (see pivot.sim.simulate)."},
    {"sim_gemms", py_sim_gemms, METH_VARARGS, "Rows and totals of a list of GEMMs (see pivot.sim.simulate_gemms)."},

    /* end simulator methods */

    /* cka methods */
    {"cka_gram", py_cka_gram, METH_VARARGS, "cka_gram(xa, xb, shift) -> (Na, Nb) float64 Gram block (xa - shift)(xb - shift)^T; xb None: xa's own Gram."},
    {"cka_center_gram", py_cka_center_gram, METH_VARARGS, "cka_center_gram(gram, unbiased): center a (N, N) float64 Gram in place (H K H, or U-centering)."},
    {"cka_hsic", py_cka_hsic, METH_VARARGS, "cka_hsic(grams_x, grams_y, unbiased) -> (Dx, Dy) HSIC of every pair of centered Grams."},
    {"cka_hsic_self", py_cka_hsic_self, METH_VARARGS, "cka_hsic_self(grams, unbiased) -> (D,) HSIC of each centered Gram with itself."},
    {"path_score", py_path_score, METH_VARARGS, "path_score(cka, path) -> Path-Score of a uint8 path (Algorithm 1)."},
    {"rank_paths", py_rank_paths, METH_VARARGS, "rank_paths(cka, effort, k) -> (scores, paths): the k best paths of an effort, best first."},
    {"best_paths", py_best_paths, METH_O, "best_paths(cka) -> (scores, paths): the best path of every effort 0..D (dynamic programming)."},

    /* end cka methods */

    /* search methods */
    {"softmax_entropy", py_softmax_entropy, METH_VARARGS,
     "softmax_entropy(logits, with_probs=False): normalized entropy (B,) of float32 logits (B, K), "
     "or (probs, entropy)."},
    /* end search methods */

    /* lvvit methods */
    {"conv2d_forward", py_conv2d_forward, METH_VARARGS, "conv2d_forward(inp (B, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout), stride, pad, relu, threads) -> (B, Cout, Ho, Wo)"},
    {"lvvit_num_params", py_lvvit_num_params, METH_O, "lvvit_num_params(lvvit config) -> (params floats, stem floats)"},
    {"lvvit_stem_forward", py_lvvit_stem_forward, METH_VARARGS, "lvvit_stem_forward(images, stem, lvvit config, threads) -> (B, stem_channels, img/2, img/2)"},
    {"lvvit_forward", py_lvvit_forward_private, METH_VARARGS, "lvvit_forward(images, stem or None, params, lvvit config, path uint8, threads, capture) -> logits or (logits, attn, mlp)"},
    {"sim_lvvit", py_sim_lvvit_private, METH_VARARGS, "Rows and totals of one inference of a ViT with LV-ViT's stem and aux head (see pivot.sim.simulate)."},
    /* end lvvit methods */

    /* modes methods */
    {"modes_vit_forward", py_modes_vit_forward_private, METH_VARARGS, "modes_vit_forward(images, params, config, path (0/1/2), threads, capture, attention_kind, linear_eps, capture_probs) -> logits or (logits, attn, mlp, probs or None)"},
    {"reuse_attention_forward", py_reuse_attention_forward, METH_VARARGS, "reuse_attention_forward(inp (B, T, C), probs (B, NH, T, T), qkv_w, qkv_b, proj_w, proj_b, num_heads) -> (B, T, C)"},
    {"linear_attention_forward", py_linear_attention_forward, METH_VARARGS, "linear_attention_forward(inp (B, T, C), qkv_w, qkv_b, proj_w, proj_b, num_heads, eps) -> (B, T, C)"},
    {"sim_vit_modes", py_sim_vit_modes_private, METH_VARARGS, "Rows and totals of one ViT inference with reuse / linear attention (see pivot.sim.simulate)."},
    /* end modes methods */

    /* int8 methods */
    {"int8_kernel_supported", py_int8_kernel_supported, METH_O, "int8_kernel_supported(kernel 1..4) -> bool"},
    {"int8_kernel_resolve", py_int8_kernel_resolve, METH_O, "int8_kernel_resolve(kernel 0..4) -> the kernel a call runs (0: best, capped by PIVOT_INT8_KERNEL)"},
    {"int8_pack", py_int8_pack, METH_O, "int8_pack(w int8 (N, K)) -> packed weight (panels + column sums)"},
    {"int8_gemm", py_int8_gemm, METH_VARARGS, "int8_gemm(a uint8 (M, K), zero_point int32 (M), packed, N, kernel, threads) -> int32 (M, N)"},
    {"quantize_u8", py_quantize_u8, METH_VARARGS, "quantize_u8(x f32 (N, C), inv_scale f32 (N|1), zp int32 (N|1)) -> uint8 (N, C)"},
    {"quantize_u8_rows", py_quantize_u8_rows, METH_O, "quantize_u8_rows(x f32 (N, C)) -> (uint8 (N, C), scale (N), zp (N)) per-row dynamic"},
    {"qblock_sizes", py_qblock_sizes, METH_VARARGS, "qblock_sizes(C, H) -> (floats per block, packed bytes per block, activation parameters per block)"},
    {"qvit_blocks_forward", py_qvit_blocks_forward, METH_VARARGS, "qvit_blocks_forward(x (B, T, C), weights, floats, path, num_heads, hidden, eps, per_token, kernel, threads, capture) -> x or (x, attn, mlp)"},
    /* end int8 methods */

    /* perf methods */
    {"gemm_simd_level", py_gemm_simd_level, METH_NOARGS, "2: AMX tiles for packed Linears, 1: AVX-512 kernels, 0: the portable path."},
    {"gemm_set_simd_level", py_gemm_set_simd_level, METH_O, "gemm_set_simd_level(level) -> level in effect (capped by the CPU); for tests."},
    {"gemm_pack", py_gemm_pack, METH_O, "gemm_pack(weight (OC, IC)) -> packed panels (see csrc/gemm.h)"},
    {"linear_forward", py_linear_forward, METH_VARARGS, "linear_forward(inp, weight|None, bias|None, epilogue, residual|None, capture, scale, packed|None, out_features) -> out or (out, capture)"},
    {"sgemm_nt", py_sgemm_nt, METH_VARARGS, "sgemm_nt(a (M, K), b (N, K)) -> a @ b^T by OpenBLAS (calling thread's BLAS settings)"},
    {"vit_pack", py_vit_pack, METH_VARARGS, "vit_pack(params, config tuple) -> packed Linear weights for vit_forward(..., packed)"},
    {"gelu_fast", py_gelu_fast, METH_O, "gelu_fast(inp (N, C)) -> GELU by the engine's AVX-512 path (or its portable twin)"},
    {"softmax_fast", py_softmax_fast, METH_O, "softmax_fast(inp (N, C)) -> row softmax by the engine's AVX-512 path (or its portable twin)"},
    {"layernorm_fast", py_layernorm_fast, METH_VARARGS, "layernorm_fast(inp (N, C), weight, bias, eps) -> LayerNorm by the engine's AVX-512 path (or its portable twin)"},
    /* end perf methods */

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
    /* module setup: search */
    /* end module setup: search */
    /* module setup: lvvit */
    /* end module setup: lvvit */
    /* module setup: modes */
    /* end module setup: modes */
    return m;
}
