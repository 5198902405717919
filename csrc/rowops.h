/* Row kernels of the encoder: LayerNorm, softmax and GELU, one implementation per SIMD level
 * (csrc/cpu.h). The portable loops are the reference: the *_forward entry points run them alone,
 * and the engine runs them at level 0, bit for bit as they are written here. The AVX2 and
 * AVX-512 ones compute the same formulas in float lanes (within ~1e-6 relative of the reference);
 * pivot_*_rows pick the one of the level in effect. Sizes are not checked by pivot_*_rows (the
 * engine's are); rows are contiguous unless a stride is given. */
#ifndef PIVOT_ROWOPS_H
#define PIVOT_ROWOPS_H

#include <stddef.h>

#include "pivot_status.h"

/* out = (x - mean) / sqrt(var + eps) * weight + bias per row. Reference: two passes in double. */
void pivot_layernorm_rows(float *out,          /* (N, C) */
                          const float *inp,    /* (N, C) */
                          const float *weight, /* (C) */
                          const float *bias,   /* (C) */
                          size_t N, size_t C, float eps);

/* timm's RmsNorm: out = x / sqrt(mean(x^2) + eps) * weight per row (in place allowed). */
void pivot_rmsnorm_rows(float *out,          /* (N, C) */
                        const float *inp,    /* (N, C) */
                        const float *weight, /* (C) */
                        size_t N, size_t C, float eps);

/* Softmax in place over rows of length C with stride ld, the row maximum subtracted, exp as
 * fast_math.h's exp_fast. A NaN anywhere in a row makes the row NaN. */
void pivot_softmax_rows(float *x, /* (N, ld) */
                        size_t N, size_t C, size_t ld);

/* x = gelu(x + bias) in place (exact erf GELU); bias may be NULL. */
void pivot_gelu_rows(float *x,          /* (N, C) */
                     const float *bias, /* (C) or NULL */
                     size_t N, size_t C);

/* The reference kernels alone, with their arguments checked. */
int pivot_layernorm_forward(float *out,          /* (N, C) */
                            const float *inp,    /* (N, C) */
                            const float *weight, /* (C) */
                            const float *bias,   /* (C) */
                            size_t N, size_t C, float eps);

/* Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))). out may equal inp. */
int pivot_gelu_forward(float *out,       /* (N) */
                       const float *inp, /* (N) */
                       size_t N);

/* Row-wise softmax with the row maximum subtracted. out may equal inp. */
int pivot_softmax_forward(float *out,       /* (N, C) */
                          const float *inp, /* (N, C) */
                          size_t N, size_t C);

#endif /* PIVOT_ROWOPS_H */
