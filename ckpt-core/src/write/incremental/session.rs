//! One incremental checkpoint's writing: whether it goes into the spare in place, where
//! each region's payloads go, and what the next ledger records. Signal-safe.

use ckpt_image::{region_flags as rf, ExtentRecord, RegionRecord, EXTENT_GUARD};

use super::extent::{ExtentJob, Union};
use super::*;
use crate::dirty::Since;

/// Suffix of the spare's name: `NAME.prev`.
const SPARE_SUFFIX: &[u8] = b".prev";

/// The spare is written in place only while the space its layout wastes (payloads of
/// regions that are gone or moved, below the last kept one) is at most this share of
/// what it keeps, plus [`DEAD_SLACK`]; past that it is written anew, compact again.
const DEAD_SHARE: u64 = 4;
const DEAD_SLACK: u64 = 64 << 20;

/// One incremental checkpoint's writing, from before its file is opened until it is
/// complete.
pub struct Session<'a> {
    tracker: &'a Tracker,
    /// The latest file's ledger (the pages written in its interval), if complete.
    latest: &'a mut Ledger,
    /// The spare's ledger, when the checkpoint goes into it in place.
    spare: Option<&'a Ledger>,
    next: &'a mut Ledger,
    /// The spare, open for writing in place; -1: the checkpoint is written anew.
    spare_fd: i32,
    /// `NAME.prev`, NUL-terminated.
    spare_path: [u8; PATH_MAX + 8],
    spare_len: usize,
    /// Memory ckpt writes while it writes the image: no region overlapping it is kept.
    live: [(u64, u64); 4],
    /// Regions (by index in the image) that the spare stores at the same place, extent for
    /// extent: written in place.
    in_place: [u64; MAX_REGIONS / 64],
    /// Payload bytes kept from the spare (not written).
    pub kept: u64,
}

impl<'a> Session<'a> {
    /// Starts the writing of a checkpoint named `name` whose tracking began: opens the
    /// spare for writing in place if the ledgers describe it and it is still that file.
    /// Signal-safe.
    pub fn open(inc: &'a mut Incremental, name: &[u8]) -> Option<Session<'a>> {
        if !inc.in_flight() {
            return None;
        }
        let (latest, spare, next) = (inc.latest, inc.spare, inc.next());
        let mut spare_path = [0u8; PATH_MAX + 8];
        let spare_len = name.len() + SPARE_SUFFIX.len();
        if spare_len >= spare_path.len() {
            return None;
        }
        spare_path[..name.len()].copy_from_slice(name);
        spare_path[name.len()..spare_len].copy_from_slice(SPARE_SUFFIX);
        let ledgers = inc.ledgers.as_mut()?;
        let [a, b, c] = ledgers;
        let mut by_role = [Some(a), Some(b), Some(c)];
        let latest = by_role[latest].take()?;
        let spare = by_role[spare].take()?;
        let next = by_role[next].take()?;
        let fits = latest.complete() && spare.complete() && latest.path() == name;
        let spare_fd = if fits && spare.path() == name {
            open_spare(spare, &spare_path[..=spare_len])
        } else {
            -1
        };
        if spare_fd >= 0 {
            // From here on the spare's bytes are not what its ledger says, until the new
            // ledger describes them.
            spare.head[0].complete = 0;
        }
        let spare: &'a Ledger = spare;
        let page = |a: u64| a & !(PAGE - 1);
        let here = &spare_fd as *const i32 as u64;
        let (fs, errno) = (page(sys::fs_base()), page(sys::errno_address()));
        Some(Session {
            tracker: &inc.tracker,
            latest,
            spare: (spare_fd >= 0).then_some(spare),
            next,
            spare_fd,
            spare_path,
            spare_len,
            live: [
                (here.saturating_sub(1 << 20), here + (1 << 20)),
                (fs.saturating_sub(2 * PAGE), fs + 2 * PAGE),
                (errno, errno + PAGE),
                inc.image,
            ],
            in_place: [0; MAX_REGIONS / 64],
            kept: 0,
        })
    }

    /// The spare, open for writing, if the checkpoint goes into it in place; else `None`
    /// (it is written anew, and named `NAME.prev` before the swap).
    pub fn spare_fd(&self) -> Option<i32> {
        (self.spare_fd >= 0).then_some(self.spare_fd)
    }

    /// `NAME.prev`, NUL-terminated.
    pub fn spare_path(&self) -> &[u8] {
        &self.spare_path[..=self.spare_len]
    }

    /// Whether region `r` (stored uncompressed) goes through [`write_region`]: private
    /// anonymous memory the program writes, none of it ckpt's, and room in the ledger.
    pub fn takes(&self, r: &RegionRecord) -> bool {
        let h = &self.next.head[0];
        self.eligible(r)
            && (h.regions as usize) < MAX_REGIONS
            && h.extents as usize + r.extent_count as usize <= MAX_EXTENTS
            && h.pages as usize + (r.stored / PAGE) as usize <= MAX_PAGES
    }

    fn eligible(&self, r: &RegionRecord) -> bool {
        let end = r.start + r.len;
        let kind = rf::FILE | rf::SHARED | rf::VDSO_FAMILY;
        let rw = ckpt_image::prot::READ | ckpt_image::prot::WRITE;
        r.flags & kind == 0
            && r.prot & rw == rw
            && !sys::overlaps_reserved(r.start, end)
            && !is_ledger_mapping(r.start, r.len)
            && !self.live.iter().any(|&(lo, hi)| r.start < hi && end > lo)
    }

    /// Decides which regions go into the spare where it has them, extent for extent, and
    /// returns where the payloads of all others begin: after the last kept one (or at
    /// `start`, the first payload's place, when nothing is kept). `extents`: the image's.
    pub fn plan(&mut self, regions: &[RegionRecord], extents: &[ExtentRecord], start: u64) -> u64 {
        let Some(spare) = self.spare else {
            return start;
        };
        let (mut end, mut kept) = (start, 0);
        for (i, r) in regions.iter().enumerate().take(MAX_REGIONS) {
            if !self.eligible(r) {
                continue;
            }
            let Some(l) = spare.region(r.start, r.len) else {
                continue;
            };
            let theirs = spare.extents_of(l);
            let first = r.first_extent as usize;
            let ours = extents[first..first + r.extent_count as usize]
                .iter()
                .filter(|e| e.flags & EXTENT_GUARD == 0);
            if ours.clone().count() != theirs.len()
                || !ours
                    .zip(theirs)
                    .all(|(e, p)| e.addr == p.addr && e.len == p.len)
            {
                continue;
            }
            self.in_place[i / 64] |= 1 << (i % 64);
            for p in theirs {
                end = end.max(ckpt_image::page_up(p.file_offset + p.len));
                kept += p.len;
            }
        }
        if (end - start).saturating_sub(kept) > kept / DEAD_SHARE + DEAD_SLACK {
            // Too much of the file would be dead: everything is written anew from `start`.
            self.in_place = [0; MAX_REGIONS / 64];
            return start;
        }
        end
    }

    /// Writes the stored extents of region `r` (number `index` in the image, accepted by
    /// [`takes`](Self::takes)) and records them in the next ledger: in place where the
    /// spare has them ([`plan`](Self::plan)), only the pages written since the spare was
    /// taken; otherwise all of them at `offset`. Returns where the next payload goes.
    pub fn write_region(
        &mut self,
        fd: i32,
        index: usize,
        r: &RegionRecord,
        extents: &mut [ExtentRecord],
        mut offset: u64,
    ) -> Result<u64, i32> {
        let tracker = self.tracker;
        let now = match tracker.since(r.start, r.len) {
            Since::Written(w) => Some(w),
            Since::AllChanged => None,
        };
        self.record_region(r, now);
        let in_place = index < MAX_REGIONS && self.in_place[index / 64] & (1 << (index % 64)) != 0;
        let spare = self.spare.filter(|_| in_place);
        let theirs = spare
            .and_then(|s| Some(s.extents_of(s.region(r.start, r.len)?)))
            .unwrap_or(&[]);
        // What changed since the spare was taken: the latest file's interval and this one.
        let before = spare.and_then(|s| {
            let latest = &*self.latest;
            (latest.complete() && latest.head[0].based_on == s.head[0].generation)
                .then(|| {
                    latest
                        .region(r.start, r.len)
                        .and_then(|l| latest.runs_of(l))
                })
                .flatten()
        });
        let changed = match (before, now) {
            (Some(b), Some(n)) => Some((b, n)),
            _ => None,
        };
        let mut k = 0;
        for e in extents.iter_mut() {
            if e.flags & EXTENT_GUARD != 0 {
                continue;
            }
            let place = theirs.get(k);
            k += 1;
            let file_offset = match place {
                Some(p) => p.file_offset,
                None => ckpt_image::page_up(offset),
            };
            e.file_offset = file_offset;
            let h = &mut self.next.head[0];
            let first_page = h.pages;
            self.next.extents[h.extents as usize] = LedgerExtent {
                addr: e.addr,
                len: e.len,
                file_offset,
                first_page,
            };
            let pages = (e.len / PAGE) as usize;
            let out = &mut self.next.lanes[first_page as usize..first_page as usize + pages];
            let mut job = ExtentJob {
                fd,
                addr: e.addr,
                len: e.len,
                offset: file_offset,
                out,
            };
            match (place, spare, changed) {
                (Some(p), Some(s), Some((b, n))) => {
                    let first = p.first_page as usize;
                    job.out.copy_from_slice(&s.lanes[first..first + pages]);
                    let written = job.write_runs(Union::new(b, n))?;
                    self.kept += e.len - written;
                    crate::progress::advance(e.len - written);
                }
                _ => job
                    .write_runs(core::iter::once((e.addr, e.addr + e.len)))
                    .map(drop)?,
            }
            e.crc = job.checksum();
            e.flags |= ckpt_image::EXTENT_HAS_CRC;
            if place.is_none() {
                offset = file_offset + e.len;
            }
            let h = &mut self.next.head[0];
            h.extents += 1;
            h.pages += e.len / PAGE;
        }
        let h = &mut self.next.head[0];
        let i = h.regions as usize;
        self.next.regions[i].count = h.extents - self.next.regions[i].first;
        h.regions += 1;
        Ok(offset)
    }

    /// Starts region `r`'s record in the next ledger, with the pages written in this
    /// interval (`now`; `None`: all).
    fn record_region(&mut self, r: &RegionRecord, now: Option<&[PageRegion]>) {
        let h = &mut self.next.head[0];
        let runs_first = h.runs as usize;
        let fits = now.filter(|w| runs_first + w.len() <= MAX_RUNS);
        if let Some(w) = fits {
            self.next.runs[runs_first..runs_first + w.len()].copy_from_slice(w);
            h.runs += w.len() as u64;
        }
        self.next.regions[h.regions as usize] = LedgerRegion {
            start: r.start,
            len: r.len,
            first: h.extents,
            count: 0,
            runs_first: runs_first as u32,
            runs_count: fits.map_or(0, |w| w.len() as u32),
            all_written: fits.is_none() as u32,
            _pad: 0,
        };
    }

    /// The new file is complete under `name` (`fd` still open on it), and the latest file
    /// before it is at `NAME.prev` (if it was there to swap): the next checkpoint may be
    /// written into that one. Signal-safe.
    pub fn complete(self, fd: i32, name: &[u8]) {
        // The swap changed the former latest file's change time, nothing else.
        if let Ok(st) = sys::lstat(self.spare_path()) {
            let now = Identity::of(&st);
            if now.same_content(&self.latest.head[0].identity) {
                self.latest.head[0].identity = now;
            }
        }
        let Ok(st) = sys::fstat(fd) else {
            return;
        };
        if name.len() > self.next.path.len() {
            return;
        }
        self.next.path[..name.len()].copy_from_slice(name);
        let h = &mut self.next.head[0];
        h.path_len = name.len() as u32;
        h.identity = Identity::of(&st);
        h.complete = 1;
    }
}

/// The spare (`path`), opened for writing in place, if it is still the file its ledger
/// describes, has no other name and is not running; else -1. Signal-safe.
fn open_spare(spare: &Ledger, path: &[u8]) -> i32 {
    let flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let Ok(fd) = sys::open(path, flags, 0) else {
        return -1;
    };
    match sys::fstat(fd) {
        Ok(st) if Identity::of(&st) == spare.head[0].identity && st.st_nlink == 1 => fd,
        _ => {
            sys::close(fd);
            -1
        }
    }
}
