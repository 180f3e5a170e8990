/* A program that tries to take ckpt's signals (SIGTSTP and signal 63) for itself. The mode
 * is the first argument:
 *
 *   sigaction | signal
 *       Installs its own SIGTSTP handler (with sigaction or with signal()), prints "ready",
 *       then "ok N handler=own" every 10 ms, asking sigaction() each time what SIGTSTP's
 *       handler is ("handler=other" when it is not its own).
 *   block | pthread_block
 *       Blocks every signal (sigfillset, then sigprocmask or pthread_sigmask), prints
 *       "ready", then "ok N blocked=all" every 10 ms, asking each time whether SIGTSTP,
 *       signal 63 and SIGUSR2 are blocked ("blocked=" lists the ones that are not).
 *   report
 *       Changes nothing, prints "ready", then "ok N blocked=…" every 10 ms as block does
 *       (for a mask inherited across exec).
 *   wait KIND
 *       Waits with every signal blocked, in a loop: KIND is sigsuspend, pselect, ppoll,
 *       epoll_pwait or epoll_pwait2 (each given a full mask; it prints "woke N" when the
 *       call returns) or sigwait (every signal blocked, waiting for all; it prints
 *       "got SIG"). Prints "ready" first.
 *   fatal
 *       Like top: installs a handler that prints "fatal N" and exits 3 for every signal it
 *       can catch (1-64), prints "ready", then "ok N" every 10 ms.
 *   raw
 *       Sets SIGTSTP to SIG_IGN with a raw rt_sigaction system call, past any wrapper,
 *       prints "ready", then "ok N" every 10 ms.
 *   compare
 *       Runs the same sequence of signal calls (signal, sigaction, siginterrupt,
 *       sysv_signal, sigset, sighold, sigrelse, sigignore, sigblock, sigsetmask,
 *       siggetmask, sigprocmask, pthread_sigmask, in a second thread and in a child) on
 *       SIGTSTP and SIGUSR2, then on 63 and 62, printing "compare SIG: RESULTS" for each;
 *       then prints "ready" and "ok N" every 10 ms.
 *
 * The program's own handlers for SIGTSTP print "BAD own handler ran" (under ckpt they are
 * recorded, never called). Lines are written with a single write(2) each. */
#define _GNU_SOURCE
/* The old interfaces are what this program is about. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define CONTROL 63

/* Declared by signal.h only for older standards; glibc exports it (it is signal()). */
extern __sighandler_t bsd_signal(int sig, __sighandler_t handler);

static void put(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void put(const char *format, ...)
{
    char line[4096];
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

static void own_tstp(int sig)
{
    (void)sig;
    static const char line[] = "BAD own handler ran\n";
    ssize_t written = write(1, line, sizeof line - 1);
    (void)written;
}

static void fatal(int sig)
{
    char line[] = "fatal ??\n";
    line[6] = (char)('0' + sig / 10);
    line[7] = (char)('0' + sig % 10);
    ssize_t written = write(1, line, sizeof line - 1);
    (void)written;
    _exit(3);
}

static const char *tstp_handler(void)
{
    struct sigaction now;
    if (sigaction(SIGTSTP, NULL, &now) != 0)
        return "error";
    return now.sa_handler == own_tstp ? "own" : "other";
}

/* Which of SIGTSTP, 63 and SIGUSR2 are not blocked, or "all". */
static const char *blocked(void)
{
    static char missing[64];
    sigset_t mask;
    if (sigprocmask(SIG_BLOCK, NULL, &mask) != 0)
        return "error";
    missing[0] = 0;
    if (!sigismember(&mask, SIGTSTP))
        strcat(missing, "-tstp");
    if (!sigismember(&mask, CONTROL))
        strcat(missing, "-63");
    if (!sigismember(&mask, SIGUSR2))
        strcat(missing, "-usr2");
    return missing[0] ? missing : "all";
}

static void ticks(const char *(*status)(const char *), const char *name)
{
    put("ready\n");
    for (unsigned long n = 1;; n++) {
        put("ok %lu%s\n", n, status ? status(name) : "");
        sleep_ms(10);
    }
}

static const char *handler_status(const char *unused)
{
    (void)unused;
    static char text[32];
    snprintf(text, sizeof text, " handler=%s", tstp_handler());
    return text;
}

static const char *blocked_status(const char *unused)
{
    (void)unused;
    static char text[96];
    snprintf(text, sizeof text, " blocked=%s", blocked());
    return text;
}

/* ---- compare: the same calls on a signal ckpt owns and on one it does not ---- */

static void h1(int sig) { (void)sig; }
static void h2(int sig) { (void)sig; }
static void h3(int sig, siginfo_t *info, void *context) { (void)sig, (void)info, (void)context; }

static void (*libc_restorer)(void);

static const char *name_of(void (*h)(int))
{
    if (h == SIG_DFL)
        return "DFL";
    if (h == SIG_IGN)
        return "IGN";
    if (h == SIG_ERR)
        return "ERR";
    if (h == SIG_HOLD)
        return "HOLD";
    if (h == h1)
        return "h1";
    if (h == h2)
        return "h2";
    if (h == (void (*)(int))h3)
        return "h3";
    return "other";
}

struct record {
    char text[2048];
};

static void add(struct record *r, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void add(struct record *r, const char *format, ...)
{
    size_t len = strlen(r->text);
    va_list args;
    va_start(args, format);
    vsnprintf(r->text + len, sizeof r->text - len, format, args);
    va_end(args);
}

static int is_blocked(int sig)
{
    sigset_t mask;
    if (pthread_sigmask(SIG_SETMASK, NULL, &mask) != 0)
        return -1;
    return sigismember(&mask, sig);
}

/* What sigaction says of `sig`: handler, flags, restorer, and which of sig, SIGINT,
 * SIGKILL and SIGSTOP its mask holds. */
static void add_action(struct record *r, int sig)
{
    struct sigaction now;
    memset(&now, 0, sizeof now);
    if (sigaction(sig, NULL, &now) != 0) {
        add(r, " query=%d", errno);
        return;
    }
    add(r, " [%s flags=%#x restorer=%s mask=%d%d%d%d]", name_of(now.sa_handler), (unsigned)now.sa_flags,
        now.sa_restorer == libc_restorer ? "libc" : now.sa_restorer ? "other" : "none",
        sigismember(&now.sa_mask, sig), sigismember(&now.sa_mask, SIGINT),
        sigismember(&now.sa_mask, SIGKILL), sigismember(&now.sa_mask, SIGSTOP));
}

static void *block_in_thread(void *arg)
{
    int sig = *(int *)arg;
    static int result[3];
    result[0] = is_blocked(sig);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    result[1] = is_blocked(sig);
    return result;
}

static void *report_in_thread(void *arg)
{
    static int result;
    result = is_blocked(*(int *)arg);
    return &result;
}

static void compare(int sig, const char *label)
{
    struct record r = { "" };
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, sig);

    /* BSD signal(): SA_RESTART and the signal itself in the mask, unless siginterrupt. */
    add(&r, "signal=%s", name_of(signal(sig, h1)));
    add_action(&r, sig);
    add(&r, " siginterrupt=%d", siginterrupt(sig, 1));
    add_action(&r, sig);
    add(&r, " signal=%s", name_of(signal(sig, h2)));
    add_action(&r, sig);
    add(&r, " siginterrupt=%d", siginterrupt(sig, 0));
    add(&r, " bsd_signal=%s", name_of(bsd_signal(sig, h1)));
    add_action(&r, sig);
    add(&r, " signal(SIG_ERR)=%s", name_of(signal(sig, SIG_ERR)));
    add(&r, " errno=%d", errno);

    /* SysV: one-shot, not masked, interrupting. */
    add(&r, " sysv_signal=%s", name_of(sysv_signal(sig, h2)));
    add_action(&r, sig);

    /* sigaction: SA_SIGINFO, flags the kernel drops (0x400), SIGKILL/SIGSTOP in the mask. */
    struct sigaction act, previous;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = h3;
    act.sa_flags = SA_SIGINFO | SA_ONSTACK | 0x400;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, SIGINT);
    sigaddset(&act.sa_mask, SIGKILL);
    sigaddset(&act.sa_mask, SIGSTOP);
    memset(&previous, 0, sizeof previous);
    add(&r, " sigaction=%d", sigaction(sig, &act, &previous));
    add(&r, " previous=%s/%#x", name_of(previous.sa_handler), (unsigned)previous.sa_flags);
    add_action(&r, sig);

    /* System V sigset/sighold/sigrelse/sigignore. */
    add(&r, " sigset(HOLD)=%s", name_of(sigset(sig, SIG_HOLD)));
    add(&r, " blocked=%d", is_blocked(sig));
    add(&r, " sigset(HOLD)=%s", name_of(sigset(sig, SIG_HOLD)));
    add(&r, " sigset(h1)=%s", name_of(sigset(sig, h1)));
    add(&r, " blocked=%d", is_blocked(sig));
    add_action(&r, sig);
    add(&r, " sigset(h2)=%s", name_of(sigset(sig, h2)));
    add(&r, " sighold=%d", sighold(sig));
    add(&r, " blocked=%d", is_blocked(sig));
    add(&r, " sigrelse=%d", sigrelse(sig));
    add(&r, " blocked=%d", is_blocked(sig));
    add(&r, " sigignore=%d", sigignore(sig));
    add_action(&r, sig);

    /* BSD masks: only the first 31 signals fit in an int. */
    if (sig < 32) {
        int bit = 1 << (sig - 1);
        int before = sigblock(bit);
        add(&r, " sigblock=%d", (before & bit) != 0);
        add(&r, " blocked=%d", is_blocked(sig));
        add(&r, " siggetmask=%d", (siggetmask() & bit) != 0);
        add(&r, " sigsetmask=%d", (sigsetmask(before) & bit) != 0);
        add(&r, " blocked=%d", is_blocked(sig));
    } else {
        add(&r, " bsd-masks=n/a");
    }

    /* POSIX masks, with a bad `how` that must change nothing. */
    add(&r, " sigprocmask=%d", sigprocmask(SIG_BLOCK, &set, &old));
    add(&r, " old=%d", sigismember(&old, sig));
    add(&r, " blocked=%d", is_blocked(sig));
    errno = 0;
    int result = sigprocmask(12345, &set, NULL);
    add(&r, " bad-how=%d/%d", result, errno);
    add(&r, " pthread-bad-how=%d", pthread_sigmask(12345, &set, NULL));
    add(&r, " blocked=%d", is_blocked(sig));
    sigemptyset(&old);
    add(&r, " setmask=%d", pthread_sigmask(SIG_SETMASK, &set, &old));
    add(&r, " old=%d", sigismember(&old, sig));
    add(&r, " unblock=%d", sigprocmask(SIG_UNBLOCK, &set, NULL));
    add(&r, " blocked=%d", is_blocked(sig));

    /* Masks are per thread; a child process inherits its parent's. */
    pthread_t thread;
    int *seen;
    pthread_create(&thread, NULL, block_in_thread, &sig);
    pthread_join(thread, (void **)&seen);
    add(&r, " thread=%d%d", seen[0], seen[1]);
    add(&r, " main=%d", is_blocked(sig));
    pthread_create(&thread, NULL, report_in_thread, &sig);
    pthread_join(thread, (void **)&seen);
    add(&r, " next-thread=%d", seen[0]);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t child = fork();
    if (child == 0)
        _exit(is_blocked(sig) == 1 ? 7 : 8);
    int status = 0;
    waitpid(child, &status, 0);
    add(&r, " child=%d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    add(&r, " reset=%s", name_of(signal(sig, SIG_DFL)));
    add_action(&r, sig);
    put("compare %s: %s\n", label, r.text);
}

static void compare_all(void)
{
    struct sigaction reference;
    signal(SIGUSR1, h1);
    sigaction(SIGUSR1, NULL, &reference);
    libc_restorer = reference.sa_restorer;
    signal(SIGUSR1, SIG_DFL);

    compare(SIGUSR2, "USR2");
    compare(SIGTSTP, "TSTP");
    compare(CONTROL - 1, "62");
    compare(CONTROL, "63");
}

/* Waits in `kind` with a full mask, or for every signal with sigwait. */
static void wait_mode(const char *kind)
{
    sigset_t all;
    sigfillset(&all);
    int epfd = epoll_create1(0);
    if (strcmp(kind, "sigwait") == 0)
        sigprocmask(SIG_SETMASK, &all, NULL);
    put("ready\n");
    for (unsigned long n = 1;; n++) {
        int sig = 0;
        if (strcmp(kind, "sigsuspend") == 0) {
            sigsuspend(&all);
        } else if (strcmp(kind, "pselect") == 0) {
            pselect(0, NULL, NULL, NULL, NULL, &all);
        } else if (strcmp(kind, "ppoll") == 0) {
            ppoll(NULL, 0, NULL, &all);
        } else if (strcmp(kind, "epoll_pwait") == 0) {
            struct epoll_event event;
            epoll_pwait(epfd, &event, 1, -1, &all);
        } else if (strcmp(kind, "epoll_pwait2") == 0) {
            struct epoll_event event;
            epoll_pwait2(epfd, &event, 1, NULL, &all);
        } else if (strcmp(kind, "sigwait") == 0) {
            if (sigwait(&all, &sig) == 0)
                put("got %d\n", sig);
            continue;
        } else {
            put("BAD unknown wait '%s'\n", kind);
            exit(2);
        }
        put("woke %lu\n", n);
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sigaction") == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = own_tstp;
        sigemptyset(&action.sa_mask);
        if (sigaction(SIGTSTP, &action, NULL) != 0)
            put("BAD sigaction failed: %s\n", strerror(errno));
        ticks(handler_status, NULL);
    } else if (strcmp(mode, "signal") == 0) {
        if (signal(SIGTSTP, own_tstp) == SIG_ERR)
            put("BAD signal failed: %s\n", strerror(errno));
        ticks(handler_status, NULL);
    } else if (strcmp(mode, "block") == 0 || strcmp(mode, "pthread_block") == 0) {
        sigset_t all;
        sigfillset(&all);
        int failed = mode[0] == 'b' ? sigprocmask(SIG_SETMASK, &all, NULL) != 0
                                    : pthread_sigmask(SIG_BLOCK, &all, NULL) != 0;
        if (failed)
            put("BAD cannot block signals\n");
        ticks(blocked_status, NULL);
    } else if (strcmp(mode, "report") == 0) {
        ticks(blocked_status, NULL);
    } else if (strcmp(mode, "fatal") == 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = fatal;
        sigfillset(&action.sa_mask);
        for (int sig = 1; sig <= 64; sig++)
            sigaction(sig, &action, NULL);
        ticks(NULL, NULL);
    } else if (strcmp(mode, "raw") == 0) {
        /* The kernel's struct sigaction: handler, flags, restorer, mask. */
        unsigned long ignore[4] = { (unsigned long)SIG_IGN, 0, 0, 0 };
        if (syscall(SYS_rt_sigaction, SIGTSTP, ignore, NULL, 8) != 0)
            put("BAD rt_sigaction failed: %s\n", strerror(errno));
        ticks(NULL, NULL);
    } else if (strcmp(mode, "wait") == 0 && argc > 2) {
        wait_mode(argv[2]);
    } else if (strcmp(mode, "compare") == 0) {
        compare_all();
        ticks(NULL, NULL);
    }
    put("BAD unknown mode '%s'\n", mode);
    return 2;
}
