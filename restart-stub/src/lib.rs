//! The logic of the restart stub, kept free of system calls so that it is tested on the host.
//!
//! The stub (`main.rs`, built by libckpt's build script as a freestanding executable) reads
//! `/proc/self/maps` of the freshly exec'd process, decides what to unmap and how to move the
//! kernel's vDSO family onto the saved addresses, and then restores the saved regions. The
//! parsing and planning live here.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

use ckpt_image::procfs;

/// ckpt-image's little-endian readers, widened to u64 for offsets and sizes.
fn le16(b: &[u8], at: usize) -> Option<u64> {
    ckpt_image::le::u16(b, at).map(u64::from)
}
fn le32(b: &[u8], at: usize) -> Option<u64> {
    ckpt_image::le::u32(b, at).map(u64::from)
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    ckpt_image::le::u64(b, at)
}
use ckpt_image::{region_flags, RegionRecord};

/// One line of `/proc/self/maps`, reduced to what the stub needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// The `region_flags::VVAR`/`VVAR_VCLOCK`/`VDSO` bit when it is one of those.
    pub vdso_kind: u32,
}

/// Parses one `/proc/self/maps` line (without its newline).
pub fn parse_maps_line(line: &[u8]) -> Option<Mapping> {
    let line = procfs::maps_line(line)?;
    let vdso_kind = match line.name {
        b"[vvar]" => region_flags::VVAR,
        b"[vvar_vclock]" => region_flags::VVAR_VCLOCK,
        b"[vdso]" => region_flags::VDSO,
        _ => 0,
    };
    Some(Mapping {
        start: line.start,
        end: line.end,
        vdso_kind,
    })
}

/// Parses a whole maps buffer into `out`; returns how many entries were filled, or `None` if
/// a line is malformed or `out` is too small.
pub fn parse_maps(buf: &[u8], out: &mut [Mapping]) -> Option<usize> {
    let mut n = 0;
    for line in buf.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        let m = parse_maps_line(line)?;
        *out.get_mut(n)? = m;
        n += 1;
    }
    Some(n)
}

/// Start and length of each member of the vDSO family, indexed vvar, vvar_vclock, vdso.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VdsoFamily {
    pub parts: [Option<(u64, u64)>; 3],
}

const FAMILY_KINDS: [u32; 3] = [
    region_flags::VVAR,
    region_flags::VVAR_VCLOCK,
    region_flags::VDSO,
];

impl VdsoFamily {
    pub fn from_mappings(maps: &[Mapping]) -> VdsoFamily {
        let mut f = VdsoFamily::default();
        for m in maps {
            for (i, k) in FAMILY_KINDS.iter().enumerate() {
                if m.vdso_kind == *k {
                    f.parts[i] = Some((m.start, m.end - m.start));
                }
            }
        }
        f
    }

    pub fn from_regions(regions: &[RegionRecord]) -> VdsoFamily {
        let mut f = VdsoFamily::default();
        for r in regions {
            for (i, k) in FAMILY_KINDS.iter().enumerate() {
                if r.flags & k != 0 {
                    f.parts[i] = Some((r.start, r.len));
                }
            }
        }
        f
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.is_none())
    }

    /// Lowest start and highest end of the family.
    pub fn span(&self) -> Option<(u64, u64)> {
        let mut lo = u64::MAX;
        let mut hi = 0;
        for (s, l) in self.parts.iter().flatten() {
            lo = lo.min(*s);
            hi = hi.max(s + l);
        }
        (lo < hi).then_some((lo, hi))
    }

    /// Whether the kernel's family can stand in for the saved one: the same members with the
    /// same sizes at the same distances from each other (the vDSO code finds its data at a
    /// fixed offset, so the family only works when moved as a whole).
    pub fn compatible_with(&self, saved: &VdsoFamily) -> bool {
        let (Some((cur_lo, _)), Some((saved_lo, _))) = (self.span(), saved.span()) else {
            return self.is_empty() && saved.is_empty();
        };
        self.parts
            .iter()
            .zip(saved.parts.iter())
            .all(|(c, s)| match (c, s) {
                (None, None) => true,
                (Some((cs, cl)), Some((ss, sl))) => cl == sl && cs - cur_lo == ss - saved_lo,
                _ => false,
            })
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.parts
            .iter()
            .flatten()
            .any(|(s, l)| addr >= *s && addr < s + l)
    }
}

/// Formats `v` as `0x` and lowercase hex digits into `buf`, returning the used part.
pub fn format_hex(v: u64, buf: &mut [u8; 18]) -> &[u8] {
    buf[0] = b'0';
    buf[1] = b'x';
    let digits = if v == 0 {
        1
    } else {
        (64 - v.leading_zeros() as usize).div_ceil(4)
    };
    for i in 0..digits {
        let d = ((v >> (4 * (digits - 1 - i))) & 0xf) as u8;
        buf[2 + i] = ckpt_image::digits::hex_digit(d);
    }
    &buf[..2 + digits]
}

/// Looks up `name` in a `NAME=value` environment list given as C strings.
pub fn env_lookup<'a>(env: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> Option<&'a [u8]> {
    for e in env {
        if e.len() > name.len() && e.starts_with(name) && e[name.len()] == b'=' {
            return Some(&e[name.len() + 1..]);
        }
    }
    None
}

/// Whether a flag variable of the restart's environment is set: present, not empty and not
/// `0` (as `CKPT_LAZY=1`).
pub fn env_flag<'a>(env: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> bool {
    matches!(env_lookup(env, name), Some(v) if v != b"0" && !v.is_empty())
}

/// Whether the 8 bytes at `addr` (8-byte aligned) lie in one saved writable region: the
/// only place the stub writes the restart's options into the program's memory.
pub fn writable_word(regions: &[RegionRecord], addr: u64) -> bool {
    addr.is_multiple_of(8) && writable_range(regions, addr, 8)
}

/// Whether the `len` bytes at `addr` (not 0) lie in saved writable regions, one or several
/// adjacent ones: a library's static that begins in the file-backed page of its data
/// segment and ends in the anonymous `.bss` after it spans two.
pub fn writable_range(regions: &[RegionRecord], addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    let mut at = addr;
    while at < end {
        let holder = regions.iter().find(|r| {
            r.prot & ckpt_image::prot::WRITE != 0
                && r.start <= at
                && at < r.start.saturating_add(r.len)
        });
        match holder {
            Some(r) => at = r.start.saturating_add(r.len),
            None => return false,
        }
    }
    addr != 0
}

/// The functions a vDSO exports, read from its image as mapped (`image` starts at its ELF
/// header): `f(name, offset)` for each defined function symbol of its `.dynsym`, `offset`
/// being where the function starts relative to the image. `None` when the image is not a
/// well-formed 64-bit ELF file (every offset is checked against the image).
pub fn vdso_functions(image: &[u8], mut f: impl FnMut(&[u8], u64)) -> Option<()> {
    if image.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    // The image is loaded at its first PT_LOAD's address.
    let (phoff, phnum) = (le64(image, 0x20)? as usize, le16(image, 0x38)? as usize);
    // Offsets come from the image itself, so every sum of them is checked: one that wrapped
    // around would read the wrong bytes (and panics in a build with overflow checks).
    let load_vaddr = (0..phnum)
        .map_while(|i| phoff.checked_add(i * 56))
        .find(|&ph| le32(image, ph) == Some(1))
        .and_then(|ph| le64(image, ph.checked_add(16)?))?;
    let (shoff, shentsize, shnum) = (
        le64(image, 0x28)? as usize,
        le16(image, 0x3a)? as usize,
        le16(image, 0x3c)? as usize,
    );
    if shentsize != 64 {
        return None;
    }
    let section = |i: usize| -> Option<(u64, usize, usize, usize)> {
        let sh = shoff.checked_add(i.checked_mul(64)?)?;
        Some((
            le32(image, sh.checked_add(4)?)?,
            le64(image, sh.checked_add(24)?)? as usize,
            le64(image, sh.checked_add(32)?)? as usize,
            le32(image, sh.checked_add(40)?)? as usize,
        ))
    };
    const SHT_DYNSYM: u64 = 11;
    let (_, symoff, symsize, link) = (0..shnum).filter_map(section).find(|s| s.0 == SHT_DYNSYM)?;
    let (_, stroff, strsize, _) = section(link)?;
    let symbols = image.get(symoff..symoff.checked_add(symsize)?)?;
    let strings = image.get(stroff..stroff.checked_add(strsize)?)?;
    for sym in symbols.chunks_exact(24) {
        let (name, info, shndx, value) =
            (le32(sym, 0)? as usize, sym[4], le16(sym, 6)?, le64(sym, 8)?);
        const STT_FUNC: u8 = 2;
        if info & 0xf != STT_FUNC || shndx == 0 || value < load_vaddr {
            continue;
        }
        let name = strings.get(name..)?;
        let name = &name[..name.iter().position(|&c| c == 0)?];
        f(name, value - load_vaddr);
    }
    Some(())
}

/// The 12 bytes that send a call at an old vDSO function to `target` (in this kernel's
/// vDSO): `movabs rax, target; jmp rax`. rax is free at a function's entry.
pub fn jump_to(target: u64) -> [u8; 12] {
    let mut code = [0u8; 12];
    code[..2].copy_from_slice(&[0x48, 0xb8]);
    code[2..10].copy_from_slice(&target.to_le_bytes());
    code[10..].copy_from_slice(&[0xff, 0xe0]);
    code
}

/// How a restored region gets back what the program had set on it with `mmap`, `madvise`,
/// `mlock` and `mseal` (`region_flags::VM_FLAGS`): flags of its `mmap`, then advice before
/// and after it is filled; the lock and the seal come last (`main.rs`).
pub mod properties {
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
        let collapse =
            eager && flags & rf::HUGE != 0 && flags & (rf::HUGEPAGE | rf::NOHUGEPAGE) == 0;
        ADVICE
            .iter()
            .filter(move |(f, _, _)| flags & f != 0)
            .map(|(_, advice, lost)| (*advice, *lost))
            .chain(collapse.then_some((MADV_COLLAPSE, None)))
    }
}

pub mod huge_fill;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_options() {
        let env: [&[u8]; 4] = [b"A=1", b"CKPT_STRICT_FILES=0", b"CKPT_LAZY=1", b"CKPT_X="];
        assert!(env_flag(env.iter().copied(), b"CKPT_LAZY"));
        assert!(!env_flag(env.iter().copied(), b"CKPT_STRICT_FILES"));
        assert!(!env_flag(env.iter().copied(), b"CKPT_X"));
        assert!(!env_flag(env.iter().copied(), b"CKPT_NONE"));
        let rw = RegionRecord {
            start: 0x1000,
            len: 0x1000,
            prot: ckpt_image::prot::READ | ckpt_image::prot::WRITE,
            ..Default::default()
        };
        let ro = RegionRecord {
            start: 0x2000,
            len: 0x1000,
            prot: ckpt_image::prot::READ,
            ..Default::default()
        };
        let next = RegionRecord {
            start: 0x3000,
            len: 0x1000,
            ..rw
        };
        let after = RegionRecord {
            start: 0x4000,
            len: 0x2000,
            ..rw
        };
        let regions = [rw, ro, next, after];
        // Across adjacent writable regions, not across a read-only one or past the last.
        assert!(writable_range(&regions, 0x3ff0, 0x1000));
        assert!(writable_range(&regions, 0x3000, 0x3000));
        assert!(!writable_range(&regions, 0x3000, 0x3001));
        assert!(!writable_range(&regions, 0x1ff0, 0x20));
        assert!(writable_word(&regions, 0x1000));
        assert!(writable_word(&regions, 0x1ff8));
        assert!(!writable_word(&regions, 0x1ffc));
        assert!(!writable_word(&regions, 0x2000));
        assert!(!writable_word(&regions, 0));
        assert!(!writable_word(&regions, u64::MAX - 7));
    }

    #[test]
    fn properties_of_a_region() {
        use ckpt_image::region_flags as rf;
        use properties::*;
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

    const MAPS: &[u8] = b"100000000000-100000005000 rwxp 00001000 fe:01 1234   /tmp/foo.ckpt\n\
7ffd1c9d6000-7ffd1c9f7000 rw-p 00000000 00:00 0                          [stack]\n\
7ffd1c9fa000-7ffd1c9fe000 r--p 00000000 00:00 0                          [vvar]\n\
7ffd1c9fe000-7ffd1ca00000 r--p 00000000 00:00 0                          [vvar_vclock]\n\
7ffd1ca00000-7ffd1ca02000 r-xp 00000000 00:00 0                          [vdso]\n\
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

    #[test]
    fn parses_maps_and_finds_the_vdso_family() {
        let mut out = [Mapping::default(); 8];
        let n = parse_maps(MAPS, &mut out).unwrap();
        assert_eq!(n, 6);
        assert_eq!(
            out[0],
            Mapping {
                start: 0x1000_0000_0000,
                end: 0x1000_0000_5000,
                vdso_kind: 0
            }
        );
        let fam = VdsoFamily::from_mappings(&out[..n]);
        assert_eq!(fam.parts[0], Some((0x7ffd1c9fa000, 0x4000)));
        assert_eq!(fam.parts[2], Some((0x7ffd1ca00000, 0x2000)));
        assert_eq!(fam.span(), Some((0x7ffd1c9fa000, 0x7ffd1ca02000)));
        assert!(fam.contains(0x7ffd1ca01fff));
        assert!(!fam.contains(0x7ffd1ca02000));
        let mut small = [Mapping::default(); 2];
        assert_eq!(parse_maps(MAPS, &mut small), None);
        assert_eq!(parse_maps_line(b"garbage"), None);
    }

    #[test]
    fn family_compatibility() {
        let mut out = [Mapping::default(); 8];
        let n = parse_maps(MAPS, &mut out).unwrap();
        let cur = VdsoFamily::from_mappings(&out[..n]);
        let mut saved = cur;
        for p in saved.parts.iter_mut().flatten() {
            p.0 -= 0x1234_5000;
        }
        assert!(cur.compatible_with(&saved));
        let mut bigger = saved;
        bigger.parts[2] = Some((saved.parts[2].unwrap().0, 0x3000));
        assert!(!cur.compatible_with(&bigger));
        let mut older = saved;
        older.parts[1] = None;
        assert!(!cur.compatible_with(&older));
        assert!(VdsoFamily::default().compatible_with(&VdsoFamily::default()));
    }

    #[test]
    fn hex_and_env() {
        let mut b = [0u8; 18];
        assert_eq!(format_hex(0, &mut b), b"0x0");
        assert_eq!(format_hex(0x7ffd1ca00000, &mut b), b"0x7ffd1ca00000");
        assert_eq!(format_hex(u64::MAX, &mut b), b"0xffffffffffffffff");
        use huge_fill::Mode;
        for (value, mode) in [
            (None, Mode::Auto),
            (Some(&b""[..]), Mode::Auto),
            (Some(b"0"), Mode::Off),
            (Some(b"1"), Mode::Always),
            (Some(b"yes"), Mode::Auto),
        ] {
            assert_eq!(Mode::from_env(value), mode, "{value:?}");
        }
        let env: [&[u8]; 3] = [b"A=1", b"CKPT_LAZY=1", b"CKPT_LAZ=2"];
        assert_eq!(
            env_lookup(env.iter().copied(), b"CKPT_LAZY"),
            Some(&b"1"[..])
        );
        assert_eq!(env_lookup(env.iter().copied(), b"B"), None);
    }

    /// The running process's own vDSO, as mapped.
    fn own_vdso() -> &'static [u8] {
        // SAFETY: getauxval with a constant; the vDSO mapping it points at stays mapped.
        let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps
            .lines()
            .find(|l| l.ends_with("[vdso]"))
            .expect("a [vdso] line");
        let m = parse_maps_line(line.as_bytes()).unwrap();
        assert_eq!(m.start, base);
        // SAFETY: [vdso] is mapped readable for the life of the process.
        unsafe { std::slice::from_raw_parts(base as *const u8, (m.end - m.start) as usize) }
    }

    #[test]
    fn finds_and_calls_the_vdso_clock() {
        let image = own_vdso();
        let mut names = Vec::new();
        let mut clock = None;
        vdso_functions(image, |name, off| {
            names.push(String::from_utf8_lossy(name).into_owned());
            if name == b"__vdso_clock_gettime" {
                clock = Some(off);
            }
        })
        .expect("the vDSO parses");
        assert!(
            names.iter().any(|n| n == "__vdso_gettimeofday"),
            "{names:?}"
        );
        let at = image.as_ptr() as u64 + clock.expect("__vdso_clock_gettime");
        // SAFETY: the address is __vdso_clock_gettime in this process's vDSO.
        let f: extern "C" fn(i32, *mut libc::timespec) -> i32 = unsafe { std::mem::transmute(at) };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        assert_eq!(f(libc::CLOCK_REALTIME, &mut ts), 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!((now.as_secs() as i64 - ts.tv_sec).abs() <= 1);
    }

    #[test]
    fn damaged_images_are_refused_not_faulted_on() {
        let image = own_vdso().to_vec();
        for cut in [0, 4, 63, 64, image.len() / 2] {
            let _ = vdso_functions(&image[..cut], |_, _| {});
        }
        let mut bad = image.clone();
        bad[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(vdso_functions(&bad, |_, _| {}).is_none());
        assert!(vdso_functions(b"not an elf", |_, _| {}).is_none());
        // Tables placed so near the top of the address space that their fields would wrap
        // around (onto the image's first bytes) are refused too.
        for (field, at) in [(0x28, u64::MAX - 3), (0x20, u64::MAX - 15)] {
            let mut wrapping = image.clone();
            wrapping[field..field + 8].copy_from_slice(&at.to_le_bytes());
            assert!(vdso_functions(&wrapping, |_, _| {}).is_none(), "{field:#x}");
        }
    }

    #[test]
    fn jump_encoding() {
        assert_eq!(
            jump_to(0x1122_3344_5566_7788),
            [0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xff, 0xe0]
        );
    }

    #[test]
    fn dense_memory_is_moved_in_huge_pages() {
        use ckpt_image::region_flags as rf;
        use huge_fill::{pieces, wanted, Piece, HUGE_PAGE as H};
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
        use huge_fill::{judge, mostly_huge, Verdict, HUGE_PAGE as H, WINDOW};
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
