//! eventfd, timerfd, signalfd and inotify: saved from their fdinfo, made again with the
//! system call that makes each.
//!
//! - eventfd: its counter and semaphore mode (`eventfd-count`, hexadecimal, and
//!   `eventfd-semaphore`); `eventfd(count, flags)` makes it again.

use ckpt_image::fdkind::anon::EventFd;
use ckpt_image::procfs::{parse_dec, parse_hex};
use ckpt_image::FD_KIND_EVENTFD;

use super::{Failure, Restoring, Saving};
use crate::files::FdError;
use crate::sys;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    match s.rec.kind {
        FD_KIND_EVENTFD => save_eventfd(s),
        _ => Ok(false),
    }
}

pub(super) fn check(_r: &Restoring, _i: usize) -> Result<(), Failure> {
    Ok(())
}

pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    match r.fds[i].kind {
        FD_KIND_EVENTFD => rebuild_eventfd(r, i),
        _ => Err(Failure::new(b"cannot be made again yet", libc::ENOSYS)),
    }
}

fn save_eventfd(s: &mut Saving) -> Result<bool, FdError> {
    // A kernel without these lines (before 3.8; the semaphore line since 6.6) cannot tell.
    let Some(count) = s.field(b"eventfd-count").and_then(parse_hex) else {
        return Ok(false);
    };
    let semaphore = s
        .field(b"eventfd-semaphore")
        .and_then(parse_dec)
        .unwrap_or(0) as u32;
    s.put_aux(&EventFd {
        count,
        semaphore,
        reserved: 0,
    })?;
    Ok(true)
}

fn rebuild_eventfd(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let e: EventFd = r
        .aux(i)
        .ok_or(Failure::new(b"has no saved eventfd state", 0))?;
    let mut flags = libc::EFD_CLOEXEC;
    if r.fds[i].flags as i32 & libc::O_NONBLOCK != 0 {
        flags |= libc::EFD_NONBLOCK;
    }
    if e.semaphore != 0 {
        flags |= libc::EFD_SEMAPHORE;
    }
    // The counter is 64 bits but `eventfd` takes 32: the rest is written to it.
    let fd = sys::eventfd(e.count.min(u32::MAX as u64) as u32, flags)
        .map_err(|e| Failure::new(b"cannot be made again: eventfd", e))?;
    if e.count > u32::MAX as u64 {
        let rest = (e.count - u32::MAX as u64).to_ne_bytes();
        if let Err(err) = sys::pwrite_all_stream(fd, &rest) {
            sys::close(fd);
            return Err(Failure::new(b"cannot be made again: its counter", err));
        }
    }
    r.place(&mut [(fd, i)])
}
