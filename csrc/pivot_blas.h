/* The one place that names BLAS symbols.
 * Default: the scipy-openblas32 wheel, whose symbols carry a scipy_ prefix.
 * PIVOT_BLAS_SYSTEM: a system OpenBLAS (pkg-config openblas) with plain cblas names.
 * Every BLAS call in csrc/ goes through the pivot_* names below. */
#ifndef PIVOT_BLAS_H
#define PIVOT_BLAS_H

#include <cblas.h>

#ifdef PIVOT_BLAS_SYSTEM
#define pivot_cblas_sgemm cblas_sgemm
#define pivot_cblas_ssyrk cblas_ssyrk
#define pivot_cblas_dgemm cblas_dgemm
#define pivot_blas_set_num_threads openblas_set_num_threads
#define pivot_blas_get_num_threads openblas_get_num_threads
#else
#define pivot_cblas_sgemm scipy_cblas_sgemm
#define pivot_cblas_ssyrk scipy_cblas_ssyrk
#define pivot_cblas_dgemm scipy_cblas_dgemm
#define pivot_blas_set_num_threads scipy_openblas_set_num_threads
#define pivot_blas_get_num_threads scipy_openblas_get_num_threads
#endif

#endif /* PIVOT_BLAS_H */
