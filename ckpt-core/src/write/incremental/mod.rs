//! Incremental checkpoints that stay self-contained: the checkpoint before the last one is
//! kept beside the last as `NAME.prev`, and the next checkpoint is written into it in
//! place — only the pages the program wrote since that file was taken (the two intervals
//! `crate::dirty` tracked since), at the offsets where the file already holds every other
//! page — and then swapped with `NAME` in one step (`renameat2(RENAME_EXCHANGE)`). So
//! `NAME` always holds a complete checkpoint and `NAME.prev` the one before it (but while
//! a checkpoint is being written into it), each restarts alone, and the cost is the
//! changed pages, on every file system: nothing is copied or shared between files.
//!
//! What the next checkpoint needs of a file — where it stores each page, each page's
//! checksum lanes (so that an extent's checksum covers the pages kept without reading
//! them: `crc32c::PayloadChecksum::update_page_lanes`), which pages the program wrote in
//! the interval that ended with it, and the file's identity — is kept in a [`Ledger`]. A
//! forked writer produces it in the child but the parent uses it next time, so the ledgers
//! live in a shared anonymous mapping made at the first incremental checkpoint, before the
//! fork (never saved in an image: capture leaves it out). There are three: the latest
//! file's, the spare's (`NAME.prev`), and the one a checkpoint fills; the parent rotates
//! them only when the writer finished cleanly ([`Incremental::finished`]).
//!
//! A page kept from the spare must equal the program's memory now. That holds for a page
//! the tracker vouches for over both intervals (at the same place and size, not written)
//! if the spare stored what the program had then. Memory that ckpt itself writes after
//! the capture point breaks that, and the parent's tracking cannot see a forked writer's
//! writes at all: the arena and other reservations, the library's data and bss, the
//! writing thread's stack, control block and `errno`. So a region overlapping any of those
//! is never kept (nor recorded); such regions are ckpt's or small, written whole each time
//! after the kept ones.
//!
//! The spare is written into only while it is still the file ckpt left there: the same
//! device, inode, size, modification and change times, one link (a hard link the user made
//! to keep it would see it change), and not running (a restarted process holds its file
//! busy: `ETXTBSY`). Otherwise, or when the layout changed too much, the checkpoint is
//! written anew (a temp file named `NAME.prev`, then swapped). A checkpoint that fails
//! while writing into the spare removes it; the latest file is untouched.
//!
//! A restarted process starts afresh: its first checkpoint is written anew.
//!
//! What the tracking cannot see is memory written without a page fault: by a device or by
//! the kernel into pages pinned before they were protected (io_uring fixed buffers, RDMA).
//! Such programs need `CKPT_INCREMENTAL=0` (README).
//!
//! Everything here but [`Incremental::reserve`] runs in the checkpoint signal handler or a
//! writer child: signal-safe, reserved memory only.

use core::sync::atomic::{AtomicU64, Ordering};

use ckpt_image::PAGE_SIZE;

use crate::arena::PATH_MAX;
use crate::dirty::Tracker;
use crate::sys::{self, PageRegion};

mod extent;
mod session;
pub use session::Session;

/// Most regions a ledger describes; past that, the rest are written whole next time.
pub(crate) const MAX_REGIONS: usize = 4096;
/// Most extents a ledger describes.
const MAX_EXTENTS: usize = 1 << 18;
/// Most pages a ledger describes: 16 GiB of recorded memory.
const MAX_PAGES: usize = 1 << 22;
/// Most written runs a ledger remembers; regions past that count as all written.
const MAX_RUNS: usize = 1 << 18;

const PAGE: u64 = PAGE_SIZE;

/// What identifies a complete checkpoint file: any write, truncation, `touch`, `chmod`,
/// rename or replacement changes one of these.
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

    /// The same file, unchanged but for its change time (a rename sets that).
    fn same_content(&self, other: &Identity) -> bool {
        Identity {
            ctime: 0,
            ctime_ns: 0,
            ..*self
        } == Identity {
            ctime: 0,
            ctime_ns: 0,
            ..*other
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
    runs: u64,
    /// Which checkpoint of this process the file holds (from 1), and which one its
    /// written runs are relative to (0: none).
    generation: u64,
    based_on: u64,
    identity: Identity,
}

ckpt_image::record_layout!(Head {
    complete: u32,
    path_len: u32,
    regions: u32,
    extents: u32,
    pages: u64,
    runs: u64,
    generation: u64,
    based_on: u64,
    identity: Identity,
});

/// A region the file stores page by page: its extents are `extents[first..first + count]`;
/// the pages the program wrote in the interval that ended with this file are
/// `runs[runs_first..runs_first + runs_count]`, or all of them (`all_written`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct LedgerRegion {
    start: u64,
    len: u64,
    first: u32,
    count: u32,
    runs_first: u32,
    runs_count: u32,
    all_written: u32,
    _pad: u32,
}

ckpt_image::record_layout!(LedgerRegion {
    start: u64,
    len: u64,
    first: u32,
    count: u32,
    runs_first: u32,
    runs_count: u32,
    all_written: u32,
    _pad: u32,
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
const RUNS_AT: u64 = EXTENTS_AT + (MAX_EXTENTS * core::mem::size_of::<LedgerExtent>()) as u64;
const LANES_AT: u64 = RUNS_AT + (MAX_RUNS * core::mem::size_of::<PageRegion>()) as u64;
const LEDGER_SIZE: u64 = LANES_AT + (MAX_PAGES * 16) as u64;
const LEDGERS: usize = 3;
const MAPPING_SIZE: u64 = LEDGERS as u64 * LEDGER_SIZE;

/// What one checkpoint file stores of the regions it recorded, in the shared mapping.
struct Ledger {
    head: &'static mut [Head],
    path: &'static mut [u8],
    regions: &'static mut [LedgerRegion],
    extents: &'static mut [LedgerExtent],
    runs: &'static mut [PageRegion],
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
            extents: ckpt_image::records_mut(view(EXTENTS_AT, RUNS_AT - EXTENTS_AT))?,
            runs: ckpt_image::records_mut(view(RUNS_AT, LANES_AT - RUNS_AT))?,
            lanes: ckpt_image::records_mut(view(LANES_AT, LEDGER_SIZE - LANES_AT))?,
        })
    }

    fn complete(&self) -> bool {
        self.head[0].complete == 1
    }

    /// The checkpoint name the file was written under.
    fn path(&self) -> &[u8] {
        &self.path[..self.head[0].path_len as usize]
    }

    /// The recorded region at `start` of `len` bytes.
    fn region(&self, start: u64, len: u64) -> Option<&LedgerRegion> {
        let regions = &self.regions[..self.head[0].regions as usize];
        let i = regions.binary_search_by_key(&start, |l| l.start).ok()?;
        Some(&regions[i]).filter(|l| l.len == len)
    }

    fn extents_of(&self, l: &LedgerRegion) -> &[LedgerExtent] {
        &self.extents[l.first as usize..(l.first + l.count) as usize]
    }

    /// The pages written in the interval that ended with this file, in region `l`;
    /// `None`: all of them.
    fn runs_of(&self, l: &LedgerRegion) -> Option<&[PageRegion]> {
        let first = l.runs_first as usize;
        (l.all_written == 0).then(|| &self.runs[first..first + l.runs_count as usize])
    }
}

/// The shared mapping of the ledgers, `[start, end)`: capture leaves it out of every image.
static MAPPED: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

/// Whether the mapping at `start` of `len` bytes is the ledgers', which no image holds.
/// Signal-safe.
pub fn is_ledger_mapping(start: u64, len: u64) -> bool {
    let lo = MAPPED.0.load(Ordering::Relaxed);
    let hi = MAPPED.1.load(Ordering::Relaxed);
    lo != 0 && start >= lo && start + len <= hi
}

/// The library's incremental state, kept in [`State`](crate::checkpoint::State).
pub struct Incremental {
    pub tracker: Tracker,
    /// The ledgers, mapped at the first incremental checkpoint (a program that never
    /// takes one has no such mapping); `None` before, or when it could not be made.
    ledgers: Option<[Ledger; LEDGERS]>,
    /// The process the shared mapping belongs to: a child of the program's `fork` shares
    /// it, and makes its own before it uses it.
    owner: u32,
    /// Which ledger describes the latest file (`NAME`), and which the spare (`NAME.prev`);
    /// the third is the one a checkpoint fills.
    latest: usize,
    spare: usize,
    /// The last generation given to a checkpoint.
    generation: u64,
    /// This checkpoint began tracking, and its writer fills the third ledger.
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
            latest: 0,
            spare: 1,
            generation: 0,
            in_flight: false,
            image: sys::own_image_writable().unwrap_or((0, u64::MAX)),
        }
    }

    /// Our userfaultfd, to be left out of the saved descriptors.
    pub fn own_fd(&self) -> Option<i32> {
        self.tracker.own_fd()
    }

    /// The ledger a checkpoint fills: neither the latest's nor the spare's.
    fn next(&self) -> usize {
        3 - self.latest - self.spare
    }

    /// At an incremental checkpoint, with the process frozen, before the fork of a writer
    /// or the writing: learns which pages were written since the previous one and starts
    /// the next interval (`maps`: `/proc/self/maps` read just now), and readies the ledger
    /// the writer fills. Signal-safe.
    pub fn begin(&mut self, maps: &[u8]) {
        let pid = sys::getpid();
        if self.owner != pid {
            // A child of the program's fork: the mapping is its parent's too; the child
            // gets its own in the same place, empty.
            let base = MAPPED.0.load(Ordering::Relaxed);
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
            (self.latest, self.spare) = (0, 1);
        }
        let next = self.next();
        self.generation += 1;
        let generation = self.generation;
        let latest = self.latest;
        let Some(ledgers) = self.ledgers.as_mut() else {
            return;
        };
        // The tracker's answers are relative to the latest checkpoint if its ledger is
        // complete (see `finished`).
        let based_on = if ledgers[latest].complete() {
            ledgers[latest].head[0].generation
        } else {
            0
        };
        ledgers[next].head[0] = Head {
            generation,
            based_on,
            ..Head::default()
        };
        self.in_flight = true;
    }

    /// The checkpoint that began with [`begin`](Self::begin) produced its file (`ok`) or
    /// did not. Only a complete ledger becomes the latest's, and the latest's the spare's;
    /// anything else leaves nothing to write in place next time. Signal-safe.
    pub fn finished(&mut self, ok: bool) {
        if !core::mem::take(&mut self.in_flight) {
            return;
        }
        if !ok {
            // The latest file stands; the spare, if it was being written, is marked
            // incomplete by its writer.
            self.tracker.checkpoint_failed();
            return;
        }
        self.tracker.checkpoint_written();
        let next = self.next();
        let (latest, spare) = (self.latest, self.spare);
        if let Some(ledgers) = self.ledgers.as_mut() {
            if ledgers[next].complete() {
                (self.latest, self.spare) = (next, latest);
            } else {
                // A file no ledger describes is now the latest (and the tracker counts
                // from it): nothing recorded can be built on.
                ledgers[latest].head[0].complete = 0;
                ledgers[spare].head[0].complete = 0;
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
        MAPPED.0.store(0, Ordering::Relaxed);
        MAPPED.1.store(0, Ordering::Relaxed);
    }

    /// Whether this checkpoint began tracking (its writer uses [`Session`]).
    pub fn in_flight(&self) -> bool {
        self.in_flight && self.ledgers.is_some()
    }
}

/// Maps the ledgers (shared with a forked writer, empty). Signal-safe.
fn map_ledgers() -> Option<[Ledger; LEDGERS]> {
    let base = sys::map_shared(MAPPING_SIZE, None).ok()?;
    MAPPED.0.store(base, Ordering::Relaxed);
    MAPPED.1.store(base + MAPPING_SIZE, Ordering::Relaxed);
    Some([
        Ledger::at(base)?,
        Ledger::at(base + LEDGER_SIZE)?,
        Ledger::at(base + 2 * LEDGER_SIZE)?,
    ])
}

#[cfg(test)]
mod tests;
