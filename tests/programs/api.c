/* Exercises the C API of ckpt.h; linked with -lckpt. The mode is the first argument:
 *
 *   api sync [cont] [name=NAME]
 *       Registers two hooks of each kind (they print "pre 1", "pre 2", "post 1", "post 2",
 *       "restart 1", "restart 2"), sets CKPT_CONTINUE with ckpt_config when "cont" is given,
 *       prints "ready" and "copies N" (how many distinct libckpt.so files are mapped), calls
 *       ckpt_ckpt(NAME or NULL) once and prints "ckpt_ckpt R" (for -1: "ckpt_ckpt -1 errno E
 *       (message)"), then the configured name ("name api.ckpt"), "count 1" to "count 3" and
 *       "done", and exits 0.
 *   api async [cont]
 *       The same hooks and set-up, then "tick N" every 10 ms until a signal checkpoints it.
 *   api config
 *       Prints the configuration read with ckpt_config ("defaults: flags=… name=… asyncsig=…
 *       continues=… msperiod=…"), then changes it field by field and prints what it reads
 *       back after each step (see config_mode), ends with asynchronous checkpoints on SIGUSR2
 *       to "second.ckpt", prints "ready" and ticks like async.
 *
 * Every line is written with a single write(2), so that lines printed by hooks (possibly in
 * a signal handler) never split or overtake another, and a restarted process has no stdio
 * buffer to print a second time. */
#include <ckpt.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static void out(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void out(const char *format, ...)
{
    char line[2 * CKPT_MAXNAME];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line, format, args);
    va_end(args);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    ssize_t written = write(1, line, (size_t)n);
    (void)written;
}

/* The hooks: print their argument, with write(2) only (they may run in a signal handler). */
static void hook(void *arg)
{
    const char *line = arg;
    ssize_t written = write(1, line, strlen(line));
    (void)written;
}

/* How many different libckpt.so files (by inode) are mapped: 1 unless loaded twice. */
static int copies_of_libckpt(void)
{
    unsigned long inodes[16];
    int count = 0;
    char line[4096];
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return -1;
    while (fgets(line, sizeof line, maps)) {
        unsigned long inode;
        if (!strstr(line, "libckpt") || sscanf(line, "%*s %*s %*s %*s %lu", &inode) != 1)
            continue;
        int known = 0;
        for (int i = 0; i < count; i++)
            known |= inodes[i] == inode;
        if (!known && count < 16)
            inodes[count++] = inode;
    }
    fclose(maps);
    return count;
}

static void tick_forever(void)
{
    for (unsigned long n = 1;; n++) {
        out("tick %lu\n", n);
        sleep_ms(10);
    }
}

static void show(const char *label)
{
    struct ckptconfig now;
    memset(&now, 0x55, sizeof now);
    now.name[sizeof now.name - 1] = '\0';
    ckpt_config(NULL, &now);
    out("%s: flags=%d name=%s asyncsig=%u continues=%u msperiod=%u\n", label, now.flags,
        now.name, now.asyncsig, now.continues, now.msperiod);
}

/* Applies a configuration with the given flags and fields, then scribbles over the name in
 * the struct: ckpt must have copied it. */
static void apply(int flags, const char *name, unsigned asyncsig, unsigned continues,
                  unsigned msperiod)
{
    struct ckptconfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.flags = flags;
    snprintf(cfg.name, sizeof cfg.name, "%s", name);
    cfg.asyncsig = asyncsig;
    cfg.continues = continues;
    cfg.msperiod = msperiod;
    ckpt_config(&cfg, NULL);
    memset(cfg.name, 'x', sizeof cfg.name - 1);
}

static int config_mode(void)
{
    const int all = CKPT_NAME | CKPT_ASYNCSIG | CKPT_CONTINUE | CKPT_MSPERIOD;
    show("defaults");

    /* The environment is read once, when the library is loaded. */
    setenv("CKPT_NAME", "changed.ckpt", 1);
    setenv("CKPT_ASYNCSIG", "USR1", 1);
    setenv("CKPT_CONTINUE", "1", 1);
    setenv("CKPT_MSPERIOD", "5", 1);
    show("after setenv");

    /* All four fields at once, reading the old values in the same call. */
    struct ckptconfig cfg, old;
    memset(&cfg, 0, sizeof cfg);
    memset(&old, 0x55, sizeof old);
    old.name[sizeof old.name - 1] = '\0';
    cfg.flags = all;
    snprintf(cfg.name, sizeof cfg.name, "first.ckpt");
    cfg.asyncsig = SIGUSR1;
    cfg.continues = 1;
    cfg.msperiod = 3600000;
    ckpt_config(&cfg, &old);
    out("old: flags=%d name=%s asyncsig=%u continues=%u msperiod=%u\n", old.flags, old.name,
        old.asyncsig, old.continues, old.msperiod);
    memset(cfg.name, 'x', sizeof cfg.name - 1);
    show("all four");

    /* Only the fields whose flags are set change. */
    apply(CKPT_NAME, "second.ckpt", SIGUSR2, 0, 5);
    show("name only");
    apply(CKPT_CONTINUE | CKPT_MSPERIOD, "third.ckpt", SIGUSR2, 0, 0);
    show("continue and period");
    apply(CKPT_ASYNCSIG, "fourth.ckpt", SIGUSR2, 1, 7);
    show("signal only");
    apply(0, "fifth.ckpt", SIGINT, 1, 9);
    show("no flags");

    /* Invalid values are refused (with a message on stderr); the fields keep their values. */
    out("invalid values\n");
    apply(CKPT_NAME, "", SIGUSR1, 1, 1);
    apply(CKPT_ASYNCSIG, "sixth.ckpt", SIGKILL, 1, 1);
    apply(CKPT_ASYNCSIG, "sixth.ckpt", SIGSTOP, 1, 1);
    show("after invalid");

    ckpt_config(NULL, NULL);
    out("null ok\n");

    out("ready\n");
    tick_forever();
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "sync";
    int cont = 0;
    char *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "cont") == 0)
            cont = 1;
        else if (strncmp(argv[i], "name=", 5) == 0)
            name = argv[i] + 5;
        else {
            out("BAD argument %s\n", argv[i]);
            return 1;
        }
    }
    if (strcmp(mode, "config") == 0)
        return config_mode();
    if (strcmp(mode, "sync") != 0 && strcmp(mode, "async") != 0) {
        out("BAD mode %s\n", mode);
        return 1;
    }

    ckpt_on_preckpt(hook, (void *)"pre 1\n");
    ckpt_on_postckpt(hook, (void *)"post 1\n");
    ckpt_on_restart(hook, (void *)"restart 1\n");
    ckpt_on_preckpt(hook, (void *)"pre 2\n");
    ckpt_on_postckpt(hook, (void *)"post 2\n");
    ckpt_on_restart(hook, (void *)"restart 2\n");
    if (cont) {
        struct ckptconfig cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.flags = CKPT_CONTINUE;
        cfg.continues = 1;
        ckpt_config(&cfg, NULL);
    }
    out("ready\n");
    out("copies %d\n", copies_of_libckpt());

    if (strcmp(mode, "async") == 0)
        tick_forever();

    errno = 0;
    int result = ckpt_ckpt(name);
    if (result == CKPT_CKPT_FAILED) {
        int error = errno;
        out("ckpt_ckpt -1 errno %d (%s)\n", error, strerror(error));
    } else {
        out("ckpt_ckpt %d\n", result);
    }
    struct ckptconfig now;
    ckpt_config(NULL, &now);
    out("name %s\n", now.name);
    for (int i = 1; i <= 3; i++)
        out("count %d\n", i);
    out("done\n");
    return 0;
}
