//! Deleted files and memfds: their saved values (the contents are `FdRecord::data_*`), and
//! the file locks a descriptor's open file held (`FileLock`), which follow the kind-specific
//! values of a deleted file or memfd and are the whole of them for a reopened file.

use crate::{FdRecord, FD_KIND_DELETED, FD_KIND_MEMFD};

/// A deleted file or memfd (`FD_KIND_DELETED`, `FD_KIND_MEMFD`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletedFile {
    /// Its size at the checkpoint: the saved bytes are its first `size` bytes.
    pub size: u64,
    /// A memfd's seals (`F_GET_SEALS`: `F_SEAL_*`); 0 for a deleted file.
    pub seals: u32,
    /// 1 when another record (the first of the same device and inode, opened separately)
    /// holds the contents, and the restart opens this one on the file made for it.
    pub shared: u32,
}

crate::record_layout!(DeletedFile {
    size: u64,
    seals: u32,
    shared: u32,
});

/// `FileLock::kind`: `flock`.
pub const LOCK_FLOCK: u32 = 1;
/// `FileLock::kind`: a POSIX record lock (`fcntl F_SETLK`), the process's.
pub const LOCK_POSIX: u32 = 2;
/// `FileLock::kind`: an open file description lock (`F_OFD_SETLK`).
pub const LOCK_OFD: u32 = 3;
/// `FileLock::kind`: one a restart does not take again (a lease, a delegation).
pub const LOCK_OTHER: u32 = 4;

/// `FileLock::end` of a lock that reaches the end of the file, however far it grows.
pub const LOCK_TO_EOF: u64 = u64::MAX;

/// A lock held through a descriptor's open file description at the checkpoint, as the
/// `lock:` lines of `/proc/self/fdinfo` show it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileLock {
    /// `LOCK_FLOCK`, `LOCK_POSIX`, `LOCK_OFD` or `LOCK_OTHER`.
    pub kind: u32,
    /// 1 for a write (exclusive) lock, 0 for a read (shared) one.
    pub write: u32,
    /// The first byte it covers (0 for `flock`).
    pub start: u64,
    /// The last byte it covers, or `LOCK_TO_EOF`.
    pub end: u64,
}

crate::record_layout!(FileLock {
    kind: u32,
    write: u32,
    start: u64,
    end: u64,
});

impl FileLock {
    /// Parses the text after `lock:` of one fdinfo line, such as
    /// `1: POSIX  ADVISORY  WRITE 32010 fe:00:10011232 0 4` or
    /// `1: FLOCK  ADVISORY  WRITE 32010 fe:00:10011232 0 EOF`.
    pub fn parse(line: &[u8]) -> Option<FileLock> {
        let mut words = line
            .split(|&c| c == b' ' || c == b'\t')
            .filter(|w| !w.is_empty());
        let _id = words.next()?;
        let kind = match words.next()? {
            b"FLOCK" => LOCK_FLOCK,
            b"POSIX" => LOCK_POSIX,
            b"OFDLCK" => LOCK_OFD,
            _ => LOCK_OTHER,
        };
        let _advisory = words.next()?;
        let write = match words.next()? {
            b"WRITE" => 1,
            b"READ" => 0,
            _ => {
                return Some(FileLock {
                    kind: LOCK_OTHER,
                    ..Default::default()
                })
            }
        };
        let _pid = words.next()?;
        let _file = words.next()?;
        let start = crate::procfs::parse_dec(words.next()?)?;
        let end = match words.next()? {
            b"EOF" => LOCK_TO_EOF,
            w => crate::procfs::parse_dec(w)?,
        };
        Some(FileLock {
            kind,
            write,
            start,
            end,
        })
    }
}

/// Where the locks start among the kind-specific values of a record of `kind`: after a
/// deleted file's or memfd's own values, at the start for a reopened file; `None` for kinds
/// whose locks are not saved.
pub fn locks_at(kind: u32, reopens: bool) -> Option<usize> {
    match kind {
        FD_KIND_DELETED | FD_KIND_MEMFD => Some(core::mem::size_of::<DeletedFile>()),
        _ if reopens => Some(0),
        _ => None,
    }
}

/// The locks saved with `f`, whose kind-specific values are `aux`.
pub fn locks<'a>(f: &FdRecord, aux: &'a [u8]) -> impl Iterator<Item = FileLock> + 'a {
    let at = locks_at(f.kind, f.action == crate::FD_ACTION_REOPEN)
        .filter(|&at| at <= aux.len())
        .unwrap_or(aux.len());
    aux[at..]
        .chunks_exact(core::mem::size_of::<FileLock>())
        .filter_map(crate::read_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_lines() {
        let posix = FileLock::parse(b"1: POSIX  ADVISORY  WRITE 32010 fe:00:10011232 0 4");
        assert_eq!(
            posix,
            Some(FileLock {
                kind: LOCK_POSIX,
                write: 1,
                start: 0,
                end: 4
            })
        );
        let flock = FileLock::parse(b"1: FLOCK  ADVISORY  READ 32010 fe:00:10011232 0 EOF");
        assert_eq!(
            flock,
            Some(FileLock {
                kind: LOCK_FLOCK,
                write: 0,
                start: 0,
                end: LOCK_TO_EOF
            })
        );
        let ofd = FileLock::parse(b"2: OFDLCK ADVISORY  WRITE -1 fe:00:1 100 109").unwrap();
        assert_eq!((ofd.kind, ofd.start, ofd.end), (LOCK_OFD, 100, 109));
        let lease = FileLock::parse(b"1: LEASE  ACTIVE    READ 9 fe:00:1 0 EOF").unwrap();
        assert_eq!(lease.kind, LOCK_OTHER);
        assert_eq!(FileLock::parse(b"1: POSIX"), None);
    }
}
