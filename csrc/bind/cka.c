/* Bindings of CKA, the Path-Score (csrc/cka.h) and the softmax entropy of the cascade (csrc/entropy.h). */
#include "bind.h"

#include "cka.h"
#include "entropy.h"

/* Optional float32 argument: Py_None gives NULL. */
static int optional_float_array(PyObject *obj, const char *name, int ndim, PyArrayObject **out) {
    *out = NULL;
    if (obj == Py_None) return 0;
    *out = pivot_py_array(obj, name, NPY_FLOAT32, ndim);
    return *out == NULL ? -1 : 0;
}

/* cka_gram(xa, xb, shift, threads) -> (Na, Nb) float64: (xa - shift)(xb - shift)^T; xb None = xa. */
static PyObject *py_cka_gram(PyObject *self, PyObject *args) {
    PyObject *xa_obj, *xb_obj, *shift_obj;
    int threads;
    if (!PyArg_ParseTuple(args, "OOOi", &xa_obj, &xb_obj, &shift_obj, &threads) || pivot_py_threads(threads)) return NULL;
    PyArrayObject *xa = pivot_py_array(xa_obj, "xa", NPY_FLOAT32, 2), *xb, *shift;
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
                            (size_t)Na, (size_t)Nb, (size_t)P, threads);
    Py_END_ALLOW_THREADS
    if (status != PIVOT_OK) {
        Py_DECREF(gram);
        return pivot_py_raise_status(status, "cka_gram");
    }
    return (PyObject *)gram;
}

/* cka_center_gram(gram, unbiased) -> None: centers a (N, N) float64 Gram matrix in place. */
static PyObject *py_cka_center_gram(PyObject *self, PyObject *args) {
    PyObject *gram_obj;
    int unbiased;
    if (!PyArg_ParseTuple(args, "Op", &gram_obj, &unbiased)) return NULL;
    PyArrayObject *gram = pivot_py_array(gram_obj, "gram", NPY_FLOAT64, 2);
    if (gram == NULL || pivot_py_writable(gram, "gram")) return NULL;
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
    if (status != PIVOT_OK) return pivot_py_raise_status(status, "cka_center_gram");
    Py_RETURN_NONE;
}

/* Checks a stack of centered Grams (D, N, N) float64 with D >= 1 and N large enough. */
static PyArrayObject *check_grams(PyObject *obj, const char *name, int unbiased) {
    PyArrayObject *grams = pivot_py_array(obj, name, NPY_FLOAT64, 3);
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
        return pivot_py_raise_status(status, "cka_hsic");
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
        return pivot_py_raise_status(status, "cka_hsic_self");
    }
    return (PyObject *)out;
}

/* Checks a (D, D) float64 CKA matrix with D >= 1. */
static PyArrayObject *check_cka_matrix(PyObject *obj) {
    PyArrayObject *cka = pivot_py_array(obj, "cka", NPY_FLOAT64, 2);
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
    PyArrayObject *path = pivot_py_array(path_obj, "path", NPY_UINT8, 1);
    if (path == NULL) return NULL;
    npy_intp D = PyArray_DIM(cka, 0);
    if (PyArray_DIM(path, 0) != D) {
        PyErr_Format(PyExc_ValueError, "path has %zd entries but cka is (%zd, %zd)",
                     (Py_ssize_t)PyArray_DIM(path, 0), (Py_ssize_t)D, (Py_ssize_t)D);
        return NULL;
    }
    double score;
    int status = pivot_path_score(&score, (const double *)PyArray_DATA(cka), (const uint8_t *)PyArray_DATA(path), (size_t)D);
    if (status != PIVOT_OK) return pivot_py_raise_status(status, "path_score (path values must be 0 or 1)");
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
        return pivot_py_raise_status(status, "rank_paths (k must be at most C(D, effort))");
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
        return pivot_py_raise_status(status, "best_paths");
    }
    return Py_BuildValue("NN", scores, paths);
}

/* softmax_entropy(logits, with_probs) -> entropy (B,) float32, or (probs (B, K), entropy (B,)).
 * logits: float32 (B, K), C-contiguous, K >= 2. */
static PyObject *py_softmax_entropy(PyObject *self, PyObject *args) {
    PyObject *logits_obj;
    int with_probs = 0;
    if (!PyArg_ParseTuple(args, "O|p:softmax_entropy", &logits_obj, &with_probs)) return NULL;
    PyArrayObject *logits = pivot_py_array(logits_obj, "logits", NPY_FLOAT32, 2);
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
        return pivot_py_raise_status(status, "softmax_entropy");
    }
    if (probs == NULL) return (PyObject *)entropy;
    return Py_BuildValue("(NN)", probs, entropy);
}

PyMethodDef pivot_cka_methods[] = {
    {"cka_gram", py_cka_gram, METH_VARARGS, "cka_gram(xa, xb, shift, threads) -> (Na, Nb) float64 Gram block (xa - shift)(xb - shift)^T; xb None: xa's own Gram; bit-identical for any threads."},
    {"cka_center_gram", py_cka_center_gram, METH_VARARGS, "cka_center_gram(gram, unbiased): center a (N, N) float64 Gram in place (H K H, or U-centering)."},
    {"cka_hsic", py_cka_hsic, METH_VARARGS, "cka_hsic(grams_x, grams_y, unbiased) -> (Dx, Dy) HSIC of every pair of centered Grams."},
    {"cka_hsic_self", py_cka_hsic_self, METH_VARARGS, "cka_hsic_self(grams, unbiased) -> (D,) HSIC of each centered Gram with itself."},
    {"path_score", py_path_score, METH_VARARGS, "path_score(cka, path) -> Path-Score of a uint8 path (Algorithm 1)."},
    {"rank_paths", py_rank_paths, METH_VARARGS, "rank_paths(cka, effort, k) -> (scores, paths): the k best paths of an effort, best first."},
    {"best_paths", py_best_paths, METH_O, "best_paths(cka) -> (scores, paths): the best path of every effort 0..D (dynamic programming)."},
    {"softmax_entropy", py_softmax_entropy, METH_VARARGS,
     "softmax_entropy(logits, with_probs=False): normalized entropy (B,) of float32 logits (B, K), or (probs, entropy)."},
    {NULL, NULL, 0, NULL},
};
