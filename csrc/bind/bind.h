/* The bindings of pivot._core: the only C files that include Python.h and NumPy's headers, one
 * file per concept (engine.c, sim.c, cka.c, int8.c; module.c assembles the module).
 *
 * Every binding follows one pattern, with the helpers below:
 *   1. validate: pivot_py_array (dtype, rank, byte order, C-contiguity, alignment), pivot_py_dim,
 *      pivot_py_threads, pivot_py_model_config (the config object read by attribute name, once);
 *   2. copy what another Python thread could change while the GIL is released and that sizes the
 *      outputs (pivot_py_private_arg);
 *   3. call csrc/ with the GIL released (PIVOT_PY_CALL);
 *   4. turn a pivot_status into an exception naming the call (pivot_py_raise_status). */
#ifndef PIVOT_BIND_H
#define PIVOT_BIND_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL pivot_ARRAY_API
#ifndef PIVOT_BIND_MODULE
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "lvvit.h"
#include "pivot_status.h"

#define F32(a) ((float *)PyArray_DATA(a))

/* status = expr, evaluated with the GIL released. */
#define PIVOT_PY_CALL(status, expr) \
    do {                            \
        Py_BEGIN_ALLOW_THREADS      \
        status = (expr);            \
        Py_END_ALLOW_THREADS        \
    } while (0)

/* Sets the Python exception matching a pivot status; returns NULL for `return pivot_py_raise_status(...)`. */
PyObject *pivot_py_raise_status(int status, const char *context);

/* obj as a NumPy array of the given type and rank (ndim < 0: any rank), native byte order,
 * C-contiguous and aligned: a borrowed reference, or NULL with a TypeError/ValueError naming `name`. */
PyArrayObject *pivot_py_array(PyObject *obj, const char *name, int typenum, int ndim);

/* 0 when arr is writable, else -1 with a ValueError. */
int pivot_py_writable(PyArrayObject *arr, const char *name);

/* 0 when arr's size along axis is want, else -1 with a ValueError naming both. */
int pivot_py_dim(PyArrayObject *arr, const char *name, int axis, npy_intp want);

/* 0 when threads is in [1, PIVOT_MAX_THREADS] (csrc/threads.h), else -1 with a ValueError. */
int pivot_py_threads(int threads);

/* A Python int thread count in [1, PIVOT_MAX_THREADS] into *out: 0, or -1 with an exception. */
int pivot_py_threads_arg(PyObject *arg, int *out);

/* 0 when kernel is a PIVOT_INT8_KERNEL_* code the CPU can run, else -1 with a ValueError. */
int pivot_py_int8_kernel(int kernel);

/* A new uninitialized float32 array, or NULL with MemoryError. */
PyArrayObject *pivot_py_new_f32(int ndim, npy_intp *dims);

/* Attributes read by name: a new reference, a bool, an index into `choices`; NULL or -1 with an
 * exception naming `owner` ("config" or "hw") and the attribute. */
PyObject *pivot_py_attr(PyObject *obj, const char *owner, const char *name);
int pivot_py_attr_bool(PyObject *obj, const char *owner, const char *name, int *out);
int pivot_py_attr_choice(PyObject *obj, const char *owner, const char *name, const char *const *choices, int n);

/* Reads a pivot.ViTConfig (any object with its attributes) into the C model config: img_size,
 * patch_size, in_chans, num_classes, embed_dim, depth, num_heads, mlp_hidden, distilled, norm_eps,
 * stem ("patch" or "lvvit_conv"), stem_channels, skip_lam, aux_head, attention ("softmax" or
 * "relu_linear"). 0, or -1 with an exception naming the attribute. */
int pivot_py_model_config(PyObject *config, pivot_model_config *cfg);

/* impl(self, args) with item `index` of args replaced by a private copy of that array, so that
 * no other thread can change it while impl runs without the GIL (functions that size their
 * outputs from a path array read it again during the call). */
PyObject *pivot_py_private_arg(PyObject *self, PyObject *args, Py_ssize_t index, PyCFunction impl);

/* The method tables of each file, NULL-terminated. */
extern PyMethodDef pivot_engine_methods[];
extern PyMethodDef pivot_sim_methods[];
extern PyMethodDef pivot_cka_methods[];
extern PyMethodDef pivot_int8_methods[];

#endif /* PIVOT_BIND_H */
