/* What the benchmark programs share: the clock in nanoseconds, and the restart hook that
 * prints "restarted <CLOCK_REALTIME ns>" first thing after a restart (the restart time is
 * measured up to it). Included by workload.c and threads.c. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Present when libckpt is preloaded; weak so that the program also runs without it. */
extern void ckpt_on_restart(void (*f)(void *), void *arg) __attribute__((weak));

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_restart(void *arg)
{
    (void)arg;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "restarted %llu\n", (unsigned long long)now_ns(CLOCK_REALTIME));
    if (write(1, buf, (size_t)n) < 0) {
    }
}
