/* Prints "ready hooks=1" (or "hooks=0"), then "tick 1", "tick 2", ... every INTERVAL ms
 * (first argument, default 10); with a second argument MAX, stops after "tick MAX", prints
 * "done" and exits 0.
 *
 * The program is not linked with libckpt: it declares the hook registration functions of
 * ckpt.h as weak symbols, which the dynamic loader resolves when the library is preloaded
 * (by `ckpt` or LD_PRELOAD). It then registers hooks that print "pre", "post" and "restart",
 * so that a test knows when a checkpoint happened — "hooks=1" says so.
 *
 * Every line is written with a single write(2): a line printed by a hook (in a signal
 * handler) never splits or overtakes a tick, and a restarted process has no stdio buffer
 * to print a second time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

extern void ckpt_on_preckpt(void (*f)(void *), void *arg) __attribute__((weak));
extern void ckpt_on_postckpt(void (*f)(void *), void *arg) __attribute__((weak));
extern void ckpt_on_restart(void (*f)(void *), void *arg) __attribute__((weak));

static void put(const char *line)
{
    ssize_t written = write(1, line, strlen(line));
    (void)written;
}

static void hook(void *line)
{
    put(line);
}

int main(int argc, char **argv)
{
    long interval = argc > 1 ? atol(argv[1]) : 10;
    unsigned long max = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    int hooks = ckpt_on_preckpt && ckpt_on_postckpt && ckpt_on_restart;
    if (hooks) {
        ckpt_on_preckpt(hook, (void *)"pre\n");
        ckpt_on_postckpt(hook, (void *)"post\n");
        ckpt_on_restart(hook, (void *)"restart\n");
    }
    put(hooks ? "ready hooks=1\n" : "ready hooks=0\n");
    for (unsigned long n = 1; max == 0 || n <= max; n++) {
        char line[64];
        snprintf(line, sizeof line, "tick %lu\n", n);
        put(line);
        sleep_ms(interval);
    }
    put("done\n");
    return 0;
}
