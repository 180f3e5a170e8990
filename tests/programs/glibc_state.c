/* State that glibc and the kernel keep for a process, checked after every restart.
 *
 * glibc_state state
 *     Sets up the state below, prints "ready", then "tick N" every 10 ms. Whenever getpid()
 *     differs from the pid it saw last — the program was restarted — it prints "restarted C"
 *     (C counts the restarts), checks every item and prints "ok ITEM" or "BAD ITEM: details"
 *     for each, then "checked C", sets the state up again for the next checkpoint and ticks
 *     on. Items:
 *       raise, pthread_kill, errorcheck-mutex, recursive-mutex, tid  (glibc's cached thread id;
 *           both mutexes were locked before the checkpoint and must unlock now)
 *       rseq            sched_getcpu() agrees with the getcpu syscall on two pinned CPUs
 *       robust-list     get_robust_list gives the head it gave before
 *       pending-signal  SIGUSR2, blocked and sent before, is pending and is handled on unblock
 *       itimer-virtual, itimer-prof, alarm   timers set to 100 s before are still running
 *       heap-contents, heap-churn, calloc    malloc'ed blocks; realloc, free, malloc_trim
 *       brk, heap-map, stack-map, cmdline, environ, args, thread-stack   the kernel's view
 *       fork, system, posix_spawn, exec      children (exec prints "exec-marker C")
 *       cwd, umask      also printed as "cwd PATH" and "umask MODE"
 *       libtiny         calls into libtiny.so (which may be deleted by now)
 *     Needs CKPT_TEST_MARK in the environment of the original process.
 * glibc_state check
 *     Sets up, runs every check once in the same process ("checked 0") and exits: the checks
 *     of the test program itself must pass without ckpt.
 * glibc_state read
 *     Prints "reading", then "got LINE" for every line read() from stdin (one read each),
 *     "eof" and exit 0 at end of input; "BAD read: ..." and exit 1 if read fails.
 * glibc_state sleep
 *     Three rounds: "sleeping R", a 2 s sleep (sleep() in odd rounds, nanosleep() in even ones,
 *     each in a loop that sleeps what is left when it is cut short), "slept R"; then "done". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

extern char **environ;

/* libtiny.so */
unsigned tiny_next(void);
unsigned tiny_checksum(unsigned seed);

static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
}

static void die(const char *what)
{
    say("BAD setup: %s: %s", what, strerror(errno));
    exit(1);
}

static unsigned cycle;
static int saved_argc;
static char **saved_argv;
static char **argv_copy;

/* ------------------------------------------------------------------------------------------ */
/* Signals */

static volatile sig_atomic_t usr1_count, usr2_count, timer_fired;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_count++;
}

static void on_usr2(int sig)
{
    (void)sig;
    usr2_count++;
}

static void on_timer(int sig)
{
    timer_fired = sig;
}

static void handle(int sig, void (*handler)(int))
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(sig, &action, NULL) != 0)
        die("sigaction");
}

static void check_thread_id(void)
{
    int before = usr1_count;
    int result = raise(SIGUSR1);
    if (result != 0)
        say("BAD raise: raise(SIGUSR1) returned %d: %s", result, strerror(errno));
    else if (usr1_count != before + 1)
        say("BAD raise: raise(SIGUSR1) returned 0 but the handler did not run");
    else
        say("ok raise");

    before = usr1_count;
    result = pthread_kill(pthread_self(), SIGUSR1);
    if (result != 0)
        say("BAD pthread_kill: pthread_kill(self, SIGUSR1) returned %s", strerror(result));
    else if (usr1_count != before + 1)
        say("BAD pthread_kill: returned 0 but the handler did not run");
    else
        say("ok pthread_kill");
}

static pthread_mutex_t errorcheck_mutex, recursive_mutex;

static void init_mutexes(void)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&errorcheck_mutex, &attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&recursive_mutex, &attr);
    pthread_mutexattr_destroy(&attr);
}

static void lock_mutexes(void)
{
    int r1 = pthread_mutex_lock(&errorcheck_mutex);
    int r2 = pthread_mutex_lock(&recursive_mutex);
    int r3 = pthread_mutex_lock(&recursive_mutex);
    if (r1 || r2 || r3)
        say("BAD setup: locking the mutexes: %s / %s / %s", strerror(r1), strerror(r2),
            strerror(r3));
}

/* Unlocks the mutexes locked before the checkpoint; locks them again for the next one. */
static void check_mutexes(void)
{
    int result = pthread_mutex_unlock(&errorcheck_mutex);
    if (result != 0) {
        say("BAD errorcheck-mutex: unlocking the mutex locked before the checkpoint: %s "
            "(owner %d, gettid %ld)",
            strerror(result), errorcheck_mutex.__data.__owner, (long)syscall(SYS_gettid));
    } else {
        say("ok errorcheck-mutex");
        pthread_mutex_lock(&errorcheck_mutex);
    }

    int first = pthread_mutex_unlock(&recursive_mutex);
    int second = first ? first : pthread_mutex_unlock(&recursive_mutex);
    if (first || second) {
        say("BAD recursive-mutex: unlocking the mutex locked twice before the checkpoint: "
            "%s / %s",
            strerror(first), strerror(second));
    } else {
        say("ok recursive-mutex");
        pthread_mutex_lock(&recursive_mutex);
        pthread_mutex_lock(&recursive_mutex);
    }

    /* glibc records its cached thread id as the owner of a mutex it locks. */
    pthread_mutexattr_t attr;
    pthread_mutex_t fresh;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&fresh, &attr);
    pthread_mutexattr_destroy(&attr);
    pthread_mutex_lock(&fresh);
    long tid = syscall(SYS_gettid);
    if (fresh.__data.__owner != tid)
        say("BAD tid: glibc's thread id is %d, the kernel's %ld", fresh.__data.__owner, tid);
    else
        say("ok tid");
    pthread_mutex_unlock(&fresh);
    pthread_mutex_destroy(&fresh);
}

static void check_rseq(void)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        say("BAD rseq: sched_getaffinity: %s", strerror(errno));
        return;
    }
    int cpus[2], found = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            cpus[found++] = cpu;
    if (found < 2) {
        say("ok rseq skipped: only one CPU to run on");
        return;
    }
    int good = 1;
    for (int i = 0; i < 2 && good; i++) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[i], &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) {
            say("BAD rseq: pinning to CPU %d: %s", cpus[i], strerror(errno));
            good = 0;
            break;
        }
        unsigned kernel_cpu = ~0u;
        long r = syscall(SYS_getcpu, &kernel_cpu, NULL, NULL);
        int glibc_cpu = sched_getcpu();
        if (r != 0 || (int)kernel_cpu != cpus[i] || glibc_cpu != cpus[i]) {
            say("BAD rseq: pinned to CPU %d: sched_getcpu() says %d, getcpu syscall %d", cpus[i],
                glibc_cpu, r == 0 ? (int)kernel_cpu : -1);
            good = 0;
        }
    }
    sched_setaffinity(0, sizeof allowed, &allowed);
    if (good)
        say("ok rseq");
}

static void *robust_head;

static void *get_robust_head(void)
{
    void *head = NULL;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, 0, &head, &len) != 0)
        return NULL;
    return head;
}

static void check_robust_list(void)
{
    void *head = get_robust_head();
    if (head == NULL || head != robust_head)
        say("BAD robust-list: get_robust_list gives %p, before the checkpoint %p", head,
            robust_head);
    else
        say("ok robust-list");
}

static void arm_pending_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR2);
    sigset_t pending;
    sigpending(&pending);
    if (!sigismember(&pending, SIGUSR2))
        say("BAD setup: SIGUSR2 is not pending after kill");
}

static void check_pending_signal(void)
{
    sigset_t pending, set;
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGUSR2);
    int before = usr2_count;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    /* An unblocked pending signal is delivered before sigprocmask returns. */
    if (usr2_count != before + 1)
        say("BAD pending-signal: SIGUSR2 %s pending, its handler ran %d times on unblocking",
            was_pending ? "was" : "was not", usr2_count - before);
    else if (!was_pending)
        say("BAD pending-signal: sigpending did not show SIGUSR2, but it was delivered");
    else
        say("ok pending-signal");
}

/* ------------------------------------------------------------------------------------------ */
/* Timers */

static struct itimerval virtual_before, prof_before, real_before;

static void arm_timers(void)
{
    struct itimerval value = { .it_interval = { 0, 0 }, .it_value = { 100, 0 } };
    if (setitimer(ITIMER_VIRTUAL, &value, NULL) != 0 || setitimer(ITIMER_PROF, &value, NULL) != 0)
        die("setitimer");
    alarm(100);
}

/* Called every tick: the last values before a checkpoint are the bound for after it. */
static void record_timers(void)
{
    getitimer(ITIMER_VIRTUAL, &virtual_before);
    getitimer(ITIMER_PROF, &prof_before);
    getitimer(ITIMER_REAL, &real_before);
}

static double seconds(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static void check_timer(const char *item, int which, struct itimerval before)
{
    struct itimerval now;
    if (getitimer(which, &now) != 0) {
        say("BAD %s: getitimer: %s", item, strerror(errno));
        return;
    }
    /* Setting a CPU-time timer adds a clock tick (up to 10 ms) to the value. */
    double left = seconds(now.it_value), was = seconds(before.it_value);
    if (left <= 0 || left > was + 0.011 || left < was - 5)
        say("BAD %s: %.6f s left, %.6f s before the checkpoint (expected no more)", item,
            left, was);
    else
        say("ok %s", item);
}

static void check_timers(void)
{
    if (timer_fired)
        say("BAD timers: signal %d arrived: a 100 s timer fired early", (int)timer_fired);
    check_timer("itimer-virtual", ITIMER_VIRTUAL, virtual_before);
    check_timer("itimer-prof", ITIMER_PROF, prof_before);
    struct itimerval real;
    getitimer(ITIMER_REAL, &real);
    unsigned left = alarm(0);
    if (left <= 90 || left > 100 ||
        seconds(real.it_value) > seconds(real_before.it_value) + 0.011)
        say("BAD alarm: alarm(0) returned %u (ITIMER_REAL %.6f s left, %.6f s before the "
            "checkpoint); expected 91..100",
            left, seconds(real.it_value), seconds(real_before.it_value));
    else
        say("ok alarm");
}

/* ------------------------------------------------------------------------------------------ */
/* Heap */

#define SMALL 1500
#define LARGE 4

struct block {
    unsigned char *data;
    size_t size;
    uint64_t seed;
};

static struct block small[SMALL], large[LARGE];

static unsigned char byte_at(uint64_t seed, size_t i)
{
    return (unsigned char)(mix64(seed + (i >> 3)) >> (8 * (i & 7)));
}

static void fill(struct block *b)
{
    for (size_t i = 0; i < b->size; i++)
        b->data[i] = byte_at(b->seed, i);
}

/* Index of the first wrong byte among the first `size` bytes, or -1. */
static long first_wrong(const struct block *b, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (b->data[i] != byte_at(b->seed, i))
            return (long)i;
    return -1;
}

static void allocate(struct block *b, size_t size, uint64_t seed)
{
    b->size = size;
    b->seed = seed;
    b->data = malloc(size);
    if (!b->data)
        die("malloc");
    fill(b);
}

static void allocate_heap(void)
{
    for (unsigned i = 0; i < SMALL; i++)
        allocate(&small[i], 1 + mix64(i) % 700, mix64(i + 1000));
    for (unsigned i = 0; i < LARGE; i++)
        allocate(&large[i], (1 + i) * 1024 * 1024 + 123, mix64(i + 5000));
}

/* Reports the first block whose contents are wrong; returns whether all are right. */
static int verify_heap(const char *item)
{
    for (unsigned i = 0; i < SMALL + LARGE; i++) {
        struct block *b = i < SMALL ? &small[i] : &large[i - SMALL];
        long wrong = first_wrong(b, b->size);
        if (wrong >= 0) {
            say("BAD %s: block %u (%zu bytes at %p) differs at byte %ld", item, i, b->size,
                (void *)b->data, wrong);
            return 0;
        }
    }
    return 1;
}

static void check_heap(void)
{
    if (verify_heap("heap-contents"))
        say("ok heap-contents");

    uint64_t round = 100000 * (uint64_t)(cycle + 1);
    for (unsigned i = 0; i < SMALL + LARGE; i++) {
        struct block *b = i < SMALL ? &small[i] : &large[i - SMALL];
        if (i % 3 == 0) {
            size_t keep = b->size;
            unsigned char *grown = realloc(b->data, b->size * 2 + 77);
            if (!grown) {
                say("BAD heap-churn: realloc(%zu) failed", b->size * 2 + 77);
                return;
            }
            b->data = grown;
            long wrong = first_wrong(b, keep);
            if (wrong >= 0) {
                say("BAD heap-churn: realloc of block %u lost byte %ld", i, wrong);
                return;
            }
            b->size = b->size * 2 + 77;
            b->seed = mix64(round + i);
            fill(b);
        } else if (i % 5 == 0) {
            size_t size = b->size;
            free(b->data);
            allocate(b, size / 2 + 1 + i % 97, mix64(round + i));
        }
    }
    malloc_trim(0);
    if (verify_heap("heap-churn"))
        say("ok heap-churn");

    size_t sizes[] = { 24, 4000, 300 * 1024, 3 * 1024 * 1024 };
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *zero = calloc(1, sizes[i]);
        if (!zero) {
            say("BAD calloc: calloc(%zu) failed", sizes[i]);
            return;
        }
        for (size_t j = 0; j < sizes[i]; j++) {
            if (zero[j]) {
                say("BAD calloc: calloc(%zu) byte %zu is %u", sizes[i], j, zero[j]);
                free(zero);
                return;
            }
        }
        memset(zero, 0xa5, sizes[i]);
        free(zero);
    }
    say("ok calloc");
}

/* ------------------------------------------------------------------------------------------ */
/* The kernel's view of the process */

#define BRK_BLOCK 65536
static unsigned char *brk_block;
static char mark[256];
static char cwd_before[4096];
static mode_t umask_before = 027;

/* Finds the /proc/self/maps line named `name` ("[heap]") and whether it covers [lo, hi). */
static int mapping_covers(const char *name, unsigned long lo, unsigned long hi, char *found,
                          size_t found_size)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return 0;
    char line[512];
    int covers = 0;
    snprintf(found, found_size, "no %s line", name);
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        line[strcspn(line, "\n")] = 0;
        size_t length = strlen(line), name_length = strlen(name);
        if (length < name_length || strcmp(line + length - name_length, name) != 0)
            continue;
        if (sscanf(line, "%lx-%lx", &start, &end) != 2)
            continue;
        snprintf(found, found_size, "%s is %lx-%lx", name, start, end);
        if (start <= lo && hi <= end)
            covers = 1;
    }
    fclose(maps);
    return covers;
}

/* Reads a whole /proc file; returns its length, or -1. */
static long read_file(const char *path, char *buffer, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buffer + total, size - total);
        if (n <= 0)
            break;
        total += (size_t)n;
        if (total == size)
            break;
    }
    close(fd);
    return (long)total;
}

static void check_kernel_view(void)
{
    /* brk: glibc's idea (sbrk(0) is cached) and the kernel's; the block sbrk gave before. */
    void *glibc_brk = sbrk(0);
    unsigned long kernel_brk = (unsigned long)syscall(SYS_brk, 0);
    unsigned long lo = (unsigned long)brk_block, hi = lo + BRK_BLOCK;
    char found[128];
    int brk_block_ok = 1;
    for (size_t i = 0; i < BRK_BLOCK; i++)
        if (brk_block[i] != (unsigned char)(i * 7 + 1))
            brk_block_ok = 0;
    if ((unsigned long)glibc_brk != kernel_brk)
        say("BAD brk: sbrk(0) is %p, the kernel's brk %#lx", glibc_brk, kernel_brk);
    else if (!brk_block_ok)
        say("BAD brk: the block from sbrk() lost its contents");
    else
        say("ok brk");
    if (!mapping_covers("[heap]", lo, hi, found, sizeof found))
        say("BAD heap-map: the sbrk() block %#lx-%#lx is not in [heap] (%s)", lo, hi, found);
    else if (!mapping_covers("[heap]", kernel_brk - 1, kernel_brk, found, sizeof found))
        say("BAD heap-map: the byte below brk %#lx is not in [heap] (%s)", kernel_brk, found);
    else
        say("ok heap-map");

    int local = 0;
    unsigned long here = (unsigned long)&local;
    if (!mapping_covers("[stack]", here, here + sizeof local, found, sizeof found))
        say("BAD stack-map: a local variable at %#lx is not in [stack] (%s)", here, found);
    else
        say("ok stack-map");

    static char buffer[1 << 16];
    long length = read_file("/proc/self/cmdline", buffer, sizeof buffer);
    size_t expected_length = 0;
    int same = length >= 0;
    for (int i = 0; i < saved_argc && same; i++) {
        size_t n = strlen(saved_argv[i]) + 1;
        if (expected_length + n > (size_t)length ||
            memcmp(buffer + expected_length, saved_argv[i], n) != 0)
            same = 0;
        expected_length += n;
    }
    if (!same || (size_t)length != expected_length) {
        for (long i = 0; i + 1 < length; i++)
            if (buffer[i] == 0)
                buffer[i] = ' ';
        say("BAD cmdline: /proc/self/cmdline is \"%.*s\"", length > 0 ? (int)length - 1 : 0,
            buffer);
    } else {
        say("ok cmdline");
    }

    int args_same = 1;
    for (int i = 0; i < saved_argc; i++)
        if (strcmp(saved_argv[i], argv_copy[i]) != 0)
            args_same = 0;
    if (!args_same || saved_argv[saved_argc] != NULL)
        say("BAD args: argv changed");
    else
        say("ok args");

    char wanted[300];
    snprintf(wanted, sizeof wanted, "CKPT_TEST_MARK=%s", mark);
    length = read_file("/proc/self/environ", buffer, sizeof buffer - 1);
    int in_proc = 0;
    for (long i = 0; length > 0 && i < length; i += (long)strlen(buffer + i) + 1) {
        buffer[length] = 0;
        if (strcmp(buffer + i, wanted) == 0)
            in_proc = 1;
    }
    const char *now = getenv("CKPT_TEST_MARK");
    const char *restart_only = getenv("CKPT_TEST_RESTART_ONLY");
    if (!now || strcmp(now, mark) != 0)
        say("BAD environ: getenv(\"CKPT_TEST_MARK\") is %s%s%s, was \"%s\"", now ? "\"" : "",
            now ? now : "NULL", now ? "\"" : "", mark);
    else if (restart_only)
        say("BAD environ: CKPT_TEST_RESTART_ONLY=%s came from the restart's environment",
            restart_only);
    else if (!in_proc)
        say("BAD environ: /proc/self/environ has no %s", wanted);
    else
        say("ok environ");

    pthread_attr_t attr;
    void *stack_addr;
    size_t stack_size;
    int result = pthread_getattr_np(pthread_self(), &attr);
    if (result != 0) {
        say("BAD thread-stack: pthread_getattr_np: %s", strerror(result));
    } else {
        pthread_attr_getstack(&attr, &stack_addr, &stack_size);
        pthread_attr_destroy(&attr);
        unsigned long start = (unsigned long)stack_addr;
        if (here < start || here >= start + stack_size)
            say("BAD thread-stack: the stack %#lx-%#lx does not hold a local variable at %#lx",
                start, start + stack_size, here);
        else
            say("ok thread-stack");
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Children */

static void check_children(void)
{
    int status;
    pid_t child = fork();
    if (child == 0)
        _exit(7);
    if (child < 0)
        say("BAD fork: %s", strerror(errno));
    else if (waitpid(child, &status, 0) != child)
        say("BAD fork: waitpid: %s", strerror(errno));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 7)
        say("BAD fork: the child's status is %#x, expected exit 7", status);
    else
        say("ok fork");

    status = system("exit 3");
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 3)
        say("BAD system: system(\"exit 3\") gave status %#x (%s)", status, strerror(errno));
    else
        say("ok system");

    char *spawn_argv[] = { "true", NULL };
    int result = posix_spawn(&child, "/bin/true", NULL, NULL, spawn_argv, environ);
    if (result != 0)
        say("BAD posix_spawn: %s", strerror(result));
    else if (waitpid(child, &status, 0) != child)
        say("BAD posix_spawn: waitpid: %s", strerror(errno));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        say("BAD posix_spawn: /bin/true's status is %#x", status);
    else
        say("ok posix_spawn");

    char number[32];
    snprintf(number, sizeof number, "%u", cycle);
    child = fork();
    if (child == 0) {
        execl("/bin/echo", "echo", "exec-marker", number, (char *)NULL);
        _exit(127);
    }
    if (child < 0)
        say("BAD exec: fork: %s", strerror(errno));
    else if (waitpid(child, &status, 0) != child)
        say("BAD exec: waitpid: %s", strerror(errno));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        say("BAD exec: the child that ran /bin/echo has status %#x", status);
    else
        say("ok exec");
}

/* ------------------------------------------------------------------------------------------ */
/* Working directory, umask, shared library */

static void check_cwd_umask(void)
{
    char now[4096];
    if (!getcwd(now, sizeof now)) {
        say("BAD cwd: getcwd: %s", strerror(errno));
    } else {
        say("cwd %s", now);
        if (strcmp(now, cwd_before) != 0)
            say("BAD cwd: the working directory is %s, was %s", now, cwd_before);
        else
            say("ok cwd");
    }
    mode_t mask = umask(0);
    umask(mask);
    say("umask %03o", (unsigned)mask);
    if (mask != umask_before)
        say("BAD umask: the umask is %03o, was %03o", (unsigned)mask, (unsigned)umask_before);
    else
        say("ok umask");
}

static unsigned tiny_calls, tiny_sum;

static void check_libtiny(void)
{
    unsigned calls = tiny_next();
    unsigned sum = tiny_checksum(7);
    if (calls != tiny_calls + 1 || sum != tiny_sum)
        say("BAD libtiny: tiny_next() %u (expected %u), tiny_checksum(7) %u (expected %u)",
            calls, tiny_calls + 1, sum, tiny_sum);
    else
        say("ok libtiny");
    tiny_calls = calls;
}

/* ------------------------------------------------------------------------------------------ */

static void set_up(void)
{
    const char *value = getenv("CKPT_TEST_MARK");
    if (!value) {
        say("BAD setup: CKPT_TEST_MARK is not set");
        exit(1);
    }
    snprintf(mark, sizeof mark, "%s", value);
    if (!getcwd(cwd_before, sizeof cwd_before))
        die("getcwd");
    umask(umask_before);

    handle(SIGUSR1, on_usr1);
    handle(SIGUSR2, on_usr2);
    handle(SIGALRM, on_timer);
    handle(SIGVTALRM, on_timer);
    handle(SIGPROF, on_timer);

    init_mutexes();
    lock_mutexes();
    robust_head = get_robust_head();
    if (!robust_head)
        say("BAD setup: no robust list registered");

    allocate_heap();
    brk_block = sbrk(BRK_BLOCK);
    if (brk_block == (void *)-1)
        die("sbrk");
    for (size_t i = 0; i < BRK_BLOCK; i++)
        brk_block[i] = (unsigned char)(i * 7 + 1);

    tiny_calls = tiny_next();
    tiny_sum = tiny_checksum(7);

    arm_pending_signal();
    arm_timers();
    record_timers();
}

static void check_all(void)
{
    check_thread_id();
    check_mutexes();
    check_rseq();
    check_robust_list();
    check_pending_signal();
    check_timers();
    check_heap();
    check_kernel_view();
    check_children();
    check_cwd_umask();
    check_libtiny();
    say("checked %u", cycle);
    /* Again for the next checkpoint (the mutexes were locked again as they were checked). */
    arm_pending_signal();
    arm_timers();
}

static int state_mode(int check_once)
{
    set_up();
    if (check_once) {
        check_all();
        return 0;
    }
    say("ready");
    pid_t pid = getpid();
    for (unsigned long tick = 1;; tick++) {
        if (getpid() != pid) {
            pid = getpid();
            cycle++;
            say("restarted %u", cycle);
            check_all();
        }
        if (timer_fired) {
            say("BAD timers: signal %d arrived: a 100 s timer fired early", (int)timer_fired);
            timer_fired = 0;
        }
        record_timers();
        say("tick %lu", tick);
        sleep_ms(10);
    }
}

static int read_mode(void)
{
    say("reading");
    char buffer[512];
    for (;;) {
        ssize_t n = read(0, buffer, sizeof buffer - 1);
        if (n < 0) {
            say("BAD read: %s", strerror(errno));
            return 1;
        }
        if (n == 0) {
            say("eof");
            return 0;
        }
        buffer[n] = 0;
        buffer[strcspn(buffer, "\n")] = 0;
        say("got %s", buffer);
    }
}

/* Waits for input with select() (5 s timeout), reads a line, says "got LINE"; a select
 * cut short by a signal says so and waits again. */
static int select_mode(void)
{
    say("selecting");
    char buffer[512];
    for (;;) {
        fd_set in;
        FD_ZERO(&in);
        FD_SET(0, &in);
        struct timeval timeout = { 5, 0 };
        int ready = select(1, &in, NULL, NULL, &timeout);
        if (ready < 0 && errno == EINTR) {
            say("select interrupted");
            continue;
        }
        if (ready < 0) {
            say("BAD select: %s", strerror(errno));
            return 1;
        }
        if (ready == 0) {
            say("select timeout");
            continue;
        }
        ssize_t n = read(0, buffer, sizeof buffer - 1);
        if (n <= 0) {
            say("eof");
            return 0;
        }
        buffer[n] = 0;
        buffer[strcspn(buffer, "\n")] = 0;
        say("got %s", buffer);
    }
}

static int sleep_mode(void)
{
    for (int round = 1; round <= 3; round++) {
        say("sleeping %d", round);
        if (round % 2) {
            unsigned left = 2;
            while ((left = sleep(left)))
                say("sleep returned early, %u s left", left);
        } else {
            struct timespec left = { 2, 0 };
            while (nanosleep(&left, &left) == -1) {
                if (errno != EINTR) {
                    say("BAD nanosleep: %s", strerror(errno));
                    return 1;
                }
                say("nanosleep interrupted, %ld.%09ld s left", (long)left.tv_sec, left.tv_nsec);
            }
        }
        say("slept %d", round);
    }
    say("done");
    return 0;
}

int main(int argc, char **argv)
{
    saved_argc = argc;
    saved_argv = argv;
    argv_copy = calloc((size_t)argc + 1, sizeof *argv_copy);
    for (int i = 0; i < argc; i++)
        argv_copy[i] = strdup(argv[i]);

    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "state") == 0)
        return state_mode(0);
    if (strcmp(mode, "check") == 0)
        return state_mode(1);
    if (strcmp(mode, "read") == 0)
        return read_mode();
    if (strcmp(mode, "sleep") == 0)
        return sleep_mode();
    if (strcmp(mode, "select") == 0)
        return select_mode();
    fprintf(stderr, "usage: glibc_state state|check|read|sleep\n");
    return 2;
}
