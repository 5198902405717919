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

/* ===================================================================== end simulator */

/* ===================================================================== cka */

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

/* ===================================================================== module */

static PyMethodDef core_methods[] = {
    {"blas_set_num_threads", py_blas_set_num_threads, METH_O, "Set the OpenBLAS thread count used by pivot."},
    {"blas_get_num_threads", py_blas_get_num_threads, METH_NOARGS, "OpenBLAS thread count used by pivot."},

    /* engine methods */

    /* end engine methods */

    /* simulator methods */

    /* end simulator methods */

    /* cka methods */

    /* end cka methods */

    /* search methods */
    {"softmax_entropy", py_softmax_entropy, METH_VARARGS,
     "softmax_entropy(logits, with_probs=False): normalized entropy (B,) of float32 logits (B, K), "
     "or (probs, entropy)."},
    /* end search methods */

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
    /* end module setup: simulator */
    /* module setup: cka */
    /* end module setup: cka */
    /* module setup: search */
    /* end module setup: search */
    return m;
}
