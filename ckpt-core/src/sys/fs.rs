//! Files and descriptors: open, read, write at offsets, rename, links, the working
//! directory, pipes and waiting for input. Signal-safe unless a function says otherwise.

use core::ffi::{c_int, c_void};

use super::*;

/// Signal-safe `open` of a NUL-terminated path.
pub fn open(path: &[u8], flags: c_int, mode: libc::mode_t) -> SysResult<c_int> {
    assert_nul(path);
    // SAFETY: the path is NUL-terminated (checked) and lives for the call.
    let fd = unsafe { libc::open(path.as_ptr().cast(), flags, mode as libc::c_uint) };
    check(fd as libc::c_long).map(|f| f as c_int)
}

fn assert_nul(path: &[u8]) {
    if path.last() != Some(&0) {
        // Never reached with our own buffers; failing loudly beats reading past the end.
        exit_now(111);
    }
}

pub fn close(fd: c_int) {
    // SAFETY: closing a descriptor this module opened.
    unsafe { libc::close(fd) };
}

/// Reads until `buf` is full or end of file; returns the number of bytes read.
pub fn read_full(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    read_until(fd, buf, false)
}

/// Reads from a non-blocking descriptor until `buf` is full, the end, or nothing more is
/// queued; the bytes read.
pub fn read_queued(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    read_until(fd, buf, true)
}

/// Reads until `buf` is full or end of file, or (when `until_empty`) nothing more is
/// queued (EAGAIN); the bytes read.
fn read_until(fd: c_int, buf: &mut [u8], until_empty: bool) -> SysResult<usize> {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) => continue,
            Err(libc::EAGAIN) if until_empty => break,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads from a non-blocking descriptor until a newline, end of file, or no more data
/// (the writer may keep its end open); returns the bytes read.
pub fn read_line_nonblocking(fd: c_int, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) => continue,
            Err(_) => break,
        }
    }
    n
}

/// Reads a whole (small, /proc) file into `buf` with as few reads as possible.
pub fn read_file(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    let fd = open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let r = read_full(fd, buf);
    close(fd);
    r
}

/// `pwrite` of `len` bytes taken straight from the address `addr` of this process. Returns
/// how many bytes were written before the end or a fault (EFAULT: unreadable memory, such as
/// a file mapping beyond the end of its file); other errors are returned as such.
pub fn pwrite_from_memory(fd: c_int, addr: u64, len: u64, offset: u64) -> SysResult<u64> {
    let mut done = 0u64;
    while done < len {
        let chunk = (len - done).min(1 << 30) as usize;
        // SAFETY: the kernel reads from our own address space and reports unreadable pages
        // with EFAULT instead of faulting; nothing in Rust aliases this memory as &mut.
        let r = unsafe {
            libc::pwrite(
                fd,
                (addr + done) as *const c_void,
                chunk,
                (offset + done) as libc::off_t,
            )
        };
        match check(r as libc::c_long) {
            Ok(0) => return Err(libc::EIO),
            Ok(k) => done += k as u64,
            Err(libc::EINTR) => continue,
            Err(libc::EFAULT) => return Ok(done),
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `pwrite` of a buffer, all of it.
pub fn pwrite_all(fd: c_int, buf: &[u8], offset: u64) -> SysResult<()> {
    match pwrite_from_memory(fd, buf.as_ptr() as u64, buf.len() as u64, offset)? {
        n if n == buf.len() as u64 => Ok(()),
        _ => Err(libc::EFAULT),
    }
}

/// Starts writeback of the dirty pages of `fd` without waiting for it
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`); a failure only loses the head start.
/// Signal-safe.
pub fn start_writeback(fd: c_int) {
    // SAFETY: plain syscall on a descriptor we own; it touches no memory of ours.
    unsafe { libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

pub fn fsync(fd: c_int) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor we own.
    check(unsafe { libc::fsync(fd) } as libc::c_long).map(drop)
}

pub fn fchmod(fd: c_int, mode: libc::mode_t) -> SysResult<()> {
    // SAFETY: plain syscall on a descriptor we own.
    check(unsafe { libc::fchmod(fd, mode) } as libc::c_long).map(drop)
}

pub fn rename(from: &[u8], to: &[u8]) -> SysResult<()> {
    assert_nul(from);
    assert_nul(to);
    // SAFETY: both paths are NUL-terminated buffers alive for the call.
    check(unsafe { libc::rename(from.as_ptr().cast(), to.as_ptr().cast()) } as libc::c_long)
        .map(drop)
}

/// Swaps the files at `a` and `b` in one step (`renameat2(RENAME_EXCHANGE)`): each name
/// holds a complete file throughout. ENOENT when either is missing. Signal-safe.
pub fn exchange(a: &[u8], b: &[u8]) -> SysResult<()> {
    assert_nul(a);
    assert_nul(b);
    // SAFETY: both paths are NUL-terminated buffers alive for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    })
    .map(drop)
}

pub fn unlink(path: &[u8]) {
    assert_nul(path);
    // SAFETY: NUL-terminated path.
    unsafe { libc::unlink(path.as_ptr().cast()) };
}

/// Reads a symbolic link (NUL-terminated path) into `buf`; returns the length.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    assert_nul(path);
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    check(
        unsafe { libc::readlink(path.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) }
            as libc::c_long,
    )
}

pub fn chdir(path: &[u8]) -> SysResult<()> {
    assert_nul(path);
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::chdir(path.as_ptr().cast()) } as libc::c_long).map(drop)
}

/// The process's umask, left unchanged.
pub fn get_umask() -> u32 {
    // SAFETY: umask cannot fail; the old value is put back at once.
    unsafe {
        let m = libc::umask(0o077);
        libc::umask(m);
        m as u32
    }
}

pub fn set_umask(m: u32) {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(m as libc::mode_t) };
}

/// Writes all of `buf` to a pipe or other stream.
pub fn pwrite_all_stream(fd: c_int, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: writes from a live buffer.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match check(r as libc::c_long) {
            Ok(k) => buf = &buf[k..],
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A pipe (read end, write end), close-on-exec.
pub fn pipe() -> SysResult<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    Ok((fds[0], fds[1]))
}

/// Whether `fd` becomes readable (or reaches its end) within `ms` milliseconds.
pub fn wait_readable(fd: c_int, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll(2) on one pollfd that lives across the call.
        match unsafe { libc::poll(&mut p, 1, ms) } {
            -1 if errno() == libc::EINTR => continue,
            r => return r > 0,
        }
    }
}

/// Writes one byte to `fd` (errors ignored: the reader then sees the end of the pipe).
pub fn write_byte(fd: c_int, b: u8) {
    // SAFETY: writes one byte from a live local.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// `pread` into `buf` until it is full, the end, or an error after some data; returns the
/// bytes read (an error before any data is returned as such). Reading `/proc/self/mem` stops
/// short at memory that cannot be read (a file mapping past the end of its file).
pub fn pread_some(fd: c_int, buf: &mut [u8], offset: u64) -> SysResult<usize> {
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe {
            libc::pread(
                fd,
                buf[n..].as_mut_ptr().cast(),
                buf.len() - n,
                (offset + n as u64) as libc::off_t,
            )
        };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) => continue,
            Err(_) if n > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Gives the unnamed file `fd` (`O_TMPFILE`) the name `path` (NUL-terminated), replacing a
/// leftover file of that name. Signal-safe.
pub fn link_fd(fd: c_int, path: &[u8]) -> SysResult<()> {
    assert_nul(path);
    let mut proc_path = crate::line::Line::<32>::new();
    proc_path
        .push(b"/proc/thread-self/fd/")
        .push_decimal(fd as u64)
        .push(b"\0");
    let from = proc_path.as_bytes();
    let link = || {
        // SAFETY: both paths are NUL-terminated buffers alive for the call.
        check(unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr().cast(),
                libc::AT_FDCWD,
                path.as_ptr().cast(),
                libc::AT_SYMLINK_FOLLOW,
            )
        } as libc::c_long)
        .map(drop)
    };
    match link() {
        Err(libc::EEXIST) => {
            // A leftover temp file of an earlier process with our pid (unlink never
            // follows a symlink).
            unlink(path);
            link()
        }
        r => r,
    }
}

/// Writes `bytes` to the existing file `path` (NUL-terminated; a /proc setting). Signal-safe.
pub fn write_file(path: &[u8], bytes: &[u8]) -> SysResult<()> {
    let fd = open(path, libc::O_WRONLY | libc::O_CLOEXEC, 0)?;
    let r = pwrite_all_stream(fd, bytes);
    close(fd);
    r
}

/// Reads directory entries (`getdents64`) of `fd` into `buf`; 0 at the end. Signal-safe.
pub fn getdents(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    check(unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) })
}

/// The names in a `getdents64` buffer, each without its NUL.
pub fn dirent_names(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name...
        let reclen = u16::from_ne_bytes([*buf.get(at + 16)?, *buf.get(at + 17)?]) as usize;
        if reclen < 20 || at + reclen > buf.len() {
            return None;
        }
        let rec = &buf[at + 19..at + reclen];
        at += reclen;
        let n = rec.iter().position(|&c| c == 0).unwrap_or(rec.len());
        Some(&rec[..n])
    })
}

/// `fstat` of a descriptor. Signal-safe.
pub fn fstat(fd: c_int) -> SysResult<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: the kernel writes one `struct stat` into `st`.
    check(unsafe { libc::fstat(fd, &mut st) } as libc::c_long)?;
    Ok(st)
}

/// `lstat` of a NUL-terminated path (a symbolic link itself, not what it names).
/// Signal-safe.
pub fn lstat(path: &[u8]) -> SysResult<libc::stat> {
    assert_nul(path);
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: the path is NUL-terminated; the kernel writes one `struct stat` into `st`.
    check(unsafe { libc::lstat(path.as_ptr().cast(), &mut st) } as libc::c_long)?;
    Ok(st)
}

/// The descriptor flags (`F_GETFD`: `FD_CLOEXEC`). Signal-safe.
pub fn fd_flags(fd: c_int) -> SysResult<c_int> {
    // SAFETY: F_GETFD takes no argument and touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as libc::c_long).map(|v| v as c_int)
}

/// How the open file descriptions of descriptors `a` and `b` of this process compare
/// (`kcmp(KCMP_FILE)`: `Equal` when they share one; otherwise an order that is consistent
/// but means nothing else); `Err` where kcmp is not available. Signal-safe.
pub fn description_order(a: c_int, b: c_int) -> SysResult<core::cmp::Ordering> {
    const KCMP_FILE: libc::c_long = 0;
    let pid = super::getpid() as libc::c_long;
    // SAFETY: kcmp compares two descriptors of this process; it touches no memory.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a, b) };
    match check(r)? {
        0 => Ok(core::cmp::Ordering::Equal),
        1 => Ok(core::cmp::Ordering::Less),
        2 => Ok(core::cmp::Ordering::Greater),
        _ => Err(libc::EINVAL),
    }
}

/// `lseek(fd, offset, SEEK_SET)`. Signal-safe.
pub fn seek_to(fd: c_int, offset: u64) -> SysResult<u64> {
    // SAFETY: plain syscall on a descriptor; touches no memory.
    let r = unsafe { libc::lseek(fd, offset as libc::off_t, libc::SEEK_SET) };
    check(r as libc::c_long).map(|v| v as u64)
}

/// `lseek(fd, 0, SEEK_CUR)`: the offset of `fd`. Signal-safe.
pub fn offset_of(fd: c_int) -> SysResult<u64> {
    // SAFETY: plain syscall on a descriptor; touches no memory.
    let r = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    check(r as libc::c_long).map(|v| v as u64)
}

/// `dup3(old, new, O_CLOEXEC when cloexec)`: `new` becomes a copy of `old`, replacing what it
/// was. Signal-safe.
pub fn dup_to(old: c_int, new: c_int, cloexec: bool) -> SysResult<()> {
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: plain syscall on descriptors; touches no memory.
    check(unsafe { libc::dup3(old, new, flags) } as libc::c_long).map(drop)
}

/// A copy of `fd` at the lowest free number not below `min`, closed on exec. Signal-safe.
pub fn dup_above(fd: c_int, min: c_int) -> SysResult<c_int> {
    // SAFETY: plain syscall on descriptors; touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)
        .map(|r| r as c_int)
}

/// Sets or clears `O_NONBLOCK` on `fd`'s open file description. Signal-safe.
pub fn set_nonblocking(fd: c_int, on: bool) -> SysResult<()> {
    // SAFETY: F_GETFL takes no argument and touches no memory.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) } as libc::c_long)? as c_int;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int; touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } as libc::c_long).map(drop)
}

/// Sets or clears `fd`'s close-on-exec flag. Signal-safe.
pub fn set_cloexec(fd: c_int, cloexec: bool) -> SysResult<()> {
    let flags = if cloexec { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: plain syscall on a descriptor; touches no memory.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } as libc::c_long).map(drop)
}

/// Closes every descriptor from `first` to `last` (inclusive). Signal-safe.
pub fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: closes descriptors; touches no memory.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
}
