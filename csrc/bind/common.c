/* Helpers shared by every binding (see bind.h). */
#include "bind.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"
#include "quant.h"
#include "threads.h"

/* Sets the Python exception matching a pivot status; returns NULL for `return pivot_py_raise_status(...)`. */
PyObject *pivot_py_raise_status(int status, const char *context) {
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
PyArrayObject *pivot_py_array(PyObject *obj, const char *name, int typenum, int ndim) {
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
int pivot_py_writable(PyArrayObject *arr, const char *name) {
    if (!PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError, "%s must be writable", name);
        return -1;
    }
    return 0;
}

int pivot_py_dim(PyArrayObject *arr, const char *name, int axis, npy_intp want) {
    if (PyArray_DIM(arr, axis) != want) {
        PyErr_Format(PyExc_ValueError, "%s has size %zd along axis %d, expected %zd", name,
                     (Py_ssize_t)PyArray_DIM(arr, axis), axis, (Py_ssize_t)want);
        return -1;
    }
    return 0;
}

int pivot_py_threads(int threads) {
    if (pivot_clamp_threads(threads) < 0) {
        PyErr_Format(PyExc_ValueError, "threads must be in [1, %d], got %d", PIVOT_MAX_THREADS, threads);
        return -1;
    }
    return 0;
}

int pivot_py_threads_arg(PyObject *arg, int *out) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (n < 1 || n > PIVOT_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "threads must be in [1, %d], got %ld", PIVOT_MAX_THREADS, n);
        return -1;
    }
    *out = (int)n;
    return 0;
}

PyArrayObject *pivot_py_new_f32(int ndim, npy_intp *dims) {
    return (PyArrayObject *)PyArray_SimpleNew(ndim, dims, NPY_FLOAT32);
}

/* The functions below read their uint8 path with the GIL released, after counting its active
 * entries to size the capture outputs. Another Python thread could change the caller's path array
 * in between (a 0 becoming 1 would overflow those outputs), so each is called through this
 * wrapper, which hands it a private copy of argument `index` that no other thread can reach. */
PyObject *pivot_py_private_arg(PyObject *self, PyObject *args, Py_ssize_t index, PyCFunction impl) {
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


int pivot_py_int8_kernel(int kernel) {
    if (kernel < PIVOT_INT8_KERNEL_AUTO || kernel > PIVOT_INT8_KERNEL_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "int8 kernel must be 0 (auto), 1 (portable), 2 (avx2), 3 (vnni), 4 (amx) or 5 (avxvnni), got %d",
                     kernel);
        return -1;
    }
    int resolved;
    if (pivot_int8_kernel_resolve(&resolved, kernel)) {
        if (kernel == PIVOT_INT8_KERNEL_AUTO)
            PyErr_Format(PyExc_ValueError, "environment variable PIVOT_INT8_KERNEL=%s is not one of portable, avx2, avxvnni, vnni, amx",
                         getenv("PIVOT_INT8_KERNEL"));
        else
            PyErr_Format(PyExc_ValueError, "int8 kernel %d (%s) is not supported by this CPU", kernel,
                         pivot_int8_kernel_name(kernel));
        return -1;
    }
    return 0;
}

/* New reference to attribute `name` of obj, or NULL with a TypeError naming `owner` ("config", a
 * pivot.ViTConfig, or "hw", a pivot.sim.HardwareConfig) and the attribute. */
PyObject *pivot_py_attr(PyObject *obj, const char *owner, const char *name) {
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (!v && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a %s, got %s (no attribute %s)", owner,
                     strcmp(owner, "hw") == 0 ? "pivot.sim.HardwareConfig" : "pivot.ViTConfig",
                     Py_TYPE(obj)->tp_name, name);
    }
    return v;
}

int pivot_py_attr_bool(PyObject *obj, const char *owner, const char *name, int *out) {
    PyObject *v = pivot_py_attr(obj, owner, name);
    if (!v) return -1;
    int b = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (b < 0) return -1;
    *out = b;
    return 0;
}

int pivot_py_attr_choice(PyObject *obj, const char *owner, const char *name, const char *const *choices, int n) {
    PyObject *v = pivot_py_attr(obj, owner, name);
    if (!v) return -1;
    const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, choices[i]) == 0) {
            Py_DECREF(v);
            return i;
        }
    if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "%s.%s: unknown value %R", owner, name, v);
    Py_DECREF(v);
    return -1;
}

static PyObject *config_attr(PyObject *obj, const char *name) { return pivot_py_attr(obj, "config", name); }

/* Reads attribute `name` of obj as a Py_ssize_t in [lo, hi]. */
static int attr_size(PyObject *obj, const char *name, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t *out) {
    PyObject *v = config_attr(obj, name);
    if (!v) return -1;
    Py_ssize_t n = PyNumber_AsSsize_t(v, PyExc_OverflowError);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (n < lo || n > hi) {
        PyErr_Format(PyExc_ValueError, "config.%s must be in [%zd, %zd], got %zd", name, lo, hi, n);
        return -1;
    }
    *out = n;
    return 0;
}

static int attr_float(PyObject *obj, const char *name, float *out) {
    PyObject *v = config_attr(obj, name);
    if (!v) return -1;
    double d = PyFloat_AsDouble(v);
    Py_DECREF(v);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    *out = (float)d;
    return 0;
}

static int attr_bool(PyObject *obj, const char *name, int *out) { return pivot_py_attr_bool(obj, "config", name, out); }

static int attr_choice(PyObject *obj, const char *name, const char *const *choices, int n) {
    return pivot_py_attr_choice(obj, "config", name, choices, n);
}

int pivot_py_model_config(PyObject *config, pivot_model_config *cfg) {
    static const char *const sizes[] = {"img_size", "patch_size", "in_chans", "num_classes", "embed_dim",
                                        "depth", "num_heads", "mlp_hidden"};
    static const char *const stems[] = {"patch", "lvvit_conv"};
    static const char *const kinds[] = {"softmax", "relu_linear"};
    static const char *const pools[] = {"token", "avg", "max", "avgmax", "map"};
    static const char *const acts[] = {"gelu", "gelu_tanh", "quick_gelu", "silu"};
    static const char *const mlps[] = {"mlp", "swiglu"};
    Py_ssize_t v[8], stem_channels, reg_tokens;
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < 8; i++) /* num_classes may be 0: a headless model */
        if (attr_size(config, sizes[i], i == 3 ? 0 : 1, PY_SSIZE_T_MAX, &v[i])) return -1;
    static const char *const norms[] = {"layernorm", "rmsnorm"};
    int class_token, pool, act, final_norm, norm, mlp;
    if (attr_bool(config, "class_token", &class_token) || attr_size(config, "reg_tokens", 0, 65536, &reg_tokens) ||
        attr_bool(config, "no_embed_class", &cfg->vit.no_embed_class) ||
        attr_bool(config, "norm_pre", &cfg->vit.norm_pre) || attr_bool(config, "layer_scale", &cfg->vit.layer_scale) ||
        attr_bool(config, "qk_norm", &cfg->vit.qk_norm) || attr_bool(config, "fc_norm", &cfg->vit.fc_norm) ||
        attr_bool(config, "final_norm", &final_norm) ||
        attr_bool(config, "pool_include_prefix", &cfg->vit.pool_include_prefix) ||
        attr_bool(config, "scale_attn_norm", &cfg->vit.scale_attn_norm) ||
        attr_bool(config, "scale_mlp_norm", &cfg->vit.scale_mlp_norm) ||
        (norm = attr_choice(config, "norm_layer", norms, 2)) < 0 ||
        (pool = attr_choice(config, "global_pool", pools, 5)) < 0 || (act = attr_choice(config, "act", acts, 4)) < 0 ||
        (mlp = attr_choice(config, "mlp_layer", mlps, 2)) < 0 || attr_bool(config, "patch_norm", &cfg->vit.patch_norm))
        return -1;
    cfg->vit.no_class_token = !class_token;
    cfg->vit.no_final_norm = !final_norm;
    cfg->vit.rms_norm = norm == 1;
    cfg->vit.swiglu = mlp == 1;
    cfg->vit.reg_tokens = (size_t)reg_tokens;
    cfg->vit.pool = pool;
    cfg->vit.act = act;
    int stem, kind;
    if ((stem = attr_choice(config, "stem", stems, 2)) < 0 || (kind = attr_choice(config, "attention", kinds, 2)) < 0 ||
        attr_size(config, "stem_channels", 0, PY_SSIZE_T_MAX, &stem_channels) ||
        attr_bool(config, "distilled", &cfg->vit.distilled) || attr_bool(config, "aux_head", &cfg->aux_head) ||
        attr_float(config, "norm_eps", &cfg->vit.norm_eps) || attr_float(config, "skip_lam", &cfg->skip_lam))
        return -1;
    /* skip_lam is checked where it is used, by the engine (pivot.ViTConfig names it first) */
    if (!(cfg->vit.norm_eps >= 0.0f)) {
        PyErr_SetString(PyExc_ValueError, "config: norm_eps must be >= 0");
        return -1;
    }
    cfg->vit.img_size = (size_t)v[0];
    cfg->vit.patch_size = (size_t)v[1];
    cfg->vit.in_chans = (size_t)v[2];
    cfg->vit.num_classes = (size_t)v[3];
    cfg->vit.embed_dim = (size_t)v[4];
    cfg->vit.depth = (size_t)v[5];
    cfg->vit.num_heads = (size_t)v[6];
    cfg->vit.mlp_hidden = (size_t)v[7];
    cfg->stem_channels = stem == 1 ? (size_t)stem_channels : 0;
    cfg->attention_kind = kind;
    cfg->linear_eps = PIVOT_LINEAR_ATTENTION_EPS;
    return 0;
}
