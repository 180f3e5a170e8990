//! Open descriptors: recorded at the checkpoint (while the other threads are stopped) from
//! `/proc/self/fd`, `fdinfo` and `fstat`, grouped by open file description with
//! `kcmp(KCMP_FILE)`; opened again by the restarted process before its other threads go on.
//!
//! Regular files, directories, and `/dev/null`, `zero`, `full`, `random`, `urandom` are
//! opened again by path. Standard input, output and error (0–2) are the restart's own, moved
//! to the saved offset when they are the same file, reopened when the restart's is closed.
//! The other kinds are made again from saved state by the code of their family, one module
//! each ([`kinds`]): pipes and FIFOs, sockets, eventfd and its family, epoll, deleted files
//! and memfds, terminals. A kind none of them saves fails the checkpoint, naming the
//! descriptor, or with `CKPT_FD_POLICY=close` is recorded as closed. ckpt's own
//! descriptors (the request socket, a writer's answer, tracer pipes, the listing itself) are
//! never recorded.
//!
//! A restart checks everything before it changes anything: a path that cannot be opened, or
//! a descriptor its kind's code finds it cannot make again, ends it (status
//! [`EXIT_FILE_MISSING`]); a file replaced or truncated below its offset is one warning line,
//! or a refusal under `CKPT_STRICT_FILES` ([`EXIT_FILE_CHANGED`]). Then every record is put
//! in place in increasing order, epoll sets last (their watches name the others).
//!
//! File locks (`flock`, POSIX, OFD: the `lock:` lines of fdinfo) of reopened files and of
//! deleted files and memfds are saved after the record's kind-specific values and taken
//! again, without waiting, once every descriptor is in place (closing a descriptor of a
//! file gives back the process's POSIX locks on it). Those of reopened files are tested
//! first, before anything changes: one another process holds ends the restart with
//! [`EXIT_FILE_MISSING`] and a line naming the descriptor, the lock and the holder.
//!
//! The steps, one module each: `capture` (recording at a checkpoint), `restore` (opening
//! again at a restart, phase by phase), `locks` (file locks saved and taken again), `say`
//! (the one-line reports); the families' own code is in `kinds`.
//!
//! Everything here is signal-safe: raw system calls, reserved memory, no allocation.

use crate::line::Line;

mod capture;
mod kinds;
mod locks;
mod restore;
mod say;

pub use capture::{capture, note_standard_descriptors, release_data, Captured, SaveOptions};
pub(crate) use kinds::{send_window_change, window_change_timer, Restoring, Saving};
pub use restore::{restore, RestoreOptions};
pub(crate) use say::push_size;
pub use say::refused_name;
// For the kinds' code (`crate::files::…`, `super::…`).
use capture::DATA_USED;
use restore::{LATE, LATE_DUP, PLACED};
use say::say_fd;

/// Room for the saved bytes of descriptors (`Arena::fd_data`): address space only, committed
/// as far as a checkpoint uses it.
pub const FD_DATA_MAX: usize = 1 << 30;

/// Most descriptors a checkpoint records.
pub const MAX_FDS: usize = 65536;

/// Restart status: a file the program had open cannot be opened again (README).
pub const EXIT_FILE_MISSING: i32 = 77;
/// Restart status: under `CKPT_STRICT_FILES`, a file the program had open was replaced or
/// truncated (README).
pub const EXIT_FILE_CHANGED: i32 = 78;

/// Why the descriptors could not be recorded.
#[derive(Clone, Copy, Debug)]
pub enum FdError {
    /// `/proc/self/fd` could not be listed.
    List(i32),
    /// More descriptors (or longer paths) than the table holds.
    TooMany,
    /// This descriptor is of a kind a checkpoint cannot save yet ([`refused_name`] says
    /// what it is).
    Unsupported(u32),
    /// This descriptor's state could not be saved: what went wrong, and the errno (0 for
    /// none). [`refused_name`] says what it is.
    Save(u32, &'static str, i32),
    /// The descriptors' saved bytes exceed `FD_DATA_MAX`.
    DataFull(u32),
    /// This deleted file (or memfd, when true) holds more bytes (the first number) than
    /// `CKPT_MAX_DELETED` (the second) lets a checkpoint save.
    TooLarge(u32, bool, u64, u64),
}

impl FdError {
    pub fn describe(self) -> (&'static str, i32) {
        match self {
            FdError::List(e) => ("cannot list the open descriptors in /proc/self/fd", e),
            FdError::TooMany => ("more open descriptors than ckpt records (65536)", 0),
            FdError::Unsupported(_) => (
                "cannot be checkpointed yet (CKPT_FD_POLICY=close leaves such descriptors \
                 closed at the restart)",
                0,
            ),
            FdError::Save(_, what, errno) => (what, errno),
            FdError::DataFull(_) => (
                "cannot be saved: the descriptors' saved bytes would exceed 1 GiB",
                0,
            ),
            FdError::TooLarge(..) => ("is a deleted file larger than CKPT_MAX_DELETED", 0),
        }
    }

    /// What went wrong, as [`describe`](Self::describe) says it, with the sizes where it
    /// has them: "is a deleted file of 5 MiB, more than CKPT_MAX_DELETED (1 MiB)".
    pub fn push_what<const N: usize>(self, line: &mut Line<N>) {
        match self {
            FdError::TooLarge(_, memfd, size, cap) => {
                line.push(if memfd {
                    b"is a memfd of ".as_slice()
                } else {
                    b"is a deleted file of "
                });
                push_size(line, size);
                line.push(b", more than CKPT_MAX_DELETED (");
                push_size(line, cap);
                line.push(b")");
            }
            _ => {
                line.push(self.describe().0.as_bytes());
            }
        }
    }

    /// The descriptor the error names.
    pub fn descriptor(self) -> Option<u32> {
        match self {
            FdError::Unsupported(fd)
            | FdError::Save(fd, ..)
            | FdError::DataFull(fd)
            | FdError::TooLarge(fd, ..) => Some(fd),
            _ => None,
        }
    }
}
