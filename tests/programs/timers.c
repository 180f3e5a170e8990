/* POSIX timers and CPU-time clock ids through checkpoints and restarts.
 *
 * timers timers
 *     Creates five POSIX timers:
 *       tick   CLOCK_MONOTONIC, SIGUSR1 to the process, value 0x7e57, every 20 ms
 *       aimed  CLOCK_MONOTONIC, SIGUSR2 to this thread (SIGEV_THREAD_ID), value -5, every 30 ms
 *       wall   CLOCK_REALTIME, no notification, one shot in 1000 s
 *       cpu    clock_getcpuclockid(getpid()), no notification, one shot in 500 s of CPU time
 *       idle   CLOCK_BOOTTIME, SIGUSR1, never armed
 *     The handlers check that every SIGUSR1 and SIGUSR2 comes from its timer (SI_TIMER, the
 *     timer's id and value). Prints "ids TICK AIMED WALL CPU IDLE", then "ok N ticks T aimed A"
 *     every 20 ms, after checking that every live timer answers timer_gettime and that the
 *     one-shot timers' remaining time never grows and drops by less than 5 s from one round
 *     to the next (a restart included: their remaining time is restored).
 *     After 5 rounds of the original process it blocks SIGUSR1 and SIGUSR2 until both are
 *     pending, prints "held", and keeps them blocked until it has been restarted: the ticks
 *     pending at the checkpoint must then arrive as what they were.
 *     After every restart (its pid changed) it checks the intervals, creates a new timer (its
 *     id must be none of the restored ones) and deletes it, creates one on the CPU clock id
 *     it got before the checkpoints, and on the first restart deletes idle; then prints
 *     "restart N ok ids ..." with the ids of the timers still live.
 * timers clocks
 *     Creates no timer. Keeps clock_getcpuclockid(getpid()) and
 *     pthread_getcpuclockid(pthread_self()) from the start, and checks every 20 ms that
 *     clock_gettime, clock_getres and clock_nanosleep (an absolute time in the past) work on
 *     them and that they read this process's and this thread's CPU time. Prints "ready",
 *     "ok N", and after every restart, once timer_create has accepted both clock ids,
 *     "restart N ok".
 * timers many COUNT
 *     Creates COUNT timers (CLOCK_MONOTONIC, no notification, one shot in 1000 s), prints
 *     "ready", then "ok N" every 20 ms, and after every restart "restart N live L" with the
 *     number L of those ids that answer timer_gettime.
 * timers stranger
 *     Makes a timer on the CPU clock of a thread of its own, which then ends (the timer stays,
 *     on a clock with no thread behind it), and prints "id ID", then "ok N" every 20 ms, and
 *     after every restart "restart N gettime ANSWER" with what timer_gettime on that id answers
 *     ("ok", or the error). Such a timer cannot be made again in a restarted process, and the
 *     library must say so.
 * On a failed check it prints "BAD ..." and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define TICK_VALUE 0x7e57
#define AIMED_VALUE (-5)
#define NS 1000000000LL

static void bad(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("BAD ", stdout);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
    exit(1);
}

static long long nanoseconds(struct timespec t)
{
    return (long long)t.tv_sec * NS + t.tv_nsec;
}

static struct timespec timespec_of(long long ns)
{
    struct timespec t = { ns / NS, ns % NS };
    return t;
}

/* The kernel's id of a timer glibc made for SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD_ID. */
static int kernel_id(timer_t t)
{
    return (int)(intptr_t)t;
}

/* ------------------------------------------------------------------------------------------ */
/* timers */

enum { TICK, AIMED, WALL, CPU, IDLE, TIMERS };
static const char *const names[TIMERS] = { "tick", "aimed", "wall", "cpu", "idle" };
static timer_t timers[TIMERS];
static int live[TIMERS];
/* The one-shot timers' remaining time at the last check. */
static long long remaining[TIMERS];
static clockid_t process_clock, thread_clock;

static volatile sig_atomic_t ticks, aimed_ticks;
/* The first signal that did not come from its timer: its number, code, value and timer id. */
static volatile sig_atomic_t wrong_signal, wrong_code, wrong_value, wrong_timer;

static void on_timer_signal(int sig, siginfo_t *info, void *context)
{
    (void)context;
    int which = sig == SIGUSR1 ? TICK : AIMED;
    int value = sig == SIGUSR1 ? TICK_VALUE : AIMED_VALUE;
    if (info->si_code != SI_TIMER || info->si_value.sival_int != value ||
        info->si_timerid != kernel_id(timers[which])) {
        if (!wrong_signal) {
            wrong_code = info->si_code;
            wrong_value = info->si_value.sival_int;
            wrong_timer = info->si_timerid;
            wrong_signal = sig;
        }
        return;
    }
    if (sig == SIGUSR1)
        ticks++;
    else
        aimed_ticks++;
}

static void make_timer(int which, clockid_t clock, int notify, int sig, int value)
{
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = notify;
    event.sigev_signo = sig;
    event.sigev_value.sival_int = value;
    if (notify == SIGEV_THREAD_ID)
        event._sigev_un._tid = gettid();
    if (timer_create(clock, &event, &timers[which]) != 0)
        bad("setup: timer_create %s: %s", names[which], strerror(errno));
    live[which] = 1;
}

static void arm(int which, long long value_ns, long long interval_ns)
{
    struct itimerspec spec = { timespec_of(interval_ns), timespec_of(value_ns) };
    if (timer_settime(timers[which], 0, &spec, NULL) != 0)
        bad("setup: timer_settime %s: %s", names[which], strerror(errno));
}

static struct itimerspec setting(int which)
{
    struct itimerspec now;
    if (timer_gettime(timers[which], &now) != 0)
        bad("gettime %s: timer id %d: %s", names[which], kernel_id(timers[which]),
            strerror(errno));
    return now;
}

static void set_up_timers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_timer_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGUSR1, &action, NULL) != 0 || sigaction(SIGUSR2, &action, NULL) != 0)
        bad("setup: sigaction: %s", strerror(errno));
    if (clock_getcpuclockid(getpid(), &process_clock) != 0)
        bad("setup: clock_getcpuclockid");
    make_timer(TICK, CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, TICK_VALUE);
    make_timer(AIMED, CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGUSR2, AIMED_VALUE);
    make_timer(WALL, CLOCK_REALTIME, SIGEV_NONE, 0, 0);
    make_timer(CPU, process_clock, SIGEV_NONE, 0, 0);
    make_timer(IDLE, CLOCK_BOOTTIME, SIGEV_SIGNAL, SIGUSR1, TICK_VALUE);
    arm(TICK, 20 * 1000000LL, 20 * 1000000LL);
    arm(AIMED, 30 * 1000000LL, 30 * 1000000LL);
    arm(WALL, 1000 * NS, 0);
    arm(CPU, 500 * NS, 0);
    remaining[WALL] = 1000 * NS;
    remaining[CPU] = 500 * NS;
    printf("ids");
    for (int i = 0; i < TIMERS; i++)
        printf(" %d", kernel_id(timers[i]));
    printf("\n");
    fflush(stdout);
}

static void check_timers(void)
{
    if (wrong_signal)
        bad("signal %d did not come from its timer: si_code %d, value %d, timer id %d",
            (int)wrong_signal, (int)wrong_code, (int)wrong_value, (int)wrong_timer);
    for (int i = 0; i < TIMERS; i++) {
        if (!live[i])
            continue;
        struct itimerspec now = setting(i);
        if (i != WALL && i != CPU)
            continue;
        long long left = nanoseconds(now.it_value);
        if (left <= 0 || left > remaining[i] || remaining[i] - left > 5 * NS)
            bad("%s: %lld ns left, %lld ns at the last check", names[i], left, remaining[i]);
        remaining[i] = left;
    }
}

static void check_interval(int which, long long expected)
{
    long long interval = nanoseconds(setting(which).it_interval);
    if (interval != expected)
        bad("%s: interval %lld ns, expected %lld ns", names[which], interval, expected);
}

static void check_timers_after_restart(int restarts)
{
    check_interval(TICK, 20 * 1000000LL);
    check_interval(AIMED, 30 * 1000000LL);
    check_interval(WALL, 0);

    struct sigevent none;
    memset(&none, 0, sizeof none);
    none.sigev_notify = SIGEV_NONE;
    timer_t fresh;
    if (timer_create(CLOCK_MONOTONIC, &none, &fresh) != 0)
        bad("timer_create after restart %d: %s", restarts, strerror(errno));
    for (int i = 0; i < TIMERS; i++)
        if (live[i] && kernel_id(timers[i]) == kernel_id(fresh))
            bad("a new timer got id %d, the id of %s", kernel_id(fresh), names[i]);
    struct itimerspec spec = { { 0, 0 }, { 100, 0 } }, now;
    if (timer_settime(fresh, 0, &spec, NULL) != 0 || timer_gettime(fresh, &now) != 0 ||
        now.it_value.tv_sec < 99)
        bad("the new timer %d does not keep its setting", kernel_id(fresh));
    if (timer_delete(fresh) != 0)
        bad("timer_delete of the new timer %d: %s", kernel_id(fresh), strerror(errno));

    timer_t on_old_clock;
    if (timer_create(process_clock, &none, &on_old_clock) != 0)
        bad("timer_create on the CPU clock id %d from before the restarts: %s", (int)process_clock,
            strerror(errno));
    timer_delete(on_old_clock);

    if (restarts == 1) {
        struct itimerspec idle = setting(IDLE);
        if (idle.it_value.tv_sec != 0 || idle.it_value.tv_nsec != 0)
            bad("idle is armed after the restart");
        if (timer_delete(timers[IDLE]) != 0)
            bad("timer_delete idle (id %d): %s", kernel_id(timers[IDLE]), strerror(errno));
        if (timer_gettime(timers[IDLE], &now) == 0 || errno != EINVAL)
            bad("idle (id %d) answers timer_gettime after timer_delete", kernel_id(timers[IDLE]));
        live[IDLE] = 0;
    }
    printf("restart %d ok ids", restarts);
    for (int i = 0; i < TIMERS; i++)
        if (live[i])
            printf(" %d", kernel_id(timers[i]));
    printf("\n");
}

/* Blocks SIGUSR1 and SIGUSR2 until both are pending, says "held", and keeps them blocked
 * until the process has been restarted (its pid is not `pid` any more). */
static void hold_ticks_until_restarted(pid_t pid)
{
    sigset_t both, pending;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    sigprocmask(SIG_BLOCK, &both, NULL);
    do {
        sleep_ms(5);
        sigpending(&pending);
    } while (!sigismember(&pending, SIGUSR1) || !sigismember(&pending, SIGUSR2));
    puts("held");
    fflush(stdout);
    while (getpid() == pid)
        sleep_ms(5);
    sigprocmask(SIG_UNBLOCK, &both, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* CPU-time clocks */

/* `clock` must read what `self_clock` (CLOCK_PROCESS_CPUTIME_ID or CLOCK_THREAD_CPUTIME_ID)
 * reads: between two readings of it. */
static void check_cpu_clock(const char *what, clockid_t clock, clockid_t self_clock)
{
    struct timespec before, value, after, resolution;
    if (clock_gettime(self_clock, &before) != 0)
        bad("clock_gettime %d: %s", (int)self_clock, strerror(errno));
    if (clock_gettime(clock, &value) != 0)
        bad("clock_gettime on the %s CPU clock id %d: %s", what, (int)clock, strerror(errno));
    if (clock_gettime(self_clock, &after) != 0)
        bad("clock_gettime %d: %s", (int)self_clock, strerror(errno));
    if (nanoseconds(value) < nanoseconds(before) || nanoseconds(value) > nanoseconds(after))
        bad("the %s CPU clock id %d reads %lld ns, not between %lld and %lld ns", what,
            (int)clock, nanoseconds(value), nanoseconds(before), nanoseconds(after));
    if (clock_getres(clock, &resolution) != 0)
        bad("clock_getres on the %s CPU clock id %d: %s", what, (int)clock, strerror(errno));
}

static void check_clocks(void)
{
    check_cpu_clock("process", process_clock, CLOCK_PROCESS_CPUTIME_ID);
    check_cpu_clock("thread", thread_clock, CLOCK_THREAD_CPUTIME_ID);
    struct timespec past = { 0, 0 };
    int error = clock_nanosleep(process_clock, TIMER_ABSTIME, &past, NULL);
    if (error != 0)
        bad("clock_nanosleep on the process CPU clock id %d: %s", (int)process_clock,
            strerror(error));
}

static void check_clocks_after_restart(int restarts)
{
    clockid_t clocks[2] = { process_clock, thread_clock };
    for (int i = 0; i < 2; i++) {
        struct sigevent none;
        memset(&none, 0, sizeof none);
        none.sigev_notify = SIGEV_NONE;
        timer_t timer;
        if (timer_create(clocks[i], &none, &timer) != 0)
            bad("timer_create on the CPU clock id %d: %s", (int)clocks[i], strerror(errno));
        timer_delete(timer);
    }
    printf("restart %d ok\n", restarts);
}

/* ------------------------------------------------------------------------------------------ */

/* A thread that ends once the main thread has reached `barrier` too. */
static void *wait_at_barrier(void *barrier)
{
    pthread_barrier_wait(barrier);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int clocks = strcmp(mode, "clocks") == 0, many = strcmp(mode, "many") == 0;
    int stranger = strcmp(mode, "stranger") == 0;
    if (!clocks && !many && !stranger && strcmp(mode, "timers") != 0) {
        fprintf(stderr, "usage: timers timers|clocks|many COUNT|stranger\n");
        return 2;
    }
    pid_t pid = getpid();
    int restarts = 0;
    int count = many && argc > 2 ? atoi(argv[2]) : 0;
    timer_t *lots = many ? calloc(count, sizeof *lots) : NULL;
    timer_t on_thread;

    if (clocks) {
        if (clock_getcpuclockid(pid, &process_clock) != 0 ||
            pthread_getcpuclockid(pthread_self(), &thread_clock) != 0)
            bad("setup: cannot get the CPU clock ids");
        puts("ready");
    } else if (many) {
        struct sigevent none;
        memset(&none, 0, sizeof none);
        none.sigev_notify = SIGEV_NONE;
        struct itimerspec spec = { { 0, 0 }, { 1000, 0 } };
        for (int i = 0; i < count; i++)
            if (timer_create(CLOCK_MONOTONIC, &none, &lots[i]) != 0 ||
                timer_settime(lots[i], 0, &spec, NULL) != 0)
                bad("setup: timer %d of %d: %s", i, count, strerror(errno));
        puts("ready");
    } else if (stranger) {
        pthread_barrier_t started;
        pthread_t thread;
        clockid_t thread_cpu_clock;
        struct sigevent none;
        memset(&none, 0, sizeof none);
        none.sigev_notify = SIGEV_NONE;
        struct itimerspec spec = { { 0, 0 }, { 1000, 0 } };
        pthread_barrier_init(&started, NULL, 2);
        if (pthread_create(&thread, NULL, wait_at_barrier, &started) != 0 ||
            pthread_getcpuclockid(thread, &thread_cpu_clock) != 0 ||
            timer_create(thread_cpu_clock, &none, &on_thread) != 0 ||
            timer_settime(on_thread, 0, &spec, NULL) != 0)
            bad("setup: a timer on a thread's CPU clock: %s", strerror(errno));
        pthread_barrier_wait(&started);
        pthread_join(thread, NULL);
        printf("id %d\n", kernel_id(on_thread));
    } else {
        set_up_timers();
    }
    fflush(stdout);

    for (unsigned long round = 1;; round++) {
        if (getpid() != pid) {
            pid = getpid();
            restarts++;
            if (clocks) {
                check_clocks();
                check_clocks_after_restart(restarts);
            } else if (stranger) {
                struct itimerspec now;
                int answered = timer_gettime(on_thread, &now) == 0;
                printf("restart %d gettime %s\n", restarts, answered ? "ok" : strerror(errno));
            } else if (many) {
                int answering = 0;
                struct itimerspec now;
                for (int i = 0; i < count; i++)
                    answering += timer_gettime(lots[i], &now) == 0;
                printf("restart %d live %d\n", restarts, answering);
            } else {
                check_timers();
                check_timers_after_restart(restarts);
            }
        }
        if (clocks) {
            check_clocks();
            printf("ok %lu\n", round);
        } else if (many || stranger) {
            printf("ok %lu\n", round);
        } else {
            check_timers();
            printf("ok %lu ticks %d aimed %d\n", round, (int)ticks, (int)aimed_ticks);
        }
        fflush(stdout);
        if (!clocks && !many && !stranger && restarts == 0 && round == 5)
            hold_ticks_until_restarted(pid);
        sleep_ms(20);
    }
}
