//! Capture: what the address space holds, as region and extent records.
//!
//! `/proc/self/maps` is read in one go into reserved memory (reading it piecewise can show a
//! changing list). Each mapping becomes a [`RegionRecord`]; its stored pages become
//! [`ExtentRecord`](ckpt_image::ExtentRecord)s, chosen by what backs the mapping:
//!
//! | mapping                                  | stored                                       |
//! |------------------------------------------|----------------------------------------------|
//! | `[vvar]`, `[vvar_vclock]`                | nothing (the kernel's own are moved in)      |
//! | `[vdso]`                                 | everything (to compare with the new kernel's)|
//! | private anonymous, `PROT_NONE` anything  | pages present or swapped, not the zero page  |
//! | private file (existing or deleted)       | everything readable (the file may be gone)   |
//! | shared file that exists                  | everything readable                          |
//! | shared anonymous, memfd, deleted shared  | pages resident in the shared object          |
//!
//! Guard pages (`MADV_GUARD_INSTALL`: any access faults; `PAGEMAP_SCAN` reports them) are
//! never read: they become extents without payload, installed again at restart.
//!
//! What the program set on each mapping with `mmap`, `madvise`, `mlock` and `mseal` is read
//! from the `VmFlags` lines of `/proc/self/smaps` into the region's flags
//! (`region_flags::VM_FLAGS`). That file lists the same mappings as the maps (the process is
//! frozen: one thread, in the handler), which is checked mapping by mapping. Reading it walks
//! the page tables for its counters, ~9 ms per GiB of touched memory here, so it is read by
//! whichever process writes the image: with `CKPT_FORK`, the writer child, off the program's
//! pause. A child inherits no memory locks, though, so those are noted for it before the fork
//! (`note_locks`), which costs the pause that read only when something is locked.
//!
//! Everything here runs in the checkpoint signal handler: signal-safe, no allocation.

use ckpt_image::procfs::{self, line_range};

use ckpt_image::{prot, region_flags as rf, RegionRecord, EXTENT_GUARD};

use crate::arena::Arena;

use crate::sys;

mod pages;
mod vmflags;

use pages::{present_pages, push_extent, resident_pages, whole_but_guards, Scan};
use vmflags::{attach_vm_flags, SMAPS};
pub use vmflags::{forget_locks, note_locks, NotedLock};

/// Why a capture failed (reported by the caller with the errno where there is one).
#[derive(Clone, Copy, Debug)]
pub enum CaptureError {
    ReadMaps(i32),
    MapsTooLarge,
    BadMaps,
    TooManyRegions,
    TooManyExtents,
    NamesTooLong,
    Pagemap(i32),
    Mincore(i32),
    ReadSmaps(i32),
    /// `/proc/self/smaps` does not list the mapping the maps listed at this address (or
    /// lists one there that the maps did not).
    SmapsDiffer(u64),
    SmapsLineTooLong,
}

impl CaptureError {
    pub fn describe(self) -> (&'static str, i32) {
        match self {
            CaptureError::ReadMaps(e) => ("cannot read /proc/self/maps", e),
            CaptureError::MapsTooLarge => ("/proc/self/maps is larger than the reserved buffer", 0),
            CaptureError::BadMaps => ("cannot parse /proc/self/maps", 0),
            CaptureError::TooManyRegions => ("too many mappings", 0),
            CaptureError::TooManyExtents => ("too many separate runs of pages", 0),
            CaptureError::NamesTooLong => ("mapping names exceed the reserved buffer", 0),
            CaptureError::Pagemap(e) => ("cannot read /proc/self/pagemap", e),
            CaptureError::Mincore(e) => ("mincore failed", e),
            CaptureError::ReadSmaps(e) => ("cannot read /proc/self/smaps", e),
            CaptureError::SmapsDiffer(_) => (
                "/proc/self/smaps and /proc/self/maps list different mappings",
                0,
            ),
            CaptureError::SmapsLineTooLong => (
                "a line of /proc/self/smaps is longer than the reserved buffer",
                0,
            ),
        }
    }

    /// The address the error is about, if any.
    pub fn address(self) -> Option<u64> {
        match self {
            CaptureError::SmapsDiffer(addr) => Some(addr),
            _ => None,
        }
    }
}

/// Where user space ends: the one mapping above it, `[vsyscall]`, is the kernel's, at a
/// fixed address, and not ours to restore.
pub(crate) const USER_END: u64 = 0x0000_8000_0000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Nothing,
    Whole,
    Present,
    Resident,
}

fn method(r: &RegionRecord) -> Method {
    if r.flags & (rf::VVAR | rf::VVAR_VCLOCK) != 0 {
        Method::Nothing
    } else if r.flags & rf::VDSO != 0 {
        Method::Whole
    } else if r.prot & (prot::READ | prot::WRITE | prot::EXEC) == 0 {
        Method::Present
    } else if r.flags & rf::SHARED != 0 {
        if r.flags & rf::FILE != 0 && r.flags & rf::DELETED == 0 {
            Method::Whole
        } else {
            Method::Resident
        }
    } else if r.flags & rf::FILE != 0 {
        Method::Whole
    } else {
        Method::Present
    }
}

/// Parses one maps line into a region record (name appended to `names`).
fn parse_line(
    line: &[u8],
    names: &mut [u8],
    names_len: &mut usize,
) -> Result<Option<RegionRecord>, CaptureError> {
    let procfs::MapsLine {
        start,
        end,
        perms,
        offset,
        dev: (maj, min),
        inode,
        name,
    } = procfs::maps_line(line).ok_or(CaptureError::BadMaps)?;
    if end <= start {
        return Err(CaptureError::BadMaps);
    }
    if start >= USER_END {
        return Ok(None);
    }
    let mut p = 0;
    if perms[0] == b'r' {
        p |= prot::READ;
    }
    if perms[1] == b'w' {
        p |= prot::WRITE;
    }
    if perms[2] == b'x' {
        p |= prot::EXEC;
    }
    let mut flags = 0;
    if perms[3] == b's' {
        flags |= rf::SHARED;
    }
    match name {
        b"[stack]" => flags |= rf::STACK,
        b"[heap]" => flags |= rf::HEAP,
        b"[vvar]" => flags |= rf::VVAR,
        b"[vvar_vclock]" => flags |= rf::VVAR_VCLOCK,
        b"[vdso]" => flags |= rf::VDSO,
        _ => {}
    }
    if name.first() == Some(&b'/') {
        flags |= rf::FILE;
        if name.ends_with(b" (deleted)") {
            flags |= rf::DELETED;
        }
        if name.starts_with(b"/memfd:") {
            flags |= rf::MEMFD | rf::DELETED;
        }
    }
    let name_offset = *names_len;
    let name_end = name_offset + name.len();
    if name_end > names.len() {
        return Err(CaptureError::NamesTooLong);
    }
    names[name_offset..name_end].copy_from_slice(name);
    *names_len = name_end;
    Ok(Some(RegionRecord {
        start,
        len: end - start,
        prot: p,
        flags,
        file_offset: offset,
        inode,
        dev: (maj << 32) | min,
        name_offset: name_offset as u32,
        name_len: name.len() as u32,
        ..Default::default()
    }))
}

/// The capture of one checkpoint: counts of the filled part of the arena's tables.
#[derive(Clone, Copy, Debug, Default)]
pub struct Captured {
    pub regions: usize,
    pub extents: usize,
    pub names: usize,
    /// Words of the auxiliary vector, up to and including its AT_NULL pair.
    pub auxv_words: usize,
}

/// The `[vdso]` range that `maps` (the text of `/proc/<pid>/maps`) lists. Signal-safe.
pub fn vdso_range(maps: &[u8]) -> Option<(u64, u64)> {
    let line = maps
        .split(|&c| c == b'\n')
        .find(|l| l.ends_with(b"[vdso]"))?;
    line_range(line)
}

/// Bytes of address space that `maps` (the text of `/proc/<pid>/maps`) lists. Signal-safe.
pub fn mapped_bytes(maps: &[u8]) -> u64 {
    maps.split(|&c| c == b'\n')
        .filter_map(|line| {
            let (lo, hi) = line_range(line)?;
            hi.checked_sub(lo)
        })
        .sum()
}

/// Reads the maps and plans what each region stores. Signal-safe.
pub fn capture_regions(arena: &mut Arena) -> Result<Captured, CaptureError> {
    let len =
        sys::read_file(b"/proc/thread-self/maps\0", arena.maps).map_err(CaptureError::ReadMaps)?;
    if len == arena.maps.len() {
        return Err(CaptureError::MapsTooLarge);
    }
    let mut out = Captured::default();
    let maps = &arena.maps[..len];
    for line in maps.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(r) = parse_line(line, arena.names, &mut out.names)? {
            // ckpt's ledgers of incremental checkpoints are in no image.
            if crate::write::incremental::is_ledger_mapping(r.start, r.len) {
                out.names -= r.name_len as usize;
                continue;
            }
            *arena
                .regions
                .get_mut(out.regions)
                .ok_or(CaptureError::TooManyRegions)? = r;
            out.regions += 1;
        }
    }
    let regions = &mut arena.regions[..out.regions];
    attach_vm_flags(SMAPS, arena.smaps, regions)?;
    // In a writer child, the locks its parent noted (it inherits none of its own).
    let noted = core::mem::take(&mut arena.noted_locks);
    for lock in &arena.locks[..noted] {
        let at = regions
            .binary_search_by_key(&lock.start, |r| r.start)
            .map_err(|_| CaptureError::SmapsDiffer(lock.start))?;
        if regions[at].start + regions[at].len != lock.end {
            return Err(CaptureError::SmapsDiffer(lock.start));
        }
        regions[at].flags |= lock.flags;
    }

    let pagemap = sys::open(
        b"/proc/thread-self/pagemap\0",
        libc::O_RDONLY | libc::O_CLOEXEC,
        0,
    )
    .ok();
    let mut scan = Scan {
        ok: pagemap.is_some(),
        guard_ok: true,
    };
    let mut result = Ok(());
    for i in 0..out.regions {
        let first = out.extents;
        let r = arena.regions[i];
        let mut huge = false;
        let step = match method(&r) {
            Method::Nothing => Ok(()),
            Method::Whole => match pagemap {
                Some(fd) if scan.ok && scan.guard_ok => {
                    whole_but_guards(fd, &r, arena, &mut out.extents, &mut scan)
                }
                _ => push_extent(arena.extents, &mut out.extents, first, r.start, r.len, 0),
            },
            Method::Present => match pagemap {
                Some(fd) => present_pages(fd, &r, arena, &mut out.extents, &mut scan, &mut huge),
                None => push_extent(arena.extents, &mut out.extents, first, r.start, r.len, 0),
            },
            Method::Resident => resident_pages(&r, arena, &mut out.extents),
        };
        if let Err(e) = step {
            result = Err(e);
            break;
        }
        let reg = &mut arena.regions[i];
        if huge {
            reg.flags |= rf::HUGE;
        }
        reg.first_extent = first as u32;
        reg.extent_count = (out.extents - first) as u32;
        reg.stored = arena.extents[first..out.extents]
            .iter()
            .filter(|e| e.flags & EXTENT_GUARD == 0)
            .map(|e| e.len)
            .sum();
    }
    if let Some(fd) = pagemap {
        sys::close(fd);
    }
    result.map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_mapped_bytes() {
        let maps = b"00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n\
            7ffd1000-7ffd3000 rw-p 00000000 00:00 0 [stack]\n";
        assert_eq!(mapped_bytes(maps), 0x52000 + 0x2000);
        assert_eq!(mapped_bytes(b""), 0);
        let with_vdso = b"7ffd1000-7ffd3000 rw-p 00000000 00:00 0 [stack]\n\
            7ffe5000-7ffe7000 r-xp 00000000 00:00 0                          [vdso]\n";
        assert_eq!(vdso_range(with_vdso), Some((0x7ffe5000, 0x7ffe7000)));
        assert_eq!(vdso_range(maps), None);
    }

    #[test]
    fn parses_lines() {
        let mut names = [0u8; 256];
        let mut nl = 0;
        let r = parse_line(
            b"7f1c2a000000-7f1c2a021000 r-xp 00002000 fe:01 131090                     /usr/lib/x86_64-linux-gnu/libc.so.6",
            &mut names,
            &mut nl,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.start, 0x7f1c2a000000);
        assert_eq!(r.len, 0x21000);
        assert_eq!(r.prot, prot::READ | prot::EXEC);
        assert_eq!(r.flags, rf::FILE);
        assert_eq!(r.file_offset, 0x2000);
        assert_eq!(r.inode, 131090);
        assert_eq!(&names[..nl], b"/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(method(&r), Method::Whole);

        let r = parse_line(
            b"7ffd1c9d6000-7ffd1c9f7000 rw-p 00000000 00:00 0      [stack]",
            &mut names,
            &mut nl,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.flags, rf::STACK);
        assert_eq!(method(&r), Method::Present);

        let r = parse_line(
            b"7f0000000000-7f0000001000 rw-s 00000000 00:01 1234   /memfd:x (deleted)",
            &mut names,
            &mut nl,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.flags, rf::SHARED | rf::FILE | rf::DELETED | rf::MEMFD);
        assert_eq!(method(&r), Method::Resident);

        let r = parse_line(
            b"7f0000000000-7f0000001000 ---p 00000000 00:00 0",
            &mut names,
            &mut nl,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.name_len, 0);
        assert_eq!(method(&r), Method::Present);

        assert!(parse_line(
            b"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]",
            &mut names,
            &mut nl
        )
        .unwrap()
        .is_none());
        assert!(parse_line(b"nonsense", &mut names, &mut nl).is_err());
    }
}
