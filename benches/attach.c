/* The target of benches/attach.py: a program NOT started under ckpt that sleeps 1 ms at a
 * time (so that `ckpt attach` finds it blocked in a system call) and records the longest
 * delay past each 1 ms sleep: the pause something done to it from outside costs it.
 * Prints "ready", then on SIGUSR1 "pause <longest delay in ns>" and exits. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "common.h"

static volatile sig_atomic_t done;

static void on_usr1(int sig)
{
    (void)sig;
    done = 1;
}

int main(void)
{
    signal(SIGUSR1, on_usr1);
    printf("ready\n");
    fflush(stdout);
    const uint64_t period = 1000000;
    uint64_t last = now_ns(CLOCK_MONOTONIC), worst = 0;
    while (!done) {
        struct timespec ts = {0, (long)period};
        nanosleep(&ts, NULL);
        uint64_t t = now_ns(CLOCK_MONOTONIC);
        if (t - last > period && t - last - period > worst)
            worst = t - last - period;
        last = t;
    }
    printf("pause %llu\n", (unsigned long long)worst);
    return 0;
}
