//! Which parts of a restored region are filled in huge pages although the program never
//! asked for them (issue 16). Faulting memory in 2 MiB pages costs a fifth of faulting it
//! in 4 KiB pages, but `MADV_HUGEPAGE` would leave the program's mapping marked (`hg`), and
//! no advice takes that mark back off. So the stub fills a scratch mapping that has the
//! advice and moves the filled pages into the region with userfaultfd's `UFFDIO_MOVE`,
//! which moves a whole page table entry of 2 MiB at a time and leaves the region's own
//! flags as they were (`regions.rs`).
//!
//! Only dense memory: a 2 MiB range whose every page was stored, so that a sparse region
//! takes no more memory than it did. The rest is read into place in small pages, as before.
//!
//! The fast path only pays when the kernel hands out huge pages. Each window is judged once
//! filled ([`judge`]), and the rest of the restart reads in place when the kernel gave it
//! mostly small pages (THP off, or none free: moving small pages costs ~17 ms per GiB and
//! gains nothing). `CKPT_HUGE_FILL` in the restart's environment overrides that ([`Mode`]).

use ckpt_image::region_flags as rf;

/// `CKPT_HUGE_FILL` of the restart's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `0`: everything is read in place, as before huge-page fills.
    Off,
    /// Unset (or any other value): filled in huge pages while the kernel gives them
    /// ([`judge`]).
    Auto,
    /// `1`: every window is filled in huge pages, even when the kernel gives small ones;
    /// only a refusal ends it (for measuring, or where huge pages matter
    /// more than the restart's time).
    Always,
}

impl Mode {
    pub fn from_env(value: Option<&[u8]>) -> Mode {
        match value {
            Some(b"0") => Mode::Off,
            Some(b"1") => Mode::Always,
            _ => Mode::Auto,
        }
    }
}

pub const HUGE_PAGE: u64 = 2 << 20;
/// The scratch mapping's size: each window is filled, checked and moved before the
/// next, so that a restart needs this much memory more, not twice the region.
pub const WINDOW: u64 = 32 << 20;

/// Whether a region with `flags` gets its dense parts filled in huge pages by moving
/// them in: private memory in an eager restart (`eager`: not `CKPT_LAZY`) that did not
/// decide about huge pages itself (`HUGEPAGE` is filled in huge pages in place;
/// `NOHUGEPAGE` forbade them). Not the
/// saved vDSO image, nor a stack, which grows down a page at a time and is small.
pub fn wanted(flags: u32, shared: bool, eager: bool) -> bool {
    let own_choice = rf::HUGEPAGE | rf::NOHUGEPAGE;
    let excluded = rf::VDSO_FAMILY | rf::STACK | rf::GROWSDOWN;
    eager && !shared && flags & (own_choice | excluded) == 0
}

/// Whether a window of `len` bytes of which `huge` were mapped in huge pages got
/// enough of them: at least half its 2 MiB blocks.
pub fn mostly_huge(len: u64, huge: u64) -> bool {
    huge.saturating_mul(2) >= len
}

/// What a window filled says about the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on filling in huge pages.
    Keep,
    /// The window came mostly in small pages: the kernel has none to give.
    SmallPages,
}

/// Judges a window of `len` bytes of which `huge` came in huge pages (`None`: the kernel
/// cannot say, which is not held against it). (A rule on how long windows take to fault
/// in was tried and dropped: on this virtual machine fresh memory costs 0.2 to 6 s per
/// GiB from one minute to the next, in either page size, and giving up on a slow start
/// made 1 GiB restarts twice as slow as keeping on.)
pub fn judge(len: u64, huge: Option<u64>) -> Verdict {
    if huge.is_some_and(|huge| !mostly_huge(len, huge)) {
        Verdict::SmallPages
    } else {
        Verdict::Keep
    }
}

/// `PAGEMAP_SCAN`'s argument and results, which tell the stub which pages of a window
/// are huge.
pub use ckpt_image::pagemap::{PageRegion, PmScanArg};

/// A part of a stored extent and how it is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Read into place, in small pages.
    Direct { at: u64, len: u64 },
    /// Filled elsewhere in huge pages and moved here: aligned to and a multiple of
    /// `HUGE_PAGE`, at most a window long.
    Huge { at: u64, len: u64 },
}

/// The pieces of the extent `[addr, addr + len)`, in address order (the order its
/// checksum is computed in): the unaligned head and tail are direct, the aligned huge
/// pages between them come a window at a time.
pub fn pieces(addr: u64, len: u64, window: u64) -> impl Iterator<Item = Piece> {
    let end = addr.saturating_add(len);
    let lo = addr.next_multiple_of(HUGE_PAGE).min(end);
    let hi = (end / HUGE_PAGE * HUGE_PAGE).max(lo);
    let window = (window / HUGE_PAGE).max(1) * HUGE_PAGE;
    let (head, tail) = if lo == hi { (end, end) } else { (lo, hi) };
    let direct = |at: u64, to: u64| (to > at).then_some(Piece::Direct { at, len: to - at });
    let huge = (0..(tail - head).div_ceil(window)).map(move |i| {
        let at = head + i * window;
        Piece::Huge {
            at,
            len: window.min(tail - at),
        }
    });
    direct(addr, head)
        .into_iter()
        .chain(huge)
        .chain(direct(tail, end))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dense_memory_is_moved_in_huge_pages() {
        use super::{pieces, wanted, Piece, HUGE_PAGE as H};
        use ckpt_image::region_flags as rf;
        let all = |addr, len, window| pieces(addr, len, window).collect::<Vec<_>>();
        // Less than a huge page, or no aligned huge page inside: read as before.
        assert_eq!(
            all(0x1000, 0x3000, 4 * H),
            [Piece::Direct {
                at: 0x1000,
                len: 0x3000
            }]
        );
        assert_eq!(
            all(H - 0x1000, H, 4 * H),
            [Piece::Direct {
                at: H - 0x1000,
                len: H
            }]
        );
        assert_eq!(all(H, 0, 4 * H), []);
        // An unaligned head and tail around aligned huge pages, a window at a time.
        assert_eq!(
            all(H - 0x1000, 5 * H + 0x2000, 2 * H),
            [
                Piece::Direct {
                    at: H - 0x1000,
                    len: 0x1000
                },
                Piece::Huge { at: H, len: 2 * H },
                Piece::Huge {
                    at: 3 * H,
                    len: 2 * H
                },
                Piece::Huge { at: 5 * H, len: H },
                Piece::Direct {
                    at: 6 * H,
                    len: 0x1000
                },
            ]
        );
        // Exactly aligned: huge pages only; a window smaller than a huge page is one.
        assert_eq!(
            all(2 * H, 2 * H, 0x1000),
            [
                Piece::Huge { at: 2 * H, len: H },
                Piece::Huge { at: 3 * H, len: H }
            ]
        );
        // The pieces cover the extent exactly, in order.
        for (addr, len) in [
            (0x1000, 9 * H),
            (3 * H, 7 * H + 0x5000),
            (H + 0x1000, 2 * H - 0x2000),
        ] {
            let mut at = addr;
            for p in pieces(addr, len, 3 * H) {
                let (Piece::Direct { at: a, len: l } | Piece::Huge { at: a, len: l }) = p;
                assert_eq!(a, at);
                if let Piece::Huge { .. } = p {
                    assert!(a % H == 0 && l % H == 0);
                }
                at += l;
            }
            assert_eq!(at, addr + len);
        }

        assert!(wanted(0, false, true));
        assert!(wanted(rf::HUGE | rf::DONTFORK, false, true));
        assert!(!wanted(0, true, true));
        assert!(!wanted(0, false, false));
        for own in [
            rf::HUGEPAGE,
            rf::NOHUGEPAGE,
            rf::STACK,
            rf::GROWSDOWN,
            rf::VDSO,
        ] {
            assert!(!wanted(own, false, true), "{own:#x}");
        }
    }

    #[test]
    fn the_fast_path_is_given_up_for_small_pages() {
        use super::{judge, mostly_huge, Verdict, HUGE_PAGE as H, WINDOW};
        // At least half the window's 2 MiB blocks in huge pages.
        assert!(mostly_huge(16 * H, 8 * H));
        assert!(!mostly_huge(16 * H, 7 * H));
        assert!(!mostly_huge(H, 0));
        assert!(mostly_huge(H, H));
        assert!(!mostly_huge(3 * H, H));
        assert!(mostly_huge(2 * H, H));
        assert_eq!(judge(WINDOW, Some(WINDOW)), Verdict::Keep);
        assert_eq!(judge(WINDOW, Some(H)), Verdict::SmallPages);
        assert_eq!(judge(H, Some(0)), Verdict::SmallPages);
        // A kernel that cannot tell keeps the fast path.
        assert_eq!(judge(WINDOW, None), Verdict::Keep);
    }
}
