//! How a restored region gets back what the program had set on it with `mmap`, `madvise`,
//! `mlock` and `mseal` (`region_flags::VM_FLAGS`): flags of its `mmap`, then advice before
//! and after it is filled; the lock and the seal come last (`main.rs`).

use ckpt_image::region_flags as rf;

pub const MAP_GROWSDOWN: usize = 0x100;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MADV_RANDOM: usize = 1;
pub const MADV_SEQUENTIAL: usize = 2;
pub const MADV_DONTFORK: usize = 10;
pub const MADV_MERGEABLE: usize = 12;
pub const MADV_HUGEPAGE: usize = 14;
pub const MADV_NOHUGEPAGE: usize = 15;
pub const MADV_DONTDUMP: usize = 16;
pub const MADV_WIPEONFORK: usize = 18;
pub const MADV_COLLAPSE: usize = 25;

/// The `mmap` flags a region with `flags` needs besides its kind and `MAP_FIXED`:
/// `MAP_NORESERVE` exactly where it had it (a region without it is charged against the
/// commit limit, as it was), `MAP_GROWSDOWN` for stacks.
pub fn map_flags(flags: u32) -> usize {
    let mut m = 0;
    if flags & rf::NORESERVE != 0 {
        m |= MAP_NORESERVE;
    }
    if flags & (rf::STACK | rf::GROWSDOWN) != 0 {
        m |= MAP_GROWSDOWN;
    }
    m
}

/// Each property restored by `madvise`, with its advice and what the restarted program
/// has lost when the kernel refuses it (one line on stderr; `None`: a hint about
/// performance only, whose refusal changes nothing the program can rely on). The
/// transparent huge page ones come first: they are also given before filling.
const ADVICE: [(u32, usize, Option<&str>); 8] = [
    (rf::HUGEPAGE, MADV_HUGEPAGE, None),
    (rf::NOHUGEPAGE, MADV_NOHUGEPAGE, None),
    (
        rf::DONTFORK,
        MADV_DONTFORK,
        Some("no longer MADV_DONTFORK (refused): a child of the program gets a copy of it"),
    ),
    (
        rf::WIPEONFORK,
        MADV_WIPEONFORK,
        Some("no longer MADV_WIPEONFORK (refused): a child of the program gets its contents, not zeros"),
    ),
    (
        rf::DONTDUMP,
        MADV_DONTDUMP,
        Some("no longer MADV_DONTDUMP (refused): a core dump of the program includes it"),
    ),
    (rf::MERGEABLE, MADV_MERGEABLE, None),
    (rf::RANDOM, MADV_RANDOM, None),
    (rf::SEQUENTIAL, MADV_SEQUENTIAL, None),
];
const THP_ADVICE: usize = 2;

/// The advice a region with `flags` gets before it is filled: its transparent huge page
/// setting, so that it is filled in the page size it keeps (2 MiB pages also fill
/// several times faster).
pub fn advice_before_fill(flags: u32) -> impl Iterator<Item = usize> {
    ADVICE[..THP_ADVICE]
        .iter()
        .filter(move |(f, _, _)| flags & f != 0)
        .map(|(_, advice, _)| *advice)
}

/// The advice a region with `flags` gets once filled (`eager`: by reading, not by
/// mapping the checkpoint file), each with what is lost if it is refused. It repeats
/// the huge page setting: a lazy restart maps the file over parts of the region, which
/// makes new mappings without it. A region that had huge pages without asking for them
/// (`HUGE` alone: the system's setting, or `MADV_COLLAPSE`) is collapsed into huge pages
/// again, which leaves its own advice as it was; not when lazy, which would read it all.
pub fn advice_after_fill(
    flags: u32,
    eager: bool,
) -> impl Iterator<Item = (usize, Option<&'static str>)> {
    let collapse = eager && flags & rf::HUGE != 0 && flags & (rf::HUGEPAGE | rf::NOHUGEPAGE) == 0;
    ADVICE
        .iter()
        .filter(move |(f, _, _)| flags & f != 0)
        .map(|(_, advice, lost)| (*advice, *lost))
        .chain(collapse.then_some((MADV_COLLAPSE, None)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn properties_of_a_region() {
        use super::*;
        use ckpt_image::region_flags as rf;
        assert_eq!(map_flags(0), 0);
        assert_eq!(map_flags(rf::NORESERVE | rf::DONTFORK), MAP_NORESERVE);
        assert_eq!(map_flags(rf::STACK), MAP_GROWSDOWN);
        assert_eq!(
            map_flags(rf::GROWSDOWN | rf::NORESERVE),
            MAP_GROWSDOWN | MAP_NORESERVE
        );

        assert_eq!(advice_before_fill(rf::DONTFORK | rf::HUGE).count(), 0);
        assert_eq!(
            advice_before_fill(rf::HUGEPAGE | rf::HUGE | rf::DONTDUMP).collect::<Vec<_>>(),
            [MADV_HUGEPAGE]
        );
        let after: Vec<_> = advice_after_fill(rf::NOHUGEPAGE | rf::WIPEONFORK | rf::RANDOM, true)
            .map(|(a, lost)| (a, lost.is_some()))
            .collect();
        assert_eq!(
            after,
            [
                (MADV_NOHUGEPAGE, false),
                (MADV_WIPEONFORK, true),
                (MADV_RANDOM, false)
            ]
        );
        // Huge pages the program did not ask for come back by collapsing, only eagerly and
        // only where it did not forbid them.
        let collapses =
            |flags, eager| advice_after_fill(flags, eager).any(|(a, _)| a == MADV_COLLAPSE);
        assert!(collapses(rf::HUGE, true));
        assert!(!collapses(rf::HUGE, false));
        assert!(!collapses(rf::HUGE | rf::HUGEPAGE, true));
        assert!(!collapses(rf::HUGE | rf::NOHUGEPAGE, true));
        assert!(!collapses(0, true));
        // Every property a program relies on says what it lost when refused.
        for flag in [rf::DONTFORK, rf::WIPEONFORK, rf::DONTDUMP] {
            assert!(advice_after_fill(flag, true).all(|(_, lost)| lost.is_some()));
        }
    }
}
