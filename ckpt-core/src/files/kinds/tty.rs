//! Terminals: a restarted program gets the terminal the restart runs in, with the settings
//! it had (an editor's or a pager's raw mode), and `SIGWINCH` so that it reads the new
//! window size and redraws.
//!
//! - A standard descriptor (0–2) that was a terminal stays the restart's own, as every
//!   standard descriptor does; when the restart's is a terminal too, it gets the saved
//!   settings.
//! - Any other terminal descriptor (a program that opened `/dev/tty`) is opened again on the
//!   restart's terminal: the first of its standard descriptors that is one, else its
//!   controlling terminal (`/dev/tty`). The old `/dev/pts/N` is never opened by name (it may
//!   be another session's by then, CRIU #68). A restart without a terminal refuses, naming
//!   the descriptor.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

use ckpt_image::fdkind::tty::Terminal;
use ckpt_image::{FD_ACTION_STDIO, FD_KIND_TERMINAL};

use super::{Failure, Restoring, Saving};
use crate::files::FdError;
use crate::line::Line;
use crate::sys;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    match sys::terminal_state(s.fd) {
        Ok(t) => {
            s.put_aux(&t)?;
            Ok(true)
        }
        // A character device of a terminal's major that is not one.
        Err(_) => Ok(false),
    }
}

/// A standard descriptor that is a terminal: its settings, for the restart's terminal.
pub(super) fn save_stdio(s: &mut Saving) -> Result<(), FdError> {
    if let Ok(t) = sys::terminal_state(s.fd) {
        s.put_aux(&t)?;
    }
    Ok(())
}

const NO_TERMINAL: Failure = Failure::new(
    b"cannot be made again: the restart has no terminal (none of its standard descriptors \
      is one, and it has no controlling terminal); run it from one",
    0,
);

pub(super) fn check(_r: &Restoring, _i: usize) -> Result<(), Failure> {
    match open_terminal(libc::O_RDWR) {
        Ok(fd) => {
            sys::close(fd);
            Ok(())
        }
        Err(_) => Err(NO_TERMINAL),
    }
}

pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let f = r.fds[i];
    let fd = open_terminal(f.flags as i32).map_err(|_| NO_TERMINAL)?;
    if let Some(saved) = r.aux::<Terminal>(i) {
        if let Err(e) = sys::set_terminal_settings(fd, &saved) {
            sys::close(fd);
            return Err(Failure::new(b"cannot be given its terminal settings", e));
        }
    }
    r.place(&mut [(fd, i)])
}

/// The restart's terminal opened with `flags` (not as a controlling terminal):
/// through the first standard descriptor that is one, else `/dev/tty`.
fn open_terminal(flags: i32) -> sys::SysResult<i32> {
    let flags = (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC))
        | libc::O_NOCTTY
        | libc::O_CLOEXEC;
    for std in 0..=2 {
        if sys::is_terminal(std) {
            let mut path = Line::<32>::new();
            path.push(b"/proc/self/fd/")
                .push_decimal(std as u64)
                .push(b"\0");
            if let Ok(fd) = sys::open(path.as_bytes(), flags, 0) {
                return Ok(fd);
            }
        }
    }
    sys::open(b"/dev/tty\0", flags, 0)
}

/// Once every descriptor is in place: the standard descriptors that were terminals get
/// their settings back where the restart's are terminals too, and the process gets
/// `SIGWINCH` when it had a terminal (delivered once its threads go on).
pub(super) fn finish(r: &Restoring) {
    let mut had_terminal = false;
    for (i, f) in r.fds.iter().enumerate() {
        if f.kind != FD_KIND_TERMINAL {
            continue;
        }
        had_terminal = true;
        if f.action != FD_ACTION_STDIO || !sys::is_terminal(f.fd as i32) {
            continue;
        }
        let Some(saved) = r.aux::<Terminal>(i) else {
            continue;
        };
        if let Err(e) = sys::set_terminal_settings(f.fd as i32, &saved) {
            let mut line = Line::<160>::new();
            line.push(b"ckpt restart: fd ")
                .push_decimal(f.fd as u64)
                .push(b" (a terminal) could not be given the program's terminal settings: ")
                .push(crate::report::errno_name(e).as_bytes())
                .push(b"\n");
            sys::write_stderr(line.as_bytes());
        }
    }
    if had_terminal {
        WINDOW_CHANGE_WANTED.store(true, Ordering::Relaxed);
    }
}

/// A restart that gave the program a terminal wants it to get `SIGWINCH`.
static WINDOW_CHANGE_WANTED: AtomicBool = AtomicBool::new(false);

/// The process-directed timer that sends it (-1: none), and the process that made it.
static WINDOW_CHANGE_TIMER: AtomicI32 = AtomicI32::new(-1);
static WINDOW_CHANGE_PID: AtomicU32 = AtomicU32::new(0);

/// How long after the restart `SIGWINCH` comes: time for the program to be back in the
/// system call the checkpoint interrupted (a read of its terminal, say).
const WINDOW_CHANGE_DELAY_NS: u64 = 50_000_000;

/// Sends the program `SIGWINCH` so that it reads its new window size and redraws, when the
/// restart gave it a terminal: from a timer, a moment after its threads go on. Raised at
/// once, the signal would be taken before the interrupted system call is made again (a
/// pager's read of its terminal would restart, not return, and it would redraw only at its
/// next key); from the timer it interrupts that call, as a real window change does. Called
/// once the program's own timers are back (this one must not take one of their ids).
/// Signal-safe.
pub(crate) fn send_window_change() {
    if !WINDOW_CHANGE_WANTED.swap(false, Ordering::Relaxed) {
        return;
    }
    // Timers are not inherited, nor do they survive a restart: made anew in each process.
    let pid = sys::getpid();
    let mut id = WINDOW_CHANGE_TIMER.load(Ordering::Relaxed);
    if id < 0 || WINDOW_CHANGE_PID.load(Ordering::Relaxed) != pid {
        id = sys::timer_create_for_process(libc::SIGWINCH).unwrap_or(-1);
        WINDOW_CHANGE_TIMER.store(id, Ordering::Relaxed);
        WINDOW_CHANGE_PID.store(pid, Ordering::Relaxed);
    }
    if id < 0 || sys::timer_fire_in(id, WINDOW_CHANGE_DELAY_NS).is_err() {
        sys::raise_window_change();
    }
}

/// The window-change timer of this process (-1: none), which checkpoints leave out.
pub(crate) fn window_change_timer() -> i32 {
    match WINDOW_CHANGE_TIMER.load(Ordering::Relaxed) {
        id if id >= 0 && WINDOW_CHANGE_PID.load(Ordering::Relaxed) == sys::getpid() => id,
        _ => -1,
    }
}
