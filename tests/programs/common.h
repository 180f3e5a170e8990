/* Shared by the test programs: sleeping without drifting on EINTR, and a 64-bit mixer
 * for patterns. Included textually (the tests compile each program as one file). */
#ifndef CKPT_TEST_COMMON_H
#define CKPT_TEST_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

/* Sleeps `ms` milliseconds. A signal (such as a checkpoint) does not cut the sleep short:
 * the rest is slept after the handler returns, in the original or the restarted process. */
__attribute__((unused)) static void sleep_ms(long ms)
{
    struct timespec left = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
}

/* splitmix64: a cheap bijective mixer, for patterns that differ per byte and per round. */
__attribute__((unused)) static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The protocol of the descriptor tests (tests/support/fdrun.rs), for a program that defines
 * CKPT_TEST_GO before it includes this: wait_go() prints "ready" and waits for a line on
 * stdin ("go"), which the test sends after the restart (a read the checkpoint interrupted is
 * restarted); die() says what failed and exits 2. */
#ifdef CKPT_TEST_GO
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void wait_go(void)
{
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        printf("no go: %s\n", strerror(errno));
        exit(3);
    }
}

static void die(const char *what)
{
    printf("error: %s: %s\n", what, strerror(errno));
    exit(2);
}
#endif

#endif
