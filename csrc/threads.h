/* pivot's threads: the team that runs a forward call SPMD-style, the work split, the thread cap,
 * the OpenBLAS thread-count guard and the workspace cache. */
#ifndef PIVOT_THREADS_H
#define PIVOT_THREADS_H

#include <stddef.h>

/* The one thread cap of pivot: the most threads a call may ask for (the team's handles live on the
 * stack). Python reads it as pivot._core.MAX_THREADS; every check, C or Python, uses it. */
#define PIVOT_MAX_THREADS 1024

/* threads when it is in [1, PIVOT_MAX_THREADS], else -1: a count beyond the cap is refused, never
 * lowered silently. */
int pivot_clamp_threads(int threads);

/* Static split of n items: thread tid of nthreads gets [*begin, *end). */
void pivot_split_range(size_t n, int tid, int nthreads, size_t *begin, size_t *end);

/* Runs fn(arg, team, tid, nthreads) on `threads` threads (the caller is tid 0; nthreads may be
 * fewer if the OS refuses threads, and fn must partition its work by nthreads), with OpenBLAS
 * held single-threaded (the team already fills the cores). The workers come from a persistent
 * pool, parked between calls (up to 64 threads; one call owns it at a time); a call that finds the
 * pool busy, or wants more threads, starts its own team. A forked child starts a fresh pool.
 * The pool's workers run on the caller's CPUs (its affinity), off the caller's own CPU when the
 * team fits in the others (Linux, csrc/threads.c "Placement").
 * pivot_team_barrier waits for every thread of the team: it spins up to 1 ms, then sleeps. */
typedef struct pivot_team pivot_team;
typedef void (*pivot_team_fn)(void *arg, pivot_team *team, int tid, int nthreads);
int pivot_team_run(pivot_team_fn fn, void *arg, int threads);
void pivot_team_barrier(pivot_team *team);

/* The one OpenBLAS thread-count guard, reference-counted: the first pivot_blas_guard_enter saves
 * the count the user set, every enter sets `threads` (the latest caller wins while calls overlap),
 * and the last pivot_blas_guard_leave restores the user's count, however the calls interleave. */
void pivot_blas_guard_enter(int threads);
void pivot_blas_guard_leave(void);

/* The OpenBLAS thread count as the user set it (e.g. through threadpoolctl), even while guarded
 * calls run. pivot's default `threads` is capped by it. */
int pivot_blas_user_threads(void);

/* One freed workspace is kept for the next call (a fresh multi-megabyte block from mmap costs a
 * page fault per 4 KiB, ~1-2% of a DeiT-S forward). acquire returns a 64-byte aligned block of at
 * least `bytes` (its real size in *capacity) or NULL; release takes it back. */
void *pivot_workspace_acquire(size_t bytes, size_t *capacity);
void pivot_workspace_release(void *block, size_t capacity);

#endif /* PIVOT_THREADS_H */
