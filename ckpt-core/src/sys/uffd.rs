//! userfaultfd in user-mode-only mode with asynchronous write protection, and the
//! `PAGEMAP_SCAN` written bit that goes with it: how incremental checkpoints learn which
//! pages the program wrote (see `crate::dirty`). All signal-safe.

use core::ffi::c_int;

use super::{check, PageRegion, PmScanArg, SysResult};

const UFFD_USER_MODE_ONLY: c_int = 1;
const UFFD_API: u64 = 0xaa;
/// Write faults on protected pages are resolved by the kernel itself: no handler thread,
/// the page is just marked written (Linux 6.7+).
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// Protection also covers pages not populated yet, so their first write is seen.
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;

// _IOWR(0xAA, 0x3F, struct uffdio_api), _IOWR(0xAA, 0x00, struct uffdio_register),
// _IOWR(0xAA, 0x06, struct uffdio_writeprotect).
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xc018_aa06;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

/// A userfaultfd for asynchronous write tracking, closed on exec and non-blocking (nothing
/// ever reads it). Fails where the kernel lacks the features (EINVAL) or refuses
/// userfaultfd (EPERM). Signal-safe.
pub fn uffd_open_wp_async() -> SysResult<c_int> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
    // SAFETY: plain syscall; touches no memory.
    let fd = check(unsafe { libc::syscall(libc::SYS_userfaultfd, flags) })? as c_int;
    let mut api = UffdioApi {
        api: UFFD_API,
        features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
        ioctls: 0,
    };
    // SAFETY: the kernel reads and writes one `struct uffdio_api` at `api`.
    if let Err(e) = check(unsafe { libc::ioctl(fd, UFFDIO_API, &mut api) } as libc::c_long) {
        super::close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// Registers `[start, start + len)` with `uffd` for write protection. EBUSY: part of it is
/// registered with another userfaultfd (the program's own). Signal-safe.
pub fn uffd_register_wp(uffd: c_int, start: u64, len: u64) -> SysResult<()> {
    let mut reg = UffdioRegister {
        range: UffdioRange { start, len },
        mode: UFFDIO_REGISTER_MODE_WP,
        ioctls: 0,
    };
    // SAFETY: the kernel reads and writes one `struct uffdio_register` at `reg`; it changes
    // the range's tracking flags, not its contents or protection.
    check(unsafe { libc::ioctl(uffd, UFFDIO_REGISTER, &mut reg) } as libc::c_long).map(drop)
}

/// Write-protects `[start, start + len)` (registered with `uffd`): the next write to each
/// page marks it written. Signal-safe.
pub fn uffd_write_protect(uffd: c_int, start: u64, len: u64) -> SysResult<()> {
    let mut wp = UffdioWriteprotect {
        range: UffdioRange { start, len },
        mode: UFFDIO_WRITEPROTECT_MODE_WP,
    };
    // SAFETY: the kernel reads one `struct uffdio_writeprotect` at `wp`; asynchronous
    // protection never stops a write, it only records it.
    check(unsafe { libc::ioctl(uffd, UFFDIO_WRITEPROTECT, &mut wp) } as libc::c_long).map(drop)
}

const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
/// `PAGEMAP_SCAN` category: written since protected (or never protected).
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;

/// The written pages of `[start, end)` as ranges in `out`, protected again in the same call
/// (so a write after the call is seen by the next one), from `pagemap` (`/proc/self/pagemap`).
/// Fails with EPERM when part of the range is not registered for asynchronous protection
/// (moved, remapped, never registered): then nothing can be said about it. Returns the
/// ranges filled and the address the walk reached (`end` when done). Signal-safe.
pub fn scan_written_and_protect(
    pagemap: c_int,
    start: u64,
    end: u64,
    out: &mut [PageRegion],
) -> SysResult<usize> {
    let mut arg = PmScanArg {
        flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
        start,
        end,
        category_mask: PAGE_IS_WRITTEN,
        return_mask: PAGE_IS_WRITTEN,
        ..Default::default()
    };
    super::pagemap_scan(pagemap, &mut arg, out)
}
