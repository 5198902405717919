/* Threads, the OpenBLAS guard and the workspace cache (see threads.h). */
#define _POSIX_C_SOURCE 200809L
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pivot_blas.h"
#include "pivot_status.h"

int pivot_clamp_threads(int threads) { return threads >= 1 && threads <= PIVOT_MAX_THREADS ? threads : -1; }

void pivot_split_range(size_t n, int tid, int nthreads, size_t *begin, size_t *end) {
    *begin = n * (size_t)tid / (size_t)nthreads;
    *end = n * (size_t)(tid + 1) / (size_t)nthreads;
}

/* ------------------------------------------------------------------ OpenBLAS guard */

static pthread_mutex_t blas_guard_mutex = PTHREAD_MUTEX_INITIALIZER;
static int blas_guard_users = 0;
static int blas_guard_saved = 1;

void pivot_blas_guard_enter(int threads) {
    pthread_mutex_lock(&blas_guard_mutex);
    if (blas_guard_users++ == 0) blas_guard_saved = pivot_blas_get_num_threads();
    if (pivot_blas_get_num_threads() != threads) pivot_blas_set_num_threads(threads);
    pthread_mutex_unlock(&blas_guard_mutex);
}

void pivot_blas_guard_leave(void) {
    pthread_mutex_lock(&blas_guard_mutex);
    if (blas_guard_users > 0 && --blas_guard_users == 0 && pivot_blas_get_num_threads() != blas_guard_saved)
        pivot_blas_set_num_threads(blas_guard_saved);
    pthread_mutex_unlock(&blas_guard_mutex);
}

int pivot_blas_user_threads(void) {
    pthread_mutex_lock(&blas_guard_mutex);
    int n = blas_guard_users ? blas_guard_saved : pivot_blas_get_num_threads();
    pthread_mutex_unlock(&blas_guard_mutex);
    return n;
}

/* ------------------------------------------------------------------ workspace cache */

/* Blocks above the cap are never kept, to bound the memory held between calls. Two slots: a
 * forward with LV-ViT's stem holds the stem's buffers and the encoder's workspace at once.
 * Concurrent calls that find no block large enough allocate their own. */
#define WORKSPACE_CACHE_MAX_BYTES ((size_t)64 << 20)
#define WORKSPACE_CACHE_SLOTS 2

static pthread_mutex_t workspace_cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static void *workspace_cache_block[WORKSPACE_CACHE_SLOTS];
static size_t workspace_cache_bytes[WORKSPACE_CACHE_SLOTS];

void *pivot_workspace_acquire(size_t bytes, size_t *capacity) {
    void *block = NULL;
    pthread_mutex_lock(&workspace_cache_mutex);
    int best = -1; /* the smallest cached block that is large enough */
    for (int i = 0; i < WORKSPACE_CACHE_SLOTS; i++)
        if (workspace_cache_block[i] && workspace_cache_bytes[i] >= bytes &&
            (best < 0 || workspace_cache_bytes[i] < workspace_cache_bytes[best]))
            best = i;
    if (best >= 0) {
        block = workspace_cache_block[best];
        *capacity = workspace_cache_bytes[best];
        workspace_cache_block[best] = NULL;
        workspace_cache_bytes[best] = 0;
    }
    pthread_mutex_unlock(&workspace_cache_mutex);
    if (block) return block;
    if (posix_memalign(&block, 64, bytes ? bytes : 64) != 0) return NULL;
    *capacity = bytes;
    return block;
}

void pivot_workspace_release(void *block, size_t capacity) {
    if (!block) return;
    if (capacity <= WORKSPACE_CACHE_MAX_BYTES) {
        pthread_mutex_lock(&workspace_cache_mutex);
        int slot = 0; /* an empty slot, else the smallest block, if this one is larger */
        for (int i = 0; i < WORKSPACE_CACHE_SLOTS; i++)
            if (workspace_cache_bytes[i] < workspace_cache_bytes[slot]) slot = i;
        if (capacity > workspace_cache_bytes[slot]) {
            void *old = workspace_cache_block[slot];
            workspace_cache_block[slot] = block;
            workspace_cache_bytes[slot] = capacity;
            block = old;
        }
        pthread_mutex_unlock(&workspace_cache_mutex);
    }
    free(block);
}

/* ------------------------------------------------------------------ team */

typedef struct {
    atomic_uint arrived;
    atomic_uint generation;
    unsigned count;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
} team_barrier;

/* ~50 us of spinning: covers the usual imbalance between threads without burning a core that
 * another process (or an oversubscribed team) needs. */
#define BARRIER_SPINS 2000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void barrier_wait(team_barrier *bar) {
    if (bar->count <= 1) return;
    unsigned gen = atomic_load(&bar->generation);
    if (atomic_fetch_add(&bar->arrived, 1) + 1 == bar->count) {
        atomic_store(&bar->arrived, 0);
        pthread_mutex_lock(&bar->mutex);
        atomic_fetch_add(&bar->generation, 1);
        pthread_cond_broadcast(&bar->cond);
        pthread_mutex_unlock(&bar->mutex);
        return;
    }
    for (int spin = 0; spin < BARRIER_SPINS; spin++)
        if (atomic_load_explicit(&bar->generation, memory_order_acquire) != gen) return;
        else cpu_relax();
    pthread_mutex_lock(&bar->mutex);
    while (atomic_load(&bar->generation) == gen) pthread_cond_wait(&bar->cond, &bar->mutex);
    pthread_mutex_unlock(&bar->mutex);
}

struct pivot_team {
    int nthreads;          /* final team size, fixed before any worker starts work */
    team_barrier barrier;
    pivot_team_fn fn;
    void *arg;
    int go;                /* start gate: workers wait until the team size is final */
    pthread_mutex_t gate_mutex;
    pthread_cond_t gate_cond;
};

typedef struct {
    pivot_team *tm;
    int tid;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg *wa = (worker_arg *)p;
    pivot_team *tm = wa->tm;
    pthread_mutex_lock(&tm->gate_mutex);
    while (!tm->go) pthread_cond_wait(&tm->gate_cond, &tm->gate_mutex);
    pthread_mutex_unlock(&tm->gate_mutex);
    if (wa->tid < tm->nthreads) tm->fn(tm->arg, tm, wa->tid, tm->nthreads);
    return NULL;
}

int pivot_team_run(pivot_team_fn fn, void *arg, int threads) {
    if (!fn || (threads = pivot_clamp_threads(threads)) < 0) return PIVOT_ERR_VALUE;
    pivot_team tm;
    memset(&tm, 0, sizeof tm);
    tm.fn = fn;
    tm.arg = arg;
    pthread_mutex_init(&tm.gate_mutex, NULL);
    pthread_cond_init(&tm.gate_cond, NULL);
    pthread_mutex_init(&tm.barrier.mutex, NULL);
    pthread_cond_init(&tm.barrier.cond, NULL);
    atomic_init(&tm.barrier.arrived, 0);
    atomic_init(&tm.barrier.generation, 0);

    pthread_t handles[PIVOT_MAX_THREADS];
    worker_arg args[PIVOT_MAX_THREADS];
    int started = 0;
    pivot_blas_guard_enter(1);
    for (int t = 1; t < threads; t++) {
        args[t].tm = &tm;
        args[t].tid = t;
        if (pthread_create(&handles[t], NULL, worker_main, &args[t]) != 0) break;
        started++;
    }
    tm.nthreads = started + 1;
    tm.barrier.count = (unsigned)tm.nthreads;
    pthread_mutex_lock(&tm.gate_mutex);
    tm.go = 1;
    pthread_cond_broadcast(&tm.gate_cond);
    pthread_mutex_unlock(&tm.gate_mutex);

    fn(arg, &tm, 0, tm.nthreads);
    for (int t = 1; t <= started; t++) pthread_join(handles[t], NULL);
    pivot_blas_guard_leave();

    pthread_mutex_destroy(&tm.gate_mutex);
    pthread_cond_destroy(&tm.gate_cond);
    pthread_mutex_destroy(&tm.barrier.mutex);
    pthread_cond_destroy(&tm.barrier.cond);
    return PIVOT_OK;
}

void pivot_team_barrier(pivot_team *tm) { barrier_wait(&tm->barrier); }
