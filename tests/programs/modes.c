/* Memory that every restore mode must bring back the same: 64 MiB of a pattern, a sparse
 * reservation with a few pages, a read-only copy, a PROT_NONE page with data, and a page
 * the program rewrites on every tick (a journal of the counter). Prints "ready", then
 * "tick N" every 5 ms. After a restart (its pid changed) it checks everything, prints
 * "memory ok" or "BAD <what>", writes to the restored memory (copy-on-write in the lazy
 * mode) and checks that too, then ticks on. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

#define BIG (64u << 20)
#define SPARSE ((size_t)4 << 30)

static uint64_t *big, *journal;
static unsigned char *sparse, *ro, *none;

static int check(uint64_t tick)
{
    for (size_t i = 0; i < BIG / 8; i++)
        if (big[i] != mix64(i)) {
            printf("BAD big[%zu]\n", i);
            return 0;
        }
    for (size_t k = 0; k < 8; k++)
        for (size_t j = 0; j < 4096; j++)
            if (sparse[k * (SPARSE / 8) + j] != (unsigned char)(k * 31 + j)) {
                printf("BAD sparse piece %zu\n", k);
                return 0;
            }
    for (size_t j = 0; j < 8192; j++)
        if (ro[j] != (unsigned char)(j * 7)) {
            printf("BAD read-only\n");
            return 0;
        }
    mprotect(none, 4096, PROT_READ);
    int none_ok = none[0] == 0x5a && none[4095] == 0xa5;
    mprotect(none, 4096, PROT_NONE);
    if (!none_ok) {
        printf("BAD PROT_NONE contents\n");
        return 0;
    }
    if (journal[0] != tick || journal[1] != ~tick) {
        printf("BAD journal %llu for tick %llu\n", (unsigned long long)journal[0], (unsigned long long)tick);
        return 0;
    }
    return 1;
}

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    big = mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sparse = mmap(0, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ro = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    none = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    journal = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (big == MAP_FAILED || sparse == MAP_FAILED || ro == MAP_FAILED || none == MAP_FAILED || journal == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < BIG / 8; i++)
        big[i] = mix64(i);
    for (size_t k = 0; k < 8; k++)
        for (size_t j = 0; j < 4096; j++)
            sparse[k * (SPARSE / 8) + j] = (unsigned char)(k * 31 + j);
    for (size_t j = 0; j < 8192; j++)
        ro[j] = (unsigned char)(j * 7);
    mprotect(ro, 8192, PROT_READ);
    none[0] = 0x5a;
    none[4095] = 0xa5;
    mprotect(none, 4096, PROT_NONE);

    pid_t pid = getpid();
    printf("ready\n");
    for (uint64_t tick = 1;; tick++) {
        journal[0] = tick;
        journal[1] = ~tick;
        printf("tick %llu\n", (unsigned long long)tick);
        sleep_ms(5);
        if (getpid() != pid) {
            pid = getpid();
            if (!check(tick))
                return 1;
            /* Writing restored memory must work and stick (copy-on-write when lazy). */
            big[12345] ^= 1;
            big[12345] ^= 1;
            sparse[3] = 3;
            if (big[12345] != mix64(12345) || sparse[3] != 3) {
                printf("BAD write after restart\n");
                return 1;
            }
            sparse[3] = (unsigned char)(0 * 31 + 3);
            printf("memory ok\n");
        }
    }
}
