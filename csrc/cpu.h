/* What this CPU can run, decided once per process, and the SIMD level every kernel dispatches on.
 *
 * Levels (each includes the ones below it):
 *   0 portable: OpenBLAS GEMMs and plain C row kernels (LayerNorm, softmax, GELU): the reference;
 *   1 AVX2:     OpenBLAS GEMMs, row kernels on 8-lane AVX2 + FMA;
 *   2 AVX-512:  packed-weight GEMMs with fused epilogues (csrc/gemm.c), 16-lane row kernels;
 *   3 AMX:      the packed GEMMs on AMX tiles (bf16x3, fp32-accurate), int8 on TDPBUSD.
 * The environment variable PIVOT_SIMD=0..3 caps the level (read once), so every path can be run
 * on one machine; pivot_set_simd_level does the same in-process for the tests. */
#ifndef PIVOT_CPU_H
#define PIVOT_CPU_H

enum { PIVOT_SIMD_PORTABLE = 0, PIVOT_SIMD_AVX2 = 1, PIVOT_SIMD_AVX512 = 2, PIVOT_SIMD_AMX = 3 };

/* The level in effect: the best the CPU and OS allow, capped by PIVOT_SIMD. */
int pivot_simd_level(void);

/* Sets the level to min(level, what the CPU supports) and returns it. Not meant to be called
 * while kernels run on other threads (a packed weight buffer holds one level's layout). */
int pivot_set_simd_level(int level);

/* 1 when the CPU and OS let this process use AMX tiles (BF16 and INT8), whatever the cap. */
int pivot_amx_usable(void);

/* Elementwise loops that GCC vectorizes are compiled for AVX-512, AVX2 and baseline x86-64 and
 * picked at load time (function multiversioning); the build flags target baseline x86-64 only. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12 && defined(__linux__)
#define PIVOT_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PIVOT_MULTIVERSION
#endif

/* The x86 intrinsics this build can compile (each still needs its CPU check at run time). */
#if defined(__GNUC__) && defined(__x86_64__)
#define PIVOT_X86_BUILD 1
#else
#define PIVOT_X86_BUILD 0
#endif
/* AMX needs GCC >= 11 / clang >= 12 intrinsics and Linux's arch_prctl permission call. */
#if PIVOT_X86_BUILD && defined(__linux__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#define PIVOT_AMX_BUILD 1
#else
#define PIVOT_AMX_BUILD 0
#endif

#endif /* PIVOT_CPU_H */
