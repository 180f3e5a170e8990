/* The incremental-checkpoint benchmark's program (benches/incremental.py): MIB MiB of
 * memory, every page written, then it waits. SIGUSR1 writes one word in 1% of its pages,
 * chosen at random (a new choice each time), and prints "changed <pages>"; SIGUSR2 ends it. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t change, quit;

static void on_usr1(int sig) { (void)sig; change = 1; }
static void on_usr2(int sig) { (void)sig; quit = 1; }

int main(int argc, char **argv)
{
    size_t bytes = (argc > 1 ? strtoul(argv[1], 0, 10) : 1024) << 20;
    size_t pages = bytes / 4096;
    unsigned char *p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < bytes; i += 4096)
        p[i] = (unsigned char)(i >> 12 | 1);
    uint64_t x = (uint64_t)time(0) | 1;
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    printf("ready\n");
    fflush(stdout);
    while (!quit) {
        if (change) {
            change = 0;
            for (size_t n = 0; n < pages / 100; n++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((uint64_t *)(p + (x % pages) * 4096))[x >> 58] = x;
            }
            printf("changed %zu\n", pages / 100);
            fflush(stdout);
        }
        usleep(1000);
    }
    return 0;
}
