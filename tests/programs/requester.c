/* Speaks the checkpoint-request protocol (ckpt-image/src/request.rs) by hand, so that a
 * test can ask from any user, bypassing the checks of `ckpt checkpoint`:
 *
 *   requester TARGET [NAME]
 *
 * Listens on "\0ckpt-request/<own pid>/<nonce>", queues signal 63 at TARGET with the nonce,
 * accepts its connection, sends "NAME\n" and prints "answer: <line>" (the first line that
 * is not a progress report), "closed" when the
 * target hung up without answering, or "no connection" after 5 s. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t target = atoi(argv[1]);
    const char *name = argc > 2 ? argv[2] : "";
    unsigned nonce = 0x1234abcd ^ (unsigned)getpid();
    signal(SIGPIPE, SIG_IGN); /* the target may hang up before the request is sent */

    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    int len = snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "ckpt-request/%d/%08x",
                       (int)getpid(), nonce);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(s, (struct sockaddr *)&addr, sizeof(sa_family_t) + 1 + len) != 0 || listen(s, 4) != 0) {
        perror("listen");
        return 1;
    }
    union sigval v;
    v.sival_int = (int)nonce;
    if (sigqueue(target, 63, v) != 0) {
        perror("sigqueue");
        return 1;
    }
    struct pollfd p = { s, POLLIN, 0 };
    if (poll(&p, 1, 5000) != 1) {
        printf("no connection\n");
        return 0;
    }
    int c = accept(s, NULL, NULL);
    char line[1100];
    snprintf(line, sizeof line, "%s\n", name);
    if (write(c, line, strlen(line)) < 0)
        perror("write");
    size_t n = 0;
    struct pollfd q = { c, POLLIN, 0 };
    while (n < sizeof line - 1 && poll(&q, 1, 20000) == 1) {
        ssize_t r = read(c, line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += r;
        /* "progress DONE TOTAL" lines come before the answer: skipped. */
        char *end;
        while ((end = memchr(line, '\n', n)) && strncmp(line, "progress ", 9) == 0) {
            size_t used = (size_t)(end + 1 - line);
            memmove(line, end + 1, n - used);
            n -= used;
        }
        if (memchr(line, '\n', n))
            break;
    }
    line[n] = 0;
    if (n == 0)
        printf("closed\n");
    else
        printf("answer: %s", line);
    return 0;
}
