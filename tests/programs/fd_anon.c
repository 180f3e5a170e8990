// eventfd, timerfd, signalfd and inotify across a checkpoint (tests/fd_anon.rs). Each mode
// makes its descriptors, prints "ready" and waits for a line on stdin ("go"), which the
// test sends after the restart; then it prints what it finds and "done". Modes:
//   eventfd        an eventfd with count 5 + 7 (non-blocking), and a dup of it: after "go"
//                  one read through the dup gives 12, the next finds it empty
//   timerfd        t1: a 3 s timer with a 1.5 s interval; t2: a disarmed timer; t3: a
//                  one-shot that expired unread; t4, t5: absolute timers 100 s ahead on
//                  CLOCK_REALTIME and CLOCK_BOOTTIME; t6: an interval (60 s) timer that
//                  fired unread. After "go" each says what it finds; t1 last, waiting for
//                  two expirations
//   signalfd       SIGUSR1 and SIGUSR2 blocked and taken by a signalfd, SIGUSR1 pending;
//                  after "go" SIGUSR2 is sent and the signalfd reads both
//   epoll          a set watching eventfds (one level-triggered, one one-shot, one whose
//                  number was closed while a dup kept it, and the eventfd that took that
//                  number), an expired timerfd (edge-triggered), watched in turn by a set
//                  with a lower number; after "go" each is made ready and the sets say
//                  which watches report it ("ready DATA…" in hex)
//   epoll-closed   a set watching an eventfd and a pidfd (run with CKPT_FD_POLICY=close)
//   epoll-pipe     a set watching the read ends of a pipe with "abc" queued (7777) and of
//                  an empty one (8888); after "go" it shows what reports, writes to the
//                  empty one, shows again, reads the first and shows again
//   inotify DIR    watches on DIR/a (added by a relative path), DIR/b (removed again),
//                  DIR/c, DIR/f and DIR/e (renamed to DIR/e2 then: its path is lost), and
//                  one event left unread; after "go" files are made in a, b and c and f
//                  is written, and each event read is printed
#define _GNU_SOURCE
#define CKPT_TEST_GO
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int mode_eventfd(void) {
    int fd = eventfd(5, EFD_NONBLOCK);
    if (fd < 0) die("eventfd");
    uint64_t add = 7;
    if (write(fd, &add, sizeof add) != sizeof add) die("write");
    int copy = dup(fd);
    if (copy < 0) die("dup");
    wait_go();
    uint64_t value = 0;
    if (read(copy, &value, sizeof value) != sizeof value) die("read");
    printf("eventfd %llu\n", (unsigned long long)value);
    if (read(fd, &value, sizeof value) < 0 && errno == EAGAIN) printf("eventfd empty\n");
    else printf("eventfd not empty\n");
    return 0;
}

#define NS 1000000000LL

static long long ns_of(struct timespec t) { return t.tv_sec * NS + t.tv_nsec; }

static struct timespec ts_of(long long ns) {
    struct timespec t = {ns / NS, ns % NS};
    return t;
}

static int timer(int clock, int flags, long long value, long long interval, int nonblock) {
    int fd = timerfd_create(clock, nonblock ? TFD_NONBLOCK : 0);
    if (fd < 0) die("timerfd_create");
    struct itimerspec its = {ts_of(interval), ts_of(value)};
    if (timerfd_settime(fd, flags, &its, NULL) < 0) die("timerfd_settime");
    return fd;
}

static void wait_readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) die("poll");
}

static uint64_t read_ticks(int fd) {
    uint64_t ticks = 0;
    if (read(fd, &ticks, sizeof ticks) != sizeof ticks) return 0;
    return ticks;
}

static int mode_timerfd(void) {
    int t1 = timer(CLOCK_MONOTONIC, 0, 3 * NS, 3 * NS / 2, 1);
    int t2 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (t2 < 0) die("timerfd_create");
    int t3 = timer(CLOCK_MONOTONIC, 0, 1000000, 0, 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int t4 = timer(CLOCK_REALTIME, TFD_TIMER_ABSTIME, ns_of(now) + 100 * NS, 0, 1);
    clock_gettime(CLOCK_BOOTTIME, &now);
    int t5 = timer(CLOCK_BOOTTIME, TFD_TIMER_ABSTIME, ns_of(now) + 100 * NS, 0, 1);
    int t6 = timer(CLOCK_MONOTONIC, 0, 1000000, 60 * NS, 1);
    wait_readable(t3);
    wait_readable(t6);
    wait_go();
    struct itimerspec its;
    timerfd_gettime(t2, &its);
    printf("t2 %s, %s\n", ns_of(its.it_value) == 0 && ns_of(its.it_interval) == 0 ? "disarmed" : "armed",
           read_ticks(t2) == 0 && errno == EAGAIN ? "nothing to read" : "readable");
    printf("t3 ticks %llu\n", (unsigned long long)read_ticks(t3));
    timerfd_gettime(t4, &its);
    long long v = ns_of(its.it_value);
    printf("t4 %s\n", v > 50 * NS && v <= 100 * NS && ns_of(its.it_interval) == 0 ? "ahead" : "wrong");
    timerfd_gettime(t5, &its);
    v = ns_of(its.it_value);
    printf("t5 %s\n", v > 50 * NS && v <= 100 * NS && ns_of(its.it_interval) == 0 ? "ahead" : "wrong");
    printf("t6 ticks %llu\n", (unsigned long long)read_ticks(t6));
    timerfd_gettime(t6, &its);
    v = ns_of(its.it_value);
    printf("t6 %s\n", v > 30 * NS && v <= 60 * NS && ns_of(its.it_interval) == 60 * NS ? "rearmed" : "wrong");
    timerfd_gettime(t1, &its);
    v = ns_of(its.it_value);
    printf("t1 interval %lld ms, %s\n", ns_of(its.it_interval) / 1000000,
           v > 0 && v <= 3 * NS ? "pending" : "wrong");
    printf("t1 %s\n", read_ticks(t1) == 0 && errno == EAGAIN ? "not yet" : "early");
    wait_readable(t1);
    printf("t1 %s\n", read_ticks(t1) >= 1 ? "fired" : "wrong");
    timerfd_gettime(t1, &its);
    v = ns_of(its.it_value);
    printf("t1 %s\n", v > 0 && v <= 3 * NS / 2 ? "next within its interval" : "wrong");
    wait_readable(t1);
    printf("t1 %s\n", read_ticks(t1) >= 1 ? "fired again" : "wrong");
    return 0;
}

static int mode_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die("sigprocmask");
    int fd = signalfd(-1, &set, SFD_NONBLOCK);
    if (fd < 0) die("signalfd");
    kill(getpid(), SIGUSR1);
    wait_go();
    kill(getpid(), SIGUSR2);
    struct signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == sizeof info)
        printf("signalfd got %s\n", info.ssi_signo == SIGUSR1   ? "SIGUSR1"
                                     : info.ssi_signo == SIGUSR2 ? "SIGUSR2"
                                                                 : "another signal");
    printf("signalfd %s\n", errno == EAGAIN ? "empty" : strerror(errno));
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/// "NAME ready D1 D2…" for the watches of `ep` that report now (data in hex, in order).
static void show(const char *name, int ep) {
    struct epoll_event ev[16];
    int n = epoll_wait(ep, ev, 16, 0);
    if (n < 0) die("epoll_wait");
    uint64_t data[16];
    for (int i = 0; i < n; i++) data[i] = ev[i].data.u64;
    qsort(data, n, sizeof data[0], cmp_u64);
    printf("%s ready", name);
    for (int i = 0; i < n; i++) printf(" %llx", (unsigned long long)data[i]);
    printf(n ? "\n" : " none\n");
}

static void watch(int ep, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static void poke(int fd) {
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) die("write");
}

static void drain(int fd) {
    uint64_t v;
    if (read(fd, &v, sizeof v) != sizeof v) die("read");
}

static int mode_epoll(void) {
    int outer = epoll_create1(0);
    if (outer < 0) die("epoll_create1");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    int level = eventfd(0, EFD_NONBLOCK);
    int once = eventfd(0, EFD_NONBLOCK);
    int gone = eventfd(0, EFD_NONBLOCK);
    if (level < 0 || once < 0 || gone < 0) die("eventfd");
    watch(ep, level, EPOLLIN, 0x1111);
    watch(ep, once, EPOLLIN | EPOLLONESHOT, 0x5555);
    // A watch outlives its number while a copy keeps the file open; the number is then
    // taken by another eventfd, watched too.
    watch(ep, gone, EPOLLIN, 0x3333);
    int kept = dup(gone);
    if (kept < 0) die("dup");
    close(gone);
    int reused = eventfd(0, EFD_NONBLOCK);
    if (reused != gone) die("the closed number was not reused");
    watch(ep, reused, EPOLLIN, 0x4444);
    int t = timer(CLOCK_MONOTONIC, 0, 1000000, 0, 1);
    wait_readable(t);
    watch(ep, t, EPOLLIN | EPOLLET, 0x2222);
    watch(outer, ep, EPOLLIN, 0x9999);
    wait_go();
    show("outer", outer);
    show("set", ep);
    show("set", ep);
    poke(level);
    show("set", ep);
    drain(level);
    poke(kept);
    show("set", ep);
    drain(kept);
    poke(reused);
    show("set", ep);
    drain(reused);
    poke(once);
    show("set", ep);
    drain(once);
    poke(once);
    show("set", ep);
    return 0;
}

static int mode_epoll_pipe(void) {
    int full[2], empty[2];
    if (pipe(full) != 0 || pipe(empty) != 0) die("pipe");
    if (write(full[1], "abc", 3) != 3) die("write");
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    watch(ep, full[0], EPOLLIN, 0x7777);
    watch(ep, empty[0], EPOLLIN, 0x8888);
    wait_go();
    show("pipes", ep);
    if (write(empty[1], "x", 1) != 1) die("write");
    show("pipes", ep);
    char b[8];
    if (read(full[0], b, sizeof b) != 3) die("read");
    show("pipes", ep);
    return 0;
}

static int mode_epoll_closed(void) {
    int ep = epoll_create1(0);
    int ev = eventfd(0, EFD_NONBLOCK);
    int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    if (ep < 0 || ev < 0 || pidfd < 0) die("epoll_create1, eventfd or pidfd_open");
    watch(ep, ev, EPOLLIN, 0x1111);
    watch(ep, pidfd, EPOLLIN, 0x6666);
    wait_go();
    poke(ev);
    show("set", ep);
    return 0;
}

static int add(int in, const char *path, uint32_t mask) {
    int wd = inotify_add_watch(in, path, mask);
    if (wd < 0) die(path);
    return wd;
}

static void touch(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) die(path);
    if (write(fd, "x", 1) != 1) die("write");
    close(fd);
}

static int mode_inotify(const char *dir) {
    if (chdir(dir) < 0) die("chdir");
    const char *dirs[] = {"a", "b", "c", "e"};
    for (int i = 0; i < 4; i++)
        if (mkdir(dirs[i], 0755) < 0) die("mkdir");
    touch("f");
    int in = inotify_init1(IN_NONBLOCK);
    if (in < 0) die("inotify_init1");
    char path[4096];
    int wds[5];
    wds[0] = add(in, "a", IN_CREATE);
    snprintf(path, sizeof path, "%s/b", dir);
    wds[1] = add(in, path, IN_CREATE);
    snprintf(path, sizeof path, "%s/c", dir);
    wds[2] = add(in, path, IN_CREATE | IN_DELETE);
    snprintf(path, sizeof path, "%s/f", dir);
    wds[3] = add(in, path, IN_MODIFY);
    wds[4] = add(in, "e", IN_CREATE);
    printf("wds %d %d %d %d %d\n", wds[0], wds[1], wds[2], wds[3], wds[4]);
    if (inotify_rm_watch(in, wds[1]) < 0) die("inotify_rm_watch");
    char buf[4096];
    while (read(in, buf, sizeof buf) > 0) {}
    if (rename("e", "e2") < 0) die("rename");
    touch("a/before");
    wait_go();
    touch("a/new");
    touch("b/new");
    touch("c/new");
    touch("f");
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            printf("event wd %d%s%s%s%s %s\n", e->wd, e->mask & IN_CREATE ? " create" : "",
                   e->mask & IN_MODIFY ? " modify" : "", e->mask & IN_IGNORED ? " ignored" : "",
                   e->mask & ~(IN_CREATE | IN_MODIFY | IN_IGNORED) ? " other" : "",
                   e->len ? e->name : "-");
            p += sizeof *e + e->len;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fd_anon MODE\n");
        return 2;
    }
    const char *mode = argv[1];
    int r;
    if (!strcmp(mode, "eventfd")) r = mode_eventfd();
    else if (!strcmp(mode, "timerfd")) r = mode_timerfd();
    else if (!strcmp(mode, "signalfd")) r = mode_signalfd();
    else if (!strcmp(mode, "epoll")) r = mode_epoll();
    else if (!strcmp(mode, "epoll-closed")) r = mode_epoll_closed();
    else if (!strcmp(mode, "epoll-pipe")) r = mode_epoll_pipe();
    else if (!strcmp(mode, "inotify") && argc > 2) r = mode_inotify(argv[2]);
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("done\n");
    return r;
}
