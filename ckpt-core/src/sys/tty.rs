//! Terminals: their settings and window size, with the kernel's own `struct termios`.

use core::ffi::c_int;

use ckpt_image::fdkind::tty::Terminal;

use super::*;

/// The kernel's `struct termios` (`TCGETS`/`TCSETS`), which is not glibc's.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct KernelTermios {
    iflag: u32,
    oflag: u32,
    cflag: u32,
    lflag: u32,
    line: u8,
    cc: [u8; 19],
}

/// The settings and window size of terminal `fd`; `Err(ENOTTY)` when it is none.
/// Signal-safe.
pub fn terminal_state(fd: c_int) -> SysResult<Terminal> {
    let mut t = KernelTermios::default();
    // SAFETY: TCGETS fills the kernel's termios, which `t` is.
    check(unsafe { libc::ioctl(fd, libc::TCGETS, &mut t as *mut KernelTermios) } as libc::c_long)?;
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize, which `ws` is.
    let sized = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) } == 0;
    Ok(Terminal {
        iflag: t.iflag,
        oflag: t.oflag,
        cflag: t.cflag,
        lflag: t.lflag,
        line: t.line,
        cc: t.cc,
        rows: ws.ws_row,
        cols: ws.ws_col,
        xpixel: ws.ws_xpixel,
        ypixel: ws.ws_ypixel,
        flags: if sized {
            ckpt_image::fdkind::tty::TERMINAL_HAS_SIZE
        } else {
            0
        },
    })
}

/// Gives terminal `fd` the settings of `saved` (not its window size, which is the new
/// terminal's own). Signal-safe.
pub fn set_terminal_settings(fd: c_int, saved: &Terminal) -> SysResult<()> {
    let t = KernelTermios {
        iflag: saved.iflag,
        oflag: saved.oflag,
        cflag: saved.cflag,
        lflag: saved.lflag,
        line: saved.line,
        cc: saved.cc,
    };
    // SAFETY: TCSETS reads the kernel's termios, which `t` is.
    check(unsafe { libc::ioctl(fd, libc::TCSETS, &t as *const KernelTermios) } as libc::c_long)
        .map(drop)
}

/// Whether `fd` is a terminal. Signal-safe.
pub fn is_terminal(fd: c_int) -> bool {
    terminal_state(fd).is_ok()
}

/// Sends this process `SIGWINCH`: the window size may have changed. Signal-safe.
pub fn raise_window_change() {
    // SAFETY: plain syscall; touches no memory.
    unsafe { libc::kill(libc::getpid(), libc::SIGWINCH) };
}
