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
