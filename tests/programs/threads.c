/* Threads for tests/threads.rs: workers that count, and threads stopped in every way a
 * checkpoint may find one; after a restart each proves that its thread came back whole.
 *
 * Usage: threads MODE WORKERS
 *   MODE main: the main thread reads the commands (blocked in read);
 *        exit: the main thread calls pthread_exit once all is set up, a thread reads them;
 *        api:  as main, and worker 1 takes the checkpoint itself with ckpt_ckpt() (found
 *              with dlsym: the program runs under ckpt, not linked with libckpt).
 * Besides the workers: a thread in pthread_cond_wait, one sleeping, one in sigwait, one in a
 * signal handler on its alternate stack; and the thread reading the commands, in read.
 * Prints "ready" once every thread is set up. Then, for the line "check" on stdin, every
 * worker checks its own state and prints "worker I ok" or "worker I BAD: why"; the blocked
 * threads are woken and each prints what woke it; everything is joined, and "done" ends
 * the output. Any other line is echoed as "echo LINE" (to see the reader alive).
 *
 * What a worker checks (state saved before the checkpoint, compared after):
 *   its name; its CPU-time clock (pthread_getcpuclockid needs glibc's cached tid right);
 *   raise() reaching this very thread (glibc's cached tid again); the rseq area updated by
 *   the kernel (it is registered); the robust list head; worker 0: its CPU affinity and an
 *   error-checking mutex it holds; worker 1: a recursive mutex it holds twice; worker 2: a
 *   robust mutex it holds, and SIGWINCH pending for it alone (blocked); worker 4: an rwlock
 *   it holds for writing; worker 5: a priority-inheritance mutex it holds. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_WORKERS 64
#define OTHERS 4 /* the threads that are not workers, beside main */

static int workers;
static atomic_int checking;
static atomic_int set_up;
static atomic_int announced; /* "ready" is out */
static atomic_ulong counts[MAX_WORKERS];
static pthread_mutex_t errorcheck, recursive, robust, pi;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_flag;
static atomic_int wake_sleeper, wake_altstack;
static pthread_t sigwaiter_thread;

static __thread volatile sig_atomic_t urg_seen;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&print_lock);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
    pthread_mutex_unlock(&print_lock);
}

static void on_urg(int sig)
{
    (void)sig;
    urg_seen = 1;
}

static struct rseq *rseq_area(void)
{
    if (__rseq_size == 0)
        return NULL;
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static void *robust_head(void)
{
    void *head = NULL;
    size_t len = 0;
    syscall(SYS_get_robust_list, 0, &head, &len);
    return head;
}

/* One worker's check; returns NULL when all is well, else what is wrong. */
static const char *check_worker(int i, void *robust_before, cpu_set_t *affinity_before)
{
    static __thread char why[160];
    char name[16] = "", want[16];
    prctl(PR_GET_NAME, name);
    snprintf(want, sizeof want, "w%d", i);
    if (strcmp(name, want) != 0) {
        snprintf(why, sizeof why, "name '%s', not '%s'", name, want);
        return why;
    }
    clockid_t clock;
    struct timespec ts;
    if (pthread_getcpuclockid(pthread_self(), &clock) != 0 || clock_gettime(clock, &ts) != 0)
        return "its CPU-time clock fails (glibc's cached thread id is stale)";
    struct rseq *rs = rseq_area();
    if (rs)
        rs->cpu_id = (uint32_t)-77;
    urg_seen = 0;
    if (raise(SIGURG) != 0 || !urg_seen)
        return "raise() did not reach this thread (glibc's cached thread id is stale)";
    if (rs && rs->cpu_id == (uint32_t)-77)
        return "the kernel no longer updates its rseq area (not registered)";
    if (robust_head() != robust_before)
        return "its robust list is not registered";
    if (i == 0) {
        cpu_set_t now;
        if (sched_getaffinity(0, sizeof now, &now) != 0 || !CPU_EQUAL(&now, affinity_before))
            return "its CPU affinity changed";
        int r = pthread_mutex_unlock(&errorcheck);
        if (r != 0) {
            snprintf(why, sizeof why, "unlocking its error-checking mutex: %s", strerror(r));
            return why;
        }
    }
    if (i == 1) {
        int r = pthread_mutex_lock(&recursive);
        for (int k = 0; k < 3 && r == 0; k++)
            r = pthread_mutex_unlock(&recursive);
        if (r != 0) {
            snprintf(why, sizeof why, "its recursive mutex: %s", strerror(r));
            return why;
        }
    }
    if (i == 2) {
        int r = pthread_mutex_unlock(&robust);
        if (r != 0) {
            snprintf(why, sizeof why, "unlocking its robust mutex: %s", strerror(r));
            return why;
        }
        sigset_t pending;
        sigpending(&pending);
        if (!sigismember(&pending, SIGWINCH))
            return "its pending SIGWINCH is gone";
    }
    if (i == 4) {
        int r = pthread_rwlock_unlock(&rwlock);
        if (r == 0)
            r = pthread_rwlock_tryrdlock(&rwlock);
        if (r == 0)
            r = pthread_rwlock_unlock(&rwlock);
        if (r != 0) {
            snprintf(why, sizeof why, "its write-locked rwlock: %s", strerror(r));
            return why;
        }
    }
    if (i == 5) {
        int r = pthread_mutex_unlock(&pi);
        if (r == 0)
            r = pthread_mutex_lock(&pi);
        if (r == 0)
            r = pthread_mutex_unlock(&pi);
        if (r != 0) {
            snprintf(why, sizeof why, "its priority-inheritance mutex: %s", strerror(r));
            return why;
        }
    }
    return NULL;
}

static void (*take_checkpoint)(void);

static void *worker(void *arg)
{
    int i = (int)(long)arg;
    char name[16];
    snprintf(name, sizeof name, "w%d", i);
    pthread_setname_np(pthread_self(), name);
    cpu_set_t affinity;
    if (i == 0) {
        sched_getaffinity(0, sizeof affinity, &affinity);
        int first = -1;
        for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
            if (CPU_ISSET(c, &affinity))
                first = c;
        CPU_ZERO(&affinity);
        CPU_SET(first, &affinity);
        sched_setaffinity(0, sizeof affinity, &affinity);
        pthread_mutex_lock(&errorcheck);
    }
    if (i == 1) {
        pthread_mutex_lock(&recursive);
        pthread_mutex_lock(&recursive);
    }
    if (i == 2) {
        pthread_mutex_lock(&robust);
        sigset_t winch;
        sigemptyset(&winch);
        sigaddset(&winch, SIGWINCH);
        pthread_sigmask(SIG_BLOCK, &winch, NULL);
        pthread_kill(pthread_self(), SIGWINCH);
    }
    if (i == 4)
        pthread_rwlock_wrlock(&rwlock);
    if (i == 5)
        pthread_mutex_lock(&pi);
    void *robust_before = robust_head();
    atomic_fetch_add(&set_up, 1);
    int spin = i == 3;
    for (;;) {
        if (atomic_load(&checking)) {
            const char *bad = check_worker(i, robust_before, &affinity);
            if (bad)
                say("worker %d BAD: %s\n", i, bad);
            else
                say("worker %d ok\n", i);
            return (void *)(long)(i + 1000);
        }
        atomic_fetch_add(&counts[i], 1);
        if (i == 1 && take_checkpoint && atomic_load(&announced)) {
            void (*take)(void) = take_checkpoint;
            take_checkpoint = NULL;
            take();
        }
        if (!spin)
            sleep_ms(1);
    }
}

static void *cond_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cond_lock);
    atomic_fetch_add(&set_up, 1);
    while (!cond_flag)
        pthread_cond_wait(&cond, &cond_lock);
    pthread_mutex_unlock(&cond_lock);
    say("cond woke\n");
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    atomic_fetch_add(&set_up, 1);
    while (!atomic_load(&wake_sleeper))
        sleep_ms(50);
    say("sleeper woke\n");
    return NULL;
}

static void *sigwaiter(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    atomic_fetch_add(&set_up, 1);
    int sig = 0;
    sigwait(&set, &sig);
    say("sigwait woke: %d\n", sig);
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&set_up, 1);
    while (!atomic_load(&wake_altstack))
        sleep_ms(20);
    stack_t now;
    sigaltstack(NULL, &now);
    say("altstack woke: %s\n", (now.ss_flags & SS_ONSTACK) ? "on it" : "NOT ON IT");
}

static void *altstack_thread(void *arg)
{
    (void)arg;
    static char stack[256 * 1024];
    stack_t ss = { .ss_sp = stack, .ss_size = sizeof stack };
    sigaltstack(&ss, NULL);
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
    sigaction(SIGUSR1, &sa, NULL);
    pthread_kill(pthread_self(), SIGUSR1);
    return NULL;
}

static void commands(void)
{
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "check") == 0)
            return;
        say("echo %s\n", line);
    }
    say("stdin closed\n");
    exit(3);
}

static void take_with_api(void)
{
    int (*ckpt_ckpt)(char *) = (int (*)(char *))dlsym(RTLD_DEFAULT, "ckpt_ckpt");
    if (!ckpt_ckpt) {
        say("no ckpt_ckpt\n");
        exit(4);
    }
    int r = ckpt_ckpt(NULL);
    say("ckpt_ckpt returned %d\n", r);
}

static pthread_t threads[MAX_WORKERS];
static pthread_t others[OTHERS];
static int exit_mode;

static void finish(void)
{
    atomic_store(&checking, 1);
    for (int i = 0; i < workers; i++) {
        void *result;
        pthread_join(threads[i], &result);
        if ((long)result != i + 1000)
            say("worker %d joined with %ld\n", i, (long)result);
    }
    pthread_mutex_lock(&cond_lock);
    cond_flag = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&cond_lock);
    atomic_store(&wake_sleeper, 1);
    atomic_store(&wake_altstack, 1);
    pthread_kill(sigwaiter_thread, SIGUSR2);
    for (int k = 0; k < OTHERS; k++)
        pthread_join(others[k], NULL);
    unsigned long total = 0;
    for (int i = 0; i < workers; i++)
        total += atomic_load(&counts[i]);
    say("done: %s\n", total > 0 ? "counted" : "nothing counted");
    exit(0);
}

static void *commander(void *arg)
{
    (void)arg;
    commands();
    finish();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: threads main|exit|api WORKERS\n");
        return 2;
    }
    exit_mode = strcmp(argv[1], "exit") == 0;
    if (strcmp(argv[1], "api") == 0)
        take_checkpoint = take_with_api;
    workers = atoi(argv[2]);
    if (workers < 4 || workers > MAX_WORKERS) {
        fprintf(stderr, "WORKERS must be 4 to %d\n", MAX_WORKERS);
        return 2;
    }
    signal(SIGURG, on_urg);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&errorcheck, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&recursive, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_STALLED);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&pi, &a);
    /* SIGUSR2 stays blocked in every thread (inherited), so only sigwait takes it. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);

    for (long i = 0; i < workers; i++)
        pthread_create(&threads[i], NULL, worker, (void *)i);
    void *(*fns[OTHERS])(void *) = { cond_waiter, sleeper, sigwaiter, altstack_thread };
    for (int k = 0; k < OTHERS; k++)
        pthread_create(&others[k], NULL, fns[k], NULL);
    sigwaiter_thread = others[2];
    while (atomic_load(&set_up) < workers + OTHERS)
        sleep_ms(1);
    sleep_ms(20);
    say("ready\n");
    atomic_store(&announced, 1);
    if (exit_mode) {
        pthread_t t;
        pthread_create(&t, NULL, commander, NULL);
        pthread_exit(NULL);
    }
    commands();
    finish();
}
