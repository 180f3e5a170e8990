//! Which pages of a region to store: present or swapped pages of anonymous memory (never
//! the shared zero page), everything of private file mappings, what is resident in shared
//! memory; guard pages become extents without payload. From `PAGEMAP_SCAN`, or pagemap
//! where the kernel has no scan. Signal-safe.

use ckpt_image::{ExtentRecord, RegionRecord, EXTENT_GUARD, PAGE_SIZE};

use super::CaptureError;
use crate::arena::Arena;
use crate::sys::{self, PmScanArg, ScanStop};

/// Appends an extent with `flags` (0 or `EXTENT_GUARD`), merging it with the previous one
/// when they touch, are of the same kind and both belong to the region whose extents start
/// at `first`.
pub(super) fn push_extent(
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
pub(super) struct Scan {
    /// `PAGEMAP_SCAN` exists.
    pub ok: bool,
    /// It knows `PAGE_IS_GUARD` (Linux 6.14+); older kernels have no guard pages either.
    pub guard_ok: bool,
}

/// All of `r` but its guard pages, which become guard extents. Signal-safe.
pub(super) fn whole_but_guards(
    fd: i32,
    r: &RegionRecord,
    arena: &mut Arena,
    n: &mut usize,
    scan: &mut Scan,
) -> Result<(), CaptureError> {
    let base_n = *n;
    let end = r.start + r.len;
    let mut stored_to = r.start;
    let arg = PmScanArg {
        start: r.start,
        end,
        category_anyof_mask: PAGE_IS_GUARD,
        return_mask: PAGE_IS_GUARD,
        ..Default::default()
    };
    let extents = &mut *arena.extents;
    let scanned = sys::pagemap_scan_each(fd, arg, arena.scan, |guards| {
        for g in guards {
            push_extent(extents, n, base_n, stored_to, g.start - stored_to, 0)?;
            push_extent(extents, n, base_n, g.start, g.end - g.start, EXTENT_GUARD)?;
            stored_to = g.end;
        }
        Ok(())
    });
    match scanned {
        Ok(()) => {}
        Err(ScanStop::Scan {
            errno: libc::EINVAL,
            first: true,
        }) => {
            scan.guard_ok = false;
            return push_extent(arena.extents, n, base_n, r.start, r.len, 0);
        }
        Err(ScanStop::Scan { errno, .. }) => return Err(CaptureError::Pagemap(errno)),
        Err(ScanStop::Each(e)) => return Err(e),
    }
    push_extent(arena.extents, n, base_n, stored_to, end - stored_to, 0)
}

/// Pages of `r` that hold data: present or swapped, and not the shared zero page; its
/// guard pages (which the kernel reports as swapped) become guard extents. Sets `huge`
/// when some are in transparent huge pages (only `PAGEMAP_SCAN` tells).
pub(super) fn present_pages(
    fd: i32,
    r: &RegionRecord,
    arena: &mut Arena,
    n: &mut usize,
    scan: &mut Scan,
    huge: &mut bool,
) -> Result<(), CaptureError> {
    let base_n = *n;
    let end = r.start + r.len;
    // Swapped pages are read in and the region scanned again, once: in a process that
    // tracks its writes (`crate::dirty`), a page not populated yet carries a
    // write-protection marker that the scan reports as swapped, and such a page holds
    // nothing (read in, it is the zero page, which is not stored). A forked writer sees
    // no markers (the fork drops them); real swapped pages are read either way.
    let mut read_in = false;
    let swapped_only =
        |c: u64| c & (PAGE_IS_SWAPPED | PAGE_IS_PRESENT | PAGE_IS_GUARD) == PAGE_IS_SWAPPED;
    while scan.ok {
        let guard = if scan.guard_ok { PAGE_IS_GUARD } else { 0 };
        let arg = PmScanArg {
            start: r.start,
            end,
            category_inverted: PAGE_IS_PFNZERO,
            category_mask: PAGE_IS_PFNZERO,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_HUGE | guard,
            ..Default::default()
        };
        let extents = &mut *arena.extents;
        // `Err(None)`: swapped pages to read in first.
        let scanned = sys::pagemap_scan_each(fd, arg, arena.scan, |batch| {
            if !read_in && batch.iter().any(|pr| swapped_only(pr.categories)) {
                return Err(None);
            }
            for pr in batch {
                let kind = if pr.categories & PAGE_IS_GUARD != 0 {
                    EXTENT_GUARD
                } else {
                    0
                };
                push_extent(extents, n, base_n, pr.start, pr.end - pr.start, kind).map_err(Some)?;
                if pr.categories & PAGE_IS_HUGE != 0 {
                    *huge = true;
                }
            }
            Ok(())
        });
        match scanned {
            Ok(()) => return Ok(()),
            Err(ScanStop::Each(None)) => {
                read_in = true;
                read_in_swapped(fd, r, arena, guard);
                *n = base_n;
            }
            Err(ScanStop::Each(Some(e))) => return Err(e),
            // An older kernel: first without the guard category, then without the scan.
            Err(ScanStop::Scan {
                errno: libc::EINVAL,
                first: true,
            }) if scan.guard_ok => scan.guard_ok = false,
            Err(ScanStop::Scan {
                errno: libc::ENOTTY | libc::EINVAL,
                first: true,
            }) => scan.ok = false,
            Err(ScanStop::Scan { errno, .. }) => return Err(CaptureError::Pagemap(errno)),
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

/// Reads in (`MADV_POPULATE_READ`) every swapped page of `r` that is not a guard page
/// (`guard`: the guard category, 0 on kernels without it), as far as it can.
fn read_in_swapped(fd: i32, r: &RegionRecord, arena: &mut Arena, guard: u64) {
    let arg = PmScanArg {
        start: r.start,
        end: r.start + r.len,
        category_inverted: PAGE_IS_PRESENT | guard,
        category_mask: PAGE_IS_SWAPPED | PAGE_IS_PRESENT | guard,
        return_mask: PAGE_IS_SWAPPED,
        ..Default::default()
    };
    let _ = sys::pagemap_scan_each(fd, arg, arena.scan, |swapped| {
        for pr in swapped {
            let _ = sys::populate_read(pr.start, pr.end - pr.start);
        }
        Ok::<(), ()>(())
    });
}

/// Pages of a shared mapping that exist in the shared object (resident), per `mincore`.
pub(super) fn resident_pages(
    r: &RegionRecord,
    arena: &mut Arena,
    n: &mut usize,
) -> Result<(), CaptureError> {
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
