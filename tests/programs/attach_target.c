/* A program that was NOT started under ckpt, for `ckpt attach` (tests/attach.rs). It prints
 * "pid N", then works in one of these modes:
 *   count     a number every 100 ms (the counter a checkpoint must carry on);
 *   nodump    prctl(PR_SET_DUMPABLE, 0), then count;
 *   seccomp   a seccomp filter that allows everything, then count;
 *   signals   a handler for SIGUSR1, SIGUSR2 ignored, SIGHUP blocked, then count; each
 *             SIGUSR1 makes it print "env NAME=VALUE" (or "env NAME unset") for CKPT_NAME
 *             and CKPT_ASYNCSIG, so the test sees its environment after an attach;
 *   malloc    a busy malloc/free loop that never blocks, printing a number every so often;
 *   threads   the count in a second thread, while the main thread waits in pthread_join
 *             (a futex wait: ckpt attach must use the other thread);
 *   rt        counts SIGRTMIN+1 signals and sums their values; each SIGUSR1 makes it print
 *             "got COUNT sum SUM" (no signal may be lost while ckpt attach holds them).
 * The numbers are the only lines that parse as numbers. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t asked;

static void on_usr1(int sig)
{
    (void)sig;
    asked = 1;
}

static volatile long rt_count, rt_sum;

static void on_rt(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)context;
    rt_count++;
    rt_sum += info->si_value.sival_int;
}

static void show(const char *name)
{
    const char *value = getenv(name);
    if (value)
        printf("env %s=%s\n", name, value);
    else
        printf("env %s unset\n", name);
}

static void count_forever(void)
{
    for (long n = 0;; n++) {
        if (asked) {
            asked = 0;
            show("CKPT_NAME");
            show("CKPT_ASYNCSIG");
        }
        printf("%ld\n", n);
        fflush(stdout);
        sleep_ms(100);
    }
}

static void *counting_thread(void *arg)
{
    (void)arg;
    count_forever();
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "count";
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    if (strcmp(mode, "nodump") == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        perror("prctl");
        return 2;
    }
    if (strcmp(mode, "seccomp") == 0) {
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {.len = 1, .filter = &allow};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
            perror("seccomp");
            return 2;
        }
    }
    if (strcmp(mode, "signals") == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_usr1;
        sigaction(SIGUSR1, &action, NULL);
        signal(SIGUSR2, SIG_IGN);
        sigset_t hup;
        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        sigprocmask(SIG_BLOCK, &hup, NULL);
    }
    if (strcmp(mode, "rt") == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = on_rt;
        action.sa_flags = SA_SIGINFO | SA_RESTART;
        sigaction(SIGRTMIN + 1, &action, NULL);
        memset(&action, 0, sizeof action);
        action.sa_handler = on_usr1;
        sigaction(SIGUSR1, &action, NULL);
        for (long n = 0;; n++) {
            if (asked) {
                asked = 0;
                printf("got %ld sum %ld\n", rt_count, rt_sum);
            }
            printf("%ld\n", n);
            fflush(stdout);
            sleep_ms(20);
        }
    }
    if (strcmp(mode, "malloc") == 0) {
        for (unsigned long i = 0;; i++) {
            void *p[16];
            for (int j = 0; j < 16; j++)
                p[j] = malloc(16 + (size_t)((i * 7 + j * 131) % 4096));
            for (int j = 0; j < 16; j++)
                free(p[j]);
            if (i % (1UL << 16) == 0) {
                printf("%lu\n", i >> 16);
                fflush(stdout);
            }
        }
    }
    if (strcmp(mode, "threads") == 0) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, counting_thread, NULL) != 0) {
            perror("pthread_create");
            return 2;
        }
        pthread_join(thread, NULL);
        return 0;
    }
    count_forever();
}
