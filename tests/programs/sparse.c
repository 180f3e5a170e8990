/* Reserves 32 GiB twice — once PROT_READ|PROT_WRITE with MAP_NORESERVE, once PROT_NONE —
 * and writes a pattern into a handful of pages of the first. A checkpoint must store only
 * those pages (the file stays small) and bring back both reservations whole.
 * Every 20 ms it checks the written pages, that some untouched pages read as zero, and the
 * permissions and extent of both reservations in /proc/self/maps.
 * Prints "ready", then "ok N" per round; on a failed check "BAD ..." and exits 1. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

#define PAGE 4096UL
#define GIB (1UL << 30)
#define SIZE (32 * GIB)

static const uint64_t touched[] = {
    0, 3 * PAGE, GIB + 5 * PAGE, 7 * GIB, 16 * GIB + 7 * PAGE, 31 * GIB + 123 * PAGE,
    SIZE - PAGE,
};
static const uint64_t untouched[] = { PAGE, 2 * GIB, 20 * GIB + 9 * PAGE, SIZE - 2 * PAGE };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void bad(unsigned long round, const char *what, uint64_t offset)
{
    printf("BAD round %lu: %s (offset %#llx)\n", round, what, (unsigned long long)offset);
    fflush(stdout);
    exit(1);
}

/* Permissions and extent of the mapping holding `address`. */
static int find_mapping(uintptr_t address, char perms[5], uintptr_t *low, uintptr_t *high)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return 0;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned long l, h;
        if (sscanf(line, "%lx-%lx %4s", &l, &h, perms) == 3 && l <= address && address < h) {
            *low = l;
            *high = h;
            found = 1;
        }
    }
    fclose(maps);
    return found;
}

static void check_reservation(unsigned long round, uint8_t *base, const char *perms_expected)
{
    char perms[5];
    uintptr_t low, high;
    if (!find_mapping((uintptr_t)base, perms, &low, &high) ||
        strcmp(perms, perms_expected) != 0 || low > (uintptr_t)base ||
        high < (uintptr_t)base + SIZE) {
        printf("BAD round %lu: reservation at %p: expected %s covering 32 GiB\n", round,
               (void *)base, perms_expected);
        fflush(stdout);
        exit(1);
    }
}

int main(void)
{
    uint8_t *rw = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint8_t *none = mmap(NULL, SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
    if (rw == MAP_FAILED || none == MAP_FAILED) {
        perror("mmap 32 GiB");
        return 1;
    }
    for (size_t t = 0; t < COUNT(touched); t++) {
        uint64_t *page = (uint64_t *)(rw + touched[t]);
        for (size_t i = 0; i < PAGE / 8; i++)
            page[i] = mix64(touched[t] + i);
    }
    puts("ready");
    fflush(stdout);

    for (unsigned long round = 1;; round++) {
        check_reservation(round, rw, "rw-p");
        check_reservation(round, none, "---p");
        for (size_t t = 0; t < COUNT(touched); t++) {
            const uint64_t *page = (const uint64_t *)(rw + touched[t]);
            for (size_t i = 0; i < PAGE / 8; i++)
                if (page[i] != mix64(touched[t] + i))
                    bad(round, "written page differs", touched[t] + i * 8);
        }
        for (size_t u = 0; u < COUNT(untouched); u++) {
            const uint64_t *page = (const uint64_t *)(rw + untouched[u]);
            for (size_t i = 0; i < PAGE / 8; i++)
                if (page[i] != 0)
                    bad(round, "untouched page is not zero", untouched[u] + i * 8);
        }
        printf("ok %lu\n", round);
        fflush(stdout);
        sleep_ms(20);
    }
}
