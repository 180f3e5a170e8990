// Sockets across a checkpoint (tests/fd_socket.rs). Each mode makes its sockets, prints what
// the test needs ("port N"), then "ready", and waits for a line on stdin ("go"), which the
// test sends after the restart; then it prints what it finds and "done". Modes:
//   tcp-listen        a listening TCP socket on 127.0.0.1, port chosen by the kernel: after
//                     "go" it accepts one connection, reads a line and answers "hello LINE"
//   unix-listen PATH  the same on a unix stream socket bound to PATH
//   tcp-connected PORT  a TCP connection to 127.0.0.1:PORT (the test's server), non-blocking,
//                     ready once the server's first bytes have arrived; after "go" it reads
//                     what is queued, then expects end-of-file and EPIPE, then connects again
//                     and says "again"
//   unix-connected PATH  the same with a unix stream connection to the test's server at PATH
//   pair              a stream socket pair with 13 bytes queued each way and a datagram pair
//                     with five messages queued one way (one empty): after "go" it reads them back
//                     (message by message) and sends more through both
//   others            a bound UDP socket and one connected to it, a listening TCP socket on
//                     [::1] ("port6 N") and a listening unix socket at an abstract name
//                     ("abstract NAME"): after "go" the UDP one sends to the bound one, then
//                     it serves one connection on each listener
//   rights            a stream socket pair with a descriptor in flight (SCM_RIGHTS): after
//                     "go" it receives it
//   netlink           a netlink socket, which no checkpoint saves
//   ended             tcp-listen, but first it accepts a connection the test resets and
//                     keeps it open, ended (closed state, bound to the listener's port):
//                     after "go" it reads it ("ended read N") and serves one connection
#define _GNU_SOURCE
#define CKPT_TEST_GO
#include "common.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// Reads up to a newline (not kept) from a blocking socket.
static int read_line(int fd, char *buf, size_t size) {
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0) break;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = 0;
    return (int)n;
}

static void serve_one(int listener) {
    printf("accepting\n");
    fflush(stdout);
    int c = accept(listener, NULL, NULL);
    if (c < 0) die("accept");
    char line[128];
    read_line(c, line, sizeof line);
    char answer[160];
    int n = snprintf(answer, sizeof answer, "hello %s\n", line);
    if (write(c, answer, n) != n) die("write");
    close(c);
    printf("answered %s\n", line);
}

static int mode_tcp_listen(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 7) < 0) die("listen");
    socklen_t len = sizeof a;
    if (getsockname(s, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    printf("port %d\n", ntohs(a.sin_port));
    wait_go();
    serve_one(s);
    return 0;
}

static int mode_ended(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 7) < 0) die("listen");
    socklen_t len = sizeof a;
    if (getsockname(s, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0) die("accept");
    // The test resets it: wait until the reset has come (without reading it).
    struct pollfd p = {.fd = c, .events = POLLIN};
    if (poll(&p, 1, -1) != 1) die("poll");
    wait_go();
    char b[8];
    ssize_t n = read(c, b, sizeof b);
    printf("ended read %zd\n", n < 0 ? (ssize_t)-1 : n);
    serve_one(s);
    return 0;
}

static int mode_unix_listen(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(s, 3) < 0) die("listen");
    wait_go();
    serve_one(s);
    return 0;
}

// tcp-connected connects to 127.0.0.1:PORT; unix-connected to this path.
static const char *server_path;

static int connect_to(int port, int flags) {
    if (server_path) {
        int s = socket(AF_UNIX, SOCK_STREAM | flags, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, server_path, sizeof a.sun_path - 1);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect unix");
        return s;
    }
    int s = socket(AF_INET, SOCK_STREAM | flags, 0);
    if (s < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    return s;
}

static int mode_tcp_connected(int port) {
    signal(SIGPIPE, SIG_IGN);
    int s = connect_to(port, 0);
    if (fcntl(s, F_SETFL, O_NONBLOCK) < 0) die("O_NONBLOCK");
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1) die("poll");
    wait_go();
    if (!(fcntl(s, F_GETFL) & O_NONBLOCK)) printf("blocking\n");
    // What the server sent before the checkpoint, then end-of-file.
    char buf[64];
    ssize_t n;
    for (;;) {
        n = read(s, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            printf("read %s", buf);
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            if (poll(&p, 1, 10000) != 1) die("poll again");
            continue;
        }
        break;
    }
    if (n == 0) printf("eof\n");
    else printf("read error: %s\n", strerror(errno));
    if (write(s, "x", 1) < 0) printf("write: %s\n", errno == EPIPE ? "EPIPE" : strerror(errno));
    else printf("write went through\n");
    close(s);
    int again = connect_to(port, 0);
    if (write(again, "again\n", 6) != 6) die("write again");
    printf("reconnected\n");
    close(again);
    return 0;
}

static void expect_read(int fd, const char *want, const char *label) {
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n < 0) {
        printf("%s: %s\n", label, strerror(errno));
        return;
    }
    buf[n] = 0;
    if ((size_t)n == strlen(want) && !memcmp(buf, want, n)) printf("%s %zd bytes\n", label, n);
    else printf("%s got %zd bytes: %s\n", label, n, buf);
}

static int mode_pair(void) {
    int sv[2], dg[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) die("socketpair");
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) < 0) die("socketpair dgram");
    // 13 bytes each way.
    if (write(sv[0], "hello, there\n", 13) != 13) die("write");
    if (write(sv[1], "general kenob", 13) != 13) die("write");
    const char *messages[] = {"one", "two", "three", "", "four"};
    for (int k = 0; k < 5; k++)
        if (send(dg[0], messages[k], strlen(messages[k]), 0) < 0) die("send");
    wait_go();
    expect_read(sv[1], "hello, there\n", "stream a->b");
    expect_read(sv[0], "general kenob", "stream b->a");
    expect_read(sv[0], "", "stream empty");
    for (int k = 0; k < 5; k++) expect_read(dg[1], messages[k], "message");
    expect_read(dg[1], "", "dgram empty");
    if (write(sv[0], "more", 4) != 4) die("write more");
    expect_read(sv[1], "more", "stream more");
    if (send(dg[1], "back", 4, 0) != 4) die("send back");
    expect_read(dg[0], "back", "dgram back");
    return 0;
}

/* A UDP socket bound to a loopback port (*u) and one connected to it (*c). */
static void udp_pair(int *u, int *c) {
    *u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (*u < 0 || bind(*u, (struct sockaddr *)&a, sizeof a) < 0) die("bind udp");
    socklen_t len = sizeof a;
    if (getsockname(*u, (struct sockaddr *)&a, &len) < 0) die("getsockname");
    *c = socket(AF_INET, SOCK_DGRAM, 0);
    if (*c < 0 || connect(*c, (struct sockaddr *)&a, sizeof a) < 0) die("connect udp");
}

static int mode_others(void) {
    int u, c;
    udp_pair(&u, &c);

    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int one = 1;
    if (l6 < 0 || setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) die("v6");
    if (bind(l6, (struct sockaddr *)&a6, sizeof a6) < 0) {
        printf("no ipv6: %s\n", strerror(errno));
        return 0;
    }
    if (listen(l6, 4) < 0) die("listen v6");
    socklen_t len = sizeof a6;
    if (getsockname(l6, (struct sockaddr *)&a6, &len) < 0) die("getsockname v6");
    printf("port6 %d\n", ntohs(a6.sin6_port));

    int la = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un au = {.sun_family = AF_UNIX};
    int n = snprintf(au.sun_path + 1, sizeof au.sun_path - 1, "ckpt-fd-socket-%d", (int)getpid());
    if (la < 0 || bind(la, (struct sockaddr *)&au, offsetof(struct sockaddr_un, sun_path) + 1 + n) < 0)
        die("bind abstract");
    if (listen(la, 2) < 0) die("listen abstract");
    printf("abstract %s\n", au.sun_path + 1);
    wait_go();

    if (send(c, "ping", 4, 0) != 4) die("send udp");
    char buf[16] = {0};
    if (recv(u, buf, sizeof buf - 1, 0) != 4) die("recv udp");
    printf("udp %s\n", buf);
    serve_one(l6);
    serve_one(la);
    return 0;
}

/* A bound UDP socket with two datagrams queued at the checkpoint (lost: the restart says
 * so), and its sender; after the restart a new datagram arrives. */
static int mode_udp_queued(void) {
    int u, c;
    udp_pair(&u, &c);
    if (send(c, "one", 3, 0) != 3 || send(c, "two", 3, 0) != 3) die("send queued");
    printf("queued %d\n", u);
    wait_go();

    if (send(c, "ping", 4, 0) != 4) die("send udp");
    char buf[16] = {0};
    if (recv(u, buf, sizeof buf - 1, 0) < 0) die("recv udp");
    printf("udp %s\n", buf);
    return 0;
}

static int mode_rights(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) die("socketpair");
    int passed = 0;  // stdin
    char byte = 'x';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &passed, sizeof passed);
    if (sendmsg(sv[0], &msg, 0) != 1) die("sendmsg");
    wait_go();
    memset(control.buf, 0, sizeof control.buf);
    msg.msg_controllen = sizeof control.buf;
    if (recvmsg(sv[1], &msg, MSG_DONTWAIT) != 1) die("recvmsg");
    cm = CMSG_FIRSTHDR(&msg);
    if (cm && cm->cmsg_type == SCM_RIGHTS) printf("got a descriptor\n");
    else printf("no descriptor (flags %x)\n", msg.msg_flags);
    return 0;
}

static int mode_netlink(void) {
    int s = socket(AF_NETLINK, SOCK_RAW, 0);
    if (s < 0) die("netlink");
    wait_go();
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fd_socket MODE [ARG]\n");
        return 2;
    }
    const char *mode = argv[1];
    int r;
    if (!strcmp(mode, "tcp-listen")) r = mode_tcp_listen();
    else if (!strcmp(mode, "unix-listen") && argc > 2) r = mode_unix_listen(argv[2]);
    else if (!strcmp(mode, "tcp-connected") && argc > 2) r = mode_tcp_connected(atoi(argv[2]));
    else if (!strcmp(mode, "unix-connected") && argc > 2) {
        server_path = argv[2];
        r = mode_tcp_connected(0);
    } else if (!strcmp(mode, "pair")) r = mode_pair();
    else if (!strcmp(mode, "others")) r = mode_others();
    else if (!strcmp(mode, "udp-queued")) r = mode_udp_queued();
    else if (!strcmp(mode, "rights")) r = mode_rights();
    else if (!strcmp(mode, "netlink")) r = mode_netlink();
    else if (!strcmp(mode, "ended")) r = mode_ended();
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("done\n");
    return r;
}
