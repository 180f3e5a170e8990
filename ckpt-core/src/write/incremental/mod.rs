//! Incremental checkpoints that stay self-contained: a checkpoint writes from memory only
//! the pages the program wrote since the previous one (`crate::dirty` tracks them) and
//! takes every other stored page from the previous file without reading it, sharing its
//! blocks (`FICLONERANGE`) on file systems that can (XFS, Btrfs). Every file holds all its
//! pages and restarts alone; the previous one may be deleted or replaced at once. Where
//! blocks cannot be shared (ext4, tmpfs), the unchanged pages are written from memory like
//! the others: the kernel's copy (`copy_file_range`) costs more than that there (1 GiB on
//! ext4: 1.8 s against 1.5 s). `CKPT_INCREMENTAL=copy` copies anyway, for file systems
//! that copy on the server (NFS, SMB), and for tests on any file system.
//!
//! What the next checkpoint needs of this one — which pages the file stores where, each
//! page's checksum lanes (so that an extent's checksum covers the copied pages without
//! reading them: `crc32c::PayloadChecksum::update_page_lanes`), and the file's identity —
//! is kept in a [`Ledger`]. A forked writer produces it in the child but the parent uses it
//! next time, so the ledgers live in a shared anonymous mapping made at the first
//! incremental checkpoint, before the fork (never saved in an image: capture leaves it
//! out), double-buffered: the writer fills the one
//! that is not current, and the parent makes it current only when the writer finished
//! cleanly ([`Incremental::finished`]); a failed or killed writer's half-filled ledger is
//! ignored, and the next checkpoint is full.
//!
//! What a page copied from the previous file must equal: the program's memory now. That
//! holds for a page the tracker vouches for (tracked since the previous checkpoint began,
//! at the same place and size, not written) if the previous file stored what the program
//! had then. Memory that ckpt itself writes after the capture point breaks that, and the
//! parent's tracking cannot see a forked writer's writes at all: the arena and other
//! reservations, the library's data and bss, the writing thread's stack, control block
//! and `errno`. So a region overlapping any of those is never copied (nor recorded); such
//! regions are ckpt's or small (the stack, TLS), written whole every time.
//!
//! The previous file is trusted by identity: device, inode, size, modification and change
//! times as they were when it was complete (after the rename). Changed (rewritten, touched,
//! replaced) or gone: the checkpoint is full. The previous file is found by the name it was
//! written under, so a checkpoint to another name still copies from it while it is there;
//! a relative name after a `chdir` finds another file or none, and the identity tells.
//!
//! A restarted process starts afresh: its first checkpoint is full.
//!
//! What the tracking cannot see is memory written without a page fault: by a device or by
//! the kernel into pages pinned before they were protected (io_uring fixed buffers, RDMA).
//! Such programs need `CKPT_INCREMENTAL=0` (README).
//!
//! Everything here but [`Incremental::reserve`] runs in the checkpoint signal handler or a
//! writer child: signal-safe, reserved memory only.

use core::sync::atomic::{AtomicU64, Ordering};

use ckpt_image::crc32c::{page_lanes, PayloadChecksum};
use ckpt_image::{region_flags as rf, ExtentRecord, RegionRecord, EXTENT_GUARD, PAGE_SIZE};

use crate::arena::PATH_MAX;
use crate::dirty::{Since, Tracker};
use crate::sys::{self, PageRegion};

/// Most regions a ledger describes; past that, the rest are written whole next time.
const MAX_REGIONS: usize = 4096;
/// Most extents a ledger describes.
const MAX_EXTENTS: usize = 1 << 18;
/// Most pages a ledger describes: 16 GiB of recorded memory.
const MAX_PAGES: usize = 1 << 22;

const PAGE: u64 = PAGE_SIZE;

/// Bytes written from memory per step.
const CHUNK: u64 = 1 << 20;

/// What identifies a complete checkpoint file: any write, truncation, `touch`, `chmod` or
/// replacement changes one of these.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: u64,
    mtime_ns: u64,
    ctime: u64,
    ctime_ns: u64,
}

ckpt_image::record_layout!(Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: u64,
    mtime_ns: u64,
    ctime: u64,
    ctime_ns: u64,
});

impl Identity {
    fn of(st: &libc::stat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: st.st_mtime as u64,
            mtime_ns: st.st_mtime_nsec as u64,
            ctime: st.st_ctime as u64,
            ctime_ns: st.st_ctime_nsec as u64,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Head {
    /// 1: the ledger describes a complete file (set last, after the rename).
    complete: u32,
    path_len: u32,
    regions: u32,
    extents: u32,
    pages: u64,
    /// About how many separate pieces the file's payloads are on the file system: each
    /// run written or copied is one, and shared blocks bring the previous file's pieces.
    pieces: u64,
    identity: Identity,
}

ckpt_image::record_layout!(Head {
    complete: u32,
    path_len: u32,
    regions: u32,
    extents: u32,
    pages: u64,
    pieces: u64,
    identity: Identity,
});

/// A region the file stores page by page: its extents are `extents[first..first + count]`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct LedgerRegion {
    start: u64,
    len: u64,
    first: u32,
    count: u32,
}

ckpt_image::record_layout!(LedgerRegion {
    start: u64,
    len: u64,
    first: u32,
    count: u32,
});

/// A stored extent: at `file_offset`, its pages' lanes at `lanes[first_page..]`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct LedgerExtent {
    addr: u64,
    len: u64,
    file_offset: u64,
    first_page: u64,
}

ckpt_image::record_layout!(LedgerExtent {
    addr: u64,
    len: u64,
    file_offset: u64,
    first_page: u64,
});

/// Where each part of a ledger sits in its buffer.
const HEAD_AT: u64 = 0;
const PATH_AT: u64 = PAGE;
const REGIONS_AT: u64 = PATH_AT + PATH_MAX as u64;
const EXTENTS_AT: u64 = REGIONS_AT + (MAX_REGIONS * core::mem::size_of::<LedgerRegion>()) as u64;
const LANES_AT: u64 = EXTENTS_AT + (MAX_EXTENTS * core::mem::size_of::<LedgerExtent>()) as u64;
const LEDGER_SIZE: u64 = LANES_AT + (MAX_PAGES * 16) as u64;
const MAPPING_SIZE: u64 = 2 * LEDGER_SIZE;

/// What one checkpoint file stores of the regions it recorded, in the shared mapping.
struct Ledger {
    head: &'static mut [Head],
    path: &'static mut [u8],
    regions: &'static mut [LedgerRegion],
    extents: &'static mut [LedgerExtent],
    lanes: &'static mut [[u32; 4]],
}

impl Ledger {
    /// The views of the ledger at `base` (in the shared mapping, for the life of the
    /// process: a replacement mapping goes to the same place).
    fn at(base: u64) -> Option<Ledger> {
        let view = |at: u64, len: u64| {
            // SAFETY: inside the shared mapping of MAPPING_SIZE bytes made at load, which
            // stays mapped read-write there; the views do not overlap and only the
            // Incremental that owns them uses them.
            unsafe { sys::shared_bytes(base + at, len) }
        };
        Some(Ledger {
            head: ckpt_image::records_mut(view(HEAD_AT, PAGE))?,
            path: view(PATH_AT, PATH_MAX as u64),
            regions: ckpt_image::records_mut(view(REGIONS_AT, EXTENTS_AT - REGIONS_AT))?,
            extents: ckpt_image::records_mut(view(EXTENTS_AT, LANES_AT - EXTENTS_AT))?,
            lanes: ckpt_image::records_mut(view(LANES_AT, LEDGER_SIZE - LANES_AT))?,
        })
    }

    fn complete(&self) -> bool {
        self.head[0].complete == 1
    }
}

/// The shared mapping of the ledgers, `[start, end)`: capture leaves it out of every image.
static LEDGERS: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

/// Whether the file system the checkpoint `name` goes to can share blocks between files
/// (`FICLONERANGE`: XFS, Btrfs, bcachefs, OCFS2). Where it cannot (ext4, tmpfs), an
/// incremental checkpoint writes every page anyway (copying from the previous file costs as
/// much, measured on ext4), so tracking would only cost the program its write faults: then
/// periodic checkpoints are not incremental unless `CKPT_INCREMENTAL=1` or `copy` asks.
/// Signal-safe.
pub fn shares_blocks_at(name: &[u8]) -> bool {
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683e;
    const BCACHEFS: i64 = 0xca45_1a4e;
    const OCFS2: i64 = 0x7461_636f;
    let mut dir = [0u8; crate::config::MAXNAME + 2];
    let parent = match name.iter().rposition(|&b| b == b'/') {
        Some(0) => &b"/"[..],
        Some(i) => &name[..i],
        None => &b"."[..],
    };
    if parent.len() + 1 > dir.len() {
        return false;
    }
    dir[..parent.len()].copy_from_slice(parent);
    matches!(
        sys::file_system_type(&dir[..=parent.len()]),
        Ok(XFS | BTRFS | BCACHEFS | OCFS2)
    )
}

/// Whether the mapping at `start` of `len` bytes is the ledgers', which no image holds.
/// Signal-safe.
pub fn is_ledger_mapping(start: u64, len: u64) -> bool {
    let lo = LEDGERS.0.load(Ordering::Relaxed);
    let hi = LEDGERS.1.load(Ordering::Relaxed);
    lo != 0 && start >= lo && start + len <= hi
}

/// The library's incremental state, kept in [`State`](crate::checkpoint::State).
pub struct Incremental {
    pub tracker: Tracker,
    /// The two ledgers, mapped at the first incremental checkpoint (a program that never
    /// takes one has no such mapping); `None` before, or when it could not be made.
    ledgers: Option<[Ledger; 2]>,
    /// The process the shared mapping belongs to: a child of the program's `fork` shares
    /// it, and makes its own before it uses it.
    owner: u32,
    /// Which ledger describes the previous checkpoint.
    current: usize,
    /// This checkpoint began tracking, and its writer fills the other ledger.
    in_flight: bool,
    /// The library's writable image (data, bss), ckpt's own.
    image: (u64, u64),
}

impl Incremental {
    /// Reserves the tracker's memory. At library load.
    pub fn reserve() -> Incremental {
        Incremental {
            tracker: Tracker::reserve(),
            ledgers: None,
            owner: sys::getpid(),
            current: 0,
            in_flight: false,
            image: sys::own_image_writable().unwrap_or((0, u64::MAX)),
        }
    }

    /// Our userfaultfd, to be left out of the saved descriptors.
    pub fn own_fd(&self) -> Option<i32> {
        self.tracker.own_fd()
    }

    /// At an incremental checkpoint, with the process frozen, before the fork of a writer
    /// or the writing: learns which pages were written since the previous one and starts
    /// the next interval (`maps`: `/proc/self/maps` read just now), and readies the ledger
    /// the writer fills. Signal-safe.
    pub fn begin(&mut self, maps: &[u8]) {
        let pid = sys::getpid();
        if self.owner != pid {
            // A child of the program's fork: the mapping is its parent's too; the child
            // gets its own in the same place.
            let base = LEDGERS.0.load(Ordering::Relaxed);
            if self.ledgers.is_some() && sys::map_shared(MAPPING_SIZE, Some(base)).is_err() {
                self.ledgers = None;
            }
            self.owner = pid;
        }
        self.tracker.begin_checkpoint(maps);
        if self.tracker.own_fd().is_none() {
            // No tracking on this kernel: full checkpoints, nothing to record.
            return;
        }
        if self.ledgers.is_none() {
            self.ledgers = map_ledgers();
            self.current = 0;
        }
        let next = 1 - self.current;
        let Some(ledgers) = self.ledgers.as_mut() else {
            return;
        };
        ledgers[next].head[0] = Head::default();
        self.in_flight = true;
    }

    /// The checkpoint that began with [`begin`](Self::begin) produced its file (`ok`) or
    /// did not. Only a complete ledger becomes current; without one, nothing is copied
    /// next time. Signal-safe.
    pub fn finished(&mut self, ok: bool) {
        if !core::mem::take(&mut self.in_flight) {
            return;
        }
        if !ok {
            self.tracker.checkpoint_failed();
            return;
        }
        self.tracker.checkpoint_written();
        let next = 1 - self.current;
        if let Some(ledgers) = self.ledgers.as_mut() {
            if ledgers[next].complete() {
                self.current = next;
            } else {
                ledgers[self.current].head[0].complete = 0;
            }
        }
    }

    /// In a restarted process: nothing is tracked and the ledgers were not restored (they
    /// are in no image); new ones are mapped at the next incremental checkpoint.
    /// Signal-safe.
    pub fn after_restart(&mut self) {
        self.tracker.forget();
        self.in_flight = false;
        self.owner = sys::getpid();
        self.ledgers = None;
        LEDGERS.0.store(0, Ordering::Relaxed);
        LEDGERS.1.store(0, Ordering::Relaxed);
    }

    /// Whether this checkpoint began tracking (its writer uses [`Session`]).
    pub fn in_flight(&self) -> bool {
        self.in_flight && self.ledgers.is_some()
    }
}

/// Maps the two ledgers (shared with a forked writer, empty). Signal-safe.
fn map_ledgers() -> Option<[Ledger; 2]> {
    let base = sys::map_shared(MAPPING_SIZE, None).ok()?;
    LEDGERS.0.store(base, Ordering::Relaxed);
    LEDGERS.1.store(base + MAPPING_SIZE, Ordering::Relaxed);
    Some([Ledger::at(base)?, Ledger::at(base + LEDGER_SIZE)?])
}

/// One incremental checkpoint's writing, from before its file is created (the previous
/// file is opened then: the new one may replace its name) until it is complete.
pub struct Session<'a> {
    tracker: &'a Tracker,
    prev: Option<&'a Ledger>,
    next: &'a mut Ledger,
    /// The previous file, open for reading; -1: none to copy from.
    prev_fd: i32,
    /// Memory ckpt writes while it writes the image: no region overlapping it is copied.
    live: [(u64, u64); 4],
    /// Bytes copied from the previous file.
    pub copied: u64,
    /// Runs written or copied into the new file.
    pieces: u64,
    /// Whether the file system shares blocks between the two files, once tried.
    sharing: Sharing,
    /// Copy even where blocks cannot be shared (`CKPT_INCREMENTAL=copy`).
    copy_anyway: bool,
}

/// Whether the file system shares blocks between the previous file and the new one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sharing {
    Unknown,
    Shares,
    /// It cannot (ext4, tmpfs): copying would cost as much as writing from memory (more,
    /// measured on ext4: the kernel's copy goes through a pipe page by page).
    Cannot,
}

impl<'a> Session<'a> {
    /// Starts the writing of a checkpoint whose tracking began: opens the previous file if
    /// the current ledger describes one and it is still that file. Signal-safe.
    /// `copy_anyway`: copy with `copy_file_range` where blocks cannot be shared (a network
    /// file system copies on the server).
    pub fn open(inc: &'a mut Incremental, copy_anyway: bool) -> Option<Session<'a>> {
        if !inc.in_flight() {
            return None;
        }
        let current = inc.current;
        let [a, b] = inc.ledgers.as_mut()?;
        let (prev, next) = if current == 0 { (a, b) } else { (b, a) };
        next.head[0] = Head::default();
        let prev_fd = if prev.complete() && !too_fragmented(&prev.head[0]) {
            open_if_same(prev)
        } else {
            -1
        };
        let prev: &'a Ledger = prev;
        let page = |a: u64| a & !(PAGE - 1);
        let here = &prev_fd as *const i32 as u64;
        let (fs, errno) = (page(sys::fs_base()), page(sys::errno_address()));
        Some(Session {
            tracker: &inc.tracker,
            prev: (prev_fd >= 0).then_some(prev),
            next,
            prev_fd,
            live: [
                (here.saturating_sub(1 << 20), here + (1 << 20)),
                (fs.saturating_sub(2 * PAGE), fs + 2 * PAGE),
                (errno, errno + PAGE),
                inc.image,
            ],
            copied: 0,
            pieces: 0,
            sharing: Sharing::Unknown,
            copy_anyway,
        })
    }

    /// Whether region `r` (stored uncompressed) goes through [`write_region`]: private
    /// anonymous memory the program writes, none of it ckpt's, and room in the ledger.
    pub fn takes(&self, r: &RegionRecord) -> bool {
        let end = r.start + r.len;
        let kind = rf::FILE | rf::SHARED | rf::VDSO_FAMILY;
        let rw = ckpt_image::prot::READ | ckpt_image::prot::WRITE;
        let h = &self.next.head[0];
        r.flags & kind == 0
            && r.prot & rw == rw
            && !sys::overlaps_reserved(r.start, end)
            && !is_ledger_mapping(r.start, r.len)
            && !self.live.iter().any(|&(lo, hi)| r.start < hi && end > lo)
            && (h.regions as usize) < MAX_REGIONS
            && h.extents as usize + r.extent_count as usize <= MAX_EXTENTS
            && h.pages as usize + (r.stored / PAGE) as usize <= MAX_PAGES
    }

    /// Writes the stored extents of region `r` (accepted by [`takes`](Self::takes)) from
    /// `offset` on, page-aligned, copying what the previous file holds of it unchanged,
    /// and records them in the next ledger. Returns where the next payload goes.
    pub fn write_region(
        &mut self,
        fd: i32,
        r: &RegionRecord,
        extents: &mut [ExtentRecord],
        mut offset: u64,
        staging: &mut [u8],
    ) -> Result<u64, i32> {
        // What the previous file stores of this region, and what was written since.
        let prev = self.prev.and_then(|p| {
            let h = &p.head[0];
            let regions = &p.regions[..h.regions as usize];
            let i = regions.binary_search_by_key(&r.start, |l| l.start).ok()?;
            let l = regions[i];
            let first = l.first as usize;
            (l.len == r.len).then(|| (&p.extents[first..first + l.count as usize], &*p.lanes))
        });
        let written = match (prev, self.tracker.since(r.start, r.len)) {
            (Some(_), Since::Written(w)) => Some(w),
            _ => None,
        };
        let h = self.next.head[0];
        self.next.regions[h.regions as usize] = LedgerRegion {
            start: r.start,
            len: r.len,
            first: h.extents,
            count: 0,
        };
        for e in extents.iter_mut() {
            if e.flags & EXTENT_GUARD != 0 {
                continue;
            }
            offset = ckpt_image::page_up(offset);
            e.file_offset = offset;
            let h = &mut self.next.head[0];
            let first_page = h.pages;
            self.next.extents[h.extents as usize] = LedgerExtent {
                addr: e.addr,
                len: e.len,
                file_offset: offset,
                first_page,
            };
            let out =
                &mut self.next.lanes[first_page as usize..(first_page + e.len / PAGE) as usize];
            let mut job = ExtentJob {
                fd,
                prev_fd: self.prev_fd,
                addr: e.addr,
                len: e.len,
                offset,
                sum: PayloadChecksum::new(),
                out,
                copied: 0,
                runs: 0,
                sharing: &mut self.sharing,
                copy_anyway: self.copy_anyway,
            };
            job.run(
                written,
                prev.map_or((&[][..], &[][..]), |(x, l)| (x, l)),
                staging,
            )?;
            e.crc = job.sum.finish();
            e.flags |= ckpt_image::EXTENT_HAS_CRC;
            self.copied += job.copied;
            self.pieces += job.runs;
            offset += e.len;
            let h = &mut self.next.head[0];
            h.extents += 1;
            h.pages += e.len / PAGE;
        }
        let h = &mut self.next.head[0];
        self.next.regions[h.regions as usize].count =
            h.extents - self.next.regions[h.regions as usize].first;
        h.regions += 1;
        Ok(offset)
    }

    /// The new file is complete under `name` (`fd` still open on it): the next checkpoint
    /// may copy from it. Signal-safe.
    pub fn complete(self, fd: i32, name: &[u8]) {
        if self.prev_fd >= 0 {
            sys::close(self.prev_fd);
        }
        let Ok(st) = sys::fstat(fd) else {
            return;
        };
        if name.len() > self.next.path.len() {
            return;
        }
        self.next.path[..name.len()].copy_from_slice(name);
        // Pieces matter only where blocks are shared: elsewhere each file is written anew.
        let pieces = match (self.sharing, self.prev) {
            (Sharing::Shares, Some(prev)) => self.pieces + prev.head[0].pieces,
            (Sharing::Shares, None) => self.pieces,
            _ => 0,
        };
        let h = &mut self.next.head[0];
        h.path_len = name.len() as u32;
        h.identity = Identity::of(&st);
        h.pieces = pieces;
        h.complete = 1;
    }

    /// The checkpoint failed: the next ledger stays incomplete. Signal-safe.
    pub fn abandon(self) {
        if self.prev_fd >= 0 {
            sys::close(self.prev_fd);
        }
    }
}

/// Whether the previous file is in so many pieces that sharing them costs more than it
/// saves. Sharing costs per piece (measured on XFS: ~13 µs, a transaction each), writing
/// per page (~2 µs into the page cache), and every checkpoint that writes scattered pages
/// over shared blocks adds pieces: at 1% of pages changed at random, a chain of incremental
/// checkpoints of 1 GiB got 70 ms slower at each step. Past one piece per 32 pages (when
/// sharing would cost about a quarter of writing everything), the next checkpoint is
/// full, and the chain starts again from a file in few pieces.
fn too_fragmented(prev: &Head) -> bool {
    prev.pieces > (prev.pages / 32).max(1024)
}

/// The previous file, opened for reading, if it is still the one the ledger describes;
/// else -1. Signal-safe.
fn open_if_same(prev: &Ledger) -> i32 {
    let h = prev.head[0];
    let len = h.path_len as usize;
    let mut path = [0u8; PATH_MAX + 1];
    if len == 0 || len >= path.len() {
        return -1;
    }
    path[..len].copy_from_slice(&prev.path[..len]);
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let Ok(fd) = sys::open(&path[..len + 1], flags, 0) else {
        return -1;
    };
    match sys::fstat(fd) {
        Ok(st) if Identity::of(&st) == h.identity => fd,
        _ => {
            sys::close(fd);
            -1
        }
    }
}

mod extent;
use extent::ExtentJob;

#[cfg(test)]
mod tests;
