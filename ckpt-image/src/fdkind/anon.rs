//! eventfd, timerfd, signalfd, epoll and inotify: their saved values.

/// An eventfd (`FD_KIND_EVENTFD`): its counter and whether it counts as a semaphore.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFd {
    pub count: u64,
    /// 1 for `EFD_SEMAPHORE`.
    pub semaphore: u32,
    pub reserved: u32,
}

crate::record_layout!(EventFd {
    count: u64,
    semaphore: u32,
    reserved: u32,
});

/// A timerfd (`FD_KIND_TIMERFD`): its clock, how it was set, and where it stood.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerFd {
    /// `CLOCK_REALTIME`, `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME`, …
    pub clockid: u32,
    /// `TFD_TIMER_ABSTIME` (1), `TFD_TIMER_CANCEL_ON_SET` (2), as last set.
    pub settime_flags: u32,
    /// Expirations that had happened but were not read yet.
    pub ticks: u64,
    /// Nanoseconds to the next expiry at the checkpoint; 0: disarmed.
    pub value_ns: u64,
    /// Nanoseconds between expiries; 0: it fires once.
    pub interval_ns: u64,
    /// The next expiry as a time of its clock (nanoseconds since the epoch), for an
    /// absolute timer on `CLOCK_REALTIME` (or its alarm), which stays absolute; else 0.
    pub absolute_ns: u64,
}

crate::record_layout!(TimerFd {
    clockid: u32,
    settime_flags: u32,
    ticks: u64,
    value_ns: u64,
    interval_ns: u64,
    absolute_ns: u64,
});

/// `TimerFd::settime_flags`: an absolute expiry time.
pub const TFD_TIMER_ABSTIME: u32 = 1;
/// `TimerFd::settime_flags`: reads fail with ECANCELED when the clock is set.
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

/// A signalfd (`FD_KIND_SIGNALFD`): the signals it takes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalFd {
    /// Bit `n - 1` for signal `n`.
    pub mask: u64,
}

crate::record_layout!(SignalFd { mask: u64 });

/// An epoll set (`FD_KIND_EPOLL`): how many watches it has; the watches themselves are its
/// saved bytes, one [`EpollWatch`] each.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpollSet {
    pub watches: u32,
    /// Of those, how many watch a file no descriptor of the process held at the checkpoint
    /// (a restart cannot watch it again).
    pub unheld: u32,
}

crate::record_layout!(EpollSet {
    watches: u32,
    unheld: u32,
});

/// One watch of an epoll set (its `fdinfo` line `tfd: N events: X data: Y … ino: I sdev: D`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpollWatch {
    /// The descriptor number the watch was added with (`epoll_ctl` names it by this).
    pub tfd: u32,
    /// A descriptor of the process that held the watched file at the checkpoint: `tfd`
    /// unless that number was closed (and perhaps reused) while a copy of it stayed open;
    /// [`EPOLL_UNHELD`] when none did.
    pub holder: u32,
    /// `EPOLLIN`, …, with `EPOLLET`, `EPOLLONESHOT`, `EPOLLEXCLUSIVE`.
    pub events: u32,
    pub reserved: u32,
    /// The program's `epoll_data`.
    pub data: u64,
    /// The watched file's inode and device (`st_dev` encoding).
    pub ino: u64,
    pub dev: u64,
}

crate::record_layout!(EpollWatch {
    tfd: u32,
    holder: u32,
    events: u32,
    reserved: u32,
    data: u64,
    ino: u64,
    dev: u64,
});

/// `EpollWatch::holder`: no descriptor of the process held the watched file.
pub const EPOLL_UNHELD: u32 = u32::MAX;

/// An inotify instance (`FD_KIND_INOTIFY`): how many watches it has; the watches are its
/// saved bytes, each an [`InotifyWatch`] followed by its path, padded to 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inotify {
    pub watches: u32,
    /// Of those, how many have no known path (a restart cannot watch them again).
    pub unknown: u32,
    /// Bytes of events queued and not read at the checkpoint (lost).
    pub queued: u32,
    pub reserved: u32,
}

crate::record_layout!(Inotify {
    watches: u32,
    unknown: u32,
    queued: u32,
    reserved: u32,
});

/// One watch of an inotify instance, followed by `path_len` bytes of its path.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InotifyWatch {
    /// The watch descriptor the program knows it by.
    pub wd: u32,
    /// The events and flags it watches for (fdinfo's `mask`).
    pub mask: u32,
    /// `IN_DONT_FOLLOW` and `IN_ONLYDIR` as the program added it.
    pub flags: u32,
    /// 0: its path is not known.
    pub path_len: u32,
    /// The watched inode and its device (`st_dev` encoding).
    pub ino: u64,
    pub dev: u64,
}

crate::record_layout!(InotifyWatch {
    wd: u32,
    mask: u32,
    flags: u32,
    path_len: u32,
    ino: u64,
    dev: u64,
});

impl InotifyWatch {
    /// The bytes a watch with a path of `path_len` bytes takes in the saved bytes.
    pub const fn stored_len(path_len: usize) -> usize {
        core::mem::size_of::<InotifyWatch>() + path_len.div_ceil(8) * 8
    }
}
