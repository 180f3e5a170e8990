/* Changing the checkpoint signal with ckpt_config puts back the program's own handler.
 * Linked with -lckpt; run with the default configuration.
 *
 *   phase 1: installs its own SIGUSR2 handler (prints "own usr2 N"), prints "phase 1" and
 *            waits until the handler ran once;
 *   phase 2: ckpt_config: asyncsig = SIGUSR2, continues = 1; prints what sigaction says
 *            SIGUSR2 and SIGTSTP are handled by ("usr2 handler own|other", "tstp handler
 *            default|other"), prints "phase 2" and waits for a checkpoint (the post hook
 *            prints "post");
 *   phase 3: ckpt_config: asyncsig = SIGTSTP, continues = 0; prints the handlers again and
 *            "phase 3", then "tick N" every 10 ms.
 * The restart hook prints "restart". Lines are written with a single write(2) each. */
#include <ckpt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t own_count;
static volatile sig_atomic_t post_count;

static void put(const char *line)
{
    ssize_t written = write(1, line, strlen(line));
    (void)written;
}

static void own_handler(int sig)
{
    (void)sig;
    own_count++;
    char line[] = "own usr2 ?\n";
    line[9] = (char)('0' + own_count % 10);
    put(line);
}

static void post_hook(void *arg)
{
    (void)arg;
    post_count++;
    put("post\n");
}

static void restart_hook(void *arg)
{
    (void)arg;
    put("restart\n");
}

static void show_handlers(void)
{
    struct sigaction usr2, tstp;
    sigaction(SIGUSR2, NULL, &usr2);
    sigaction(SIGTSTP, NULL, &tstp);
    put(usr2.sa_handler == own_handler ? "usr2 handler own\n" : "usr2 handler other\n");
    put(tstp.sa_handler == SIG_DFL ? "tstp handler default\n" : "tstp handler other\n");
}

static void set_signal(unsigned signal, unsigned continues)
{
    struct ckptconfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.flags = CKPT_ASYNCSIG | CKPT_CONTINUE;
    cfg.asyncsig = signal;
    cfg.continues = continues;
    ckpt_config(&cfg, NULL);
}

int main(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = own_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR2, &action, NULL);
    ckpt_on_postckpt(post_hook, NULL);
    ckpt_on_restart(restart_hook, NULL);

    put("phase 1\n");
    while (own_count < 1)
        sleep_ms(5);

    set_signal(SIGUSR2, 1);
    show_handlers();
    put("phase 2\n");
    while (post_count < 1)
        sleep_ms(5);

    set_signal(SIGTSTP, 0);
    show_handlers();
    put("phase 3\n");
    for (unsigned long n = 1;; n++) {
        char line[64];
        snprintf(line, sizeof line, "tick %lu\n", n);
        put(line);
        sleep_ms(10);
    }
}
