//! Which pages the program wrote since the last checkpoint, for incremental checkpoints.
//!
//! After a checkpoint, every private writable anonymous mapping is registered with a
//! userfaultfd of ours for asynchronous write protection (`sys::uffd`): the program runs on
//! at full speed but for ~1 µs on its first write to each page, and the kernel marks that
//! page written. At the next checkpoint, one `PAGEMAP_SCAN` per region lists the written
//! pages and protects them again in the same call, so that the interval after this
//! checkpoint is tracked from this very moment — before the image is written, by this
//! process or a forked writer, so that nothing written afterwards is missed.
//!
//! The tracker vouches only for what it saw from start to end: a region it protected after
//! the last good checkpoint, at the same address and of the same size, whose scan succeeded
//! (`PM_SCAN_CHECK_WPASYNC` fails on a range that is no longer registered: moved, resized,
//! unmapped and mapped again). Anything else — a new region, a failed registration (the
//! program's own userfaultfd has it: the kernel gives EBUSY), a failed checkpoint in
//! between, a restarted process (whose descriptor is not ours) — is "all changed". The
//! kernel is conservative too: pages dropped with `MADV_DONTNEED` and pages never protected
//! count as written (measured: benches/probes/uffd_wp.c).
//!
//! The program sees the tracking only as `uw` in its `VmFlags` (which ckpt never saves as
//! the program's) and as EBUSY should it register one of these regions with a userfaultfd
//! of its own; `CKPT_INCREMENTAL=0` is the way out for such programs.
//!
//! Everything here runs in the checkpoint signal handler: signal-safe, reserved memory only.

use ckpt_image::procfs;

use crate::sys::{self, PageRegion};

/// Most regions tracked; past that, the rest are "all changed".
pub const MAX_TRACKED: usize = 4096;

/// Most written ranges remembered per checkpoint; a checkpoint with more gives up on
/// the regions that do not fit ("all changed").
pub const MAX_WRITTEN: usize = 1 << 20;

const PAGE: u64 = ckpt_image::PAGE_SIZE;

/// A region as the tracker sees it: tracked since the last checkpoint, and this
/// checkpoint's answer for it.
#[derive(Clone, Copy, Debug, Default)]
struct Tracked {
    start: u64,
    len: u64,
    /// This checkpoint's written ranges, `written[first..first + count]`; meaningful only
    /// when `known`.
    first: u32,
    count: u32,
    known: u32,
    /// The scan failed: no longer registered (unmapped and mapped again, say).
    lost: u32,
}

ckpt_image::record_layout!(Tracked {
    start: u64,
    len: u64,
    first: u32,
    count: u32,
    known: u32,
    lost: u32,
});

/// The tracker's state. `tracked` holds, between checkpoints, the regions protected after
/// the last one; during a checkpoint, their answers.
pub struct Tracker {
    /// Our userfaultfd (-1: none) and the process that opened it: in another process (a
    /// restarted one, a child) the number is not ours.
    uffd: i32,
    pid: u32,
    tracked: &'static mut [Tracked],
    n_tracked: usize,
    written: &'static mut [PageRegion],
    n_written: usize,
    /// Whether the last checkpoint succeeded since tracking began: the answers are
    /// relative to it.
    based: bool,
}

/// What the tracker can say about a region at this checkpoint.
#[derive(Clone, Copy)]
pub enum Since<'a> {
    /// Nothing: store it all from memory.
    AllChanged,
    /// Tracked since the last checkpoint at the same address and size: only these page
    /// ranges were written (sorted, inside the region); every other page is as the last
    /// checkpoint stored it.
    Written(&'a [PageRegion]),
}

impl Tracker {
    /// Reserves the tracker's memory (lazily committed). Called once, at library load.
    pub fn reserve() -> Tracker {
        Tracker {
            uffd: -1,
            pid: 0,
            tracked: sys::as_records(sys::reserve(MAX_TRACKED * core::mem::size_of::<Tracked>())),
            n_tracked: 0,
            written: sys::as_records(sys::reserve(
                MAX_WRITTEN * core::mem::size_of::<PageRegion>(),
            )),
            n_written: 0,
            based: false,
        }
    }

    /// Our userfaultfd, to be left out of the saved descriptors.
    pub fn own_fd(&self) -> Option<i32> {
        (self.uffd >= 0 && self.pid == sys::getpid()).then_some(self.uffd)
    }

    /// In a restarted process: nothing is tracked, and the descriptor number (restored or
    /// not) is not ours. The next checkpoint is full.
    pub fn forget(&mut self) {
        self.uffd = -1;
        self.n_tracked = 0;
        self.n_written = 0;
        self.based = false;
    }

    /// The checkpoint did not produce its image: what was written before it is no longer
    /// recorded anywhere (the scan reset it), so the next checkpoint is full.
    pub fn checkpoint_failed(&mut self) {
        self.based = false;
    }

    /// The checkpoint's image is complete: the next checkpoint may be relative to it.
    pub fn checkpoint_written(&mut self) {
        self.based = self.uffd >= 0;
    }

    /// At a checkpoint, with the process frozen, before its memory is read: scans every
    /// tracked region for the pages written since the last checkpoint (protecting them
    /// again), then starts tracking the private writable anonymous mappings of `maps` (the
    /// text of `/proc/self/maps`, read just now) that were not tracked yet. Afterwards
    /// [`since`](Self::since) answers for this checkpoint. Signal-safe.
    pub fn begin_checkpoint(&mut self, maps: &[u8]) {
        let pid = sys::getpid();
        if self.uffd >= 0 && self.pid != pid {
            self.forget();
        }
        if self.uffd < 0 {
            match sys::uffd_open_wp_async().map(|fd| {
                // Far from the program's low numbers, which it may close and reuse (where
                // the descriptor limit allows).
                match sys::dup_above(fd, 900) {
                    Ok(high) => {
                        sys::close(fd);
                        high
                    }
                    Err(_) => fd,
                }
            }) {
                Ok(fd) => (self.uffd, self.pid) = (fd, pid),
                Err(_) => return,
            }
            self.n_tracked = 0;
            self.based = false;
        }
        self.scan_tracked();
        self.track(maps);
    }

    /// Fills the answers of the tracked regions.
    fn scan_tracked(&mut self) {
        self.n_written = 0;
        let pagemap = sys::open(
            b"/proc/thread-self/pagemap\0",
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        )
        .ok();
        for i in 0..self.n_tracked {
            let t = self.tracked[i];
            let first = self.n_written;
            // Scanned even when the answer cannot be used: the scan protects again what
            // was written, so that the next checkpoint sees only what follows this one.
            let scanned = pagemap.is_some_and(|pm| self.scan_one(pm, t.start, t.start + t.len));
            let known = self.based && scanned;
            if !known {
                self.n_written = first;
            }
            self.tracked[i] = Tracked {
                first: first as u32,
                count: (self.n_written - first) as u32,
                known: known as u32,
                lost: !scanned as u32,
                ..t
            };
        }
        if let Some(pm) = pagemap {
            sys::close(pm);
        }
    }

    /// Appends the written ranges of `[start, end)`; false when they cannot all be known.
    fn scan_one(&mut self, pagemap: i32, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            let room = &mut self.written[self.n_written..];
            if room.is_empty() {
                return false;
            }
            let Ok(got) = sys::scan_written_and_protect(pagemap, at, end, room) else {
                return false;
            };
            self.n_written += got;
            // walk_end is not trustworthy on this kernel: a full buffer means "more".
            if got < room.len() {
                return true;
            }
            at = self.written[self.n_written - 1].end;
        }
        true
    }

    /// Makes `tracked` the private writable anonymous mappings of `maps`, keeping the
    /// answers of those tracked at the same place and size, and registering and protecting
    /// the others ("all changed" this time).
    fn track(&mut self, maps: &[u8]) {
        let old = self.n_tracked;
        // The new list is built after the old one and moved down at the end; both sorted.
        let mut n = old;
        let mut o = 0;
        for line in maps.split(|&c| c == b'\n') {
            let Some(m) = procfs::maps_line(line) else {
                continue;
            };
            // ckpt's own reservations are written whole every time: not tracked.
            if !trackable(&m) || n == self.tracked.len() || sys::overlaps_reserved(m.start, m.end) {
                continue;
            }
            let (start, len) = (m.start, m.end - m.start);
            while o < old && self.tracked[o].start < start {
                o += 1;
            }
            let same = o < old
                && self.tracked[o].start == start
                && self.tracked[o].len == len
                && self.tracked[o].lost == 0;
            let entry = if same {
                self.tracked[o]
            } else {
                let ok = sys::uffd_register_wp(self.uffd, start, len).is_ok()
                    && sys::uffd_write_protect(self.uffd, start, len).is_ok();
                if !ok {
                    // The program's own userfaultfd has it, or the kernel cannot: untracked.
                    continue;
                }
                Tracked {
                    start,
                    len,
                    ..Default::default()
                }
            };
            self.tracked[n] = entry;
            n += 1;
        }
        self.tracked.copy_within(old..n, 0);
        self.n_tracked = n - old;
    }

    /// What is known about the region at `start` of `len` bytes at this checkpoint (after
    /// [`begin_checkpoint`](Self::begin_checkpoint)). Signal-safe.
    pub fn since(&self, start: u64, len: u64) -> Since<'_> {
        let tracked = &self.tracked[..self.n_tracked];
        match tracked.binary_search_by_key(&start, |t| t.start) {
            Ok(i) if tracked[i].len == len && tracked[i].known != 0 => {
                let t = tracked[i];
                Since::Written(&self.written[t.first as usize..(t.first + t.count) as usize])
            }
            _ => Since::AllChanged,
        }
    }
}

/// Private, writable, anonymous (or the heap or the stack): the memory a program changes,
/// and the only kind whose pages the tracker can vouch for.
fn trackable(m: &procfs::MapsLine) -> bool {
    let anon = m.inode == 0 && (m.name.is_empty() || m.name == b"[heap]" || m.name == b"[stack]");
    anon && m.perms[1] == b'w' && m.perms[3] == b'p'
}

/// Pages in `written`.
pub fn written_pages(written: &[PageRegion]) -> u64 {
    written.iter().map(|w| (w.end - w.start) / PAGE).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(since: Since<'_>, base: u64) -> Option<Vec<(u64, u64)>> {
        match since {
            Since::AllChanged => None,
            Since::Written(w) => Some(
                w.iter()
                    .map(|r| ((r.start - base) / PAGE, (r.end - base) / PAGE))
                    .collect(),
            ),
        }
    }

    fn maps_line(start: u64, len: u64) -> Vec<u8> {
        format!("{:x}-{:x} rw-p 00000000 00:00 0\n", start, start + len).into_bytes()
    }

    #[test]
    fn tracks_written_pages_between_checkpoints() {
        let len = 64 * PAGE;
        // SAFETY: a fresh private anonymous mapping, used only by this test.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let base = p as u64;
        let write = |page: u64| {
            // SAFETY: inside the mapping made above.
            unsafe { *((base + page * PAGE + 8) as *mut u8) = 7 };
        };
        // Pages 48.. are not populated when the tracking starts.
        for page in 0..48 {
            write(page);
        }
        let mut t = Tracker::reserve();
        let maps = maps_line(base, len);
        t.begin_checkpoint(&maps);
        if t.own_fd().is_none() {
            eprintln!("skipped: no userfaultfd with asynchronous write protection here");
            return;
        }
        // New: nothing to vouch for.
        assert_eq!(pages(t.since(base, len), base), None);
        t.checkpoint_written();
        write(3);
        write(10);
        write(11);
        // The first write to a page that was not populated is seen too.
        write(50);
        t.begin_checkpoint(&maps);
        assert_eq!(
            pages(t.since(base, len), base),
            Some(vec![(3, 4), (10, 12), (50, 51)])
        );
        // Another size or place: not the tracked region.
        assert_eq!(pages(t.since(base, len - PAGE), base), None);
        t.checkpoint_written();
        t.begin_checkpoint(&maps);
        assert_eq!(pages(t.since(base, len), base), Some(vec![]));
        // A failed checkpoint in between: the writes it reset are lost, so all changed.
        t.checkpoint_failed();
        write(5);
        t.begin_checkpoint(&maps);
        assert_eq!(pages(t.since(base, len), base), None);
        t.checkpoint_written();
        write(63);
        t.begin_checkpoint(&maps);
        assert_eq!(pages(t.since(base, len), base), Some(vec![(63, 64)]));
        t.checkpoint_written();
        // Unmapped and mapped again at the same place and size, as a program might: the
        // new mapping is not registered, the scan fails, all changed.
        // SAFETY: replaces the test's own mapping with a fresh one at the same place.
        let q = unsafe {
            libc::mmap(
                p,
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        assert_eq!(q, p);
        t.begin_checkpoint(&maps);
        assert_eq!(pages(t.since(base, len), base), None);
        t.checkpoint_written();
        // Tracked again from that checkpoint on.
        write(1);
        t.begin_checkpoint(&maps);
        assert_eq!(pages(t.since(base, len), base), Some(vec![(1, 2)]));
        // A restarted process: forgets everything.
        t.forget();
        t.begin_checkpoint(&maps);
        assert_eq!(pages(t.since(base, len), base), None);
        // SAFETY: the test's own mapping, unused from here on.
        unsafe { libc::munmap(p, len as usize) };
    }
}
