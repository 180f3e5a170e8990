/* What the benchmark programs share: the clock in nanoseconds, the restart hook that
 * prints "restarted <CLOCK_REALTIME ns>" first thing after a restart (the restart time is
 * measured up to it), and how memory is filled. Included by workload.c and threads.c. */
#include <stddef.h>
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

/* Fills `bytes` (whole pages) at `p`: half of each page is noise (from `seed`), half a
 * repeated word: compressible about 2:1, like much real memory, and no page is zero. */
static void fill_pages(unsigned char *p, size_t bytes, uint64_t seed)
{
    uint64_t x = 0x9e3779b97f4a7c15u ^ seed;
    for (size_t i = 0; i < bytes; i += 4096) {
        uint64_t *w = (uint64_t *)(p + i);
        for (int k = 0; k < 256; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w[k] = x;
        }
        for (int k = 256; k < 512; k++)
            w[k] = i | 1;
    }
}
