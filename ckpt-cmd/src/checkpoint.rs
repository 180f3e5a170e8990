//! `ckpt checkpoint PID [-n NAME] [--term | --kill | --signal N] [--timeout S]`: ask a
//! program that runs with libckpt to checkpoint itself and keep running, like BLCR's
//! `cr_checkpoint`. The request protocol is [`ckpt_image::request`]: the program learns
//! who asks from the kernel, through a socket this command listens on.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ckpt_image::request::{self, Answer};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::Pid;

use crate::args::CheckpointOptions;
use crate::image::io_message;
use crate::progress::Meter;
use crate::protocol;
use crate::sys;

/// The checkpoint failed, or the target ended before it answered.
pub const EXIT_FAILED: u8 = 1;
/// The target does not exist, does not run with libckpt, or cannot be signalled.
pub const EXIT_NO_TARGET: u8 = 3;
/// No answer within the timeout (as `timeout(1)`).
pub const EXIT_TIMEOUT: u8 = 124;

/// How often the target's existence is checked while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long to wait before asking again when the target is busy with another checkpoint.
const BUSY_RETRY: Duration = Duration::from_millis(50);

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
    protocol::stat_identity(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

fn is_alive(pid: i32, start_time: u64) -> bool {
    match process_identity(pid) {
        Some((state, start)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// Whether process `pid` (whose `/proc/PID/maps` text is `maps`) runs with libckpt: it has
/// libckpt.so mapped, or it is a restarted checkpoint. A restart's memory is all anonymous
/// (the library comes back as a copy, with no file name in maps), but its executable is
/// the checkpoint file itself.
pub fn runs_libckpt(pid: i32, maps: &[u8]) -> bool {
    if protocol::maps_have_libckpt(maps) {
        return true;
    }
    let Ok(file) = std::fs::File::open(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let mut head = Vec::new();
    if file.take(64 * 1024).read_to_end(&mut head).is_err() {
        return false;
    }
    crate::elf_reader::ckpt_header_offset(&head).is_some()
}

/// Checks the target before anything is sent: it exists, we may signal it, it has libckpt
/// mapped, and the library can hear and answer a request. Returns its start time.
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
    // Signal 0: only whether the process exists and may be signalled by us.
    if let Err(errno) = nix::sys::signal::kill(Pid::from_raw(pid), None) {
        return Err(Outcome::error(
            EXIT_NO_TARGET,
            format!("cannot signal process {pid}: {}", io_message(&errno.into())),
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
    if !runs_libckpt(pid, &maps) {
        return Err(Outcome::error(
            EXIT_NO_TARGET,
            format!(
                "process {pid} does not run with libckpt (start it with 'ckpt PROG' or \
                 LD_PRELOAD=libckpt.so); not signalling it"
            ),
        ));
    }
    if let Some(problem) = control_signal_problem(pid) {
        return Err(Outcome::error(
            EXIT_NO_TARGET,
            format!("process {pid} {problem}; not signalling it"),
        ));
    }
    Ok(start)
}

/// Why the library in process `pid` could not hear or answer a request, if it could not:
/// the program took the control signal away with raw system calls (the library's wrappers
/// keep it otherwise), or lives in another network namespace (the request socket is an
/// abstract unix socket, which is per network namespace).
fn control_signal_problem(pid: i32) -> Option<String> {
    let sig = ckpt_image::CONTROL_SIGNAL;
    let bit = 1u64 << (sig - 1);
    let status = std::fs::read(format!("/proc/{pid}/status")).ok()?;
    let caught = protocol::status_mask(&status, "SigCgt")?;
    let ignored = protocol::status_mask(&status, "SigIgn").unwrap_or(0);
    if caught & bit == 0 || ignored & bit != 0 {
        return Some(format!(
            "does not catch signal {sig}, ckpt's control signal (the program replaced its \
             handler, bypassing libckpt)"
        ));
    }
    // The signal goes to any thread that does not block it.
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut all_block = true;
    for task in tasks.flatten() {
        let status = std::fs::read(task.path().join("status")).unwrap_or_default();
        match protocol::status_mask(&status, "SigBlk") {
            Some(blocked) if blocked & bit != 0 => {}
            // Gone meanwhile, unreadable, or not blocking it.
            _ => {
                all_block = false;
                break;
            }
        }
    }
    if all_block {
        return Some(format!(
            "blocks signal {sig}, ckpt's control signal, in every thread (bypassing libckpt)"
        ));
    }
    let ours = std::fs::read_link("/proc/self/ns/net").ok()?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    if ours != theirs {
        return Some(
            "runs in another network namespace, where it cannot reach this command's \
             request socket (run ckpt checkpoint inside it, e.g. with nsenter --net)"
                .to_owned(),
        );
    }
    None
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

/// Listens for the target's connection: an abstract unix socket named after this process
/// and a random nonce. Returns the listener and the nonce.
fn listen() -> io::Result<(UnixListener, u32)> {
    let mut tries = 0;
    loop {
        let nonce = getrandom::u32()?;
        let mut name = [0u8; request::SOCKET_NAME_MAX];
        let len = request::socket_name(std::process::id(), nonce, &mut name);
        let address = SocketAddr::from_abstract_name(&name[..len])?;
        match UnixListener::bind_addr(&address) {
            Ok(listener) => {
                listener.set_nonblocking(true)?;
                return Ok((listener, nonce));
            }
            // Someone holds that name (another request of ours, or a squatter): another nonce.
            Err(error) if error.kind() == io::ErrorKind::AddrInUse && tries < 8 => tries += 1,
            Err(error) => return Err(error),
        }
    }
}

/// Why waiting for the target stopped.
enum Stop {
    Deadline,
    Ended,
    Failed(String),
}

/// Waits up to `timeout` for `fd` to become readable (or hung up); returns whether it did.
fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match nix::poll::poll(&mut fds, timeout) {
        Ok(ready) => Ok(ready > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// Waits until `ready` says the work is done, polling `fd` for input and checking every
/// interval that the target still lives.
fn wait_on<T>(
    fd: BorrowedFd<'_>,
    target: (i32, u64),
    deadline: Instant,
    mut ready: impl FnMut() -> io::Result<Option<T>>,
) -> Result<T, Stop> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Stop::Deadline);
        }
        let readable = poll_readable(fd, (deadline - now).min(POLL_INTERVAL))
            .map_err(|e| Stop::Failed(format!("cannot wait for the answer: {}", io_message(&e))))?;
        if readable {
            match ready() {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return Err(Stop::Failed(format!(
                        "cannot read the answer: {}",
                        io_message(&e)
                    )))
                }
            }
        }
        if !is_alive(target.0, target.1) {
            return Err(Stop::Ended);
        }
    }
}

/// Accepts the target's connection (any other process's is dropped).
fn accept_target(
    listener: &UnixListener,
    target: (i32, u64),
    deadline: Instant,
) -> Result<UnixStream, Stop> {
    wait_on(listener.as_fd(), target, deadline, || {
        let (stream, _) = listener.accept()?;
        match getsockopt(&stream, PeerCredentials) {
            Ok(peer) if peer.pid() == target.0 => Ok(Some(stream)),
            _ => Ok(None),
        }
    })
}

/// Reads the answer line, showing the progress lines before it on `meter`; `Ok(None)` when
/// the target closed the connection without one.
fn read_answer(
    stream: &UnixStream,
    target: (i32, u64),
    deadline: Instant,
    meter: &mut Meter,
) -> Result<Option<Vec<u8>>, Stop> {
    stream
        .set_nonblocking(true)
        .map_err(|e| Stop::Failed(io_message(&e)))?;
    let mut line = Vec::new();
    // Reads through a shared reference (`Read for &UnixStream`), so that `wait_on` can poll
    // the same stream meanwhile.
    let mut reader = stream;
    wait_on(stream.as_fd(), target, deadline, || {
        let mut chunk = [0u8; 4096];
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            return Ok(Some(None));
        }
        // Reports read together are timed together: how far apart they were sent is not
        // known.
        let read_at = Instant::now();
        line.extend_from_slice(&chunk[..n]);
        while let Some(end) = line.iter().position(|&b| b == b'\n') {
            if let Some(Answer::Progress { done, total }) = Answer::parse(&line[..end]) {
                meter.report(done, total, read_at);
                line.drain(..=end);
                continue;
            }
            return Ok(Some(Some(line[..end].to_vec())));
        }
        Ok(None)
    })
}

/// Runs the whole request and says what to print and how to exit.
pub fn run(options: &CheckpointOptions) -> Outcome {
    let pid = options.pid;
    let start_time = match check_target(pid) {
        Ok(start) => start,
        Err(outcome) => return outcome,
    };
    let target = (pid, start_time);
    let mut request_buf = [0u8; request::MAX_REQUEST];
    let name = options.name.as_deref().map(OsStr::as_bytes);
    let request_len = match request::request_line(name, &mut request_buf) {
        Ok(len) => len,
        Err(request::RequestError::BadName) => {
            return Outcome::error(
                2,
                "the checkpoint name must not contain a newline or a NUL".to_owned(),
            )
        }
        Err(request::RequestError::TooLong) => {
            return Outcome::error(2, "the checkpoint name is too long".to_owned())
        }
    };
    let (listener, nonce) = match listen() {
        Ok(listening) => listening,
        Err(error) => {
            return Outcome::error(
                EXIT_FAILED,
                format!("cannot make the request socket: {}", io_message(&error)),
            )
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(options.timeout_secs);
    let stopped = |stop: Stop| match stop {
        Stop::Deadline => Outcome::error(
            EXIT_TIMEOUT,
            format!(
                "{pid}: no answer within {} seconds; not signalling it",
                options.timeout_secs
            ),
        ),
        Stop::Ended => Outcome::error(
            EXIT_FAILED,
            format!("{pid}: the process ended before it answered"),
        ),
        Stop::Failed(message) => Outcome::error(EXIT_FAILED, format!("{pid}: {message}")),
    };
    // Ask until the answer is something other than "busy" (another checkpoint was being
    // taken), or the time is up.
    let mut meter = Meter::new();
    let line = loop {
        if let Err(error) = sys::sigqueue(pid, ckpt_image::CONTROL_SIGNAL, nonce as i32) {
            return Outcome::error(
                EXIT_NO_TARGET,
                format!("cannot signal process {pid}: {}", io_message(&error)),
            );
        }
        let mut stream = match accept_target(&listener, target, deadline) {
            Ok(stream) => stream,
            Err(stop) => return stopped(stop),
        };
        if let Err(error) = stream.write_all(&request_buf[..request_len]) {
            return Outcome::error(
                EXIT_FAILED,
                format!("{pid}: cannot send the request: {}", io_message(&error)),
            );
        }
        let answer = read_answer(&stream, target, deadline, &mut meter);
        meter.finish();
        match answer {
            Ok(Some(line)) if Answer::parse(&line) == Some(Answer::Busy) => {
                std::thread::sleep(
                    BUSY_RETRY.min(deadline.saturating_duration_since(Instant::now())),
                );
            }
            Ok(Some(line)) => break line,
            Ok(None) => {
                return Outcome::error(
                    EXIT_FAILED,
                    format!("{pid}: the process closed the request without an answer (its stderr may say why)"),
                )
            }
            Err(stop) => return stopped(stop),
        }
    };

    match Answer::parse(&line) {
        Some(Answer::Ok(name)) => {
            let shown = String::from_utf8_lossy(name).into_owned();
            let mut stdout = vec![match absolute_name(pid, name) {
                Some(path) if path.as_os_str().as_bytes() != name => format!(
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
        Some(Answer::Error(message)) => {
            let message = String::from_utf8_lossy(message).trim().to_owned();
            let message = if message.is_empty() {
                "the checkpoint failed".to_owned()
            } else {
                message
            };
            let mut outcome = Outcome::error(EXIT_FAILED, format!("{pid}: {message}"));
            if options.end_signal.is_some() {
                outcome
                    .stderr
                    .push(format!("ckpt checkpoint: {pid}: not signalling it"));
            }
            outcome
        }
        _ => Outcome::error(
            EXIT_FAILED,
            format!(
                "{pid}: unexpected answer from the target: {:?}",
                String::from_utf8_lossy(&line)
            ),
        ),
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
