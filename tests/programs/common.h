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

#endif
