//! Payloads: each stored extent straight from memory into the file with its checksum, or as
//! LZ4 frames read through `/proc/self/mem`; one region at a time, under the fault guard.
//! Signal-safe.

use ckpt_image::{lz4, page_up, region_flags as rf, PAGE_SIZE};

use super::WriteError;
use crate::arena::Arena;
use crate::sys;

/// Bytes written per step: small enough that the checksum's read leaves them in cache for
/// the copy into the file, large enough to keep system calls few.
const CHUNK: u64 = 1 << 20;

/// Writes the extent at `addr` straight from memory to `offset`, in chunks, computing its
/// payload checksum; `readable` says that every page of it can be read (anonymous memory,
/// made readable if need be). Returns the bytes written (whole pages; fewer than `len` when the rest of the
/// mapping cannot be read) and their checksum.
///
/// Some memory changes while the writer runs: around the stack pointer (its own frames
/// live there), and the writing thread's control block and `errno` (the kernel updates the
/// rseq area in the block whenever the thread moves to another CPU; system calls set
/// `errno`). Chunks that touch those are copied to `staging` first and written and
/// checksummed from the copy: the file and its checksum then agree. What changes there
/// after the copy is dead in the restarted process anyway (below the capture point, or
/// put back by the restart: rseq registered again, `errno` restored by the handler).
fn write_extent(
    fd: i32,
    addr: u64,
    len: u64,
    offset: u64,
    staging: &mut [u8],
    readable: bool,
) -> Result<(u64, u32), i32> {
    let here = &staging as *const _ as u64;
    let page = |a: u64| a & !(PAGE_SIZE - 1);
    let (fs, errno) = (page(sys::fs_base()), page(sys::errno_address()));
    let live = [
        (here.saturating_sub(512 << 10), here + (64 << 10)),
        (fs, fs + 2 * PAGE_SIZE),
        (errno, errno + PAGE_SIZE),
    ];
    let mut done = 0;
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    while done < len {
        let want = (len - done).min(CHUNK);
        let at = addr + done;
        let n = if live.iter().any(|&(lo, hi)| at < hi && at + want > lo) {
            let copy = &mut staging[..want as usize];
            // SAFETY: a stored extent of a region that is readable now (made so if need be),
            // in a process frozen in this handler, under the fault guard.
            copy.copy_from_slice(unsafe { sys::memory(at, want) });
            sys::pwrite_all(fd, copy, offset + done)?;
            sum.update(copy);
            want
        } else if readable {
            // Memory known to be readable: checksumming first pulls the chunk into the
            // cache, from where the kernel then copies it into the file (the checksum then
            // costs almost nothing: 0.14 s instead of 0.17 s per GiB here).
            // SAFETY: as above (anonymous memory: every stored page is readable).
            sum.update(unsafe { sys::memory(at, want) });
            if sys::pwrite_from_memory(fd, at, want, offset + done)? != want {
                return Err(libc::EIO);
            }
            want
        } else {
            let n = sys::pwrite_from_memory(fd, at, want, offset + done)? & !(PAGE_SIZE - 1);
            // Only memory the kernel could read is checksummed (reading the rest would fault).
            // SAFETY: the kernel has just read these `n` bytes for the file, in a process
            // frozen in this handler, under the fault guard.
            sum.update(unsafe { sys::memory(at, n) });
            n
        };
        done += n;
        crate::progress::advance(n);
        super::flush::wrote(n);
        if n < want {
            break;
        }
    }
    Ok((done, sum.finish()))
}

/// Writes the extent at `addr` as LZ4 frames at `offset`, reading memory through `mem`
/// (`/proc/self/mem`) into `staging`. Returns the memory bytes stored (whole pages; fewer
/// than `len` when the rest cannot be read), the bytes written to the file, and the
/// payload checksum of the memory bytes.
#[allow(clippy::too_many_arguments)]
fn write_extent_lz4(
    fd: i32,
    mem: i32,
    addr: u64,
    len: u64,
    offset: u64,
    staging: &mut [u8],
    packed: &mut [u8],
    table: &mut lz4_flex::block::CompressTable,
) -> Result<(u64, u64, u32), i32> {
    let mut done = 0;
    let mut at = offset;
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    while done < len {
        let want = (len - done).min(lz4::FRAME_MAX as u64) as usize;
        let n = match sys::pread_some(mem, &mut staging[..want], addr + done) {
            Ok(n) => n & !(PAGE_SIZE as usize - 1),
            Err(libc::EIO) | Err(libc::EFAULT) => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let data = &staging[..n];
        sum.update(data);
        // lz4_flex's block encoder: pure computation on the buffers given, no allocation
        // (built without its `alloc` feature), so it may run here.
        let stored = match lz4_flex::block::compress_into_with_table(data, packed, table) {
            Ok(c) if c < n => &packed[..c],
            _ => data,
        };
        sys::pwrite_all(fd, &lz4::write_frame_header(stored.len(), n), at)?;
        sys::pwrite_all(fd, stored, at + lz4::FRAME_HEADER as u64)?;
        at += (lz4::FRAME_HEADER + stored.len()) as u64;
        done += n as u64;
        crate::progress::advance(n as u64);
        super::flush::wrote((lz4::FRAME_HEADER + stored.len()) as u64);
        if n < want {
            break;
        }
    }
    Ok((done, at - offset, sum.finish()))
}

/// One region's payloads on their way into the file, run by [`write_region`].
pub(super) struct RegionWrite<'a, 's> {
    pub fd: i32,
    /// An incremental checkpoint's writing, when it records this region.
    pub inc: Option<&'a mut super::incremental::Session<'s>>,
    /// `/proc/self/mem`, when the region is stored compressed.
    pub mem: Option<i32>,
    pub arena: &'a mut Arena,
    pub region: usize,
    /// Where the next payload goes; advanced past this region's.
    pub offset: u64,
    pub result: Result<(), WriteError>,
}

/// Writes the stored extents of one region and their checksums, skipping its guard pages.
/// Run by the fault guard, which may abandon it at any point: it holds nothing to drop.
pub(super) extern "C" fn write_region(arg: *mut core::ffi::c_void) -> u64 {
    // SAFETY: write_payloads_and_tables passes its live RegionWrite, used by nothing else
    // until this returns.
    let job = unsafe { &mut *(arg as *mut RegionWrite) };
    let arena = &mut *job.arena;
    let r = arena.regions[job.region];
    let first = r.first_extent as usize;
    let extents = first..first + r.extent_count as usize;
    if let Some(session) = job.inc.as_deref_mut() {
        match session.write_region(
            job.fd,
            job.region,
            &r,
            &mut arena.extents[extents],
            job.offset,
        ) {
            Ok(offset) => job.offset = offset,
            Err(err) => job.result = Err(WriteError::Write(err)),
        }
        return 0;
    }
    let mut stored = 0;
    for e in &mut arena.extents[first..first + r.extent_count as usize] {
        if e.flags & ckpt_image::EXTENT_GUARD != 0 {
            continue;
        }
        // The vDSO image stays raw: the stub compares it with the running kernel's before
        // it has anywhere to decompress to. Raw payloads sit on page boundaries.
        if job.mem.is_none() {
            job.offset = page_up(job.offset);
        }
        e.file_offset = job.offset;
        let written = match job.mem {
            Some(mem) => {
                e.flags |= ckpt_image::EXTENT_LZ4;
                write_extent_lz4(
                    job.fd,
                    mem,
                    e.addr,
                    e.len,
                    job.offset,
                    arena.staging,
                    arena.packed,
                    &mut arena.lz4_table,
                )
            }
            // File mappings may end in pages past the end of their file, which only the
            // kernel's copy can detect without a fault: those are written first.
            None => write_extent(
                job.fd,
                e.addr,
                e.len,
                job.offset,
                arena.staging,
                r.flags & rf::FILE == 0,
            )
            .map(|(n, crc)| (n, n, crc)),
        };
        match written {
            Ok((n, in_file, crc)) => {
                // Short: the rest is unreadable (a file mapping past the end of its file);
                // the readable whole pages are kept.
                e.len = n;
                e.crc = crc;
                e.flags |= ckpt_image::EXTENT_HAS_CRC;
                job.offset += in_file;
            }
            Err(err) => {
                job.result = Err(WriteError::Write(err));
                return 0;
            }
        }
        stored += e.len;
    }
    arena.regions[job.region].stored = stored;
    0
}
