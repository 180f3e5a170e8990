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

/// One extent on its way into the file.
struct ExtentJob<'a> {
    fd: i32,
    prev_fd: i32,
    addr: u64,
    len: u64,
    offset: u64,
    sum: PayloadChecksum,
    /// The extent's pages' lanes, for the next ledger.
    out: &'a mut [[u32; 4]],
    copied: u64,
    /// Runs written or copied.
    runs: u64,
    sharing: &'a mut Sharing,
    copy_anyway: bool,
}

impl ExtentJob<'_> {
    /// Writes the extent run by run: pages the previous file stores (`prev`: its extents of
    /// this region and the lanes) and that were not `written` are copied from it, all
    /// others come from memory. `written: None`: nothing is known, all from memory.
    fn run(
        &mut self,
        written: Option<&[PageRegion]>,
        prev: (&[LedgerExtent], &[[u32; 4]]),
        staging: &mut [u8],
    ) -> Result<(), i32> {
        let (prev_extents, prev_lanes) = if written.is_some() {
            prev
        } else {
            (&[][..], &[][..])
        };
        let written = written.unwrap_or(&[]);
        // Where blocks can be shared, all that the previous file stores of the extent is
        // shared first, a call per stretch, and the written pages are written over it:
        // each call is a file-system transaction, and one per unchanged run (2,600 runs
        // in 1 GiB at 1% changed) cost more than all the rest of the checkpoint on XFS.
        let bulk = !prev_extents.is_empty()
            && *self.sharing != Sharing::Cannot
            && self.share_all(prev_extents)?;
        let end = self.addr + self.len;
        let (mut wi, mut pi) = (0, 0);
        let mut at = self.addr;
        while at < end {
            while wi < written.len() && written[wi].end <= at {
                wi += 1;
            }
            while pi < prev_extents.len() && prev_extents[pi].addr + prev_extents[pi].len <= at {
                pi += 1;
            }
            let in_written = wi < written.len() && written[wi].start <= at;
            let in_prev = pi < prev_extents.len() && prev_extents[pi].addr <= at;
            let mut run_end = end;
            if wi < written.len() {
                run_end = run_end.min(if in_written {
                    written[wi].end
                } else {
                    written[wi].start
                });
            }
            if pi < prev_extents.len() {
                let p = prev_extents[pi];
                run_end = run_end.min(if in_prev { p.addr + p.len } else { p.addr });
            }
            if run_end <= at {
                // Unsorted ranges would mean a bug in the tracker: never loop on it.
                return Err(libc::EINVAL);
            }
            self.runs += 1;
            if in_prev && !in_written && bulk {
                self.copied_with_lanes(at, run_end - at, &prev_extents[pi], prev_lanes);
            } else if in_prev && !in_written {
                self.copy(at, run_end, &prev_extents[pi], prev_lanes, staging)?;
            } else {
                self.write_from_memory(at, run_end)?;
            }
            at = run_end;
        }
        Ok(())
    }

    /// Shares the blocks of every stretch of the extent that the previous file stores
    /// (`prev`); false when the file system cannot (then nothing can be assumed of the
    /// new file's bytes there: they are all written run by run).
    fn share_all(&mut self, prev: &[LedgerExtent]) -> Result<bool, i32> {
        let end = self.addr + self.len;
        for p in prev {
            let (lo, hi) = (p.addr.max(self.addr), (p.addr + p.len).min(end));
            if lo >= hi {
                continue;
            }
            let (src, dst) = (
                p.file_offset + (lo - p.addr),
                self.offset + (lo - self.addr),
            );
            match sys::clone_range(self.prev_fd, src, self.fd, dst, hi - lo) {
                Ok(()) => *self.sharing = Sharing::Shares,
                Err(libc::EOPNOTSUPP | libc::EXDEV | libc::ENOTTY | libc::ENOSYS) => {
                    *self.sharing = Sharing::Cannot;
                    return Ok(false);
                }
                Err(libc::EINVAL) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Index of the page at `addr` in this extent.
    fn page_index(&self, addr: u64) -> usize {
        ((addr - self.addr) / PAGE) as usize
    }

    /// Copies `[from, to)` (inside `p`) from the previous file, with the lanes it recorded:
    /// its blocks shared (`FICLONERANGE`) where the file system can; elsewhere written from
    /// memory (it is the same), or copied with `copy_file_range` if `copy_anyway`.
    fn copy(
        &mut self,
        from: u64,
        to: u64,
        p: &LedgerExtent,
        prev_lanes: &[[u32; 4]],
        staging: &mut [u8],
    ) -> Result<(), i32> {
        let src = p.file_offset + (from - p.addr);
        let dst = self.offset + (from - self.addr);
        let len = to - from;
        if *self.sharing != Sharing::Cannot {
            match sys::clone_range(self.prev_fd, src, self.fd, dst, len) {
                Ok(()) => {
                    *self.sharing = Sharing::Shares;
                    self.copied_with_lanes(from, len, p, prev_lanes);
                    return Ok(());
                }
                Err(libc::EOPNOTSUPP | libc::EXDEV | libc::ENOTTY | libc::ENOSYS) => {
                    *self.sharing = Sharing::Cannot
                }
                // This range alone cannot (blocks larger than a page, say).
                Err(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
        if !self.copy_anyway {
            return self.write_from_memory(from, to);
        }
        let n = match sys::copy_range(self.prev_fd, src, self.fd, dst, len) {
            Err(libc::EXDEV | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS) => 0,
            r => r?,
        };
        if n < len {
            // No copy in the kernel between these files (or it stopped): through memory.
            let mut done = n;
            while done < len {
                let want = (len - done).min(staging.len() as u64) as usize;
                let got = sys::pread_some(self.prev_fd, &mut staging[..want], src + done)?;
                if got == 0 {
                    return Err(libc::EIO);
                }
                sys::pwrite_all(self.fd, &staging[..got], dst + done)?;
                done += got as u64;
            }
        }
        self.copied_with_lanes(from, len, p, prev_lanes);
        Ok(())
    }

    /// `len` bytes from `from` were copied from `p` of the previous file: their lanes are
    /// the ones it recorded.
    fn copied_with_lanes(
        &mut self,
        from: u64,
        len: u64,
        p: &LedgerExtent,
        prev_lanes: &[[u32; 4]],
    ) {
        let first = (p.first_page + (from - p.addr) / PAGE) as usize;
        let pages = (len / PAGE) as usize;
        let at = self.page_index(from);
        for (out, &lanes) in self.out[at..at + pages]
            .iter_mut()
            .zip(&prev_lanes[first..first + pages])
        {
            self.sum.update_page_lanes(lanes);
            *out = lanes;
        }
        self.copied += len;
        crate::progress::advance(len);
    }

    /// Writes `[from, to)` from memory, recording each page's lanes.
    fn write_from_memory(&mut self, from: u64, to: u64) -> Result<(), i32> {
        let mut at = from;
        while at < to {
            let want = (to - at).min(CHUNK);
            // Checksummed first, which brings the chunk into the cache for the kernel's
            // copy into the file.
            let first = self.page_index(at);
            for (k, out) in self.out[first..first + (want / PAGE) as usize]
                .iter_mut()
                .enumerate()
            {
                // SAFETY: a page of a stored extent of private anonymous memory (every
                // stored page readable), in a process frozen in this handler or a writer
                // child, under the fault guard.
                let lanes = page_lanes(unsafe { sys::memory(at + k as u64 * PAGE, PAGE) });
                self.sum.update_page_lanes(lanes);
                *out = lanes;
            }
            if sys::pwrite_from_memory(self.fd, at, want, self.offset + (at - self.addr))? != want {
                return Err(libc::EIO);
            }
            crate::progress::advance(want);
            at += want;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;

    const PAGES: u64 = 16;

    /// A private anonymous mapping of `PAGES` pages, page `i` filled with `i + 1`.
    fn memory() -> &'static mut [u8] {
        let len = (PAGES * PAGE) as usize;
        // SAFETY: a fresh private anonymous mapping, used only by this test (and leaked).
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: the mapping just made, `len` bytes, referenced by nothing else.
        let m = unsafe { core::slice::from_raw_parts_mut(p as *mut u8, len) };
        for (i, page) in m.chunks_mut(PAGE as usize).enumerate() {
            page.fill(i as u8 + 1);
        }
        m
    }

    fn temp_file(name: &str) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("ckpt-incr-{}-{name}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    /// Writes the extent of `mem` with `written` and the previous file `prev` (which holds
    /// the pages of `prev_extents` as they were); returns the new file's bytes, the
    /// checksum, the lanes and the bytes copied.
    fn write(
        mem: &[u8],
        written: Option<&[PageRegion]>,
        prev: &std::fs::File,
        prev_extents: &[LedgerExtent],
        prev_lanes: &[[u32; 4]],
        copy_anyway: bool,
    ) -> (Vec<u8>, u32, Vec<[u32; 4]>, u64) {
        let out = temp_file("new");
        let mut lanes = vec![[0u32; 4]; PAGES as usize];
        let mut sharing = Sharing::Unknown;
        let mut job = ExtentJob {
            fd: out.as_raw_fd(),
            prev_fd: prev.as_raw_fd(),
            addr: mem.as_ptr() as u64,
            len: PAGES * PAGE,
            offset: PAGE,
            sum: PayloadChecksum::new(),
            out: &mut lanes,
            copied: 0,
            runs: 0,
            sharing: &mut sharing,
            copy_anyway,
        };
        let mut staging = vec![0u8; 1 << 16];
        job.run(written, (prev_extents, prev_lanes), &mut staging)
            .unwrap();
        let (crc, copied) = (job.sum.finish(), job.copied);
        let mut bytes = vec![0u8; (PAGES * PAGE) as usize];
        out.read_exact_at(&mut bytes, PAGE).unwrap();
        (bytes, crc, lanes, copied)
    }

    #[test]
    fn unchanged_pages_come_from_the_previous_file_and_the_checksum_covers_them() {
        let mem = memory();
        let base = mem.as_ptr() as u64;
        // The previous file: pages 0..12 of the extent at offset 3 pages, as they are now.
        let prev = temp_file("prev");
        prev.write_all_at(&mem[..(12 * PAGE) as usize], 3 * PAGE)
            .unwrap();
        let prev_lanes: Vec<[u32; 4]> = mem[..(12 * PAGE) as usize]
            .chunks(PAGE as usize)
            .map(page_lanes)
            .collect();
        let prev_extents = [LedgerExtent {
            addr: base,
            len: 12 * PAGE,
            file_offset: 3 * PAGE,
            first_page: 0,
        }];
        let old = mem.to_vec();
        // The program writes pages 2, 7 and 13; page 5 changes too but is not reported as
        // written, which shows where each page came from.
        for p in [2, 5, 7, 13] {
            mem[(p * PAGE) as usize] ^= 0xff;
        }
        let page = |p: u64| base + p * PAGE;
        let written = [
            PageRegion {
                start: page(2),
                end: page(3),
                categories: 0,
            },
            PageRegion {
                start: page(7),
                end: page(8),
                categories: 0,
            },
            PageRegion {
                start: page(13),
                end: page(14),
                categories: 0,
            },
        ];
        let mut expected = mem.to_vec();
        let p5 = (5 * PAGE) as usize..(6 * PAGE) as usize;
        expected[p5.clone()].copy_from_slice(&old[p5]);

        for copy_anyway in [true, false] {
            let (bytes, crc, lanes, copied) = write(
                mem,
                Some(&written),
                &prev,
                &prev_extents,
                &prev_lanes,
                copy_anyway,
            );
            // The checksum, built from recorded lanes for copied pages, is the bytes'.
            assert_eq!(crc, PayloadChecksum::of(&bytes));
            let by_page: Vec<[u32; 4]> = bytes.chunks(PAGE as usize).map(page_lanes).collect();
            assert_eq!(lanes, by_page, "the lanes recorded for the next checkpoint");
            if copied > 0 {
                // Pages 0..12 but the two written ones, from the previous file.
                assert_eq!(copied, 10 * PAGE);
                assert!(
                    bytes == expected,
                    "page 5 from the previous file, the rest as now"
                );
            } else {
                // This file system neither shares nor (copy_anyway false) copies: all from
                // memory.
                assert!(!copy_anyway);
                assert!(bytes == mem, "written from memory");
            }
        }
        // Nothing known: all from memory, whatever the previous file holds.
        let (bytes, crc, _, copied) = write(mem, None, &prev, &prev_extents, &prev_lanes, true);
        assert_eq!(copied, 0);
        assert!(bytes == mem);
        assert_eq!(crc, PayloadChecksum::of(&bytes));
    }
}
