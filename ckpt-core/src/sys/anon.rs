//! eventfd, timerfd, signalfd, epoll and inotify descriptors.

use core::ffi::c_int;

use super::*;

/// A new eventfd with `count` and `flags` (`EFD_*`). Signal-safe.
pub fn eventfd(count: u32, flags: c_int) -> SysResult<c_int> {
    // SAFETY: plain syscall; touches no memory.
    check(unsafe { libc::syscall(libc::SYS_eventfd2, count, flags) }).map(|fd| fd as c_int)
}

const NS: u64 = 1_000_000_000;

fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / NS) as libc::time_t,
        tv_nsec: (ns % NS) as libc::c_long,
    }
}

fn nanoseconds(t: &libc::timespec) -> u64 {
    (t.tv_sec.max(0) as u64)
        .saturating_mul(NS)
        .saturating_add(t.tv_nsec.max(0) as u64)
}

/// `clock_gettime(clock)` in nanoseconds. Signal-safe.
pub fn clock_ns(clock: c_int) -> SysResult<u64> {
    let mut ts = timespec(0);
    // SAFETY: the kernel writes one timespec into `ts`.
    check(unsafe { libc::syscall(libc::SYS_clock_gettime, clock, &mut ts) })?;
    Ok(nanoseconds(&ts))
}

/// A new timerfd on `clock` with `flags` (`TFD_*`). Signal-safe.
pub fn timerfd_create(clock: c_int, flags: c_int) -> SysResult<c_int> {
    // SAFETY: plain syscall; touches no memory.
    check(unsafe { libc::syscall(libc::SYS_timerfd_create, clock, flags) }).map(|fd| fd as c_int)
}

/// Arms timerfd `fd` (`flags`: `TFD_TIMER_*`): first expiry `value_ns` (0 disarms), then
/// every `interval_ns`. Signal-safe.
pub fn timerfd_settime(fd: c_int, flags: c_int, value_ns: u64, interval_ns: u64) -> SysResult<()> {
    let new = libc::itimerspec {
        it_interval: timespec(interval_ns),
        it_value: timespec(value_ns),
    };
    // SAFETY: the kernel reads one itimerspec; no old value is asked for.
    check(unsafe {
        libc::syscall(
            libc::SYS_timerfd_settime,
            fd,
            flags,
            &new,
            core::ptr::null_mut::<libc::itimerspec>(),
        )
    })
    .map(drop)
}

/// Timerfd `fd`'s time to its next expiry and its interval, in nanoseconds. The kernel
/// counts the expirations of an interval timer that fired since it was last read into its
/// unread ticks first. Signal-safe.
pub fn timerfd_gettime(fd: c_int) -> SysResult<(u64, u64)> {
    let mut cur = libc::itimerspec {
        it_interval: timespec(0),
        it_value: timespec(0),
    };
    // SAFETY: the kernel writes one itimerspec into `cur`.
    check(unsafe { libc::syscall(libc::SYS_timerfd_gettime, fd, &mut cur) })?;
    Ok((nanoseconds(&cur.it_value), nanoseconds(&cur.it_interval)))
}

/// `TFD_IOC_SET_TICKS`: timerfd `fd` has `ticks` (> 0) unread expirations. Needs a kernel
/// with `CONFIG_CHECKPOINT_RESTORE` (ENOTTY otherwise). Signal-safe.
pub fn timerfd_set_ticks(fd: c_int, ticks: u64) -> SysResult<()> {
    const TFD_IOC_SET_TICKS: libc::c_ulong = 0x4008_5400; // _IOW('T', 0, u64)
                                                          // SAFETY: the kernel reads one u64 from `ticks`.
    check(unsafe { libc::ioctl(fd, TFD_IOC_SET_TICKS, &ticks) } as libc::c_long).map(drop)
}

/// A new signalfd taking the signals of `mask` (bit `n - 1` for signal `n`), with `flags`
/// (`SFD_*`). Signal-safe.
pub fn signalfd(mask: u64, flags: c_int) -> SysResult<c_int> {
    // SAFETY: the kernel reads 8 bytes of mask from `mask`.
    check(unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask, 8usize, flags) })
        .map(|fd| fd as c_int)
}

/// A new epoll set with `flags` (`EPOLL_CLOEXEC`). Signal-safe.
pub fn epoll_create(flags: c_int) -> SysResult<c_int> {
    // SAFETY: plain syscall; touches no memory.
    check(unsafe { libc::syscall(libc::SYS_epoll_create1, flags) }).map(|fd| fd as c_int)
}

/// Adds descriptor `fd` to epoll set `ep` with `events` and `data`. Signal-safe.
pub fn epoll_add(ep: c_int, fd: c_int, events: u32, data: u64) -> SysResult<()> {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: the kernel reads one epoll_event from `event`.
    check(unsafe { libc::syscall(libc::SYS_epoll_ctl, ep, libc::EPOLL_CTL_ADD, fd, &mut event) })
        .map(drop)
}

/// Whether descriptor `fd` of this process is the file that the `nth` watch (from 0) added
/// as `tfd` to epoll set `ep` watches (`kcmp(KCMP_EPOLL_TFD)`); `Err` where kcmp is not
/// available, ENOENT when there is no such watch. Signal-safe.
pub fn epoll_watches(ep: c_int, tfd: u32, nth: u32, fd: c_int) -> SysResult<bool> {
    const KCMP_EPOLL_TFD: libc::c_long = 7;
    #[repr(C)]
    struct Slot {
        efd: u32,
        tfd: u32,
        toff: u32,
    }
    let slot = Slot {
        efd: ep as u32,
        tfd,
        toff: nth,
    };
    let pid = super::getpid() as libc::c_long;
    // SAFETY: kcmp reads one kcmp_epoll_slot from `slot`; it compares, nothing changes.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, fd, &slot) };
    check(r).map(|v| v == 0)
}

/// A new inotify instance with `flags` (`IN_*`). Signal-safe.
pub fn inotify_init(flags: c_int) -> SysResult<c_int> {
    // SAFETY: plain syscall; touches no memory.
    check(unsafe { libc::syscall(libc::SYS_inotify_init1, flags) }).map(|fd| fd as c_int)
}

/// Watches `path` (NUL-terminated) with `mask` in inotify instance `fd`; the watch
/// descriptor. Signal-safe.
pub fn inotify_add(fd: c_int, path: &[u8], mask: u32) -> SysResult<c_int> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: `path` is NUL-terminated (checked); the kernel only reads it.
    check(unsafe { libc::syscall(libc::SYS_inotify_add_watch, fd, path.as_ptr(), mask) })
        .map(|wd| wd as c_int)
}

/// Removes watch `wd` from inotify instance `fd`. Signal-safe.
pub fn inotify_rm(fd: c_int, wd: c_int) -> SysResult<()> {
    // SAFETY: plain syscall; touches no memory.
    check(unsafe { libc::syscall(libc::SYS_inotify_rm_watch, fd, wd) }).map(drop)
}

/// The device and inode `path` (NUL-terminated) names, following a last symbolic link
/// when `follow`. Signal-safe.
pub fn path_identity(path: &[u8], follow: bool) -> SysResult<(u64, u64)> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `path` is NUL-terminated; the kernel writes one `struct stat` into `st`.
    check(unsafe {
        libc::syscall(
            libc::SYS_newfstatat,
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut st,
            flags,
        )
    })?;
    Ok((st.st_dev, st.st_ino))
}

/// How many bytes can be read from `fd` now (`FIONREAD`). Signal-safe.
pub fn readable_bytes(fd: c_int) -> SysResult<u32> {
    let mut n: c_int = 0;
    // SAFETY: the kernel writes one int into `n`.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } as libc::c_long)?;
    Ok(n.max(0) as u32)
}

/// Reads from `fd` into `buf` once; the bytes read. Signal-safe.
pub fn read_once(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    check(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } as libc::c_long)
}

/// The current directory into `buf` (NUL-terminated by the kernel); its length without the
/// NUL. Signal-safe.
pub fn current_dir(buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = check(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })?;
    Ok(n.saturating_sub(1))
}
