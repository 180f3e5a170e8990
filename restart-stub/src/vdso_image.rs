//! The saved vDSO image: its exported functions, read from the ELF image as mapped, and the
//! jump that sends a call at an old function to this kernel's.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::parse_maps_line;

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
}
