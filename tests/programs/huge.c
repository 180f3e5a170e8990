/* Transparent huge pages through a checkpoint: 16 MiB, 2 MiB-aligned, madvise(MADV_HUGEPAGE)
 * and filled with a pattern; with argv[1] "collapse", filled and then collapsed into huge
 * pages with MADV_COLLAPSE, without asking for them. Prints "ready huge K hg A" (K: kB of
 * that memory in huge pages, A: 1 if its VmFlags hold hg, per /proc/self/smaps), then per
 * round "ok N huge K hg A", or "BAD …" when the pattern is wrong. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

#define SIZE (16UL << 20)
#define HUGE_PAGE (2UL << 20)

#define MADV_COLLAPSE_ 25

/* Whether the mapping containing `addr` was asked for huge pages (hg in VmFlags). */
static int advised(uintptr_t addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int inside = 0, hg = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-')
            inside = lo <= addr && addr < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            hg = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return hg;
}

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

int main(int argc, char **argv)
{
    int collapse = argc > 1 && strcmp(argv[1], "collapse") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *raw = mmap(NULL, SIZE + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (raw == MAP_FAILED) {
        printf("BAD mmap\n");
        return 1;
    }
    uint64_t *p = (uint64_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    if (!collapse)
        madvise(p, SIZE, MADV_HUGEPAGE);
    size_t words = SIZE / 8;
    for (size_t i = 0; i < words; i++)
        p[i] = mix64(i);
    if (collapse)
        madvise(p, SIZE, MADV_COLLAPSE_);
    printf("ready huge %ld hg %d\n", anon_huge_kb((uintptr_t)p), advised((uintptr_t)p));
    for (unsigned long round = 1;; round++) {
        for (size_t i = 0; i < words; i += 509) {
            if (p[i] != mix64(i)) {
                printf("BAD word %zu\n", i);
                return 1;
            }
        }
        printf("ok %lu huge %ld hg %d\n", round, anon_huge_kb((uintptr_t)p),
               advised((uintptr_t)p));
        sleep_ms(10);
    }
}
