/* Calls the vDSO-backed clock functions every 20 ms: clock_gettime(CLOCK_MONOTONIC),
 * clock_gettime(CLOCK_REALTIME), gettimeofday() and time(). Checks that the monotonic clock
 * never goes back (the last value before a checkpoint is in memory, and the restarted
 * process runs on the same machine) and that the three wall clocks agree within a second.
 * Prints "ready", then "ok N REALTIME_SECONDS" per round; on a failed check "BAD ..." and
 * exits 1. A vDSO left at a stale address makes the first call after restart crash. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "common.h"

static long long nanoseconds(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(void)
{
    long long previous = 0;
    puts("ready");
    fflush(stdout);
    for (unsigned long round = 1;; round++) {
        struct timespec monotonic, realtime;
        struct timeval wall;
        if (clock_gettime(CLOCK_MONOTONIC, &monotonic) != 0 ||
            clock_gettime(CLOCK_REALTIME, &realtime) != 0 || gettimeofday(&wall, NULL) != 0) {
            printf("BAD round %lu: clock call failed\n", round);
            return 1;
        }
        time_t seconds = time(NULL);

        long long now = nanoseconds(&monotonic);
        if (now < previous) {
            printf("BAD round %lu: CLOCK_MONOTONIC went back from %lld to %lld\n", round,
                   previous, now);
            return 1;
        }
        previous = now;
        long long wall_ns = (long long)wall.tv_sec * 1000000000LL + wall.tv_usec * 1000LL;
        long long skew = nanoseconds(&realtime) - wall_ns;
        if (skew > 1000000000LL || skew < -1000000000LL ||
            seconds - realtime.tv_sec > 1 || realtime.tv_sec - seconds > 1) {
            printf("BAD round %lu: wall clocks disagree: clock_gettime %lld.%09ld, "
                   "gettimeofday %lld.%06ld, time %lld\n",
                   round, (long long)realtime.tv_sec, realtime.tv_nsec,
                   (long long)wall.tv_sec, (long)wall.tv_usec, (long long)seconds);
            return 1;
        }
        printf("ok %lu %lld\n", round, (long long)realtime.tv_sec);
        fflush(stdout);
        sleep_ms(20);
    }
}
