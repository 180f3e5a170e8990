/*
 * ckpt.h - the C API of libckpt, the ckpt checkpoint library.
 *
 * Link with -lckpt: `pkg-config --cflags --libs ckpt` gives the flags for an installed
 * ckpt, the library's directory recorded in the program (-rpath) so that it is found when
 * the program runs; against a build tree, make libckpt.so findable yourself, e.g. with
 * LD_LIBRARY_PATH. Or run the program under `ckpt` / LD_PRELOAD=libckpt.so: the API behaves
 * the same way. Names and semantics follow the documentation of Victor Zandy's ckpt 2.
 */
#ifndef CKPT_H
#define CKPT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Longest checkpoint name, including the terminating NUL. */
#define CKPT_MAXNAME 1024

/* Bits of struct ckptconfig.flags: which fields ckpt_config applies. */
#define CKPT_NAME     (1 << 1)
#define CKPT_ASYNCSIG (1 << 2)
#define CKPT_CONTINUE (1 << 3)
#define CKPT_MSPERIOD (1 << 4)

/* Return values of ckpt_ckpt. */
#define CKPT_CKPT_FAILED    (-1) /* no checkpoint was written; errno says why */
#define CKPT_CKPT_TAKEN     0    /* checkpoint written; this is the original process */
#define CKPT_CKPT_RESTARTED 1    /* this is a process restarted from the checkpoint */

/*
 * The checkpoint parameters.
 *
 *   flags      with ckpt_config's CFG: which of the fields below to apply (CKPT_NAME,
 *              CKPT_ASYNCSIG, CKPT_CONTINUE, CKPT_MSPERIOD); ignored in OLD.
 *   name       CKPT_NAME: the checkpoint file name (relative names are resolved in the
 *              working directory at checkpoint time). Default: the program's basename
 *              followed by ".ckpt".
 *   asyncsig   CKPT_ASYNCSIG: the signal that triggers an asynchronous checkpoint; 0
 *              disables asynchronous checkpoints. Default: SIGTSTP.
 *   continues  CKPT_CONTINUE: non-zero to keep running after a checkpoint; zero to exit
 *              (with _exit(0)) once the checkpoint is safely written. Default: 0.
 *   msperiod   CKPT_MSPERIOD: take a checkpoint every msperiod milliseconds (the process
 *              always continues after a periodic checkpoint); 0 disables. Default: 0.
 *              Periodic checkpoints use a POSIX timer of the library's own, delivering
 *              real-time signal SIGRTMAX-1 to the thread that loaded the library, so the
 *              program's alarm()/setitimer() timers are left alone.
 */
struct ckptconfig {
    int flags;
    char name[CKPT_MAXNAME];
    unsigned int asyncsig;
    unsigned int continues;
    unsigned int msperiod;
};

/*
 * ckpt_on_preckpt - register a function to run before each checkpoint
 *
 * Registers F to be called with ARG when a checkpoint is triggered, before the checkpoint
 * begins. Functions are called in the order they were registered.
 *
 * Beware: F may be called in the context of a signal handler (asynchronous and periodic
 * checkpoints are taken in one), so it should only do async-signal-safe things.
 * At most 32 functions of each kind can be registered; more are refused with a message.
 */
void ckpt_on_preckpt(void (*f)(void *), void *arg);

/*
 * ckpt_on_postckpt - register a function to run after a checkpoint the process survives
 *
 * Registers F to be called with ARG after a checkpoint, when the process continues
 * (CKPT_CONTINUE set, a periodic checkpoint, or a checkpoint that failed). Functions are
 * called in the order they were registered. May run in a signal handler.
 */
void ckpt_on_postckpt(void (*f)(void *), void *arg);

/*
 * ckpt_on_restart - register a function to run when the process is restarted
 *
 * Registers F to be called with ARG when a process is restarted from a checkpoint: after
 * the checkpoint has been completely restored, just before control returns to the program,
 * in the REVERSE of the order they were registered. May run in a signal handler.
 *
 * In a multithreaded program, post-checkpoint and restart hooks run in the thread that took
 * the checkpoint while every other thread is stopped (pre-checkpoint hooks, before they
 * are): such a hook must not wait for anything another thread may hold — a mutex, stdio's
 * locks (printf), the allocator's (malloc) — or it waits forever.
 */
void ckpt_on_restart(void (*f)(void *), void *arg);

/*
 * ckpt_config - read and change the checkpoint parameters
 *
 * If OLD is non-NULL, fills it with a copy of the current parameters (its flags field is
 * set to all four bits). If CFG is non-NULL, then, for each of CKPT_NAME, CKPT_ASYNCSIG,
 * CKPT_CONTINUE and CKPT_MSPERIOD set in CFG->flags, applies the corresponding field.
 * The name is copied: the caller may reuse CFG afterwards. Changing the asynchronous
 * signal uninstalls ckpt's handler for the old signal and puts back the action the program
 * had there. An invalid value (a name that does not fit or is empty, a signal that cannot
 * be caught) is refused with a message on stderr, and that field keeps its old value.
 *
 * Safety: CFG and OLD must each be NULL or point to a struct ckptconfig; CFG->name must be
 * NUL-terminated within CKPT_MAXNAME bytes when CKPT_NAME is set. Not async-signal-safe.
 */
void ckpt_config(struct ckptconfig *cfg, struct ckptconfig *old);

/*
 * ckpt_ckpt - take a checkpoint now
 *
 * Takes a checkpoint now, synchronously. If NAME is non-NULL it is the checkpoint file name
 * for this call only; otherwise the configured name is used.
 *
 * Returns CKPT_CKPT_TAKEN (0) in the original process after the checkpoint was written,
 * when CKPT_CONTINUE is set (without it, the process exits with status 0 instead of
 * returning); CKPT_CKPT_RESTARTED (1) when the process was restarted from this checkpoint;
 * CKPT_CKPT_FAILED (-1) with errno set when no checkpoint could be written (EBUSY: another
 * checkpoint is in progress) — the program then keeps running whatever CKPT_CONTINUE says.
 * Pre-checkpoint, post-checkpoint and restart hooks run as for asynchronous checkpoints.
 *
 * Safety: NAME must be NULL or a NUL-terminated string shorter than CKPT_MAXNAME.
 */
int ckpt_ckpt(char *name);

#ifdef __cplusplus
}
#endif

#endif /* CKPT_H */
