//! Each saved region mapped back and filled: read from the file (its checksums checked as
//! it goes; LZ4 frames decoded into place) or, in a lazy restart, mapped from the file;
//! then the properties the program had set on it, its protections and its guard pages.
//! Dense private memory is filled in huge pages elsewhere and moved into place
//! ([`restart_stub::huge_fill`], [`HugeFill`]).

use super::*;
use restart_stub::huge_fill::{
    self, Mode, PageRegion, Piece, PmScanArg, Verdict, HUGE_PAGE, WINDOW,
};
use restart_stub::properties::MADV_HUGEPAGE;

/// The userfaultfd that moves pages filled in huge pages into the program's regions, opened
/// on first use and closed before the jump. Moving needs `UFFDIO_MOVE` (Linux 6.8); where
/// the kernel refuses anything on the way, the stub reads in place as it always did, so a
/// refusal costs nothing but speed. So does a kernel that gives small pages: each window is
/// judged ([`huge_fill::judge`]) and the fast path given up for the rest of the restart.
pub(crate) struct HugeFill {
    /// The descriptor; `None` before the first use and once the fast path is given up.
    uffd: Option<usize>,
    /// `/proc/self/pagemap`, opened with the userfaultfd, which tells how many of a window's
    /// pages are huge; `None` when it cannot be opened (no `/proc`), and then the fast path
    /// goes on.
    pagemap: Option<usize>,
    given_up: bool,
    mode: Mode,
}

impl HugeFill {
    /// `mode`: what `CKPT_HUGE_FILL` says.
    pub(crate) fn new(mode: Mode) -> Self {
        HugeFill {
            uffd: None,
            pagemap: None,
            given_up: mode == Mode::Off,
            mode,
        }
    }

    /// The descriptor, opened on the first call; `None` when this kernel cannot move pages.
    fn uffd(&mut self) -> Option<usize> {
        if self.uffd.is_none() && !self.given_up {
            // SAFETY: opens a NUL-terminated path, which the kernel only reads.
            let pagemap = unsafe {
                syscall3(
                    SYS_OPEN,
                    c"/proc/self/pagemap".as_ptr() as usize,
                    O_RDONLY | O_CLOEXEC,
                    0,
                )
            };
            self.pagemap = (pagemap >= 0).then_some(pagemap as usize);
            // SAFETY: creates a descriptor; no memory is touched.
            let fd = unsafe { syscall3(SYS_USERFAULTFD, O_CLOEXEC | UFFD_USER_MODE_ONLY, 0, 0) };
            if fd < 0 {
                self.given_up = true;
                return None;
            }
            self.uffd = Some(fd as usize);
            let mut api = [UFFD_API, UFFD_FEATURE_MOVE, 0];
            // SAFETY: the kernel reads and writes the three words of struct uffdio_api.
            if unsafe {
                syscall3(
                    SYS_IOCTL,
                    fd as usize,
                    UFFDIO_API,
                    api.as_mut_ptr() as usize,
                )
            } < 0
            {
                self.give_up();
            }
        }
        self.uffd
    }

    /// Closes the descriptor: at the end of the restart, or when moving failed once (so
    /// that later regions do not try again).
    pub(crate) fn give_up(&mut self) {
        for fd in [self.uffd.take(), self.pagemap.take()]
            .into_iter()
            .flatten()
        {
            // SAFETY: closes a descriptor the stub opened.
            unsafe { syscall3(SYS_CLOSE, fd, 0, 0) };
        }
        self.given_up = true;
    }

    /// Whether the fast path goes on after the window of `len` bytes at `at`, just filled
    /// (always with `CKPT_HUGE_FILL=1`).
    fn judge(&mut self, at: u64, len: u64) -> Verdict {
        if self.mode == Mode::Always {
            return Verdict::Keep;
        }
        huge_fill::judge(len, self.huge_bytes(at, len))
    }

    /// How many bytes of `[at, at + len)` (at most a window) the kernel maps with 2 MiB
    /// page table entries; `None` when it cannot tell (no `/proc`, a kernel before 6.7).
    fn huge_bytes(&self, at: u64, len: u64) -> Option<u64> {
        let fd = self.pagemap?;
        // A run is at least a huge page: a window has room for no more runs than this.
        let mut runs = [PageRegion::default(); (WINDOW / HUGE_PAGE) as usize];
        let mut arg = PmScanArg {
            size: core::mem::size_of::<PmScanArg>() as u64,
            start: at,
            end: at + len,
            vec: runs.as_mut_ptr() as u64,
            vec_len: runs.len() as u64,
            category_mask: PAGE_IS_HUGE,
            return_mask: PAGE_IS_HUGE,
            ..PmScanArg::default()
        };
        // SAFETY: the kernel reads and updates `arg` and writes at most `vec_len` records
        // into `runs`; it only reads the page tables of the stub's own window.
        let found = unsafe {
            syscall3(
                SYS_IOCTL,
                fd,
                ckpt_image::pagemap::PAGEMAP_SCAN as usize,
                &mut arg as *mut PmScanArg as usize,
            )
        };
        let found = usize::try_from(found).ok()?.min(runs.len());
        Some(runs[..found].iter().map(|run| run.end - run.start).sum())
    }

    /// Moves the `len` bytes filled at `from` to `to`, inside region `r`; returns how many
    /// bytes, from the start, are now at `to` (all of them unless the kernel refused).
    ///
    /// The range is registered with the userfaultfd only while the pages move, and the
    /// whole region is (a part would split its mapping in two, which need not merge again).
    /// Nothing touches the region meanwhile: a fault in it now would wait for an answer
    /// that never comes.
    fn move_pages(&mut self, r: &ckpt_image::RegionRecord, to: u64, from: u64, len: u64) -> u64 {
        let Some(uffd) = self.uffd() else { return 0 };
        let mut reg = [r.start, r.len, UFFDIO_REGISTER_MODE_MISSING, 0];
        // SAFETY: the kernel reads and writes the four words of struct uffdio_register;
        // registering changes how faults in the region are handled, and nothing faults in
        // it until it is unregistered below.
        if unsafe { syscall3(SYS_IOCTL, uffd, UFFDIO_REGISTER, reg.as_mut_ptr() as usize) } < 0 {
            self.give_up();
            return 0;
        }
        let mut moved = 0;
        while moved < len {
            let mut mv = [to + moved, from + moved, len - moved, 0, 0];
            // SAFETY: the kernel reads struct uffdio_move and writes its last word; it
            // moves pages of the stub's scratch mapping to empty pages of the region.
            let ret = unsafe { syscall3(SYS_IOCTL, uffd, UFFDIO_MOVE, mv.as_mut_ptr() as usize) };
            let progress = mv[4] as i64;
            if progress > 0 {
                moved += progress as u64;
            }
            if ret < 0 && !(ret == -EAGAIN && progress > 0) {
                break;
            }
        }
        let range = [r.start, r.len];
        // SAFETY: the kernel reads struct uffdio_range.
        if unsafe { syscall3(SYS_IOCTL, uffd, UFFDIO_UNREGISTER, range.as_ptr() as usize) } < 0 {
            // A region left registered would hang the program at its first fault there.
            die(
                "cannot unregister region from userfaultfd",
                Some(r.start),
                EXIT_RESTORE_FAILED,
            );
        }
        if moved < len {
            self.give_up();
        }
        moved
    }
}

/// A scratch mapping of `WINDOW` bytes aligned to a huge page, advised to fill in huge
/// pages; it lives while one region is filled (a later region's `MAP_FIXED` could land on
/// it), and only its address space: its pages are moved away as soon as they are filled.
struct Scratch {
    base: usize,
    len: usize,
}

impl Scratch {
    fn new() -> Option<Scratch> {
        let len = (WINDOW + HUGE_PAGE) as usize;
        // SAFETY: a new mapping where the kernel finds room; it replaces nothing.
        let base = unsafe {
            syscall6(
                SYS_MMAP,
                0,
                len,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                usize::MAX,
                0,
            )
        };
        if base < 0 {
            return None;
        }
        let scratch = Scratch {
            base: base as usize,
            len,
        };
        // SAFETY: advice on the stub's own scratch mapping.
        unsafe { syscall3(SYS_MADVISE, scratch.at(), WINDOW as usize, MADV_HUGEPAGE) };
        Some(scratch)
    }

    /// Where the window starts: the first huge page boundary.
    fn at(&self) -> usize {
        (self.base as u64).next_multiple_of(HUGE_PAGE) as usize
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: unmaps the stub's own scratch mapping, which nothing references.
        unsafe { syscall3(SYS_MUNMAP, self.base, self.len, 0) };
    }
}

/// Faults in `[at, at + len)` writable with one call instead of one trap per page.
fn populate(at: u64, len: u64) {
    // SAFETY: advice on memory the stub maps; it changes nothing the stub relies on.
    unsafe { syscall3(SYS_MADVISE, at as usize, len as usize, MADV_POPULATE_WRITE) };
}

/// A lazy restart reads a region with at most this much stored, rather than map it.
const LAZY_MIN_STORED: u64 = 64 << 10;

/// Maps region `r` at its address and fills it (lazy: maps its payload from the checkpoint
/// file), then gives it back its protection, its guard pages and what the program had set
/// on it: advice, lock and seal. Losing one of those the program relies on is said on
/// stderr; the restart goes on.
pub(crate) fn restore_region(
    fd: usize,
    r: &ckpt_image::RegionRecord,
    tables: &Tables,
    lazy: bool,
    huge: &mut HugeFill,
) {
    let shared = r.flags & region_flags::SHARED != 0;
    // What the program set on the mapping; not on the saved vDSO image, which is patched below
    // and was the kernel's.
    let own = if r.flags & region_flags::VDSO_FAMILY == 0 {
        r.flags
    } else {
        0
    };
    let mut flags = MAP_FIXED | MAP_ANONYMOUS | map_flags(own);
    flags |= if shared { MAP_SHARED } else { MAP_PRIVATE };
    let prot = r.prot as usize;
    let fills = tables.stored_extents_of(r).next().is_some();
    let initial = if fills { PROT_READ | PROT_WRITE } else { prot };
    let map = |flags| {
        // SAFETY: maps at an address of the saved layout, which the stub has cleared of everything but its own reservation.
        unsafe {
            syscall6(
                SYS_MMAP,
                r.start as usize,
                r.len as usize,
                initial,
                flags,
                usize::MAX,
                0,
            )
        }
    };
    let mut got = map(flags);
    // Without MAP_NORESERVE the whole mapping is charged against the commit limit, which the
    // kernel may refuse now: memory is shorter than when the program mapped it, or the
    // original was never charged (read-only or PROT_NONE memory, filled here through a
    // writable mapping; a shared file mapping, restored as shared memory). Uncharged, it
    // still restarts; only writable private memory, which was charged, has lost something.
    if got == -ENOMEM && flags & MAP_NORESERVE == 0 {
        got = map(flags | MAP_NORESERVE);
        if got == r.start as isize && !shared && prot & PROT_WRITE != 0 {
            warn_region(
                r.start,
                "mapped MAP_NORESERVE: the kernel refused to charge it against the commit limit",
            );
        }
    }
    if got != r.start as isize {
        die("cannot map region", Some(r.start), EXIT_RESTORE_FAILED);
    }
    for advice in advice_before_fill(own) {
        // SAFETY: advice on a region the stub maps; it changes nothing the stub relies on.
        unsafe { syscall3(SYS_MADVISE, r.start as usize, r.len as usize, advice) };
    }
    // Lazy: private memory is mapped from the checkpoint file and read on first touch.
    // Shared memory must stay shared anonymous memory, a stack must keep growing down, and
    // MADV_WIPEONFORK needs anonymous memory, so those are always read.
    // And a region with little stored (a thread's stack, a small heap) is read: one read
    // costs less than mapping its pieces and faulting each page in from the file (a
    // program of 256 threads restarted lazily in 4.95 times the time of one thread).
    let keep_anonymous = region_flags::STACK | region_flags::GROWSDOWN | region_flags::WIPEONFORK;
    let eager = !lazy || shared || own & keep_anonymous != 0 || r.stored <= LAZY_MIN_STORED;
    if !eager {
        for e in tables.stored_extents_of(r) {
            if e.flags & ckpt_image::EXTENT_LZ4 != 0 {
                // Compressed payloads cannot be mapped; they are read.
                read_extent(fd, e);
                continue;
            }
            // SAFETY: maps at an address of the saved layout, which the stub has cleared of everything but its own reservation.
            let got = unsafe {
                syscall6(
                    SYS_MMAP,
                    e.addr as usize,
                    e.len as usize,
                    PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_FIXED | (flags & MAP_NORESERVE),
                    fd,
                    e.file_offset as usize,
                )
            };
            if got != e.addr as isize {
                die(
                    "cannot map region contents from the checkpoint",
                    Some(e.addr),
                    EXIT_RESTORE_FAILED,
                );
            }
        }
    } else {
        let mut scratch = None;
        // Not in a lazy restart, even where it reads (WIPEONFORK): lazy restarts stay as
        // they were.
        let moves = huge_fill::wanted(own, shared, !lazy);
        for e in tables.stored_extents_of(r) {
            if moves && e.flags & ckpt_image::EXTENT_LZ4 == 0 {
                fill_extent_in_huge_pages(fd, r, e, huge, &mut scratch);
            } else {
                // The fill below then copies into memory that is already there.
                populate(e.addr, e.len);
                read_extent(fd, e);
            }
        }
    }
    let protected = || {
        // SAFETY: changes protections of a region the stub restored and no longer references.
        unsafe { syscall3(SYS_MPROTECT, r.start as usize, r.len as usize, prot) }
    };
    if initial != prot && protected() < 0 {
        die("cannot protect region", Some(r.start), EXIT_RESTORE_FAILED);
    }
    // Guard pages fault on any access, as they did. A kernel without them (before Linux
    // 6.13) gets inaccessible pages instead, which fault all the same.
    for g in tables.guards_of(r) {
        // SAFETY: advice and protections for pages of a region the stub restored and no
        // longer references.
        let guarded = unsafe {
            syscall3(
                SYS_MADVISE,
                g.addr as usize,
                g.len as usize,
                MADV_GUARD_INSTALL,
            ) >= 0
                || syscall3(SYS_MPROTECT, g.addr as usize, g.len as usize, 0) >= 0
        };
        if !guarded {
            die(
                "cannot install guard pages",
                Some(g.addr),
                EXIT_RESTORE_FAILED,
            );
        }
    }
    for (advice, lost) in advice_after_fill(own, eager) {
        // SAFETY: advice on a region the stub maps; it changes nothing the stub relies on.
        if unsafe { syscall3(SYS_MADVISE, r.start as usize, r.len as usize, advice) } < 0 {
            if let Some(what) = lost {
                warn_region(r.start, what);
            }
        }
    }
    // Locked last: after the guards (which a locked mapping refuses), and once filled, so
    // that locking does not fault in pages only to have them overwritten.
    if own & region_flags::LOCKED != 0 {
        let how = if own & region_flags::LOCKONFAULT != 0 {
            MLOCK_ONFAULT
        } else {
            0
        };
        // SAFETY: locks a region the stub restored.
        if unsafe { syscall3(SYS_MLOCK2, r.start as usize, r.len as usize, how) } < 0 {
            warn_region(
                r.start,
                "no longer locked: mlock refused (is RLIMIT_MEMLOCK too low?)",
            );
        }
    }
    // Sealed very last: nothing may change the mapping after that.
    if own & region_flags::SEALED != 0
        // SAFETY: seals a region the stub restored, after its last change.
        && unsafe { syscall3(SYS_MSEAL, r.start as usize, r.len as usize, 0) } < 0
    {
        warn_region(
            r.start,
            "no longer sealed: mseal refused (it needs Linux 6.10 or later)",
        );
    }
}

/// Fills an uncompressed extent of region `r`: its dense middle a window at a time into
/// the scratch mapping, in huge pages when the kernel has them, then moved into place; the
/// rest read in place. Whatever the kernel refuses on the way is read or copied in place
/// instead, so the region always ends up whole; and once refused, or once a window came in
/// small pages, the rest of the restart reads in place.
fn fill_extent_in_huge_pages(
    fd: usize,
    r: &ckpt_image::RegionRecord,
    e: &ckpt_image::ExtentRecord,
    huge: &mut HugeFill,
    scratch: &mut Option<Scratch>,
) {
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    for piece in huge_fill::pieces(e.addr, e.len, WINDOW) {
        let (at, len) = match piece {
            Piece::Huge { at, len } if huge.uffd().is_some() => (at, len),
            Piece::Direct { at, len } | Piece::Huge { at, len } => {
                populate(at, len);
                read_span(fd, e, at, len, at, &mut sum);
                continue;
            }
        };
        if scratch.is_none() {
            *scratch = Scratch::new();
        }
        let Some(window) = scratch.as_ref().map(|s| s.at() as u64) else {
            huge.give_up();
            populate(at, len);
            read_span(fd, e, at, len, at, &mut sum);
            continue;
        };
        populate(window, len);
        read_span(fd, e, at, len, window, &mut sum);
        let verdict = huge.judge(window, len);
        // Moved even when given up: the window is filled and moving costs less than copying.
        let moved = huge.move_pages(r, at, window, len);
        if moved < len {
            // The pages not moved are still in the window, filled and checked: copied in
            // place, they complete the region (it is unregistered again, so touching it
            // faults as usual).
            // SAFETY: both ranges are mapped read-write by the stub and do not overlap
            // (the window is its own mapping).
            unsafe {
                memcpy(
                    (at + moved) as *mut u8,
                    (window + moved) as *const u8,
                    (len - moved) as usize,
                )
            };
        }
        if verdict != Verdict::Keep {
            huge.give_up();
        }
    }
    check_extent(e, sum);
}

/// Reads an extent into place in chunks, checking its payload checksum as it goes (the chunk is
/// still in cache).
pub(crate) fn read_extent(fd: usize, e: &ckpt_image::ExtentRecord) {
    if e.flags & ckpt_image::EXTENT_LZ4 != 0 {
        return read_extent_lz4(fd, e);
    }
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    read_span(fd, e, e.addr, e.len, e.addr, &mut sum);
    check_extent(e, sum);
}

/// Reads the `len` bytes of uncompressed extent `e` that belong at `at` into memory at
/// `into` (`at` itself, or a scratch window), in chunks, adding them to the extent's
/// checksum while each chunk is still in cache.
fn read_span(
    fd: usize,
    e: &ckpt_image::ExtentRecord,
    at: u64,
    len: u64,
    into: u64,
    sum: &mut ckpt_image::crc32c::PayloadChecksum,
) {
    const CHUNK: u64 = 1 << 20;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        let to = into + done;
        if !pread_full(
            fd,
            to as usize,
            n as usize,
            e.file_offset + (at - e.addr) + done,
        ) {
            die(
                "cannot read the contents of region",
                Some(e.addr),
                EXIT_RESTORE_FAILED,
            );
        }
        if e.flags & ckpt_image::EXTENT_HAS_CRC != 0 {
            // SAFETY: the chunk was just mapped read-write and filled by pread.
            let bytes = unsafe { core::slice::from_raw_parts(to as *const u8, n as usize) };
            sum.update(bytes);
        }
        done += n;
    }
}

/// Dies if the extent's payload, read whole, does not match its checksum.
fn check_extent(e: &ckpt_image::ExtentRecord, sum: ckpt_image::crc32c::PayloadChecksum) {
    if e.flags & ckpt_image::EXTENT_HAS_CRC != 0 && sum.finish() != e.crc {
        die(
            "checkpoint payload is damaged (checksum mismatch)",
            Some(e.addr),
            EXIT_PAYLOAD_DAMAGED,
        );
    }
}

/// Compressed frames on their way into place.
static PACKED: Static<[u8; lz4::bound(lz4::FRAME_MAX)]> =
    Static::new([0; lz4::bound(lz4::FRAME_MAX)]);

/// Reads a compressed extent frame by frame, each decoded straight into place and checked
/// as a whole against the extent's checksum; a damaged frame is reported like a damaged
/// payload.
pub(crate) fn read_extent_lz4(fd: usize, e: &ckpt_image::ExtentRecord) {
    let damaged = || -> ! {
        die(
            "checkpoint payload is damaged (bad compressed data)",
            Some(e.addr),
            EXIT_PAYLOAD_DAMAGED,
        )
    };
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    let mut at = e.file_offset;
    let mut done = 0u64;
    // SAFETY: single-threaded; PACKED is only used here.
    let packed = unsafe { PACKED.get() };
    while done < e.len {
        let mut header = [0u8; lz4::FRAME_HEADER];
        if !pread_full(fd, header.as_mut_ptr() as usize, header.len(), at) {
            fail(FormatError::Truncated);
        }
        let (stored, raw) = lz4::frame_header(&header);
        if !lz4::frame_ok(stored, raw, (e.len - done) as usize) {
            damaged();
        }
        let dst_addr = e.addr + done;
        // SAFETY: [dst_addr, +raw) lies inside the extent (raw <= len - done), which the
        // caller mapped read-write.
        let dst = unsafe { core::slice::from_raw_parts_mut(dst_addr as *mut u8, raw) };
        let body = at + lz4::FRAME_HEADER as u64;
        if stored == raw {
            if !pread_full(fd, dst.as_mut_ptr() as usize, raw, body) {
                fail(FormatError::Truncated);
            }
        } else {
            if !pread_full(fd, packed.as_mut_ptr() as usize, stored, body) {
                fail(FormatError::Truncated);
            }
            if lz4::decompress(&packed[..stored], dst).is_err() {
                damaged();
            }
        }
        sum.update(dst);
        at = body + stored as u64;
        done += raw as u64;
    }
    if e.flags & ckpt_image::EXTENT_HAS_CRC != 0 && sum.finish() != e.crc {
        die(
            "checkpoint payload is damaged (checksum mismatch)",
            Some(e.addr),
            EXIT_PAYLOAD_DAMAGED,
        );
    }
}
