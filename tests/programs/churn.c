/* Many threads, and threads that never stop coming and going, for tests/threads.rs.
 *
 * Usage: churn many N
 *   N threads, each waiting on one condition variable (blocked in futex). Prints "ready" once
 *   all N are waiting. For the line "check" on stdin every thread is woken, checks that
 *   raise() reaches it (glibc's cached thread id is its own) and that its stack-allocated
 *   pattern is intact, adds its number to a sum, and is joined; then "joined N sum S bad B".
 *
 * Usage: churn churn
 *   The main thread makes, round after round, 4 joinable and 2 detached threads; each fills a
 *   buffer of its own with a pattern, sums it, and checks the sum (memory that came back
 *   wrong, or changed under it, is caught). A reader thread waits for "check" on stdin.
 *   Prints "ready" after the first round; for "check", at the end of the round under way,
 *   "rounds ok" (at least one round after the line came) or "BAD: ..." and exits.
 *
 * Usage: churn locks
 *   4 threads lock and unlock, over and over, an error-checking mutex and (twice) a
 *   recursive one that they share, counting under them; any call that fails counts as bad.
 *   Prints "ready"; for "check", "locks ok" (the count right, nothing bad) or "BAD: ...".
 *
 * Usage: churn barrier ROUNDS
 *   4 threads work in ROUNDS phases separated by a pthread barrier: in each, every thread
 *   adds a value that depends on the round and on what all threads did before into its own
 *   slot and into a thread-local total; the barrier's serial thread then folds the slots into
 *   a checksum. Prints "round K" every 500 rounds (after 2 ms each, so that a checkpoint
 *   lands mid-work), then "barrier CHECKSUM", and "BAD" if a thread's thread-local total
 *   disagrees with its slots.
 *
 * Usage: churn masked N
 *   N threads block every signal with a raw rt_sigprocmask (past ckpt's wrappers) and wait
 *   on a futex. Prints "ready"; for "check", wakes and joins them and prints "masked done".
 *
 * Usage: churn threadclock
 *   A second thread waits; the main thread makes a timer on its own CPU-time clock
 *   (CLOCK_THREAD_CPUTIME_ID). Prints "ready", and "done" after "check". */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go;
static atomic_int waiting;
static atomic_ulong sum;
static atomic_int bad, bad_buffer, bad_stack, bad_raise;
static __thread volatile sig_atomic_t urg_seen;

static void on_urg(int sig)
{
    (void)sig;
    urg_seen = 1;
}

/* raise() reaches this thread, and a pattern on its stack is what it wrote (each failure
 * also counted by kind). */
static int thread_is_whole(const unsigned char *pattern, size_t len, unsigned seed)
{
    for (size_t k = 0; k < len; k++)
        if (pattern[k] != (unsigned char)(seed * 31 + k)) {
            atomic_fetch_add(&bad_stack, 1);
            return 0;
        }
    urg_seen = 0;
    if (raise(SIGURG) != 0 || !urg_seen) {
        atomic_fetch_add(&bad_raise, 1);
        return 0;
    }
    return 1;
}

static void *waiter(void *arg)
{
    unsigned i = (unsigned)(uintptr_t)arg;
    unsigned char pattern[256];
    for (size_t k = 0; k < sizeof pattern; k++)
        pattern[k] = (unsigned char)(i * 31 + k);
    pthread_mutex_lock(&lock);
    atomic_fetch_add(&waiting, 1);
    while (!go)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    if (!thread_is_whole(pattern, sizeof pattern, i))
        atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&sum, i);
    return NULL;
}

static int many(int n)
{
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < n; i++) {
        int r = pthread_create(&threads[i], &attr, waiter, (void *)(uintptr_t)(i + 1));
        if (r != 0) {
            printf("pthread_create %d: %s\n", i, strerror(r));
            return 1;
        }
    }
    while (atomic_load(&waiting) < n)
        sleep_ms(1);
    /* Every thread has counted itself under the lock; taking it once more makes sure the
     * last one is in pthread_cond_wait. */
    pthread_mutex_lock(&lock);
    pthread_mutex_unlock(&lock);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin) || strcmp(line, "check\n") != 0) {
        printf("no check\n");
        return 3;
    }
    pthread_mutex_lock(&lock);
    go = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    printf("joined %d sum %lu bad %d\n", n, atomic_load(&sum), atomic_load(&bad));
    return 0;
}

#define BUFFER (64 * 1024)
static atomic_int checking;
static atomic_int detached_alive;

static void *busy(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    unsigned char *buffer = malloc(BUFFER);
    unsigned char stack_pattern[128];
    for (size_t k = 0; k < sizeof stack_pattern; k++)
        stack_pattern[k] = (unsigned char)(seed * 31 + k);
    uint64_t want = 0, got = 0;
    for (size_t k = 0; k < BUFFER; k++) {
        buffer[k] = (unsigned char)(seed + k * 7);
        want += buffer[k];
    }
    for (size_t k = 0; k < BUFFER; k++)
        got += buffer[k];
    if (got != want)
        atomic_fetch_add(&bad_buffer, 1);
    if (got != want || !thread_is_whole(stack_pattern, sizeof stack_pattern, seed))
        atomic_fetch_add(&bad, 1);
    free(buffer);
    return NULL;
}

static void *detached(void *arg)
{
    busy(arg);
    atomic_fetch_sub(&detached_alive, 1);
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    char line[64];
    while (fgets(line, sizeof line, stdin))
        if (strcmp(line, "check\n") == 0) {
            atomic_store(&checking, 1);
            return NULL;
        }
    printf("stdin closed\n");
    fflush(stdout);
    exit(3);
}

static int churn(void)
{
    pthread_t r;
    pthread_create(&r, NULL, reader, NULL);
    pthread_attr_t detach;
    pthread_attr_init(&detach);
    pthread_attr_setdetachstate(&detach, PTHREAD_CREATE_DETACHED);
    unsigned seed = 1;
    int after_check = 0;
    for (unsigned long round = 0;; round++) {
        int check = atomic_load(&checking);
        pthread_t t[4];
        for (int k = 0; k < 4; k++)
            pthread_create(&t[k], NULL, busy, (void *)(uintptr_t)seed++);
        for (int k = 0; k < 2; k++) {
            pthread_t d;
            atomic_fetch_add(&detached_alive, 1);
            if (pthread_create(&d, &detach, detached, (void *)(uintptr_t)seed++) != 0)
                atomic_fetch_sub(&detached_alive, 1);
        }
        for (int k = 0; k < 4; k++)
            pthread_join(t[k], NULL);
        if (round == 0) {
            printf("ready\n");
            fflush(stdout);
        }
        if (check && ++after_check >= 2) {
            while (atomic_load(&detached_alive) > 0)
                sleep_ms(1);
            if (atomic_load(&bad))
                printf("BAD: %d threads found their memory or thread id wrong (heap buffer %d, "
                       "stack %d, raise %d)\n",
                       atomic_load(&bad), atomic_load(&bad_buffer), atomic_load(&bad_stack),
                       atomic_load(&bad_raise));
            else
                printf("rounds ok\n");
            fflush(stdout);
            return 0;
        }
    }
}

static pthread_mutex_t errorcheck, recursive;
static unsigned long under_errorcheck, under_recursive;
static atomic_ulong increments;

static void *locker(void *arg)
{
    (void)arg;
    while (!atomic_load(&checking)) {
        int r = pthread_mutex_lock(&errorcheck);
        if (r == 0) {
            under_errorcheck++;
            r = pthread_mutex_unlock(&errorcheck);
        }
        if (r == 0 && (r = pthread_mutex_lock(&recursive)) == 0) {
            if ((r = pthread_mutex_lock(&recursive)) == 0) {
                under_recursive++;
                r = pthread_mutex_unlock(&recursive);
            }
            int r2 = pthread_mutex_unlock(&recursive);
            if (r == 0)
                r = r2;
        }
        if (r != 0) {
            atomic_fetch_add(&bad, 1);
            return NULL;
        }
        atomic_fetch_add(&increments, 2);
    }
    return NULL;
}

static int locks(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&errorcheck, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&recursive, &a);
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
        pthread_create(&t[k], NULL, locker, NULL);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 3;
    atomic_store(&checking, 1);
    for (int k = 0; k < 4; k++)
        pthread_join(t[k], NULL);
    if (atomic_load(&bad))
        printf("BAD: %d threads saw a lock call fail\n", atomic_load(&bad));
    else if (under_errorcheck + under_recursive != atomic_load(&increments))
        printf("BAD: counted %lu under the locks, %lu done\n", under_errorcheck + under_recursive,
               atomic_load(&increments));
    else
        printf("locks ok\n");
    return 0;
}

#define BARRIER_THREADS 4
static pthread_barrier_t barrier;
static uint64_t slot_of[BARRIER_THREADS], fold = 1, added_of[BARRIER_THREADS];
static long barrier_rounds;
static __thread uint64_t added_here;

static void *phase_worker(void *arg)
{
    int i = (int)(uintptr_t)arg;
    for (long r = 0; r < barrier_rounds; r++) {
        uint64_t v = (fold * 6364136223846793005u + (uint64_t)r * 1442695040888963407u + (uint64_t)i) >> 7;
        slot_of[i] += v;
        added_here += v;
        if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
            for (int k = 0; k < BARRIER_THREADS; k++)
                fold = fold * 31 + slot_of[k];
            if (r % 500 == 499) {
                printf("round %ld\n", r + 1);
                fflush(stdout);
                sleep_ms(2);
            }
        }
        pthread_barrier_wait(&barrier);
    }
    added_of[i] = added_here;
    return NULL;
}

static int barrier_phases(long rounds)
{
    barrier_rounds = rounds;
    pthread_barrier_init(&barrier, NULL, BARRIER_THREADS);
    pthread_t t[BARRIER_THREADS];
    for (int i = 0; i < BARRIER_THREADS; i++)
        pthread_create(&t[i], NULL, phase_worker, (void *)(uintptr_t)i);
    for (int i = 0; i < BARRIER_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < BARRIER_THREADS; i++)
        if (added_of[i] != slot_of[i])
            printf("BAD: thread %d's thread-local total is not its slot\n", i);
    printf("barrier %llu\n", (unsigned long long)fold);
    return 0;
}

static atomic_int masked_go;

static void *masked(void *arg)
{
    (void)arg;
    uint64_t all = ~(uint64_t)0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
    atomic_fetch_add(&waiting, 1);
    while (!atomic_load(&masked_go))
        syscall(SYS_futex, &masked_go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

static int masked_threads(int n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, masked, NULL);
    while (atomic_load(&waiting) < n)
        sleep_ms(1);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 3;
    atomic_store(&masked_go, 1);
    syscall(SYS_futex, &masked_go, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("masked done\n");
    return 0;
}

static int threadclock(void)
{
    pthread_t t;
    pthread_create(&t, NULL, waiter, (void *)(uintptr_t)1);
    struct sigevent ev = { .sigev_notify = SIGEV_NONE };
    timer_t timer;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &timer) != 0) {
        perror("timer_create");
        return 1;
    }
    struct itimerspec in = { .it_value = { .tv_sec = 1000 } };
    timer_settime(timer, 0, &in, NULL);
    while (atomic_load(&waiting) < 1)
        sleep_ms(1);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 3;
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGURG, on_urg);
    if (argc == 3 && strcmp(argv[1], "many") == 0)
        return many(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "masked") == 0)
        return masked_threads(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "barrier") == 0)
        return barrier_phases(atol(argv[2]));
    if (argc == 2 && strcmp(argv[1], "locks") == 0)
        return locks();
    if (argc == 2 && strcmp(argv[1], "threadclock") == 0)
        return threadclock();
    if (argc == 2 && strcmp(argv[1], "churn") == 0)
        return churn();
    fprintf(stderr, "usage: churn many N | churn churn\n");
    return 2;
}
