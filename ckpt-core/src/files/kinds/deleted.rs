//! Deleted files and memfds: their contents are saved (read with `pread`, so the offset
//! stays; a sparse file's holes are stored as zeros) up to `CKPT_MAX_DELETED` bytes per
//! file, and a restart makes a new unnamed file with them.
//!
//! - A deleted file becomes an `O_TMPFILE` file, never linked, in its original directory
//!   when that still exists and allows it, else in `$TMPDIR`, else in `/tmp`; its size and
//!   mode bits are the saved ones. (Another hard link the file may still have elsewhere is
//!   not found: the restart's file is a copy.)
//! - A memfd is made again with `memfd_create`, with its name and, once its contents are
//!   written, its seals.
//! - Every record of the file is opened on the new file through `/proc/self/fd/T` with its
//!   own flags (`O_APPEND`, read-only, …) and offset: descriptors opened separately on one
//!   deleted file (same device and inode) stay on one file, whose contents are saved once.
//! - A deleted directory cannot be made again: the checkpoint refuses it, naming it (or
//!   with `CKPT_FD_POLICY=close` records it closed).

use ckpt_image::fdkind::deleted::DeletedFile;
use ckpt_image::{FD_ACTION_REBUILD, FD_KIND_MEMFD};

use super::{Failure, Restoring, Saving};
use crate::config::FdPolicy;
use crate::files::FdError;
use crate::line::Line;
use crate::sys;

/// Most separately opened descriptors of one deleted file a restart opens again.
const MAX_OPENS: usize = 64;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    let (fd, memfd) = (s.fd, s.rec.kind == FD_KIND_MEMFD);
    let close = s.options.policy == FdPolicy::Close;
    if s.rec.mode & libc::S_IFMT != libc::S_IFREG {
        if close {
            return Ok(false);
        }
        return Err(FdError::Save(
            fd as u32,
            "is a deleted directory, which a restart cannot make again (CKPT_FD_POLICY=close \
             leaves it closed at the restart)",
            0,
        ));
    }
    let seals = if memfd {
        sys::get_seals(fd).unwrap_or(0)
    } else {
        0
    };
    let size = s.rec.size;
    // Opened separately on a file saved already: the first one's contents serve both.
    let (dev, ino, kind) = (s.rec.dev, s.rec.ino, s.rec.kind);
    if s.earlier
        .iter()
        .any(|e| e.action == FD_ACTION_REBUILD && e.kind == kind && (e.dev, e.ino) == (dev, ino))
    {
        s.put_aux(&DeletedFile {
            size,
            seals,
            shared: 1,
        })?;
        return Ok(true);
    }
    if size > s.options.max_deleted {
        if close {
            return Ok(false);
        }
        return Err(FdError::TooLarge(
            fd as u32,
            memfd,
            size,
            s.options.max_deleted,
        ));
    }
    let len = size as usize;
    if s.data_room().len() < len {
        return Err(FdError::DataFull(fd as u32));
    }
    read_contents(fd, &mut s.data_room()[..len])?;
    s.commit_data(len)?;
    s.put_aux(&DeletedFile {
        size,
        seals,
        shared: 0,
    })?;
    Ok(true)
}

/// Reads the first `into.len()` bytes of the file open at `fd` into `into`, at offset 0,
/// through `fd` or, when it cannot read (written only, `O_PATH`), a read-only open of it.
fn read_contents(fd: i32, into: &mut [u8]) -> Result<(), FdError> {
    let n = match sys::pread_some(fd, into, 0) {
        Ok(n) => n,
        Err(libc::EBADF | libc::EINVAL) => {
            let mut path = Line::<48>::new();
            path.push(b"/proc/thread-self/fd/")
                .push_decimal(fd as u64)
                .push(b"\0");
            let reader = sys::open(path.as_bytes(), libc::O_RDONLY | libc::O_CLOEXEC, 0)
                .map_err(|e| cannot_read(fd, e))?;
            let r = sys::pread_some(reader, into, 0);
            sys::close(reader);
            r.map_err(|e| cannot_read(fd, e))?
        }
        Err(e) => return Err(cannot_read(fd, e)),
    };
    // (Nothing can shrink it while the program is stopped; zeros, had something done so.)
    into[n..].fill(0);
    Ok(())
}

fn cannot_read(fd: i32, e: i32) -> FdError {
    FdError::Save(
        fd as u32,
        "is a deleted file whose contents cannot be read",
        e,
    )
}

pub(super) fn check(r: &Restoring, i: usize) -> Result<(), Failure> {
    let d = saved(r, i)?;
    if d.shared == 0 && r.data(i).len() as u64 != d.size {
        return Err(Failure::new(b"has lost its saved contents", 0));
    }
    // Where it would be made: a test file, which goes away as it is closed.
    let t = make_file(r, i, &mut [0u8; crate::arena::PATH_MAX + 1])?;
    sys::close(t);
    Ok(())
}

pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let d = saved(r, i)?;
    if d.shared != 0 {
        // Its file is made with the first descriptor of it, which places this one too.
        return Err(Failure::new(
            b"shares its saved contents with a descriptor that was not made again",
            0,
        ));
    }
    let mut path = [0u8; crate::arena::PATH_MAX + 1];
    let t = make_file(r, i, &mut path)?;
    let result = fill_and_open(r, i, t, &d);
    sys::close(t);
    let (mut made, count) = result?;
    r.place(&mut made[..count])
}

/// The saved values of record `i`.
fn saved(r: &Restoring, i: usize) -> Result<DeletedFile, Failure> {
    let aux = r.fds[i].aux(r.names);
    aux.get(..core::mem::size_of::<DeletedFile>())
        .and_then(ckpt_image::read_record)
        .ok_or(Failure::new(b"has no saved contents", 0))
}

/// Writes the saved contents into the new file `t` and opens record `i` and every other
/// record opened separately on the same file on it, each with its flags and offset; then
/// sets the mode and, for a memfd, the seals. The opened descriptors and their records.
fn fill_and_open(
    r: &Restoring,
    i: usize,
    t: i32,
    d: &DeletedFile,
) -> Result<([(i32, usize); MAX_OPENS], usize), Failure> {
    let data = r.data(i);
    sys::pwrite_all(t, data, 0).map_err(|e| Failure::new(b"cannot be made again: write", e))?;
    sys::ftruncate(t, d.size).map_err(|e| Failure::new(b"cannot be made again: ftruncate", e))?;
    let mut made = [(-1, 0); MAX_OPENS];
    let mut count = 0;
    let mut result = Ok(());
    for j in core::iter::once(i).chain(r.same_object(i).filter(|&j| j > i)) {
        if count == MAX_OPENS {
            result = Err(Failure::new(
                b"cannot be made again: more than 64 separate opens of one deleted file",
                0,
            ));
            break;
        }
        match open_on(t, &r.fds[j]) {
            Ok(fd) => {
                made[count] = (fd, j);
                count += 1;
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // Permissions are checked as a file is opened: the saved mode comes after the opens.
    if result.is_ok() {
        result = sys::fchmod(t, r.fds[i].mode & 0o7777)
            .map_err(|e| Failure::new(b"cannot be made again: fchmod", e));
    }
    if result.is_ok() && d.seals != 0 {
        result = sys::add_seals(t, d.seals)
            .map_err(|e| Failure::new(b"cannot be made again: its seals", e));
    }
    if let Err(e) = result {
        for &(fd, _) in &made[..count] {
            sys::close(fd);
        }
        return Err(e);
    }
    Ok((made, count))
}

/// Opens the file `t` again as record `f` says: its flags, at its offset.
fn open_on(t: i32, f: &ckpt_image::FdRecord) -> Result<i32, Failure> {
    let mut path = Line::<48>::new();
    path.push(b"/proc/self/fd/")
        .push_decimal(t as u64)
        .push(b"\0");
    let flags = f.flags as i32
        & !(libc::O_CREAT
            | libc::O_EXCL
            | libc::O_TRUNC
            | libc::O_NOCTTY
            | libc::O_TMPFILE
            | libc::O_DIRECTORY)
        | libc::O_CLOEXEC;
    let fd = sys::open(path.as_bytes(), flags, 0)
        .map_err(|e| Failure::new(b"cannot be made again: open", e))?;
    if f.flags as i32 & libc::O_PATH == 0 {
        if let Err(e) = sys::seek_to(fd, f.pos) {
            sys::close(fd);
            return Err(Failure::new(b"cannot be made again: its offset", e));
        }
    }
    Ok(fd)
}

/// A new empty file for record `i`, open for reading and writing: a memfd with its name,
/// or an unnamed file in its old directory, `$TMPDIR` or `/tmp`, the first that allows
/// one. `path` is room for the directory's name.
fn make_file(r: &Restoring, i: usize, path: &mut [u8]) -> Result<i32, Failure> {
    let name = r.name(i);
    let name = name.strip_suffix(b" (deleted)").unwrap_or(name);
    if r.fds[i].kind == FD_KIND_MEMFD {
        // "/memfd:NAME": the kernel's limit is 249 bytes of NAME.
        let own = name.strip_prefix(b"/memfd:").unwrap_or(b"");
        let n = own.len().min(249);
        path[..n].copy_from_slice(&own[..n]);
        path[n] = 0;
        return sys::memfd_create(&path[..n + 1], libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
            .map_err(|e| Failure::new(b"cannot be made again: memfd_create", e));
    }
    let dir = match name.iter().rposition(|&c| c == b'/') {
        Some(0) => &b"/"[..],
        Some(k) if name[0] == b'/' => &name[..k],
        _ => &b""[..],
    };
    let tmpdir = sys::getenv(c"TMPDIR").unwrap_or(b"");
    let mut last = libc::ENOENT;
    for dir in [dir, tmpdir, b"/tmp"] {
        if dir.is_empty() || dir[0] != b'/' || dir.len() >= path.len() {
            continue;
        }
        path[..dir.len()].copy_from_slice(dir);
        path[dir.len()] = 0;
        match sys::open_tmpfile(&path[..dir.len() + 1], 0o600) {
            Ok(t) => return Ok(t),
            Err(e) => last = e,
        }
    }
    Err(Failure::new(
        b"cannot be made again: no directory allows an unnamed file (O_TMPFILE)",
        last,
    ))
}
