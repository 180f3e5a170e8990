/* Using the ckpt API: hooks, configuration and a synchronous checkpoint.
 *
 * Build and run (from the top of the repository, after cargo build --release --workspace;
 * the program and its checkpoint stay in target/, out of the source tree):
 *
 *     cc -I include examples/api.c -L target/release -lckpt -o target/api
 *     cd target
 *     LD_LIBRARY_PATH=release ./api        # writes api.ckpt and keeps going
 *     ./api.ckpt                           # resumes right after ckpt_ckpt()
 *
 * With ckpt installed (make install): cc api.c $(pkg-config --cflags --libs ckpt) -o api
 *
 * With an argument, ./api NAME checkpoints to NAME instead of api.ckpt.
 *
 * The hooks may run inside a signal handler (when the checkpoint is asynchronous), so they
 * only call async-signal-safe functions: here, write(2). */
#include <ckpt.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void say(void *line)
{
    ssize_t written = write(STDOUT_FILENO, line, strlen(line));
    (void)written;
}

int main(int argc, char **argv)
{
    /* Pre-checkpoint and post-checkpoint hooks run in the order they were registered;
     * restart hooks in the reverse order ("restart 2" first). */
    ckpt_on_preckpt(say, (void *)"pre 1\n");
    ckpt_on_preckpt(say, (void *)"pre 2\n");
    ckpt_on_postckpt(say, (void *)"post 1\n");
    ckpt_on_postckpt(say, (void *)"post 2\n");
    ckpt_on_restart(say, (void *)"restart 1\n");
    ckpt_on_restart(say, (void *)"restart 2\n");

    /* Keep running after the checkpoint; leave the other parameters as they are. */
    struct ckptconfig cfg, old;
    memset(&cfg, 0, sizeof cfg);
    cfg.flags = CKPT_CONTINUE;
    cfg.continues = 1;
    ckpt_config(&cfg, &old);
    printf("checkpoint name %s, signal %u\n", argc > 1 ? argv[1] : old.name, old.asyncsig);

    unsigned long counter = 0;
    for (int i = 0; i < 3; i++)
        printf("counter %lu\n", ++counter);
    /* Flush before checkpointing: otherwise the restarted process would print again
     * whatever was still in the stdio buffer. */
    fflush(stdout);

    switch (ckpt_ckpt(argc > 1 ? argv[1] : NULL)) {
    case CKPT_CKPT_TAKEN:
        printf("taken\n");
        break;
    case CKPT_CKPT_RESTARTED:
        printf("restarted\n");
        break;
    default:
        printf("failed: %s\n", strerror(errno));
        break;
    }

    for (int i = 0; i < 3; i++)
        printf("counter %lu\n", ++counter);
    return 0;
}
