//! Recording the descriptors at a checkpoint, while the other threads are stopped: listing
//! `/proc/thread-self/fd`, each one's kind (from `fstat` and its link), its common fields
//! from `fdinfo`, what its kind's code saves, its locks, and its group (`kcmp(KCMP_FILE)`);
//! the standard descriptors as the process was given them; and the memory of the saved
//! bytes, given back once they are written.
//!
//! Everything here is signal-safe (it runs in a signal handler or the restart): no
//! allocation, no locks, no stdio.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use ckpt_image::fdkind::deleted::locks_at;
use ckpt_image::procfs::{parse_dec, parse_oct, status_value};
use ckpt_image::{
    FdRecord, FD_ACTION_CLOSED, FD_ACTION_REBUILD, FD_ACTION_REOPEN, FD_ACTION_STDIO,
};
use ckpt_image::{FD_KIND_ANON, FD_KIND_DELETED, FD_KIND_DEVICE, FD_KIND_DIRECTORY};
use ckpt_image::{FD_KIND_EPOLL, FD_KIND_EVENTFD, FD_KIND_INOTIFY, FD_KIND_SIGNALFD};
use ckpt_image::{FD_KIND_FIFO, FD_KIND_MEMFD, FD_KIND_OTHER, FD_KIND_OTHER_DEVICE};
use ckpt_image::{FD_KIND_PIPE, FD_KIND_REGULAR, FD_KIND_SOCKET};
use ckpt_image::{FD_KIND_TERMINAL, FD_KIND_TIMERFD};

use super::locks::save_locks;
use super::say::note_refused;
use super::{kinds, FdError, Saving};
use crate::arena::Arena;
use crate::config::FdPolicy;
use crate::line::Line;
use crate::sys;

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

/// How far `Arena::fd_data` has been written since it was last released.
pub(super) static DATA_USED: AtomicUsize = AtomicUsize::new(0);

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
