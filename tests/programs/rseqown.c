/* Unregisters glibc's rseq area and registers one of its own with syscall(SYS_rseq), as
 * CRIU's and DMTCP's rseq tests do. Prints "ready"; then, on each SIGUSR1, whether the
 * kernel still keeps its area up to date ("rseq alive" / "rseq dead") and still has it
 * registered ("registered" when registering it again is refused as busy). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct rseq area __attribute__((aligned(32)));
static volatile sig_atomic_t asked;

static void on_usr1(int sig) { (void)sig; asked = 1; }

static void report(void)
{
    area.cpu_id = (uint32_t)-1;
    /* A sleep switches this thread out; coming back, the kernel rewrites cpu_id. */
    usleep(2000);
    int alive = area.cpu_id != (uint32_t)-1;
    long r = syscall(SYS_rseq, &area, 32, 0, RSEQ_SIG);
    int registered = r == -1 && errno == EBUSY;
    printf("rseq %s %s\n", alive ? "alive" : "dead", registered ? "registered" : "unregistered");
    fflush(stdout);
}

int main(void)
{
    if (__rseq_size > 0) {
        void *glibc = (char *)__builtin_thread_pointer() + __rseq_offset;
        if (syscall(SYS_rseq, glibc, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0) {
            perror("unregister glibc's rseq");
            return 1;
        }
    }
    if (syscall(SYS_rseq, &area, 32, 0, RSEQ_SIG) != 0) {
        perror("register rseq");
        return 1;
    }
    signal(SIGUSR1, on_usr1);
    report();
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        while (!asked)
            pause();
        asked = 0;
        report();
    }
}
