//! Saying why a checkpoint failed, in one line, from a signal handler.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::line::Line;
use crate::sys;
use crate::write::WriteError;

/// A digest of the last failure line of a periodic checkpoint (0: none since the last
/// periodic checkpoint that did not fail).
static LAST_PERIODIC: AtomicU64 = AtomicU64::new(0);

/// A periodic checkpoint did not fail: its next failure is said again. Signal-safe.
pub fn periodic_went_well() {
    LAST_PERIODIC.store(0, Ordering::Relaxed);
}

/// Prints why a checkpoint failed, in one line. Signal-safe.
pub fn report_failure(name: &[u8], err: WriteError) {
    report(name, err, false);
}

/// As `report_failure`, for a periodic checkpoint: a failure that repeats the last one (a
/// pipe that stays open fails every period alike) is said once, not every period.
/// Signal-safe.
pub fn report_periodic_failure(name: &[u8], err: WriteError) {
    report(name, err, true);
}

/// Says where the checkpoint that ends the program went: its path (absolute), its size, and
/// that running it resumes the program. Signal-safe.
pub fn report_written(name: &[u8]) {
    let mut line = Line::<1280>::new();
    line.push(b"ckpt: wrote ");
    if name.first() != Some(&b'/') {
        let mut cwd = [0u8; 1024];
        if let Ok(n) = sys::current_dir(&mut cwd) {
            line.push(&cwd[..n]).push(b"/");
        }
    }
    line.push(name);
    let mut path = [0u8; crate::config::MAXNAME + 1];
    path[..name.len()].copy_from_slice(name);
    if let Ok(st) = sys::stat_path(&path[..=name.len()]) {
        line.push(b" (");
        crate::files::push_size(&mut line, st.st_size as u64);
        line.push(b")");
    }
    line.push(b"; run it to resume the program\n");
    sys::write_stderr(line.as_bytes());
}

fn report(name: &[u8], err: WriteError, periodic: bool) {
    let (what, errno) = err.describe();
    let mut line = Line::<1024>::new();
    line.push(b"ckpt: checkpoint to '")
        .push(&name[..name.len().min(512)])
        .push(b"' failed: ");
    if let Some(tid) = err.thread() {
        line.push(b"thread ").push_decimal(tid as u64).push(b" ");
    }
    if let Some(fd) = err.descriptor() {
        let mut link = [0u8; 128];
        let n = crate::files::refused_name(&mut link);
        line.push(b"fd ")
            .push_decimal(fd as u64)
            .push(b" (")
            .push(&link[..n])
            .push(b") ");
    }
    match err {
        WriteError::Files(e) => e.push_what(&mut line),
        _ => {
            line.push(what.as_bytes());
        }
    }
    if let Some(addr) = err.address() {
        line.push(b" at ").push_hex(addr);
    }
    if errno != 0 {
        line.push(b": ")
            .push(errno_name(errno).as_bytes())
            .push(b" (errno ")
            .push_decimal(errno as u64)
            .push(b")");
    }
    line.push(b"; the program continues\n");
    if periodic {
        // FNV-1a of the line; 0 is kept for "none".
        let digest = line
            .as_bytes()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            })
            | 1;
        if LAST_PERIODIC.swap(digest, Ordering::Relaxed) == digest {
            return;
        }
    }
    sys::write_stderr(line.as_bytes());
}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ENOSPC => "no space left on device",
        libc::EACCES => "permission denied",
        libc::EPERM => "operation not permitted",
        libc::ENOENT => "no such file or directory",
        libc::ENAMETOOLONG => "file name too long",
        libc::EROFS => "read-only file system",
        libc::EDQUOT => "disk quota exceeded",
        libc::EFBIG => "file too large",
        libc::EIO => "input/output error",
        libc::EEXIST => "file exists",
        libc::ELOOP => "too many symbolic links (a symlink at the temp name?)",
        libc::ENOTDIR => "not a directory",
        libc::EISDIR => "is a directory",
        libc::ENOMEM => "out of memory",
        libc::EINVAL => "invalid argument",
        libc::ECONNREFUSED => "connection refused",
        libc::ETIMEDOUT => "timed out",
        libc::EBADF => "bad file descriptor",
        libc::EMFILE => "too many open files",
        libc::ENXIO => "no such device or address",
        libc::EBUSY => "device or resource busy",
        libc::ETXTBSY => "text file busy",
        _ => "system error",
    }
}
