// A program on a terminal in raw mode across a checkpoint (tests/fd_tty.rs), run under
// script(1) so that its standard descriptors are a pseudo-terminal. It turns off line
// editing and echo on stdin, opens /dev/tty as descriptor 3, prints "ready PID" and reads a
// line ("go") byte by byte; a SIGWINCH prints "winch" at once. After "go" it says how it
// finds stdin and descriptor 3 ("stdin raw", "fd 3 raw": no ICANON, no ECHO), puts the
// terminal back to line editing and prints "done". With the argument "stdio" it opens no
// /dev/tty (and says "fd 3 not a terminal"); with "dup", descriptor 3 is a dup of stdin
// (`exec 3<&0`), and it says whether the two still share their open file description.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static void on_winch(int sig) {
    (void)sig;
    static const char line[] = "winch\n";
    (void)!write(1, line, sizeof line - 1);
}

static void die(const char *what) {
    printf("error: %s: %s\n", what, strerror(errno));
    exit(2);
}

static const char *mode_of(int fd) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return "not a terminal";
    if (t.c_lflag & (ICANON | ECHO)) return "cooked";
    return "raw";
}

int main(int argc, char **argv) {
    int stdio_only = argc > 1 && !strcmp(argv[1], "stdio");
    int dup_stdin = argc > 1 && !strcmp(argv[1], "dup");
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!isatty(0)) die("stdin is not a terminal");
    struct termios cooked, raw;
    if (tcgetattr(0, &cooked) != 0) die("tcgetattr");
    raw = cooked;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(0, TCSANOW, &raw) != 0) die("tcsetattr");
    if (dup_stdin) {
        if (dup2(0, 3) != 3) die("dup2");
    } else if (!stdio_only && open("/dev/tty", O_RDWR) != 3) {
        die("open /dev/tty as 3");
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, NULL);
    printf("ready %d\n", (int)getpid());
    char line[16];
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r != 1) die("read");
        if (c == '\n' || c == '\r') break;
        if (n < sizeof line - 1) line[n++] = c;
    }
    line[n] = 0;
    printf("got %s\n", line);
    printf("stdin %s\n", mode_of(0));
    printf("fd 3 %s\n", mode_of(3));
    if (dup_stdin) {
        // A status flag set through one shows through the other only when they share.
        int before = fcntl(0, F_GETFL);
        fcntl(3, F_SETFL, fcntl(3, F_GETFL) ^ O_NONBLOCK);
        printf("fd 3 %s stdin\n", fcntl(0, F_GETFL) != before ? "shares" : "does not share");
        fcntl(3, F_SETFL, fcntl(3, F_GETFL) ^ O_NONBLOCK);
    }
    tcsetattr(0, TCSANOW, &cooked);
    printf("done\n");
    return 0;
}
