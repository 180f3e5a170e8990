/* OpenMP parallel reductions, repeated: libgomp's thread pool through a checkpoint.
 *
 * Usage: omp_reduce ROUNDS ELEMENTS STEPS SERIAL_MS
 *
 * Round r sums, over i in [0, ELEMENTS), the value of x = i + r after STEPS steps of the
 * 64-bit LCG x = x * A + C, in a `parallel for reduction(+:sum)` (mod 2^64, so the order of
 * the additions does not matter). The LCG is affine, so the test can work out every round's
 * sum in closed form. Between rounds the main thread works alone for SERIAL_MS milliseconds
 * (busy, not asleep), long enough that the pool's idle threads stop spinning and wait on
 * their futex: checkpoints land in both states.
 *
 * Prints "ready THREADS" after the first parallel region (the pool exists by then),
 * "round R SUM" after every round, and "total SUM" (the sum of the round sums) at the end. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define A 6364136223846793005ULL
#define C 1442695040888963407ULL

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: omp_reduce ROUNDS ELEMENTS STEPS SERIAL_MS\n");
        return 2;
    }
    long rounds = atol(argv[1]);
    long elements = atol(argv[2]);
    long steps = atol(argv[3]);
    double serial_ms = atof(argv[4]);

    int threads = 0;
#pragma omp parallel
    {
#pragma omp single
        threads = omp_get_num_threads();
    }
    printf("ready %d\n", threads);
    fflush(stdout);

    uint64_t total = 0;
    volatile uint64_t spin = 0;
    for (long r = 0; r < rounds; r++) {
        uint64_t sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
        for (long i = 0; i < elements; i++) {
            uint64_t x = (uint64_t)i + (uint64_t)r;
            for (long s = 0; s < steps; s++) {
                x = x * A + C;
            }
            sum += x;
        }
        total += sum;
        printf("round %ld %llu\n", r, (unsigned long long)sum);
        fflush(stdout);
        double until = now_ms() + serial_ms;
        while (now_ms() < until) {
            spin++;
        }
    }
    printf("total %llu\n", (unsigned long long)total);
    return 0;
}
