/* Memory that the restart may fill in huge pages, and memory it must not (issue 16). Inside
 * a PROT_NONE reservation, separate read-write mappings:
 *   dense     64 MiB starting 8 KiB past a 2 MiB boundary, every byte written;
 *   sparse    32 MiB with one page written every 64 KiB and a 1 MiB run (no 2 MiB range
 *             of it is whole);
 *   nohuge    8 MiB, MADV_NOHUGEPAGE, every byte written;
 *   hugepage  8 MiB, MADV_HUGEPAGE, every byte written;
 * and malloc'd 16 MiB, every byte written. Each round it checks every byte of each against
 * its pattern (zeros where nothing was written) and prints per mapping
 *   "region NAME rss KB huge KB flags F…"  (Rss and AnonHugePages of /proc/self/smaps, its
 *                                           VmFlags less sd)
 * then "ok N"; or "BAD …" when a byte is wrong. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

#define MIB (1UL << 20)
#define HUGE_PAGE (2 * MIB)
#define PAGE 4096UL

struct region {
    const char *name;
    uint8_t *at;
    size_t len;
    int sparse;
};

/* The word at offset `i` (a multiple of 8) of region `k`, where it was written. */
static uint64_t pattern(int k, size_t i)
{
    return mix64(((uint64_t)k << 40) ^ (i / 8));
}

/* Whether the sparse region's page at offset `i` was written. */
static int written(size_t i)
{
    size_t page = i / PAGE * PAGE;
    return page % (64 * 1024) == 0 || (page >= 8 * MIB && page < 9 * MIB);
}

static void fill(int k, struct region *r)
{
    for (size_t i = 0; i < r->len; i += 8)
        if (!r->sparse || written(i))
            *(uint64_t *)(r->at + i) = pattern(k, i);
}

/* Every byte, a word at a time. */
static int check(int k, struct region *r)
{
    for (size_t i = 0; i < r->len; i += 8) {
        uint64_t want = !r->sparse || written(i) ? pattern(k, i) : 0;
        uint64_t got = *(uint64_t *)(r->at + i);
        if (got != want) {
            printf("BAD %s word at %zu is %#lx, not %#lx\n", r->name, i, (unsigned long)got,
                   (unsigned long)want);
            return 0;
        }
    }
    return 1;
}

static void report(struct region *r)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512], flags[256] = "?";
    long rss = -1, huge = -1;
    int inside = 0;
    uintptr_t addr = (uintptr_t)r->at;
    if (!f) {
        printf("BAD cannot open /proc/self/smaps\n");
        return;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
            if (inside)
                break;
            inside = lo <= addr && addr < hi;
        } else if (inside) {
            sscanf(line, "Rss: %ld kB", &rss);
            sscanf(line, "AnonHugePages: %ld kB", &huge);
            if (strncmp(line, "VmFlags:", 8) == 0) {
                flags[0] = 0;
                for (char *tok = strtok(line + 8, " \n"); tok; tok = strtok(NULL, " \n"))
                    if (strcmp(tok, "sd") != 0) {
                        strcat(flags, " ");
                        strcat(flags, tok);
                    }
            }
        }
    }
    fclose(f);
    printf("region %s rss %ld huge %ld flags%s\n", r->name, rss, huge, flags);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t total = 256 * MIB;
    uint8_t *raw = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        printf("BAD mmap\n");
        return 1;
    }
    uint8_t *base = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    struct region regions[] = {
        { "dense", base + 2 * PAGE, 64 * MIB, 0 },
        { "sparse", base + 70 * MIB, 32 * MIB, 1 },
        { "nohuge", base + 104 * MIB, 8 * MIB, 0 },
        { "hugepage", base + 114 * MIB, 8 * MIB, 0 },
        { "malloc", malloc(16 * MIB), 16 * MIB, 0 },
    };
    const int n = sizeof regions / sizeof regions[0];
    for (int k = 0; k < n; k++) {
        struct region *r = &regions[k];
        if (!r->at || (r->at >= base && r->at < raw + total &&
                       mprotect(r->at, r->len, PROT_READ | PROT_WRITE) != 0)) {
            printf("BAD cannot map %s\n", r->name);
            return 1;
        }
    }
    madvise(regions[2].at, regions[2].len, MADV_NOHUGEPAGE);
    madvise(regions[3].at, regions[3].len, MADV_HUGEPAGE);
    for (int k = 0; k < n; k++)
        fill(k, &regions[k]);
    for (unsigned long round = 1;; round++) {
        for (int k = 0; k < n; k++) {
            if (!check(k, &regions[k]))
                return 1;
            report(&regions[k]);
        }
        printf("ok %lu\n", round);
        sleep_ms(200);
    }
}
