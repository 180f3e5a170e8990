/* Sets process-wide state a new process does not inherit from a checkpoint file: resource
 * limits, transparent huge pages disabled, an OOM score adjustment and a membarrier
 * registration. Prints "ready", then on each SIGUSR1 one "state ..." line with all of it. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t asked;
static void on_usr1(int sig) { (void)sig; asked = 1; }

static void show_limit(const char *name, int res)
{
    struct rlimit r;
    getrlimit(res, &r);
    printf(" %s=%lld/%lld", name, (long long)r.rlim_cur, (long long)r.rlim_max);
}

static void report(void)
{
    printf("state");
    show_limit("nofile", RLIMIT_NOFILE);
    show_limit("core", RLIMIT_CORE);
    show_limit("stack", RLIMIT_STACK);
    show_limit("msgqueue", RLIMIT_MSGQUEUE);
    char adj[32] = "?";
    int fd = open("/proc/self/oom_score_adj", O_RDONLY);
    ssize_t n = read(fd, adj, sizeof adj - 1);
    close(fd);
    adj[n > 0 ? n - 1 : 0] = 0;
    printf(" thp_disable=%d oom_score_adj=%s membarrier=%#lx\n", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0),
           adj, syscall(SYS_membarrier, 1 << 9, 0, 0));
    fflush(stdout);
}

int main(void)
{
    struct rlimit nofile = { 100, 200 }, core = { 0, 0 }, stack = { 4 << 20, RLIM_INFINITY },
                  msgq = { 4096, 8192 };
    struct rlimit cur;
    getrlimit(RLIMIT_STACK, &cur);
    stack.rlim_max = cur.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) || setrlimit(RLIMIT_CORE, &core) ||
        setrlimit(RLIMIT_STACK, &stack) || setrlimit(RLIMIT_MSGQUEUE, &msgq))
        perror("setrlimit");
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
        perror("PR_SET_THP_DISABLE");
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd < 0 || write(fd, "500", 3) != 3)
        perror("oom_score_adj");
    close(fd);
    /* MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED */
    if (syscall(SYS_membarrier, 1 << 4, 0, 0))
        perror("membarrier");
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
