//! Deleted files, memfds and file locks: unnamed files (`O_TMPFILE`), `memfd_create` and
//! seals, the size of a file, and taking and testing `flock`, POSIX and OFD locks.
//! Signal-safe.

use core::ffi::c_int;

use super::*;

/// An unnamed regular file in directory `dir` (NUL-terminated), open for reading and
/// writing, with `mode`, never linked: it goes away with its last descriptor. Signal-safe.
pub fn open_tmpfile(dir: &[u8], mode: libc::mode_t) -> SysResult<c_int> {
    open(dir, libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, mode)
}

/// A new memfd named `name` (NUL-terminated) with `flags` (`MFD_*`). Signal-safe.
pub fn memfd_create(name: &[u8], flags: u32) -> SysResult<c_int> {
    if name.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: the name is NUL-terminated (checked) and lives for the call.
    let r = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) };
    check(r).map(|fd| fd as c_int)
}

/// Sets the size of the file open at `fd`. Signal-safe.
pub fn ftruncate(fd: c_int, size: u64) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor; touches no memory.
    check(unsafe { libc::ftruncate(fd, size as libc::off_t) } as libc::c_long).map(drop)
}

/// The seals of a memfd (`F_SEAL_*`). Signal-safe.
pub fn get_seals(fd: c_int) -> SysResult<u32> {
    // SAFETY: plain syscall on a descriptor; touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_GET_SEALS) } as libc::c_long).map(|s| s as u32)
}

/// Adds `seals` (`F_SEAL_*`) to a memfd. Signal-safe.
pub fn add_seals(fd: c_int, seals: u32) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor; touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals as c_int) } as libc::c_long).map(drop)
}

/// `flock(fd, op)` (`LOCK_SH`, `LOCK_EX`, `LOCK_UN`, with `LOCK_NB`). Signal-safe.
pub fn flock(fd: c_int, op: c_int) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor; touches no memory.
    check(unsafe { libc::flock(fd, op) } as libc::c_long).map(drop)
}

/// A record lock of bytes `start` to `end` (inclusive; `u64::MAX`: to the end of the file,
/// however far it grows), of `l_type` (`F_RDLCK`, `F_WRLCK`).
pub fn record_lock(l_type: c_int, start: u64, end: u64) -> libc::flock {
    // SAFETY: an all-zero `flock` is a valid value of the plain C struct.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = l_type as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = if end == u64::MAX {
        0
    } else {
        end.saturating_sub(start).saturating_add(1) as libc::off_t
    };
    fl
}

/// `fcntl(fd, cmd, fl)` with a record-lock command (`F_SETLK`, `F_GETLK`, `F_OFD_SETLK`,
/// `F_OFD_GETLK`); `fl` is updated as the command says. Signal-safe.
pub fn lock_record(fd: c_int, cmd: c_int, fl: &mut libc::flock) -> SysResult<()> {
    // SAFETY: `fl` is a live, writable `flock` for the call.
    check(unsafe { libc::fcntl(fd, cmd, fl as *mut libc::flock) } as libc::c_long).map(drop)
}
