/* The benchmark's workload: touches MIB mebibytes of memory (or, with "sparse", reserves
 * 32 GiB and touches MIB mebibytes scattered over it; with "huge", asks for transparent huge
 * pages for it with MADV_HUGEPAGE; with "dirty", keeps writing one word of each page in
 * turn while it spins, as a program at work does), prints "ready", then spins,
 * recording the longest gap between two loop iterations (the pause a checkpoint costs).
 * SIGUSR1 makes it print "pause <max gap in ns>" and exit. After a restart the restart
 * hook prints "restarted <CLOCK_REALTIME ns>" first thing. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t report;

static void on_usr1(int sig)
{
    (void)sig;
    report = 1;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 16;
    int sparse = argc > 2 && strcmp(argv[2], "sparse") == 0;
    int huge = argc > 2 && strcmp(argv[2], "huge") == 0;
    int dirty = argc > 2 && strcmp(argv[2], "dirty") == 0;
    size_t bytes = mib << 20;
    unsigned char *p;
    if (sparse) {
        size_t span = (size_t)32 << 30;
        p = mmap(0, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return 1;
        /* 64 KiB pieces spread evenly over the reservation. */
        size_t pieces = bytes / 65536, stride = (span / pieces) & ~(size_t)4095;
        for (size_t i = 0; i < pieces; i++)
            memset(p + i * stride, (int)(i | 1), 65536);
    } else {
        p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 1;
        if (huge)
            madvise(p, bytes, MADV_HUGEPAGE);
        fill_pages(p, bytes, 0);
    }
    if (ckpt_on_restart)
        ckpt_on_restart(on_restart, 0);
    signal(SIGUSR1, on_usr1);
    printf("ready\n");
    fflush(stdout);
    uint64_t last = now_ns(CLOCK_MONOTONIC), max_gap = 0;
    size_t page = 0;
    while (!report) {
        if (dirty) {
            p[page] += 1;
            page = page + 4096 < bytes ? page + 4096 : 0;
        }
        uint64_t t = now_ns(CLOCK_MONOTONIC);
        if (t - last > max_gap)
            max_gap = t - last;
        last = t;
    }
    printf("pause %llu\n", (unsigned long long)max_gap);
    return 0;
}
