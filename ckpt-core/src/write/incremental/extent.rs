//! One extent of an incremental checkpoint on its way into the file: the runs of pages
//! that must come from memory, written at their place, with the checksum lanes of every
//! page (kept ones carry the lanes the spare's ledger recorded).

use ckpt_image::crc32c::{page_lanes, PayloadChecksum};

use super::*;

/// Bytes written from memory per step.
const CHUNK: u64 = 1 << 20;

/// One extent on its way into the file.
pub(super) struct ExtentJob<'a> {
    pub(super) fd: i32,
    pub(super) addr: u64,
    pub(super) len: u64,
    /// Where the extent's first page is in the file.
    pub(super) offset: u64,
    /// The extent's pages' lanes: on entry those of the pages kept, on return all.
    pub(super) out: &'a mut [[u32; 4]],
}

impl ExtentJob<'_> {
    /// Writes from memory the parts of `runs` (sorted address ranges, of any extent) that
    /// fall in this extent, recording their pages' lanes. Returns the bytes written.
    pub(super) fn write_runs(
        &mut self,
        runs: impl Iterator<Item = (u64, u64)>,
    ) -> Result<u64, i32> {
        let end = self.addr + self.len;
        let mut written = 0;
        for (lo, hi) in runs {
            let (lo, hi) = (lo.max(self.addr), hi.min(end));
            if lo < hi {
                self.write_from_memory(lo, hi)?;
                written += hi - lo;
            }
        }
        Ok(written)
    }

    /// The extent's payload checksum, from its pages' lanes.
    pub(super) fn checksum(&self) -> u32 {
        let mut sum = PayloadChecksum::new();
        for &lanes in self.out.iter() {
            sum.update_page_lanes(lanes);
        }
        sum.finish()
    }

    /// Writes `[from, to)` (whole pages inside the extent) from memory, recording each
    /// page's lanes.
    fn write_from_memory(&mut self, from: u64, to: u64) -> Result<(), i32> {
        let mut at = from;
        while at < to {
            let want = (to - at).min(CHUNK);
            // Checksummed first, which brings the chunk into the cache for the kernel's
            // copy into the file.
            let first = ((at - self.addr) / PAGE) as usize;
            for (k, out) in self.out[first..first + (want / PAGE) as usize]
                .iter_mut()
                .enumerate()
            {
                // SAFETY: a page of a stored extent of private anonymous memory (every
                // stored page readable), in a process frozen in this handler or a writer
                // child, under the fault guard.
                *out = page_lanes(unsafe { sys::memory(at + k as u64 * PAGE, PAGE) });
            }
            if sys::pwrite_from_memory(self.fd, at, want, self.offset + (at - self.addr))? != want {
                return Err(libc::EIO);
            }
            crate::progress::advance(want);
            if want == CHUNK {
                // Long runs only: writeback started among scattered pages waits for the
                // disk's queue (a checkpoint written in place took 30% longer).
                crate::write::flush::wrote(want);
            }
            at += want;
        }
        Ok(())
    }
}

/// The union of two sorted lists of page ranges, as sorted, merged `(start, end)` ranges.
pub(super) struct Union<'x> {
    a: &'x [PageRegion],
    b: &'x [PageRegion],
}

impl<'x> Union<'x> {
    pub(super) fn new(a: &'x [PageRegion], b: &'x [PageRegion]) -> Self {
        Union { a, b }
    }

    /// The first range of either list, taken off it.
    fn take_first(&mut self) -> Option<(u64, u64)> {
        let take_a = match (self.a.first(), self.b.first()) {
            (None, None) => return None,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(x), Some(y)) => x.start <= y.start,
        };
        let list = if take_a { &mut self.a } else { &mut self.b };
        let (first, rest) = list.split_first()?;
        *list = rest;
        Some((first.start, first.end))
    }
}

impl Iterator for Union<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let (lo, mut hi) = self.take_first()?;
        // Every range of either list that starts at or before the end so far joins it.
        loop {
            let joins = |l: &[PageRegion]| l.first().is_some_and(|r| r.start <= hi);
            if !joins(self.a) && !joins(self.b) {
                return Some((lo, hi));
            }
            let (_, end) = self.take_first()?;
            hi = hi.max(end);
        }
    }
}
