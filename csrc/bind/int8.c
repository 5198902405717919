/* Bindings of the int8 path (csrc/quant.h). */
#include "bind.h"

#include "quant.h"

static PyObject *py_int8_kernel_supported(PyObject *self, PyObject *arg) {
    long k = PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred()) return NULL;
    return PyBool_FromLong(k >= 1 && k <= PIVOT_INT8_KERNEL_MAX ? pivot_int8_kernel_supported((int)k) : 0);
}

static PyObject *py_int8_kernel_resolve(PyObject *self, PyObject *arg) {
    long k = PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (k < 0 || k > PIVOT_INT8_KERNEL_MAX)
        return PyErr_Format(PyExc_ValueError, "int8 kernel must be in 0..%d, got %ld", PIVOT_INT8_KERNEL_MAX, k);
    if (pivot_py_int8_kernel((int)k)) return NULL;
    int resolved;
    pivot_int8_kernel_resolve(&resolved, (int)k);
    return PyLong_FromLong(resolved);
}

/* int8_pack(w int8 (N, K), transposed=False) -> packed int8 (pivot_int8_packed_bytes); transposed:
 * w is W^T (K, N), read in place (attention's V, columns contiguous) */
static PyObject *py_int8_pack(PyObject *self, PyObject *args) {
    PyObject *o_w;
    int transposed = 0;
    if (!PyArg_ParseTuple(args, "O|p", &o_w, &transposed)) return NULL;
    PyArrayObject *w = pivot_py_array(o_w, "w", NPY_INT8, 2);
    if (!w) return NULL;
    size_t rows = (size_t)PyArray_DIM(w, 0), cols = (size_t)PyArray_DIM(w, 1), bytes;
    size_t N = transposed ? cols : rows, K = transposed ? rows : cols;
    int st = pivot_int8_packed_bytes(&bytes, N, K);
    if (st) return pivot_py_raise_status(st, "int8_pack (w must have at least one row and one column)");
    npy_intp dims[1] = {(npy_intp)bytes};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT8);
    if (!out) return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_int8_pack((int8_t *)PyArray_DATA(out), (const int8_t *)PyArray_DATA(w), N, K, transposed ? 1 : K,
                         transposed ? N : 1);
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "int8_pack"); }
    return (PyObject *)out;
}

/* int8_gemm(a uint8 (M, K), zero_point int32 (M), packed int8, N, kernel, threads) -> int32 (M, N) */
static PyObject *py_int8_gemm(PyObject *self, PyObject *args) {
    PyObject *o_a, *o_zp, *o_packed;
    Py_ssize_t N;
    int kernel, threads;
    if (!PyArg_ParseTuple(args, "OOOnii", &o_a, &o_zp, &o_packed, &N, &kernel, &threads)) return NULL;
    if (pivot_py_threads(threads) || pivot_py_int8_kernel(kernel)) return NULL;
    PyArrayObject *a = pivot_py_array(o_a, "a", NPY_UINT8, 2);
    PyArrayObject *zp = a ? pivot_py_array(o_zp, "zero_point", NPY_INT32, 1) : NULL;
    PyArrayObject *packed = zp ? pivot_py_array(o_packed, "packed", NPY_INT8, 1) : NULL;
    if (!packed) return NULL;
    size_t M = (size_t)PyArray_DIM(a, 0), K = (size_t)PyArray_DIM(a, 1), bytes;
    if (N < 1) return PyErr_Format(PyExc_ValueError, "int8_gemm: N must be >= 1, got %zd", N);
    int st = pivot_int8_packed_bytes(&bytes, (size_t)N, K);
    if (st) return pivot_py_raise_status(st, "int8_gemm (a must have K >= 1 columns)");
    if (pivot_py_dim(zp, "zero_point", 0, (npy_intp)M) || pivot_py_dim(packed, "packed", 0, (npy_intp)bytes)) return NULL;
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
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "int8_gemm"); }
    return (PyObject *)out;
}

/* quantize_u8(x f32 (N, C), inv_scale f32 (N) or (1), zp int32 same) -> uint8 (N, C) */
static PyObject *py_quantize_u8(PyObject *self, PyObject *args) {
    PyObject *o_x, *o_inv, *o_zp;
    if (!PyArg_ParseTuple(args, "OOO", &o_x, &o_inv, &o_zp)) return NULL;
    PyArrayObject *x = pivot_py_array(o_x, "x", NPY_FLOAT32, 2);
    PyArrayObject *inv = x ? pivot_py_array(o_inv, "inv_scale", NPY_FLOAT32, 1) : NULL;
    PyArrayObject *zp = inv ? pivot_py_array(o_zp, "zp", NPY_INT32, 1) : NULL;
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
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "quantize_u8 (zero points in [0, 255], finite inv_scale, C >= 1)"); }
    return (PyObject *)out;
}

/* quantize_s8(x f32 (N, C), inv_scale float) -> int8 (N, C) */
static PyObject *py_quantize_s8(PyObject *self, PyObject *args) {
    PyObject *o_x;
    float inv;
    if (!PyArg_ParseTuple(args, "Of", &o_x, &inv)) return NULL;
    PyArrayObject *x = pivot_py_array(o_x, "x", NPY_FLOAT32, 2);
    if (!x) return NULL;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(x), NPY_INT8);
    if (!out) return NULL;
    int st;
    Py_BEGIN_ALLOW_THREADS
    st = pivot_quantize_s8((int8_t *)PyArray_DATA(out), F32(x), inv, (size_t)PyArray_DIM(x, 0), (size_t)PyArray_DIM(x, 1));
    Py_END_ALLOW_THREADS
    if (st) { Py_DECREF(out); return pivot_py_raise_status(st, "quantize_s8 (finite inv_scale, C >= 1)"); }
    return (PyObject *)out;
}

/* quantize_u8_rows(x f32 (N, C)) -> (uint8 (N, C), scale f32 (N), zp int32 (N)) */
static PyObject *py_quantize_u8_rows(PyObject *self, PyObject *arg) {
    PyArrayObject *x = pivot_py_array(arg, "x", NPY_FLOAT32, 2);
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
    if (st) { Py_DECREF(out); Py_DECREF(scale); Py_DECREF(zp); return pivot_py_raise_status(st, "quantize_u8_rows"); }
    return Py_BuildValue("(NNN)", out, scale, zp);
}

static PyObject *py_qblock_sizes(PyObject *self, PyObject *args) {
    Py_ssize_t C, H;
    if (!PyArg_ParseTuple(args, "nn", &C, &H)) return NULL;
    if (C < 1 || H < 1) return PyErr_Format(PyExc_ValueError, "qblock_sizes: C and H must be >= 1");
    size_t nf, nb;
    int st = pivot_qblock_num_floats(&nf, (size_t)C, (size_t)H);
    if (!st) st = pivot_qblock_num_bytes(&nb, (size_t)C, (size_t)H);
    if (st) return pivot_py_raise_status(st, "qblock_sizes");
    return Py_BuildValue("(nnn)", (Py_ssize_t)nf, (Py_ssize_t)nb, (Py_ssize_t)PIVOT_QACT_COUNT);
}

PyMethodDef pivot_int8_methods[] = {
    {"int8_kernel_supported", py_int8_kernel_supported, METH_O, "int8_kernel_supported(kernel 1..5) -> bool"},
    {"int8_kernel_resolve", py_int8_kernel_resolve, METH_O, "int8_kernel_resolve(kernel 0..5) -> the kernel a call runs (0: best, capped by PIVOT_INT8_KERNEL)"},
    {"int8_pack", py_int8_pack, METH_VARARGS, "int8_pack(w int8 (N, K), transposed=False) -> packed weight (panels + column sums); transposed: w is W^T (K, N), read in place"},
    {"int8_gemm", py_int8_gemm, METH_VARARGS, "int8_gemm(a uint8 (M, K), zero_point int32 (M), packed, N, kernel, threads) -> int32 (M, N)"},
    {"quantize_u8", py_quantize_u8, METH_VARARGS, "quantize_u8(x f32 (N, C), inv_scale f32 (N|1), zp int32 (N|1)) -> uint8 (N, C)"},
    {"quantize_s8", py_quantize_s8, METH_VARARGS, "quantize_s8(x f32 (N, C), inv_scale float) -> int8 (N, C) symmetric"},
    {"quantize_u8_rows", py_quantize_u8_rows, METH_O, "quantize_u8_rows(x f32 (N, C)) -> (uint8 (N, C), scale (N), zp (N)) per-row dynamic"},
    {"qblock_sizes", py_qblock_sizes, METH_VARARGS, "qblock_sizes(C, H) -> (floats per block, packed bytes per block, activation parameters per block)"},
    {NULL, NULL, 0, NULL},
};
