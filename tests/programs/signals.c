/* Sets up signal state and checks, every 10 ms, that it is all still there:
 *   - a SIGUSR1 handler with SA_SIGINFO | SA_ONSTACK | SA_RESTART and SIGWINCH in its mask;
 *   - SIGPIPE ignored;
 *   - SIGUSR2 and SIGRTMIN+2 blocked, SIGUSR1 and SIGTSTP not;
 *   - an alternate signal stack (a static buffer), not in use.
 * Every 10th tick it sends itself SIGUSR1 — with kill(getpid(), ...) or, given the argument
 * "raise", with raise(), which in glibc signals the thread id cached in the thread's TCB —
 * and checks that the handler ran, on the alternate stack.
 * Prints "ready", then "ok N" per tick; on a failed check "BAD ..." and exits 1. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static char altstack[64 * 1024] __attribute__((aligned(16)));
static volatile sig_atomic_t handled;
static volatile sig_atomic_t ran_on_altstack;

static void on_usr1(int sig, siginfo_t *info, void *context)
{
    char here;
    (void)sig;
    (void)info;
    (void)context;
    handled++;
    ran_on_altstack = &here >= altstack && &here < altstack + sizeof altstack;
}

static void bad(unsigned long tick, const char *what)
{
    printf("BAD tick %lu: %s\n", tick, what);
    fflush(stdout);
    exit(1);
}

static void check(unsigned long tick)
{
    struct sigaction current;
    if (sigaction(SIGUSR1, NULL, &current) != 0)
        bad(tick, "sigaction(SIGUSR1) failed");
    if (!(current.sa_flags & SA_SIGINFO) || current.sa_sigaction != on_usr1)
        bad(tick, "SIGUSR1 handler lost");
    if ((current.sa_flags & (SA_ONSTACK | SA_RESTART)) != (SA_ONSTACK | SA_RESTART))
        bad(tick, "SIGUSR1 flags lost (SA_ONSTACK | SA_RESTART)");
    if (!sigismember(&current.sa_mask, SIGWINCH) || sigismember(&current.sa_mask, SIGINT))
        bad(tick, "SIGUSR1 handler mask changed");

    if (sigaction(SIGPIPE, NULL, &current) != 0 || current.sa_handler != SIG_IGN)
        bad(tick, "SIGPIPE no longer ignored");

    sigset_t mask;
    if (sigprocmask(SIG_BLOCK, NULL, &mask) != 0)
        bad(tick, "sigprocmask failed");
    if (!sigismember(&mask, SIGUSR2) || !sigismember(&mask, SIGRTMIN + 2))
        bad(tick, "blocked signals no longer blocked (SIGUSR2, SIGRTMIN+2)");
    if (sigismember(&mask, SIGUSR1) || sigismember(&mask, SIGTSTP))
        bad(tick, "signals blocked that were not (SIGUSR1 or SIGTSTP)");

    stack_t stack;
    if (sigaltstack(NULL, &stack) != 0)
        bad(tick, "sigaltstack failed");
    if (stack.ss_sp != altstack || stack.ss_size != sizeof altstack || stack.ss_flags != 0) {
        printf("BAD tick %lu: sigaltstack is %p+%zu flags %d, expected %p+%zu flags 0\n", tick,
               stack.ss_sp, stack.ss_size, stack.ss_flags, (void *)altstack, sizeof altstack);
        fflush(stdout);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int use_raise = argc > 1 && strcmp(argv[1], "raise") == 0;

    stack_t stack = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    if (sigaltstack(&stack, NULL) != 0)
        bad(0, "cannot set sigaltstack");

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_usr1;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGWINCH);
    if (sigaction(SIGUSR1, &action, NULL) != 0)
        bad(0, "cannot install SIGUSR1 handler");
    signal(SIGPIPE, SIG_IGN);

    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGRTMIN + 2);
    if (sigprocmask(SIG_BLOCK, &block, NULL) != 0)
        bad(0, "cannot block signals");

    puts("ready");
    fflush(stdout);

    for (unsigned long tick = 1;; tick++) {
        check(tick);
        if (tick % 10 == 0) {
            sig_atomic_t before = handled;
            ran_on_altstack = 0;
            int result = use_raise ? raise(SIGUSR1) : kill(getpid(), SIGUSR1);
            if (result != 0) {
                printf("BAD tick %lu: %s(SIGUSR1) failed: %s\n", tick,
                       use_raise ? "raise" : "kill", strerror(errno));
                fflush(stdout);
                exit(1);
            }
            if (handled != before + 1)
                bad(tick, "SIGUSR1 handler did not run");
            if (!ran_on_altstack)
                bad(tick, "SIGUSR1 handler did not run on the alternate stack");
        }
        printf("ok %lu\n", tick);
        fflush(stdout);
        sleep_ms(10);
    }
}
