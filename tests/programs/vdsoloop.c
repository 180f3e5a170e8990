/* Spends nearly all its time inside the vDSO: clock_gettime in a tight loop. Prints "ready",
 * then every 100000 calls "ok N" (N counts the reports), or "BAD …" if the clock goes back.
 * With an argument THREADS, that many threads in all run the same loop (only the first
 * prints), each made before "ready". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *spin(void *report)
{
    struct timespec t, last = { 0, 0 };
    for (unsigned long n = 1;; n++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec < last.tv_sec || (t.tv_sec == last.tv_sec && t.tv_nsec < last.tv_nsec)) {
            printf("BAD the clock went back\n");
            exit(1);
        }
        last = t;
        if (report && n % 100000 == 0) {
            printf("ok %lu\n", n / 100000);
            fflush(stdout);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 1; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, spin, NULL) != 0) {
            printf("BAD pthread_create\n");
            return 1;
        }
    }
    puts("ready");
    fflush(stdout);
    spin("report");
}
