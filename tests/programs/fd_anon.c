// eventfd, timerfd, signalfd and inotify across a checkpoint (tests/fd_anon.rs). Each mode
// makes its descriptors, prints "ready" and waits for a line on stdin ("go"), which the
// test sends after the restart; then it prints what it finds and "done". Modes:
//   eventfd        an eventfd with count 5 + 7 (non-blocking), and a dup of it: after "go"
//                  one read through the dup gives 12, the next finds it empty
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void wait_go(void) {
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        printf("no go: %s\n", strerror(errno));
        exit(3);
    }
}

static void die(const char *what) {
    printf("error: %s: %s\n", what, strerror(errno));
    exit(2);
}

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

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fd_anon MODE\n");
        return 2;
    }
    const char *mode = argv[1];
    int r;
    if (!strcmp(mode, "eventfd")) r = mode_eventfd();
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("done\n");
    return r;
}
