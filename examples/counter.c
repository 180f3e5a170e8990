/* counter: prints 1, 2, 3, ... one per line, forever.
 *
 *     usage: counter [INTERVAL_MS]     (default 100)
 *
 * The demo program for ckpt: run it as `ckpt ./counter`, press ^Z (or `kill -TSTP PID`),
 * then run ./counter.ckpt and watch it count on from where it stopped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    long interval_ms = argc > 1 ? atol(argv[1]) : 100;
    if (interval_ms < 0) {
        fprintf(stderr, "usage: counter [INTERVAL_MS]\n");
        return 2;
    }
    for (unsigned long n = 1;; n++) {
        printf("%lu\n", n);
        fflush(stdout);
        struct timespec left = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
        /* A signal handler (a checkpoint, say) interrupts the sleep: sleep the rest. */
        while (nanosleep(&left, &left) == -1 && errno == EINTR) {
        }
    }
}
