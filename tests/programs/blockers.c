/* Threads that block every signal, ckpt's too, past its wrappers (a raw rt_sigprocmask):
 * they cannot park for a checkpoint and are stopped from outside, with ptrace. After a
 * restart each must go on with its registers intact. For tests/threads.rs.
 *
 * Usage: blockers [noptrace]
 *   The threads: a spinner counting in a loop, a floating-point loop that checks its own
 *   sums (kept in registers), a thread in sigwaitinfo for SIGUSR2, and glibc's helper thread
 *   for a SIGEV_THREAD timer (it blocks every signal itself) whose callbacks count ticks.
 *   With "noptrace" the process forbids ptrace with a seccomp filter first: a checkpoint
 *   must then fail, naming a thread, and the program go on.
 * Prints "ready", then, for the line "check" on stdin: "spinner ok", "fp ok", "timer ok"
 * (each: it made progress since; else "... BAD: why"), "sigwait woke: 12", "done". */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static atomic_ulong spins, fp_rounds, ticks;
static atomic_int fp_bad, set_up;

static void block_everything(void)
{
    uint64_t all = ~0ULL;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
}

static void *spinner(void *arg)
{
    (void)arg;
    block_everything();
    atomic_fetch_add(&set_up, 1);
    for (;;) {
        atomic_fetch_add(&spins, 1);
        sleep_ms(1);
    }
}

/* Sums 0.5 * j for j = 1..2^20 in a register and compares with the closed form, exact in
 * a double; a register lost or garbled at a restart shows as a wrong sum. */
static void *fp_worker(void *arg)
{
    (void)arg;
    block_everything();
    atomic_fetch_add(&set_up, 1);
    for (;;) {
        double x = 0.0, half = 0.5;
        const unsigned long n = 1UL << 20;
        for (unsigned long j = 1; j <= n; j++)
            x += half * (double)j;
        if (x != 0.25 * (double)n * (double)(n + 1))
            atomic_store(&fp_bad, 1);
        atomic_fetch_add(&fp_rounds, 1);
        sleep_ms(1);
    }
}

static void *sigwaiter(void *arg)
{
    (void)arg;
    block_everything();
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    atomic_fetch_add(&set_up, 1);
    int sig;
    while ((sig = sigwaitinfo(&usr2, NULL)) == -1 && errno == EINTR) {
    }
    printf("sigwait woke: %d\n", sig);
    fflush(stdout);
    return NULL;
}

static void on_tick(union sigval v)
{
    (void)v;
    atomic_fetch_add(&ticks, 1);
}

static void forbid_ptrace(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ptrace, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof filter / sizeof filter[0], .filter = filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        perror("seccomp");
        exit(2);
    }
}

static const char *progress(const char *what, atomic_ulong *counter)
{
    unsigned long before = atomic_load(counter);
    for (int k = 0; k < 500 && atomic_load(counter) == before; k++)
        sleep_ms(10);
    if (atomic_load(counter) == before)
        printf("%s BAD: no progress\n", what);
    else
        printf("%s ok\n", what);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "noptrace") == 0)
        forbid_ptrace();
    /* SIGUSR2 only for the sigwaiter (blocked here, inherited). */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    pthread_t t[3];
    pthread_create(&t[0], NULL, spinner, NULL);
    pthread_create(&t[1], NULL, fp_worker, NULL);
    pthread_create(&t[2], NULL, sigwaiter, NULL);
    struct sigevent sev = { .sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_tick };
    timer_t timer;
    struct itimerspec every = { { 0, 10000000 }, { 0, 10000000 } };
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0 || timer_settime(timer, 0, &every, NULL) != 0) {
        perror("timer");
        return 2;
    }
    while (atomic_load(&set_up) < 3 || atomic_load(&ticks) < 2 || atomic_load(&fp_rounds) < 1)
        sleep_ms(1);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "check", 5) != 0) {
            printf("echo %s", line);
            fflush(stdout);
            continue;
        }
        progress("spinner", &spins);
        progress("fp", &fp_rounds);
        if (atomic_load(&fp_bad))
            printf("fp BAD: wrong sum\n");
        progress("timer", &ticks);
        fflush(stdout);
        pthread_kill(t[2], SIGUSR2);
        pthread_join(t[2], NULL);
        printf("done\n");
        return 0;
    }
    return 3;
}
