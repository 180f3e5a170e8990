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
//! - inotify: the kernel names a watch's file only by inode and file handle, and opening a
//!   handle needs CAP_DAC_READ_SEARCH. So the library remembers the path of each watch as
//!   the program adds it (it wraps `inotify_add_watch` and `inotify_rm_watch`; a table in
//!   reserved memory, keyed by instance descriptor and watch descriptor, made absolute
//!   with the current directory). The checkpoint takes the watches from fdinfo (`wd`,
//!   `ino`, `sdev`, `mask`) and saves each with the remembered path that still names its
//!   inode. The restart adds them again in increasing wd order: the kernel hands out wds
//!   one after the other (cyclically), so gaps are made by adding and removing a
//!   throwaway watch, and the program's wds come back the same; their `IN_IGNORED`
//!   events are read off before the program runs. A watch without a known path, a path
//!   gone, a wd that came out different, and unread events lost are named in one line.

use core::ffi::{c_char, c_int, CStr};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};

use ckpt_image::fdkind::anon::{EventFd, Inotify, InotifyWatch, SignalFd, TimerFd};
use ckpt_image::fdkind::anon::{TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET};
use ckpt_image::procfs::{parse_dec, parse_hex, parse_oct, status_value};
use ckpt_image::{read_record, record_bytes};
use ckpt_image::{FD_KIND_EVENTFD, FD_KIND_INOTIFY, FD_KIND_SIGNALFD, FD_KIND_TIMERFD};

use super::{Failure, Restoring, Saving};
use crate::files::FdError;
use crate::line::Line;
use crate::sys;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    match s.rec.kind {
        FD_KIND_EVENTFD => save_eventfd(s),
        FD_KIND_TIMERFD => save_timerfd(s),
        FD_KIND_SIGNALFD => save_signalfd(s),
        FD_KIND_INOTIFY => save_inotify(s),
        _ => Ok(false),
    }
}

pub(super) fn check(r: &Restoring, i: usize) -> Result<(), Failure> {
    if r.fds[i].kind == FD_KIND_INOTIFY {
        let set: Inotify = r
            .aux(i)
            .ok_or(Failure::new(b"has no saved inotify state", 0))?;
        if inotify_watches(r.data(i)).count() != set.watches as usize {
            return Err(Failure::new(b"has damaged saved inotify watches", 0));
        }
    }
    Ok(())
}

pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    match r.fds[i].kind {
        FD_KIND_EVENTFD => rebuild_eventfd(r, i),
        FD_KIND_TIMERFD => rebuild_timerfd(r, i),
        FD_KIND_SIGNALFD => rebuild_signalfd(r, i),
        FD_KIND_INOTIFY => rebuild_inotify(r, i),
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

// ---------------------------------------------------------------------------------------------
// inotify

/// Watches whose paths the library remembers at once (more are not remembered, and do not
/// survive a checkpoint: the restart names them).
const WATCH_SLOTS: usize = 4096;
/// Room for one path and its NUL.
const PATH_ROOM: usize = crate::arena::PATH_MAX;

/// `Slot::state`: free.
const FREE: u32 = 0;
/// Being written (by a thread that may be stopped there by a checkpoint): not to be read.
const WRITING: u32 = 1;
/// Holds a watch.
const VALID: u32 = 2;

/// A remembered watch: instance descriptor, watch descriptor, `IN_DONT_FOLLOW` and
/// `IN_ONLYDIR`, and the length of its path (with its NUL) in `PATHS`.
struct Slot {
    state: AtomicU32,
    fd: AtomicI32,
    wd: AtomicI32,
    flags: AtomicU32,
    len: AtomicU32,
}

static SLOTS: [Slot; WATCH_SLOTS] = [const {
    Slot {
        state: AtomicU32::new(FREE),
        fd: AtomicI32::new(-1),
        wd: AtomicI32::new(-1),
        flags: AtomicU32::new(0),
        len: AtomicU32::new(0),
    }
}; WATCH_SLOTS];

/// `WATCH_SLOTS` paths of `PATH_ROOM` bytes, reserved at the first watch (programs without
/// inotify carry nothing). A slot's path is written under `LOCK` while the slot is
/// `WRITING`, and read only while it is `VALID`: by the checkpoint (the other threads
/// stopped) or under `LOCK`.
static PATHS: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// Serialises the wrappers (never taken by the checkpoint or the restart, which a thread
/// stopped inside a wrapper would otherwise block).
static LOCK: AtomicBool = AtomicBool::new(false);

const ADD_FLAGS: u32 = libc::IN_DONT_FOLLOW | libc::IN_ONLYDIR;

fn lock() {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        sys::sched_yield();
    }
}

fn unlock() {
    LOCK.store(false, Ordering::Release);
}

/// Slot `k`'s path room.
fn path_room(k: usize) -> Option<&'static mut [u8]> {
    let base = PATHS.load(Ordering::Acquire);
    if base.is_null() || k >= WATCH_SLOTS {
        return None;
    }
    // SAFETY: `PATHS` is a reservation of WATCH_SLOTS * PATH_ROOM bytes that lives as long
    // as the process; slot k's room is used by one side at a time (see `PATHS`).
    Some(unsafe { core::slice::from_raw_parts_mut(base.add(k * PATH_ROOM), PATH_ROOM) })
}

/// Slot `k`'s path with its NUL, when it holds a watch.
fn slot_path(k: usize) -> Option<&'static [u8]> {
    let slot = &SLOTS[k];
    if slot.state.load(Ordering::Acquire) != VALID {
        return None;
    }
    let len = (slot.len.load(Ordering::Relaxed) as usize).min(PATH_ROOM);
    path_room(k).map(|room| &room[..len])
}

/// Wraps `inotify_add_watch`: the watch is added, and its path remembered.
///
/// # Safety
/// `path` is NUL-terminated, as for `inotify_add_watch(2)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn inotify_add_watch(fd: c_int, path: *const c_char, mask: u32) -> c_int {
    if path.is_null() {
        sys::set_errno(libc::EFAULT);
        return -1;
    }
    // SAFETY: the caller passes a NUL-terminated string (see # Safety).
    let path = unsafe { CStr::from_ptr(path) }.to_bytes_with_nul();
    match sys::inotify_add(fd, path, mask) {
        Ok(wd) => {
            let errno = sys::get_errno();
            remember(fd, wd, path, mask & ADD_FLAGS);
            sys::set_errno(errno);
            wd
        }
        Err(e) => {
            sys::set_errno(e);
            -1
        }
    }
}

/// Wraps `inotify_rm_watch`: the watch is removed, and forgotten.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn inotify_rm_watch(fd: c_int, wd: c_int) -> c_int {
    match sys::inotify_rm(fd, wd) {
        Ok(()) => {
            lock();
            for slot in SLOTS.iter() {
                if slot.state.load(Ordering::Relaxed) == VALID
                    && slot.fd.load(Ordering::Relaxed) == fd
                    && slot.wd.load(Ordering::Relaxed) == wd
                {
                    slot.state.store(FREE, Ordering::Release);
                }
            }
            unlock();
            0
        }
        Err(e) => {
            sys::set_errno(e);
            -1
        }
    }
}

/// Remembers watch `wd` of instance `fd` as `path` (with its NUL; made absolute here).
fn remember(fd: c_int, wd: c_int, path: &[u8], flags: u32) {
    lock();
    if PATHS.load(Ordering::Relaxed).is_null() {
        let room = sys::reserve(WATCH_SLOTS * PATH_ROOM);
        PATHS.store(room.as_mut_ptr(), Ordering::Release);
    }
    let same = |s: &Slot| {
        s.state.load(Ordering::Relaxed) == VALID
            && s.fd.load(Ordering::Relaxed) == fd
            && s.wd.load(Ordering::Relaxed) == wd
    };
    let free = |s: &Slot| s.state.load(Ordering::Relaxed) == FREE;
    let mut k = SLOTS
        .iter()
        .position(same)
        .or_else(|| SLOTS.iter().position(free));
    if k.is_none() {
        forget_closed_instances();
        k = SLOTS.iter().position(free);
    }
    if let Some(k) = k {
        let slot = &SLOTS[k];
        slot.state.store(WRITING, Ordering::Relaxed);
        if let Some(len) = path_room(k).and_then(|room| absolute_path(path, room)) {
            slot.fd.store(fd, Ordering::Relaxed);
            slot.wd.store(wd, Ordering::Relaxed);
            slot.flags.store(flags, Ordering::Relaxed);
            slot.len.store(len as u32, Ordering::Relaxed);
            slot.state.store(VALID, Ordering::Release);
        } else {
            slot.state.store(FREE, Ordering::Release);
        }
    }
    unlock();
}

/// `path` (with its NUL) made absolute into `room`; its length with the NUL (None: too
/// long, or no current directory).
fn absolute_path(path: &[u8], room: &mut [u8]) -> Option<usize> {
    let mut at = 0;
    if path.first() != Some(&b'/') {
        at = sys::current_dir(room).ok()?;
        if !room[..at].ends_with(b"/") {
            *room.get_mut(at)? = b'/';
            at += 1;
        }
    }
    room.get_mut(at..at + path.len())?.copy_from_slice(path);
    Some(at + path.len())
}

/// Frees the slots of descriptors that are no longer inotify instances (closed unseen).
fn forget_closed_instances() {
    for slot in SLOTS.iter() {
        if slot.state.load(Ordering::Relaxed) != VALID {
            continue;
        }
        let mut link = Line::<48>::new();
        link.push(b"/proc/self/fd/")
            .push_decimal(slot.fd.load(Ordering::Relaxed).max(0) as u64)
            .push(b"\0");
        let mut target = [0u8; 32];
        let n = sys::readlink(link.as_bytes(), &mut target).unwrap_or(0);
        if &target[..n] != b"anon_inode:inotify" {
            slot.state.store(FREE, Ordering::Release);
        }
    }
}

/// The saved watches of an inotify record: each watch and its path.
fn inotify_watches(data: &[u8]) -> impl Iterator<Item = (InotifyWatch, &[u8])> {
    let mut at = 0;
    core::iter::from_fn(move || {
        let w: InotifyWatch = read_record(data.get(at..)?)?;
        let head = core::mem::size_of::<InotifyWatch>();
        let path = data.get(at + head..at + head + w.path_len as usize)?;
        at += InotifyWatch::stored_len(w.path_len as usize);
        Some((w, path))
    })
}

fn save_inotify(s: &mut Saving) -> Result<bool, FdError> {
    let fd = s.fd;
    let mut path = Line::<48>::new();
    path.push(b"/proc/thread-self/fdinfo/")
        .push_decimal(fd as u64)
        .push(b"\0");
    let n = sys::read_file(path.as_bytes(), s.scratch)
        .map_err(|e| FdError::Save(fd as u32, "cannot be saved: its fdinfo", e))?;
    if n == s.scratch.len() {
        return Err(FdError::Save(
            fd as u32,
            "cannot be saved: it has more inotify watches than a checkpoint saves (about 8000)",
            0,
        ));
    }
    let queued = sys::readable_bytes(fd).unwrap_or(0);
    let room = &mut s.data[s.data_end..];
    let (mut used, mut watches, mut unknown) = (0, 0, 0);
    for line in s.scratch[..n].split(|&c| c == b'\n') {
        let Some(w) = parse_inotify_watch(line) else {
            continue;
        };
        // The remembered path of this wd that still names the watched inode.
        let found = (0..WATCH_SLOTS).find_map(|k| {
            let slot = &SLOTS[k];
            let p = slot_path(k)?;
            let follow = slot.flags.load(Ordering::Relaxed) & libc::IN_DONT_FOLLOW == 0;
            (slot.wd.load(Ordering::Relaxed) == w.wd as i32
                && sys::path_identity(p, follow) == Ok((w.dev, w.ino)))
            .then(|| (p, slot.flags.load(Ordering::Relaxed)))
        });
        let (p, flags) = found.map_or((&b""[..], 0), |(p, f)| (&p[..p.len() - 1], f));
        if p.is_empty() {
            unknown += 1;
        }
        let w = InotifyWatch {
            flags,
            path_len: p.len() as u32,
            ..w
        };
        let len = InotifyWatch::stored_len(p.len());
        let slot = room
            .get_mut(used..used + len)
            .ok_or(FdError::DataFull(fd as u32))?;
        let head = core::mem::size_of::<InotifyWatch>();
        slot[..head].copy_from_slice(record_bytes(core::slice::from_ref(&w)));
        slot[head..head + p.len()].copy_from_slice(p);
        slot[head + p.len()..].fill(0);
        used += len;
        watches += 1;
    }
    s.commit_data(used)?;
    s.put_aux(&Inotify {
        watches,
        unknown,
        queued,
        reserved: 0,
    })?;
    Ok(true)
}

/// The watch an `inotify wd:… ino:… sdev:… mask:…` line of fdinfo describes (no path).
fn parse_inotify_watch(line: &[u8]) -> Option<InotifyWatch> {
    let line = line.strip_prefix(b"inotify ")?;
    let hex = |key: &[u8]| super::epoll::value_after(line, key).and_then(parse_hex);
    let sdev = hex(b"sdev:")?;
    Some(InotifyWatch {
        wd: hex(b"wd:")? as u32,
        // (The first `mask:`, not `ignored_mask:`, which follows it.)
        mask: hex(b"mask:")? as u32,
        flags: 0,
        path_len: 0,
        ino: hex(b"ino:")?,
        // The kernel's own encoding of the device (major << 20 | minor).
        dev: libc::makedev((sdev >> 20) as u32, (sdev & 0xf_ffff) as u32),
    })
}

/// Paths a throwaway watch may use to take up a wd (the first one this instance does not
/// watch already).
const THROWAWAY: [&[u8]; 4] = [b"/\0", b"/proc\0", b"/dev\0", b"/sys\0"];
/// Most wds taken up to reach a watch's own.
const MAX_GAP: u32 = 1 << 16;

fn rebuild_inotify(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let set: Inotify = r
        .aux(i)
        .ok_or(Failure::new(b"has no saved inotify state", 0))?;
    let fd = sys::inotify_init(libc::IN_CLOEXEC | libc::IN_NONBLOCK)
        .map_err(|e| Failure::new(b"cannot be made again: inotify_init1", e))?;
    r.place(&mut [(fd, i)])?;
    let fd = r.fds[i].fd as i32;
    let mut said = Line::<1024>::new();
    let mut lost = Line::<1024>::new();
    let mut moved = Line::<512>::new();
    // `last`: the saved wd made last; `handed`: the wd the kernel handed out last.
    let (mut last, mut handed, mut threw) = (0u32, 0u32, false);
    // In increasing wd order: the next after `last` each time.
    while let Some((w, path)) = inotify_watches(r.data(i))
        .filter(|(w, _)| w.wd > last)
        .min_by_key(|(w, _)| w.wd)
    {
        let sep = |l: &Line<1024>| {
            if l.as_bytes().is_empty() {
                &b" wd "[..]
            } else {
                b", wd "
            }
        };
        if path.is_empty() {
            lost.push(sep(&lost))
                .push_decimal(w.wd as u64)
                .push(b" (its path is not known)");
            last = w.wd;
            continue;
        }
        // Take up the wds before this one.
        if w.wd.saturating_sub(handed) <= MAX_GAP {
            while handed + 1 < w.wd {
                let Some(taken) = THROWAWAY.iter().find_map(|p| {
                    sys::inotify_add(fd, p, libc::IN_ATTRIB | libc::IN_MASK_CREATE).ok()
                }) else {
                    break;
                };
                let _ = sys::inotify_rm(fd, taken);
                threw = true;
                if taken as u32 <= handed {
                    break;
                }
                handed = taken as u32;
            }
        }
        let mut full = [0u8; PATH_ROOM + 1];
        full[..path.len()].copy_from_slice(path);
        let mask = w.mask | (w.flags & ADD_FLAGS);
        match sys::inotify_add(fd, &full[..path.len() + 1], mask) {
            Ok(wd) => {
                if wd as u32 != w.wd {
                    moved
                        .push(if moved.as_bytes().is_empty() {
                            b" wd "
                        } else {
                            b", wd "
                        })
                        .push_decimal(w.wd as u64)
                        .push(b" ('")
                        .push(path)
                        .push(b"') is now ")
                        .push_decimal(wd as u64);
                }
                for slot in SLOTS.iter() {
                    if slot.state.load(Ordering::Acquire) == VALID
                        && slot.fd.load(Ordering::Relaxed) == fd
                        && slot.wd.load(Ordering::Relaxed) == w.wd as i32
                    {
                        slot.wd.store(wd, Ordering::Relaxed);
                    }
                }
                handed = wd as u32;
                last = w.wd;
            }
            Err(e) => {
                lost.push(sep(&lost))
                    .push_decimal(w.wd as u64)
                    .push(b" ('")
                    .push(path)
                    .push(b"': ")
                    .push(crate::report::errno_name(e).as_bytes())
                    .push(b")");
                last = w.wd;
            }
        }
    }
    // The throwaway watches' IN_IGNORED events (with any event of these few moments).
    if threw {
        while let Ok(1..) = sys::read_once(fd, r.scratch) {}
    }
    if r.fds[i].flags as i32 & libc::O_NONBLOCK == 0 {
        sys::set_nonblocking(fd, false)
            .map_err(|e| Failure::new(b"cannot be made again: F_SETFL", e))?;
    }
    if !lost.as_bytes().is_empty() {
        said.push(b"; no longer watches").push(lost.as_bytes());
    }
    if !moved.as_bytes().is_empty() {
        said.push(b"; watches with other numbers:")
            .push(moved.as_bytes());
    }
    if set.queued > 0 {
        said.push(b"; ")
            .push_decimal(set.queued as u64)
            .push(b" bytes of events not read at the checkpoint are lost");
    }
    if !said.as_bytes().is_empty() {
        let mut line = Line::<1280>::new();
        line.push(b"ckpt restart: fd ")
            .push_decimal(fd as u64)
            .push(b" ('")
            .push(r.name(i))
            .push(b"'):")
            .push(&said.as_bytes()[1..])
            .push(b"\n");
        sys::write_stderr(line.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_are_remembered_by_absolute_path_and_forgotten() {
        let fd = sys::inotify_init(libc::IN_CLOEXEC).expect("inotify_init1");
        // SAFETY: a NUL-terminated path.
        let wd = unsafe { inotify_add_watch(fd, c".".as_ptr(), libc::IN_CREATE) };
        assert!(wd > 0);
        let mine = |k: &usize| {
            slot_path(*k).is_some()
                && SLOTS[*k].fd.load(Ordering::Relaxed) == fd
                && SLOTS[*k].wd.load(Ordering::Relaxed) == wd
        };
        let k = (0..WATCH_SLOTS).find(mine).expect("a remembered watch");
        let path = slot_path(k).unwrap();
        assert!(
            path.starts_with(b"/") && path.ends_with(b"/.\0"),
            "{path:?}"
        );
        assert_eq!(
            sys::path_identity(path, true),
            sys::path_identity(b".\0", true)
        );
        assert_eq!(inotify_rm_watch(fd, wd), 0);
        assert!(slot_path(k).is_none());
        sys::close(fd);
    }

    #[test]
    fn inotify_fdinfo_lines() {
        let w = parse_inotify_watch(
            b"inotify wd:1a ino:3c4a7 sdev:fe00001 mask:8000102 ignored_mask:0 \
              fhandle-bytes:8 fhandle-type:1 f_handle:a7c4030000000000",
        )
        .unwrap();
        assert_eq!((w.wd, w.ino, w.mask), (0x1a, 0x3c4a7, 0x800_0102));
        assert_eq!(w.dev, libc::makedev(254, 1));
        assert!(parse_inotify_watch(b"pos:\t0").is_none());
    }
}
