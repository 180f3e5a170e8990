//! Fuzz tests of what the restart stub parses: the vDSO image it forwards calls through and
//! the `/proc/self/maps` text it plans from, with seeded mutations of the real thing (this
//! process's own vDSO and maps). The mutation strategies and how to replay a failure are in
//! `ckpt-image/tests/fuzzing/mod.rs`, shared with `ckpt-image`'s fuzz tests.
//!
//! | test           | cases   | what must hold                                                |
//! |----------------|---------|---------------------------------------------------------------|
//! | `vdso_mutated` | 100,000 | `vdso_functions` on a mutated copy of the vDSO: no panic; every name it reports is a NUL-terminated string inside the image; damage outside the bytes it reads changes nothing |
//! | `vdso_random`  | 50,000  | `vdso_functions` on random bytes behind an ELF magic: no panic, names inside the image |
//! | `maps_text`    | 50,000  | `parse_maps` and `parse_maps_line` on mutated maps text: each line as `procfs::maps_line` reads it (itself fuzzed in ckpt-image), the vDSO family by name, `None` for a bad line or too little room |
//! | `hex_and_env`  | 20,000  | `format_hex` equals `{:#x}`; `env_lookup` finds the first `NAME=` entry |
//!
//! 220,000 cases, about half a second in a release build, a tenth of them in a debug build.

#[macro_use]
#[path = "../../ckpt-image/tests/fuzzing/mod.rs"]
mod fuzzing;

use std::ops::Range;

use ckpt_image::procfs;
use fuzzing::{mutate, run, Rng, IN_PLACE, MUTATIONS};
use restart_stub::{env_lookup, format_hex, parse_maps, parse_maps_line, vdso_functions, Mapping};

// ---------------------------------------------------------------------------------------------
// The vDSO

/// A copy of this process's vDSO image, as mapped.
fn own_vdso() -> Vec<u8> {
    // SAFETY: getauxval with a constant has no preconditions.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let line = maps
        .lines()
        .find(|l| l.ends_with("[vdso]"))
        .expect("a [vdso] line");
    let m = parse_maps_line(line.as_bytes()).expect("the [vdso] line parses");
    assert_eq!(m.start, base, "AT_SYSINFO_EHDR is the [vdso] mapping");
    // SAFETY: [vdso] is mapped readable, from its start to its end, for the life of the
    // process.
    unsafe { std::slice::from_raw_parts(base as *const u8, (m.end - m.start) as usize) }.to_vec()
}

fn le(b: &[u8], at: usize, width: usize) -> usize {
    let mut w = [0u8; 8];
    w[..width].copy_from_slice(&b[at..at + width]);
    u64::from_le_bytes(w) as usize
}

/// What `vdso_functions` reports: each function's name and offset, and whether it parsed.
type Functions = (Option<()>, Vec<(Vec<u8>, u64)>);

/// Runs `vdso_functions` on `image`, checking that every name it reports is a string inside
/// the image, ended by a NUL inside it too.
fn functions(image: &[u8]) -> Result<Functions, String> {
    let mut found = Vec::new();
    let mut outside = None;
    let parsed = vdso_functions(image, |name, offset| {
        let start = (name.as_ptr() as usize).wrapping_sub(image.as_ptr() as usize);
        let nul = start.checked_add(name.len());
        if !nul.is_some_and(|nul| nul < image.len() && image[nul] == 0) || name.contains(&0) {
            outside = Some(start);
        }
        found.push((name.to_vec(), offset));
    });
    match outside {
        Some(at) => Err(format!(
            "a name at {at:#x} is not a string inside the image"
        )),
        None => Ok((parsed, found)),
    }
}

/// The bytes of a vDSO image that `vdso_functions` reads: the ELF header, the program
/// headers, the section headers, and the dynamic symbol and string tables. Offsets of the
/// fields that steer it, for targeted damage.
struct Layout {
    read: Vec<Range<usize>>,
    fields: Vec<(usize, usize)>,
}

fn layout(image: &[u8]) -> Layout {
    let (phoff, phnum) = (le(image, 0x20, 8), le(image, 0x38, 2));
    let (shoff, shnum) = (le(image, 0x28, 8), le(image, 0x3c, 2));
    let mut read = vec![0..64, phoff..phoff + phnum * 56, shoff..shoff + shnum * 64];
    let mut fields = vec![(0x20, 8), (0x28, 8), (0x38, 2), (0x3a, 2), (0x3c, 2)];
    for i in 0..phnum {
        fields.extend([(phoff + i * 56, 4), (phoff + i * 56 + 16, 8)]);
    }
    for i in 0..shnum {
        let sh = shoff + i * 64;
        if le(image, sh + 4, 4) == 11 {
            // SHT_DYNSYM, and the string table it links to.
            let (symoff, symsize, link) = (
                le(image, sh + 24, 8),
                le(image, sh + 32, 8),
                le(image, sh + 40, 4),
            );
            let strtab = shoff + link * 64;
            read.push(symoff..symoff + symsize);
            read.push(
                le(image, strtab + 24, 8)..le(image, strtab + 24, 8) + le(image, strtab + 32, 8),
            );
            fields.extend([
                (sh + 4, 4),
                (sh + 24, 8),
                (sh + 32, 8),
                (sh + 40, 4),
                (strtab + 24, 8),
                (strtab + 32, 8),
            ]);
            for sym in (symoff..symoff + symsize).step_by(24) {
                fields.extend([(sym, 4), (sym + 4, 1), (sym + 6, 2), (sym + 8, 8)]);
            }
        }
    }
    Layout { read, fields }
}

#[test]
fn vdso_mutated() {
    let original = own_vdso();
    let baseline = functions(&original).expect("the vDSO's names are inside it");
    assert_eq!(baseline.0, Some(()), "the vDSO parses");
    assert!(
        baseline
            .1
            .iter()
            .any(|(name, _)| name == b"__vdso_clock_gettime"),
        "the vDSO exports __vdso_clock_gettime: {:?}",
        baseline.1
    );
    let layout = layout(&original);
    let mut unchanged = 0;
    let cases = run("vdso_mutated", 100_000, |rng| {
        let mut image = original.clone();
        if rng.one_in(2) {
            // A field that steers the parse: an edge value, or a little off.
            let (at, width) = rng.pick(&layout.fields);
            let v = if rng.one_in(2) {
                rng.interesting()
            } else {
                (le(&image, at, width) as u64)
                    .wrapping_add(rng.below(33) as u64)
                    .wrapping_sub(16)
            };
            image[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        let in_place = rng.below(5) != 0;
        mutate(
            rng,
            &mut image,
            if in_place { &IN_PLACE } else { &MUTATIONS },
            &[&original],
        );
        let got = functions(&image)?;
        if image.len() == original.len() {
            let touched = |r: &Range<usize>| r.clone().any(|i| image[i] != original[i]);
            if !layout.read.iter().any(touched) {
                unchanged += 1;
                ensure!(
                    got == baseline,
                    "damage outside what it reads changed the result: {got:?}"
                );
            }
        }
        Ok(())
    });
    assert!(
        cases < 1000 || unchanged * 10 > cases,
        "only {unchanged} of {cases} cases left the read bytes alone"
    );
}

#[test]
fn vdso_random() {
    run("vdso_random", 50_000, |rng| {
        let len = rng.length(4096);
        let mut image = rng.bytes(len);
        let magic = b"\x7fELF\x02";
        let n = magic.len().min(len);
        image[..n].copy_from_slice(&magic[..n]);
        // Small offsets and counts, so that the parse gets somewhere.
        for (at, width) in [(0x20, 8), (0x28, 8), (0x38, 2), (0x3a, 2), (0x3c, 2)] {
            if at + width <= len && rng.one_in(2) {
                let v = if at == 0x3a {
                    64
                } else {
                    rng.below(len + 1) as u64
                };
                image[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
        }
        functions(&image)?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// /proc/self/maps

/// Lines the kernel writes that this process may not have: names with blanks, deleted
/// files, the vDSO family, the vsyscall page, the lowest and highest addresses.
const LINES: &[u8] = b"100000000000-100000005000 rwxp 00001000 fe:01 1234   /tmp/foo.ckpt
7f0000000000-7f0000001000 rw-s 00000000 00:01 5        /memfd:jit cache (deleted)
7ffd1c9fa000-7ffd1c9fe000 r--p 00000000 00:00 0                          [vvar]
7ffd1c9fe000-7ffd1ca00000 r--p 00000000 00:00 0                          [vvar_vclock]
7ffd1ca00000-7ffd1ca02000 r-xp 00000000 00:00 0                          [vdso]
7fe27b5ed000-7fe27b5f0000 rw-p 00000000 00:00 0 
0-1000 ---p 00000000 00:00 0
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

const TOKENS: [&[u8]; 12] = [
    b"[vdso]",
    b"[vvar]",
    b"[vvar_vclock]",
    b"-",
    b" ",
    b"\n",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"0x",
    b"\t",
    b"F",
    b"   [vdso] ",
];

/// What the stub makes of a maps line: ckpt-image's reading of it (fuzzed against a
/// reference in ckpt-image's own fuzz tests), with the vDSO family told apart by name.
fn reference_mapping(line: &[u8]) -> Option<Mapping> {
    let line = procfs::maps_line(line)?;
    let vdso_kind = match line.name {
        b"[vvar]" => ckpt_image::region_flags::VVAR,
        b"[vvar_vclock]" => ckpt_image::region_flags::VVAR_VCLOCK,
        b"[vdso]" => ckpt_image::region_flags::VDSO,
        _ => 0,
    };
    Some(Mapping {
        start: line.start,
        end: line.end,
        vdso_kind,
    })
}

#[test]
fn maps_text() {
    let mut corpus = std::fs::read("/proc/self/maps").expect("read /proc/self/maps");
    corpus.extend_from_slice(LINES);
    let own: Vec<&[u8]> = corpus
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut parsed = 0;
    let cases = run("maps_text", 50_000, |rng| {
        // A few lines of the real thing, damaged here and there.
        let mut text = Vec::new();
        for _ in 0..rng.between(1, 12) {
            text.extend_from_slice(rng.pick(&own));
            text.push(b'\n');
        }
        let donors: Vec<&[u8]> = TOKENS.iter().copied().chain([corpus.as_slice()]).collect();
        // A third left whole, so that whole texts are read too.
        if !rng.one_in(3) {
            mutate(rng, &mut text, &MUTATIONS, &donors);
        }
        let lines: Vec<&[u8]> = text
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let want: Option<Vec<Mapping>> = lines.iter().map(|l| reference_mapping(l)).collect();
        let capacity = match rng.below(4) {
            0 => lines.len().saturating_sub(1),
            1 => rng.below(16),
            _ => lines.len() + rng.below(3),
        };
        let mut out = vec![Mapping::default(); capacity];
        let got = parse_maps(&text, &mut out);
        let want = want.filter(|w| w.len() <= capacity);
        ensure!(
            got.map(|n| &out[..n]) == want.as_deref(),
            "parse_maps into {capacity}: {got:?}, want {want:?}\n{}",
            String::from_utf8_lossy(&text)
        );
        parsed += usize::from(got.is_some());
        for line in &lines {
            ensure!(
                parse_maps_line(line) == reference_mapping(line),
                "parse_maps_line({line:?})"
            );
        }
        Ok(())
    });
    assert!(
        cases < 1000 || parsed * 5 > cases,
        "only {parsed} of {cases} maps texts parsed"
    );
}

// ---------------------------------------------------------------------------------------------
// Small helpers the stub reports and decides with

#[test]
fn hex_and_env() {
    run("hex_and_env", 20_000, |rng| {
        let v = rng.interesting();
        let mut buf = [0u8; 18];
        let text = format_hex(v, &mut buf);
        ensure!(
            text == format!("{v:#x}").as_bytes(),
            "format_hex({v:#x}) = {text:?}"
        );

        const PIECES: [&[u8]; 7] = [b"CKPT_LAZY", b"=", b"1", b"0", b"CKPT_LAZ", b"", b"Y"];
        let entry = |rng: &mut Rng| -> Vec<u8> {
            (0..rng.below(4))
                .flat_map(|_| rng.pick(&PIECES).to_vec())
                .collect()
        };
        let env: Vec<Vec<u8>> = (0..rng.below(6)).map(|_| entry(rng)).collect();
        let name = entry(rng);
        let want = env
            .iter()
            .find_map(|e| e.strip_prefix(name.as_slice())?.strip_prefix(b"="));
        let got = env_lookup(env.iter().map(Vec::as_slice), &name);
        ensure!(got == want, "env_lookup({env:?}, {name:?}) = {got:?}");
        Ok(())
    });
}
