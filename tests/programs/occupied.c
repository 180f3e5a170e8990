/* Holds mappings exactly where the restart stub would like to sit (the writer's preferred
 * addresses, 16, 32 and 48 TiB, and a 64 MiB block around the first), so the checkpoint
 * must find another place for it, and the restart must bring these back untouched.
 * Prints "ready", then "ok N" per round after checking them; "BAD ..." on a failure. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "common.h"

static const uintptr_t wanted[] = { 0x100000000000UL - (32UL << 20), 0x200000000000UL, 0x300000000000UL };
static const size_t sizes[] = { 64UL << 20, 4096, 4096 };

int main(void)
{
    setvbuf(stdout, 0, _IOLBF, 0);
    uint64_t *maps[3];
    for (int i = 0; i < 3; i++) {
        maps[i] = mmap((void *)wanted[i], sizes[i], PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (maps[i] != (void *)wanted[i]) {
            printf("BAD cannot map at %#lx\n", (unsigned long)wanted[i]);
            return 1;
        }
        for (size_t j = 0; j < sizes[i] / 8; j += 512)
            maps[i][j] = mix64(wanted[i] + j);
    }
    printf("ready\n");
    for (unsigned long round = 1;; round++) {
        for (int i = 0; i < 3; i++)
            for (size_t j = 0; j < sizes[i] / 8; j += 512)
                if (maps[i][j] != mix64(wanted[i] + j)) {
                    printf("BAD round %lu: mapping %d word %zu\n", round, i, j);
                    return 1;
                }
        printf("ok %lu\n", round);
        sleep_ms(10);
    }
}
