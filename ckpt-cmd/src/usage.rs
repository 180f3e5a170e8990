//! The text of `ckpt --help` and the synopses taken from it.

pub(crate) const USAGE: &str = "\
usage: ckpt [-n NAME] [-c] [-a SIGNAL] [-z MS] [--resume[=fresh-if-damaged]] [--] PROG [ARGS...]
       ckpt info FILE [--json]
       ckpt verify FILE
       ckpt checkpoint PID [-n NAME] [--term | --kill | --signal N] [--timeout S]
       ckpt attach PID [-c] [-z MS] [-a SIGNAL] [-n NAME]
       ckpt --help | --version

Run PROG (searched in PATH when it has no slash) with the checkpoint library
libckpt.so preloaded. Send PROG the checkpoint signal (SIGTSTP by default, e.g.
`kill -TSTP PID` or ^Z) and it writes PROG.ckpt in its current directory and
exits. PROG.ckpt is an executable: run it to resume PROG where it stopped.
PROG.ckpt is named after the basename of PROG as given: `ckpt ./job.py` writes
job.py.ckpt, not python3.ckpt.

options:
  -n NAME    write the checkpoint to NAME instead of PROG.ckpt    (CKPT_NAME)
  -c         keep running after a checkpoint instead of exiting  (CKPT_CONTINUE=1)
  -a SIGNAL  checkpoint on SIGNAL instead of SIGTSTP: a number 1..64, a name
             such as USR1 or SIGUSR1, or 0 to disable signal checkpoints
                                                                  (CKPT_ASYNCSIG)
  -z MS      also checkpoint every MS milliseconds; 0 means never (CKPT_MSPERIOD)
  --resume   resume-or-start, for batch jobs: when the checkpoint (NAME, else
             PROG.ckpt in the working directory) exists and passes ckpt verify,
             run it; when there is none, start PROG writing it. So one command
             line serves the first start and every restart. A resumed program
             has the arguments, environment and options saved in the checkpoint:
             ARGS and the options here apply only to a fresh start. A checkpoint
             that does not verify is refused, with one line and the verify
             status; one that cannot be read is refused with 64
  --resume=fresh-if-damaged
             as --resume, but a checkpoint that does not verify is moved aside
             to NAME.damaged, one line says so, and PROG starts afresh
  --         end of options (for a PROG whose name starts with '-')
  -h, --help     print this help
  -V, --version  print the version

environment:
  CKPT_NAME, CKPT_CONTINUE, CKPT_ASYNCSIG, CKPT_MSPERIOD
             read by libckpt.so when PROG starts; the options above set them,
             and a variable set in the environment of ckpt applies as well
  CKPT_CHILDREN=1  children of PROG that inherit the library (forked, or run
             with it preloaded) also checkpoint on the signal and -z; by
             default only PROG does, and its children get the signal's own
             action (SIGTSTP stops them)
  CKPT_QUIET=1     a checkpoint that ends PROG does not say on stderr where it
             went (path and size), and --resume does not say that it resumes or
             moved a file aside
  CKPT_PROGRESS=1|0
             ckpt checkpoint prints its progress (bytes written of the total,
             rate) as a line per report, wherever stderr goes (1), or never (0);
             by default it shows it on a terminal once a checkpoint has taken a
             second
  CKPT_FSYNC=0     do not fsync a checkpoint before renaming it into place
  CKPT_FORK=0      with -c, write the image in PROG instead of a forked copy
  CKPT_COMPRESS=code|lz4|0
             what is stored as LZ4 frames: program and library images (the
             default), all memory (smaller, slower to write), or nothing
  CKPT_INCREMENTAL=1|0
             keep the checkpoint before the last as NAME.prev and write the
             next one into it in place: only the pages PROG wrote since, then
             swapped with NAME; each file still restarts alone. On by default
             for -z; 1 for every checkpoint that lets PROG continue; 0 writes
             everything anew and keeps no NAME.prev
  CKPT_LAZY=1
             in the environment of a RESTART (./PROG.ckpt): map memory from the
             checkpoint file and read it when first touched (see README)
  CKPT_HUGE_FILL=0|1
             in the environment of a RESTART: do not fill dense memory in huge
             pages (0), or keep trying even when the kernel gives small pages
             (1); by default the restart stops trying once a window comes small
  CKPT_FD_POLICY=refuse|close
             a descriptor a checkpoint cannot save yet (a pipe, a socket, ...)
             fails the checkpoint (refuse, the default) or is left closed at
             the restart, which says so (close)
  CKPT_MAX_DELETED=SIZE
             most bytes of a deleted file or memfd PROG has open that a checkpoint
             saves (per file; K, M, G suffixes; default 1M): a larger one fails
             the checkpoint, naming it, or is left closed with CKPT_FD_POLICY=close
  CKPT_STRICT_FILES=1
             in PROG's environment or a RESTART's: a file PROG had open that was
             replaced or truncated since refuses the restart (status 78) instead
             of a warning
  CKPT_RESTORE_STDIO=1
             in the environment of a RESTART: standard input, output and error
             are PROG's saved ones (files, devices) instead of the restart's
  CKPT_RELOCATE=OLD=NEW[:OLD=NEW...]
             in the environment of a RESTART: files PROG had open under
             directory OLD are opened under NEW (status 79 when malformed)
  CKPT_LIBRARY
             path of libckpt.so to preload; by default it is looked for beside
             the ckpt executable, then in ../lib/ and ../lib/ckpt/ relative to it
  LD_PRELOAD
             the library is prepended to any value already set
  CKPT_PID, CKPT_PROGRAM
             set by ckpt for PROG: its pid and the basename of PROG, which names
             its checkpoint; processes with another pid are PROG's children

exit status: that of PROG; or 2 for a bad command line (an unknown option
also prints the usage line of the command or subcommand), 126 when PROG cannot
or must not be run (set-user-ID or set-group-ID programs are refused: the
dynamic loader ignores LD_PRELOAD for them; so are statically linked programs,
which no library can be loaded into), 127 when PROG or libckpt.so is
not found.

A checkpoint file holds the whole memory of the program, secrets included;
it is created with mode 0700.

subcommands (recognised only as the first argument; run a program named
like one of them as `ckpt -- info`):
  info FILE [--json]
             print what checkpoint FILE holds: program, command line, when it
             was taken, pid, format version, regions (addresses, protections,
             backing, bytes stored), sizes, and the threads, one a line: tid,
             role (main, leader: took the checkpoint, ptraced), name, where it
             was stopped (mapping+offset), pending signals, CPUs; and the open
             descriptors, one a line, with what a restart does with each;
             --json prints one JSON object. Validates the header and tables like a restart
             does.
  verify FILE
             everything info checks, plus the ELF header, the checksum of the
             restart stub and the CRC-32C of every stored extent; prints
             `FILE: ok (...)` or the first damage.
  checkpoint PID [-n NAME] [--term | --kill | --signal N] [--timeout S]
             ask process PID, which must run with libckpt.so, to checkpoint
             itself now (to NAME, else its own checkpoint name) and keep
             running; then send it SIGTERM (--term), SIGKILL (--kill) or
             signal N (--signal N) once the checkpoint is complete. Waits up
             to S seconds (default 60) for the answer. A process that was not
             started with libckpt gets it loaded first, as by ckpt attach
             (one line on stderr says so); one where that is refused is never
             signalled.
  attach PID [-c] [-z MS] [-a SIGNAL] [-n NAME]
             load libckpt.so into process PID, one of yours that was not
             started under ckpt, with ptrace and its own dlopen, and configure
             it with the options above (as for PROG): then ckpt checkpoint PID,
             -z periods or the -a signal checkpoint it. Without -a it takes no
             checkpoint signal (^Z keeps its meaning). The process is stopped
             for well under a millisecond, in a thread that is blocked in a
             system call other than a futex wait; a process with no such
             thread within 2 s is refused, untouched. Also refused: another
             user's process, a traced, stopped or non-dumpable one, a static
             or non-glibc program (no libc.so.6), glibc older than 2.34 (no
             dlopen in libc.so.6), and where Yama's ptrace_scope forbids it.

exit status of info and verify (the same as a checkpoint file's restart):
  0 ok, 64 cannot read the file, 65 not a ckpt checkpoint image,
  66 unsupported format version, 67 another architecture, 68 header or
  restart stub damaged (the stub: verify), 69 truncated, 70 tables damaged,
  71 tables inconsistent, 75 payload damaged (verify)
exit status of checkpoint: 0 checkpointed, 1 the checkpoint failed or the
  process ended first, 2 bad command line, 3 no such process, or libckpt
  could not be loaded into it (refused) or it cannot be signalled, 124 no
  answer in time
exit status of attach: 0 loaded (or there already), 1 loading failed after
  the process was stopped (the line says in what state it was left), 2 bad
  command line, 3 refused, the process untouched
";

/// The synopsis of `ckpt` (`None`) or of one subcommand, from the first lines of `USAGE`.
pub(crate) fn usage_line(command: Option<&str>) -> &'static str {
    let mut synopses = USAGE
        .lines()
        .take_while(|line| !line.is_empty())
        .map(|line| line.trim_start_matches("usage:").trim_start());
    let first = synopses.next().unwrap_or("ckpt --help");
    match command {
        None => first,
        Some(command) => synopses
            .find(|line| {
                line.strip_prefix("ckpt ")
                    .and_then(|rest| rest.strip_prefix(command))
                    .is_some_and(|rest| rest.starts_with(' '))
            })
            .unwrap_or(first),
    }
}
