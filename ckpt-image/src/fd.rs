//! A descriptor's record: one per descriptor the program had open at the checkpoint, in
//! increasing descriptor order. It says what the descriptor was (its kind, the path the
//! kernel gave for it, the identity of the file behind it), how it was open (flags, offset,
//! close-on-exec, which other descriptors shared its open file description) and what a
//! restart does with it ([`FdRecord::action`]).
//!
//! Kinds that cannot be opened by a path (pipes, sockets, eventfd and its family, deleted
//! files, terminals) are made again from saved state ([`FD_ACTION_REBUILD`]): small
//! kind-specific values (`aux_*`, layouts in [`crate::fdkind`]) in the names area after
//! the path, and bytes of any length (queued pipe data, a deleted file's contents, an epoll
//! set's watches) in memory ckpt reserves in the process (`data_*`), which is part of the
//! image like all memory: checksummed, compressed and verified with it.

/// Per-descriptor state. The path (`readlink` of `/proc/self/fd/N`) is in the names area at
/// `name_offset`, `name_len` bytes, without a NUL.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdRecord {
    /// The descriptor number.
    pub fd: u32,
    /// `FD_KIND_*`.
    pub kind: u32,
    /// `FD_ACTION_*`: what the restart does with it.
    pub action: u32,
    /// The open flags (`O_ACCMODE`, `O_APPEND`, `O_NONBLOCK`, … as `/proc/self/fdinfo`
    /// shows them), without `O_CLOEXEC`.
    pub flags: u32,
    /// `FD_CLOEXEC` when the descriptor is closed on exec, [`FD_LOCKED`] when its file had
    /// locks of the program's (`FD_FLAGS`).
    pub fd_flags: u32,
    /// The index in the table of the first descriptor that shares this one's open file
    /// description (its own index when it is the first): dup'ed descriptors share their
    /// offset and flags.
    pub group: u32,
    /// The file offset (for a directory, the position cookie of its stream).
    pub pos: u64,
    /// The identity of the file behind it, from `fstat`.
    pub dev: u64,
    pub ino: u64,
    pub rdev: u64,
    pub size: u64,
    /// Last modification, nanoseconds since the epoch.
    pub mtime_ns: u64,
    pub mode: u32,
    /// The mount id of `/proc/self/fdinfo`.
    pub mnt_id: u32,
    pub name_offset: u32,
    pub name_len: u32,
    /// Kind-specific values in the names area (layouts in [`crate::fdkind`]; 0 and 0 for
    /// none).
    pub aux_offset: u32,
    pub aux_len: u32,
    /// Saved bytes (queued pipe data, a deleted file's contents, …) at this offset in the
    /// process's own descriptor data memory, which the image holds like any other memory
    /// (0 and 0 for none).
    pub data_offset: u32,
    pub data_len: u32,
}

crate::record_layout!(FdRecord {
    fd: u32,
    kind: u32,
    action: u32,
    flags: u32,
    fd_flags: u32,
    group: u32,
    pos: u64,
    dev: u64,
    ino: u64,
    rdev: u64,
    size: u64,
    mtime_ns: u64,
    mode: u32,
    mnt_id: u32,
    name_offset: u32,
    name_len: u32,
    aux_offset: u32,
    aux_len: u32,
    data_offset: u32,
    data_len: u32,
});

pub const FD_SIZE: usize = core::mem::size_of::<FdRecord>();

/// `FdRecord::fd_flags`: closed on exec (the kernel's `FD_CLOEXEC`).
pub const FD_CLOEXEC: u32 = 1;
/// `FdRecord::fd_flags`: `/proc/self/fdinfo` listed locks on its file (`flock` or OFD locks
/// of its description, POSIX locks of the process), which a restart does not take again.
pub const FD_LOCKED: u32 = 2;
/// `FdRecord::fd_flags`: signal-driven I/O (`O_ASYNC`) went to the process itself
/// (`F_SETOWN` to its own pid, the default `SIGIO`), which the restart sets up again for
/// the restarted process. `O_ASYNC` without it (another owner, a thread, another signal)
/// is not set up again, and the restart says so.
pub const FD_ASYNC_OWN: u32 = 4;
/// Every `fd_flags` bit this format defines.
pub const FD_FLAGS: u32 = FD_CLOEXEC | FD_LOCKED | FD_ASYNC_OWN;
const _: () = assert!(FD_SIZE.is_multiple_of(8));

/// A regular file that still has its name.
pub const FD_KIND_REGULAR: u32 = 1;
/// A directory.
pub const FD_KIND_DIRECTORY: u32 = 2;
/// `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random` or `/dev/urandom`: reopened by path.
pub const FD_KIND_DEVICE: u32 = 3;
/// A pipe (`pipe:[INODE]`).
pub const FD_KIND_PIPE: u32 = 4;
/// A named pipe.
pub const FD_KIND_FIFO: u32 = 5;
/// A socket (`socket:[INODE]`).
pub const FD_KIND_SOCKET: u32 = 6;
/// An anonymous inode: eventfd, timerfd, signalfd, epoll, inotify, pidfd, io_uring …
pub const FD_KIND_ANON: u32 = 7;
/// Another character or block device (not a terminal).
pub const FD_KIND_OTHER_DEVICE: u32 = 8;
/// A regular file or directory that was deleted.
pub const FD_KIND_DELETED: u32 = 9;
/// A memfd.
pub const FD_KIND_MEMFD: u32 = 10;
/// Anything else (pidfd, io_uring, perf, bpf, userfaultfd, fanotify …).
pub const FD_KIND_OTHER: u32 = 11;
/// A terminal (a character device that answers `TCGETS`).
pub const FD_KIND_TERMINAL: u32 = 12;
/// `anon_inode:[eventfd]`.
pub const FD_KIND_EVENTFD: u32 = 13;
/// `anon_inode:[timerfd]`.
pub const FD_KIND_TIMERFD: u32 = 14;
/// `anon_inode:[signalfd]`.
pub const FD_KIND_SIGNALFD: u32 = 15;
/// `anon_inode:[eventpoll]`.
pub const FD_KIND_EPOLL: u32 = 16;
/// `anon_inode:inotify`.
pub const FD_KIND_INOTIFY: u32 = 17;
/// The largest `FD_KIND_*`.
pub const FD_KIND_MAX: u32 = FD_KIND_INOTIFY;

/// The restart opens the path again (flags, offset, close-on-exec, shared descriptions).
pub const FD_ACTION_REOPEN: u32 = 1;
/// Standard input, output or error (0–2): the restart's own, moved to the saved offset when
/// it is the same file, and the saved one reopened when the restart's is closed.
pub const FD_ACTION_STDIO: u32 = 2;
/// Not saved (`CKPT_FD_POLICY=close`): the restart leaves it closed and says so.
pub const FD_ACTION_CLOSED: u32 = 3;
/// Made again from its saved state (`aux_*`, `data_*`) by its kind's code.
pub const FD_ACTION_REBUILD: u32 = 4;
/// The largest `FD_ACTION_*`.
pub const FD_ACTION_MAX: u32 = FD_ACTION_REBUILD;

/// Whether a descriptor of this kind can be opened again by its path.
pub const fn kind_reopens(kind: u32) -> bool {
    matches!(kind, FD_KIND_REGULAR | FD_KIND_DIRECTORY | FD_KIND_DEVICE)
}

/// A short name of the kind, for messages and `ckpt info`.
pub const fn kind_name(kind: u32) -> &'static str {
    match kind {
        FD_KIND_REGULAR => "file",
        FD_KIND_DIRECTORY => "directory",
        FD_KIND_DEVICE => "device",
        FD_KIND_PIPE => "pipe",
        FD_KIND_FIFO => "fifo",
        FD_KIND_SOCKET => "socket",
        FD_KIND_ANON => "anon-inode",
        FD_KIND_OTHER_DEVICE => "other-device",
        FD_KIND_DELETED => "deleted-file",
        FD_KIND_MEMFD => "memfd",
        FD_KIND_TERMINAL => "terminal",
        FD_KIND_EVENTFD => "eventfd",
        FD_KIND_TIMERFD => "timerfd",
        FD_KIND_SIGNALFD => "signalfd",
        FD_KIND_EPOLL => "epoll",
        FD_KIND_INOTIFY => "inotify",
        _ => "other",
    }
}

/// The devices a restart opens again by path (`major 1`): null, zero, full, random,
/// urandom.
pub const fn reopenable_device(rdev: u64) -> bool {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    major == 1 && matches!(minor, 3 | 5 | 7 | 8 | 9)
}

/// Terminals: the virtual consoles and serial lines (`major 4`), `/dev/tty` and
/// `/dev/console` (`5:0`, `5:1`), pseudo-terminal slaves (`136`–`143`). Not `/dev/ptmx`, the
/// pseudo-terminal master.
pub const fn terminal_device(rdev: u64) -> bool {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    major == 4 || (major == 5 && minor <= 1) || (major >= 136 && major <= 143)
}

impl FdRecord {
    /// Whether the descriptor is closed on exec.
    pub fn cloexec(&self) -> bool {
        self.fd_flags & FD_CLOEXEC != 0
    }

    /// Its path among `names` (the names area), empty when out of range.
    pub fn name<'a>(&self, names: &'a [u8]) -> &'a [u8] {
        let start = self.name_offset as usize;
        names
            .get(start..start.saturating_add(self.name_len as usize))
            .unwrap_or(&[])
    }

    /// The kind-specific values among `names` (the names area), empty when none or out of
    /// range.
    pub fn aux<'a>(&self, names: &'a [u8]) -> &'a [u8] {
        let start = self.aux_offset as usize;
        names
            .get(start..start.saturating_add(self.aux_len as usize))
            .unwrap_or(&[])
    }

    /// Whether it had signal-driven I/O (`O_ASYNC`) at the checkpoint.
    pub fn signals_io(&self) -> bool {
        self.flags & 0o20000 != 0 // O_ASYNC
    }

    /// Whether its file had locks of the program's at the checkpoint.
    pub fn locked(&self) -> bool {
        self.fd_flags & FD_LOCKED != 0
    }
}
