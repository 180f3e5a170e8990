//! `ckpt checkpoint PID [-n NAME] [--term | --kill | --signal N] [--timeout S]`: ask a
//! program that runs with libckpt to checkpoint itself and keep running, like BLCR's
//! `cr_checkpoint`. The protocol is in [`crate::protocol`].

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::args::CheckpointOptions;
use crate::image::io_message;
use crate::protocol::{self, Response};
use crate::sys;

/// The checkpoint failed, or the target ended before it answered.
pub const EXIT_FAILED: u8 = 1;
/// The target does not exist, does not run with libckpt, or cannot be signalled.
pub const EXIT_NO_TARGET: u8 = 3;
/// No answer within the timeout (as `timeout(1)`).
pub const EXIT_TIMEOUT: u8 = 124;

/// How often the target's existence is checked while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The outcome: the exit status, and lines for stdout and stderr.
pub struct Outcome {
    pub status: u8,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Outcome {
    fn error(status: u8, message: String) -> Outcome {
        Outcome {
            status,
            stdout: Vec::new(),
            stderr: vec![format!("ckpt checkpoint: {message}")],
        }
    }
}

/// `/proc/PID/stat`'s state letter and start time (in clock ticks since boot), which together
/// tell a live process from a dead one or from a new process that got the same pid.
fn process_identity(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything, ") " included.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = String::from_utf8_lossy(stat.get(close + 2..)?).into_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3); the start time is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn is_alive(pid: i32, start_time: u64) -> bool {
    match process_identity(pid) {
        Some((state, start)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// Checks the target before anything is sent: it exists, we may signal it, and it has
/// libckpt mapped. Returns its start time.
fn check_target(pid: i32) -> Result<u64, Outcome> {
    let missing = || {
        Outcome::error(
            EXIT_NO_TARGET,
            format!("no process {pid} (it does not exist or has ended)"),
        )
    };
    let Some((state, start)) = process_identity(pid) else {
        return Err(missing());
    };
    if state == 'Z' || state == 'X' {
        return Err(missing());
    }
    if let Err(error) = sys::kill(pid, 0) {
        return Err(Outcome::error(
            EXIT_NO_TARGET,
            format!("cannot signal process {pid}: {}", io_message(&error)),
        ));
    }
    let maps = match std::fs::read(format!("/proc/{pid}/maps")) {
        Ok(maps) => maps,
        Err(error) => {
            return Err(Outcome::error(
                EXIT_NO_TARGET,
                format!(
                    "cannot read /proc/{pid}/maps: {}; not signalling it",
                    io_message(&error)
                ),
            ))
        }
    };
    if !protocol::maps_have_libckpt(&maps) {
        return Err(Outcome::error(
            EXIT_NO_TARGET,
            format!(
                "process {pid} does not run with libckpt (start it with 'ckpt PROG' or \
                 LD_PRELOAD=libckpt.so); not signalling it"
            ),
        ));
    }
    Ok(start)
}

/// Resolves the name the target wrote against its working directory.
fn absolute_name(pid: i32, name: &[u8]) -> Option<PathBuf> {
    let name = Path::new(OsStr::from_bytes(name));
    if name.is_absolute() {
        return Some(name.to_path_buf());
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    Some(cwd.join(name))
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGTERM => "SIGTERM".to_owned(),
        libc::SIGKILL => "SIGKILL".to_owned(),
        n => format!("signal {n}"),
    }
}

/// Runs the whole request and says what to print and how to exit.
pub fn run(options: &CheckpointOptions) -> Outcome {
    let pid = options.pid;
    let start_time = match check_target(pid) {
        Ok(start) => start,
        Err(outcome) => return outcome,
    };
    let request = match protocol::request_line(options.name.as_deref()) {
        Ok(line) => line,
        Err(message) => return Outcome::error(2, message.to_owned()),
    };

    let pipes = sys::pipe_cloexec().and_then(|req| Ok((req, sys::pipe_cloexec()?)));
    let ((req_read, req_write), (resp_read, resp_write)) = match pipes {
        Ok(pipes) => pipes,
        Err(error) => {
            return Outcome::error(
                EXIT_FAILED,
                format!("cannot create pipes: {}", io_message(&error)),
            )
        }
    };
    // The whole line fits in the pipe's buffer. Our write end is closed right away, so that
    // the target reads the line and then end-of-file, however it reads; the read end stays
    // open for the target to reach through /proc.
    let mut req_file = std::fs::File::from(req_write);
    if let Err(error) = req_file.write_all(&request) {
        return Outcome::error(
            EXIT_FAILED,
            format!("cannot write the request: {}", io_message(&error)),
        );
    }
    drop(req_file);
    let Some(value) = protocol::encode_value(req_read.as_raw_fd(), resp_write.as_raw_fd()) else {
        return Outcome::error(
            EXIT_FAILED,
            "descriptor numbers too large for the request".to_owned(),
        );
    };
    if let Err(error) = sys::sigqueue(pid, ckpt_image::CONTROL_SIGNAL, value) {
        return Outcome::error(
            EXIT_NO_TARGET,
            format!("cannot signal process {pid}: {}", io_message(&error)),
        );
    }

    // Wait for the answer; our own write end of `resp` stays open (the target reaches it
    // through /proc), so the target's death shows as silence: check it every interval.
    let deadline = Instant::now() + Duration::from_secs_f64(options.timeout_secs);
    let mut resp = std::fs::File::from(resp_read);
    let mut buffer = protocol::LineBuffer::default();
    let line = loop {
        let now = Instant::now();
        if now >= deadline {
            return Outcome::error(
                EXIT_TIMEOUT,
                format!(
                    "{pid}: no answer within {} seconds; not signalling it",
                    options.timeout_secs
                ),
            );
        }
        let wait = (deadline - now).min(POLL_INTERVAL);
        match sys::poll_readable(resp.as_raw_fd(), wait) {
            Ok(true) => {
                let mut chunk = [0u8; 4096];
                match resp.read(&mut chunk) {
                    Ok(0) => {}
                    Ok(n) => {
                        if let Some(line) = buffer.push(&chunk[..n]) {
                            break line;
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        return Outcome::error(
                            EXIT_FAILED,
                            format!("{pid}: cannot read the answer: {}", io_message(&error)),
                        )
                    }
                }
            }
            Ok(false) => {}
            Err(error) => {
                return Outcome::error(
                    EXIT_FAILED,
                    format!("{pid}: cannot wait for the answer: {}", io_message(&error)),
                )
            }
        }
        if !is_alive(pid, start_time) {
            // It may have answered just before it ended.
            let mut chunk = [0u8; 4096];
            if sys::poll_readable(resp.as_raw_fd(), Duration::ZERO).unwrap_or(false) {
                if let Ok(n) = resp.read(&mut chunk) {
                    if let Some(line) = buffer.push(&chunk[..n]) {
                        break line;
                    }
                }
            }
            return Outcome::error(
                EXIT_FAILED,
                format!("{pid}: the process ended before it answered"),
            );
        }
    };
    drop((req_read, resp_write));

    match protocol::parse_response(&line) {
        Ok(Response::Ok(name)) => {
            let shown = String::from_utf8_lossy(&name).into_owned();
            let mut stdout = vec![match absolute_name(pid, &name) {
                Some(path) if path.as_os_str().as_bytes() != name.as_slice() => format!(
                    "ckpt checkpoint: {pid} checkpointed to {shown} ({})",
                    path.display()
                ),
                _ => format!("ckpt checkpoint: {pid} checkpointed to {shown}"),
            }];
            let mut stderr = Vec::new();
            if let Some(signal) = options.end_signal {
                match sys::kill(pid, signal) {
                    Ok(()) => stdout.push(format!(
                        "ckpt checkpoint: sent {} to {pid}",
                        signal_name(signal)
                    )),
                    Err(error) => stderr.push(format!(
                        "ckpt checkpoint: {pid}: cannot send {}: {}",
                        signal_name(signal),
                        io_message(&error)
                    )),
                }
            }
            Outcome {
                status: 0,
                stdout,
                stderr,
            }
        }
        Ok(Response::Error(message)) => {
            let mut outcome = Outcome::error(EXIT_FAILED, format!("{pid}: {message}"));
            if options.end_signal.is_some() {
                outcome
                    .stderr
                    .push(format!("ckpt checkpoint: {pid}: not signalling it"));
            }
            outcome
        }
        Err(message) => Outcome::error(EXIT_FAILED, format!("{pid}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_of_self() {
        let me = std::process::id() as i32;
        let (state, start) = process_identity(me).expect("own stat");
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
    }

    #[test]
    fn missing_target_is_refused_without_signal() {
        // Pids above pid_max never exist.
        let outcome = run(&CheckpointOptions {
            pid: i32::MAX,
            name: None,
            end_signal: Some(libc::SIGKILL),
            timeout_secs: 1.0,
        });
        assert_eq!(outcome.status, EXIT_NO_TARGET);
        assert!(
            outcome.stderr[0].contains("no process"),
            "{:?}",
            outcome.stderr
        );
    }

    #[test]
    fn own_process_without_libckpt_is_refused() {
        let outcome = run(&CheckpointOptions {
            pid: std::process::id() as i32,
            name: None,
            end_signal: Some(libc::SIGKILL),
            timeout_secs: 1.0,
        });
        assert_eq!(outcome.status, EXIT_NO_TARGET);
        assert!(
            outcome.stderr[0].contains("does not run with libckpt"),
            "{:?}",
            outcome.stderr
        );
    }

    #[test]
    fn names_resolve_against_the_target_cwd() {
        let me = std::process::id() as i32;
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute_name(me, b"x.ckpt"), Some(cwd.join("x.ckpt")));
        assert_eq!(absolute_name(me, b"/a/b"), Some(PathBuf::from("/a/b")));
    }
}
