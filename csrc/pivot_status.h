/* Status codes returned by every public pivot_ C function. 0 is success.
 * The binding (pivot/_core.c) turns each into a Python exception. */
#ifndef PIVOT_STATUS_H
#define PIVOT_STATUS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PIVOT_OK = 0,
    PIVOT_ERR_NOMEM = 1,     /* an allocation failed -> MemoryError */
    PIVOT_ERR_VALUE = 2,     /* an argument has a bad value -> ValueError */
    PIVOT_ERR_SHAPE = 3,     /* sizes do not agree -> ValueError */
    PIVOT_ERR_OVERFLOW = 4,  /* a size product overflows -> OverflowError */
    PIVOT_ERR_INTERNAL = 5,  /* a bug in pivot -> RuntimeError */
} pivot_status;

/* A short English description of a status, never NULL. */
const char *pivot_status_string(int status);

/* out = a * b, or PIVOT_ERR_OVERFLOW when the product does not fit in size_t. */
static inline int pivot_mul_size(size_t *out, size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) return PIVOT_ERR_OVERFLOW;
    *out = a * b;
    return PIVOT_OK;
}

#endif /* PIVOT_STATUS_H */
