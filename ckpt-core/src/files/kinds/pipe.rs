//! Pipes and FIFOs: saved as each end's flags and the pipe's capacity, with the pipe's
//! queued bytes once (on the first record of the pipe), copied without consuming them;
//! made again as one pipe for all the records of it.
//!
//! - Saving: `F_GETPIPE_SZ`, then `FIONREAD`; when bytes are queued, `tee` copies them
//!   into a private pipe of the same capacity (never waiting), whose bytes are read into
//!   the saved bytes. An end held only for writing is read through a read end opened for
//!   the moment from `/proc/thread-self/fd/N`. No other cap on the bytes: a pipe holds at
//!   most its capacity (1 MiB unless privileged). A packet-mode (`O_DIRECT`) pipe is not
//!   saved (refused, or left closed under `CKPT_FD_POLICY=close`): its packet boundaries
//!   would be lost.
//! - A pipe: `pipe2`, `F_SETPIPE_SZ` (also when empty), the bytes written back, and each
//!   record given its own end with its own status flags. With only read ends in the
//!   process (the writer was another process's), the write end is closed after the
//!   refill: the program reads the bytes, then the end of file. With only write ends, the
//!   read end is closed: the program gets `EPIPE` (or `SIGPIPE`), which is the truth.
//! - A FIFO: its path opened `O_RDWR | O_NONBLOCK` first as a helper, so that no open
//!   waits for a partner (CRIU's trick), then each record opened with its own flags, the
//!   bytes written back through the helper, and the helper closed. A FIFO whose path is
//!   gone or is no longer a FIFO ends the restart before anything changed.
//! - A capacity the restart may not set (`/proc/sys/fs/pipe-max-size` for an unprivileged
//!   process) is said in one line; when the queued bytes would not fit the pipe it may
//!   make, the restart refuses before anything changed.

use ckpt_image::fdkind::pipe::Pipe;
use ckpt_image::{FdRecord, FD_ACTION_REBUILD, FD_KIND_FIFO};

use super::{Failure, Restoring, Saving};
use crate::files::FdError;
use crate::line::Line;
use crate::sys;

/// Status flags a restart sets again on each end (`F_SETFL`).
const KEPT_FLAGS: i32 = libc::O_NONBLOCK | libc::O_APPEND | libc::O_NOATIME;

/// Flags that only matter when a file is created or opened by a terminal.
const OPEN_ONLY: i32 = libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    let fd = s.fd;
    // A packet-mode pipe: its packet boundaries would be lost, and an end opened again
    // cannot be made packet-mode. Not saved (CKPT_FD_POLICY says what then).
    if s.rec.flags as i32 & libc::O_DIRECT != 0 {
        return Ok(false);
    }
    let size = sys::pipe_size(fd)
        .map_err(|e| FdError::Save(fd as u32, "cannot be saved: its size (F_GETPIPE_SZ)", e))?;
    s.put_aux(&Pipe {
        size: size.min(u32::MAX as usize) as u32,
        reserved: 0,
    })?;
    let rec = &*s.rec;
    // One copy of the bytes per pipe: the first record of it saved them.
    if s.earlier.iter().any(|f| same_pipe(f, rec)) {
        return Ok(true);
    }
    let queued = sys::queued_bytes(fd)
        .map_err(|e| FdError::Save(fd as u32, "cannot be saved: its queued bytes (FIONREAD)", e))?;
    if queued == 0 {
        return Ok(true);
    }
    let n = copy_queued(fd, readable(rec.flags), size, s.data_room())
        .map_err(|(what, e)| FdError::Save(fd as u32, what, e))?;
    s.commit_data(n)?;
    Ok(true)
}

/// Whether `f` is a saved record of the pipe or FIFO of `rec`.
fn same_pipe(f: &FdRecord, rec: &FdRecord) -> bool {
    f.action == FD_ACTION_REBUILD && f.kind == rec.kind && (f.dev, f.ino) == (rec.dev, rec.ino)
}

fn readable(flags: u32) -> bool {
    flags as i32 & libc::O_ACCMODE != libc::O_WRONLY
}

/// Copies the bytes queued in the pipe of `fd` (of capacity `size`) into `room` without
/// consuming them and without waiting; how many. `fd` is read through itself when
/// `readable`, otherwise through a read end opened for the moment.
fn copy_queued(
    fd: i32,
    readable: bool,
    size: usize,
    room: &mut [u8],
) -> Result<usize, (&'static str, i32)> {
    let source = if readable {
        fd
    } else {
        let mut path = Line::<48>::new();
        path.push(b"/proc/thread-self/fd/")
            .push_decimal(fd as u64)
            .push(b"\0");
        sys::open(
            path.as_bytes(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| {
            (
                "cannot be saved: no read end to copy its queued bytes through \
                 (/proc/self/fd)",
                e,
            )
        })?
    };
    let copied = tee_through_private_pipe(source, size, room);
    if source != fd {
        sys::close(source);
    }
    copied
}

fn tee_through_private_pipe(
    source: i32,
    size: usize,
    room: &mut [u8],
) -> Result<usize, (&'static str, i32)> {
    let (r, w) = sys::pipe_with(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .map_err(|e| ("cannot be saved: no pipe to copy its queued bytes into", e))?;
    let result = (|| {
        // `tee` takes a slot of the copy per slot of the pipe: the copy needs as many.
        if sys::pipe_size(w).unwrap_or(0) < size {
            sys::set_pipe_size(w, size).map_err(|e| {
                (
                    "cannot be saved: no pipe as large as it to copy its queued bytes into \
                     (F_SETPIPE_SZ)",
                    e,
                )
            })?;
        }
        let n = match sys::tee_nonblocking(source, w, size) {
            Ok(n) => n,
            // Emptied meanwhile by another process's reader.
            Err(libc::EAGAIN) => 0,
            Err(e) => {
                return Err((
                    "cannot be saved: its queued bytes could not be copied (tee)",
                    e,
                ))
            }
        };
        if n > room.len() {
            return Err((
                "cannot be saved: the descriptors' saved bytes would exceed 1 GiB",
                0,
            ));
        }
        let got = sys::read_queued(r, &mut room[..n]).map_err(|e| {
            (
                "cannot be saved: its queued bytes could not be read back",
                e,
            )
        })?;
        if got != n {
            return Err((
                "cannot be saved: its queued bytes could not be read back",
                libc::EIO,
            ));
        }
        Ok(n)
    })();
    sys::close(r);
    sys::close(w);
    result
}

pub(super) fn check(r: &Restoring, i: usize) -> Result<(), Failure> {
    let f = &r.fds[i];
    if f.kind == FD_KIND_FIFO {
        let mut path = [0u8; crate::arena::PATH_MAX + 1];
        let path = nul_terminated(r.name(i), &mut path);
        let st = sys::stat_path(path)
            .map_err(|e| Failure::new(b"cannot be made again: its FIFO is gone", e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return Err(Failure::new(
                b"cannot be made again: its path is no longer a FIFO",
                0,
            ));
        }
        let mut mode = match f.flags as i32 & libc::O_ACCMODE {
            libc::O_RDONLY => libc::R_OK,
            libc::O_WRONLY => libc::W_OK,
            _ => libc::R_OK | libc::W_OK,
        };
        // The queued bytes go back in through a write end.
        if !r.data(i).is_empty() {
            mode |= libc::W_OK;
        }
        sys::may_access(path, mode)
            .map_err(|e| Failure::new(b"cannot be made again: its FIFO cannot be opened", e))?;
    }
    // The queued bytes must fit the pipe this restart may make.
    let queued = r.data(i).len();
    if queued > 0 {
        let size = r.aux::<Pipe>(i).map_or(0, |p| p.size as usize);
        let (pr, pw) = sys::pipe_with(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .map_err(|e| Failure::new(b"cannot be made again: pipe", e))?;
        let mut room = sys::pipe_size(pw).unwrap_or(0);
        let mut errno = 0;
        if room < queued {
            match sys::set_pipe_size(pw, size.max(queued)) {
                Ok(got) => room = got,
                Err(e) => errno = e,
            }
        }
        sys::close(pr);
        sys::close(pw);
        if room < queued {
            return Err(Failure::new(
                b"cannot be made again: its queued bytes do not fit the largest pipe this \
                  restart may make (/proc/sys/fs/pipe-max-size)",
                errno,
            ));
        }
    }
    Ok(())
}

fn nul_terminated<'b>(name: &[u8], buf: &'b mut [u8; crate::arena::PATH_MAX + 1]) -> &'b [u8] {
    let n = name.len().min(crate::arena::PATH_MAX);
    buf[..n].copy_from_slice(&name[..n]);
    buf[n] = 0;
    &buf[..n + 1]
}

/// Makes the pipe or FIFO of record `i` again and puts every record of it in place.
pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let f = r.fds[i];
    let size = r
        .aux::<Pipe>(i)
        .ok_or(Failure::new(b"has no saved pipe state", 0))?
        .size as usize;
    // Every made descriptor that stays open while the records are put in place sits above
    // all their numbers, so that none is put on it.
    let above = r.fds.iter().map(|g| g.fd).max().unwrap_or(0) as i32 + 1;
    let readers = core::iter::once(i)
        .chain(r.same_object(i))
        .any(|j| readable(r.fds[j].flags));
    let mut path = [0u8; crate::arena::PATH_MAX + 1];
    let fifo = f.kind == FD_KIND_FIFO;
    // A pipe: its two ends. A FIFO: the helper, which is both.
    let (pr, pw) = if fifo {
        let path = nul_terminated(r.name(i), &mut path);
        // Both a reader and a writer, so that no open waits (and the bytes go back in
        // through it); only a reader when the program may only read it (then it has no
        // bytes to put back: `check` saw to that).
        let helper = match sys::open(path, libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC, 0) {
            Err(libc::EACCES) => {
                sys::open(path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)
            }
            other => other,
        }
        .map_err(|e| Failure::new(b"cannot be made again: its FIFO cannot be opened", e))?;
        let helper = out_of_the_way(helper, above)?;
        if let Ok(st) = sys::fstat(helper) {
            if (st.st_dev, st.st_ino) != (f.dev, f.ino) {
                let what = b"is another FIFO since the checkpoint (made anew at its path); the \
                             program goes on with it";
                say(&f, r.name(i), what);
            }
        }
        (helper, helper)
    } else {
        let (pr, pw) = sys::pipe_with(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .map_err(|e| Failure::new(b"cannot be made again: pipe", e))?;
        let pr = out_of_the_way(pr, above).inspect_err(|_| sys::close(pw))?;
        let pw = out_of_the_way(pw, above).inspect_err(|_| sys::close(pr))?;
        (pr, pw)
    };
    let close_made = || {
        sys::close(pr);
        if pw != pr {
            sys::close(pw);
        }
    };
    if let Err(e) = refill(r, i, pw, size, fifo || readers) {
        close_made();
        return Err(e);
    }
    // Each record gets its end: the pipe's own two first, then ends opened anew (their own
    // open file descriptions, with their own flags), in batches of the records not yet
    // placed (placing needs the table that lists them).
    let (mut pr_given, mut pw_given) = (false, false);
    let mut placed_at = None;
    let mut next = i;
    let mut result = Ok(());
    'batches: loop {
        let mut batch = [0usize; 64];
        let mut n = 0;
        for j in core::iter::once(i)
            .chain(r.same_object(i))
            .filter(|&j| j >= next)
        {
            if n == batch.len() {
                break;
            }
            batch[n] = j;
            n += 1;
        }
        if n == 0 {
            break;
        }
        next = batch[n - 1] + 1;
        for &j in &batch[..n] {
            let g = r.fds[j];
            let access = g.flags as i32 & libc::O_ACCMODE;
            let made = if fifo {
                let path = nul_terminated(r.name(j), &mut path);
                // Non-blocking to open (a writer needs a reader: the helper is one);
                // its own flags are set just below.
                let flags = (g.flags as i32 & !OPEN_ONLY) | libc::O_NONBLOCK | libc::O_CLOEXEC;
                sys::open(path, flags, 0).map_err(|e| {
                    Failure::new(b"cannot be made again: its FIFO cannot be opened", e)
                })
            } else if access == libc::O_RDONLY && !pr_given {
                pr_given = true;
                Ok(pr)
            } else if access == libc::O_WRONLY && !pw_given {
                pw_given = true;
                Ok(pw)
            } else {
                // Through any end of it that is open.
                let through = match placed_at {
                    _ if !pw_given => pw,
                    _ if !pr_given => pr,
                    Some(fd) => fd,
                    None => pw,
                };
                reopen(through, access)
            };
            result = made
                .and_then(
                    |fd| match sys::set_status_flags(fd, g.flags as i32 & KEPT_FLAGS) {
                        Ok(()) => Ok(fd),
                        Err(e) => {
                            sys::close(fd);
                            Err(Failure::new(
                                b"cannot be made again: its flags (F_SETFL)",
                                e,
                            ))
                        }
                    },
                )
                .and_then(|fd| r.place(&mut [(fd, j)]));
            if result.is_err() {
                break 'batches;
            }
            placed_at = Some(g.fd as i32);
        }
    }
    // What no record took goes: the write end of a pipe only read here (its reader sees
    // the end after the bytes), the read end of one only written here (EPIPE), the helper.
    if !pr_given {
        sys::close(pr);
    }
    if !pw_given && pw != pr {
        sys::close(pw);
    }
    result
}

/// A new open file description of the pipe of `through`, for `access` (`O_RDONLY`, …),
/// close-on-exec, from `/proc/thread-self/fd`.
fn reopen(through: i32, access: i32) -> Result<i32, Failure> {
    let mut path = Line::<48>::new();
    path.push(b"/proc/thread-self/fd/")
        .push_decimal(through as u64)
        .push(b"\0");
    sys::open(
        path.as_bytes(),
        access | libc::O_NONBLOCK | libc::O_CLOEXEC,
        0,
    )
    .map_err(|e| {
        Failure::new(
            b"cannot be made again: another end of its pipe (/proc/self/fd)",
            e,
        )
    })
}

/// `fd` moved to a number not below `above` (closed where it was), when it is below.
fn out_of_the_way(fd: i32, above: i32) -> Result<i32, Failure> {
    if fd >= above {
        return Ok(fd);
    }
    let moved = sys::dup_above(fd, above);
    sys::close(fd);
    moved.map_err(|e| {
        Failure::new(
            b"cannot be made again: no free descriptor above the program's",
            e,
        )
    })
}

/// Gives the pipe written through `w` the saved capacity `size` (saying so when this
/// restart may not) and, when `fill`, the saved queued bytes of record `i`'s pipe.
fn refill(r: &Restoring, i: usize, w: i32, size: usize, fill: bool) -> Result<(), Failure> {
    let current = sys::pipe_size(w).unwrap_or(0);
    if size != 0 && current != size {
        if let Err(e) = sys::set_pipe_size(w, size) {
            let f = &r.fds[i];
            let mut line = Line::<256>::new();
            line.push(b"comes back with a pipe of ")
                .push_decimal(current as u64)
                .push(b" bytes, not ")
                .push_decimal(size as u64)
                .push(b" (F_SETPIPE_SZ: ")
                .push(crate::report::errno_name(e).as_bytes())
                .push(b"; /proc/sys/fs/pipe-max-size limits unprivileged processes)");
            say(f, r.name(i), line.as_bytes());
        }
    }
    if !fill {
        return Ok(());
    }
    let Some(bytes) = core::iter::once(i)
        .chain(r.same_object(i))
        .map(|j| r.data(j))
        .find(|d| !d.is_empty())
    else {
        return Ok(());
    };
    sys::pwrite_all_stream(w, bytes).map_err(|e| {
        Failure::new(
            b"cannot be made again: its queued bytes do not fit its pipe",
            e,
        )
    })
}

/// "ckpt restart: fd N ('NAME') WHAT" on stderr.
fn say(f: &FdRecord, name: &[u8], what: &[u8]) {
    crate::files::say_fd(f, name, what, 0, b"\n");
}
