/* A program with a timer of its own: setitimer(ITIMER_REAL) every 50 ms, counting SIGALRMs.
 * Prints "ready", then every 100 ms "round R alarms A ms T": the round number, the SIGALRMs
 * counted so far and the milliseconds since the start (CLOCK_MONOTONIC). While the timer
 * runs undisturbed, A grows by about T / 50.
 *
 * Lines are written with a single write(2) each (see ticker.c). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static long ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void put(const char *line)
{
    ssize_t written = write(1, line, strlen(line));
    (void)written;
}

int main(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGALRM, &action, NULL) != 0) {
        put("BAD sigaction\n");
        return 1;
    }
    struct itimerval timer = { { 0, 50000 }, { 0, 50000 } };
    if (setitimer(ITIMER_REAL, &timer, NULL) != 0) {
        put("BAD setitimer\n");
        return 1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    put("ready\n");
    for (unsigned long round = 1;; round++) {
        sleep_ms(100);
        char line[128];
        snprintf(line, sizeof line, "round %lu alarms %ld ms %ld\n", round, (long)alarms,
                 ms_since(&start));
        put(line);
    }
}
