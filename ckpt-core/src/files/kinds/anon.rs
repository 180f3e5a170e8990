//! eventfd, timerfd, signalfd and inotify: saved from their fdinfo, made again with the
//! system call that makes each.
//!
//! - eventfd: its counter and semaphore mode (`eventfd-count`, hexadecimal, and
//!   `eventfd-semaphore`); `eventfd(count, flags)` makes it again.
//! - timerfd: its clock, settime flags, unread expirations (`ticks`), and the time to its
//!   next expiry and its interval, from `timerfd_gettime` (which first counts an interval
//!   timer's expirations since it was last read into its ticks; fdinfo would show such a
//!   timer's next expiry as 0, like a disarmed one's). `timerfd_create` and
//!   `timerfd_settime` make it again: with the remaining time, except that an absolute
//!   timer on the real-time clock stays absolute (the wall clock means the same after a
//!   restart; the monotonic and boot clocks of another boot have another origin). Unread
//!   expirations come back with `TFD_IOC_SET_TICKS` where the kernel has it
//!   (`CONFIG_CHECKPOINT_RESTORE`); a restart says so in one line where it has not.
//! - signalfd: its signal mask (`sigmask`); `signalfd(-1, mask, flags)` makes it again.
//!   The signals pending at the checkpoint are the process's and its threads' own, raised
//!   again by the restart, so the new signalfd reads them.

use ckpt_image::fdkind::anon::{EventFd, SignalFd, TimerFd};
use ckpt_image::fdkind::anon::{TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET};
use ckpt_image::procfs::{parse_dec, parse_hex, parse_oct, status_value};
use ckpt_image::{FD_KIND_EVENTFD, FD_KIND_SIGNALFD, FD_KIND_TIMERFD};

use super::{Failure, Restoring, Saving};
use crate::files::FdError;
use crate::line::Line;
use crate::sys;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    match s.rec.kind {
        FD_KIND_EVENTFD => save_eventfd(s),
        FD_KIND_TIMERFD => save_timerfd(s),
        FD_KIND_SIGNALFD => save_signalfd(s),
        _ => Ok(false),
    }
}

pub(super) fn check(_r: &Restoring, _i: usize) -> Result<(), Failure> {
    Ok(())
}

pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    match r.fds[i].kind {
        FD_KIND_EVENTFD => rebuild_eventfd(r, i),
        FD_KIND_TIMERFD => rebuild_timerfd(r, i),
        FD_KIND_SIGNALFD => rebuild_signalfd(r, i),
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

/// The real-time clocks, whose absolute expiry times mean the same after a restart.
fn wall_clock(clockid: u32) -> bool {
    clockid == libc::CLOCK_REALTIME as u32 || clockid == libc::CLOCK_REALTIME_ALARM as u32
}

fn save_timerfd(s: &mut Saving) -> Result<bool, FdError> {
    // First, so that the ticks read below include an interval timer's expirations since it
    // was last read (the program's threads are stopped: nothing else reads it meanwhile).
    let (value_ns, interval_ns) = sys::timerfd_gettime(s.fd)
        .map_err(|e| FdError::Save(s.fd as u32, "cannot be saved: timerfd_gettime", e))?;
    let mut path = Line::<48>::new();
    path.push(b"/proc/thread-self/fdinfo/")
        .push_decimal(s.fd as u64)
        .push(b"\0");
    let n = sys::read_file(path.as_bytes(), s.scratch)
        .map_err(|e| FdError::Save(s.fd as u32, "cannot be saved: its fdinfo", e))?;
    let text = &s.scratch[..n];
    // A kernel without these lines (before 3.17) cannot tell.
    let (Some(clockid), Some(ticks), Some(settime_flags)) = (
        status_value(text, b"clockid").and_then(parse_dec),
        status_value(text, b"ticks").and_then(parse_dec),
        status_value(text, b"settime flags").and_then(parse_oct),
    ) else {
        return Ok(false);
    };
    let (clockid, settime_flags) = (clockid as u32, settime_flags as u32);
    let mut absolute_ns = 0;
    if value_ns != 0 && settime_flags & TFD_TIMER_ABSTIME != 0 && wall_clock(clockid) {
        let now = sys::clock_ns(clockid as i32)
            .map_err(|e| FdError::Save(s.fd as u32, "cannot be saved: clock_gettime", e))?;
        absolute_ns = now.saturating_add(value_ns);
    }
    s.put_aux(&TimerFd {
        clockid,
        settime_flags,
        ticks,
        value_ns,
        interval_ns,
        absolute_ns,
    })?;
    Ok(true)
}

fn rebuild_timerfd(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let t: TimerFd = r
        .aux(i)
        .ok_or(Failure::new(b"has no saved timerfd state", 0))?;
    let mut flags = libc::TFD_CLOEXEC;
    if r.fds[i].flags as i32 & libc::O_NONBLOCK != 0 {
        flags |= libc::TFD_NONBLOCK;
    }
    let fd = sys::timerfd_create(t.clockid as i32, flags)
        .map_err(|e| Failure::new(b"cannot be made again: timerfd_create", e))?;
    // A disarmed timer stays as timerfd_create leaves it.
    let set = if t.value_ns == 0 {
        Ok(())
    } else if t.absolute_ns != 0 {
        let flags = t.settime_flags & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET);
        sys::timerfd_settime(fd, flags as i32, t.absolute_ns, t.interval_ns)
    } else {
        sys::timerfd_settime(fd, 0, t.value_ns, t.interval_ns)
    };
    if let Err(e) = set {
        sys::close(fd);
        return Err(Failure::new(b"cannot be made again: timerfd_settime", e));
    }
    // After settime, which clears them.
    if t.ticks > 0 {
        if let Err(e) = sys::timerfd_set_ticks(fd, t.ticks) {
            let mut line = Line::<1024>::new();
            line.push(b"ckpt restart: fd ")
                .push_decimal(r.fds[i].fd as u64)
                .push(b" ('")
                .push(r.name(i))
                .push(b"') had ")
                .push_decimal(t.ticks)
                .push(b" expiration(s) not read yet, which this kernel cannot put back (")
                .push(crate::report::errno_name(e).as_bytes())
                .push(
                    b" from TFD_IOC_SET_TICKS, a CONFIG_CHECKPOINT_RESTORE ioctl): they are lost\n",
                );
            sys::write_stderr(line.as_bytes());
        }
    }
    r.place(&mut [(fd, i)])
}

fn save_signalfd(s: &mut Saving) -> Result<bool, FdError> {
    let Some(mask) = s.field(b"sigmask").and_then(parse_hex) else {
        return Ok(false);
    };
    s.put_aux(&SignalFd { mask })?;
    Ok(true)
}

fn rebuild_signalfd(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let sig: SignalFd = r
        .aux(i)
        .ok_or(Failure::new(b"has no saved signalfd state", 0))?;
    let mut flags = libc::SFD_CLOEXEC;
    if r.fds[i].flags as i32 & libc::O_NONBLOCK != 0 {
        flags |= libc::SFD_NONBLOCK;
    }
    let fd = sys::signalfd(sig.mask, flags)
        .map_err(|e| Failure::new(b"cannot be made again: signalfd", e))?;
    r.place(&mut [(fd, i)])
}
