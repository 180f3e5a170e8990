/* The threaded benchmark's workload: THREADS threads that together touch MIB mebibytes
 * (each its own MIB/THREADS, filled like workload.c: half noise, half a repeated word),
 * then spin, reading the clock. The main thread prints "ready" once every thread has
 * touched its memory and waits for SIGUSR1, which makes it print
 *   "pause <ns> <ns> <ns>"
 * and exit: first the longest time during which no thread made progress (the pause the
 * program as a whole sees), then the longest gap any one thread saw between two of its
 * iterations (with more spinning threads than CPUs that includes waiting to be scheduled,
 * so compare it with a run without a checkpoint), and the CLOCK_MONOTONIC time at which the
 * longest stall ended (to find it in a trace). After a restart, the restart hook
 * prints "restarted <CLOCK_REALTIME ns>" first thing.
 *
 * Usage: threads THREADS MIB */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static atomic_int stop, touched;
static _Atomic uint64_t last_progress, longest_stall, stall_end;
static size_t share;

static void *worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    if (share) {
        unsigned char *p = mmap(0, share, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            abort();
        fill_pages(p, share, seed);
    }
    atomic_fetch_add(&touched, 1);
    uint64_t last = now_ns(CLOCK_MONOTONIC), max_gap = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t t = now_ns(CLOCK_MONOTONIC);
        if (t - last > max_gap)
            max_gap = t - last;
        last = t;
        /* The program-wide stall: time since any thread last got here. A maximum, not an
         * exchange: a thread preempted between reading the clock and here must not put
         * back its old time (that made stalls of a scheduling round out of nothing). */
        uint64_t before = atomic_load_explicit(&last_progress, memory_order_relaxed);
        while (t > before && !atomic_compare_exchange_weak_explicit(&last_progress, &before, t, memory_order_relaxed,
                                                                    memory_order_relaxed)) {
        }
        if (before && t > before) {
            uint64_t stall = t - before, seen = atomic_load_explicit(&longest_stall, memory_order_relaxed);
            while (stall > seen) {
                if (atomic_compare_exchange_weak_explicit(&longest_stall, &seen, stall, memory_order_relaxed,
                                                          memory_order_relaxed)) {
                    atomic_store_explicit(&stall_end, t, memory_order_relaxed);
                    break;
                }
            }
        }
    }
    return (void *)(uintptr_t)max_gap;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: threads THREADS MIB\n");
        return 2;
    }
    int n = atoi(argv[1]);
    size_t mib = strtoul(argv[2], 0, 10);
    if (n < 1 || n > 4096)
        return 2;
    share = (mib << 20) / (size_t)n & ~(size_t)4095;
    /* Only the main thread takes SIGUSR1 (sigwait); the workers inherit the mask. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    for (int i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
            return 1;
    while (atomic_load(&touched) < n)
        usleep(1000);
    if (ckpt_on_restart)
        ckpt_on_restart(on_restart, 0);
    /* Start measuring only now that every thread spins. */
    atomic_store(&longest_stall, 0);
    printf("ready\n");
    fflush(stdout);
    int sig;
    sigwait(&usr1, &sig);
    atomic_store(&stop, 1);
    uint64_t worst = 0;
    for (int i = 0; i < n; i++) {
        void *gap;
        pthread_join(threads[i], &gap);
        if ((uint64_t)(uintptr_t)gap > worst)
            worst = (uint64_t)(uintptr_t)gap;
    }
    printf("pause %llu %llu %llu\n", (unsigned long long)atomic_load(&longest_stall), (unsigned long long)worst,
           (unsigned long long)atomic_load(&stall_end));
    return 0;
}
