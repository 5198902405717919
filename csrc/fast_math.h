/* Scalar exp and exact GELU shared by the engine (csrc/engine.c) and the packed GEMM's portable
 * epilogues (csrc/gemm.c): one definition, so both paths round the same way. */
#ifndef PIVOT_FAST_MATH_H
#define PIVOT_FAST_MATH_H

#include <stdint.h>
#include <string.h>

/* exp(x) with relative error ~2e-7, branch-free so that loops over it vectorize (libm's expf is
 * a call per element). Cody-Waite range reduction x = n ln2 + r, a degree-6 polynomial for e^r,
 * and 2^n built in the exponent bits. NaN stays NaN; below -87 gives 0, above 88 gives e^88. */
static inline float exp_fast(float x_in) {
    float x = x_in < -87.0f ? -87.0f : x_in;
    x = x > 88.0f ? 88.0f : x;
    float kd = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds, leaves n in low bits */
    uint32_t ki;
    memcpy(&ki, &kd, sizeof ki);
    float n = kd - 12582912.0f;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (ki + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x_in < -87.0f ? 0.0f : p * scale;
}

/* Exact (erf) GELU: 0.5 x erfc(-x / sqrt(2)), with erfc from Numerical Recipes' erfcc
 * (fractional error < 1.2e-7 everywhere), so negative inputs keep their relative accuracy. */
static inline float gelu_scalar(float x) {
    float z = x * -0.70710678118654752440f;
    float az = z < 0.0f ? -z : z;
    float t = 1.0f / (1.0f + 0.5f * az);
    float poly = -0.82215223f + t * 0.17087277f;
    poly = 1.48851587f + t * poly;
    poly = -1.13520398f + t * poly;
    poly = 0.27886807f + t * poly;
    poly = -0.18628806f + t * poly;
    poly = 0.09678418f + t * poly;
    poly = 0.37409196f + t * poly;
    poly = 1.00002368f + t * poly;
    poly = -1.26551223f + t * poly;
    float erfc_az = t * exp_fast(-az * az + poly);
    float erfc_z = z >= 0.0f ? erfc_az : 2.0f - erfc_az;
    return 0.5f * x * erfc_z;
}

#endif /* PIVOT_FAST_MATH_H */
