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
//! Everything here is signal-safe: raw system calls, reserved memory, no allocation.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use ckpt_image::fdkind::deleted::{locks_at, FileLock, LOCK_TO_EOF};
use ckpt_image::fdkind::deleted::{LOCK_FLOCK, LOCK_OFD, LOCK_OTHER, LOCK_POSIX};
use ckpt_image::procfs::{parse_dec, parse_oct, status_value};
use ckpt_image::{
    FdRecord, FD_ACTION_CLOSED, FD_ACTION_REBUILD, FD_ACTION_REOPEN, FD_ACTION_STDIO,
};
use ckpt_image::{FD_KIND_ANON, FD_KIND_DELETED, FD_KIND_DEVICE, FD_KIND_DIRECTORY};
use ckpt_image::{FD_KIND_EPOLL, FD_KIND_EVENTFD, FD_KIND_INOTIFY, FD_KIND_SIGNALFD};
use ckpt_image::{FD_KIND_FIFO, FD_KIND_MEMFD, FD_KIND_OTHER, FD_KIND_OTHER_DEVICE};
use ckpt_image::{FD_KIND_PIPE, FD_KIND_REGULAR, FD_KIND_SOCKET};
use ckpt_image::{FD_KIND_TERMINAL, FD_KIND_TIMERFD};

use crate::arena::Arena;
use crate::config::FdPolicy;
use crate::line::Line;
use crate::sys;

mod kinds;

pub(crate) use kinds::{send_window_change, window_change_timer, Restoring, Saving};

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

/// `bytes` in the largest binary unit it reaches, with one decimal where it is not whole:
/// `100 bytes`, `1 MiB`, `5.5 MiB`.
pub(crate) fn push_size<const N: usize>(line: &mut Line<N>, bytes: u64) {
    let units: [(&[u8], u32); 4] = [(b" GiB", 30), (b" MiB", 20), (b" KiB", 10), (b" bytes", 0)];
    let (unit, shift) = units
        .into_iter()
        .find(|&(_, shift)| bytes >> shift > 0)
        .unwrap_or((b" bytes", 0));
    let tenths = ((bytes as u128 * 10) >> shift) as u64;
    line.push_decimal(tenths / 10);
    if !tenths.is_multiple_of(10) {
        line.push(b".").push_decimal(tenths % 10);
    }
    line.push(unit);
}

/// The link of the descriptor an [`FdError::Unsupported`] names (`pipe:[12345]`), kept for
/// the message: atomics, so that reading it needs no exclusive hold.
static REFUSED: [AtomicU8; 128] = [const { AtomicU8::new(0) }; 128];
static REFUSED_LEN: AtomicU32 = AtomicU32::new(0);

/// The link of the descriptor the last refusal named, into `out`; its length.
pub fn refused_name(out: &mut [u8; 128]) -> usize {
    let n = (REFUSED_LEN.load(Ordering::Relaxed) as usize).min(out.len());
    for (o, r) in out.iter_mut().zip(&REFUSED).take(n) {
        *o = r.load(Ordering::Relaxed);
    }
    n
}

pub(crate) fn note_refused(name: &[u8]) {
    let n = name.len().min(REFUSED.len());
    for (r, &c) in REFUSED.iter().zip(name).take(n) {
        r.store(c, Ordering::Relaxed);
    }
    REFUSED_LEN.store(n as u32, Ordering::Relaxed);
}

/// What the descriptor table holds after a capture: records, bytes of paths and
/// kind-specific values, saved bytes (`Arena::fd_data`).
#[derive(Clone, Copy, Default, Debug)]
pub struct Captured {
    pub fds: usize,
    pub names: usize,
    pub data: usize,
}

/// How a checkpoint treats the descriptors.
#[derive(Clone, Copy, Debug)]
pub struct SaveOptions {
    /// What to do with a descriptor that cannot be saved (`CKPT_FD_POLICY`).
    pub policy: FdPolicy,
    /// Most bytes of a deleted file or memfd a checkpoint saves (`CKPT_MAX_DELETED`).
    pub max_deleted: u64,
}

/// Records every open descriptor but `own` (ckpt's) into the arena's descriptor table.
/// Signal-safe; the other threads are stopped.
pub fn capture(arena: &mut Arena, own: &[i32], options: SaveOptions) -> Result<Captured, FdError> {
    let policy = options.policy;
    let dir = sys::open(
        b"/proc/thread-self/fd\0",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .map_err(FdError::List)?;
    let listed = list(dir, own, arena);
    sys::close(dir);
    let count = listed?;
    let fds = &mut arena.fds[..count];
    fds.sort_unstable_by_key(|f| f.fd);

    let mut names = 0usize;
    let mut data = 0usize;
    for i in 0..count {
        let fd = arena.fds[i].fd;
        let mut path = Line::<48>::new();
        path.push(b"/proc/thread-self/fd/")
            .push_decimal(fd as u64)
            .push(b"\0");
        let room = &mut arena.fd_names[names..];
        if room.len() < crate::arena::PATH_MAX {
            return Err(FdError::TooMany);
        }
        // An error: closed since it was listed (only ckpt's own can be: the others are
        // stopped); fstat below says so too.
        let len =
            sys::readlink(path.as_bytes(), &mut room[..crate::arena::PATH_MAX]).unwrap_or_default();
        let st = match sys::fstat(fd as i32) {
            Ok(st) => st,
            Err(_) => {
                arena.fds[i].kind = 0;
                continue;
            }
        };
        let len = own_proc_path(&mut arena.fd_names[names..], len, sys::getpid());
        let name = &arena.fd_names[names..names + len];
        let kind = classify(&st, name);
        let mut info = Line::<48>::new();
        info.push(b"/proc/thread-self/fdinfo/")
            .push_decimal(fd as u64)
            .push(b"\0");
        let n = sys::read_file(info.as_bytes(), arena.misc).unwrap_or(0);
        let text = &arena.misc[..n];
        let field = |key: &[u8]| status_value(text, key);
        let flags = field(b"flags").and_then(parse_oct).unwrap_or(0) as u32;
        let rec = &mut arena.fds[i];
        *rec = FdRecord {
            fd,
            kind,
            action: 0,
            flags: flags & !(libc::O_CLOEXEC as u32),
            fd_flags: (sys::fd_flags(fd as i32).unwrap_or(0) & libc::FD_CLOEXEC) as u32
                | if field(b"lock").is_some() {
                    ckpt_image::FD_LOCKED
                } else {
                    0
                }
                | if flags & libc::O_ASYNC as u32 != 0 && sys::signals_io_to_self(fd as i32) {
                    ckpt_image::FD_ASYNC_OWN
                } else {
                    0
                },
            group: i as u32,
            pos: field(b"pos").and_then(parse_dec).unwrap_or(0),
            dev: st.st_dev,
            ino: st.st_ino,
            rdev: st.st_rdev,
            size: st.st_size as u64,
            mtime_ns: (st.st_mtime as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(st.st_mtime_nsec as u64),
            mode: st.st_mode,
            mnt_id: field(b"mnt_id").and_then(parse_dec).unwrap_or(0) as u32,
            name_offset: names as u32,
            name_len: len as u32,
            ..Default::default()
        };
        // A standard descriptor is the restart's own, unless the program put another file
        // there itself (`sort -o`, `freopen`, a daemon's /dev/null): that one is saved.
        let stdio = fd <= 2 && given_stdio(fd, &st);
        let action = if !stdio && ckpt_image::kind_reopens(kind) {
            FD_ACTION_REOPEN
        } else {
            let (earlier, rest) = arena.fds.split_at_mut(i);
            let mut saving = Saving {
                fd: fd as i32,
                rec: &mut rest[0],
                earlier,
                fdinfo: &arena.misc[..n],
                names: &mut arena.fd_names[..],
                names_end: names + len,
                data: &mut arena.fd_data[..],
                data_end: data,
                scratch: &mut arena.fd_scratch[..],
                options,
            };
            if stdio {
                // The restart's own; what it needs beyond the record (a terminal's
                // settings) is saved.
                kinds::save_stdio(&mut saving)?;
                names = saving.names_end - len;
                FD_ACTION_STDIO
            } else {
                let saved = kinds::save(&mut saving);
                let ends = (saving.names_end, saving.data_end);
                match saved {
                    Ok(true) => {
                        (names, data) = (ends.0 - len, ends.1);
                        FD_ACTION_REBUILD
                    }
                    Ok(false) if policy == FdPolicy::Close => FD_ACTION_CLOSED,
                    Ok(false) => {
                        note_refused(&arena.fd_names[names..names + len]);
                        return Err(FdError::Unsupported(fd));
                    }
                    Err(e) => {
                        note_refused(&arena.fd_names[names..names + len]);
                        return Err(e);
                    }
                }
            }
        };
        let rec = &mut arena.fds[i];
        rec.action = action;
        if !matches!(action, FD_ACTION_REBUILD | FD_ACTION_STDIO) {
            (rec.aux_offset, rec.aux_len, rec.data_offset, rec.data_len) = (0, 0, 0, 0);
        }
        names += len;
        // The locks its open file description holds follow its kind-specific values.
        if action != FD_ACTION_CLOSED && rec.locked() {
            let at = locks_at(rec.kind, action == FD_ACTION_REOPEN);
            if at.is_some() {
                save_locks(&arena.misc[..n], rec, &mut arena.fd_names[..], &mut names)?;
            }
        }
    }
    // Drop the ones that went away (ckpt's own, closed meanwhile).
    let mut kept = 0;
    for i in 0..count {
        if arena.fds[i].kind != 0 {
            arena.fds[kept] = arena.fds[i];
            kept += 1;
        }
    }
    group(&mut arena.fds[..kept], arena.fd_dup_of);
    Ok(Captured {
        fds: kept,
        names,
        data,
    })
}

/// What standard input, output and error are as the process was given them (device and
/// inode; `u64::MAX` for a closed one): at library load, and in a restarted process the
/// restart's own. One that is another file at a checkpoint was put there by the program.
static GIVEN_STDIO: [[AtomicU64; 2]; 3] = [const { [const { AtomicU64::new(u64::MAX) }; 2] }; 3];

/// Notes what the standard descriptors are now, as given to the process (at library load;
/// at a restart, before any is changed). Signal-safe.
pub fn note_standard_descriptors() {
    for (fd, given) in GIVEN_STDIO.iter().enumerate() {
        let (dev, ino) =
            sys::fstat(fd as i32).map_or((u64::MAX, u64::MAX), |st| (st.st_dev, st.st_ino));
        given[0].store(dev, Ordering::Relaxed);
        given[1].store(ino, Ordering::Relaxed);
    }
}

/// Whether standard descriptor `fd` (its `st`) is still the file the process was given.
fn given_stdio(fd: u32, st: &libc::stat) -> bool {
    let given = &GIVEN_STDIO[fd as usize];
    (
        given[0].load(Ordering::Relaxed),
        given[1].load(Ordering::Relaxed),
    ) == (st.st_dev, st.st_ino)
}

// ---------------------------------------------------------------------------------------------
// File locks: the `lock:` lines of fdinfo are saved after a record's kind-specific values
// (for reopened files and deleted files and memfds) and taken again once every descriptor
// is in place.

/// Most locks saved for one descriptor.
const MAX_LOCKS: usize = 64;

/// Appends the locks the `lock:` lines of `fdinfo` show to `rec`'s kind-specific values,
/// which end at `*names` in `area` (or are none). Signal-safe.
fn save_locks(
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
fn take_locks(fd: i32, f: &FdRecord, name: &[u8], aux: &[u8], test: bool, end: &[u8]) {
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
fn locks_left(f: &FdRecord, aux: &[u8]) -> bool {
    if !f.locked() || f.action == FD_ACTION_CLOSED {
        return false;
    }
    let mut saved = ckpt_image::fdkind::deleted::locks(f, aux).peekable();
    saved.peek().is_none() || saved.any(|l| l.kind == LOCK_OTHER)
}

/// How far `Arena::fd_data` has been written since it was last released.
static DATA_USED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Gives back the memory of the descriptors' saved bytes once a checkpoint is written (or
/// has failed) and once a restart has put them back: the image holds them. Signal-safe.
pub fn release_data(arena: &mut Arena) {
    let used = DATA_USED
        .swap(0, Ordering::Relaxed)
        .min(arena.fd_data.len());
    if used > 0 {
        sys::discard(&mut arena.fd_data[..used]);
    }
}

/// A path in this process's own `/proc/PID/` directory, the first `len` bytes of `buf`,
/// becomes `/proc/self/…`, so that a restart opens the restarted process's file, not one of
/// whichever process has the old pid by then; the new length.
fn own_proc_path(buf: &mut [u8], len: usize, pid: u32) -> usize {
    let mut prefix = Line::<24>::new();
    prefix.push(b"/proc/").push_decimal(pid as u64);
    let p = prefix.as_bytes();
    let own = buf[..len].starts_with(p) && buf[..len].get(p.len()) == Some(&b'/');
    let rest = p.len()..len;
    let at = b"/proc/self".len();
    if !own || at + rest.len() > buf.len() {
        return len;
    }
    // "/proc/PID/…" → "/proc/self/…" (longer for pids under 1000: the rest moves right).
    buf.copy_within(rest.clone(), at);
    buf[..at].copy_from_slice(b"/proc/self");
    at + rest.len()
}

/// The descriptor numbers in `/proc/self/fd` (read through `dir`) but `dir` and `own`, into
/// the table; how many.
fn list(dir: i32, own: &[i32], arena: &mut Arena) -> Result<usize, FdError> {
    let mut count = 0;
    loop {
        let n = match sys::getdents(dir, arena.misc) {
            Ok(0) => return Ok(count),
            Ok(n) => n,
            Err(e) => return Err(FdError::List(e)),
        };
        for name in sys::dirent_names(&arena.misc[..n]) {
            let Some(fd) = parse_dec(name) else { continue };
            let fd = fd as i32;
            if fd == dir || own.contains(&fd) {
                continue;
            }
            if count == arena.fds.len() {
                return Err(FdError::TooMany);
            }
            arena.fds[count] = FdRecord {
                fd: fd as u32,
                ..Default::default()
            };
            count += 1;
        }
    }
}

/// The kind of a descriptor, from its `fstat` and its link.
fn classify(st: &libc::stat, link: &[u8]) -> u32 {
    let deleted = link.ends_with(b" (deleted)");
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG if link.starts_with(b"/memfd:") => FD_KIND_MEMFD,
        libc::S_IFREG | libc::S_IFDIR if deleted || st.st_nlink == 0 || !link.starts_with(b"/") => {
            FD_KIND_DELETED
        }
        libc::S_IFREG => FD_KIND_REGULAR,
        libc::S_IFDIR => FD_KIND_DIRECTORY,
        libc::S_IFCHR if ckpt_image::reopenable_device(st.st_rdev) => FD_KIND_DEVICE,
        libc::S_IFCHR if ckpt_image::terminal_device(st.st_rdev) => FD_KIND_TERMINAL,
        libc::S_IFCHR | libc::S_IFBLK => FD_KIND_OTHER_DEVICE,
        libc::S_IFIFO if link.starts_with(b"pipe:") => FD_KIND_PIPE,
        libc::S_IFIFO => FD_KIND_FIFO,
        libc::S_IFSOCK => FD_KIND_SOCKET,
        _ if link == b"anon_inode:[eventfd]" => FD_KIND_EVENTFD,
        _ if link == b"anon_inode:[timerfd]" => FD_KIND_TIMERFD,
        _ if link == b"anon_inode:[signalfd]" => FD_KIND_SIGNALFD,
        _ if link == b"anon_inode:[eventpoll]" => FD_KIND_EPOLL,
        _ if link == b"anon_inode:inotify" => FD_KIND_INOTIFY,
        _ if link.starts_with(b"anon_inode:") => FD_KIND_ANON,
        _ => FD_KIND_OTHER,
    }
}

/// Sets each record's group to the index of the first descriptor sharing its open file
/// description. Only descriptors of one file can, and `kcmp` orders descriptions (as the
/// kernel's pointers, disguised but consistent): the table's indices, in `order`, are
/// sorted by file and description, and each run of one description is a group —
/// O(n log n) `kcmp` calls where comparing every pair of one file's descriptors took
/// seconds for a thousand opens of it.
fn group(fds: &mut [FdRecord], order: &mut [u32]) {
    let n = fds.len();
    let order = &mut order[..n];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i as u32;
    }
    let description =
        |a: &FdRecord, b: &FdRecord| match sys::description_order(a.fd as i32, b.fd as i32) {
            Ok(ord) => ord,
            Err(_) => a.fd.cmp(&b.fd),
        };
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (&fds[a as usize], &fds[b as usize]);
        (x.dev, x.ino)
            .cmp(&(y.dev, y.ino))
            .then_with(|| description(x, y))
    });
    let mut start = 0;
    while start < n {
        let first = fds[order[start] as usize];
        let mut end = start + 1;
        while end < n && {
            let next = &fds[order[end] as usize];
            (next.dev, next.ino) == (first.dev, first.ino)
                && sys::description_order(first.fd as i32, next.fd as i32)
                    == Ok(core::cmp::Ordering::Equal)
        } {
            end += 1;
        }
        let leader = order[start..end].iter().copied().min().unwrap_or(0);
        for &k in &order[start..end] {
            fds[k as usize].group = leader;
        }
        start = end;
    }
}

// ---------------------------------------------------------------------------------------------
// Restart

// What the restart does to each record, decided before anything changes (`Arena::fd_plans`).
/// Nothing (a standard descriptor that is another file; a record left closed).
const KEEP: u8 = 0;
/// Opened again by its path.
const OPENED: u8 = 1;
/// A copy of the record `Arena::fd_dup_of` names, which is in place by then.
const DUP: u8 = 2;
/// The restart's own standard descriptor, the same file: moved to the saved offset.
const SEEK: u8 = 3;
/// A standard descriptor closed in the restart that cannot be reopened: left closed.
const CLOSED: u8 = 4;
/// Made again by its kind's code (`kinds::rebuild`).
const REBUILD: u8 = 5;
/// Put in place already, by the rebuild of another record (the other end of a pipe).
const PLACED: u8 = 6;
/// Made again by its kind's code after all others (an epoll set).
const LATE: u8 = 7;
/// A copy of a `LATE` record, made after it.
const LATE_DUP: u8 = 8;

/// How a restart treats the descriptors.
#[derive(Clone, Copy, Default, Debug)]
pub struct RestoreOptions {
    /// A file replaced or truncated since the checkpoint ends the restart
    /// (`CKPT_STRICT_FILES`) instead of a warning.
    pub strict: bool,
    /// Standard input, output and error are the saved ones, not the restart's, where they
    /// can be opened again (`CKPT_RESTORE_STDIO`).
    pub stdio: bool,
}

/// Opens every recorded descriptor again, as [`capture`] recorded it, in a restarted
/// process (the other threads wait). First every path is opened, checked and closed again:
/// one that cannot be opened ends the process with [`EXIT_FILE_MISSING`], changed ones
/// with [`EXIT_FILE_CHANGED`] when strict, before any descriptor has changed. Then
/// everything beyond 2 is closed (nothing but what the restarting shell leaked is open
/// there) and each record is opened into its number; that this fails so soon after it
/// worked (the file removed in between) ends the process with `RestoreFailed`.
/// Signal-safe.
pub fn restore(arena: &mut Arena, cap: Captured, options: RestoreOptions) {
    // The restart's standard descriptors are the restarted program's given ones.
    note_standard_descriptors();
    let strict = options.strict;
    let fds = &arena.fds[..cap.fds];
    let names = &arena.fd_names[..cap.names];
    let data = &arena.fd_data[..cap.data];
    let name = |f: &FdRecord| &names[f.name_offset as usize..][..f.name_len as usize];
    let plans = &mut arena.fd_plans[..cap.fds];
    let mut changed = 0;
    // The program's own limit is back by now, unless this restart may not raise it so far.
    let limit = sys::get_rlimit(libc::RLIMIT_NOFILE).map_or(u64::MAX, |(soft, _)| soft);
    for (i, f) in fds.iter().enumerate() {
        plans[i] = KEEP;
        match f.action {
            FD_ACTION_REOPEN if f.fd as u64 >= limit => {
                report_restore_error(
                    f,
                    name(f),
                    b"') cannot be opened again: ",
                    libc::EMFILE,
                    b"; nothing was restored\n",
                );
                sys::exit_now(EXIT_FILE_MISSING);
            }
            FD_ACTION_REOPEN => {}
            FD_ACTION_REBUILD => {
                // One that shared its description with a standard descriptor (`exec 3>&1`
                // onto a pipe or a terminal) is a copy of the restart's own, as that one is
                // (when the restart has it open).
                let group = f.group as usize;
                if fds[group].action == FD_ACTION_STDIO
                    && sys::fd_flags(fds[group].fd as i32).is_ok()
                {
                    plans[i] = DUP;
                    arena.fd_dup_of[i] = group as u32;
                    continue;
                }
                // A copy of an earlier record of its description is made from it.
                let first = (f.group as usize..i)
                    .find(|&j| fds[j].group == f.group && matches!(plans[j], REBUILD | LATE));
                if let Some(j) = first {
                    plans[i] = if plans[j] == LATE { LATE_DUP } else { DUP };
                    arena.fd_dup_of[i] = j as u32;
                    continue;
                }
                let r = Restoring {
                    fds,
                    names,
                    data,
                    plans: &mut plans[..],
                    scratch: &mut arena.fd_scratch[..],
                };
                if let Err(e) = kinds::check(&r, i) {
                    report_failure(f, name(f), e, b"; nothing was restored\n");
                    sys::exit_now(EXIT_FILE_MISSING);
                }
                plans[i] = if kinds::late(f.kind) { LATE } else { REBUILD };
                continue;
            }
            // CKPT_RESTORE_STDIO: the saved one, not the restart's.
            FD_ACTION_STDIO if options.stdio && ckpt_image::kind_reopens(f.kind) => {}
            FD_ACTION_STDIO => match sys::fstat(f.fd as i32) {
                Ok(st) => {
                    let same = f.kind == FD_KIND_REGULAR
                        && st.st_mode & libc::S_IFMT == libc::S_IFREG
                        && (st.st_dev, st.st_ino) == (f.dev, f.ino);
                    // The same file goes on where it was; one that no longer reaches that
                    // far was rewritten (`./prog.ckpt > log` truncates it), and is used as
                    // given. Output is never moved back over what is there since: a shell
                    // that ran the program and then its restart into one file (`{ prog;
                    // echo; ./prog.ckpt; } > log`) gives it an offset past the saved one.
                    let writes = sys::status_flags(f.fd as i32)
                        .is_ok_and(|flags| flags & libc::O_ACCMODE != libc::O_RDONLY);
                    let behind =
                        !writes || sys::offset_of(f.fd as i32).is_ok_and(|offset| offset < f.pos);
                    if same && st.st_size as u64 >= f.pos && behind {
                        plans[i] = SEEK;
                    }
                    continue;
                }
                Err(_) if !ckpt_image::kind_reopens(f.kind) => {
                    plans[i] = CLOSED;
                    continue;
                }
                // Closed in the restart: the saved one is opened again.
                Err(_) => {}
            },
            _ => continue,
        }
        // The first reopened member of its group is opened; the others copy it.
        let leader = (f.group as usize..i).find(|&j| fds[j].group == f.group && plans[j] == OPENED);
        if let Some(j) = leader {
            plans[i] = DUP;
            arena.fd_dup_of[i] = j as u32;
            continue;
        }
        let mut moved_buf = [0u8; crate::arena::PATH_MAX];
        let moved = relocated(name(f), &mut moved_buf);
        let fd = match open_record(f, name(f), true) {
            Ok(fd) => fd,
            Err(e) => {
                let what: &[u8] = if moved.is_some() {
                    b"', relocated) cannot be opened again: "
                } else {
                    b"') cannot be opened again: "
                };
                report_restore_error(
                    f,
                    moved.unwrap_or(name(f)),
                    what,
                    e,
                    b"; nothing was restored\n",
                );
                sys::exit_now(EXIT_FILE_MISSING);
            }
        };
        plans[i] = OPENED;
        // Its locks, which someone else may hold by now.
        take_locks(
            fd,
            f,
            name(f),
            f.aux(names),
            true,
            b"; nothing was restored\n",
        );
        let st = sys::fstat(fd);
        sys::close(fd);
        // A device, or a file of the kernel's /proc, which every process sees anew.
        if f.kind == FD_KIND_DEVICE || name(f).starts_with(b"/proc/") {
            continue;
        }
        if let Ok(st) = st {
            // A relocated file is another copy: only whether it still reaches the offset.
            let replaced = moved.is_none() && (st.st_dev, st.st_ino) != (f.dev, f.ino);
            let truncated = f.kind == FD_KIND_REGULAR && (st.st_size as u64) < f.pos;
            if replaced || truncated {
                changed += 1;
                report_changed(f, name(f), replaced, strict);
            }
        }
    }
    if strict && changed > 0 {
        let mut line = Line::<256>::new();
        line.push(b"ckpt restart: CKPT_STRICT_FILES is set and ")
            .push_decimal(changed)
            .push(b" file(s) changed since the checkpoint; nothing was restored\n");
        sys::write_stderr(line.as_bytes());
        sys::exit_now(EXIT_FILE_CHANGED);
    }

    // Past every check: what the restarting shell leaked beyond 2 goes, and every record is
    // put in place, in increasing order (so a reopened file never lands on a number a
    // record placed before it holds).
    sys::close_range(3, u32::MAX);
    for (i, f) in fds.iter().enumerate() {
        let plan = arena.fd_plans[i];
        if plan == REBUILD {
            let mut r = Restoring {
                fds,
                names,
                data,
                plans: &mut arena.fd_plans[..cap.fds],
                scratch: &mut arena.fd_scratch[..],
            };
            if let Err(e) = kinds::rebuild(&mut r, i) {
                report_failure(f, name(f), e, b"\n");
                sys::exit_now(ckpt_image::ExitStatus::RestoreFailed.code());
            }
            continue;
        }
        let result = match plan {
            OPENED => open_record(f, name(f), f.cloexec()).and_then(|t| {
                if matches!(f.kind, FD_KIND_REGULAR | FD_KIND_DIRECTORY) && f.pos != 0 {
                    let _ = sys::seek_to(t, f.pos);
                }
                if t == f.fd as i32 {
                    return Ok(());
                }
                let r = sys::dup_to(t, f.fd as i32, f.cloexec());
                sys::close(t);
                r
            }),
            DUP => {
                let j = arena.fd_dup_of[i] as usize;
                sys::dup_to(fds[j].fd as i32, f.fd as i32, f.cloexec())
            }
            SEEK => sys::seek_to(f.fd as i32, f.pos).map(drop),
            _ => Ok(()),
        };
        if let Err(e) = result {
            report_restore_error(f, name(f), b"') cannot be put back: ", e, b"\n");
            sys::exit_now(ckpt_image::ExitStatus::RestoreFailed.code());
        }
    }
    // Epoll sets last: their watches name the descriptors put in place above.
    for (i, f) in fds.iter().enumerate() {
        let result = match arena.fd_plans[i] {
            LATE => {
                let mut r = Restoring {
                    fds,
                    names,
                    data,
                    plans: &mut arena.fd_plans[..cap.fds],
                    scratch: &mut arena.fd_scratch[..],
                };
                kinds::rebuild(&mut r, i)
            }
            LATE_DUP => {
                let j = arena.fd_dup_of[i] as usize;
                sys::dup_to(fds[j].fd as i32, f.fd as i32, f.cloexec())
                    .map_err(|e| kinds::Failure::new(b"cannot be put back", e))
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            report_failure(f, name(f), e, b"\n");
            sys::exit_now(ckpt_image::ExitStatus::RestoreFailed.code());
        }
    }
    // The locks, once every descriptor is in place (closing another descriptor of a file
    // would give back the process's POSIX locks on it). Descriptors of one open file
    // description show the same locks, and taking one again through another is no change.
    for f in fds {
        if matches!(f.action, FD_ACTION_REOPEN | FD_ACTION_REBUILD) {
            take_locks(f.fd as i32, f, name(f), f.aux(names), false, b"\n");
        }
    }
    kinds::finish(&Restoring {
        fds,
        names,
        data,
        plans: &mut arena.fd_plans[..cap.fds],
        scratch: &mut arena.fd_scratch[..],
    });
    // (In a restarted process the bytes came back with the memory, beyond the mark.)
    DATA_USED.store(cap.data, Ordering::Relaxed);
    release_data(arena);
    let (fds, names) = (&arena.fds[..cap.fds], &arena.fd_names[..cap.names]);
    let name = |f: &FdRecord| &names[f.name_offset as usize..][..f.name_len as usize];
    // (A standard descriptor the restart closed stays closed, as it was given.)
    say_descriptors(
        b"ckpt restart: left closed, as CKPT_FD_POLICY=close had the checkpoint record them",
        fds.iter().filter(|f| f.action == FD_ACTION_CLOSED),
        name,
        (b" (", b")"),
    );
    // Signal-driven I/O to the process itself is set up again for the restarted one (a
    // descriptor opened again has only the flags `open` takes); any other, or one that
    // cannot be, is said.
    say_descriptors(
        b"ckpt restart: signal-driven I/O (O_ASYNC) was not set up again (it went to \
          another process, a thread or with another signal)",
        fds.iter().filter(|f| {
            matches!(f.action, FD_ACTION_REOPEN | FD_ACTION_REBUILD)
                && f.signals_io()
                && (f.fd_flags & ckpt_image::FD_ASYNC_OWN == 0
                    || sys::signal_io_to_self(f.fd as i32).is_err())
        }),
        name,
        (b" ('", b"')"),
    );
    // Locks not taken again (leases, locks on pipes): say so rather than let the program
    // think it holds them.
    say_descriptors(
        b"ckpt restart: the file locks (leases, or locks on this kind of descriptor) the \
          program held were not taken again",
        fds.iter().filter(|f| locks_left(f, f.aux(names))),
        name,
        (b" ('", b"')"),
    );
}

/// One line on stderr: `head`, then `: fd N` and the descriptor's name between `around`
/// for each of `fds`, comma-separated; nothing when there is none. Signal-safe.
fn say_descriptors<'a, 'n>(
    head: &[u8],
    fds: impl Iterator<Item = &'a FdRecord>,
    name: impl Fn(&FdRecord) -> &'n [u8],
    around: (&[u8], &[u8]),
) {
    let mut line = Line::<1024>::new();
    for (k, f) in fds.enumerate() {
        if k == 0 {
            line.push(head).push(b": fd ");
        } else {
            line.push(b", fd ");
        }
        line.push_decimal(f.fd as u64)
            .push(around.0)
            .push(name(f))
            .push(around.1);
    }
    if !line.as_bytes().is_empty() {
        line.push(b"\n");
        sys::write_stderr(line.as_bytes());
    }
}

/// `path` moved by the restart's `CKPT_RELOCATE` (written into `out`), or `None` when no
/// pair of it applies. For every kind that opens a saved path again. Signal-safe.
pub(crate) fn relocated<'a>(path: &[u8], out: &'a mut [u8]) -> Option<&'a [u8]> {
    if crate::restore::RESTART_RELOCATE[0].load(Ordering::Relaxed) == 0 {
        return None;
    }
    let mut value = [0u8; ckpt_image::relocate::RELOCATE_MAX];
    let value = crate::restore::relocation(&mut value);
    if value.is_empty() {
        return None;
    }
    ckpt_image::relocate::relocate(value, path, out)
}

/// Opens the path of `f` (relocated by `CKPT_RELOCATE`) with its flags (not those that create or truncate, nor
/// `O_NOCTTY`), close-on-exec when `cloexec`. Signal-safe.
fn open_record(f: &FdRecord, name: &[u8], cloexec: bool) -> sys::SysResult<i32> {
    let mut moved = [0u8; crate::arena::PATH_MAX];
    let name = relocated(name, &mut moved).unwrap_or(name);
    let mut path = [0u8; crate::arena::PATH_MAX + 1];
    let n = name.len().min(crate::arena::PATH_MAX);
    path[..n].copy_from_slice(&name[..n]);
    let mut flags =
        f.flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY);
    if cloexec {
        flags |= libc::O_CLOEXEC;
    }
    sys::open(&path[..n + 1], flags, 0)
}

fn report_restore_error(f: &FdRecord, name: &[u8], what: &[u8], e: i32, end: &[u8]) {
    let mut line = Line::<1024>::new();
    line.push(b"ckpt restart: fd ")
        .push_decimal(f.fd as u64)
        .push(b" ('")
        .push(name)
        .push(what)
        .push(crate::report::errno_name(e).as_bytes())
        .push(b" (errno ")
        .push_decimal(e as u64)
        .push(b")")
        .push(end);
    sys::write_stderr(line.as_bytes());
}

/// "ckpt restart: fd N ('NAME') WHAT: ERRNO (errno E)" and `end`. Signal-safe.
fn report_failure(f: &FdRecord, name: &[u8], e: kinds::Failure, end: &[u8]) {
    say_fd(f, name, e.what, e.errno, end);
}

/// "ckpt restart: fd N ('NAME') WHAT", then ": ERRNO (errno E)" unless `errno` is 0, and
/// `end` (a newline, or more of the line with one). Signal-safe.
pub(crate) fn say_fd(f: &FdRecord, name: &[u8], what: &[u8], errno: i32, end: &[u8]) {
    let mut line = Line::<1024>::new();
    line.push(b"ckpt restart: fd ")
        .push_decimal(f.fd as u64)
        .push(b" ('")
        .push(name)
        .push(b"') ")
        .push(what);
    if errno != 0 {
        line.push(b": ")
            .push(crate::report::errno_name(errno).as_bytes())
            .push(b" (errno ")
            .push_decimal(errno as u64)
            .push(b")");
    }
    line.push(end);
    sys::write_stderr(line.as_bytes());
}

fn report_changed(f: &FdRecord, name: &[u8], replaced: bool, strict: bool) {
    let mut line = Line::<1024>::new();
    line.push(b"ckpt restart: fd ")
        .push_decimal(f.fd as u64)
        .push(b" ('")
        .push(name)
        .push(if replaced {
            b"') was replaced since the checkpoint (another file has its name now)"
        } else {
            b"') was truncated since the checkpoint (it ends before the saved offset "
        });
    if !replaced {
        line.push_decimal(f.pos).push(b")");
    }
    line.push(if strict {
        b"\n"
    } else {
        b"; the program goes on with it\n"
    });
    sys::write_stderr(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mode: u32, rdev: u64, nlink: u64) -> libc::stat {
        // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        st.st_mode = mode;
        st.st_rdev = rdev;
        st.st_nlink = nlink;
        st
    }

    #[test]
    fn sizes_in_words() {
        let say = |bytes| {
            let mut line = Line::<32>::new();
            push_size(&mut line, bytes);
            String::from_utf8(line.as_bytes().to_vec()).unwrap()
        };
        assert_eq!(say(0), "0 bytes");
        assert_eq!(say(100), "100 bytes");
        assert_eq!(say(1 << 20), "1 MiB");
        assert_eq!(say(5 << 20), "5 MiB");
        assert_eq!(say((5 << 20) + (1 << 19)), "5.5 MiB");
        assert_eq!(say(3 << 30), "3 GiB");
    }

    #[test]
    fn own_proc_paths() {
        let mut buf = [0u8; 64];
        let mut path = |p: &[u8], pid| {
            buf[..p.len()].copy_from_slice(p);
            let n = own_proc_path(&mut buf, p.len(), pid);
            buf[..n].to_vec()
        };
        assert_eq!(path(b"/proc/4711/status", 4711), b"/proc/self/status");
        assert_eq!(
            path(b"/proc/4711/task/4712/stat", 4711),
            b"/proc/self/task/4712/stat"
        );
        assert_eq!(path(b"/proc/47110/status", 4711), b"/proc/47110/status");
        assert_eq!(path(b"/proc/4711", 4711), b"/proc/4711");
        assert_eq!(path(b"/proc/12/status", 4711), b"/proc/12/status");
        assert_eq!(path(b"/tmp/proc/4711/x", 4711), b"/tmp/proc/4711/x");
        assert_eq!(path(b"/proc/1/x", 1), b"/proc/self/x");
    }

    #[test]
    fn kinds() {
        let reg = stat(libc::S_IFREG | 0o644, 0, 1);
        assert_eq!(classify(&reg, b"/tmp/a"), FD_KIND_REGULAR);
        assert_eq!(classify(&reg, b"/tmp/a (deleted)"), FD_KIND_DELETED);
        assert_eq!(
            classify(&stat(libc::S_IFREG, 0, 0), b"/tmp/a"),
            FD_KIND_DELETED
        );
        assert_eq!(classify(&reg, b"/memfd:jit (deleted)"), FD_KIND_MEMFD);
        let dir = stat(libc::S_IFDIR | 0o755, 0, 2);
        assert_eq!(classify(&dir, b"/tmp"), FD_KIND_DIRECTORY);
        let null = stat(libc::S_IFCHR | 0o666, libc::makedev(1, 3), 1);
        assert_eq!(classify(&null, b"/dev/null"), FD_KIND_DEVICE);
        let tty = stat(libc::S_IFCHR | 0o620, libc::makedev(136, 0), 1);
        assert_eq!(classify(&tty, b"/dev/pts/0"), FD_KIND_TERMINAL);
        let ptmx = stat(libc::S_IFCHR | 0o666, libc::makedev(5, 2), 1);
        assert_eq!(classify(&ptmx, b"/dev/ptmx"), FD_KIND_OTHER_DEVICE);
        let disk = stat(libc::S_IFBLK | 0o660, libc::makedev(8, 0), 1);
        assert_eq!(classify(&disk, b"/dev/sda"), FD_KIND_OTHER_DEVICE);
        let fifo = stat(libc::S_IFIFO | 0o600, 0, 1);
        assert_eq!(classify(&fifo, b"pipe:[123]"), FD_KIND_PIPE);
        assert_eq!(classify(&fifo, b"/tmp/fifo"), FD_KIND_FIFO);
        let sock = stat(libc::S_IFSOCK | 0o777, 0, 1);
        assert_eq!(classify(&sock, b"socket:[9]"), FD_KIND_SOCKET);
        for (link, kind) in [
            (&b"anon_inode:[eventfd]"[..], FD_KIND_EVENTFD),
            (b"anon_inode:[timerfd]", FD_KIND_TIMERFD),
            (b"anon_inode:[signalfd]", FD_KIND_SIGNALFD),
            (b"anon_inode:[eventpoll]", FD_KIND_EPOLL),
            (b"anon_inode:[pidfd]", FD_KIND_ANON),
            (b"anon_inode:[io_uring]", FD_KIND_ANON),
        ] {
            assert_eq!(classify(&stat(0o600, 0, 1), link), kind);
        }
        assert_eq!(
            classify(&stat(0o600, 0, 1), b"anon_inode:inotify"),
            FD_KIND_INOTIFY
        );
        assert_eq!(classify(&stat(0o600, 0, 1), b"?"), FD_KIND_OTHER);
        for minor in [3, 5, 7, 8, 9] {
            assert!(ckpt_image::reopenable_device(libc::makedev(1, minor)));
        }
        for (major, minor) in [(1, 1), (1, 4), (5, 0), (4, 1), (257, 3)] {
            assert!(!ckpt_image::reopenable_device(libc::makedev(major, minor)));
        }
    }
}
