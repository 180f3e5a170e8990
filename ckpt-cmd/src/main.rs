//! `ckpt` — run a program with checkpointing enabled, and look after checkpoints.
//!
//! `ckpt info`, `ckpt verify`, `ckpt checkpoint` and `ckpt attach` (first argument only)
//! describe a checkpoint file, check its checksums, ask a running program to checkpoint
//! itself, and load libckpt into a running program that was not started under ckpt.
//!
//! To run a program, the command does no checkpointing itself: it finds `libckpt.so`, puts it first in
//! `LD_PRELOAD`, turns its options into the `CKPT_*` variables the library reads when it is
//! loaded, and replaces itself with PROG (like `execvp`). Everything it refuses, it refuses
//! before the exec, with one line on stderr and a shell-like exit status:
//! 2 for a bad command line, 126 for a program it must not or cannot run, 127 for something
//! that is not there (PROG or the library).

#![deny(unsafe_code)]

mod args;
mod attach;
mod checkpoint;
mod elf_reader;
mod image;
mod info;
mod protocol;
mod resume;
mod sys;
mod verify;

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use args::{Request, RunOptions};
use elf_reader::is_static_elf;
use image::Image;

const USAGE: &str = "\
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
  CKPT_QUIET=1     --resume does not say that it resumes or moved a file aside
  CKPT_FSYNC=0     do not fsync a checkpoint before renaming it into place
  CKPT_FORK=0      with -c, write the image in PROG instead of a forked copy
  CKPT_COMPRESS=code|lz4|0
             what is stored as LZ4 frames: program and library images (the
             default), all memory (smaller, slower to write), or nothing
  CKPT_LAZY=1
             in the environment of a RESTART (./PROG.ckpt): map memory from the
             checkpoint file and read it when first touched (see README)
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
  LD_PRELOAD the library is prepended to any value already set
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

/// Exit status for a bad command line.
const EXIT_USAGE: u8 = 2;
/// Exit status for a program that exists but cannot or must not be run (as in sh).
const EXIT_CANNOT_RUN: u8 = 126;
/// Exit status for something not found (as in sh).
const EXIT_NOT_FOUND: u8 = 127;

/// The search path execvp uses when `PATH` is unset (glibc's default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

const LIBRARY_FILE: &str = "libckpt.so";

fn main() -> ExitCode {
    sys::default_sigpipe();
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Request::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Request::Version) => {
            println!("ckpt {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Request::Info { file, json }) => info_command(&file, json),
        Ok(Request::Verify { file }) => verify_command(&file),
        Ok(Request::Attach(options)) => {
            let library = match find_library() {
                Ok(library) => library,
                Err(failure) => {
                    let _ = writeln!(io::stderr(), "ckpt attach: {}", failure.message);
                    return ExitCode::from(failure.status);
                }
            };
            let report = attach::run(&options, &library);
            if report.to_stderr {
                let _ = writeln!(io::stderr(), "{}", report.line);
            } else {
                println!("{}", report.line);
            }
            ExitCode::from(report.status)
        }
        Ok(Request::Checkpoint(options)) => {
            if let Err(status) = inject_for_checkpoint(options.pid) {
                return ExitCode::from(status);
            }
            let outcome = checkpoint::run(&options);
            for line in &outcome.stdout {
                println!("{line}");
            }
            for line in &outcome.stderr {
                let _ = writeln!(io::stderr(), "{line}");
            }
            ExitCode::from(outcome.status)
        }
        Ok(Request::Run(options)) => match run(options) {
            Ok(never) => match never {},
            Err(failure) => {
                fail(&failure.message);
                ExitCode::from(failure.status)
            }
        },
        Err(error) => {
            fail(&error.to_string());
            let hint = match &error {
                args::ArgError::MissingProgram | args::ArgError::UnknownOption(_) => {
                    Some(usage_line(None))
                }
                args::ArgError::Subcommand { command, message }
                    if message.starts_with("unknown option") =>
                {
                    Some(usage_line(Some(command)))
                }
                _ => None,
            };
            if let Some(line) = hint {
                let _ = writeln!(io::stderr(), "usage: {line}   (ckpt --help for more)");
            }
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The synopsis of `ckpt` (`None`) or of one subcommand, from the first lines of `USAGE`.
fn usage_line(command: Option<&str>) -> &'static str {
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

/// For `ckpt checkpoint PID`: a process without libckpt gets it loaded first (with the
/// defaults of `ckpt attach`: no checkpoint signal), saying so in one line on stderr. A
/// refusal is printed, and is the command's exit status.
fn inject_for_checkpoint(pid: i32) -> Result<(), u8> {
    if !attach::needs_injection(pid) {
        return Ok(());
    }
    let library = find_library().map_err(|failure| {
        let _ = writeln!(
            io::stderr(),
            "ckpt checkpoint: process {pid} does not run with libckpt, and it cannot be \
             loaded: {}; not signalling it",
            failure.message
        );
        checkpoint::EXIT_NO_TARGET
    })?;
    let options = attach::AttachOptions {
        pid,
        ..Default::default()
    };
    match attach::inject(&options, &library) {
        Ok(attached) => {
            let _ = writeln!(
                io::stderr(),
                "ckpt checkpoint: process {pid} did not run with libckpt; loaded it \
                 (thread {}, paused {:.3} ms)",
                attached.tid,
                attached.pause.as_secs_f64() * 1e3
            );
            Ok(())
        }
        // Someone else loaded it meanwhile: go on.
        Err(attach::AttachError::AlreadyLoaded) => Ok(()),
        Err(attach::AttachError::Refused(why)) => {
            let _ = writeln!(
                io::stderr(),
                "ckpt checkpoint: {pid} does not run with libckpt, and loading it was \
                 refused: {why}; not signalling it"
            );
            Err(checkpoint::EXIT_NO_TARGET)
        }
        Err(attach::AttachError::Failed(why)) => {
            let _ = writeln!(io::stderr(), "ckpt checkpoint: {why}; not signalling it");
            Err(checkpoint::EXIT_FAILED)
        }
    }
}

/// `ckpt info FILE [--json]`.
fn info_command(file: &OsStr, json: bool) -> ExitCode {
    let shown = Path::new(file).display().to_string();
    match Image::open(Path::new(file)) {
        Ok(image) => {
            let info = info::Info::gather(&shown, &image);
            if json {
                println!("{}", info.json());
            } else {
                print!("{}", info.text());
            }
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            let _ = writeln!(io::stderr(), "ckpt info: {shown}: {}", refusal.message);
            ExitCode::from(refusal.status)
        }
    }
}

/// `ckpt verify FILE`.
fn verify_command(file: &OsStr) -> ExitCode {
    let shown = Path::new(file).display().to_string();
    match Image::open(Path::new(file)).and_then(|image| verify::verify(&image)) {
        Ok(verified) => {
            println!(
                "{shown}: ok ({} regions, {} extents, {} bytes verified)",
                verified.regions, verified.extents, verified.bytes
            );
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            let _ = writeln!(io::stderr(), "ckpt verify: {shown}: {}", refusal.message);
            ExitCode::from(refusal.status)
        }
    }
}

fn fail(message: &str) {
    let _ = writeln!(io::stderr(), "ckpt: {message}");
}

/// Why PROG was not started: the line to print and the exit status.
struct Failure {
    message: String,
    status: u8,
}

impl Failure {
    fn new(status: u8, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status,
        }
    }
}

/// Resolves PROG and the library, sets up the environment and execs; returns only on failure.
fn run(mut options: RunOptions) -> Result<std::convert::Infallible, Failure> {
    // First: a restart needs neither PROG nor the library, the checkpoint carries both.
    if let Some(mode) = options.resume {
        let file = resume::resume_or_start(mode, options.name.as_deref(), &options.program)?;
        options.name = Some(file.into_os_string());
    }
    let program = resolve_program(&options.program)?;
    refuse_set_id(&program)?;
    refuse_static(&program)?;
    let library = find_library()?;

    let mut command = Command::new(&program);
    command.arg0(&options.program).args(&options.program_args);
    command.env(
        "LD_PRELOAD",
        preload_value(&library, std::env::var_os("LD_PRELOAD")),
    );
    if let Some(name) = &options.name {
        command.env("CKPT_NAME", name);
    }
    // PROG runs in this process (exec), so this pid is PROG's: the library tells the process
    // ckpt started from its descendants by it, and names the former's checkpoint after PROG
    // as given (`ckpt ./job.py` writes job.py.ckpt, not python3.ckpt).
    command.env("CKPT_PID", std::process::id().to_string());
    command.env("CKPT_PROGRAM", program_basename(&options.program));
    if options.continue_after_checkpoint {
        command.env("CKPT_CONTINUE", "1");
    }
    if let Some(signal) = &options.async_signal {
        command.env("CKPT_ASYNCSIG", signal);
    }
    if let Some(period) = options.period_ms {
        command.env("CKPT_MSPERIOD", period.to_string());
    }

    let error = command.exec();
    let status = if error.kind() == io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_RUN
    };
    Err(Failure::new(
        status,
        format!("cannot run {}: {error}", program.display()),
    ))
}

/// The basename of PROG as the user gave it: the default checkpoint name is this plus
/// `.ckpt`.
fn program_basename(program: &OsStr) -> &OsStr {
    let bytes = program.as_bytes();
    let base = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    OsStr::from_bytes(base)
}

/// Finds PROG the way execvp does: a name with a slash is used as it is; otherwise each
/// `PATH` entry is tried in order (an empty entry means the current directory), and the first
/// regular file with an execute bit wins.
fn resolve_program(program: &OsStr) -> Result<PathBuf, Failure> {
    if program.is_empty() {
        return Err(Failure::new(EXIT_NOT_FOUND, "empty program name"));
    }
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        return match path.metadata() {
            Ok(metadata) if metadata.is_dir() => Err(Failure::new(
                EXIT_CANNOT_RUN,
                format!("{}: is a directory", path.display()),
            )),
            Ok(metadata) if metadata.permissions().mode() & 0o111 == 0 => Err(Failure::new(
                EXIT_CANNOT_RUN,
                format!("{}: permission denied (not executable)", path.display()),
            )),
            Ok(_) => Ok(path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(Failure::new(
                EXIT_NOT_FOUND,
                format!("{}: no such file", path.display()),
            )),
            Err(error) => Err(Failure::new(
                EXIT_CANNOT_RUN,
                format!("{}: {error}", path.display()),
            )),
        };
    }

    let search = std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let mut not_executable = None;
    for dir in search.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        let Ok(metadata) = candidate.metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        if metadata.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
        not_executable.get_or_insert(candidate);
    }
    Err(match not_executable {
        Some(path) => Failure::new(
            EXIT_CANNOT_RUN,
            format!("{}: permission denied (not executable)", path.display()),
        ),
        None => Failure::new(
            EXIT_NOT_FOUND,
            format!(
                "{}: command not found in PATH",
                Path::new(program).display()
            ),
        ),
    })
}

/// Refuses set-user-ID and set-group-ID programs: the dynamic loader runs them in secure mode
/// and ignores an LD_PRELOAD path like ours, so they would run without checkpointing.
fn refuse_set_id(program: &Path) -> Result<(), Failure> {
    let mode = program
        .metadata()
        .map_err(|error| Failure::new(EXIT_CANNOT_RUN, format!("{}: {error}", program.display())))?
        .permissions()
        .mode();
    let set_id = libc::S_ISUID | libc::S_ISGID;
    if mode & set_id != 0 {
        return Err(Failure::new(
            EXIT_CANNOT_RUN,
            format!(
                "{} is a set-user-ID or set-group-ID program; it cannot be checkpointed \
                 (the loader ignores LD_PRELOAD for it)",
                program.display()
            ),
        ));
    }
    Ok(())
}

/// Refuses statically linked ELF programs: nothing loads a preloaded library into them, so
/// the checkpoint signal would merely stop them. (Scripts and other files are left to the
/// kernel: an interpreter started for them is dynamically linked as usual.)
fn refuse_static(program: &Path) -> Result<(), Failure> {
    let Ok(bytes) =
        std::fs::read(program).map(|b| b.into_iter().take(64 * 1024).collect::<Vec<u8>>())
    else {
        return Ok(());
    };
    // A checkpoint file is static too, but it needs no library: it carries its own.
    if is_static_elf(&bytes) && elf_reader::ckpt_header_offset(&bytes).is_none() {
        return Err(Failure::new(
            EXIT_CANNOT_RUN,
            format!(
                "{} is statically linked; the checkpoint library cannot be loaded into it \
                 (build it as a dynamically linked program)",
                program.display()
            ),
        ));
    }
    Ok(())
}

/// Finds libckpt.so: `$CKPT_LIBRARY` if set, else beside the ckpt executable, else in
/// `../lib/` or `../lib/ckpt/` relative to it. The result is absolute: a relative LD_PRELOAD
/// entry would be looked up again, relative to whatever directory PROG or its children are in.
fn find_library() -> Result<PathBuf, Failure> {
    if let Some(explicit) = std::env::var_os("CKPT_LIBRARY").filter(|value| !value.is_empty()) {
        let path = absolute(Path::new(&explicit));
        if !path.is_file() {
            return Err(Failure::new(
                EXIT_NOT_FOUND,
                format!("CKPT_LIBRARY={}: no such file", path.display()),
            ));
        }
        return check_preloadable(path);
    }

    let exe = std::env::current_exe().map_err(|error| {
        Failure::new(
            EXIT_NOT_FOUND,
            format!("cannot find {LIBRARY_FILE}: cannot locate the ckpt executable: {error}"),
        )
    })?;
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [
        exe_dir.join(LIBRARY_FILE),
        exe_dir.join("../lib").join(LIBRARY_FILE),
        exe_dir.join("../lib/ckpt").join(LIBRARY_FILE),
    ];
    match candidates.iter().find(|path| path.is_file()) {
        Some(found) => check_preloadable(absolute(found)),
        None => {
            let searched: Vec<String> = candidates
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            Err(Failure::new(
                EXIT_NOT_FOUND,
                format!(
                    "cannot find {LIBRARY_FILE}; searched $CKPT_LIBRARY (unset), {}",
                    searched.join(", ")
                ),
            ))
        }
    }
}

/// The loader splits LD_PRELOAD at colons and spaces, so such a path cannot be preloaded.
fn check_preloadable(path: PathBuf) -> Result<PathBuf, Failure> {
    if path
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|&b| b == b':' || b == b' ')
    {
        return Err(Failure::new(
            EXIT_NOT_FOUND,
            format!(
                "cannot preload {}: LD_PRELOAD cannot hold a path with ':' or ' '; \
                 set CKPT_LIBRARY to another location",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// Makes a path absolute and tidies `..` components, without resolving symlinks of the file
/// itself (the loader does that).
fn absolute(path: &Path) -> PathBuf {
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (joined.parent().map(Path::canonicalize), joined.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => joined,
    }
}

/// The new LD_PRELOAD: our library first, then whatever was there.
fn preload_value(library: &Path, existing: Option<OsString>) -> OsString {
    let mut value = library.as_os_str().to_os_string();
    if let Some(existing) = existing.filter(|existing| !existing.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

#[cfg(test)]
mod tests {
    #[test]
    fn static_elf_detection() {
        // A minimal ELF64 header with two program headers of the given types.
        let elf = |types: &[u32]| {
            let mut b = vec![0u8; 64 + 56 * types.len()];
            b[..4].copy_from_slice(b"\x7fELF");
            b[4] = 2;
            b[32..40].copy_from_slice(&64u64.to_le_bytes());
            b[54..56].copy_from_slice(&56u16.to_le_bytes());
            b[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
            for (i, t) in types.iter().enumerate() {
                b[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
            }
            b
        };
        assert!(super::is_static_elf(&elf(&[1, 1])));
        assert!(!super::is_static_elf(&elf(&[6, 3, 1])));
        assert!(!super::is_static_elf(b"#!/bin/sh\necho hi\n"));
        let own = std::fs::read("/bin/sh").unwrap_or_default();
        assert!(!super::is_static_elf(&own), "/bin/sh is dynamically linked");
    }

    use super::*;

    #[test]
    fn preload_prepends() {
        let lib = Path::new("/opt/ckpt/libckpt.so");
        assert_eq!(preload_value(lib, None), "/opt/ckpt/libckpt.so");
        assert_eq!(
            preload_value(lib, Some(OsString::new())),
            "/opt/ckpt/libckpt.so"
        );
        assert_eq!(
            preload_value(lib, Some(OsString::from("/a.so:/b.so"))),
            "/opt/ckpt/libckpt.so:/a.so:/b.so"
        );
    }

    #[test]
    fn program_with_slash_must_exist() {
        let failure = resolve_program(OsStr::new("/nonexistent/dir/prog")).unwrap_err();
        assert_eq!(failure.status, EXIT_NOT_FOUND);
        assert!(failure.message.contains("/nonexistent/dir/prog"));
    }

    #[test]
    fn absolute_tidies_parent_components() {
        let tidy = absolute(Path::new("/usr/lib/../bin/env"));
        assert_eq!(tidy, std::fs::canonicalize("/usr/bin").unwrap().join("env"));
    }
}
