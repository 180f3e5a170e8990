//! `ckpt attach PID`: loads libckpt.so into a running process that was not started under
//! ckpt, as an ordinary user, with ptrace and the target's own `dlopen` (the original
//! ckpt's planned "hijack"; DESIGN-threads-files-attach.md §3).
//!
//! Order of work, each step refusing with a reason while the target is still untouched:
//! 1. checks from /proc: same user, not traced, not stopped, dumpable, glibc with `dlopen`
//!    mapped, libckpt not there already, SIGSEGV not ignored (the calls return through it),
//!    ckpt's control signal not taken by the program;
//! 2. a thread at a safe point: seized and interrupted, accepted only if it was blocked in a
//!    system call other than a futex wait (so it holds neither the allocator's nor the
//!    loader's lock); otherwise released at once and tried again about every millisecond,
//!    other threads too, for at most [`SAFE_POINT_BOUND`];
//! 3. calls in that thread ([`remote`]): `getenv` of the library's `CKPT_*` variables,
//!    `setenv`/`unsetenv` to the values the attach wants (no SIGTSTP handler unless `-a`),
//!    `dlopen(libckpt.so, RTLD_NOW)` (whose constructor reads them), `dlerror` if it failed,
//!    then the variables back as they were, so that children do not inherit ours;
//! 4. registers and extended state back exactly; detach.

mod ptrace;
mod remote;
mod target;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::image::io_message;
use remote::{CallError, Session};

/// How long to look for a thread at a safe point before giving up.
pub const SAFE_POINT_BOUND: Duration = Duration::from_secs(2);
/// How long a thread is left to run between two tries.
const RETRY_PAUSE: Duration = Duration::from_millis(1);

/// `dlopen`'s RTLD_NOW: resolve everything now, so that no lazy binding happens later in a
/// signal handler.
const RTLD_NOW: u64 = 2;

/// The variables libckpt's constructor reads (libckpt/src/config.rs). Those the attach does
/// not set are unset while the library loads, so that a value the program happens to carry
/// cannot make the constructor refuse (and exit the program); all are put back after.
const LIBRARY_VARIABLES: &[&str] = &[
    "CKPT_NAME",
    "CKPT_CONTINUE",
    "CKPT_ASYNCSIG",
    "CKPT_MSPERIOD",
    "CKPT_FSYNC",
    "CKPT_FORK",
    "CKPT_COMPRESS",
    "CKPT_FD_POLICY",
    "CKPT_STRICT_FILES",
    "CKPT_MAX_DELETED",
];

/// How the injected library is configured (the options of `ckpt attach`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub pid: i32,
    /// `-n NAME` → `CKPT_NAME`.
    pub name: Option<OsString>,
    /// `-c` → `CKPT_CONTINUE=1`.
    pub continue_after_checkpoint: bool,
    /// `-a SIGNAL` → `CKPT_ASYNCSIG`; without it `CKPT_ASYNCSIG=0`: an attached program
    /// keeps its own ^Z.
    pub async_signal: Option<String>,
    /// `-z MS` → `CKPT_MSPERIOD`.
    pub period_ms: Option<u64>,
}

impl AttachOptions {
    /// The value each library variable gets while the library loads (`None`: unset).
    fn wanted(&self, variable: &str) -> Option<Vec<u8>> {
        match variable {
            "CKPT_NAME" => self.name.as_ref().map(|n| n.as_bytes().to_vec()),
            "CKPT_CONTINUE" => self.continue_after_checkpoint.then(|| b"1".to_vec()),
            "CKPT_ASYNCSIG" => Some(
                self.async_signal
                    .as_deref()
                    .unwrap_or("0")
                    .as_bytes()
                    .to_vec(),
            ),
            "CKPT_MSPERIOD" => self.period_ms.map(|ms| ms.to_string().into_bytes()),
            _ => None,
        }
    }

    fn configures(&self) -> bool {
        self.name.is_some()
            || self.continue_after_checkpoint
            || self.async_signal.is_some()
            || self.period_ms.is_some()
    }
}

/// A successful injection.
#[derive(Debug)]
pub struct Attached {
    /// The thread the library was loaded from.
    pub tid: i32,
    /// How long that thread was stopped.
    pub pause: Duration,
    /// How many tries it took to find it at a safe point.
    pub tries: u32,
    /// Signals that arrived during the calls and were delivered at the detach.
    pub held_signals: usize,
}

/// Why there was no injection.
#[derive(Debug)]
pub enum AttachError {
    /// Refused; the target was not changed (it may have been stopped for a moment).
    Refused(String),
    /// libckpt is loaded there already.
    AlreadyLoaded,
    /// Something failed after the library calls began; the message says what state the
    /// target was left in.
    Failed(String),
}

/// Reads `/proc/PID/<file>`.
fn proc_file(pid: i32, file: &str) -> Result<Vec<u8>, AttachError> {
    std::fs::read(format!("/proc/{pid}/{file}")).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AttachError::Refused(format!("no process {pid} (it does not exist or has ended)"))
        } else {
            AttachError::Refused(format!(
                "cannot read /proc/{pid}/{file}: {}",
                io_message(&e)
            ))
        }
    })
}

/// Step 1: everything that can be checked without touching the target.
fn check(pid: i32) -> Result<target::LibcFunctions, AttachError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: String| Err(AttachError::Refused(format!("process {pid} {why}")));
    let status = proc_file(pid, "status")?;
    let Some(status) = target::parse_status(&status) else {
        return refuse("has a /proc status this command cannot read".to_owned());
    };
    if matches!(status.state, b'Z' | b'X') {
        return Err(AttachError::Refused(format!(
            "no process {pid} (it has ended)"
        )));
    }
    let me = ptrace::euid();
    if me != 0 && status.uids.iter().any(|&uid| uid != me) {
        return refuse(format!(
            "belongs to another user (uid {}); ckpt attach works on your own processes only",
            status.uids[1]
        ));
    }
    if status.tracer != 0 {
        return refuse(format!(
            "is already traced by process {} (a debugger, strace, or another ckpt attach); \
             a process can have only one tracer",
            status.tracer
        ));
    }
    // A filter may kill the program for a system call the library's loading makes (openat,
    // mmap, mprotect, rt_sigaction …), and which it forbids cannot be read as an ordinary
    // user: never risk it.
    if status.seccomp != 0 {
        return refuse(format!(
            "runs under a seccomp {} (Seccomp: {} in /proc/{pid}/status), which may kill it              for the system calls loading libckpt makes; start it under ckpt instead",
            if status.seccomp == 1 { "strict mode" } else { "filter" },
            status.seccomp
        ));
    }
    if matches!(status.state, b'T' | b't') {
        return refuse("is stopped; continue it first (kill -CONT)".to_owned());
    }
    // The kernel gives the files of /proc/PID of a non-dumpable process to root (proc(5)).
    if let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/status")) {
        if meta.uid() == 0 && status.uids[1] != 0 {
            return refuse(
                "is not dumpable (it called prctl(PR_SET_DUMPABLE, 0), or changed its \
                 user or ran a set-user-ID program); the kernel forbids tracing it"
                    .to_owned(),
            );
        }
    }
    let maps = proc_file(pid, "maps")?;
    if crate::checkpoint::runs_libckpt(pid, &maps) {
        return Err(AttachError::AlreadyLoaded);
    }
    let Some(libc) = target::find_libc(&maps) else {
        return refuse(if target::executable_is_dynamic(pid) {
            "has no libc.so.6 mapped (yet): it is still starting up, or uses another C \
             library; libckpt can be loaded only by glibc's dlopen"
                .to_owned()
        } else {
            "has no libc.so.6 mapped: it is statically linked, and libckpt can be loaded \
             only by glibc's dlopen"
                .to_owned()
        });
    };
    if status.ignored & (1 << (libc::SIGSEGV - 1)) != 0 {
        return refuse(
            "ignores SIGSEGV, which ckpt attach needs to regain control after each call \
             (the kernel would reset it to the default action)"
                .to_owned(),
        );
    }
    let control = ckpt_image::CONTROL_SIGNAL;
    if status.caught & (1 << (control - 1)) != 0 {
        return refuse(format!(
            "catches signal {control} itself, which is ckpt's control signal"
        ));
    }
    target::libc_functions(pid, &libc)
        .map_err(|why| AttachError::Refused(format!("process {pid}: {why}; not injecting")))
}

/// Why `PTRACE_SEIZE` said EPERM, as far as can be told.
fn seize_refused(pid: i32, error: &std::io::Error) -> AttachError {
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let why = match (error.raw_os_error(), yama) {
        (Some(libc::EPERM), Some(scope)) if scope >= 1 => format!(
            "the kernel refused to trace it (EPERM): Yama's ptrace_scope is {scope}, which \
             lets a process trace only its own descendants; allow it with \
             `sysctl kernel.yama.ptrace_scope=0` (as root), or start the program under ckpt"
        ),
        (Some(libc::EPERM), _) => "the kernel refused to trace it (EPERM: a security module \
             or a namespace boundary forbids it)"
            .to_owned(),
        _ => format!("cannot trace it: {}", io_message(error)),
    };
    AttachError::Refused(format!("process {pid}: {why}"))
}

/// A thread seized and stopped at a safe point, with its registers.
struct Chosen {
    tid: i32,
    regs: ptrace::Regs,
    stopped_at: Instant,
}

/// The kernel's "interrupted, restart me" codes and EINTR: a thread stopped with one of
/// these in rax was blocked in the system call, not merely passing through it.
fn interrupted_in_syscall(rax: u64) -> bool {
    matches!(rax as i64, -4 | -512 | -513 | -514 | -516)
}

/// Whether a thread stopped with `regs` is at a safe point: blocked in a system call other
/// than a futex wait (a futex may be the allocator's or the loader's lock).
fn safe_point(regs: &ptrace::Regs) -> bool {
    (regs.orig_rax as i64) >= 0
        && regs.orig_rax != libc::SYS_futex as u64
        && interrupted_in_syscall(regs.rax)
}

/// Seizes and interrupts `tid`; keeps it if it is at a safe point, releases it otherwise.
/// Errors: `Err` for a refusal to trace.
fn try_thread(pid: i32, tid: i32) -> Result<Option<Chosen>, AttachError> {
    if let Err(error) = ptrace::seize(tid) {
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(None); // the thread ended meanwhile
        }
        return Err(seize_refused(pid, &error));
    }
    let interrupted_at = Instant::now();
    let fail = |what: &str, e: std::io::Error| {
        AttachError::Refused(format!(
            "process {pid}: cannot {what} thread {tid}: {}",
            io_message(&e)
        ))
    };
    ptrace::interrupt(tid).map_err(|e| fail("interrupt", e))?;
    let deadline = interrupted_at + Duration::from_secs(1);
    loop {
        match ptrace::wait_until(tid, deadline).map_err(|e| fail("wait for", e))? {
            // A signal on its way: delivered as it would have been, siginfo and all.
            Some(ptrace::Stop::Signal(signal)) => {
                ptrace::cont(tid, signal).map_err(|e| fail("continue", e))?
            }
            Some(ptrace::Stop::Event(libc::SIGTRAP)) => break,
            // A group stop (the process was stopped meanwhile): not ours to undo.
            Some(ptrace::Stop::Event(_)) => {
                let _ = ptrace::detach(tid, 0);
                return Err(AttachError::Refused(format!(
                    "process {pid} was stopped by a signal while ckpt attach looked at it"
                )));
            }
            Some(ptrace::Stop::OtherEvent(..)) => {
                ptrace::cont(tid, 0).map_err(|e| fail("continue", e))?
            }
            Some(ptrace::Stop::Exited(_) | ptrace::Stop::Killed(_)) => return Ok(None),
            // Stuck in an uninterruptible sleep: the kernel lets it go when this command
            // ends (a tracer's exit detaches its tracees).
            None => {
                return Err(AttachError::Refused(format!(
                    "process {pid}: thread {tid} did not stop within a second (uninterruptible \
                     sleep?)"
                )))
            }
        }
    }
    let regs = ptrace::get_regs(tid).map_err(|e| fail("read the registers of", e))?;
    let blocks_segv = std::fs::read(format!("/proc/{pid}/task/{tid}/status"))
        .ok()
        .and_then(|s| target::parse_status(&s))
        .is_none_or(|s| s.blocked & (1 << (libc::SIGSEGV - 1)) != 0);
    if safe_point(&regs) && !blocks_segv {
        return Ok(Some(Chosen {
            tid,
            regs,
            stopped_at: interrupted_at,
        }));
    }
    ptrace::detach(tid, 0).map_err(|e| fail("release", e))?;
    Ok(None)
}

/// Step 2: a thread at a safe point, within [`SAFE_POINT_BOUND`]. Threads blocked in a
/// futex are not even interrupted (they could not be used); threads blocked in another
/// system call are tried first.
fn choose_thread(pid: i32) -> Result<(Chosen, u32), AttachError> {
    let deadline = Instant::now() + SAFE_POINT_BOUND;
    let mut tries = 0;
    loop {
        let mut candidates: Vec<(bool, i32)> = target::threads(pid)
            .into_iter()
            .filter_map(|tid| match target::blocked_in(pid, tid) {
                Some(nr) if nr == libc::SYS_futex as u64 => None,
                Some(_) => Some((false, tid)),
                None => Some((true, tid)),
            })
            .collect();
        if target::threads(pid).is_empty() {
            return Err(AttachError::Refused(format!(
                "no process {pid} (it has ended)"
            )));
        }
        candidates.sort_by_key(|&(running, _)| running);
        for (_, tid) in candidates {
            tries += 1;
            if let Some(chosen) = try_thread(pid, tid)? {
                return Ok((chosen, tries));
            }
        }
        if Instant::now() >= deadline {
            return Err(AttachError::Refused(format!(
                "process {pid}: no thread was at a safe point within {} s ({tries} tries): \
                 injecting is safe only while a thread is blocked in a system call other \
                 than a futex wait (a busy or lock-bound program could be holding the \
                 allocator's or the loader's lock); not injecting, try again",
                SAFE_POINT_BOUND.as_secs_f64()
            )));
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

/// Loads `library` into process `options.pid` and configures it.
pub fn inject(options: &AttachOptions, library: &Path) -> Result<Attached, AttachError> {
    let pid = options.pid;
    let functions = check(pid)?;
    let (chosen, tries) = choose_thread(pid)?;
    let mut session = match Session::new(pid, chosen.tid, chosen.regs) {
        Ok(session) => session,
        Err(error) => {
            let _ = ptrace::set_regs(chosen.tid, &chosen.regs);
            let _ = ptrace::detach(chosen.tid, 0);
            return Err(AttachError::Refused(format!(
                "process {pid}: cannot prepare thread {}: {}",
                chosen.tid,
                io_message(&error)
            )));
        }
    };
    let outcome = load(&mut session, &functions, options, library);
    let hung = matches!(outcome, Err(LoadError::Call(CallError::Hung)));
    if hung {
        if let Err(error) = session.stop_hung_call() {
            return Err(AttachError::Failed(format!(
                "process {pid}: loading libckpt hung, and the thread could not be stopped \
                 to put it back: {}; the process may be stuck",
                io_message(&error)
            )));
        }
    }
    let gone = matches!(outcome, Err(LoadError::Call(CallError::Gone(_))));
    let tid = session.tid;
    let finished = if gone { Ok(0) } else { session.finish() };
    let pause = chosen.stopped_at.elapsed();
    match (outcome, finished) {
        (Ok(()), Ok(held_signals)) => Ok(Attached {
            tid,
            pause,
            tries,
            held_signals,
        }),
        (Ok(()), Err(error)) => Err(AttachError::Failed(format!(
            "process {pid}: libckpt was loaded, but thread {tid} could not be put back: {}",
            io_message(&error)
        ))),
        (Err(LoadError::Call(CallError::Gone(how))), _) => Err(AttachError::Failed(format!(
            "process {pid} {how} while libckpt was being loaded (its stderr may say why)"
        ))),
        (Err(LoadError::Refused(why)), Ok(_)) => Err(AttachError::Failed(format!(
            "process {pid}: {why}; its registers were put back and it goes on without libckpt"
        ))),
        (Err(LoadError::Call(error)), Ok(_)) => Err(AttachError::Failed(format!(
            "process {pid}: loading libckpt failed: {error}; its registers were put back{}",
            if hung {
                ", but whatever the abandoned call held (the loader's lock?) stays held"
            } else {
                ""
            }
        ))),
        (Err(first), Err(error)) => Err(AttachError::Failed(format!(
            "process {pid}: {}; and thread {tid} could not be put back: {}",
            match first {
                LoadError::Refused(why) => why,
                LoadError::Call(e) => e.to_string(),
            },
            io_message(&error)
        ))),
    }
}

enum LoadError {
    /// dlopen said no (its message) or a variable could not be set.
    Refused(String),
    Call(CallError),
}

impl From<CallError> for LoadError {
    fn from(error: CallError) -> Self {
        LoadError::Call(error)
    }
}

impl From<std::io::Error> for LoadError {
    fn from(error: std::io::Error) -> Self {
        LoadError::Call(CallError::Io(error))
    }
}

/// Step 3: the calls. On success the environment is as it was and libckpt is loaded.
fn load(
    session: &mut Session,
    functions: &target::LibcFunctions,
    options: &AttachOptions,
    library: &Path,
) -> Result<(), LoadError> {
    let path = session.put_string(library.as_os_str().as_bytes())?;
    // Each variable: its name in the target, and its value there before (None: unset).
    // Read from the environment array when glibc's `__environ` leads to it (no call
    // needed), else asked with `getenv` calls.
    let environment = session.read_environment(functions.environ)?;
    let mut before = Vec::new();
    for &name in LIBRARY_VARIABLES {
        let at = session.put_string(name.as_bytes())?;
        let old = match &environment {
            Some(entries) => entries.iter().find_map(|entry| {
                entry
                    .strip_prefix(name.as_bytes())?
                    .strip_prefix(b"=")
                    .map(<[u8]>::to_vec)
            }),
            None => match session.call(functions.getenv, &[at])? {
                0 => None,
                value => Some(session.read_string(value)?),
            },
        };
        before.push((name, at, old));
    }
    let mut changed = Vec::new();
    let mut result = Ok(());
    for (name, at, old) in &before {
        let wanted = options.wanted(name);
        if wanted == *old {
            continue;
        }
        let r = match &wanted {
            Some(value) => {
                let value = session.put_string(value)?;
                session.call(functions.setenv, &[*at, value, 1])?
            }
            None => session.call(functions.unsetenv, &[*at])?,
        };
        changed.push((*at, old.clone()));
        if r as i32 != 0 {
            result = Err(LoadError::Refused(format!(
                "cannot set {name} in it (setenv failed)"
            )));
            break;
        }
    }
    if result.is_ok() {
        let handle = session.call(functions.dlopen, &[path, RTLD_NOW])?;
        if handle == 0 {
            let message = session.call(functions.dlerror, &[])?;
            let text = if message == 0 {
                "no reason given".to_owned()
            } else {
                String::from_utf8_lossy(&session.read_string(message)?).into_owned()
            };
            result = Err(LoadError::Refused(format!(
                "its dlopen of {} failed: {text}",
                library.display()
            )));
        }
    }
    // The variables as they were: children started later must not inherit ours.
    for (at, old) in changed {
        match old {
            Some(value) => {
                let value = session.put_string(&value)?;
                session.call(functions.setenv, &[at, value, 1])?;
            }
            None => {
                session.call(functions.unsetenv, &[at])?;
            }
        }
    }
    result
}

/// For `ckpt checkpoint`: whether the library must be injected first. A process that does
/// not exist is left to `ckpt checkpoint` to report; one whose maps cannot be read is
/// "yes", so that the attach checks say why it cannot be touched.
pub fn needs_injection(pid: i32) -> bool {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/maps")) {
        Ok(maps) => !crate::checkpoint::runs_libckpt(pid, &maps),
        Err(_) => true,
    }
}

/// The result of `ckpt attach`: status and the line to print.
pub struct Report {
    pub status: u8,
    pub line: String,
    pub to_stderr: bool,
}

/// Exit statuses of `ckpt attach`.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_REFUSED: u8 = 3;

/// `ckpt attach PID ...`.
pub fn run(options: &AttachOptions, library: &Path) -> Report {
    match inject(options, library) {
        Ok(attached) => Report {
            status: 0,
            line: format!(
                "ckpt attach: libckpt loaded into process {} (thread {}, paused {:.3} ms{}{})",
                options.pid,
                attached.tid,
                attached.pause.as_secs_f64() * 1e3,
                if attached.tries > 1 {
                    format!(", {} tries", attached.tries)
                } else {
                    String::new()
                },
                if attached.held_signals > 0 {
                    format!(
                        ", {} signal(s) held and delivered after",
                        attached.held_signals
                    )
                } else {
                    String::new()
                }
            ),
            to_stderr: false,
        },
        Err(AttachError::AlreadyLoaded) if !options.configures() => Report {
            status: 0,
            line: format!(
                "ckpt attach: process {} runs with libckpt already; nothing to do",
                options.pid
            ),
            to_stderr: false,
        },
        Err(AttachError::AlreadyLoaded) => Report {
            status: EXIT_REFUSED,
            line: format!(
                "ckpt attach: process {} runs with libckpt already; its configuration \
                 cannot be changed from outside (-n, -c, -a, -z not applied)",
                options.pid
            ),
            to_stderr: true,
        },
        Err(AttachError::Refused(why)) => Report {
            status: EXIT_REFUSED,
            line: format!("ckpt attach: {why}"),
            to_stderr: true,
        },
        Err(AttachError::Failed(why)) => Report {
            status: EXIT_FAILED,
            line: format!("ckpt attach: {why}"),
            to_stderr: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_points() {
        // SAFETY: plain integers; all zeroes is a valid value.
        #[allow(unsafe_code)]
        let mut regs: ptrace::Regs = unsafe { std::mem::zeroed() };
        regs.orig_rax = libc::SYS_clock_nanosleep as u64;
        regs.rax = (-516i64) as u64;
        assert!(safe_point(&regs));
        regs.rax = (-4i64) as u64;
        assert!(safe_point(&regs));
        // Passing through a system call that returned (mmap inside malloc, say).
        regs.rax = 0x7f00_0000_0000;
        assert!(!safe_point(&regs));
        regs.orig_rax = libc::SYS_futex as u64;
        regs.rax = (-512i64) as u64;
        assert!(!safe_point(&regs));
        regs.orig_rax = u64::MAX;
        assert!(!safe_point(&regs));
    }

    #[test]
    fn variables_without_options() {
        let options = AttachOptions {
            pid: 1,
            ..Default::default()
        };
        assert_eq!(options.wanted("CKPT_ASYNCSIG"), Some(b"0".to_vec()));
        assert_eq!(options.wanted("CKPT_NAME"), None);
        assert_eq!(options.wanted("CKPT_COMPRESS"), None);
        let options = AttachOptions {
            pid: 1,
            name: Some("x.ckpt".into()),
            continue_after_checkpoint: true,
            async_signal: Some("USR1".into()),
            period_ms: Some(250),
        };
        assert_eq!(options.wanted("CKPT_NAME"), Some(b"x.ckpt".to_vec()));
        assert_eq!(options.wanted("CKPT_CONTINUE"), Some(b"1".to_vec()));
        assert_eq!(options.wanted("CKPT_ASYNCSIG"), Some(b"USR1".to_vec()));
        assert_eq!(options.wanted("CKPT_MSPERIOD"), Some(b"250".to_vec()));
    }
}
