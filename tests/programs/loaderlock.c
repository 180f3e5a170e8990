/* A thread holds the loader's lock at the checkpoint: it is inside dlopen, running the
 * constructor of libslowinit.so, which waits. After a restart the constructor finishes,
 * dlopen returns (unlocking the lock, by glibc's internal mutex code), and the loader's lock
 * must be free again: a second dlopen and exit() (whose destructors take it) must not wait
 * forever. For tests/threads.rs; build with -rdynamic (the library sees loader_go).
 *
 * Prints "ready" once the thread is inside the constructor; for "check" on stdin: "dlopen
 * returned", "second dlopen ok", "done", and exits 0 through exit(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

volatile int loader_go, in_constructor;
static const char *library;

static void *opener(void *arg)
{
    (void)arg;
    void *h = dlopen(library, RTLD_NOW);
    printf("dlopen returned%s\n", h ? "" : " NULL");
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: loaderlock LIBRARY\n");
        return 2;
    }
    library = argv[1];
    pthread_t t;
    pthread_create(&t, NULL, opener, NULL);
    while (!in_constructor)
        sleep_ms(1);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin) || strncmp(line, "check", 5) != 0)
        return 3;
    loader_go = 1;
    pthread_join(t, NULL);
    void *m = dlopen("libm.so.6", RTLD_NOW);
    printf("second dlopen %s\n", m ? "ok" : "failed");
    printf("done\n");
    fflush(stdout);
    exit(0);
}
