//! `/proc/self/maps` as the stub reads it, and the kernel's vDSO family in it and in the
//! saved regions: where it is, and whether the running kernel's can stand in for the saved
//! one.

use ckpt_image::{procfs, region_flags, RegionRecord};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
