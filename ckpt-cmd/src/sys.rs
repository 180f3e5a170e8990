//! The three signal calls the command makes without a safe wrapper, because none covers them,
//! and the width of a terminal. Everything else goes through nix (peer credentials, `poll`,
//! the `kill` probe), getrandom and bytemuck, called where it is used.
//!
//! # Safety
//!
//! The signal calls are plain libc calls whose only arguments are integers (and, for
//! `sigqueue`, a union passed by value): no memory is lent to them, so nothing there can be
//! unsound. `sigqueue` and `kill` are raw because of what nix's `Signal` cannot name: the
//! real-time signals, which are ckpt's control signal (`ckpt_image::CONTROL_SIGNAL`) and may
//! be any `--signal N` of `ckpt checkpoint`; and nix has no `sigqueue`. The `TIOCGWINSZ`
//! ioctl is lent one `winsize` of ours, which it fills and does not keep; nix's ioctl
//! macros would only wrap the same call in an unsafe function of its own.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `sigqueue(pid, signal, value)`: queues `signal` with `value` as its `sival_int`, and
/// glibc puts our own pid and uid in the `siginfo` (the request protocol,
/// `ckpt_image::request`, relies on both).
pub fn sigqueue(pid: i32, signal: i32, value: i32) -> io::Result<()> {
    // libc declares `union sigval` by its pointer member only; `sival_int` is its low half
    // on little-endian x86-64, and the high half is zero as with a C initialiser.
    let value = libc::sigval {
        sival_ptr: value as u32 as usize as *mut libc::c_void,
    };
    // SAFETY: sigqueue takes its arguments by value and touches no memory of ours.
    if unsafe { libc::sigqueue(pid, signal, value) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `kill(pid, signal)` for any signal number, real-time ones included.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the default action of `SIGPIPE`, which the Rust runtime ignores: a reader that
/// goes away (`ckpt info FILE | head`) ends the command quietly, as it ends any Unix
/// filter, instead of making `println!` panic. Programs the command runs get the default
/// action anyway (std's exec resets it).
pub fn default_sigpipe() {
    // SAFETY: installs SIG_DFL, no handler of ours; called first thing in main, when no
    // other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// The width in columns of the terminal on `fd`; `None` when `fd` is no terminal or its
/// width is unknown (a pseudo-terminal nobody sized says 0).
pub fn terminal_columns(fd: BorrowedFd<'_>) -> Option<u16> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize, which `size` is, and keeps no pointer to it.
    let asked = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    (asked == 0 && size.ws_col > 0).then_some(size.ws_col)
}
