//! The one-line reports of descriptors: a size in words, the name of the descriptor a
//! checkpoint refused, and the lines a restart writes about a descriptor it could not put
//! back, left closed or found changed.
//!
//! Everything here is signal-safe (it runs in a signal handler or the restart): no
//! allocation, no locks, no stdio; a line is built in a fixed buffer and written with one
//! system call.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use ckpt_image::FdRecord;

use super::kinds;
use crate::line::Line;
use crate::sys;

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

/// The link of the descriptor an [`FdError::Unsupported`](super::FdError::Unsupported)
/// names (`pipe:[12345]`), kept for the message: atomics, so that reading it needs no
/// exclusive hold.
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

pub(super) fn note_refused(name: &[u8]) {
    let n = name.len().min(REFUSED.len());
    for (r, &c) in REFUSED.iter().zip(name).take(n) {
        r.store(c, Ordering::Relaxed);
    }
    REFUSED_LEN.store(n as u32, Ordering::Relaxed);
}

/// One line on stderr: `head`, then `: fd N` and the descriptor's name between `around`
/// for each of `fds`, comma-separated; nothing when there is none. Signal-safe.
pub(super) fn say_descriptors<'a, 'n>(
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

pub(super) fn report_restore_error(f: &FdRecord, name: &[u8], what: &[u8], e: i32, end: &[u8]) {
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
pub(super) fn report_failure(f: &FdRecord, name: &[u8], e: kinds::Failure, end: &[u8]) {
    say_fd(f, name, e.what, e.errno, end);
}

/// "ckpt restart: fd N ('NAME') WHAT", then ": ERRNO (errno E)" unless `errno` is 0, and
/// `end` (a newline, or more of the line with one). Signal-safe.
pub(super) fn say_fd(f: &FdRecord, name: &[u8], what: &[u8], errno: i32, end: &[u8]) {
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

pub(super) fn report_changed(f: &FdRecord, name: &[u8], replaced: bool, strict: bool) {
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
}
