//! The kinds of descriptor that are made again from saved state, one module per family:
//! [`pipe`] (pipes, FIFOs), [`socket`], [`anon`] (eventfd, timerfd, signalfd, inotify),
//! [`epoll`], [`deleted`] (deleted files, memfds), [`tty`] (terminals). Each has three
//! entry points, called from `files`:
//!
//! - `save(&mut Saving) -> Result<bool, FdError>` at the checkpoint, with the record's
//!   common fields filled in: `Ok(true)` when it saved what a restart needs (kind-specific
//!   values with [`Saving::put_aux`], bytes with [`Saving::data_room`] and
//!   [`Saving::commit_data`]); `Ok(false)` when this descriptor cannot be saved (the
//!   policy then refuses the checkpoint or records it closed); `Err` for a failure worth its
//!   own message.
//! - `check(&Restoring, i)` at the restart, before anything has changed: `Err` when record
//!   `i` cannot be made again (a port taken, a FIFO gone), which ends the restart with
//!   nothing changed.
//! - `rebuild(&mut Restoring, i)`: makes record `i` again and puts it in place
//!   ([`Restoring::place`]), and with it any other record it makes at once (the other end
//!   of a pipe). Records are rebuilt in increasing order, epoll sets after all others;
//!   descriptors that share an open file description with an earlier record are copied
//!   from it by `files`, not rebuilt.
//!
//! Everything here is signal-safe: raw system calls, reserved memory, no allocation.

use ckpt_image::{FdRecord, Record, FD_ACTION_REBUILD};
use ckpt_image::{FD_KIND_DELETED, FD_KIND_EPOLL, FD_KIND_EVENTFD, FD_KIND_FIFO};
use ckpt_image::{FD_KIND_INOTIFY, FD_KIND_MEMFD, FD_KIND_PIPE, FD_KIND_SIGNALFD};
use ckpt_image::{FD_KIND_SOCKET, FD_KIND_TERMINAL, FD_KIND_TIMERFD};

use super::{FdError, SaveOptions};
use crate::sys;

mod anon;
mod deleted;
mod epoll;
mod pipe;
mod socket;
mod tty;

/// Saves the state of `s.rec`, whose kind cannot be opened by path. Signal-safe.
pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    match s.rec.kind {
        FD_KIND_PIPE | FD_KIND_FIFO => pipe::save(s),
        FD_KIND_SOCKET => socket::save(s),
        FD_KIND_EVENTFD | FD_KIND_TIMERFD | FD_KIND_SIGNALFD | FD_KIND_INOTIFY => anon::save(s),
        FD_KIND_EPOLL => epoll::save(s),
        FD_KIND_DELETED | FD_KIND_MEMFD => deleted::save(s),
        FD_KIND_TERMINAL => tty::save(s),
        _ => Ok(false),
    }
}

/// Saves what a standard descriptor (0–2, the restart's own) needs beyond its record: a
/// terminal's settings. Signal-safe.
pub(super) fn save_stdio(s: &mut Saving) -> Result<(), FdError> {
    match s.rec.kind {
        FD_KIND_TERMINAL => tty::save_stdio(s),
        _ => Ok(()),
    }
}

/// Once every record is in place. Signal-safe.
pub(super) fn finish(r: &Restoring) {
    tty::finish(r);
}

pub(crate) use tty::{send_window_change, window_change_timer};

/// Whether record `i` (`FD_ACTION_REBUILD`) can be made again. Signal-safe.
pub(super) fn check(r: &Restoring, i: usize) -> Result<(), Failure> {
    match r.fds[i].kind {
        FD_KIND_PIPE | FD_KIND_FIFO => pipe::check(r, i),
        FD_KIND_SOCKET => socket::check(r, i),
        FD_KIND_EVENTFD | FD_KIND_TIMERFD | FD_KIND_SIGNALFD | FD_KIND_INOTIFY => anon::check(r, i),
        FD_KIND_EPOLL => epoll::check(r, i),
        FD_KIND_DELETED | FD_KIND_MEMFD => deleted::check(r, i),
        FD_KIND_TERMINAL => tty::check(r, i),
        _ => Err(UNKNOWN_KIND),
    }
}

/// Makes record `i` again and puts it in place. Signal-safe.
pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    match r.fds[i].kind {
        FD_KIND_PIPE | FD_KIND_FIFO => pipe::rebuild(r, i),
        FD_KIND_SOCKET => socket::rebuild(r, i),
        FD_KIND_EVENTFD | FD_KIND_TIMERFD | FD_KIND_SIGNALFD | FD_KIND_INOTIFY => {
            anon::rebuild(r, i)
        }
        FD_KIND_EPOLL => epoll::rebuild(r, i),
        FD_KIND_DELETED | FD_KIND_MEMFD => deleted::rebuild(r, i),
        FD_KIND_TERMINAL => tty::rebuild(r, i),
        _ => Err(UNKNOWN_KIND),
    }
}

/// Whether records of this kind are rebuilt after all others (their state names them).
pub(super) fn late(kind: u32) -> bool {
    kind == FD_KIND_EPOLL
}

/// Why a record cannot be made again: what went wrong and the errno (0: none). `files`
/// prints "ckpt restart: fd N ('NAME') WHAT: ERRNO (errno E)" (`what` such as "cannot be
/// made again: its port is taken").
#[derive(Clone, Copy, Debug)]
pub(crate) struct Failure {
    pub what: &'static [u8],
    pub errno: i32,
}

impl Failure {
    pub const fn new(what: &'static [u8], errno: i32) -> Failure {
        Failure { what, errno }
    }
}

const UNKNOWN_KIND: Failure = Failure::new(b"is of a kind this ckpt does not know", 0);

/// A descriptor being saved, for its kind's `save`.
#[allow(dead_code)] // (until issue 13's kinds use all of it)
pub(crate) struct Saving<'a> {
    /// Its number in this process.
    pub fd: i32,
    /// Its record, common fields filled in (kind, flags, offset, identity, path).
    pub rec: &'a mut FdRecord,
    /// The records of the lower-numbered descriptors, saved already (their `action` set):
    /// the first of a pipe's ends saves its queued bytes and the others see that it did; a
    /// second open of a deleted file shares the first's saved contents.
    pub earlier: &'a [FdRecord],
    /// Its `/proc/self/fdinfo` text.
    pub fdinfo: &'a [u8],
    /// The names area, used up to `names_end` (the record's path ends there).
    pub names: &'a mut [u8],
    pub names_end: usize,
    /// The saved bytes' memory, used up to `data_end`.
    pub data: &'a mut [u8],
    pub data_end: usize,
    /// 1 MiB of scratch memory.
    pub scratch: &'a mut [u8],
    pub options: SaveOptions,
}

#[allow(dead_code)] // (until issue 13's kinds use all of it)
impl Saving<'_> {
    /// Its path (`readlink` of `/proc/self/fd/N`).
    pub fn name(&self) -> &[u8] {
        let start = self.rec.name_offset as usize;
        &self.names[start..start + self.rec.name_len as usize]
    }

    /// The value of `key` in its fdinfo (`pos`, `flags`, `eventfd-count`, …), without the
    /// blanks around it.
    pub fn field(&self, key: &[u8]) -> Option<&[u8]> {
        ckpt_image::procfs::status_value(self.fdinfo, key)
    }

    /// Stores `value` as the record's kind-specific values (once per record).
    pub fn put_aux<T: Record>(&mut self, value: &T) -> Result<(), FdError> {
        let bytes = ckpt_image::record_bytes(core::slice::from_ref(value));
        let start = self.names_end;
        let end = start + bytes.len();
        if end > self.names.len() || end > u32::MAX as usize {
            return Err(FdError::TooMany);
        }
        self.names[start..end].copy_from_slice(bytes);
        (self.rec.aux_offset, self.rec.aux_len) = (start as u32, bytes.len() as u32);
        self.names_end = end;
        Ok(())
    }

    /// The free part of the saved bytes' memory, to fill and then [`commit_data`](Self::commit_data).
    pub fn data_room(&mut self) -> &mut [u8] {
        &mut self.data[self.data_end..]
    }

    /// Makes the first `len` bytes of [`data_room`](Self::data_room) the record's saved
    /// bytes (once per record).
    pub fn commit_data(&mut self, len: usize) -> Result<(), FdError> {
        if len > self.data.len() - self.data_end {
            return Err(FdError::DataFull(self.fd as u32));
        }
        (self.rec.data_offset, self.rec.data_len) = (self.data_end as u32, len as u32);
        self.data_end += len;
        super::DATA_USED.fetch_max(self.data_end, core::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// The records of a restarting process, for the kinds' `check` and `rebuild`.
#[allow(dead_code)] // (until issue 13's kinds use all of it)
pub(crate) struct Restoring<'a> {
    pub fds: &'a [FdRecord],
    /// The names area (paths and kind-specific values).
    pub names: &'a [u8],
    /// The saved bytes' memory.
    pub data: &'a [u8],
    /// What the restart does with each record (`files`' plans); `place` marks records put
    /// in place.
    pub plans: &'a mut [u8],
    /// 1 MiB of scratch memory.
    pub scratch: &'a mut [u8],
}

#[allow(dead_code)] // (until issue 13's kinds use all of it)
impl Restoring<'_> {
    /// The path of record `i`.
    pub fn name(&self, i: usize) -> &[u8] {
        self.fds[i].name(self.names)
    }

    /// The kind-specific values of record `i` as a `T`, when they are one.
    pub fn aux<T: Record>(&self, i: usize) -> Option<T> {
        let bytes = self.fds[i].aux(self.names);
        if bytes.len() != core::mem::size_of::<T>() {
            return None;
        }
        ckpt_image::read_record(bytes)
    }

    /// The saved bytes of record `i` (empty when none, or out of range).
    pub fn data(&self, i: usize) -> &[u8] {
        let f = &self.fds[i];
        let start = f.data_offset as usize;
        self.data
            .get(start..start.saturating_add(f.data_len as usize))
            .unwrap_or(&[])
    }

    /// The other records (`FD_ACTION_REBUILD`, not `i`) of the same object as record `i`
    /// (device and inode): the other end of a pipe, other opens of a FIFO.
    pub fn same_object(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let (dev, ino) = (self.fds[i].dev, self.fds[i].ino);
        (0..self.fds.len()).filter(move |&j| {
            j != i
                && self.fds[j].action == FD_ACTION_REBUILD
                && self.fds[j].group as usize == j
                && (self.fds[j].dev, self.fds[j].ino) == (dev, ino)
        })
    }

    /// Puts each `(descriptor, record)` of `made` in place: the descriptor (made just now,
    /// at whatever number the kernel chose) goes to the record's number with its
    /// close-on-exec flag and is closed, unless it is that number already; the record is
    /// marked placed. A made descriptor that sits on the number another one of `made` is
    /// to take is moved out of the way first. On failure the made descriptors not yet
    /// placed are closed.
    pub fn place(&mut self, made: &mut [(i32, usize)]) -> Result<(), Failure> {
        let mut result = Ok(());
        for k in 0..made.len() {
            let (fd, i) = made[k];
            let f = self.fds[i];
            let target = f.fd as i32;
            if result.is_err() {
                sys::close(fd);
                continue;
            }
            for later in made[k + 1..].iter_mut().filter(|m| m.0 == target) {
                match sys::dup_above(target, 0) {
                    Ok(moved) => later.0 = moved,
                    Err(e) => result = Err(Failure::new(b"cannot be put back", e)),
                }
            }
            if result.is_err() {
                sys::close(fd);
                continue;
            }
            let placed = if fd == target {
                sys::set_cloexec(fd, f.cloexec())
            } else {
                let r = sys::dup_to(fd, target, f.cloexec());
                sys::close(fd);
                r
            };
            match placed {
                Ok(()) => self.plans[i] = super::PLACED,
                Err(e) => result = Err(Failure::new(b"cannot be put back", e)),
            }
        }
        result
    }
}
