//! File locks: the `lock:` lines of fdinfo (`flock`, POSIX, OFD) are saved after a record's
//! kind-specific values (for reopened files and deleted files and memfds) and taken again,
//! without waiting, once every descriptor is in place; those of reopened files are first
//! tested, before the restart changes anything.
//!
//! Everything here is signal-safe (it runs in a signal handler or the restart): no
//! allocation, no mutexes, no stdio.

use ckpt_image::fdkind::deleted::{FileLock, LOCK_TO_EOF};
use ckpt_image::fdkind::deleted::{LOCK_FLOCK, LOCK_OFD, LOCK_OTHER, LOCK_POSIX};
use ckpt_image::{FdRecord, FD_ACTION_CLOSED};

use super::{FdError, EXIT_FILE_MISSING};
use crate::line::Line;
use crate::sys;

/// Most locks saved for one descriptor.
const MAX_LOCKS: usize = 64;

/// Appends the locks the `lock:` lines of `fdinfo` show to `rec`'s kind-specific values,
/// which end at `*names` in `area` (or are none). Signal-safe.
pub(super) fn save_locks(
    fdinfo: &[u8],
    rec: &mut FdRecord,
    area: &mut [u8],
    names: &mut usize,
) -> Result<(), FdError> {
    if rec.aux_len == 0 {
        rec.aux_offset = *names as u32;
    }
    let mut count = 0;
    for line in fdinfo.split(|&c| c == b'\n') {
        let Some(text) = line.strip_prefix(b"lock:") else {
            continue;
        };
        let lock = FileLock::parse(text).unwrap_or(FileLock {
            kind: LOCK_OTHER,
            ..Default::default()
        });
        count += 1;
        let bytes = ckpt_image::record_bytes(core::slice::from_ref(&lock));
        let end = *names + bytes.len();
        if count > MAX_LOCKS {
            return Err(FdError::Save(
                rec.fd,
                "holds more than 64 file locks, more than a checkpoint saves",
                0,
            ));
        }
        if end > area.len() || end > u32::MAX as usize {
            return Err(FdError::TooMany);
        }
        area[*names..end].copy_from_slice(bytes);
        rec.aux_len += bytes.len() as u32;
        *names = end;
    }
    Ok(())
}

/// Lock `l` in words, after "its": "flock (exclusive)", "fcntl write lock on bytes 0-4",
/// "OFD read lock on bytes 10 to the end".
fn push_lock<const N: usize>(line: &mut Line<N>, l: &FileLock) {
    let write = l.write != 0;
    if l.kind == LOCK_FLOCK {
        line.push(if write {
            b"flock (exclusive)".as_slice()
        } else {
            b"flock (shared)"
        });
        return;
    }
    line.push(if l.kind == LOCK_OFD {
        b"OFD ".as_slice()
    } else {
        b"fcntl "
    })
    .push(if write {
        b"write lock on bytes ".as_slice()
    } else {
        b"read lock on bytes "
    })
    .push_decimal(l.start);
    if l.end == LOCK_TO_EOF {
        line.push(b" to the end");
    } else {
        line.push(b"-").push_decimal(l.end);
    }
}

/// Takes lock `l` on `fd`, without waiting; when another process holds it, the errno and
/// that process's pid where the kernel says it (0 when not). `test` only asks whether it
/// could be taken (a POSIX or OFD lock), or takes and gives back a `flock` of a descriptor
/// that is closed next. Signal-safe.
fn take_lock(fd: i32, l: &FileLock, test: bool) -> Result<(), (i32, i32)> {
    let l_type = if l.write != 0 {
        libc::F_WRLCK
    } else {
        libc::F_RDLCK
    };
    match l.kind {
        LOCK_FLOCK => {
            let op = if l.write != 0 {
                libc::LOCK_EX
            } else {
                libc::LOCK_SH
            };
            sys::flock(fd, op | libc::LOCK_NB).map_err(|e| (e, 0))?;
            if test {
                let _ = sys::flock(fd, libc::LOCK_UN);
            }
            Ok(())
        }
        LOCK_POSIX | LOCK_OFD => {
            let mut fl = sys::record_lock(l_type, l.start, l.end);
            let (get, set) = if l.kind == LOCK_OFD {
                (libc::F_OFD_GETLK, libc::F_OFD_SETLK)
            } else {
                (libc::F_GETLK, libc::F_SETLK)
            };
            if !test {
                return sys::lock_record(fd, set, &mut fl).map_err(|e| (e, 0));
            }
            sys::lock_record(fd, get, &mut fl).map_err(|e| (e, 0))?;
            if fl.l_type == libc::F_UNLCK as libc::c_short {
                Ok(())
            } else {
                Err((libc::EAGAIN, fl.l_pid.max(0)))
            }
        }
        _ => Ok(()),
    }
}

/// Takes the saved locks of `f` (whose kind-specific values are `aux`) on `fd`, or with
/// `test` only checks that they could be; a lock that cannot be taken is one line, and the
/// process ends with [`EXIT_FILE_MISSING`]. Signal-safe.
pub(super) fn take_locks(fd: i32, f: &FdRecord, name: &[u8], aux: &[u8], test: bool, end: &[u8]) {
    for l in ckpt_image::fdkind::deleted::locks(f, aux) {
        let Err((e, pid)) = take_lock(fd, &l, test) else {
            continue;
        };
        let mut line = Line::<1024>::new();
        line.push(b"ckpt restart: fd ")
            .push_decimal(f.fd as u64)
            .push(b" ('")
            .push(name)
            .push(b"') cannot take its ");
        push_lock(&mut line, &l);
        line.push(b" again: ");
        if matches!(e, libc::EAGAIN | libc::EACCES) {
            if pid > 0 {
                line.push(b"process ")
                    .push_decimal(pid as u64)
                    .push(b" holds it now");
            } else {
                line.push(b"another process holds it now");
            }
        } else {
            line.push(crate::report::errno_name(e).as_bytes())
                .push(b" (errno ")
                .push_decimal(e as u64)
                .push(b")");
        }
        line.push(end);
        sys::write_stderr(line.as_bytes());
        sys::exit_now(EXIT_FILE_MISSING);
    }
}

/// Whether `f` had locks a restart does not take again: on a kind whose locks are not
/// saved, or leases.
pub(super) fn locks_left(f: &FdRecord, aux: &[u8]) -> bool {
    if !f.locked() || f.action == FD_ACTION_CLOSED {
        return false;
    }
    let mut saved = ckpt_image::fdkind::deleted::locks(f, aux).peekable();
    saved.peek().is_none() || saved.any(|l| l.kind == LOCK_OTHER)
}
