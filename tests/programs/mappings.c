/* Sets up mappings of every kind a checkpoint must bring back, fills them with patterns, and
 * checks them every 20 ms — contents, and protections both as /proc/self/maps shows them and
 * by probing with a SIGSEGV handler:
 *   ro       private anonymous, filled, then PROT_READ          r--p, writes fault
 *   none     private anonymous, filled, then PROT_NONE          ---p, reads fault, contents
 *                                                              checked through a PROT_READ
 *                                                              window
 *   guard    PROT_NONE reservation, never touched               ---p, reads fault
 *   shared   MAP_SHARED | MAP_ANONYMOUS                         rw-s, a fork()ed child's
 *                                                              write is seen by the parent
 *   memfd    memfd_create, MAP_SHARED, fd closed                rw-, contents
 *   fpriv    MAP_PRIVATE of a file since deleted, one page      rw-p, file pattern + the
 *            changed privately                                 private change
 *   fshared  MAP_SHARED of that deleted file, one page changed  rw-, contents
 * Prints "ready", then "ok N" per round; on a failed check "BAD ..." and exits 1. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define PAGE 4096
#define PAGES 8
#define LENGTH (PAGES * PAGE)

static uint8_t *ro, *none, *guard, *shared, *memfd_map, *fpriv, *fshared;

static void bad(unsigned long round, const char *what)
{
    printf("BAD round %lu: %s\n", round, what);
    fflush(stdout);
    exit(1);
}

static uint64_t word(unsigned region, size_t index)
{
    return mix64(((uint64_t)region << 32) | index);
}

static void fill(uint8_t *base, unsigned region)
{
    uint64_t *words = (uint64_t *)base;
    for (size_t i = 0; i < LENGTH / 8; i++)
        words[i] = word(region, i);
}

/* Checks a region against its pattern; `changed_page` (or -1) holds `region + 100` instead. */
static void check_contents(unsigned long round, const char *name, const uint8_t *base,
                           unsigned region, int changed_page)
{
    const uint64_t *words = (const uint64_t *)base;
    for (size_t i = 0; i < LENGTH / 8; i++) {
        int changed = (int)(i * 8 / PAGE) == changed_page;
        uint64_t expected = word(changed ? region + 100 : region, i);
        if (words[i] != expected) {
            printf("BAD round %lu: %s contents differ at offset %zu: %#llx, expected %#llx\n",
                   round, name, i * 8, (unsigned long long)words[i],
                   (unsigned long long)expected);
            fflush(stdout);
            exit(1);
        }
    }
}

static void change_page(uint8_t *base, unsigned region, int page)
{
    uint64_t *words = (uint64_t *)base;
    for (size_t i = (size_t)page * PAGE / 8; i < (size_t)(page + 1) * PAGE / 8; i++)
        words[i] = word(region + 100, i);
}

/* The permissions column of /proc/self/maps for the mapping holding `address`. */
static void perms_of(const void *address, char perms[5])
{
    strcpy(perms, "????");
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return;
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        unsigned long low, high;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &low, &high, p) == 3 && low <= (uintptr_t)address &&
            (uintptr_t)address < high) {
            memcpy(perms, p, 5);
            break;
        }
    }
    fclose(maps);
}

/* Checks the first `significant` characters of a region's permissions (4 includes the
 * private/shared flag). */
static void check_perms(unsigned long round, const char *name, const void *base,
                        const char *expected, size_t significant)
{
    char perms[5];
    perms_of(base, perms);
    char last[5];
    perms_of((const uint8_t *)base + LENGTH - 1, last);
    if (strncmp(perms, expected, significant) != 0 || strcmp(perms, last) != 0) {
        printf("BAD round %lu: %s at %p has permissions %s (last byte %s), expected %.*s\n",
               round, name, base, perms, last, (int)significant, expected);
        fflush(stdout);
        exit(1);
    }
}

static sigjmp_buf probe_return;
static volatile sig_atomic_t probing;

static void on_segv(int sig)
{
    (void)sig;
    if (probing)
        siglongjmp(probe_return, 1);
    static const char message[] = "BAD unexpected SIGSEGV\n";
    (void)!write(1, message, sizeof message - 1);
    _exit(1);
}

/* 1 if reading (or, with `write_too`, writing back) the byte at `address` faults. */
static int faults(volatile uint8_t *address, int write_too)
{
    if (sigsetjmp(probe_return, 1)) {
        probing = 0;
        return 1;
    }
    probing = 1;
    uint8_t value = *address;
    if (write_too)
        *address = value;
    probing = 0;
    return 0;
}

static uint8_t *map(int prot, int flags, int fd)
{
    void *address = mmap(NULL, LENGTH, prot, flags, fd, 0);
    if (address == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return address;
}

static void set_up(void)
{
    ro = map(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    fill(ro, 1);
    none = map(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    fill(none, 2);
    guard = map(PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    shared = map(PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
    fill(shared, 3);

    int fd = memfd_create("ckpt-test-memfd", 0);
    if (fd < 0 || ftruncate(fd, LENGTH) != 0) {
        perror("memfd_create");
        exit(1);
    }
    memfd_map = map(PROT_READ | PROT_WRITE, MAP_SHARED, fd);
    close(fd);
    fill(memfd_map, 4);

    /* The file's contents are the pattern of region 5, written through write(2). */
    fd = open("deleted-file.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("open deleted-file.bin");
        exit(1);
    }
    uint8_t *buffer = malloc(LENGTH);
    fill(buffer, 5);
    if (write(fd, buffer, LENGTH) != LENGTH) {
        perror("write deleted-file.bin");
        exit(1);
    }
    free(buffer);
    fpriv = map(PROT_READ | PROT_WRITE, MAP_PRIVATE, fd);
    fshared = map(PROT_READ | PROT_WRITE, MAP_SHARED, fd);
    close(fd);
    unlink("deleted-file.bin");
    change_page(fpriv, 5, 2);   /* private copy only */
    change_page(fshared, 5, 5); /* the file itself: fpriv sees it too, except page 2 */

    if (mprotect(ro, LENGTH, PROT_READ) != 0 || mprotect(none, LENGTH, PROT_NONE) != 0) {
        perror("mprotect");
        exit(1);
    }

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_segv;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, NULL);
}

/* A child writes `value` into the shared region; the parent must see it. The checkpoint
 * signal is blocked meanwhile: children are not part of a checkpoint, and a parent restarted
 * inside waitpid() would have no child to wait for. */
static void check_shared_with_child(unsigned long round)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTSTP);
    sigprocmask(SIG_BLOCK, &block, &old);

    volatile uint64_t *slot = (volatile uint64_t *)(shared + 3 * PAGE);
    uint64_t before = *slot;
    uint64_t value = mix64(round + 12345);
    pid_t child = fork();
    if (child < 0)
        bad(round, "fork failed");
    if (child == 0) {
        *slot = value;
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bad(round, "child did not exit cleanly");
    if (*slot != value)
        bad(round, "a child's write to the MAP_SHARED|MAP_ANONYMOUS region is not visible");
    *slot = before;

    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void check_all(unsigned long round)
{
    check_perms(round, "read-only region", ro, "r--p", 4);
    check_contents(round, "read-only region", ro, 1, -1);
    if (!faults(ro + 100, 1))
        bad(round, "writing the read-only region did not fault");

    check_perms(round, "PROT_NONE region", none, "---p", 4);
    if (!faults(none + 100, 0))
        bad(round, "reading the PROT_NONE region did not fault");
    if (mprotect(none, LENGTH, PROT_READ) != 0)
        bad(round, "mprotect(PROT_READ) of the PROT_NONE region failed");
    check_contents(round, "PROT_NONE region", none, 2, -1);
    if (mprotect(none, LENGTH, PROT_NONE) != 0)
        bad(round, "mprotect(PROT_NONE) failed");

    check_perms(round, "guard reservation", guard, "---p", 4);
    if (!faults(guard + PAGE * 3, 0))
        bad(round, "reading the guard reservation did not fault");

    check_perms(round, "shared anonymous region", shared, "rw-s", 4);
    check_contents(round, "shared anonymous region", shared, 3, -1);
    check_shared_with_child(round);

    check_perms(round, "memfd mapping", memfd_map, "rw-", 3);
    check_contents(round, "memfd mapping", memfd_map, 4, -1);

    check_perms(round, "private mapping of a deleted file", fpriv, "rw-p", 4);
    for (int page = 0; page < PAGES; page++) {
        /* Page 2 was changed privately, page 5 through the shared mapping. */
        const uint64_t *words = (const uint64_t *)(fpriv + page * PAGE);
        unsigned region = (page == 2 || page == 5) ? 105 : 5;
        for (size_t i = 0; i < PAGE / 8; i++) {
            size_t index = page * PAGE / 8 + i;
            if (words[i] != word(region, index)) {
                printf("BAD round %lu: private mapping of a deleted file differs at offset "
                       "%zu\n",
                       round, index * 8);
                fflush(stdout);
                exit(1);
            }
        }
    }

    check_perms(round, "shared mapping of a deleted file", fshared, "rw-", 3);
    check_contents(round, "shared mapping of a deleted file", fshared, 5, 5);
}

int main(void)
{
    set_up();
    check_all(0);
    puts("ready");
    fflush(stdout);
    for (unsigned long round = 1;; round++) {
        check_all(round);
        printf("ok %lu\n", round);
        fflush(stdout);
        sleep_ms(20);
    }
}
