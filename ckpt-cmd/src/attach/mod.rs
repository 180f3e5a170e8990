//! `ckpt attach PID`: loads libckpt.so into a running process that was not started under
//! ckpt, as an ordinary user, with ptrace and the target's own `dlopen` (the original
//! ckpt's planned "hijack"; DESIGN-threads-files-attach.md §3).
//!
//! Order of work, each step refusing with a reason while the target is still untouched:
//! 1. checks from /proc ([`checks`]): same user, not traced, not stopped, dumpable, glibc with `dlopen`
//!    mapped, libckpt not there already, SIGSEGV not ignored (the calls return through it),
//!    ckpt's control signal not taken by the program;
//! 2. a thread at a safe point ([`safe_point`]): seized and interrupted, accepted only if it was blocked in a
//!    system call other than a futex wait (so it holds neither the allocator's nor the
//!    loader's lock); otherwise released at once and tried again about every millisecond,
//!    other threads too, for at most [`SAFE_POINT_BOUND`];
//! 3. calls in that thread ([`load`], through [`remote`]): `getenv` of the library's `CKPT_*` variables,
//!    `setenv`/`unsetenv` to the values the attach wants (no SIGTSTP handler unless `-a`),
//!    `dlopen(libckpt.so, RTLD_NOW)` (whose constructor reads them), `dlerror` if it failed,
//!    then the variables back as they were, so that children do not inherit ours;
//! 4. registers and extended state back exactly; detach.

mod checks;
mod load;
mod ptrace;
mod remote;
mod safe_point;
mod target;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::image::io_message;
use checks::{check, seize_refused};
use load::{load, LoadError};
use remote::{CallError, Session};
use safe_point::choose_thread;

/// How long to look for a thread at a safe point before giving up.
pub const SAFE_POINT_BOUND: Duration = Duration::from_secs(2);
/// The variables libckpt's constructor reads. Those the attach does not set are unset while
/// the library loads, so that a value the program happens to carry cannot make the
/// constructor refuse (and exit the program); all are put back after.
use ckpt_image::settings::LIBRARY_VARIABLES;

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
