//! epoll sets: their watches, from the `tfd: N events: X data: Y pos: P ino: I sdev: D`
//! lines of their fdinfo, saved as bytes (one `EpollWatch` each, as many as there are);
//! made again after every other descriptor is in place, with `epoll_create1` and one
//! `epoll_ctl(ADD)` per watch.
//!
//! A watch is keyed by the file and the number it was added with, and it outlives that
//! number while another descriptor keeps the file open: `dup(5)`, `close(5)` leaves a watch
//! `tfd: 5` on a file that is now only fd 6, and fd 5 may name another file by the
//! checkpoint. The inode cannot tell them apart (every eventfd, timerfd and epoll set shares
//! one anonymous inode), so the checkpoint asks the kernel which descriptor holds the very
//! file a watch watches (`kcmp(KCMP_EPOLL_TFD)`; the inode where kcmp is missing) and saves
//! it as the watch's holder. The restart adds the watch with the holder's file under the
//! saved number: when they differ, the holder is copied onto that number just for the
//! `epoll_ctl`, and whatever had the number gets it back.
//!
//! A watch whose file no descriptor held, or whose holder the checkpoint left closed
//! (`CKPT_FD_POLICY=close`), or that the kernel refuses now (a standard descriptor that is
//! a regular file in the restart) is not made again, and the restart names each such
//! watch in one line per set. A set that watches another set has that one made first.

use ckpt_image::fdkind::anon::{EpollSet, EpollWatch, EPOLL_UNHELD};
use ckpt_image::procfs::parse_hex;
use ckpt_image::{read_record, record_bytes, FD_ACTION_CLOSED};

use super::{Failure, Restoring, Saving};
use crate::files::{FdError, LATE, LATE_DUP, PLACED};
use crate::line::Line;
use crate::sys;

const WATCH: usize = core::mem::size_of::<EpollWatch>();

/// How deep sets may watch sets (the kernel allows 4 levels: `EP_MAX_NESTS`).
const MAX_DEPTH: u32 = 8;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    let fd = s.fd;
    let fail = |what: &'static str, e: i32| FdError::Save(fd as u32, what, e);
    let mut path = Line::<48>::new();
    path.push(b"/proc/thread-self/fdinfo/")
        .push_decimal(fd as u64)
        .push(b"\0");
    let info = sys::open(path.as_bytes(), libc::O_RDONLY | libc::O_CLOEXEC, 0)
        .map_err(|e| fail("cannot be saved: its fdinfo", e))?;
    let parsed = read_watches(info, s);
    sys::close(info);
    let count = parsed.map_err(|e| match e {
        ReadError::Read(e) => fail("cannot be saved: its fdinfo", e),
        ReadError::Full => FdError::DataFull(fd as u32),
    })?;

    // Which descriptor holds each watched file (`nth`: the how-manieth watch added as
    // that number, as kcmp counts them: in the order fdinfo lists them).
    let start = s.data_end;
    let mut unheld = 0;
    for k in 0..count {
        let at = start + k * WATCH;
        let Some(mut w) = read_record::<EpollWatch>(&s.data[at..]) else {
            continue;
        };
        let nth = (0..k)
            .filter(|&e| s.data[start + e * WATCH..][..4] == w.tfd.to_ne_bytes())
            .count() as u32;
        w.holder = holder(fd, &w, nth, s.scratch);
        if w.holder == EPOLL_UNHELD {
            unheld += 1;
        }
        s.data[at..at + WATCH].copy_from_slice(record_bytes(core::slice::from_ref(&w)));
    }
    s.commit_data(count * WATCH)?;
    s.put_aux(&EpollSet {
        watches: count as u32,
        unheld,
    })?;
    Ok(true)
}

enum ReadError {
    Read(i32),
    Full,
}

/// Reads the fdinfo text from `info` a piece at a time through `s.scratch` and writes each
/// watch line's `EpollWatch` (holder not known yet) into the free part of `s.data`; how
/// many.
fn read_watches(info: i32, s: &mut Saving) -> Result<usize, ReadError> {
    let room = &mut s.data[s.data_end..];
    let scratch = &mut *s.scratch;
    let mut count = 0;
    let mut kept = 0;
    loop {
        let n = sys::read_full(info, &mut scratch[kept..]).map_err(ReadError::Read)?;
        let end = kept + n;
        let at_end = end < scratch.len();
        let mut start = 0;
        while start < end {
            let line_end = match scratch[start..end].iter().position(|&c| c == b'\n') {
                Some(nl) => start + nl,
                None if at_end => end,
                None => break,
            };
            if let Some(w) = parse_watch(&scratch[start..line_end]) {
                let slot = room
                    .get_mut(count * WATCH..(count + 1) * WATCH)
                    .ok_or(ReadError::Full)?;
                slot.copy_from_slice(record_bytes(core::slice::from_ref(&w)));
                count += 1;
            }
            start = line_end + 1;
        }
        if at_end {
            return Ok(count);
        }
        if start == 0 {
            // A line longer than the scratch memory: not one of the watch lines.
            return Err(ReadError::Read(libc::E2BIG));
        }
        scratch.copy_within(start..end, 0);
        kept = end - start;
    }
}

/// The watch a `tfd: …` line of an epoll set's fdinfo describes.
fn parse_watch(line: &[u8]) -> Option<EpollWatch> {
    if !line.starts_with(b"tfd:") {
        return None;
    }
    let dec = |v: &[u8]| ckpt_image::procfs::parse_dec(v);
    let sdev = parse_hex(value_after(line, b"sdev:")?)?;
    Some(EpollWatch {
        tfd: dec(value_after(line, b"tfd:")?)? as u32,
        holder: EPOLL_UNHELD,
        events: parse_hex(value_after(line, b"events:")?)? as u32,
        reserved: 0,
        data: parse_hex(value_after(line, b"data:")?)?,
        ino: parse_hex(value_after(line, b"ino:")?)?,
        // The kernel's own encoding of the device (major << 20 | minor).
        dev: libc::makedev((sdev >> 20) as u32, (sdev & 0xf_ffff) as u32),
    })
}

/// The word after `key` (and any blanks) in `line`.
pub(super) fn value_after<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &line[at..];
    let start = rest.iter().position(|c| !c.is_ascii_whitespace())?;
    let rest = &rest[start..];
    let end = rest
        .iter()
        .position(|c| c.is_ascii_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The descriptor of this process that holds the file watch `w` (the `nth` added as its
/// number) of set `ep` watches: its own number when that still names the file, another
/// one when the number was closed or reused while a copy stayed open; `EPOLL_UNHELD` when
/// none does. `scratch` lists the descriptors.
fn holder(ep: i32, w: &EpollWatch, nth: u32, scratch: &mut [u8]) -> u32 {
    match sys::epoll_watches(ep, w.tfd, nth, w.tfd as i32) {
        Ok(true) => return w.tfd,
        Ok(false) | Err(libc::EBADF) => {}
        // No kcmp here (a kernel without CONFIG_CHECKPOINT_RESTORE): the number is taken to
        // hold the file when it is the same inode.
        Err(_) => {
            return match sys::fstat(w.tfd as i32) {
                Ok(st) if (st.st_dev, st.st_ino) == (w.dev, w.ino) => w.tfd,
                _ => EPOLL_UNHELD,
            };
        }
    }
    let Ok(dir) = sys::open(
        b"/proc/thread-self/fd\0",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    ) else {
        return EPOLL_UNHELD;
    };
    let mut found = EPOLL_UNHELD;
    'list: while let Ok(n @ 1..) = sys::getdents(dir, scratch) {
        for name in sys::dirent_names(&scratch[..n]) {
            let Some(fd) = ckpt_image::procfs::parse_dec(name) else {
                continue;
            };
            let fd = fd as i32;
            let same_inode =
                matches!(sys::fstat(fd), Ok(st) if (st.st_dev, st.st_ino) == (w.dev, w.ino));
            if fd != dir && same_inode && sys::epoll_watches(ep, w.tfd, nth, fd) == Ok(true) {
                found = fd as u32;
                break 'list;
            }
        }
    }
    sys::close(dir);
    found
}

pub(super) fn check(r: &Restoring, i: usize) -> Result<(), Failure> {
    let set: EpollSet = r
        .aux(i)
        .ok_or(Failure::new(b"has no saved epoll state", 0))?;
    if r.data(i).len() != set.watches as usize * WATCH {
        return Err(Failure::new(b"has damaged saved epoll watches", 0));
    }
    Ok(())
}

pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    rebuild_set(r, i, 0)
}

fn rebuild_set(r: &mut Restoring, i: usize, depth: u32) -> Result<(), Failure> {
    if depth > MAX_DEPTH {
        return Err(Failure::new(
            b"cannot be made again: its epoll sets watch each other deeper than the kernel allows",
            libc::ELOOP,
        ));
    }
    let set: EpollSet = r
        .aux(i)
        .ok_or(Failure::new(b"has no saved epoll state", 0))?;
    let ep = sys::epoll_create(libc::EPOLL_CLOEXEC)
        .map_err(|e| Failure::new(b"cannot be made again: epoll_create1", e))?;
    r.place(&mut [(ep, i)])?;
    // Watches are added through a copy above every saved number, which adding a watch
    // under another descriptor's number (below) cannot disturb.
    let top = r.fds.iter().map(|f| f.fd as i32 + 1).max().unwrap_or(0);
    let work = sys::dup_above(r.fds[i].fd as i32, top)
        .map_err(|e| Failure::new(b"cannot be made again: a copy of it", e))?;
    let mut lost = Line::<1024>::new();
    let mut result = Ok(());
    for k in 0..set.watches as usize {
        let Some(w) = read_record::<EpollWatch>(&r.data(i)[k * WATCH..]) else {
            continue;
        };
        match add_watch(r, work, top, &w, depth) {
            Ok(Ok(())) => {}
            Ok(Err((why, errno))) => {
                lost.push(if lost.as_bytes().is_empty() {
                    b": fd "
                } else {
                    b", fd "
                })
                .push_decimal(w.tfd as u64)
                .push(b" (")
                .push(why);
                if errno != 0 {
                    lost.push(b": ")
                        .push(crate::report::errno_name(errno).as_bytes());
                }
                lost.push(b")");
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    sys::close(work);
    if !lost.as_bytes().is_empty() {
        let mut line = Line::<1280>::new();
        line.push(b"ckpt restart: fd ")
            .push_decimal(r.fds[i].fd as u64)
            .push(b" ('")
            .push(r.name(i))
            .push(b"') no longer watches")
            .push(lost.as_bytes())
            .push(b"\n");
        sys::write_stderr(line.as_bytes());
    }
    result
}

/// Why a watch is not made again, and the errno (0: none).
type Lost = (&'static [u8], i32);

/// Adds watch `w` to the set `work` is a copy of (`top`: above every saved number and
/// `work`). `Ok(Err)`: this watch cannot be made again; `Err`: a set it watches cannot.
fn add_watch(
    r: &mut Restoring,
    work: i32,
    top: i32,
    w: &EpollWatch,
    depth: u32,
) -> Result<Result<(), Lost>, Failure> {
    if w.holder == EPOLL_UNHELD {
        return Ok(Err((
            b"no descriptor of the process held the file it watched at the checkpoint",
            0,
        )));
    }
    let Some(j) = r.fds.iter().position(|f| f.fd == w.holder) else {
        return Ok(Err((
            b"the checkpoint did not record the file it watched",
            0,
        )));
    };
    if r.fds[j].action == FD_ACTION_CLOSED {
        return Ok(Err((
            b"the file it watched was left closed, as CKPT_FD_POLICY=close had the checkpoint record it",
            0,
        )));
    }
    // A set watching a set: that one first.
    if r.plans[j] == LATE {
        rebuild_set(r, j, depth + 1)?;
    } else if r.plans[j] == LATE_DUP {
        let g = r.fds[j].group as usize;
        if r.plans[g] == LATE {
            rebuild_set(r, g, depth + 1)?;
        }
        let (from, to) = (r.fds[g].fd as i32, r.fds[j].fd as i32);
        sys::dup_to(from, to, r.fds[j].cloexec())
            .map_err(|e| Failure::new(b"cannot be made again: a copy of a set it watches", e))?;
        r.plans[j] = PLACED;
    }
    let (tfd, holder) = (w.tfd as i32, w.holder as i32);
    if tfd == holder {
        return Ok(sys::epoll_add(work, tfd, w.events, w.data).map_err(|e| (&b"epoll_ctl"[..], e)));
    }
    // The watch is keyed by its number: the holder's file goes there for the epoll_ctl,
    // and whatever the number names now comes back to it.
    let before = sys::fd_flags(tfd).ok();
    let saved = match before {
        Some(_) => match sys::dup_above(tfd, top) {
            Ok(copy) => Some(copy),
            Err(e) => return Ok(Err((b"cannot move its number's descriptor aside", e))),
        },
        None => None,
    };
    let added = sys::dup_to(holder, tfd, true)
        .and_then(|()| sys::epoll_add(work, tfd, w.events, w.data))
        .map_err(|e| (&b"epoll_ctl"[..], e));
    match (saved, before) {
        (Some(copy), Some(flags)) => {
            let back = sys::dup_to(copy, tfd, flags & libc::FD_CLOEXEC != 0);
            sys::close(copy);
            back.map_err(|e| Failure::new(b"cannot put back a descriptor it moved aside", e))?;
        }
        _ => sys::close(tfd),
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoll_fdinfo_lines() {
        let w = parse_watch(
            b"tfd:       12 events: 1000001c data:                7  pos:0 ino:40e sdev:10",
        )
        .unwrap();
        assert_eq!(
            (w.tfd, w.events, w.data, w.ino),
            (12, 0x1000_001c, 7, 0x40e)
        );
        assert_eq!(w.dev, libc::makedev(0, 0x10));
        assert_eq!(w.holder, EPOLL_UNHELD);
        let w = parse_watch(
            b"tfd:        9 events: c0000019 data: abcdef0123456789  pos:0 ino:40e sdev:10",
        )
        .unwrap();
        assert_eq!(
            (w.tfd, w.events, w.data),
            (9, 0xc000_0019, 0xabcd_ef01_2345_6789)
        );
        assert!(parse_watch(b"flags:\t02").is_none());
    }
}
