//! Pipes and FIFOs: making them with flags, their size, their queued bytes (counted,
//! copied without consuming them with `tee`, read back without blocking), their status
//! flags, and whether a path is still a FIFO. Signal-safe.

use core::ffi::c_int;

use super::*;

/// A pipe (read end, write end) made with `flags` (`O_CLOEXEC`, `O_NONBLOCK`).
pub fn pipe_with(flags: c_int) -> SysResult<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } as libc::c_long)?;
    Ok((fds[0], fds[1]))
}

/// The pipe's capacity in bytes (`F_GETPIPE_SZ`).
pub fn pipe_size(fd: c_int) -> SysResult<usize> {
    // SAFETY: F_GETPIPE_SZ takes no argument and touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) } as libc::c_long)
}

/// Sets the pipe's capacity to at least `size` bytes (`F_SETPIPE_SZ`); the capacity it got.
pub fn set_pipe_size(fd: c_int, size: usize) -> SysResult<usize> {
    let size = size.min(c_int::MAX as usize) as c_int;
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) } as libc::c_long)
}

/// How many bytes are queued in the pipe (`FIONREAD`; either end).
pub fn queued_bytes(fd: c_int) -> SysResult<usize> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } as libc::c_long)?;
    Ok(n.max(0) as usize)
}

/// Copies up to `len` queued bytes of the pipe read through `from` into the pipe written
/// through `to`, leaving them queued in `from` (`tee`), without ever waiting.
pub fn tee_nonblocking(from: c_int, to: c_int, len: usize) -> SysResult<usize> {
    loop {
        // SAFETY: tee works on two descriptors and touches no memory of ours.
        let r = unsafe { libc::tee(from, to, len, libc::SPLICE_F_NONBLOCK) };
        match check(r as libc::c_long) {
            Err(libc::EINTR) => continue,
            r => return r,
        }
    }
}

/// The status flags of `fd`'s open file description (`F_GETFL`).
pub fn status_flags(fd: c_int) -> SysResult<c_int> {
    // SAFETY: F_GETFL takes no argument and touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) } as libc::c_long).map(|v| v as c_int)
}

/// Sets the status flags of `fd`'s open file description (`F_SETFL`: `O_NONBLOCK`,
/// `O_APPEND`, …).
pub fn set_status_flags(fd: c_int, flags: c_int) -> SysResult<()> {
    // SAFETY: F_SETFL takes an int and touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } as libc::c_long).map(drop)
}

/// Whether signal-driven I/O on `fd` goes to this process itself with the default signal
/// (`F_GETOWN_EX` names its pid, `F_GETSIG` is 0): what a restart can set up again.
/// Signal-safe.
pub fn signals_io_to_self(fd: c_int) -> bool {
    // <fcntl.h>'s, which the libc crate lacks.
    const F_GETSIG: c_int = 11;
    const F_GETOWN_EX: c_int = 16;
    const F_OWNER_PID: c_int = 1;
    /// `struct f_owner_ex`.
    #[repr(C)]
    struct Owner {
        kind: c_int,
        pid: c_int,
    }
    let mut owner = Owner { kind: 0, pid: 0 };
    // SAFETY: F_GETOWN_EX writes one `struct f_owner_ex` at `owner`.
    let got = unsafe { libc::fcntl(fd, F_GETOWN_EX, &mut owner as *mut Owner) };
    // SAFETY: F_GETSIG takes no argument and touches no memory.
    let sig = unsafe { libc::fcntl(fd, F_GETSIG) };
    got == 0 && owner.kind == F_OWNER_PID && owner.pid == super::getpid() as c_int && sig == 0
}

/// Sends the signal-driven I/O of `fd` to this process (`F_SETOWN`) and turns it on
/// (`O_ASYNC`). Signal-safe.
pub fn signal_io_to_self(fd: c_int) -> SysResult<()> {
    // SAFETY: F_SETOWN takes an int and touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_SETOWN, super::getpid() as c_int) } as libc::c_long)?;
    set_status_flags(fd, status_flags(fd)? | libc::O_ASYNC)
}

/// `stat` of a NUL-terminated path (following links).
pub fn stat_path(path: &[u8]) -> SysResult<libc::stat> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: the path is NUL-terminated (checked); the kernel writes one `struct stat`.
    check(unsafe { libc::stat(path.as_ptr().cast(), &mut st) } as libc::c_long)?;
    Ok(st)
}

/// Whether this process may open the NUL-terminated `path` with `mode` (`R_OK`, `W_OK`),
/// judged with its effective ids.
pub fn may_access(path: &[u8], mode: c_int) -> SysResult<()> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: the path is NUL-terminated (checked) and lives for the call.
    let r =
        unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr().cast(), mode, libc::AT_EACCESS) };
    check(r as libc::c_long).map(drop)
}
