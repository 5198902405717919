/* Bindings of the encoder engine: the model forward, its kernels one by one (for the tests and
 * the NumPy twins in pivot/reference), the SIMD level and the OpenBLAS guard. */
#include "bind.h"

#include <string.h>

#include "cpu.h"
#include "engine.h"
#include "gemm.h"
#include "lvvit.h"
#include "modes.h"
#include "pivot_blas.h"
#include "quant.h"

static PyObject *py_blas_set_num_threads(PyObject *self, PyObject *arg) {
    int n;
    if (pivot_py_threads_arg(arg, &n)) return NULL;
    pivot_blas_set_num_threads(n);
    Py_RETURN_NONE;
}

static PyObject *py_blas_get_num_threads(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(pivot_blas_get_num_threads());
}

static PyObject *py_layernorm_forward(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_w, *o_b;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOf", &o_inp, &o_w, &o_b, &eps)) return NULL;
    PyArrayObject *inp = pivot_py_array(o_inp, "inp", NPY_FLOAT32, 2);
    PyArrayObject *w = inp ? pivot_py_array(o_w, "weight", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *b = w ? pivot_py_array(o_b, "bias", NPY_FLOAT32, 1) : NULL;
    if (!b) return NULL;
    npy_intp N = PyArray_DIM(inp, 0), C = PyArray_DIM(inp, 1);
    if (pivot_py_dim(w, "weight", 0, C) || pivot_py_dim(b, "bias", 0, C)) return NULL;
    PyArrayObject *out = pivot_py_new_f32(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_layernorm_forward(F32(out), F32(inp), F32(w), F32(b), (size_t)N, (size_t)C, eps);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "layernorm_forward"); }
    return (PyObject *)out;
}

static PyObject *py_gelu_forward(PyObject *self, PyObject *arg) {
    PyArrayObject *inp = pivot_py_array(arg, "inp", NPY_FLOAT32, -1);
    if (!inp) return NULL;
    PyArrayObject *out = pivot_py_new_f32(PyArray_NDIM(inp), PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_gelu_forward(F32(out), F32(inp), (size_t)PyArray_SIZE(inp));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "gelu_forward"); }
    return (PyObject *)out;
}

static PyObject *py_softmax_forward(PyObject *self, PyObject *arg) {
    PyArrayObject *inp = pivot_py_array(arg, "inp", NPY_FLOAT32, 2);
    if (!inp) return NULL;
    PyArrayObject *out = pivot_py_new_f32(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_softmax_forward(F32(out), F32(inp), (size_t)PyArray_DIM(inp, 0), (size_t)PyArray_DIM(inp, 1));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "softmax_forward"); }
    return (PyObject *)out;
}

static PyObject *py_attention_forward(PyObject *self, PyObject *args) {
    PyObject *o[5];
    Py_ssize_t NH;
    if (!PyArg_ParseTuple(args, "OOOOOn", &o[0], &o[1], &o[2], &o[3], &o[4], &NH)) return NULL;
    PyArrayObject *inp = pivot_py_array(o[0], "inp", NPY_FLOAT32, 3);
    if (!inp) return NULL;
    npy_intp B = PyArray_DIM(inp, 0), T = PyArray_DIM(inp, 1), C = PyArray_DIM(inp, 2);
    PyArrayObject *qw = pivot_py_array(o[1], "qkv_w", NPY_FLOAT32, 2);
    PyArrayObject *qb = qw ? pivot_py_array(o[2], "qkv_b", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *pw = qb ? pivot_py_array(o[3], "proj_w", NPY_FLOAT32, 2) : NULL;
    PyArrayObject *pb = pw ? pivot_py_array(o[4], "proj_b", NPY_FLOAT32, 1) : NULL;
    if (!pb) return NULL;
    if (pivot_py_dim(qw, "qkv_w", 0, 3 * C) || pivot_py_dim(qw, "qkv_w", 1, C) || pivot_py_dim(qb, "qkv_b", 0, 3 * C) ||
        pivot_py_dim(pw, "proj_w", 0, C) || pivot_py_dim(pw, "proj_w", 1, C) || pivot_py_dim(pb, "proj_b", 0, C))
        return NULL;
    if (NH < 1 || C % NH) {
        PyErr_Format(PyExc_ValueError, "num_heads (%zd) must be positive and divide C (%zd)", NH, (Py_ssize_t)C);
        return NULL;
    }
    PyArrayObject *out = pivot_py_new_f32(3, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_attention_forward(F32(out), F32(inp), F32(qw), F32(qb), F32(pw), F32(pb), (size_t)B, (size_t)T,
                                 (size_t)C, (size_t)NH);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "attention_forward"); }
    return (PyObject *)out;
}

static PyObject *py_mlp_forward(PyObject *self, PyObject *args) {
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4])) return NULL;
    PyArrayObject *inp = pivot_py_array(o[0], "inp", NPY_FLOAT32, 2);
    PyArrayObject *w1 = inp ? pivot_py_array(o[1], "fc1_w", NPY_FLOAT32, 2) : NULL;
    PyArrayObject *b1 = w1 ? pivot_py_array(o[2], "fc1_b", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *w2 = b1 ? pivot_py_array(o[3], "fc2_w", NPY_FLOAT32, 2) : NULL;
    PyArrayObject *b2 = w2 ? pivot_py_array(o[4], "fc2_b", NPY_FLOAT32, 1) : NULL;
    if (!b2) return NULL;
    npy_intp N = PyArray_DIM(inp, 0), C = PyArray_DIM(inp, 1), H = PyArray_DIM(w1, 0);
    if (pivot_py_dim(w1, "fc1_w", 1, C) || pivot_py_dim(b1, "fc1_b", 0, H) || pivot_py_dim(w2, "fc2_w", 0, C) ||
        pivot_py_dim(w2, "fc2_w", 1, H) || pivot_py_dim(b2, "fc2_b", 0, C))
        return NULL;
    PyArrayObject *out = pivot_py_new_f32(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_mlp_forward(F32(out), F32(inp), F32(w1), F32(b1), F32(w2), F32(b2), (size_t)N, (size_t)C, (size_t)H);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "mlp_forward"); }
    return (PyObject *)out;
}

static PyObject *py_block_forward(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_block;
    Py_ssize_t NH, H;
    float eps;
    int active, threads;
    if (!PyArg_ParseTuple(args, "OOnnfpi", &o_inp, &o_block, &NH, &H, &eps, &active, &threads)) return NULL;
    PyArrayObject *inp = pivot_py_array(o_inp, "inp", NPY_FLOAT32, 3);
    PyArrayObject *blk = inp ? pivot_py_array(o_block, "block", NPY_FLOAT32, 1) : NULL;
    if (!blk || pivot_py_threads(threads)) return NULL;
    npy_intp B = PyArray_DIM(inp, 0), T = PyArray_DIM(inp, 1), C = PyArray_DIM(inp, 2);
    if (NH < 1 || C % NH || H < 1) {
        PyErr_Format(PyExc_ValueError, "num_heads (%zd) must divide C (%zd) and hidden (%zd) be positive", NH,
                     (Py_ssize_t)C, H);
        return NULL;
    }
    size_t np;
    int st = pivot_block_num_params(&np, (size_t)C, (size_t)H);
    if (st) return pivot_py_raise_status(st, "block_forward");
    if (pivot_py_dim(blk, "block", 0, (npy_intp)np)) return NULL;
    PyArrayObject *out = pivot_py_new_f32(3, PyArray_DIMS(inp));
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_block_forward(F32(out), F32(inp), F32(blk), (size_t)B, (size_t)T, (size_t)C, (size_t)NH, (size_t)H,
                             eps, active, threads);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "block_forward"); }
    return (PyObject *)out;
}

/* conv2d_forward(inp (B, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout), stride, pad, relu, threads) */
static PyObject *py_conv2d_forward(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_w, *o_b;
    Py_ssize_t stride, pad;
    int relu, threads;
    if (!PyArg_ParseTuple(args, "OOOnnpi", &o_inp, &o_w, &o_b, &stride, &pad, &relu, &threads)) return NULL;
    PyArrayObject *inp = pivot_py_array(o_inp, "inp", NPY_FLOAT32, 4);
    PyArrayObject *w = inp ? pivot_py_array(o_w, "weight", NPY_FLOAT32, 4) : NULL;
    PyArrayObject *b = w ? pivot_py_array(o_b, "bias", NPY_FLOAT32, 1) : NULL;
    if (!b || pivot_py_threads(threads)) return NULL;
    npy_intp B = PyArray_DIM(inp, 0), Cin = PyArray_DIM(inp, 1), H = PyArray_DIM(inp, 2), W = PyArray_DIM(inp, 3);
    npy_intp Cout = PyArray_DIM(w, 0), k = PyArray_DIM(w, 2);
    if (pivot_py_dim(w, "weight", 1, Cin) || pivot_py_dim(w, "weight", 3, k) || pivot_py_dim(b, "bias", 0, Cout)) return NULL;
    if (stride < 1 || pad < 0 || k < 1 || Cout < 1 || Cin < 1 || H + 2 * pad < k || W + 2 * pad < k) {
        PyErr_Format(PyExc_ValueError, "conv2d: need stride >= 1, pad >= 0 and a kernel (%zd) that fits the padded "
                     "input (%zd x %zd, pad %zd)", (Py_ssize_t)k, (Py_ssize_t)H, (Py_ssize_t)W, pad);
        return NULL;
    }
    npy_intp dims[4] = {B, Cout, (H + 2 * pad - k) / stride + 1, (W + 2 * pad - k) / stride + 1};
    PyArrayObject *out = pivot_py_new_f32(4, dims);
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_conv2d_forward(F32(out), F32(inp), F32(w), F32(b), (size_t)B, (size_t)Cin, (size_t)H, (size_t)W,
                              (size_t)Cout, (size_t)k, (size_t)stride, (size_t)pad, relu, threads);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "conv2d_forward"); }
    return (PyObject *)out;
}

/* Shared checks of the single-branch kernels: inp (B, T, C), qkv_w (3C, C), qkv_b (3C), proj_w (C, C), proj_b (C). */
static int modes_branch_args(PyObject *const *objs, PyArrayObject **arrs, Py_ssize_t NH) {
    static const char *names[] = {"inp", "qkv_w", "qkv_b", "proj_w", "proj_b"};
    static const int ranks[] = {3, 2, 1, 2, 1};
    for (int i = 0; i < 5; i++)
        if (!(arrs[i] = pivot_py_array(objs[i], names[i], NPY_FLOAT32, ranks[i]))) return -1;
    npy_intp C = PyArray_DIM(arrs[0], 2);
    if (NH < 1 || C % NH) {
        PyErr_Format(PyExc_ValueError, "num_heads (%zd) must divide C (%zd)", NH, (Py_ssize_t)C);
        return -1;
    }
    if (pivot_py_dim(arrs[1], "qkv_w", 0, 3 * C) || pivot_py_dim(arrs[1], "qkv_w", 1, C) ||
        pivot_py_dim(arrs[2], "qkv_b", 0, 3 * C) || pivot_py_dim(arrs[3], "proj_w", 0, C) ||
        pivot_py_dim(arrs[3], "proj_w", 1, C) || pivot_py_dim(arrs[4], "proj_b", 0, C))
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
    PyArrayObject *probs = pivot_py_array(o_probs, "probs", NPY_FLOAT32, 4);
    npy_intp B = PyArray_DIM(a[0], 0), T = PyArray_DIM(a[0], 1), C = PyArray_DIM(a[0], 2);
    if (!probs || pivot_py_dim(probs, "probs", 0, B) || pivot_py_dim(probs, "probs", 1, NH) ||
        pivot_py_dim(probs, "probs", 2, T) || pivot_py_dim(probs, "probs", 3, T))
        return NULL;
    PyArrayObject *out = pivot_py_new_f32(3, PyArray_DIMS(a[0]));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_reuse_attention_forward(F32(out), F32(a[0]), F32(probs), F32(a[1]), F32(a[2]), F32(a[3]), F32(a[4]),
                                       (size_t)B, (size_t)T, (size_t)C, (size_t)NH);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "reuse_attention_forward"); }
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
    PyArrayObject *out = pivot_py_new_f32(3, PyArray_DIMS(a[0]));
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_linear_attention_forward(F32(out), F32(a[0]), F32(a[1]), F32(a[2]), F32(a[3]), F32(a[4]), (size_t)B,
                                        (size_t)T, (size_t)C, (size_t)NH, eps);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "linear_attention_forward"); }
    return (PyObject *)out;
}

static PyObject *py_gemm_pack(PyObject *self, PyObject *arg) {
    PyArrayObject *w = pivot_py_array(arg, "weight", NPY_FLOAT32, 2);
    if (!w) return NULL;
    size_t OC = (size_t)PyArray_DIM(w, 0), IC = (size_t)PyArray_DIM(w, 1), n;
    int st = pivot_gemm_packed_size(&n, OC, IC);
    if (st) return pivot_py_raise_status(st, "gemm_pack");
    npy_intp dims[1] = {(npy_intp)n};
    PyArrayObject *out = pivot_py_new_f32(1, dims);
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_gemm_pack(F32(out), F32(w), OC, IC);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "gemm_pack"); }
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
    PyArrayObject *inp = pivot_py_array(o_inp, "inp", NPY_FLOAT32, 2);
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
        if (!(w = pivot_py_array(o_w, "weight", NPY_FLOAT32, 2))) return NULL;
        if (pivot_py_dim(w, "weight", 0, OC) || pivot_py_dim(w, "weight", 1, IC)) return NULL;
    }
    if (o_packed != Py_None) {
        if (!(packed = pivot_py_array(o_packed, "packed", NPY_FLOAT32, 1))) return NULL;
        size_t n;
        int st = pivot_gemm_packed_size(&n, (size_t)OC, (size_t)IC);
        if (st) return pivot_py_raise_status(st, "linear_forward");
        if (pivot_py_dim(packed, "packed", 0, (npy_intp)n)) return NULL;
    }
    if (!w && !packed) {
        PyErr_SetString(PyExc_ValueError, "give weight or packed");
        return NULL;
    }
    if (o_b != Py_None) {
        if (!(b = pivot_py_array(o_b, "bias", NPY_FLOAT32, 1)) || pivot_py_dim(b, "bias", 0, OC)) return NULL;
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
        if (!(res = pivot_py_array(o_res, "residual", NPY_FLOAT32, 2)) || pivot_py_dim(res, "residual", 0, N) ||
            pivot_py_dim(res, "residual", 1, OC))
            return NULL;
    }
    npy_intp dims[2] = {N, OC};
    PyArrayObject *out = res ? (PyArrayObject *)PyArray_NewCopy(res, NPY_CORDER) : pivot_py_new_f32(2, dims);
    PyArrayObject *cap = out && capture ? pivot_py_new_f32(2, dims) : NULL;
    if (!out || (capture && !cap)) { Py_XDECREF(out); return NULL; }
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_linear_forward(F32(out), cap ? F32(cap) : NULL, F32(inp), w ? F32(w) : NULL,
                              packed ? F32(packed) : NULL, b ? F32(b) : NULL, (size_t)N, (size_t)IC, (size_t)OC,
                              (size_t)IC, (size_t)OC, epilogue, scale);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); Py_XDECREF(cap); return pivot_py_raise_status(st, "linear_forward"); }
    if (!capture) return (PyObject *)out;
    return Py_BuildValue("(NN)", out, cap);
}

static PyObject *py_sgemm_nt(PyObject *self, PyObject *args) {
    PyObject *o_a, *o_b;
    if (!PyArg_ParseTuple(args, "OO", &o_a, &o_b)) return NULL;
    PyArrayObject *a = pivot_py_array(o_a, "a", NPY_FLOAT32, 2);
    PyArrayObject *b = a ? pivot_py_array(o_b, "b", NPY_FLOAT32, 2) : NULL;
    if (!b || pivot_py_dim(b, "b", 1, PyArray_DIM(a, 1))) return NULL;
    npy_intp dims[2] = {PyArray_DIM(a, 0), PyArray_DIM(b, 0)};
    PyArrayObject *out = pivot_py_new_f32(2, dims);
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_sgemm_nt(F32(out), F32(a), F32(b), (size_t)dims[0], (size_t)dims[1], (size_t)PyArray_DIM(a, 1));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "sgemm_nt"); }
    return (PyObject *)out;
}

/* layernorm_fast(inp (N, C), weight (C), bias (C), eps) -> LayerNorm by the fast-path kernel (tests). */
static PyObject *py_layernorm_fast(PyObject *self, PyObject *args) {
    PyObject *o_inp, *o_w, *o_b;
    float eps;
    if (!PyArg_ParseTuple(args, "OOOf", &o_inp, &o_w, &o_b, &eps)) return NULL;
    PyArrayObject *inp = pivot_py_array(o_inp, "inp", NPY_FLOAT32, 2);
    PyArrayObject *w = inp ? pivot_py_array(o_w, "weight", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *b = w ? pivot_py_array(o_b, "bias", NPY_FLOAT32, 1) : NULL;
    if (!b) return NULL;
    npy_intp C = PyArray_DIM(inp, 1);
    if (pivot_py_dim(w, "weight", 0, C) || pivot_py_dim(b, "bias", 0, C)) return NULL;
    if (C < 1 || !(eps >= 0.0f)) {
        PyErr_SetString(PyExc_ValueError, "need C >= 1 and eps >= 0");
        return NULL;
    }
    PyArrayObject *out = pivot_py_new_f32(2, PyArray_DIMS(inp));
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    pivot_layernorm_rows(F32(out), F32(inp), F32(w), F32(b), (size_t)PyArray_DIM(inp, 0), (size_t)C, eps);
    Py_END_ALLOW_THREADS
    return (PyObject *)out;
}

/* Copy of a float32 (N, C) array with fn applied to its rows in place (the row kernels of the
 * level in effect, for tests and the int8 reference). */
static PyObject *rows_level(PyObject *arg, void (*fn)(float *, size_t, size_t)) {
    PyArrayObject *inp = pivot_py_array(arg, "inp", NPY_FLOAT32, 2);
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

static void gelu_rows(float *x, size_t N, size_t C) { pivot_gelu_rows(x, NULL, N, C); }
static void softmax_rows(float *x, size_t N, size_t C) { pivot_softmax_rows(x, N, C, C); }

/* gelu_fast(inp (N, C)): GELU by the row kernel of the level in effect. */
static PyObject *py_gelu_fast(PyObject *self, PyObject *arg) { return rows_level(arg, gelu_rows); }

/* softmax_fast(inp (N, C)): row softmax by the row kernel of the level in effect. */
static PyObject *py_softmax_fast(PyObject *self, PyObject *arg) { return rows_level(arg, softmax_rows); }

static PyObject *py_simd_level(PyObject *self, PyObject *noargs) { return PyLong_FromLong(pivot_simd_level()); }

static PyObject *py_set_simd_level(PyObject *self, PyObject *arg) {
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred()) return NULL;
    if (level < 0 || level > 3) {
        PyErr_Format(PyExc_ValueError, "simd level must be in [0, 3], got %ld", level);
        return NULL;
    }
    return PyLong_FromLong(pivot_set_simd_level((int)level));
}

static PyObject *py_blas_user_threads(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(pivot_blas_user_threads());
}

static PyObject *py_blas_guard_enter(PyObject *self, PyObject *arg) {
    int n;
    if (pivot_py_threads_arg(arg, &n)) return NULL;
    pivot_blas_guard_enter(n);
    Py_RETURN_NONE;
}

static PyObject *py_blas_guard_leave(PyObject *self, PyObject *noargs) {
    pivot_blas_guard_leave();
    Py_RETURN_NONE;
}

/* model_num_params(config) -> (params floats, stem floats) of the flat arrays vit_forward takes. */
static PyObject *py_model_num_params(PyObject *self, PyObject *config) {
    pivot_model_config cfg;
    if (pivot_py_model_config(config, &cfg)) return NULL;
    size_t np, ns;
    int st = pivot_model_num_params(&np, &ns, &cfg);
    if (st) return pivot_py_raise_status(st, "model_num_params");
    return Py_BuildValue("(nn)", (Py_ssize_t)np, (Py_ssize_t)ns);
}

/* vit_pack(params, config) -> the Linear weights packed for the SIMD level in effect;
 * vit_pack_stem(params, config) -> the patch embedding's alone, params without the blocks (an
 * int8 model's fp32 rest, Int8Weights.stem_head). */
static PyObject *vit_pack_run(PyObject *args, int with_blocks) {
    const char *name = with_blocks ? "vit_pack" : "vit_pack_stem";
    PyObject *o_params, *o_cfg;
    if (!PyArg_ParseTuple(args, "OO", &o_params, &o_cfg)) return NULL;
    pivot_model_config model;
    pivot_vit_config cfg;
    if (pivot_py_model_config(o_cfg, &model)) return NULL;
    int st = pivot_model_engine_config(&cfg, &model);
    if (st) return pivot_py_raise_status(st, name);
    PyArrayObject *params = pivot_py_array(o_params, "params", NPY_FLOAT32, 1);
    if (!params) return NULL;
    size_t np, n, block;
    if (!(st = pivot_vit_num_params(&np, &cfg)))
        st = with_blocks ? pivot_vit_packed_size(&n, &cfg) : pivot_vit_stem_packed_size(&n, &cfg);
    if (!st && !with_blocks && !(st = pivot_block_num_params(&block, cfg.embed_dim, cfg.mlp_hidden)))
        np -= block * cfg.depth; /* the int8 engine's params: plain timm blocks only (checked by the forward) */
    if (st) return pivot_py_raise_status(st, name);
    if (PyArray_DIM(params, 0) < (npy_intp)np) { /* LV-ViT's aux head follows the engine's part */
        PyErr_Format(PyExc_ValueError, "params has %zd floats, the engine needs %zu", (Py_ssize_t)PyArray_DIM(params, 0), np);
        return NULL;
    }
    npy_intp dims[1] = {(npy_intp)n};
    PyArrayObject *out = pivot_py_new_f32(1, dims);
    if (!out) return NULL;
    PIVOT_PY_CALL(st, with_blocks ? pivot_vit_pack(F32(out), F32(params), &cfg)
                                  : pivot_vit_pack_stem(F32(out), F32(params), &cfg));
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, name); }
    return (PyObject *)out;
}

static PyObject *py_vit_pack(PyObject *self, PyObject *args) { return vit_pack_run(args, 1); }
static PyObject *py_vit_pack_stem(PyObject *self, PyObject *args) { return vit_pack_run(args, 0); }

/* Images (B, in_chans, img, img) against a config; returns B or -1. */
static npy_intp check_images(PyArrayObject *img, const pivot_model_config *cfg) {
    if (pivot_py_dim(img, "images", 1, (npy_intp)cfg->vit.in_chans) ||
        pivot_py_dim(img, "images", 2, (npy_intp)cfg->vit.img_size) ||
        pivot_py_dim(img, "images", 3, (npy_intp)cfg->vit.img_size))
        return -1;
    return PyArray_DIM(img, 0);
}

/* stem_forward(images, stem, config, threads) -> (B, stem_channels, img/2, img/2): LV-ViT's conv stem alone. */
static PyObject *py_stem_forward(PyObject *self, PyObject *args) {
    PyObject *o_img, *o_stem, *o_cfg;
    int threads;
    if (!PyArg_ParseTuple(args, "OOOi", &o_img, &o_stem, &o_cfg, &threads)) return NULL;
    pivot_model_config cfg;
    if (pivot_py_model_config(o_cfg, &cfg) || pivot_py_threads(threads)) return NULL;
    if (!cfg.stem_channels) {
        PyErr_SetString(PyExc_ValueError, "stem_forward: the config has no conv stem");
        return NULL;
    }
    PyArrayObject *img = pivot_py_array(o_img, "images", NPY_FLOAT32, 4);
    PyArrayObject *stem = img ? pivot_py_array(o_stem, "stem", NPY_FLOAT32, 1) : NULL;
    if (!stem) return NULL;
    size_t np, ns;
    int st = pivot_model_num_params(&np, &ns, &cfg);
    if (st) return pivot_py_raise_status(st, "stem_forward");
    npy_intp B = check_images(img, &cfg);
    if (B < 0 || pivot_py_dim(stem, "stem", 0, (npy_intp)ns)) return NULL;
    npy_intp dims[4] = {B, (npy_intp)cfg.stem_channels, (npy_intp)cfg.vit.img_size / 2, (npy_intp)cfg.vit.img_size / 2};
    PyArrayObject *out = pivot_py_new_f32(4, dims);
    if (!out) return NULL;
    PIVOT_PY_CALL(st, pivot_model_stem_forward(F32(out), F32(img), F32(stem), &cfg, (size_t)B, threads));
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "stem_forward"); }
    return (PyObject *)out;
}

/* The int8 encoders, read by attribute name from obj (a pivot.quant.Int8Weights): weights (int8,
 * pivot_qblock_* layout, csrc/quant.h), floats (float32), per_token (bool) and kernel_code (int,
 * PIVOT_INT8_KERNEL_*). refs receive new references to the two arrays, held until the call ends
 * (the attributes could be rebound meanwhile); 0, or -1 with an exception. */
static int bind_int8_blocks(PyObject *obj, const pivot_model_config *cfg, pivot_int8_blocks *out, PyObject *refs[2]) {
    static const char *const names[] = {"weights", "floats", "per_token", "kernel_code"};
    PyObject *v[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        if ((v[i] = PyObject_GetAttrString(obj, names[i]))) continue;
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "int8 must be a pivot.quant.Int8Weights (weights, floats, per_token, "
                         "kernel_code), got %s (no attribute %s)", Py_TYPE(obj)->tp_name, names[i]);
        }
        goto fail;
    }
    int per_token = PyObject_IsTrue(v[2]);
    long kernel = PyLong_Check(v[3]) ? PyLong_AsLong(v[3]) : -1;
    if (per_token < 0 || PyErr_Occurred()) goto fail;
    if (!PyLong_Check(v[3]) || kernel < 0 || kernel > PIVOT_INT8_KERNEL_MAX) {
        PyErr_Format(PyExc_ValueError, "int8.kernel_code must be an int in 0..%d, got %R", PIVOT_INT8_KERNEL_MAX, v[3]);
        goto fail;
    }
    PyArrayObject *w = pivot_py_array(v[0], "int8.weights", NPY_INT8, 1);
    PyArrayObject *f = w ? pivot_py_array(v[1], "int8.floats", NPY_FLOAT32, 1) : NULL;
    if (!f) goto fail;
    size_t nf, nb, D = cfg->vit.depth;
    int st = pivot_qblock_num_floats(&nf, cfg->vit.embed_dim, cfg->vit.mlp_hidden);
    if (!st) st = pivot_qblock_num_bytes(&nb, cfg->vit.embed_dim, cfg->vit.mlp_hidden);
    if (!st && (pivot_mul_size(&nf, nf, D) || pivot_mul_size(&nb, nb, D))) st = PIVOT_ERR_OVERFLOW;
    if (st) {
        pivot_py_raise_status(st, "vit_forward int8");
        goto fail;
    }
    if (pivot_py_dim(w, "int8.weights", 0, (npy_intp)nb) || pivot_py_dim(f, "int8.floats", 0, (npy_intp)nf) ||
        pivot_py_int8_kernel((int)kernel))
        goto fail;
    *out = (pivot_int8_blocks){(const int8_t *)PyArray_DATA(w), F32(f), per_token, (int)kernel};
    refs[0] = v[0];
    refs[1] = v[1];
    Py_DECREF(v[2]);
    Py_DECREF(v[3]);
    return 0;
fail:
    for (int i = 0; i < 4; i++) Py_XDECREF(v[i]);
    return -1;
}

/* capture_inputs: {"logits", "qkv_in", "qkv", "proj_in", "fc1_in", "fc2_in"}, the Linear inputs of
 * every encoder (pivot_linear_inputs, engine.h) as (D, B, T, width) arrays, from the fp32 engine of
 * a timm ViT with softmax attention (int8 calibration). */
static PyObject *forward_inputs(PyArrayObject *img, PyArrayObject *params, PyArrayObject *packed,
                                const pivot_model_config *cfg, const pivot_vit_config *t, const uint8_t *path,
                                npy_intp B, npy_intp T, int threads) {
    if (cfg->stem_channels || cfg->aux_head || cfg->attention_kind != PIVOT_ATTENTION_SOFTMAX) {
        PyErr_SetString(PyExc_ValueError, "capture_inputs: a timm ViT with softmax attention only (int8 calibration)");
        return NULL;
    }
    static const char *const names[] = {"qkv_in", "qkv", "proj_in", "fc1_in", "fc2_in"};
    npy_intp C = (npy_intp)cfg->vit.embed_dim, widths[5] = {C, 3 * C, C, C, (npy_intp)cfg->vit.mlp_hidden};
    npy_intp dl[2] = {B, cfg->vit.num_classes ? (npy_intp)cfg->vit.num_classes : C}; /* headless: pooled features */
    PyArrayObject *out[6] = {pivot_py_new_f32(2, dl), NULL, NULL, NULL, NULL, NULL};
    for (int i = 0; i < 5 && out[i]; i++) {
        npy_intp d[4] = {(npy_intp)cfg->vit.depth, B, T, widths[i]};
        out[i + 1] = pivot_py_new_f32(4, d);
    }
    PyObject *dict = out[5] ? PyDict_New() : NULL;
    if (!dict) {
        for (int i = 0; i < 6; i++) Py_XDECREF(out[i]);
        return NULL;
    }
    pivot_linear_inputs lin = {F32(out[1]), F32(out[2]), F32(out[3]), F32(out[4]), F32(out[5])};
    pivot_vit_extras extras;
    memset(&extras, 0, sizeof extras);
    extras.skip_lam = cfg->skip_lam;
    extras.attention_kind = cfg->attention_kind;
    extras.linear_eps = cfg->linear_eps;
    extras.packed = packed ? F32(packed) : NULL;
    extras.linear_inputs = &lin;
    int st;
    PIVOT_PY_CALL(st, pivot_vit_forward_ex(F32(out[0]), NULL, NULL, F32(img), F32(params), t, &extras, path,
                                           (size_t)B, threads));
    int bad = st != PIVOT_OK || PyDict_SetItemString(dict, "logits", (PyObject *)out[0]);
    for (int i = 0; i < 5 && !bad; i++) bad = PyDict_SetItemString(dict, names[i], (PyObject *)out[i + 1]);
    for (int i = 0; i < 6; i++) Py_DECREF(out[i]);
    if (bad) {
        Py_DECREF(dict);
        return st ? pivot_py_raise_status(st, "vit_forward") : NULL;
    }
    return dict;
}

/* vit_forward(images, params, config, path, threads, capture=False, capture_probs=False,
 *             capture_inputs=False, packed=None, stem=None, int8=None)
 * -> logits (B, K); with capture or capture_probs (logits, attn (n_attention, B, T, C), mlp
 * (D, B, T, C), probs (n_active, B, NH, T, T) or None); with capture_inputs a dict
 * (forward_inputs). The one forward of every model, path, precision and attention kind: config is
 * a pivot.ViTConfig; params the flat engine array (LV-ViT: then its aux head); stem LV-ViT's
 * folded stem; packed vit_pack(params, config) (with int8: vit_pack_stem) or None; int8 the quantized encoders
 * (bind_int8_blocks; params then hold no block parameters); path uint8 of 0 skip, 1 active,
 * 2 reuse. Called through the private-path wrapper below. */
static PyObject *vit_forward_run(PyObject *o_img, PyObject *o_params, PyObject *o_cfg, PyObject *o_path, int threads,
                                 int capture, int capture_probs, int capture_inputs, PyObject *o_packed,
                                 PyObject *o_stem, PyObject *o_int8, PyObject *refs[2]) {
    pivot_model_config cfg;
    if (pivot_py_model_config(o_cfg, &cfg) || pivot_py_threads(threads)) return NULL;
    PyArrayObject *img = pivot_py_array(o_img, "images", NPY_FLOAT32, 4);
    PyArrayObject *params = img ? pivot_py_array(o_params, "params", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *path = params ? pivot_py_array(o_path, "path", NPY_UINT8, 1) : NULL;
    if (!path) return NULL;
    size_t np, ns, n_packed = 0;
    pivot_vit_config t;
    int st = pivot_model_num_params(&np, &ns, &cfg);
    if (!st) st = pivot_model_engine_config(&t, &cfg);
    if (!st && o_packed != Py_None) /* int8: the stem alone (vit_pack_stem), its encoders carry their packing */
        st = o_int8 != Py_None ? pivot_vit_stem_packed_size(&n_packed, &t) : pivot_vit_packed_size(&n_packed, &t);
    if (st) return pivot_py_raise_status(st, "vit_forward");
    pivot_int8_blocks int8;
    if (o_int8 != Py_None) {
        if (cfg.skip_lam != 1.0f) {
            PyErr_Format(PyExc_ValueError, "vit_forward: the int8 encoders add their branches unscaled: "
                         "config.skip_lam must be 1, got %g", (double)cfg.skip_lam);
            return NULL;
        }
        if (capture_inputs) {
            PyErr_SetString(PyExc_ValueError, "vit_forward: capture_inputs is for the fp32 engine (int8 calibration)");
            return NULL;
        }
        if (bind_int8_blocks(o_int8, &cfg, &int8, refs)) return NULL;
        size_t block;
        if ((st = pivot_block_num_params(&block, cfg.vit.embed_dim, cfg.vit.mlp_hidden)))
            return pivot_py_raise_status(st, "vit_forward");
        np -= block * cfg.vit.depth; /* the stem, tokens and heads only */
    }
    npy_intp B = check_images(img, &cfg);
    if (B < 0 || pivot_py_dim(params, "params", 0, (npy_intp)np) ||
        pivot_py_dim(path, "path", 0, (npy_intp)cfg.vit.depth))
        return NULL;
    if ((o_stem == Py_None) != (cfg.stem_channels == 0)) {
        PyErr_SetString(PyExc_ValueError, "vit_forward: pass the stem array exactly when the config has a conv stem");
        return NULL;
    }
    PyArrayObject *stem = NULL, *packed = NULL;
    if (o_stem != Py_None &&
        (!(stem = pivot_py_array(o_stem, "stem", NPY_FLOAT32, 1)) || pivot_py_dim(stem, "stem", 0, (npy_intp)ns)))
        return NULL;
    if (o_packed != Py_None && (!(packed = pivot_py_array(o_packed, "packed", NPY_FLOAT32, 1)) ||
                                pivot_py_dim(packed, "packed", 0, (npy_intp)n_packed)))
        return NULL;
    const uint8_t *pp = (const uint8_t *)PyArray_DATA(path);
    if (pivot_modes_check_path(pp, cfg.vit.depth, cfg.attention_kind) != PIVOT_OK) {
        PyErr_SetString(PyExc_ValueError, "path values must be 0, 1 or 2, every 2 after a 1, and no 2 with linear attention");
        return NULL;
    }
    if (capture_probs && cfg.attention_kind != PIVOT_ATTENTION_SOFTMAX) {
        PyErr_SetString(PyExc_ValueError, "attention probabilities exist only for softmax attention");
        return NULL;
    }
    npy_intp n_attn = 0, n_active = 0;
    for (size_t i = 0; i < cfg.vit.depth; i++) {
        n_attn += pp[i] != 0;
        n_active += pp[i] == 1;
    }
    npy_intp T = (npy_intp)((t.img_size / t.patch_size) * (t.img_size / t.patch_size) + pivot_vit_num_prefix(&t));
    if (capture_inputs) {
        if (capture || capture_probs) {
            PyErr_SetString(PyExc_ValueError, "vit_forward: capture_inputs goes alone (no capture or capture_probs)");
            return NULL;
        }
        return forward_inputs(img, params, packed, &cfg, &t, pp, B, T, threads);
    }
    npy_intp C = (npy_intp)cfg.vit.embed_dim, NH = (npy_intp)cfg.vit.num_heads;
    npy_intp dl[2] = {B, cfg.vit.num_classes ? (npy_intp)cfg.vit.num_classes : C}, da[4] = {n_attn, B, T, C},
             dm[4] = {(npy_intp)cfg.vit.depth, B, T, C}, dp[5] = {n_active, B, NH, T, T};
    PyArrayObject *logits = pivot_py_new_f32(2, dl), *attn = NULL, *mlp = NULL, *probs = NULL;
    if (!logits) return NULL;
    if (capture || capture_probs) {
        attn = pivot_py_new_f32(4, da);
        mlp = attn ? pivot_py_new_f32(4, dm) : NULL;
        probs = mlp && capture_probs ? pivot_py_new_f32(5, dp) : NULL;
        if (!mlp || (capture_probs && !probs)) {
            Py_DECREF(logits); Py_XDECREF(attn); Py_XDECREF(mlp);
            return NULL;
        }
    }
    PIVOT_PY_CALL(st, pivot_model_forward(F32(logits), attn ? F32(attn) : NULL, mlp ? F32(mlp) : NULL,
                                          probs ? F32(probs) : NULL, F32(img), stem ? F32(stem) : NULL, F32(params),
                                          packed ? F32(packed) : NULL, o_int8 != Py_None ? &int8 : NULL, &cfg, pp,
                                          (size_t)B, threads));
    if (st) {
        Py_DECREF(logits); Py_XDECREF(attn); Py_XDECREF(mlp); Py_XDECREF(probs);
        return pivot_py_raise_status(st, "vit_forward");
    }
    if (!attn) return (PyObject *)logits;
    if (!probs) probs = (PyArrayObject *)Py_NewRef(Py_None);
    return Py_BuildValue("(NNNN)", logits, attn, mlp, probs);
}

static PyObject *vit_forward_impl(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"images", "params", "config", "path", "threads", "capture", "capture_probs",
                             "capture_inputs", "packed", "stem", "int8", NULL};
    PyObject *o_img, *o_params, *o_cfg, *o_path, *o_packed = Py_None, *o_stem = Py_None, *o_int8 = Py_None;
    int threads, capture = 0, capture_probs = 0, capture_inputs = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOi|pppOOO", kwlist, &o_img, &o_params, &o_cfg, &o_path,
                                     &threads, &capture, &capture_probs, &capture_inputs, &o_packed, &o_stem, &o_int8))
        return NULL;
    PyObject *refs[2] = {NULL, NULL};
    PyObject *out = vit_forward_run(o_img, o_params, o_cfg, o_path, threads, capture, capture_probs, capture_inputs,
                                    o_packed, o_stem, o_int8, refs);
    Py_XDECREF(refs[0]);
    Py_XDECREF(refs[1]);
    return out;
}

static PyObject *vit_forward_noargs(PyObject *self, PyObject *args) { return vit_forward_impl(self, args, NULL); }

/* The path (argument 3) is read again without the GIL after it sized the outputs: a private copy. */
static PyObject *py_vit_forward(PyObject *self, PyObject *args, PyObject *kwargs) {
    if (!kwargs || PyDict_GET_SIZE(kwargs) == 0) return pivot_py_private_arg(self, args, 3, vit_forward_noargs);
    PyObject *path = PyDict_GetItemString(kwargs, "path"); /* borrowed */
    if (path || PyTuple_GET_SIZE(args) < 4 || !PyArray_Check(PyTuple_GET_ITEM(args, 3)))
        return vit_forward_impl(self, args, kwargs); /* it reports the bad arguments */
    PyObject *copy = PyArray_NewCopy((PyArrayObject *)PyTuple_GET_ITEM(args, 3), NPY_CORDER);
    if (!copy) return NULL;
    PyObject *private_args = PyTuple_New(PyTuple_GET_SIZE(args));
    if (!private_args) { Py_DECREF(copy); return NULL; }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++)
        PyTuple_SET_ITEM(private_args, i, i == 3 ? copy : Py_NewRef(PyTuple_GET_ITEM(args, i)));
    PyObject *result = vit_forward_impl(self, private_args, kwargs);
    Py_DECREF(private_args);
    return result;
}

PyMethodDef pivot_engine_methods[] = {
    {"vit_forward", (PyCFunction)(void (*)(void))py_vit_forward, METH_VARARGS | METH_KEYWORDS,
     "vit_forward(images, params, config, path uint8, threads, capture=False, capture_probs=False, "
     "capture_inputs=False, packed=None, stem=None, int8=None) -> logits, or (logits, attn, mlp, probs or None) when "
     "capturing, or a dict of the Linear inputs with capture_inputs"},
    {"model_num_params", py_model_num_params, METH_O, "model_num_params(config) -> (params floats, stem floats)"},
    {"vit_pack", py_vit_pack, METH_VARARGS, "vit_pack(params, config) -> packed Linear weights for vit_forward(..., packed=)"},
    {"vit_pack_stem", py_vit_pack_stem, METH_VARARGS, "vit_pack_stem(params without the blocks, config) -> the packed "
     "patch embedding for vit_forward(..., packed=, int8=)"},
    {"stem_forward", py_stem_forward, METH_VARARGS, "stem_forward(images, stem, config, threads) -> (B, stem_channels, img/2, img/2)"},
    {"blas_set_num_threads", py_blas_set_num_threads, METH_O, "Set the OpenBLAS thread count used by pivot."},
    {"blas_get_num_threads", py_blas_get_num_threads, METH_NOARGS, "OpenBLAS thread count used by pivot."},
    {"blas_user_threads", py_blas_user_threads, METH_NOARGS, "OpenBLAS thread count as the user set it (guarded calls hold their own)."},
    {"blas_guard_enter", py_blas_guard_enter, METH_O, "blas_guard_enter(threads): hold OpenBLAS at threads (reference-counted; pair with blas_guard_leave)."},
    {"blas_guard_leave", py_blas_guard_leave, METH_NOARGS, "blas_guard_leave(): the last leaver restores the user's OpenBLAS thread count."},
    {"layernorm_forward", py_layernorm_forward, METH_VARARGS, "layernorm_forward(inp (N, C), weight (C), bias (C), eps) -> (N, C), the reference kernel"},
    {"gelu_forward", py_gelu_forward, METH_O, "gelu_forward(inp) -> exact-erf GELU of inp, the reference kernel"},
    {"softmax_forward", py_softmax_forward, METH_O, "softmax_forward(inp (N, C)) -> row-wise softmax, the reference kernel"},
    {"gelu_fast", py_gelu_fast, METH_O, "gelu_fast(inp (N, C)) -> GELU by the row kernel of the SIMD level in effect"},
    {"softmax_fast", py_softmax_fast, METH_O, "softmax_fast(inp (N, C)) -> row softmax by the row kernel of the SIMD level in effect"},
    {"layernorm_fast", py_layernorm_fast, METH_VARARGS, "layernorm_fast(inp (N, C), weight, bias, eps) -> LayerNorm by the row kernel of the SIMD level in effect"},
    {"attention_forward", py_attention_forward, METH_VARARGS, "attention_forward(inp (B, T, C), qkv_w, qkv_b, proj_w, proj_b, num_heads) -> (B, T, C)"},
    {"mlp_forward", py_mlp_forward, METH_VARARGS, "mlp_forward(inp (N, C), fc1_w, fc1_b, fc2_w, fc2_b) -> (N, C)"},
    {"block_forward", py_block_forward, METH_VARARGS, "block_forward(inp (B, T, C), block params (flat), num_heads, hidden, eps, attn_active, threads) -> (B, T, C)"},
    {"conv2d_forward", py_conv2d_forward, METH_VARARGS, "conv2d_forward(inp (B, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout), stride, pad, relu, threads) -> (B, Cout, Ho, Wo)"},
    {"reuse_attention_forward", py_reuse_attention_forward, METH_VARARGS, "reuse_attention_forward(inp (B, T, C), probs (B, NH, T, T), qkv_w, qkv_b, proj_w, proj_b, num_heads) -> (B, T, C)"},
    {"linear_attention_forward", py_linear_attention_forward, METH_VARARGS, "linear_attention_forward(inp (B, T, C), qkv_w, qkv_b, proj_w, proj_b, num_heads, eps) -> (B, T, C)"},
    {"simd_level", py_simd_level, METH_NOARGS, "The SIMD level in effect: 3 AMX, 2 AVX-512, 1 AVX2, 0 portable (csrc/cpu.h)."},
    {"set_simd_level", py_set_simd_level, METH_O, "set_simd_level(level) -> level in effect (capped by the CPU); for tests."},
    {"gemm_pack", py_gemm_pack, METH_O, "gemm_pack(weight (OC, IC)) -> packed panels (see csrc/gemm.h)"},
    {"linear_forward", py_linear_forward, METH_VARARGS, "linear_forward(inp, weight|None, bias|None, epilogue, residual|None, capture, scale, packed|None, out_features) -> out or (out, capture)"},
    {"sgemm_nt", py_sgemm_nt, METH_VARARGS, "sgemm_nt(a (M, K), b (N, K)) -> a @ b^T by OpenBLAS on the calling thread"},
    {NULL, NULL, 0, NULL},
};
