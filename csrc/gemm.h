/* pivot's GEMM layer for Linear layers: out = inp @ weight^T + bias, with fused epilogues.
 *
 * Three implementations compute the same thing:
 *  - plain: OpenBLAS sgemm followed by a separate epilogue pass (the reference, any CPU);
 *  - packed: weights re-laid out once (pivot_gemm_pack) into column panels that an AVX-512
 *    micro-kernel streams, with bias, exact GELU or the residual update applied on the
 *    accumulators before they are stored (no extra pass over the output);
 *  - packed for AMX: the same panels as bf16 hi/lo tiles, multiplied on AMX tiles with the
 *    bf16x3 split (fp32 accuracy to ~1e-5 relative, see gemm.c), same epilogues.
 * The SIMD level (csrc/cpu.h) says which one runs: packed from PIVOT_SIMD_AVX2 up (an AVX2 + FMA
 * micro-kernel of 6 x 16, or AVX-512's of 12 x 32), on AMX tiles at PIVOT_SIMD_AMX, plain below. A packed buffer holds the layout of the level in effect when it
 * was packed: pack and run at the same level. */
#ifndef PIVOT_GEMM_H
#define PIVOT_GEMM_H

#include <stddef.h>

#include "pivot_status.h"

/* What happens to acc = inp @ weight^T + bias before it leaves the kernel. */
enum {
    PIVOT_EPI_STORE = 0,    /* out = acc */
    PIVOT_EPI_GELU = 1,     /* out = gelu(acc) (exact, erf form) */
    PIVOT_EPI_RESIDUAL = 2, /* capture = acc (if capture != NULL); out += acc * scale */
};

#define PIVOT_GEMM_PANEL 32  /* output columns per packed weight panel */
#define PIVOT_GEMM_KBLOCK 32 /* packed panels hold IC rounded up to this (AMX's k per tile) */

/* Loads the AMX tile configuration both AMX kernels use (csrc/gemm.c, csrc/qgemm.c): all 8 tiles
 * 16 rows x 64 bytes. Only where pivot_amx_usable(); pair with _tile_release(). */
void pivot_amx_configure_tiles(void);

/* IC rounded up to PIVOT_GEMM_KBLOCK (0 on overflow): panel p starts at packed + p * 32 * this. */
size_t pivot_gemm_padded_k(size_t IC);

/* Floats of a packed (OC, IC) weight: OC rounded up to PIVOT_GEMM_PANEL, times padded IC. */
int pivot_gemm_packed_size(size_t *out, size_t OC, size_t IC);

/* Packs weight (OC, IC) into panels: panel p holds columns [32p, 32p+32), zero padded: as
 * (padded IC, 32) floats, or at the AMX level as AMX bf16 hi/lo tiles of the same size. */
int pivot_gemm_pack(float *packed,       /* (pivot_gemm_packed_size) */
                    const float *weight, /* (OC, IC) */
                    size_t OC, size_t IC);

/* Linear with epilogue, rows with leading dimensions. With `packed` != NULL from the AVX2 level up
 * the packed kernel runs; otherwise the plain path (OpenBLAS + epilogue pass) on `weight`.
 * bias may be NULL. For PIVOT_EPI_RESIDUAL out holds the residual stream on entry. Runs on the
 * calling thread (the caller holds OpenBLAS single-threaded when it runs threads of its own). */
int pivot_linear_forward(float *out,          /* (N, OC), row stride ldo */
                         float *capture,      /* (N, OC) contiguous, or NULL; EPI_RESIDUAL only */
                         const float *inp,    /* (N, IC), row stride ldi */
                         const float *weight, /* (OC, IC), or NULL when packed is given and used */
                         const float *packed, /* (pivot_gemm_packed_size) or NULL */
                         const float *bias,   /* (OC) or NULL */
                         size_t N, size_t IC, size_t OC, size_t ldi, size_t ldo, int epilogue, float scale);

/* Plain OpenBLAS out = a @ b^T on the calling thread alone, the reference rate of the benchmarks' roofline. */
int pivot_sgemm_nt(float *out,     /* (M, N) */
                   const float *a, /* (M, K) */
                   const float *b, /* (N, K) */
                   size_t M, size_t N, size_t K);

/* out (M, N) = a (M, K) @ b (K, N), all row-major with the given row strides, on the calling
 * thread: the packed kernel's micro-tiles reading b's rows in place (no packing; attention's
 * q k^T on a transposed K, and probabilities @ V). Plain loops below AVX2. */
void pivot_gemm_nn_fast(float *out, const float *a, const float *b, size_t M, size_t K, size_t N, size_t lda,
                        size_t ldb, size_t ldo);

#endif /* PIVOT_GEMM_H */
