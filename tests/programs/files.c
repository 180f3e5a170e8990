// Open descriptors across a checkpoint (tests/files.rs). Each mode opens its descriptors,
// does part of its work, prints "ready" and waits for a line on stdin ("go"), which the test
// sends after the restart (or after a failed checkpoint); then it does the rest and prints
// what it found. Modes:
//   read PATH      reads 6 bytes, then 6 more after "go"
//   append PATH    appends "one\n", then "two\n" after "go"
//   dup PATH       a, b = dup(a), c = an independent open: reads 2 with a, then 2 with b
//                  and 2 with c; also a close-on-exec descriptor
//   dir PATH       reads a directory stream a few entries at a time (getdents64), some
//                  before and the rest after "go"
//   devices        /dev/null, /dev/zero and /dev/urandom
//   pidfd          two pidfds (a kind a checkpoint cannot save)
//   lines          stdin is a file: prints each line of it, slowly (no "ready", no "go")
//   many PATH      200 opens of one file, each at its own offset, half of them dup'ed:
//                  after "go" every offset is checked, and that only dups share one
//   high PATH      PATH open at descriptor 1500 (its soft limit raised to 2048)
//   proc           /proc/self/status open: after "go" it must be this process's
//   lock PATH      flock on one descriptor of PATH (3), an fcntl lock of bytes 0-4 through
//                  another (4), an OFD lock of bytes 10-19 through a third (5); a fourth
//                  without locks. After "go" it prints "went on" and waits for a second
//                  line, so that a test can try the locks while it runs
//   trylock PATH   tries, without waiting, the three locks "lock" takes, each through its
//                  own open of PATH: "flock busy" or "flock free", and so on
//   hold PATH      takes the fcntl lock "lock" takes, prints "ready" and waits for a line
//   gone PATH      PATH made with "hello" and mode 640, opened twice (3 read-write at offset
//                  2, 4 read-only at offset 1), and deleted; a memfd "scratch" (5) with 12 bytes, at
//                  offset 7, sealed against shrinking and growing. After "go" it says what
//                  it finds of them
//   gonedir PATH   PATH made a directory, opened (3) and removed
//   big PATH SIZE  PATH opened write-only and appending (3), SIZE bytes written, deleted;
//                  after "go" it appends 4 more and checks them all
//   fds            lists its descriptors beyond 2, then exits
#define _GNU_SOURCE
#define CKPT_TEST_GO
#include "common.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static void read_exactly(int fd, char *buf, size_t n, const char *what) {
    ssize_t r = read(fd, buf, n);
    if (r != (ssize_t)n) die(what);
    buf[n] = 0;
}

static int mode_read(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open");
    char buf[8];
    read_exactly(fd, buf, 6, "read before");
    printf("before: %s\n", buf);
    wait_go();
    read_exactly(fd, buf, 6, "read after");
    printf("after: %s\n", buf);
    return 0;
}

static int mode_append(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) die("open");
    if (write(fd, "one\n", 4) != 4) die("write one");
    wait_go();
    if (write(fd, "two\n", 4) != 4) die("write two");
    printf("appended\n");
    return 0;
}

static int mode_dup(const char *path) {
    int a = open(path, O_RDONLY);
    int b = dup(a);
    int c = open(path, O_RDONLY);
    int d = open(path, O_RDONLY | O_CLOEXEC);
    if (a < 0 || b < 0 || c < 0 || d < 0) die("open");
    char buf[4];
    read_exactly(a, buf, 2, "read a");
    printf("a: %s\n", buf);
    wait_go();
    read_exactly(b, buf, 2, "read b");
    printf("b: %s\n", buf);
    read_exactly(c, buf, 2, "read c");
    printf("c: %s\n", buf);
    printf("fds: %d %d %d %d\n", a, b, c, d);
    printf("cloexec: a=%d b=%d c=%d d=%d\n", fcntl(a, F_GETFD), fcntl(b, F_GETFD),
           fcntl(c, F_GETFD), fcntl(d, F_GETFD));
    return 0;
}

// Prints the names of the entries one getdents64 call returns; how many.
static int dir_batch(int fd) {
    char buf[128];
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) die("getdents64");
    int count = 0;
    for (long at = 0; at < n;) {
        struct dirent64 *e = (struct dirent64 *)(buf + at);
        printf("entry: %s\n", e->d_name);
        at += e->d_reclen;
        count++;
    }
    return count;
}

static int mode_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) die("open");
    for (int seen = 0; seen < 6;) {
        int n = dir_batch(fd);
        if (n == 0) break;
        seen += n;
    }
    wait_go();
    while (dir_batch(fd) > 0) {
    }
    printf("end of directory\n");
    return 0;
}

static int mode_devices(void) {
    int null = open("/dev/null", O_WRONLY);
    int zero = open("/dev/zero", O_RDONLY);
    int urandom = open("/dev/urandom", O_RDONLY);
    if (null < 0 || zero < 0 || urandom < 0) die("open");
    wait_go();
    if (write(null, "x", 1) != 1) die("write /dev/null");
    char z[16], r[16], none[16] = {0};
    read_exactly(zero, z, 15, "read /dev/zero");
    if (memcmp(z, none, 15) != 0) die("/dev/zero gave other bytes");
    read_exactly(urandom, r, 15, "read /dev/urandom");
    printf("devices ok\n");
    return 0;
}

static int mode_pidfd(void) {
    // Two pidfds of this process (descriptors 3 and 4): a kind no checkpoint saves.
    int a = syscall(SYS_pidfd_open, getpid(), 0);
    int b = syscall(SYS_pidfd_open, getpid(), 0);
    if (a < 0 || b < 0) die("pidfd_open");
    wait_go();
    int open_now = fcntl(a, F_GETFD) >= 0 && fcntl(b, F_GETFD) >= 0;
    printf("pidfd %s\n", open_now ? "open" : "closed");
    return 0;
}

static int mode_lines(void) {
    char line[512];
    while (fgets(line, sizeof line, stdin)) {
        fputs(line, stdout);
        fflush(stdout);
        usleep(2000);
    }
    printf("end of input\n");
    return 0;
}

static int mode_many(const char *path) {
    enum { N = 200 };
    int fd[N], dups[N];
    for (int i = 0; i < N; i++) {
        fd[i] = open(path, O_RDONLY);
        if (fd[i] < 0) die("open");
        lseek(fd[i], i, SEEK_SET);
        dups[i] = i % 2 == 0 ? dup(fd[i]) : -1;
    }
    wait_go();
    int bad = 0;
    for (int i = 0; i < N; i++) {
        char c;
        if (lseek(fd[i], 0, SEEK_CUR) != i) {
            printf("BAD fd %d is at %ld, not %d\n", fd[i], (long)lseek(fd[i], 0, SEEK_CUR), i);
            bad++;
            continue;
        }
        if (dups[i] >= 0) {
            if (read(dups[i], &c, 1) != 1 || lseek(fd[i], 0, SEEK_CUR) != i + 1) {
                printf("BAD dup of fd %d does not share its offset\n", fd[i]);
                bad++;
            }
        } else if (i + 1 < N && read(fd[i], &c, 1) == 1 && lseek(fd[i + 1], 0, SEEK_CUR) != i + 1) {
            printf("BAD fd %d moved with fd %d\n", fd[i + 1], fd[i]);
            bad++;
        }
    }
    printf(bad ? "many: %d bad\n" : "many ok\n", bad);
    return bad != 0;
}

static int mode_high(const char *path) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 2048) {
        printf("hard limit too low: %lu\n", (unsigned long)rl.rlim_max);
        return 4;
    }
    rl.rlim_cur = 2048;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
    int fd = open(path, O_RDONLY);
    if (fd < 0 || dup2(fd, 1500) != 1500) die("dup2");
    close(fd);
    wait_go();
    char buf[8];
    read_exactly(1500, buf, 5, "read fd 1500");
    printf("fd 1500: %s\n", buf);
    return 0;
}

static int mode_proc(void) {
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) die("open");
    wait_go();
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) die("pread");
    buf[n] = 0;
    char *pid = strstr(buf, "\nPid:");
    if (!pid || atoi(pid + 5) != getpid()) {
        printf("BAD /proc/self/status is another process's\n");
        return 1;
    }
    printf("own status\n");
    return 0;
}

static struct flock fcntl_range(void) {
    return (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
}

static struct flock ofd_range(void) {
    return (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 10};
}

static int mode_lock(const char *path) {
    int a = open(path, O_RDWR), b = open(path, O_RDWR), c = open(path, O_RDWR);
    int d = open(path, O_RDONLY);
    if (a < 0 || b < 0 || c < 0 || d < 0) die("open");
    if (flock(a, LOCK_EX) != 0) die("flock");
    struct flock fl = fcntl_range();
    if (fcntl(b, F_SETLK, &fl) != 0) die("fcntl F_SETLK");
    struct flock ofd = ofd_range();
    if (fcntl(c, F_OFD_SETLK, &ofd) != 0) die("fcntl F_OFD_SETLK");
    wait_go();
    printf("went on\n");
    fflush(stdout);
    wait_go();
    return 0;
}

static int mode_trylock(const char *path) {
    int a = open(path, O_RDWR), b = open(path, O_RDWR), c = open(path, O_RDWR);
    if (a < 0 || b < 0 || c < 0) die("open");
    printf("flock %s\n", flock(a, LOCK_EX | LOCK_NB) == 0 ? "free" : "busy");
    struct flock fl = fcntl_range();
    printf("fcntl %s\n", fcntl(b, F_SETLK, &fl) == 0 ? "free" : "busy");
    struct flock ofd = ofd_range();
    printf("ofd %s\n", fcntl(c, F_OFD_SETLK, &ofd) == 0 ? "free" : "busy");
    return 0;
}

static int mode_hold(const char *path) {
    int b = open(path, O_RDWR);
    if (b < 0) die("open");
    struct flock fl = fcntl_range();
    if (fcntl(b, F_SETLK, &fl) != 0) die("fcntl F_SETLK");
    wait_go();
    return 0;
}

// Whether the link of descriptor fd ends with " (deleted)"; the link into link.
static int link_deleted(int fd, char *link, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, size - 1);
    link[n > 0 ? n : 0] = 0;
    return n > 10 && !strcmp(link + n - 10, " (deleted)");
}

static int mode_gone(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, "hello", 5) != 5 || fchmod(fd, 0640) != 0) die("make the file");
    int other = open(path, O_RDONLY);
    if (other < 0 || unlink(path) != 0 || lseek(fd, 0, SEEK_SET) != 0) die("open and unlink");
    int mem = memfd_create("scratch", MFD_ALLOW_SEALING);
    if (mem < 0) die("memfd_create");
    if (write(mem, "memory bytes", 12) != 12) die("write memfd");
    if (fcntl(mem, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) die("F_ADD_SEALS");
    lseek(mem, 7, SEEK_SET);
    char buf[16];
    read_exactly(fd, buf, 2, "read deleted");
    lseek(other, 1, SEEK_SET);
    wait_go();
    if (fcntl(fd, F_GETFD) < 0 || fcntl(other, F_GETFD) < 0 || fcntl(mem, F_GETFD) < 0) {
        printf("closed\n");
        return 0;
    }
    char link[512];
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    printf("deleted: %s, %s\n", link_deleted(fd, link, sizeof link) ? "link says deleted" : link,
           st.st_nlink == 0 ? "no name" : "has a name");
    printf("mode: %o\n", st.st_mode & 07777);
    read_exactly(fd, buf, 3, "read deleted after");
    printf("read on: %s\n", buf);
    // One file behind both descriptors: what one writes, the other reads.
    if (pwrite(fd, "J", 1, 0) != 1) die("pwrite");
    read_exactly(other, buf, 3, "read other");
    char first;
    if (pread(other, &first, 1, 0) != 1) die("pread other");
    printf("other: %s, first byte %c\n", buf, first);
    link_deleted(mem, link, sizeof link);
    printf("memfd: %s\n", link);
    read_exactly(mem, buf, 5, "read memfd");
    printf("memfd read on: %s\n", buf);
    printf("seals: %#x\n", fcntl(mem, F_GET_SEALS));
    printf("grow: %s\n", write(mem, "x", 1) < 0 && errno == EPERM ? "refused" : "allowed");
    return 0;
}

static int mode_gonedir(const char *path) {
    if (mkdir(path, 0700) != 0) die("mkdir");
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || rmdir(path) != 0) die("open and rmdir");
    wait_go();
    printf("%s\n", fcntl(fd, F_GETFD) >= 0 ? "still open" : "closed");
    return 0;
}

static int mode_big(const char *path, long size) {
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0 || unlink(path) != 0) die("open and unlink");
    char chunk[4096];
    for (long at = 0; at < size; at += sizeof chunk) {
        for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (char)((at + i) % 251);
        size_t n = size - at < (long)sizeof chunk ? (size_t)(size - at) : sizeof chunk;
        if (write(fd, chunk, n) != (ssize_t)n) die("write");
    }
    wait_go();
    if (fcntl(fd, F_GETFD) < 0) {
        printf("closed\n");
        return 0;
    }
    int flags = fcntl(fd, F_GETFL);
    if (write(fd, "tail", 4) != 4) die("append");
    char path_of_fd[64];
    snprintf(path_of_fd, sizeof path_of_fd, "/proc/self/fd/%d", fd);
    int r = open(path_of_fd, O_RDONLY);
    if (r < 0) die("open to read back");
    long bad = 0, at = 0;
    ssize_t n;
    while ((n = read(r, chunk, sizeof chunk)) > 0) {
        for (ssize_t i = 0; i < n; i++, at++) {
            char want = at < size ? (char)(at % 251) : "tail"[at - size];
            bad += chunk[i] != want;
        }
    }
    printf("big: %ld bytes, %ld wrong, %s\n", at, bad,
           (flags & O_ACCMODE) == O_WRONLY && (flags & O_APPEND) ? "write-only appending"
                                                                : "other flags");
    return 0;
}

static int mode_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) die("opendir");
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d)) continue;
        char link[256] = "";
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) link[n] = 0;
        printf("inherited: %d -> %s\n", fd, link);
    }
    printf("listed\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    const char *path = argc > 2 ? argv[2] : "";
    int r;
    if (!strcmp(mode, "read")) r = mode_read(path);
    else if (!strcmp(mode, "append")) r = mode_append(path);
    else if (!strcmp(mode, "dup")) r = mode_dup(path);
    else if (!strcmp(mode, "dir")) r = mode_dir(path);
    else if (!strcmp(mode, "devices")) r = mode_devices();
    else if (!strcmp(mode, "pidfd")) r = mode_pidfd();
    else if (!strcmp(mode, "lines")) r = mode_lines();
    else if (!strcmp(mode, "many")) r = mode_many(path);
    else if (!strcmp(mode, "high")) r = mode_high(path);
    else if (!strcmp(mode, "proc")) r = mode_proc();
    else if (!strcmp(mode, "lock")) r = mode_lock(path);
    else if (!strcmp(mode, "trylock")) r = mode_trylock(path);
    else if (!strcmp(mode, "hold")) r = mode_hold(path);
    else if (!strcmp(mode, "gone")) r = mode_gone(path);
    else if (!strcmp(mode, "gonedir")) r = mode_gonedir(path);
    else if (!strcmp(mode, "big")) r = mode_big(path, argc > 3 ? atol(argv[3]) : 0);
    else if (!strcmp(mode, "fds")) r = mode_fds();
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("done\n");
    return r;
}
