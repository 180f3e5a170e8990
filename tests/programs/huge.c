/* Transparent huge pages through a checkpoint: 16 MiB, 2 MiB-aligned, madvise(MADV_HUGEPAGE)
 * and filled with a pattern. Prints "ready huge K" (K: kB of that memory in huge pages, per
 * /proc/self/smaps), then per round "ok N huge K", or "BAD …" when the pattern is wrong. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

#define SIZE (16UL << 20)
#define HUGE_PAGE (2UL << 20)

/* kB of the mapping containing `addr` in anonymous huge pages; -1 if not found. */
static long anon_huge_kb(uintptr_t addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int inside = 0;
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-')
            inside = lo <= addr && addr < hi;
        else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *raw = mmap(NULL, SIZE + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (raw == MAP_FAILED) {
        printf("BAD mmap\n");
        return 1;
    }
    uint64_t *p = (uint64_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    madvise(p, SIZE, MADV_HUGEPAGE);
    size_t words = SIZE / 8;
    for (size_t i = 0; i < words; i++)
        p[i] = mix64(i);
    printf("ready huge %ld\n", anon_huge_kb((uintptr_t)p));
    for (unsigned long round = 1;; round++) {
        for (size_t i = 0; i < words; i += 509) {
            if (p[i] != mix64(i)) {
                printf("BAD word %zu\n", i);
                return 1;
            }
        }
        printf("ok %lu huge %ld\n", round, anon_huge_kb((uintptr_t)p));
        sleep_ms(10);
    }
}
