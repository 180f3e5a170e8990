/* Guard pages (MADV_GUARD_INSTALL, Linux 6.13+): in anonymous memory, in a private file
 * mapping and at the bottom of a stack-like region. Reading one while checkpointing would
 * kill the program; after a restart they must guard again, and the pages around them must
 * hold their data. Prints "ready" (or "no guard pages" and exits 77 on an older kernel);
 * on SIGUSR1 checks everything and prints "guards ok" or what is wrong. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

#define MADV_GUARD_INSTALL 102
#define PAGE 4096

static sigjmp_buf jump;
static volatile sig_atomic_t check_now;

static void on_segv(int sig) { (void)sig; siglongjmp(jump, 1); }
static void on_usr1(int sig) { (void)sig; check_now = 1; }

/* Whether reading *p faults. */
static int faults(volatile char *p)
{
    if (sigsetjmp(jump, 1) == 0) {
        (void)*p;
        return 0;
    }
    return 1;
}

/* Whether pagemap marks the page at p as a guard page (bit 58): installed, not made up. */
static int guard_marked(void *p)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t entry = 0;
    pread(fd, &entry, sizeof entry, (off_t)((uintptr_t)p / PAGE) * 8);
    close(fd);
    return (int)((entry >> 58) & 1);
}

struct area { const char *name; char *base; int pages; int guards[3]; int nguards; int writable; };

static int is_guard(const struct area *a, int page)
{
    for (int i = 0; i < a->nguards; i++)
        if (a->guards[i] == page)
            return 1;
    return 0;
}

static int check(const struct area *areas, int n)
{
    int bad = 0;
    for (int k = 0; k < n; k++) {
        const struct area *a = &areas[k];
        for (int p = 0; p < a->pages; p++) {
            char *page = a->base + (size_t)p * PAGE;
            if (is_guard(a, p)) {
                if (!faults(page) || !guard_marked(page)) {
                    printf("%s page %d does not guard\n", a->name, p);
                    bad = 1;
                }
                continue;
            }
            uint64_t want = mix64((uint64_t)k << 32 | (uint64_t)p);
            if (faults(page) || memcmp(page, &want, sizeof want) != 0) {
                printf("%s page %d lost its data\n", a->name, p);
                bad = 1;
            }
        }
    }
    return !bad;
}

int main(void)
{
    struct area areas[3] = {
        { "anonymous", NULL, 64, { 10, 11, 40 }, 3, 1 },
        { "file", NULL, 4, { 1 }, 1, 0 },
        { "stack-like", NULL, 16, { 0 }, 1, 1 },
    };
    /* The file's pages, written before it is mapped read-only. */
    int fd = open("guards.data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (int p = 0; p < areas[1].pages; p++) {
        char page[PAGE] = { 0 };
        uint64_t v = mix64((uint64_t)1 << 32 | (uint64_t)p);
        memcpy(page, &v, sizeof v);
        write(fd, page, PAGE);
    }
    for (int k = 0; k < 3; k++) {
        struct area *a = &areas[k];
        size_t len = (size_t)a->pages * PAGE;
        a->base = k == 1 ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)
                         : mmap(NULL, len, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (a->writable)
            for (int p = 0; p < a->pages; p++) {
                uint64_t v = mix64((uint64_t)k << 32 | (uint64_t)p);
                memcpy(a->base + (size_t)p * PAGE, &v, sizeof v);
            }
        for (int g = 0; g < a->nguards; g++)
            if (madvise(a->base + (size_t)a->guards[g] * PAGE, PAGE, MADV_GUARD_INSTALL) != 0) {
                printf("no guard pages\n");
                return 77;
            }
    }
    close(fd);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    signal(SIGUSR1, on_usr1);
    if (!check(areas, 3))
        return 1;
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        while (!check_now)
            pause();
        check_now = 0;
        printf(check(areas, 3) ? "guards ok\n" : "guards broken\n");
        fflush(stdout);
    }
}
