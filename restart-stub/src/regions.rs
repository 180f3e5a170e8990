//! Each saved region mapped back and filled: read from the file (its checksums checked as
//! it goes; LZ4 frames decoded into place) or, in a lazy restart, mapped from the file;
//! then the properties the program had set on it, its protections and its guard pages.

use super::*;

/// Maps region `r` at its address and fills it (lazy: maps its payload from the checkpoint
/// file), then gives it back its protection, its guard pages and what the program had set
/// on it: advice, lock and seal. Losing one of those the program relies on is said on
/// stderr; the restart goes on.
pub(crate) fn restore_region(fd: usize, r: &ckpt_image::RegionRecord, tables: &Tables, lazy: bool) {
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
    let keep_anonymous = region_flags::STACK | region_flags::GROWSDOWN | region_flags::WIPEONFORK;
    let eager = !lazy || shared || own & keep_anonymous != 0;
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
        for e in tables.stored_extents_of(r) {
            // Fault the pages in with one call instead of one trap per page: the fill below
            // then copies into memory that is already there.
            // SAFETY: advice on a region the stub maps; it changes nothing the stub relies on.
            unsafe {
                syscall3(
                    SYS_MADVISE,
                    e.addr as usize,
                    e.len as usize,
                    MADV_POPULATE_WRITE,
                )
            };
            read_extent(fd, e);
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

/// Reads an extent into place in chunks, checking its payload checksum as it goes (the chunk is
/// still in cache).
pub(crate) fn read_extent(fd: usize, e: &ckpt_image::ExtentRecord) {
    if e.flags & ckpt_image::EXTENT_LZ4 != 0 {
        return read_extent_lz4(fd, e);
    }
    const CHUNK: u64 = 1 << 20;
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    let mut done = 0;
    while done < e.len {
        let n = (e.len - done).min(CHUNK);
        let at = e.addr + done;
        if !pread_full(fd, at as usize, n as usize, e.file_offset + done) {
            die(
                "cannot read the contents of region",
                Some(e.addr),
                EXIT_RESTORE_FAILED,
            );
        }
        if e.flags & ckpt_image::EXTENT_HAS_CRC != 0 {
            // SAFETY: the chunk was just mapped read-write and filled by pread.
            let bytes = unsafe { core::slice::from_raw_parts(at as *const u8, n as usize) };
            sum.update(bytes);
        }
        done += n;
    }
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
