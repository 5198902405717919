/* pivot._core: the module assembled from the method tables of each binding file (see bind.h). */
#define PIVOT_BIND_MODULE
#include "bind.h"

#include "modes.h"
#include "pivot_sim.h"
#include "threads.h"

static PyMethodDef core_methods[128];

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "pivot._core", "pivot's C core (see csrc/).", -1, core_methods,
};

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    const PyMethodDef *tables[] = {pivot_engine_methods, pivot_sim_methods, pivot_cka_methods, pivot_int8_methods};
    size_t n = 0, cap = sizeof core_methods / sizeof core_methods[0] - 1;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const PyMethodDef *m = tables[t]; m->ml_name; m++) {
            if (n == cap) {
                PyErr_SetString(PyExc_ImportError, "pivot._core: method table too small");
                return NULL;
            }
            core_methods[n++] = *m;
        }
    core_methods[n] = (PyMethodDef){NULL, NULL, 0, NULL};
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "MAX_THREADS", PIVOT_MAX_THREADS) < 0 ||
        PyModule_AddObject(m, "LINEAR_ATTENTION_EPS", PyFloat_FromDouble((double)PIVOT_LINEAR_ATTENTION_EPS)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
