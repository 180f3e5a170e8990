/* Timers after a fork: the parent reads the clock in a loop (so that its checkpoints are put
 * off with libckpt's retry timer) until SIGUSR2, then forks. The child makes a POSIX timer of
 * its own (the first of its process, so it gets the id the parent's retry timer has), arms
 * it for 60 s, prints "child ready PID", and reads the clock in a loop, printing
 * "child ok N" now and then; "BAD …" if its timer fires (libckpt must not arm a timer id it
 * inherited). The parent prints "ready" first and waits for the child after forking. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t go, fired;

static void on_usr2(int sig)
{
    (void)sig;
    go = 1;
}

static void on_alarm(int sig)
{
    (void)sig;
    fired = 1;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGUSR2, on_usr2);
    signal(SIGALRM, on_alarm);
    printf("ready\n");
    struct timespec t;
    while (!go)
        clock_gettime(CLOCK_MONOTONIC, &t);
    pid_t child = fork();
    if (child == 0) {
        timer_t id;
        struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM };
        struct itimerspec later = { .it_value = { .tv_sec = 60 } };
        if (timer_create(CLOCK_MONOTONIC, &ev, &id) != 0 || timer_settime(id, 0, &later, NULL) != 0) {
            printf("BAD child timer setup\n");
            return 1;
        }
        printf("child ready %d\n", (int)getpid());
        for (unsigned long n = 1;; n++) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (fired) {
                printf("BAD child timer fired\n");
                return 1;
            }
            if (n % 2000000 == 0)
                printf("child ok %lu\n", n / 2000000);
        }
    }
    waitpid(child, NULL, 0);
    return 0;
}
