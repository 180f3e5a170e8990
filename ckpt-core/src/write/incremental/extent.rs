//! One extent of an incremental checkpoint on its way into the file: run by run, from the
//! previous file (blocks shared, or copied) or from memory, with its checksum lanes.

use super::*;

/// One extent on its way into the file.
pub(super) struct ExtentJob<'a> {
    pub(super) fd: i32,
    pub(super) prev_fd: i32,
    pub(super) addr: u64,
    pub(super) len: u64,
    pub(super) offset: u64,
    pub(super) sum: PayloadChecksum,
    /// The extent's pages' lanes, for the next ledger.
    pub(super) out: &'a mut [[u32; 4]],
    pub(super) copied: u64,
    /// Runs written or copied.
    pub(super) runs: u64,
    pub(super) sharing: &'a mut Sharing,
    pub(super) copy_anyway: bool,
}

impl ExtentJob<'_> {
    /// Writes the extent run by run: pages the previous file stores (`prev`: its extents of
    /// this region and the lanes) and that were not `written` are copied from it, all
    /// others come from memory. `written: None`: nothing is known, all from memory.
    pub(super) fn run(
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
