//! Memory: protections, reserved buffers and their typed views, the kernel's page tables
//! (`PAGEMAP_SCAN`, pagemap, `mincore`), and raw views of the process's own memory.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::*;

/// Changes the protections of `len` bytes at `addr`.
///
/// # Safety
/// Code that references the range may fault while it lacks the access it needs: the caller
/// changes protections only of a mapping it recorded from `/proc/self/maps` while nothing
/// else runs, and puts them back before anything can rely on them.
pub unsafe fn mprotect(addr: u64, len: u64, prot: u32) -> SysResult<()> {
    // SAFETY: the caller's obligation, above; the call itself touches no memory of ours.
    check(
        unsafe { libc::mprotect(addr as *mut c_void, len as usize, prot as c_int) } as libc::c_long,
    )
    .map(drop)
}

/// Unmaps `len` bytes at `addr`.
///
/// # Safety
/// Nothing may reference the range any more (here: the restart stub's reservation, after a
/// restart).
pub unsafe fn munmap(addr: u64, len: u64) {
    // SAFETY: the caller's obligation, above.
    unsafe { libc::munmap(addr as *mut c_void, len as usize) };
}

/// Most reservations [`reserve`] notes as ckpt's own memory.
const MAX_RESERVATIONS: usize = 64;

/// The ranges [`reserve`] handed out, `[start, end)`, `RESERVED_COUNT` of them: memory that
/// only ckpt writes (incremental checkpoints never vouch for it, `write::incremental`).
static RESERVED: [(AtomicU64, AtomicU64); MAX_RESERVATIONS] =
    [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_RESERVATIONS];
static RESERVED_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Whether `[start, end)` overlaps memory that [`reserve`] handed out (all of it, when more
/// was reserved than could be noted). Signal-safe.
pub fn overlaps_reserved(start: u64, end: u64) -> bool {
    let n = RESERVED_COUNT.load(Ordering::Acquire);
    n > MAX_RESERVATIONS
        || RESERVED[..n]
            .iter()
            .any(|(lo, hi)| start < hi.load(Ordering::Relaxed) && end > lo.load(Ordering::Relaxed))
}

/// Reserves `len` bytes of zero-filled, not-yet-committed memory for the checkpoint path.
/// Called at library load, never in a signal handler.
pub fn reserve(len: usize) -> &'static mut [u8] {
    let bytes = reserve_unnoted(len);
    let start = bytes.as_ptr() as u64;
    let i = RESERVED_COUNT.load(Ordering::Relaxed);
    if let Some((lo, hi)) = RESERVED.get(i) {
        lo.store(start, Ordering::Relaxed);
        hi.store(start + len as u64, Ordering::Relaxed);
    }
    RESERVED_COUNT.store(i + 1, Ordering::Release);
    bytes
}

/// A shared anonymous mapping of `len` bytes, zero-filled and committed only where written:
/// shared with a forked writer child, which fills it for its parent. With `replace_at`, in
/// this process alone in place of the one made there before (after a fork, the child's
/// own). Returns its address. Signal-safe.
pub fn map_shared(len: u64, replace_at: Option<u64>) -> SysResult<u64> {
    let (at, fixed) = match replace_at {
        Some(at) => (at, libc::MAP_FIXED),
        None => (0, 0),
    };
    // SAFETY: a fresh shared anonymous mapping; with MAP_FIXED it replaces, in this process
    // only, the mapping the caller made there earlier and holds no other view of.
    let p = unsafe {
        libc::mmap(
            at as *mut c_void,
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | fixed,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    Ok(p as u64)
}

/// A view of `len` bytes at `addr` of a mapping made by [`map_shared`].
///
/// # Safety
/// The range is mapped read-write for as long as the view lives (a replacement at the same
/// place keeps it so), and nothing else in this process refers to it.
pub unsafe fn shared_bytes(addr: u64, len: u64) -> &'static mut [u8] {
    // SAFETY: the caller's obligation, above.
    unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len as usize) }
}

/// The writable part of the loaded object (libckpt) that holds this code, `[start, end)`
/// page-rounded: its data and bss, which ckpt's own code writes (a forked writer too).
/// From `dl_iterate_phdr`, at library load, never in a signal handler.
pub fn own_image_writable() -> Option<(u64, u64)> {
    struct Search {
        inside: u64,
        found: Option<(u64, u64)>,
    }
    extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and
        // `data` is the Search below, used by nothing else meanwhile.
        let (info, search) = unsafe { (&*info, &mut *(data as *mut Search)) };
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: the loader's program headers of this object, `dlpi_phnum` of them.
        let phdrs = unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        let base = info.dlpi_addr;
        let load = |p: &&libc::Elf64_Phdr| p.p_type == libc::PT_LOAD;
        let ours = phdrs
            .iter()
            .filter(load)
            .any(|p| (base + p.p_vaddr..base + p.p_vaddr + p.p_memsz).contains(&search.inside));
        if !ours {
            return 0;
        }
        let page = ckpt_image::PAGE_SIZE;
        let mut range: Option<(u64, u64)> = None;
        for p in phdrs
            .iter()
            .filter(load)
            .filter(|p| p.p_flags & libc::PF_W != 0)
        {
            let lo = (base + p.p_vaddr) & !(page - 1);
            let hi = (base + p.p_vaddr + p.p_memsz).div_ceil(page) * page;
            range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        search.found = range;
        1
    }
    let mut search = Search {
        inside: own_image_writable as *const () as u64,
        found: None,
    };
    // SAFETY: `visit` only reads what the loader passes and writes `search`, which outlives
    // the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast()) };
    search.found
}

/// Reserves memory as [`reserve`], but not noted as ckpt's own (memory of ckpt's that is
/// never part of an image has no need).
fn reserve_unnoted(len: usize) -> &'static mut [u8] {
    // SAFETY: a fresh private anonymous mapping, owned by the returned slice for the life of
    // the process.
    unsafe {
        let p = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            panic!("ckpt: cannot reserve {len} bytes of memory");
        }
        core::slice::from_raw_parts_mut(p.cast(), len)
    }
}

/// Views reserved memory (zero-filled, page aligned, used for nothing else) as a table of
/// records. At library load.
pub fn as_records<T: ckpt_image::Record>(bytes: &'static mut [u8]) -> &'static mut [T] {
    ckpt_image::records_mut(bytes).expect("reserved memory is page aligned")
}

pub fn current_brk() -> u64 {
    // SAFETY: brk(0) only queries.
    unsafe { libc::syscall(libc::SYS_brk, 0) as u64 }
}

/// Writes `v` to the 4-byte word at `addr` (glibc's cached thread id).
///
/// # Safety
/// `addr` must be a live, 4-byte aligned word of this process that nothing else writes at
/// the same time.
#[inline(always)]
pub unsafe fn store_u32(addr: u64, v: u32) {
    // SAFETY: the caller's obligation, above.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) };
}

/// Reads the 4-byte word at `addr`.
///
/// # Safety
/// `addr` must be a live, readable, 4-byte aligned word of this process.
#[inline(always)]
pub unsafe fn load_u32(addr: u64) -> u32 {
    // SAFETY: the caller's obligation, above.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

use ckpt_image::pagemap::PAGEMAP_SCAN;
pub use ckpt_image::pagemap::{PageRegion, PmScanArg};

/// Runs `PAGEMAP_SCAN` on `fd` (/proc/self/pagemap) with `arg`, filling `out`.
pub fn pagemap_scan(fd: c_int, arg: &mut PmScanArg, out: &mut [PageRegion]) -> SysResult<usize> {
    arg.size = core::mem::size_of::<PmScanArg>() as u64;
    arg.vec = out.as_mut_ptr() as u64;
    arg.vec_len = out.len() as u64;
    // SAFETY: the kernel writes at most vec_len regions into `out`.
    check(unsafe { libc::ioctl(fd, PAGEMAP_SCAN, arg as *mut PmScanArg) } as libc::c_long)
}

/// Why [`pagemap_scan_each`] stopped short.
pub enum ScanStop<E> {
    /// A scan failed with this errno; `first`: its first call, where a kernel that lacks
    /// `PAGEMAP_SCAN` or one of the categories asked says so.
    Scan { errno: i32, first: bool },
    /// `each` stopped it.
    Each(E),
}

/// `PAGEMAP_SCAN` of all of `[arg.start, arg.end)`, batch by batch into `out`, each batch
/// given to `each`. The kernel's `walk_end` is not trustworthy here, so a full batch means
/// more, from the end of its last region. Signal-safe.
pub fn pagemap_scan_each<E>(
    fd: c_int,
    mut arg: PmScanArg,
    out: &mut [PageRegion],
    mut each: impl FnMut(&[PageRegion]) -> Result<(), E>,
) -> Result<(), ScanStop<E>> {
    let mut first = true;
    while arg.start < arg.end {
        let got =
            pagemap_scan(fd, &mut arg, out).map_err(|errno| ScanStop::Scan { errno, first })?;
        each(&out[..got]).map_err(ScanStop::Each)?;
        if got < out.len() {
            break;
        }
        arg.start = out[got - 1].end;
        first = false;
    }
    Ok(())
}

/// Reads pagemap entries for pages starting at `addr` (fallback when PAGEMAP_SCAN is absent).
pub fn pagemap_read(fd: c_int, addr: u64, out: &mut [u64]) -> SysResult<usize> {
    let off = (addr / 4096) * 8;
    // SAFETY: reads into `out`, whose byte length is passed.
    let r = unsafe {
        libc::pread(
            fd,
            out.as_mut_ptr().cast(),
            out.len() * 8,
            off as libc::off_t,
        )
    };
    check(r as libc::c_long).map(|n| n / 8)
}

/// `mincore` residency of `len` bytes at `addr`, one byte per page into `out`.
pub fn mincore(addr: u64, len: u64, out: &mut [u8]) -> SysResult<()> {
    assert!(out.len() as u64 >= len.div_ceil(4096));
    // SAFETY: out has room for one byte per page of the range (checked).
    check(
        unsafe { libc::mincore(addr as *mut c_void, len as usize, out.as_mut_ptr()) }
            as libc::c_long,
    )
    .map(drop)
}

/// An atomic view of a 4-byte word of the program's memory (a field of a
/// `pthread_mutex_t`).
///
/// # Safety
/// `addr` must point to a live, 4-byte aligned word that is only accessed atomically or by
/// the calling thread while the reference is used.
#[inline(always)]
pub unsafe fn atomic_u32_at<'a>(addr: u64) -> &'a core::sync::atomic::AtomicU32 {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(addr as *const core::sync::atomic::AtomicU32) }
}

/// A view of `len` bytes of this process's memory at `addr`.
///
/// # Safety
/// The range must be mapped and readable, and stay so (nothing unmaps it or changes its
/// protections) while the view is used: the writer passes ranges the kernel has just read
/// for the image, while the process is frozen in the handler, under the fault guard.
pub unsafe fn memory<'a>(addr: u64, len: u64) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's obligation, above; the view is only read.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) }
}

/// Reads the pages of `[start, start + len)` in without touching them from user space
/// (`MADV_POPULATE_READ`): swapped pages come back, and a page that holds nothing yet (a
/// write-protection marker) becomes the shared zero page. Fails on memory that cannot be
/// read. Signal-safe.
pub fn populate_read(start: u64, len: u64) -> SysResult<()> {
    const MADV_POPULATE_READ: c_int = 22;
    // SAFETY: advice that only faults pages in as a read would; it changes no contents.
    check(
        unsafe { libc::madvise(start as *mut c_void, len as usize, MADV_POPULATE_READ) }
            as libc::c_long,
    )
    .map(drop)
}

/// Gives the pages of `buf` back to the kernel (`MADV_DONTNEED`): they read as zeros after.
/// Signal-safe.
pub fn discard(buf: &mut [u8]) {
    let start = buf.as_mut_ptr() as u64 & !(ckpt_image::PAGE_SIZE - 1);
    let end = ckpt_image::page_up(buf.as_mut_ptr() as u64 + buf.len() as u64);
    // SAFETY: the caller owns `buf` exclusively and gives up its contents; whole pages of
    // its reserved mapping are dropped, nothing else.
    unsafe {
        libc::madvise(
            start as *mut c_void,
            (end - start) as usize,
            libc::MADV_DONTNEED,
        )
    };
}
