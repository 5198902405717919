/* CPU feature detection and the SIMD level (see cpu.h). */
#define _GNU_SOURCE /* syscall() for the AMX permission request */
#include "cpu.h"

#include <stdatomic.h>
#include <stdlib.h>

#if PIVOT_AMX_BUILD
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* The highest level this CPU and OS allow. AMX needs AMX-TILE, AMX-BF16 and AVX512-BF16 in
 * CPUID, VNNI (AMX-INT8 users also run VNNI tiles), the tile state enabled by the OS (XCR0 bits
 * 17-18) and the per-process permission to use it (Linux arch_prctl ARCH_REQ_XCOMP_PERM, asked
 * for once). */
static int cpu_level(void) {
#if PIVOT_X86_BUILD
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return PIVOT_SIMD_PORTABLE;
    if (!__builtin_cpu_supports("avx512f")) return PIVOT_SIMD_AVX2;
#if PIVOT_AMX_BUILD
    if (!__builtin_cpu_supports("avx512vnni")) return PIVOT_SIMD_AVX512;
    unsigned a, b, c, d, a1 = 0, b1, c1, d1;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) &&
        ((d >> 22) & 1) && ((d >> 24) & 1) && ((a1 >> 5) & 1)) {
        unsigned lo, hi; /* XGETBV exists wherever the OS enabled AVX-512 */
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        if (((lo >> 17) & 3) == 3 &&
            syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0)
            return PIVOT_SIMD_AMX;
    }
#endif
    return PIVOT_SIMD_AVX512;
#else
    return PIVOT_SIMD_PORTABLE;
#endif
}

static int cpu_level_cached(void) {
    static atomic_int supported = -1;
    int sup = atomic_load(&supported);
    if (sup < 0) atomic_store(&supported, sup = cpu_level());
    return sup;
}

/* -1: not decided yet; else the level in effect. */
static atomic_int simd_level = -1;

int pivot_amx_usable(void) { return cpu_level_cached() >= PIVOT_SIMD_AMX; }

int pivot_simd_level(void) {
    int level = atomic_load_explicit(&simd_level, memory_order_relaxed);
    if (level >= 0) return level;
    level = cpu_level_cached();
    const char *cap = getenv("PIVOT_SIMD");
    if (cap && cap[0] >= '0' && cap[0] <= '3' && cap[1] == '\0' && cap[0] - '0' < level) level = cap[0] - '0';
    atomic_store(&simd_level, level);
    return level;
}

int pivot_set_simd_level(int level) {
    int sup = cpu_level_cached();
    level = level < 0 ? 0 : level > sup ? sup : level;
    atomic_store(&simd_level, level);
    return level;
}
