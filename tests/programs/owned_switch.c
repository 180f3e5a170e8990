/* Moving the checkpoint signal with ckpt_config hands the program's recorded wishes for the
 * signals over to the kernel and back. Linked with -lckpt; run with CKPT_CONTINUE=1.
 *
 *   phase 1: installs its own handlers for SIGTSTP and SIGUSR1 (they print "own tstp N" and
 *            "own usr1 N"), blocks SIGUSR1, reports what sigaction and sigprocmask say
 *            ("tstp=own usr1=own usr1-blocked=yes"), prints "phase 1" and waits for a
 *            checkpoint (the post hook prints "post N");
 *   phase 2: ckpt_config: asyncsig = SIGUSR1; reports again, prints "phase 2" and waits for
 *            its own SIGTSTP handler to run and for a second checkpoint;
 *   phase 3: ckpt_config: asyncsig = SIGTSTP; reports again, prints "phase 3", waits until a
 *            SIGUSR1 is pending (it is blocked again), prints "usr1 pending", unblocks it
 *            (its handler runs), prints "phase 4", then "tick N" every 10 ms.
 * Lines are written with a single write(2) each. */
#include <ckpt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t tstp_count;
static volatile sig_atomic_t usr1_count;
static volatile sig_atomic_t post_count;

static void put(const char *line)
{
    ssize_t written = write(1, line, strlen(line));
    (void)written;
}

static void own_handler(int sig)
{
    char line[] = "own tstp ?\n";
    if (sig == SIGTSTP) {
        tstp_count++;
        line[9] = (char)('0' + tstp_count % 10);
    } else {
        usr1_count++;
        memcpy(line + 4, "usr1", 4);
        line[9] = (char)('0' + usr1_count % 10);
    }
    put(line);
}

static void post_hook(void *arg)
{
    (void)arg;
    post_count++;
    char line[] = "post ?\n";
    line[5] = (char)('0' + post_count % 10);
    put(line);
}

static void report(void)
{
    struct sigaction tstp, usr1;
    sigset_t mask;
    sigaction(SIGTSTP, NULL, &tstp);
    sigaction(SIGUSR1, NULL, &usr1);
    sigprocmask(SIG_BLOCK, NULL, &mask);
    char line[128];
    snprintf(line, sizeof line, "tstp=%s usr1=%s usr1-blocked=%s\n",
             tstp.sa_handler == own_handler ? "own" : "other",
             usr1.sa_handler == own_handler ? "own" : "other",
             sigismember(&mask, SIGUSR1) ? "yes" : "no");
    put(line);
}

static void set_signal(unsigned signal)
{
    struct ckptconfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.flags = CKPT_ASYNCSIG;
    cfg.asyncsig = signal;
    ckpt_config(&cfg, NULL);
}

int main(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = own_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTSTP, &action, NULL);
    sigaction(SIGUSR1, &action, NULL);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    ckpt_on_postckpt(post_hook, NULL);

    report();
    put("phase 1\n");
    while (post_count < 1)
        sleep_ms(5);

    set_signal(SIGUSR1);
    report();
    put("phase 2\n");
    while (tstp_count < 1 || post_count < 2)
        sleep_ms(5);

    set_signal(SIGTSTP);
    report();
    put("phase 3\n");
    for (;;) {
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGUSR1))
            break;
        sleep_ms(5);
    }
    put("usr1 pending\n");
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    put("phase 4\n");
    for (unsigned long n = 1;; n++) {
        char line[64];
        snprintf(line, sizeof line, "tick %lu\n", n);
        put(line);
        sleep_ms(10);
    }
}
