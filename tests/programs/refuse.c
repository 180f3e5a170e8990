/* refuse WHAT PROG ARGS…: runs PROG with one system call refused by a seccomp filter, or
 * without huge pages, to drive the restart stub down its fallback paths:
 *   userfaultfd  userfaultfd(2) fails with ENOSYS (a kernel without it);
 *   move         ioctl(UFFDIO_MOVE) fails with EINVAL (a kernel before 6.8), after the
 *                region was registered and its window filled;
 *   eagain       ioctl(UFFDIO_MOVE) fails with EAGAIN having moved nothing (the kernel's
 *                answer to a move it could only do in part, at its first page);
 *   thp          no seccomp filter: transparent huge pages are disabled for PROG
 *                (PR_SET_THP_DISABLE, kept across exec), so that every window is filled
 *                in small pages. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UFFDIO_MOVE_ 0xc028aa05u

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: refuse userfaultfd|move|eagain|thp PROG ARGS...\n");
        return 2;
    }
    if (strcmp(argv[1], "thp") == 0) {
        if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) {
            perror("refuse: PR_SET_THP_DISABLE");
            return 2;
        }
        execvp(argv[2], argv + 2);
        perror("refuse: exec");
        return 2;
    }
    int eagain = strcmp(argv[1], "eagain") == 0;
    int move = eagain || strcmp(argv[1], "move") == 0;
    int error = eagain ? EAGAIN : move ? EINVAL : ENOSYS;
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, move ? SYS_ioctl : SYS_userfaultfd, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, move ? UFFDIO_MOVE_ : 0, 0, move ? 1 : 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | error),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    /* For userfaultfd any argument is refused: the jump above falls through either way. */
    struct sock_fprog prog = { sizeof filter / sizeof filter[0], filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("refuse: seccomp");
        return 2;
    }
    execvp(argv[2], argv + 2);
    perror("refuse: exec");
    return 2;
}
