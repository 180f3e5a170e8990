// Pipes and FIFOs across a checkpoint (tests/fd_pipe.rs). Each mode makes its pipes,
// prints "ready" and waits for a line on stdin ("go"), which the test sends after the
// restart; then it prints what it finds and "done". Modes:
//   queued          13 bytes queued in a pipe (both ends held): after "go" a read gives
//                   them, then 5 more written come through
//   full SIZE       a pipe of SIZE bytes (F_SETPIPE_SZ) filled to the brim with a pattern:
//                   after "go" its size, then every byte read back and checked
//   nonblock        O_NONBLOCK on the read end only: after "go" each end's flag, and a read
//                   of the empty pipe that says EAGAIN
//   dup             the write end dup'ed, one byte queued: after "go" a byte written
//                   through each copy, all three read back, and the copies still share
//                   their flags
//   readend         only the read end held (a child holds the writer until the checkpoint
//                   ends the program), 13 bytes queued: after "go" the bytes, then end of
//                   file
//   writeend        only the write end held (a child holds the reader): after "go" a write
//                   fails with EPIPE
//   reopened        a second read end opened from /proc/self/fd (its own open file
//                   description, non-blocking; the first is not), 2 bytes queued: after
//                   "go" one byte through each, and each one's flag
//   async           signal-driven I/O: one pipe's read end sends SIGIO to the process
//                   (F_SETOWN), another's SIGUSR1 (F_SETSIG): after "go" a write into the
//                   first raises SIGIO, its owner is the process, and the second has no
//                   O_ASYNC (the restart says it was not set up again)
//   fifo PATH       a FIFO made at PATH, opened for reading (non-blocking) and for writing,
//                   11 bytes queued: after "go" they are read, then 5 more come through
#define _GNU_SOURCE
#define CKPT_TEST_GO
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(int fd, const char *s) {
    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) die("write");
}

// Reads what is queued (the descriptor is non-blocking or has that much) and prints it
// after `label`, newlines escaped.
static void show(int fd, const char *label) {
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) die("read");
    buf[n] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = '|';
    printf("%s %zd: %s\n", label, n, buf);
}

static unsigned char pattern(size_t k) { return (unsigned char)(k * 7 + k / 251); }

static volatile sig_atomic_t sigio;
static void on_sigio(int sig) { (void)sig; sigio++; }

static int mode_async(void) {
    int p[2], q[2];
    if (pipe(p) < 0 || pipe(q) < 0) die("pipe");
    signal(SIGIO, on_sigio);
    signal(SIGUSR1, SIG_IGN);
    if (fcntl(p[0], F_SETOWN, getpid()) < 0 || fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0)
        die("async p");
    if (fcntl(q[0], F_SETOWN, getpid()) < 0 || fcntl(q[0], F_SETSIG, SIGUSR1) < 0 ||
        fcntl(q[0], F_SETFL, O_ASYNC) < 0)
        die("async q");
    printf("q is fd %d\n", q[0]);
    wait_go();
    sigio = 0;
    put(p[1], "x");
    for (int k = 0; k < 100 && !sigio; k++) usleep(10000);
    printf("sigio %s\n", sigio ? "yes" : "no");
    printf("owner %s\n", fcntl(p[0], F_GETOWN) == getpid() ? "self" : "other");
    printf("q async %d\n", (fcntl(q[0], F_GETFL) & O_ASYNC) != 0);
    return 0;
}

static int mode_queued(void) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    put(p[1], "hello, pipe!\n");
    wait_go();
    show(p[0], "got");
    put(p[1], "more\n");
    show(p[0], "then");
    return 0;
}

static int mode_full(const char *arg) {
    int size = atoi(arg);
    int p[2];
    if (pipe2(p, O_NONBLOCK) < 0) die("pipe");
    if (size != 65536 && fcntl(p[1], F_SETPIPE_SZ, size) < 0) die("F_SETPIPE_SZ");
    size_t filled = 0;
    char chunk[4096];
    for (;;) {
        for (size_t k = 0; k < sizeof chunk; k++) chunk[k] = pattern(filled + k);
        ssize_t n = write(p[1], chunk, sizeof chunk);
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) die("fill");
        filled += n;
    }
    printf("filled %zu\n", filled);
    wait_go();
    printf("size %d\n", fcntl(p[0], F_GETPIPE_SZ));
    size_t got = 0, bad = 0;
    for (;;) {
        ssize_t n = read(p[0], chunk, sizeof chunk);
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) die("read back");
        for (ssize_t k = 0; k < n; k++)
            if ((unsigned char)chunk[k] != pattern(got + k)) bad++;
        got += n;
    }
    printf("read %zu, %zu wrong\n", got, bad);
    // Full again: the capacity is there.
    size_t again = 0;
    for (;;) {
        ssize_t n = write(p[1], chunk, sizeof chunk);
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) die("refill");
        again += n;
    }
    printf("holds %zu again\n", again);
    return 0;
}

static int mode_nonblock(void) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) die("F_SETFL");
    wait_go();
    printf("read end nonblock %d\n", !!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
    printf("write end nonblock %d\n", !!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
    char c;
    if (read(p[0], &c, 1) < 0 && errno == EAGAIN) printf("empty read: EAGAIN\n");
    else printf("empty read: %s\n", strerror(errno));
    return 0;
}

static int mode_dup(void) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    int copy = dup(p[1]);
    if (copy < 0) die("dup");
    put(p[1], "a");
    wait_go();
    put(p[1], "b");
    put(copy, "c");
    show(p[0], "got");
    if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) die("F_SETFL");
    printf("copy nonblock %d\n", !!(fcntl(copy, F_GETFL) & O_NONBLOCK));
    return 0;
}

// A child that holds `keep` (the other end) until the program ends, then dies with it.
static void other_end_in_a_child(int keep, int drop) {
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        close(drop);
        close(0);
        close(1);
        close(2);
        for (;;) pause();
    }
    (void)keep;
}

static int mode_readend(void) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    put(p[1], "hello, pipe!\n");
    other_end_in_a_child(p[1], p[0]);
    close(p[1]);
    wait_go();
    show(p[0], "got");
    char c;
    ssize_t n = read(p[0], &c, 1);
    printf("then %s\n", n == 0 ? "end of file" : n < 0 ? strerror(errno) : "a byte");
    return 0;
}

static int mode_writeend(void) {
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    if (pipe(p) < 0) die("pipe");
    put(p[1], "queued\n");
    other_end_in_a_child(p[0], p[1]);
    close(p[0]);
    wait_go();
    if (write(p[1], "x", 1) < 0 && errno == EPIPE) printf("write: EPIPE\n");
    else printf("write: %s\n", strerror(errno));
    return 0;
}

static int mode_reopened(void) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    int second = open(path, O_RDONLY | O_NONBLOCK);
    if (second < 0) die("open /proc/self/fd");
    put(p[1], "xy");
    wait_go();
    char a = 0, b = 0;
    if (read(p[0], &a, 1) != 1 || read(second, &b, 1) != 1) die("read");
    printf("first %c, second %c\n", a, b);
    printf("first nonblock %d, second nonblock %d\n", !!(fcntl(p[0], F_GETFL) & O_NONBLOCK),
           !!(fcntl(second, F_GETFL) & O_NONBLOCK));
    return 0;
}

static int mode_fifo(const char *path) {
    if (mkfifo(path, 0666) < 0) die("mkfifo");
    int r = open(path, O_RDONLY | O_NONBLOCK);
    if (r < 0) die("open reader");
    int w = open(path, O_WRONLY);
    if (w < 0) die("open writer");
    put(w, "fifo bytes\n");
    wait_go();
    show(r, "got");
    put(w, "more\n");
    show(r, "then");
    printf("reader nonblock %d, writer nonblock %d\n", !!(fcntl(r, F_GETFL) & O_NONBLOCK),
           !!(fcntl(w, F_GETFL) & O_NONBLOCK));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fd_pipe MODE [ARG]\n");
        return 2;
    }
    const char *mode = argv[1];
    const char *arg = argc > 2 ? argv[2] : "";
    int r;
    if (!strcmp(mode, "queued")) r = mode_queued();
    else if (!strcmp(mode, "full")) r = mode_full(arg);
    else if (!strcmp(mode, "nonblock")) r = mode_nonblock();
    else if (!strcmp(mode, "dup")) r = mode_dup();
    else if (!strcmp(mode, "readend")) r = mode_readend();
    else if (!strcmp(mode, "writeend")) r = mode_writeend();
    else if (!strcmp(mode, "reopened")) r = mode_reopened();
    else if (!strcmp(mode, "fifo")) r = mode_fifo(arg);
    else if (!strcmp(mode, "async")) r = mode_async();
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("done\n");
    return r;
}
