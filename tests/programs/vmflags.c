/* Per-mapping properties a program sets with mmap, madvise, mlock and mseal, through a
 * checkpoint: one mapping of each kind (MAP_NORESERVE, MADV_DONTFORK, MADV_WIPEONFORK,
 * MADV_DONTDUMP, MADV_NOHUGEPAGE, MADV_HUGEPAGE, MADV_MERGEABLE, MADV_RANDOM,
 * MADV_SEQUENTIAL, mlock, mlock2(MLOCK_ONFAULT), MAP_GROWSDOWN, mseal), a plain one without
 * MAP_NORESERVE and a 32 GiB PROT_NONE reservation without it.
 *
 * argv[1] "no-dontfork" leaves the MADV_DONTFORK mapping out, so that a forked writer can
 * write the image (it would lack that mapping).
 *
 * It reports, once at the start and once more after a restart (it notices by its pid
 * changing):
 *   "flags NAME START-END: VMFLAGS"   the mapping's VmFlags line of /proc/self/smaps
 *   "contents NAME: intact|zero|BAD"  its first 64 KiB (the pattern written, all zero, other)
 *   "fork: dontfork absent|present|none, wipeonfork zero|kept"  what a forked child sees
 * and then "ready" (first time) or "resumed" (after a restart); then "tick N" every 10 ms.
 * A mapping whose setup the kernel refuses is reported as "BAD setup NAME: ERROR", except
 * that a kernel without KSM or mseal gets "unsupported NAME" and no such mapping. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MIB (1UL << 20)
#define FILLED (64UL << 10)
#define RESERVATION (32UL << 30)

enum setup { ADVISE, NORESERVE, LOCK, LOCK_ONFAULT, GROWSDOWN, SEAL, RESERVE, PLAIN };

struct region {
    const char *name;
    enum setup setup;
    int advice;
    uint64_t *at;
};

static struct region regions[] = {
    { "plain", PLAIN, 0, 0 },
    { "noreserve", NORESERVE, 0, 0 },
    { "dontfork", ADVISE, MADV_DONTFORK, 0 },
    { "wipeonfork", ADVISE, MADV_WIPEONFORK, 0 },
    { "dontdump", ADVISE, MADV_DONTDUMP, 0 },
    { "nohugepage", ADVISE, MADV_NOHUGEPAGE, 0 },
    { "hugepage", ADVISE, MADV_HUGEPAGE, 0 },
    { "mergeable", ADVISE, MADV_MERGEABLE, 0 },
    { "random", ADVISE, MADV_RANDOM, 0 },
    { "sequential", ADVISE, MADV_SEQUENTIAL, 0 },
    { "locked", LOCK, 0, 0 },
    { "lockonfault", LOCK_ONFAULT, 0, 0 },
    { "growsdown", GROWSDOWN, 0, 0 },
    { "sealed", SEAL, 0, 0 },
    { "reserve", RESERVE, 0, 0 },
};
#define COUNT (sizeof regions / sizeof regions[0])

static struct region *find(const char *name)
{
    for (size_t i = 0; i < COUNT; i++)
        if (regions[i].at && strcmp(regions[i].name, name) == 0)
            return &regions[i];
    return 0;
}

static void bad_setup(const char *name)
{
    printf("BAD setup %s: %s\n", name, strerror(errno));
    exit(1);
}

static void set_up(struct region *r)
{
    size_t len = r->setup == RESERVE ? RESERVATION : MIB;
    int prot = r->setup == RESERVE ? PROT_NONE : PROT_READ | PROT_WRITE;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    if (r->setup == NORESERVE)
        flags |= MAP_NORESERVE;
    if (r->setup == GROWSDOWN)
        flags |= MAP_GROWSDOWN;
    void *p = mmap(0, len, prot, flags, -1, 0);
    if (p == MAP_FAILED)
        bad_setup(r->name);
    r->at = p;
    if (r->setup == RESERVE)
        return;
    for (size_t i = 0; i < FILLED / 8; i++)
        r->at[i] = mix64((uintptr_t)r->at + i);
    int failed = 0;
    switch (r->setup) {
    case ADVISE:
        failed = madvise(p, len, r->advice);
        break;
    case LOCK:
        failed = mlock(p, len);
        break;
    case LOCK_ONFAULT:
        failed = syscall(SYS_mlock2, p, len, 1 /* MLOCK_ONFAULT */);
        break;
    case SEAL:
        failed = syscall(462 /* mseal */, p, len, 0);
        break;
    default:
        break;
    }
    if (failed && ((r->advice == MADV_MERGEABLE && errno == EINVAL) ||
                   (r->setup == SEAL && errno == ENOSYS))) {
        printf("unsupported %s\n", r->name);
        munmap(p, len);
        r->at = 0;
    } else if (failed) {
        bad_setup(r->name);
    }
}

/* The VmFlags line of the mapping that holds `at`, and that mapping's range. */
static int vm_flags(const void *at, char *out, size_t size, unsigned long *lo, unsigned long *hi)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[4096];
    int inside = 0, found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long l, h;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &l, &dash, &h) == 3 && dash == '-') {
            inside = l <= (uintptr_t)at && (uintptr_t)at < h;
            if (inside) {
                *lo = l;
                *hi = h;
            }
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            const char *flags = line + 8;
            while (*flags == ' ')
                flags++;
            snprintf(out, size, "%s", flags);
            out[strcspn(out, "\n")] = 0;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static const char *contents(const struct region *r)
{
    size_t same = 0, zero = 0;
    for (size_t i = 0; i < FILLED / 8; i++) {
        same += r->at[i] == mix64((uintptr_t)r->at + i);
        zero += r->at[i] == 0;
    }
    return same == FILLED / 8 ? "intact" : zero == FILLED / 8 ? "zero" : "BAD";
}

/* What a child of this process sees: whether the MADV_DONTFORK mapping is there (mincore
 * fails with ENOMEM on an unmapped range) and whether the MADV_WIPEONFORK one reads zero. */
static void fork_check(void)
{
    struct region *dontfork = find("dontfork"), *wipe = find("wipeonfork");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        int absent = 0;
        if (dontfork) {
            unsigned char v;
            absent = mincore(dontfork->at, 4096, &v) == -1 && errno == ENOMEM;
        }
        int zero = strcmp(contents(wipe), "zero") == 0;
        _exit(absent << 1 | zero);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)) {
        printf("BAD fork\n");
        exit(1);
    }
    int code = WEXITSTATUS(status);
    printf("fork: dontfork %s, wipeonfork %s\n",
           !dontfork ? "none" : code & 2 ? "absent" : "present", code & 1 ? "zero" : "kept");
}

static void report(void)
{
    for (size_t i = 0; i < COUNT; i++) {
        struct region *r = &regions[i];
        char flags[512];
        unsigned long lo, hi;
        if (!r->at)
            continue;
        if (!vm_flags(r->at, flags, sizeof flags, &lo, &hi)) {
            printf("BAD no VmFlags for %s\n", r->name);
            exit(1);
        }
        printf("flags %s %#lx-%#lx: %s\n", r->name, lo, hi, flags);
        if (r->setup != RESERVE)
            printf("contents %s: %s\n", r->name, contents(r));
    }
    fork_check();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int dontfork = !(argc > 1 && strcmp(argv[1], "no-dontfork") == 0);
    for (size_t i = 0; i < COUNT; i++)
        if (dontfork || strcmp(regions[i].name, "dontfork") != 0)
            set_up(&regions[i]);
    pid_t pid = getpid();
    report();
    printf("ready\n");
    for (unsigned long tick = 1;; tick++) {
        if (getpid() != pid) {
            pid = getpid();
            report();
            printf("resumed\n");
        }
        printf("tick %lu\n", tick);
        sleep_ms(10);
    }
}
