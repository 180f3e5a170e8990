//! What the program set on each mapping (`mmap`, `madvise`, `mlock`, `mseal`), from the
//! `VmFlags` lines of `/proc/self/smaps`, and the memory locks a forked writer would not
//! see. Signal-safe.

use ckpt_image::procfs::{line_range, status_kib};
use ckpt_image::{region_flags as rf, RegionRecord};

use super::{CaptureError, USER_END};
use crate::arena::Arena;
use crate::sys;

pub(super) const SMAPS: &[u8] = b"/proc/thread-self/smaps\0";

/// Calls `each` with every line of the file at `path` (NUL-terminated), read in pieces
/// through `buf`, which must hold the longest line. Signal-safe.
fn for_each_line(
    path: &[u8],
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]) -> Result<(), CaptureError>,
) -> Result<(), CaptureError> {
    let fd =
        sys::open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0).map_err(CaptureError::ReadSmaps)?;
    let mut lines = || {
        let mut held = 0;
        loop {
            if held == buf.len() {
                return Err(CaptureError::SmapsLineTooLong);
            }
            let got = sys::read_full(fd, &mut buf[held..]).map_err(CaptureError::ReadSmaps)?;
            if got == 0 {
                break;
            }
            held += got;
            let Some(last) = buf[..held].iter().rposition(|&c| c == b'\n') else {
                continue;
            };
            for line in buf[..last].split(|&c| c == b'\n') {
                each(line)?;
            }
            buf.copy_within(last + 1..held, 0);
            held -= last + 1;
        }
        if held > 0 {
            each(&buf[..held])?;
        }
        Ok(())
    };
    let result = lines();
    sys::close(fd);
    result
}

/// Adds to each of `regions` (just made from the maps, in their order) the flags of its
/// `VmFlags` line in `smaps` (the path of `/proc/self/smaps`), read through `buf`. Each
/// mapping there must be the region at the same place in the list. Signal-safe.
pub(super) fn attach_vm_flags(
    smaps: &[u8],
    buf: &mut [u8],
    regions: &mut [RegionRecord],
) -> Result<(), CaptureError> {
    let mut next = 0;
    let mut current = None;
    for_each_line(smaps, buf, |line| {
        if let Some((start, end)) = line_range(line) {
            current = None;
            // Mappings the maps listed but capture left out: above user space, and the
            // ledgers of incremental checkpoints (in no image).
            if start >= USER_END || crate::write::incremental::is_ledger_mapping(start, end - start)
            {
                return Ok(());
            }
            match regions.get(next) {
                Some(r) if r.start == start && r.start + r.len == end => current = Some(next),
                _ => return Err(CaptureError::SmapsDiffer(start)),
            }
            next += 1;
        } else if let Some(list) = line.strip_prefix(b"VmFlags:") {
            // The vDSO family's flags are the kernel's (`[vvar]` is `dd`), not the program's.
            match current.take() {
                Some(i) if regions[i].flags & rf::VDSO_FAMILY == 0 => {
                    regions[i].flags |= rf::from_vm_flags(list);
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    match regions.get(next) {
        Some(missing) => Err(CaptureError::SmapsDiffer(missing.start)),
        None => Ok(()),
    }
}

/// A mapping the program had locked, noted for the writer child.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NotedLock {
    pub start: u64,
    pub end: u64,
    /// `LOCKED`, and `LOCKONFAULT` when so.
    pub flags: u32,
    pub _pad: u32,
}

ckpt_image::record_layout!(NotedLock {
    start: u64,
    end: u64,
    flags: u32,
    _pad: u32,
});

/// Notes the mappings the program has locked, for the writer child about to be forked,
/// which inherits no locks (its own smaps would show none): its capture adds them. Costs the
/// pause a read of `/proc/self/status`, and only when something is locked one of
/// `/proc/self/smaps`. False when they cannot be noted: this process must then write the
/// image itself. Signal-safe.
pub fn note_locks(arena: &mut Arena) -> bool {
    arena.noted_locks = 0;
    let locked = match sys::read_file(b"/proc/thread-self/status\0", arena.misc) {
        Ok(n) if n < arena.misc.len() => status_kib(&arena.misc[..n], b"VmLck"),
        _ => None,
    };
    match locked {
        Some(0) => return true,
        Some(_) => {}
        None => return false,
    }
    let locks = &mut *arena.locks;
    let mut noted = 0;
    let mut current = None;
    let result = for_each_line(SMAPS, arena.smaps, |line| {
        if let Some(range) = line_range(line) {
            current = Some(range);
        } else if let Some(list) = line.strip_prefix(b"VmFlags:") {
            let flags = rf::from_vm_flags(list) & (rf::LOCKED | rf::LOCKONFAULT);
            if let (Some((start, end)), true) = (current.take(), flags != 0) {
                *locks.get_mut(noted).ok_or(CaptureError::TooManyRegions)? = NotedLock {
                    start,
                    end,
                    flags,
                    _pad: 0,
                };
                noted += 1;
            }
        }
        Ok(())
    });
    if result.is_err() {
        return false;
    }
    arena.noted_locks = noted;
    true
}

/// Drops the note of `note_locks` (in the process that made it, once its writer child has
/// been forked or not: the note is that child's, and would be stale at the next checkpoint).
pub fn forget_locks(arena: &mut Arena) {
    arena.noted_locks = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file holding `text`, removed on drop.
    struct TextFile(std::path::PathBuf);

    impl TextFile {
        fn new(name: &str, text: &str) -> TextFile {
            let path = std::env::temp_dir().join(format!("ckpt-{name}-{}", std::process::id()));
            std::fs::write(&path, text).unwrap();
            TextFile(path)
        }

        fn path(&self) -> Vec<u8> {
            let mut p = self.0.as_os_str().as_encoded_bytes().to_vec();
            p.push(0);
            p
        }
    }

    impl Drop for TextFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const SMAPS_TEXT: &str = "\
00400000-00401000 r-xp 00000000 08:02 173521   /usr/bin/prog
Size:                  4 kB
VmFlags: rd ex mr mw me sd
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 
Size:               1024 kB
Rss:                  64 kB
VmFlags: rd wr mr mw me dc ac wf
7f0000200000-7f0000300000 rw-p 00000000 00:00 0 
VmFlags: rd wr mr mw me lo lf ac nr
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
VmFlags: ex
";

    fn region(start: u64, end: u64) -> RegionRecord {
        RegionRecord {
            start,
            len: end - start,
            ..Default::default()
        }
    }

    #[test]
    fn attaches_vm_flags_whatever_the_pieces() {
        let file = TextFile::new("smaps", SMAPS_TEXT);
        // Buffers from the longest line (83 bytes and its newline) up: lines split across reads are joined.
        for size in [84, 85, 97, 128, 4096] {
            let mut regions = [
                region(0x40_0000, 0x40_1000),
                region(0x7f00_0000_0000, 0x7f00_0010_0000),
                region(0x7f00_0020_0000, 0x7f00_0030_0000),
            ];
            let mut buf = vec![0u8; size];
            attach_vm_flags(&file.path(), &mut buf, &mut regions).unwrap();
            assert_eq!(regions[0].flags, 0, "buffer {size}");
            assert_eq!(regions[1].flags, rf::DONTFORK | rf::WIPEONFORK);
            assert_eq!(
                regions[2].flags,
                rf::LOCKED | rf::LOCKONFAULT | rf::NORESERVE
            );
        }
        let mut buf = [0u8; 83];
        let mut regions = [
            region(0x40_0000, 0x40_1000),
            region(0x7f00_0000_0000, 0x7f00_0010_0000),
            region(0x7f00_0020_0000, 0x7f00_0030_0000),
        ];
        assert!(matches!(
            attach_vm_flags(&file.path(), &mut buf, &mut regions),
            Err(CaptureError::SmapsLineTooLong)
        ));
    }

    #[test]
    fn refuses_smaps_that_list_other_mappings() {
        let file = TextFile::new("smaps-differ", SMAPS_TEXT);
        let mut buf = [0u8; 4096];
        let run = |regions: &mut [RegionRecord], buf: &mut [u8]| {
            let result = attach_vm_flags(&file.path(), buf, regions);
            match result {
                Err(CaptureError::SmapsDiffer(at)) => Some(at),
                Err(e) => panic!("{e:?}"),
                Ok(()) => None,
            }
        };
        // A region that ends elsewhere, one too many, one too few.
        let mut other_end = [
            region(0x40_0000, 0x40_1000),
            region(0x7f00_0000_0000, 0x7f00_0020_0000),
            region(0x7f00_0020_0000, 0x7f00_0030_0000),
        ];
        assert_eq!(run(&mut other_end, &mut buf), Some(0x7f00_0000_0000));
        let mut more = [
            region(0x40_0000, 0x40_1000),
            region(0x7f00_0000_0000, 0x7f00_0010_0000),
            region(0x7f00_0020_0000, 0x7f00_0030_0000),
            region(0x7f00_0040_0000, 0x7f00_0050_0000),
        ];
        assert_eq!(run(&mut more, &mut buf), Some(0x7f00_0040_0000));
        let mut fewer = [
            region(0x40_0000, 0x40_1000),
            region(0x7f00_0000_0000, 0x7f00_0010_0000),
        ];
        assert_eq!(run(&mut fewer, &mut buf), Some(0x7f00_0020_0000));
    }

    #[test]
    fn reads_status_numbers() {
        let status = b"Name:\tx\nVmPeak:\t   2048 kB\nVmLck:\t      12 kB\nVmPin:\t 0 kB\n";
        assert_eq!(status_kib(status, b"VmLck"), Some(12));
        assert_eq!(status_kib(status, b"VmPin"), Some(0));
        assert_eq!(status_kib(status, b"VmSwap"), None);
    }
}
