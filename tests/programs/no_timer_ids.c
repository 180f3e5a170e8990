/* no_timer_ids PROGRAM ARGS...
 *     Runs PROGRAM as on a kernel older than Linux 6.16, which does not know
 *     prctl(PR_TIMER_CREATE_RESTORE_IDS): a seccomp filter (inherited across exec) makes that
 *     prctl fail with EINVAL and lets every other system call through. Exits 127 if it
 *     cannot. */
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

#define PR_TIMER_CREATE_RESTORE_IDS 77

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: no_timer_ids PROGRAM ARGS...\n");
        return 127;
    }
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_prctl, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_TIMER_CREATE_RESTORE_IDS, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = { sizeof filter / sizeof filter[0], filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        fprintf(stderr, "no_timer_ids: cannot install the seccomp filter: %s\n", strerror(errno));
        return 127;
    }
    execv(argv[1], argv + 1);
    fprintf(stderr, "no_timer_ids: cannot run %s: %s\n", argv[1], strerror(errno));
    return 127;
}
