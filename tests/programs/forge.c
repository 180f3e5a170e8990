/* Forges a checkpoint request the way the old protocol read them: queues signal 63 at
 * TARGET with si_code SI_QUEUE, a claimed sender pid and a value naming descriptors, with
 * rt_sigqueueinfo (which lets the sender write si_pid and the value as it likes).
 *
 *   forge TARGET CLAIMED_PID VALUE [FILE]
 *
 * With FILE, it is opened read-only first, and VALUE "fd" stands for (fd << 16) | fd.
 * Prints "sent", then stays alive (its descriptors open) until its stdin ends. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    pid_t target = atoi(argv[1]);
    pid_t claimed = atoi(argv[2]);
    int value = (int)strtol(argv[3], NULL, 0);
    if (argc > 4) {
        int fd = open(argv[4], O_RDONLY);
        if (fd < 0) {
            perror("open");
            return 1;
        }
        if (strcmp(argv[3], "fd") == 0)
            value = (fd << 16) | fd;
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = 63;
    info.si_code = SI_QUEUE;
    info.si_pid = claimed;
    info.si_uid = getuid();
    info.si_value.sival_int = value;
    if (syscall(SYS_rt_sigqueueinfo, target, 63, &info) != 0) {
        perror("rt_sigqueueinfo");
        return 1;
    }
    printf("sent\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0;
}
