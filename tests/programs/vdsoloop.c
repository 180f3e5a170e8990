/* Spends nearly all its time inside the vDSO: clock_gettime in a tight loop. Prints "ready",
 * then every 100000 calls "ok N" (N counts the reports), or "BAD …" if the clock goes back. */
#include <stdio.h>
#include <time.h>

int main(void)
{
    struct timespec t, last = { 0, 0 };
    puts("ready");
    fflush(stdout);
    for (unsigned long n = 1;; n++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec < last.tv_sec || (t.tv_sec == last.tv_sec && t.tv_nsec < last.tv_nsec)) {
            printf("BAD the clock went back\n");
            return 1;
        }
        last = t;
        if (n % 100000 == 0) {
            printf("ok %lu\n", n / 100000);
            fflush(stdout);
        }
    }
}
