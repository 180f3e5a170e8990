//! Capture: what the address space holds, as region and extent records.
//!
//! `/proc/self/maps` is read in one go into reserved memory (reading it piecewise can show a
//! changing list). Each mapping becomes a [`RegionRecord`]; its stored pages become
//! [`ExtentRecord`]s, chosen by what backs the mapping:
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

use ckpt_image::maps::{line_range, parse_hex};
use ckpt_image::{prot, region_flags as rf, ExtentRecord, RegionRecord, EXTENT_GUARD, PAGE_SIZE};

use crate::arena::Arena;
use crate::sys::{self, PmScanArg};

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
const USER_END: u64 = 0x0000_8000_0000_0000;

const SMAPS: &[u8] = b"/proc/self/smaps\0";

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

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        v.checked_mul(10)?
            .checked_add((c as char).to_digit(10)? as u64)
    })
}

/// Splits off the next blank-separated field.
fn field<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let s = rest.iter().position(|&c| c != b' ').unwrap_or(rest.len());
    let r = &rest[s..];
    let e = r.iter().position(|&c| c == b' ').unwrap_or(r.len());
    *rest = &r[e..];
    &r[..e]
}

/// Parses one maps line into a region record (name appended to `names`).
fn parse_line(
    line: &[u8],
    names: &mut [u8],
    names_len: &mut usize,
) -> Result<Option<RegionRecord>, CaptureError> {
    let (start, end) = line_range(line).ok_or(CaptureError::BadMaps)?;
    let mut rest = line;
    let _range = field(&mut rest);
    let perms = field(&mut rest);
    let offset = field(&mut rest);
    let dev = field(&mut rest);
    let inode = field(&mut rest);
    let name = {
        let s = rest.iter().position(|&c| c != b' ').unwrap_or(rest.len());
        &rest[s..]
    };
    if perms.len() != 4 || end <= start {
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
    let (maj, min) = match dev.iter().position(|&c| c == b':') {
        Some(i) => (
            parse_hex(&dev[..i]).unwrap_or(0),
            parse_hex(&dev[i + 1..]).unwrap_or(0),
        ),
        None => (0, 0),
    };
    Ok(Some(RegionRecord {
        start,
        len: end - start,
        prot: p,
        flags,
        file_offset: parse_hex(offset).ok_or(CaptureError::BadMaps)?,
        inode: parse_dec(inode).ok_or(CaptureError::BadMaps)?,
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
    let len = sys::read_file(b"/proc/self/maps\0", arena.maps).map_err(CaptureError::ReadMaps)?;
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

    let pagemap = sys::open(b"/proc/self/pagemap\0", libc::O_RDONLY | libc::O_CLOEXEC, 0).ok();
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
fn attach_vm_flags(
    smaps: &[u8],
    buf: &mut [u8],
    regions: &mut [RegionRecord],
) -> Result<(), CaptureError> {
    let mut next = 0;
    let mut current = None;
    for_each_line(smaps, buf, |line| {
        if let Some((start, end)) = line_range(line) {
            current = None;
            if start >= USER_END {
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

/// Notes the mappings the program has locked, for the writer child about to be forked,
/// which inherits no locks (its own smaps would show none): its capture adds them. Costs the
/// pause a read of `/proc/self/status`, and only when something is locked one of
/// `/proc/self/smaps`. False when they cannot be noted: this process must then write the
/// image itself. Signal-safe.
pub fn note_locks(arena: &mut Arena) -> bool {
    arena.noted_locks = 0;
    let locked = match sys::read_file(b"/proc/self/status\0", arena.misc) {
        Ok(n) if n < arena.misc.len() => status_kib(&arena.misc[..n], b"VmLck:"),
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

/// The number of a `Key:   N kB` line of `/proc/self/status`.
fn status_kib(status: &[u8], key: &[u8]) -> Option<u64> {
    let value = status
        .split(|&c| c == b'\n')
        .find_map(|l| l.strip_prefix(key))?;
    let start = value.iter().position(|c| !c.is_ascii_whitespace())?;
    let digits = &value[start..];
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    parse_dec(&digits[..end])
}

/// Appends an extent with `flags` (0 or `EXTENT_GUARD`), merging it with the previous one
/// when they touch, are of the same kind and both belong to the region whose extents start
/// at `first`.
fn push_extent(
    extents: &mut [ExtentRecord],
    n: &mut usize,
    first: usize,
    addr: u64,
    len: u64,
    flags: u32,
) -> Result<(), CaptureError> {
    if len == 0 {
        return Ok(());
    }
    if *n > first {
        let prev = &mut extents[*n - 1];
        if prev.addr + prev.len == addr && prev.flags == flags {
            prev.len += len;
            return Ok(());
        }
    }
    *extents.get_mut(*n).ok_or(CaptureError::TooManyExtents)? = ExtentRecord {
        addr,
        len,
        flags,
        ..Default::default()
    };
    *n += 1;
    Ok(())
}

const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
const PAGE_IS_PFNZERO: u64 = 1 << 5;
const PAGE_IS_HUGE: u64 = 1 << 6;
const PAGE_IS_GUARD: u64 = 1 << 8;

/// What this kernel's `PAGEMAP_SCAN` can do, learnt from its first answers.
struct Scan {
    /// `PAGEMAP_SCAN` exists.
    ok: bool,
    /// It knows `PAGE_IS_GUARD` (Linux 6.14+); older kernels have no guard pages either.
    guard_ok: bool,
}

/// All of `r` but its guard pages, which become guard extents. Signal-safe.
fn whole_but_guards(
    fd: i32,
    r: &RegionRecord,
    arena: &mut Arena,
    n: &mut usize,
    scan: &mut Scan,
) -> Result<(), CaptureError> {
    let base_n = *n;
    let end = r.start + r.len;
    let mut at = r.start;
    let mut stored_to = r.start;
    while at < end {
        let mut arg = PmScanArg {
            start: at,
            end,
            category_anyof_mask: PAGE_IS_GUARD,
            return_mask: PAGE_IS_GUARD,
            ..Default::default()
        };
        let got = match sys::pagemap_scan(fd, &mut arg, arena.scan) {
            Ok(got) => got,
            Err(libc::EINVAL) if at == r.start => {
                scan.guard_ok = false;
                return push_extent(arena.extents, n, base_n, r.start, r.len, 0);
            }
            Err(e) => return Err(CaptureError::Pagemap(e)),
        };
        for g in &arena.scan[..got] {
            push_extent(arena.extents, n, base_n, stored_to, g.start - stored_to, 0)?;
            push_extent(
                arena.extents,
                n,
                base_n,
                g.start,
                g.end - g.start,
                EXTENT_GUARD,
            )?;
            stored_to = g.end;
        }
        // walk_end is not trustworthy on this kernel: a full buffer means "more".
        if got < arena.scan.len() {
            break;
        }
        at = arena.scan[got - 1].end;
    }
    push_extent(arena.extents, n, base_n, stored_to, end - stored_to, 0)
}

/// Pages of `r` that hold data: present or swapped, and not the shared zero page; its
/// guard pages (which the kernel reports as swapped) become guard extents. Sets `huge`
/// when some are in transparent huge pages (only `PAGEMAP_SCAN` tells).
fn present_pages(
    fd: i32,
    r: &RegionRecord,
    arena: &mut Arena,
    n: &mut usize,
    scan: &mut Scan,
    huge: &mut bool,
) -> Result<(), CaptureError> {
    let base_n = *n;
    let end = r.start + r.len;
    let mut at = r.start;
    while scan.ok && at < end {
        let guard = if scan.guard_ok { PAGE_IS_GUARD } else { 0 };
        let mut arg = PmScanArg {
            start: at,
            end,
            category_inverted: PAGE_IS_PFNZERO,
            category_mask: PAGE_IS_PFNZERO,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_HUGE | guard,
            ..Default::default()
        };
        match sys::pagemap_scan(fd, &mut arg, arena.scan) {
            Ok(got) => {
                for pr in &arena.scan[..got] {
                    let kind = if pr.categories & PAGE_IS_GUARD != 0 {
                        EXTENT_GUARD
                    } else {
                        0
                    };
                    push_extent(arena.extents, n, base_n, pr.start, pr.end - pr.start, kind)?;
                    if pr.categories & PAGE_IS_HUGE != 0 {
                        *huge = true;
                    }
                }
                // walk_end is not trustworthy on this kernel: a full buffer means "more".
                if got < arena.scan.len() {
                    return Ok(());
                }
                at = arena.scan[got - 1].end;
            }
            // An older kernel: first without the guard category, then without the scan.
            Err(libc::EINVAL) if at == r.start && scan.guard_ok => scan.guard_ok = false,
            Err(libc::ENOTTY) | Err(libc::EINVAL) if at == r.start && *n == base_n => {
                scan.ok = false;
            }
            Err(e) => return Err(CaptureError::Pagemap(e)),
        }
    }
    if scan.ok {
        return Ok(());
    }
    // Fallback: one pagemap entry per page (bit 63 present, bit 62 swapped, bit 58 a guard
    // page, which is not present).
    let mut at = r.start;
    while at < end {
        let pages = (((end - at) / PAGE_SIZE) as usize).min(arena.pagemap.len());
        let got = sys::pagemap_read(fd, at, &mut arena.pagemap[..pages])
            .map_err(CaptureError::Pagemap)?;
        if got == 0 {
            return Err(CaptureError::Pagemap(libc::EIO));
        }
        for (k, entry) in arena.pagemap[..got].iter().enumerate() {
            let kind = if entry & (1 << 58) != 0 {
                EXTENT_GUARD
            } else if entry & (3 << 62) != 0 {
                0
            } else {
                continue;
            };
            push_extent(
                arena.extents,
                n,
                base_n,
                at + k as u64 * PAGE_SIZE,
                PAGE_SIZE,
                kind,
            )?;
        }
        at += got as u64 * PAGE_SIZE;
    }
    Ok(())
}

/// Pages of a shared mapping that exist in the shared object (resident), per `mincore`.
fn resident_pages(r: &RegionRecord, arena: &mut Arena, n: &mut usize) -> Result<(), CaptureError> {
    let base_n = *n;
    let end = r.start + r.len;
    let mut at = r.start;
    while at < end {
        let pages = (((end - at) / PAGE_SIZE) as usize).min(arena.residency.len());
        let len = pages as u64 * PAGE_SIZE;
        sys::mincore(at, len, &mut arena.residency[..pages]).map_err(CaptureError::Mincore)?;
        for k in 0..pages {
            if arena.residency[k] & 1 != 0 {
                push_extent(
                    arena.extents,
                    n,
                    base_n,
                    at + k as u64 * PAGE_SIZE,
                    PAGE_SIZE,
                    0,
                )?;
            }
        }
        at += len;
    }
    Ok(())
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
        assert_eq!(status_kib(status, b"VmLck:"), Some(12));
        assert_eq!(status_kib(status, b"VmPin:"), Some(0));
        assert_eq!(status_kib(status, b"VmSwap:"), None);
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
