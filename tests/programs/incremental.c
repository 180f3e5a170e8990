/* Memory that changes a little between checkpoints, and a checksum of all of it, for the
 * tests of incremental checkpoints (tests/incremental.rs).
 *
 * Areas: a 64 MiB mapping (every page written at start), a heap buffer, the program's bss,
 * and a 1 MiB mapping that moves and grows at step 2 (mremap). A step writes 1% of the big
 * mapping's pages (pseudo-random, from the step number) and a few bytes elsewhere.
 *
 *   incremental signals   SIGUSR1: the next step, then "step K sum S"; SIGUSR2: "sum S"
 *   incremental periodic  a step every 10 ms, forever
 *
 * In both, the pre-checkpoint hook keeps the step and the checksum, the post-checkpoint
 * hook prints "checkpoint step K sum S", and the restart hook prints
 * "restored step K saved S now N" (N: computed after the restart).
 */
#define _GNU_SOURCE
#include <ckpt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BIG (64ul << 20)
#define PAGE 4096ul
#define HEAP 65536ul

static unsigned char *big, *heap, *mov;
static size_t mov_len = 1ul << 20;
static unsigned char bss[1 << 20];
static volatile sig_atomic_t usr1, usr2;
static volatile unsigned long step;
static unsigned long saved_step, saved_sum;

static uint64_t sum_of(const unsigned char *p, size_t n, uint64_t s)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < n / 8; i++)
        s = (s ^ w[i]) * 0x100000001b3ull + i;
    return s;
}

static uint64_t checksum(void)
{
    uint64_t s = 1469598103934665603ull;
    s = sum_of(big, BIG, s);
    s = sum_of(heap, HEAP, s);
    s = sum_of(bss, sizeof bss, s);
    s = sum_of(mov, mov_len, s);
    return s ^ mov_len;
}

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void do_step(unsigned long k)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (k + 1);
    for (unsigned long i = 0; i < BIG / PAGE / 100; i++) {
        size_t page = rng(&x) % (BIG / PAGE);
        size_t off = rng(&x) % (PAGE - 8);
        memcpy(big + page * PAGE + off, &x, 8);
    }
    heap[rng(&x) % HEAP] = (unsigned char)k;
    bss[rng(&x) % sizeof bss] = (unsigned char)k;
    if (k == 2) {
        /* Moves (a hole below keeps it from growing in place) and grows. */
        void *p = mremap(mov, mov_len, 3 * mov_len, MREMAP_MAYMOVE);
        if (p == MAP_FAILED) {
            perror("mremap");
            exit(1);
        }
        mov = p;
        mov_len *= 3;
        memset(mov + mov_len / 3, 0x5a, mov_len / 3);
    }
    mov[rng(&x) % mov_len] = (unsigned char)k;
}

static void say(const char *fmt, unsigned long a, unsigned long b, unsigned long c)
{
    char line[160];
    int n = snprintf(line, sizeof line, fmt, a, b, c);
    if (write(1, line, (size_t)n) != n)
        _exit(3);
}

static void pre(void *arg)
{
    (void)arg;
    saved_step = step;
    saved_sum = checksum();
}

static void post(void *arg)
{
    (void)arg;
    say("checkpoint step %lu sum %lx%.0lu\n", saved_step, saved_sum, 0);
}

static void restarted(void *arg)
{
    (void)arg;
    say("restored step %lu saved %lx now %lx\n", saved_step, saved_sum, checksum());
}

static void on_usr1(int s) { (void)s; usr1 = 1; }
static void on_usr2(int s) { (void)s; usr2 = 1; }

int main(int argc, char **argv)
{
    int periodic = argc > 1 && strcmp(argv[1], "periodic") == 0;
    big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* The moving mapping sits above a hole, so that growing it must move it. */
    unsigned char *pair = mmap(NULL, 3 * mov_len, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    heap = malloc(HEAP);
    if (big == MAP_FAILED || pair == MAP_FAILED || !heap)
        return 1;
    mov = pair;
    munmap(pair + mov_len, mov_len);
    pair[2 * mov_len] = 1;
    for (size_t i = 0; i < BIG; i += PAGE)
        memset(big + i, (int)(i / PAGE), 64);
    memset(heap, 7, HEAP);
    memset(bss, 9, sizeof bss);
    memset(mov, 3, mov_len);
    ckpt_on_preckpt(pre, NULL);
    ckpt_on_postckpt(post, NULL);
    ckpt_on_restart(restarted, NULL);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    say("ready %lu%.0lu%.0lu\n", (unsigned long)getpid(), 0, 0);
    for (;;) {
        if (periodic) {
            do_step(step + 1);
            step++;
            usleep(10000);
            continue;
        }
        if (usr1) {
            usr1 = 0;
            do_step(step + 1);
            step++;
            say("step %lu sum %lx%.0lu\n", step, checksum(), 0);
        }
        if (usr2) {
            usr2 = 0;
            say("sum %lx%.0lu%.0lu\n", checksum(), 0, 0);
        }
        usleep(2000);
    }
}
