/* Threads, the OpenBLAS guard and the workspace cache (see threads.h). */
#define _GNU_SOURCE /* sched_getcpu, cpu_set_t and pthread_setaffinity_np for the pool's placement */
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* How long a waiting thread stays awake before it sleeps on its condition variable. Inside a call
 * (a barrier) 1 ms: on a VM a sleeping thread's idle vCPU can take milliseconds to run it again,
 * and a forward has hundreds of barriers (after an idle pause, 50 us of spinning nearly doubled a
 * 2-thread forward: docs/performance.md). The first 50 us spin
 * on `pause`; the rest call sched_yield, which hands the CPU to any other runnable thread (an
 * oversubscribed team's laggard) and otherwise returns at once. Between calls (a parked worker,
 * the owner waiting for the workers to leave) 50 us of `pause` only: no core is held after a call. */
#define PAUSE_SPIN_NS 50000L
#define BARRIER_SPIN_NS 1000000L

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long elapsed_ns(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000000000L + (now.tv_nsec - since->tv_nsec);
}

/* Waits until *word != old and returns it: spins up to spin_ns (see above), then sleeps. The
 * waker changes *word and then broadcasts cond under mutex. */
static unsigned wait_change(atomic_uint *word, unsigned old, pthread_mutex_t *mutex, pthread_cond_t *cond,
                            long spin_ns) {
    unsigned now;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long waited = 0; waited < spin_ns; waited = elapsed_ns(&start))
        for (int spin = 0; spin < 32; spin++) { /* a clock read per ~1 us */
            if ((now = atomic_load_explicit(word, memory_order_acquire)) != old) return now;
            if (waited < PAUSE_SPIN_NS) cpu_relax();
            else sched_yield();
        }
    pthread_mutex_lock(mutex);
    while ((now = atomic_load_explicit(word, memory_order_acquire)) == old) pthread_cond_wait(cond, mutex);
    pthread_mutex_unlock(mutex);
    return now;
}

static void post_change(atomic_uint *word, pthread_mutex_t *mutex, pthread_cond_t *cond) {
    pthread_mutex_lock(mutex);
    atomic_fetch_add_explicit(word, 1, memory_order_release);
    pthread_cond_broadcast(cond);
    pthread_mutex_unlock(mutex);
}

static void barrier_wait(team_barrier *bar) {
    if (bar->count <= 1) return;
    unsigned gen = atomic_load(&bar->generation);
    if (atomic_fetch_add(&bar->arrived, 1) + 1 == bar->count) {
        atomic_store(&bar->arrived, 0);
        post_change(&bar->generation, &bar->mutex, &bar->cond);
        return;
    }
    wait_change(&bar->generation, gen, &bar->mutex, &bar->cond, BARRIER_SPIN_NS);
}

struct pivot_team {
    int nthreads;          /* final team size, fixed before any worker starts work */
    team_barrier barrier;
    pivot_team_fn fn;
    void *arg;
};

static void barrier_init(team_barrier *bar) {
    pthread_mutex_init(&bar->mutex, NULL);
    pthread_cond_init(&bar->cond, NULL);
    atomic_init(&bar->arrived, 0);
    atomic_init(&bar->generation, 0);
}

static void barrier_destroy(team_barrier *bar) {
    pthread_mutex_destroy(&bar->mutex);
    pthread_cond_destroy(&bar->cond);
}

/* ------------------------------------------------------------------ the persistent pool
 *
 * Instead of creating and joining threads on every call, the pool keeps its workers parked between
 * calls (spinning ~50 us, then asleep on a condition variable) and wakes only the ones a call
 * needs. One call owns the pool at a time
 * (owner_mutex, tried, never waited for): a call that finds it busy, or asks for more threads
 * than the pool keeps, runs its own team of fresh threads, as every call did before the pool.
 * Workers exist only in the process that started them: a forked child finds an empty pool
 * (pthread_atfork) and starts its own on its first call. At exit the parked workers end with the
 * process; they hold no resource that needs a clean-up.
 *
 * Placement: the caller computes tid 0's share, so a worker on the caller's CPU halves the team.
 * Linux does put them there: a caller woken after an idle pause (a VM's idle vCPU does not count as
 * idle to the wake-up path) can land on the parked worker's CPU, and the pair then shares that CPU
 * for the whole call while the other stays idle.
 * So each call keeps the workers off the caller's current CPU: their affinity is the caller's own
 * minus that CPU, set again only when either changes (a team larger than the caller's CPUs gets
 * them all). */

#define POOL_MAX_WORKERS 63 /* beyond 64 threads a call runs its own team */

typedef struct {
    atomic_uint job; /* bumped by the owner to hand this worker the pool's current team */
    pthread_mutex_t mutex;
    pthread_cond_t cond;
} pool_slot;

static struct {
    pthread_mutex_t owner_mutex;
    int workers;                       /* started workers, tids 1..workers */
    pthread_t handle[POOL_MAX_WORKERS + 1];
#ifdef __linux__
    int placed_cpu;                    /* the caller's CPU the workers were last kept off; -1: none */
    int placed_workers;                /* how many were placed (0: none yet) */
    cpu_set_t placed_mask;             /* the caller's affinity then */
#endif
    pool_slot slot[POOL_MAX_WORKERS + 1];
    pivot_team team;                   /* the owner's team, read by the workers it woke */
    atomic_uint done;                  /* bumped by each worker when it leaves fn */
    pthread_mutex_t done_mutex;
    pthread_cond_t done_cond;
} pool = {.owner_mutex = PTHREAD_MUTEX_INITIALIZER,
          .done_mutex = PTHREAD_MUTEX_INITIALIZER,
          .done_cond = PTHREAD_COND_INITIALIZER};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_atfork_child(void) {
    /* the child has the calling thread only: no workers, and nobody owns the pool */
    pthread_mutex_init(&pool.owner_mutex, NULL);
    pthread_mutex_init(&pool.done_mutex, NULL);
    pthread_cond_init(&pool.done_cond, NULL);
    barrier_init(&pool.team.barrier);
    pool.workers = 0;
#ifdef __linux__
    pool.placed_cpu = -1;
#endif
}

static void pool_register(void) {
    barrier_init(&pool.team.barrier);
#ifdef __linux__
    pool.placed_cpu = -1;
#endif
    pthread_atfork(NULL, NULL, pool_atfork_child);
}

static void *pool_worker(void *p) {
    int tid = (int)(intptr_t)p;
    pool_slot *sl = &pool.slot[tid];
    unsigned seen = 0; /* the slot starts at 0 and moves by one per call that this worker serves */
    for (;;) {
        seen = wait_change(&sl->job, seen, &sl->mutex, &sl->cond, PAUSE_SPIN_NS);
        pivot_team *tm = &pool.team;
        tm->fn(tm->arg, tm, tid, tm->nthreads);
        post_change(&pool.done, &pool.done_mutex, &pool.done_cond);
    }
    return NULL;
}

/* Starts workers up to `want` (pool owner only); returns how many there are. Workers block every
 * signal: the process's handlers run on its own threads. */
static int pool_grow(int want) {
    if (pool.workers >= want) return pool.workers;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (pool.workers < want) {
        int tid = pool.workers + 1;
        pool_slot *sl = &pool.slot[tid];
        atomic_init(&sl->job, 0);
        pthread_mutex_init(&sl->mutex, NULL);
        pthread_cond_init(&sl->cond, NULL);
        pthread_t handle;
        if (pthread_create(&handle, &attr, pool_worker, (void *)(intptr_t)tid) != 0) {
            pthread_mutex_destroy(&sl->mutex);
            pthread_cond_destroy(&sl->cond);
            break;
        }
        pool.handle[tid] = handle;
        pool.workers = tid;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return pool.workers;
}

/* Keeps workers 1..nthreads-1 off the caller's CPU (pool owner only; see "Placement" above).
 * Costs a sched_getaffinity per call, and affinity calls only when the caller moved. The caller's
 * affinity is the call's CPUs: with more threads than those, the workers get all of them and the
 * scheduler shares them out (a caller on one CPU runs its whole team there). */
static void pool_place(int nthreads) {
#ifdef __linux__
    int cpu = sched_getcpu();
    cpu_set_t mask;
    if (cpu < 0 || sched_getaffinity(0, sizeof mask, &mask) != 0) return;
    int off = nthreads <= CPU_COUNT(&mask) ? cpu : -1; /* the CPU the workers keep off, or none */
    if (off == pool.placed_cpu && nthreads - 1 <= pool.placed_workers && CPU_EQUAL(&mask, &pool.placed_mask))
        return;
    cpu_set_t workers = mask;
    if (off >= 0) CPU_CLR(off, &workers);
    if (CPU_COUNT(&workers) == 0) return;
    for (int t = 1; t < nthreads; t++) pthread_setaffinity_np(pool.handle[t], sizeof workers, &workers);
    pool.placed_cpu = off;
    pool.placed_workers = nthreads - 1;
    pool.placed_mask = mask;
#else
    (void)nthreads;
#endif
}

static void pool_run(pivot_team_fn fn, void *arg, int threads) {
    int nthreads = pool_grow(threads - 1) + 1;
    if (nthreads > threads) nthreads = threads;
    pool_place(nthreads);
    pivot_team *tm = &pool.team;
    tm->fn = fn;
    tm->arg = arg;
    tm->nthreads = nthreads;
    tm->barrier.count = (unsigned)nthreads;
    atomic_store(&tm->barrier.arrived, 0);
    unsigned done0 = atomic_load(&pool.done), target = done0 + (unsigned)(nthreads - 1);
    for (int t = 1; t < nthreads; t++) post_change(&pool.slot[t].job, &pool.slot[t].mutex, &pool.slot[t].cond);
    fn(arg, tm, 0, nthreads);
    unsigned now = done0;
    while (now != target) now = wait_change(&pool.done, now, &pool.done_mutex, &pool.done_cond, PAUSE_SPIN_NS);
}

/* ------------------------------------------------------------------ one call's own team */

typedef struct {
    pivot_team *tm;
    int tid;
    int *go; /* start gate: workers wait until the team size is final */
    pthread_mutex_t *gate_mutex;
    pthread_cond_t *gate_cond;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg *wa = (worker_arg *)p;
    pivot_team *tm = wa->tm;
    pthread_mutex_lock(wa->gate_mutex);
    while (!*wa->go) pthread_cond_wait(wa->gate_cond, wa->gate_mutex);
    pthread_mutex_unlock(wa->gate_mutex);
    if (wa->tid < tm->nthreads) tm->fn(tm->arg, tm, wa->tid, tm->nthreads);
    return NULL;
}

static void own_team_run(pivot_team_fn fn, void *arg, int threads) {
    pivot_team tm;
    memset(&tm, 0, sizeof tm);
    tm.fn = fn;
    tm.arg = arg;
    barrier_init(&tm.barrier);
    int go = 0;
    pthread_mutex_t gate_mutex;
    pthread_cond_t gate_cond;
    pthread_mutex_init(&gate_mutex, NULL);
    pthread_cond_init(&gate_cond, NULL);

    pthread_t *handles = threads > 1 ? (pthread_t *)malloc((size_t)threads * sizeof(pthread_t)) : NULL;
    worker_arg *args = threads > 1 ? (worker_arg *)malloc((size_t)threads * sizeof(worker_arg)) : NULL;
    int started = 0;
    for (int t = 1; handles && args && t < threads; t++) {
        args[t] = (worker_arg){&tm, t, &go, &gate_mutex, &gate_cond};
        if (pthread_create(&handles[t], NULL, worker_main, &args[t]) != 0) break;
        started++;
    }
    tm.nthreads = started + 1;
    tm.barrier.count = (unsigned)tm.nthreads;
    pthread_mutex_lock(&gate_mutex);
    go = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_mutex);

    fn(arg, &tm, 0, tm.nthreads);
    for (int t = 1; t <= started; t++) pthread_join(handles[t], NULL);
    free(handles);
    free(args);
    pthread_mutex_destroy(&gate_mutex);
    pthread_cond_destroy(&gate_cond);
    barrier_destroy(&tm.barrier);
}

int pivot_team_run(pivot_team_fn fn, void *arg, int threads) {
    if (!fn || (threads = pivot_clamp_threads(threads)) < 0) return PIVOT_ERR_VALUE;
    pivot_blas_guard_enter(1);
    if (threads == 1) {
        pivot_team tm = {.nthreads = 1, .fn = fn, .arg = arg}; /* count 0: the barrier returns at once */
        fn(arg, &tm, 0, 1);
    } else if (threads <= POOL_MAX_WORKERS + 1 && pthread_once(&pool_once, pool_register) == 0 &&
               pthread_mutex_trylock(&pool.owner_mutex) == 0) {
        pool_run(fn, arg, threads);
        pthread_mutex_unlock(&pool.owner_mutex);
    } else {
        own_team_run(fn, arg, threads);
    }
    pivot_blas_guard_leave();
    return PIVOT_OK;
}

void pivot_team_barrier(pivot_team *tm) { barrier_wait(&tm->barrier); }
