//! The ELF wrapper of a checkpoint: the few bytes that make the image an executable.
//!
//! The writer emits an `ET_EXEC` header with three program headers: a `PT_LOAD` for the first
//! page (this header and the entry check below), a `PT_LOAD` for the restart stub (position
//! independent, placed at a base chosen at checkpoint time, right after the first page), and
//! a `PT_CKPT` that tells any reader where the image header is. There is no `PT_GNU_STACK`:
//! its 56 bytes went to the entry check, and on x86-64 a missing one leaves the stack
//! non-executable all the same (the kernel's `elf_read_implies_exec` is only true for 32-bit
//! programs; `tests/entry_check.rs` looks at the maps and personality the kernel gives it).
//!
//! The entry point is a small check right after the ELF header ([`LOADER`], assembled from
//! `loader.S`): when `/proc/self/exe` is shorter than the image it prints one line and exits
//! 69 before anything touches the (possibly missing) stub; then it computes the checksum
//! ([`crate::stub_sum`]) of every byte from the end of the prefix through the end of the
//! stub's pages, as the kernel mapped them, and exits 68 on a mismatch; only then does it
//! jump to the stub. So nothing after the first [`PREFIX_SIZE`] bytes runs unchecked. The
//! program headers come after the check, so a file cut before the check's end cannot be
//! executed at all (the kernel refuses it). The stub's file size is a whole number of
//! pages, so the kernel never has to clear a partial page past the end of a truncated file
//! while loading it.

use core::ops::Range;

use crate::le::{u16 as get16, u32 as get32, u64 as get64};
use crate::stub_sum::StubSum;
use crate::{page_up, PAGE_SIZE, PT_CKPT, STUB_FILE_OFFSET};

pub const EHDR_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
pub const PHDR_COUNT: usize = 3;

/// The entry check, assembled from `loader.S` (a test assembles it again and compares), with
/// its four patched fields zero.
pub const LOADER: [u8; 256] = [
    0xfc, 0x48, 0x8d, 0x3d, 0xd3, 0x00, 0x00, 0x00, 0x31, 0xf6, 0x6a, 0x02, 0x58, 0x0f, 0x05, 0x97,
    0x6a, 0x02, 0x5a, 0x6a, 0x08, 0x58, 0x0f, 0x05, 0x48, 0x93, 0x6a, 0x03, 0x58, 0x0f, 0x05, 0x48,
    0x3b, 0x1d, 0xc4, 0x00, 0x00, 0x00, 0x72, 0x36, 0x48, 0x8d, 0x35, 0x79, 0x01, 0x00, 0x00, 0x8b,
    0x0d, 0xc5, 0x00, 0x00, 0x00, 0x31, 0xd2, 0x48, 0xad, 0x48, 0x31, 0xd0, 0x48, 0x69, 0xc0, 0xb1,
    0x79, 0x37, 0x9e, 0x48, 0xc1, 0xc0, 0x20, 0x48, 0x69, 0xd0, 0xb1, 0x79, 0x37, 0x9e, 0xe2, 0xe7,
    0x48, 0x3b, 0x15, 0x9b, 0x00, 0x00, 0x00, 0x75, 0x13, 0xe9, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8d,
    0x35, 0x21, 0x00, 0x00, 0x00, 0x6a, 0x2b, 0x5a, 0x6a, 0x45, 0xeb, 0x0c, 0x48, 0x8d, 0x35, 0x3e,
    0x00, 0x00, 0x00, 0x6a, 0x2a, 0x5a, 0x6a, 0x44, 0x6a, 0x02, 0x5f, 0x6a, 0x01, 0x58, 0x0f, 0x05,
    0x5f, 0x6a, 0x3c, 0x58, 0x0f, 0x05, 0x63, 0x6b, 0x70, 0x74, 0x20, 0x72, 0x65, 0x73, 0x74, 0x61,
    0x72, 0x74, 0x3a, 0x20, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x70, 0x6f, 0x69, 0x6e, 0x74, 0x20, 0x66,
    0x69, 0x6c, 0x65, 0x20, 0x69, 0x73, 0x20, 0x74, 0x72, 0x75, 0x6e, 0x63, 0x61, 0x74, 0x65, 0x64,
    0x0a, 0x63, 0x6b, 0x70, 0x74, 0x20, 0x72, 0x65, 0x73, 0x74, 0x61, 0x72, 0x74, 0x3a, 0x20, 0x74,
    0x68, 0x65, 0x20, 0x72, 0x65, 0x73, 0x74, 0x61, 0x72, 0x74, 0x20, 0x73, 0x74, 0x75, 0x62, 0x20,
    0x69, 0x73, 0x20, 0x64, 0x61, 0x6d, 0x61, 0x67, 0x65, 0x64, 0x0a, 0x2f, 0x70, 0x72, 0x6f, 0x63,
    0x2f, 0x73, 0x65, 0x6c, 0x66, 0x2f, 0x65, 0x78, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];
/// Where the check sits in the file.
const LOADER_AT: usize = EHDR_SIZE;
/// Its patched fields (offsets in the check, as the labels of `loader.S`): the
/// displacement of its jump to the stub's entry (4 bytes, relative to the end of the
/// field), the image's length, the stub's checksum, and the number of 8-byte words it
/// covers (4 bytes).
const ENTRY_REL32: usize = 0x5a;
const FILE_LEN: usize = 0xea;
const STUB_SUM: usize = 0xf2;
const WORD_COUNT: usize = 0xfa;
/// The program headers follow the check.
pub const PHDRS_AT: usize = LOADER_AT + LOADER.len();
/// Bytes of the ELF prefix: everything before the bytes the entry check verifies.
pub const PREFIX_SIZE: usize = PHDRS_AT + PHDR_COUNT * PHDR_SIZE;

/// What the entry check prints (after `ckpt restart: `) when the checksum does not match.
pub const STUB_DAMAGED: &str = "the restart stub is damaged";

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Where the stub goes and how big it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubPlacement {
    /// Load address of the stub's first byte (page aligned).
    pub base: u64,
    /// Bytes of the stub stored in the file.
    pub file_size: u64,
    /// Bytes of address space the stub occupies once loaded (code, data, bss, stack).
    pub mem_size: u64,
    /// Offset of the entry point from `base`.
    pub entry: u64,
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Where the first page (headers and entry check) is loaded: just below the stub, in the
/// free gap the writer keeps around the stub's reservation.
pub const fn prefix_address(stub_base: u64) -> u64 {
    stub_base - PAGE_SIZE
}

/// The file bytes the entry check verifies for a stub of `stub_file_size` bytes: from the
/// end of the prefix (the rest of the first page, zeros) through the end of the stub's
/// pages. The stub is stored as relocated for its base, so the sum is of those bytes.
pub const fn checked_range(stub_file_size: u64) -> Range<u64> {
    PREFIX_SIZE as u64..STUB_FILE_OFFSET + page_up(stub_file_size)
}

/// The checksum of [`checked_range`] as the writer lays it out, from the relocated stub:
/// zeros up to the stub, the stub, zeros to the end of its last page.
pub fn stub_checksum(relocated_stub: &[u8]) -> u64 {
    let range = checked_range(relocated_stub.len() as u64);
    let mut sum = StubSum::new();
    sum.update_zeros((STUB_FILE_OFFSET - range.start) as usize);
    sum.update(relocated_stub);
    sum.update_zeros((range.end - STUB_FILE_OFFSET) as usize - relocated_stub.len());
    sum.finish()
}

/// Writes the ELF header, the entry check and the program headers into `out` (at least
/// [`PREFIX_SIZE`] bytes). `file_len` is the complete image's length, `stub_sum` the
/// [`stub_checksum`] of the stub as stored.
pub fn write_prefix(
    out: &mut [u8],
    stub: &StubPlacement,
    header_offset: u64,
    header_len: u64,
    file_len: u64,
    stub_sum: u64,
) {
    let out = &mut out[..PREFIX_SIZE];
    out.fill(0);
    out[0..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little endian
    out[6] = 1; // EV_CURRENT
    put16(out, 16, 2); // ET_EXEC
    put16(out, 18, crate::EM_X86_64 as u16);
    put32(out, 20, 1);
    let prefix_at = prefix_address(stub.base);
    put64(out, 24, prefix_at + LOADER_AT as u64);
    put64(out, 32, PHDRS_AT as u64); // e_phoff
    put16(out, 52, EHDR_SIZE as u16);
    put16(out, 54, PHDR_SIZE as u16);
    put16(out, 56, PHDR_COUNT as u16);
    put16(out, 58, 64); // e_shentsize, with no sections

    out[LOADER_AT..LOADER_AT + LOADER.len()].copy_from_slice(&LOADER);
    // The first page and the stub are contiguous in memory as in the file, so the jump and
    // the checked range do not depend on the base.
    put32(out, LOADER_AT + ENTRY_REL32, entry_rel32(stub.entry) as u32);
    put64(out, LOADER_AT + FILE_LEN, file_len);
    put64(out, LOADER_AT + STUB_SUM, stub_sum);
    let checked = checked_range(stub.file_size);
    put32(
        out,
        LOADER_AT + WORD_COUNT,
        ((checked.end - checked.start) / 8) as u32,
    );

    let mut ph = |i: usize,
                  ty: u32,
                  flags: u32,
                  off: u64,
                  vaddr: u64,
                  filesz: u64,
                  memsz: u64,
                  align: u64| {
        let at = PHDRS_AT + i * PHDR_SIZE;
        put32(out, at, ty);
        put32(out, at + 4, flags);
        put64(out, at + 8, off);
        put64(out, at + 16, vaddr);
        put64(out, at + 24, vaddr);
        put64(out, at + 32, filesz);
        put64(out, at + 40, memsz);
        put64(out, at + 48, align);
    };
    // The whole first page: the entry check reads the rest of it too.
    ph(
        0,
        PT_LOAD,
        PF_R | PF_X,
        0,
        prefix_at,
        PAGE_SIZE,
        PAGE_SIZE,
        PAGE_SIZE,
    );
    let stub_file = page_up(stub.file_size);
    ph(
        1,
        PT_LOAD,
        PF_R | PF_W | PF_X,
        STUB_FILE_OFFSET,
        stub.base,
        stub_file,
        stub.mem_size.max(stub_file),
        0x1000,
    );
    ph(
        2,
        PT_CKPT,
        PF_R,
        header_offset,
        0,
        header_len,
        header_len,
        8,
    );
}

/// The displacement of the entry check's jump to the stub's entry (`entry` bytes into the
/// stub), from the end of the displacement field.
const fn entry_rel32(entry: u64) -> i64 {
    (PAGE_SIZE + entry) as i64 - (LOADER_AT + ENTRY_REL32 + 4) as i64
}

/// What a prefix says about the stub and the image length, for checking a prefix against
/// its image header: (placement with the page-rounded stub size, file length).
pub fn read_placement(first: &[u8]) -> Option<(StubPlacement, u64)> {
    if first.len() < PREFIX_SIZE || get16(first, 56)? as usize != PHDR_COUNT {
        return None;
    }
    let ph = |i: usize, field: usize| get64(first, PHDRS_AT + i * PHDR_SIZE + field).unwrap_or(0);
    let rel32 = get32(first, LOADER_AT + ENTRY_REL32)? as i32 as i64;
    let placement = StubPlacement {
        base: ph(1, 16),
        file_size: ph(1, 32),
        mem_size: ph(1, 40),
        entry: u64::try_from(rel32 - entry_rel32(0)).ok()?,
    };
    Some((placement, get64(first, LOADER_AT + FILE_LEN)?))
}

/// Finds the image header's file offset from the first bytes of a file, or `None` when the
/// bytes are not an x86-64 ELF executable with a `PT_CKPT` program header.
pub fn locate_header(first: &[u8]) -> Option<u64> {
    if first.len() < EHDR_SIZE || &first[0..4] != b"\x7fELF" || first[4] != 2 || first[5] != 1 {
        return None;
    }
    if get16(first, 18)? != crate::EM_X86_64 as u16 {
        return None;
    }
    let phoff = get64(first, 32)? as usize;
    let phentsize = get16(first, 54)? as usize;
    let phnum = get16(first, 56)? as usize;
    if phentsize != PHDR_SIZE || phnum > 64 {
        return None;
    }
    for i in 0..phnum {
        let at = phoff.checked_add(i * PHDR_SIZE)?;
        if at.checked_add(PHDR_SIZE)? > first.len() {
            return None;
        }
        if get32(first, at)? == PT_CKPT {
            return get64(first, at + 8);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_check_exits_with_the_documented_statuses() {
        // `push 69` and `push 68` (6a imm8) before its exit path.
        for status in [
            crate::ExitStatus::Truncated,
            crate::ExitStatus::HeaderDamaged,
        ] {
            let push = [0x6a, status as u8];
            assert!(LOADER.windows(2).any(|w| w == push), "{status:?}");
        }
    }
    use std::process::Command;

    const STUB: StubPlacement = StubPlacement {
        base: 0x1000_0000_0000,
        file_size: 0x2ff8,
        mem_size: 0x9000,
        entry: 0x10,
    };

    #[test]
    fn prefix_round_trip() {
        let mut page = [0u8; 4096];
        write_prefix(
            &mut page,
            &STUB,
            0x4000,
            256,
            0x12345,
            0x0123_4567_89ab_cdef,
        );
        assert_eq!(locate_header(&page), Some(0x4000));
        assert_eq!(get64(&page, 24), Some(0x1000_0000_0000 - 0x1000 + 64));
        let read_back = StubPlacement {
            file_size: 0x3000,
            ..STUB
        };
        assert_eq!(read_placement(&page), Some((read_back, 0x12345)));
        assert_eq!(
            get64(&page, LOADER_AT + STUB_SUM),
            Some(0x0123_4567_89ab_cdef)
        );
        // The bytes from the end of the prefix to the end of the stub's pages, in words.
        assert_eq!(
            get32(&page, LOADER_AT + WORD_COUNT).unwrap() as usize,
            (0x4000 - PREFIX_SIZE) / 8
        );
        // The jump lands on the stub's entry, one page after the first page.
        let after_jump = (LOADER_AT + ENTRY_REL32 + 4) as i64;
        let rel32 = get32(&page, LOADER_AT + ENTRY_REL32).unwrap() as i32 as i64;
        assert_eq!(after_jump + rel32, 0x1000 + 0x10);
        let mut not_elf = page;
        not_elf[1] = b'X';
        assert_eq!(locate_header(&not_elf), None);
        assert_eq!(locate_header(&page[..40]), None);
    }

    #[test]
    fn stub_checksum_is_of_the_file_bytes() {
        let stub: Vec<u8> = (0..STUB.file_size as u32).map(|i| (i * 31) as u8).collect();
        let sum = stub_checksum(&stub);
        let mut file = vec![0u8; 0x4000];
        write_prefix(&mut file, &STUB, 0x4000, 256, 0x5000, sum);
        file[0x1000..0x1000 + stub.len()].copy_from_slice(&stub);
        let range = checked_range(STUB.file_size);
        assert_eq!(range, PREFIX_SIZE as u64..0x4000);
        assert_eq!(StubSum::of(&file[PREFIX_SIZE..0x4000]), sum);
        assert_eq!(get64(&file, LOADER_AT + STUB_SUM), Some(sum));
        // The prefix is whole words, so the checked range starts on one.
        assert_eq!(PREFIX_SIZE % 8, 0);
        assert_eq!(PREFIX_SIZE, 488);
    }

    #[test]
    fn loader_says_what_the_stub_says() {
        let has = |text: &str| {
            let line = format!("ckpt restart: {text}\n");
            LOADER.windows(line.len()).any(|w| w == line.as_bytes())
        };
        assert!(has(crate::FormatError::Truncated.message()));
        assert!(has(STUB_DAMAGED));
    }

    /// `LOADER` is `loader.S` assembled: the bytes, the patched fields and where the checked
    /// range starts.
    #[test]
    fn loader_is_its_assembly_source() {
        let source = concat!(env!("CARGO_MANIFEST_DIR"), "/src/loader.S");
        let dir = std::env::temp_dir().join(format!("ckpt-loader-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (object, text) = (dir.join("loader.o"), dir.join("loader.bin"));
        match Command::new("cc")
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&object)
            .status()
        {
            Ok(status) => assert!(status.success(), "cc -c {source} failed"),
            // The skip policy of tests/support (`Skip::MissingTool`), which a unit test
            // cannot import: CI installs cc, so there a missing one fails.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(
                    !in_ci,
                    "no C compiler (cc) to assemble {source}, under CI=true"
                );
                eprintln!("SKIPPED loader_is_its_assembly_source: no C compiler (cc)");
                return;
            }
            Err(e) => panic!("cannot run cc: {e}"),
        }
        let objcopy = Command::new("objcopy")
            .args(["-O", "binary", "-j", ".text"])
            .arg(&object)
            .arg(&text)
            .status()
            .expect("run objcopy");
        assert!(objcopy.success(), "objcopy failed");
        let assembled = std::fs::read(&text).unwrap();
        let nm = Command::new("nm").arg(&object).output().expect("run nm");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            assembled, LOADER,
            "LOADER differs from loader.S assembled (update one from the other)"
        );

        let symbols = String::from_utf8(nm.stdout).unwrap();
        let symbol = |name: &str| {
            symbols
                .lines()
                .find_map(|line| {
                    let mut fields = line.split_whitespace();
                    let value = fields.next()?;
                    (fields.nth(1)? == name).then(|| usize::from_str_radix(value, 16).ok())?
                })
                .unwrap_or_else(|| panic!("no symbol {name} in loader.o"))
        };
        assert_eq!(symbol("entry_rel32"), ENTRY_REL32);
        assert_eq!(symbol("file_len"), FILE_LEN);
        assert_eq!(symbol("stub_sum"), STUB_SUM);
        assert_eq!(symbol("word_count"), WORD_COUNT);
        assert_eq!(symbol("loader_end"), LOADER.len());
        assert_eq!(symbol("prefix_end"), PREFIX_SIZE - LOADER_AT);
        assert_eq!(symbol("STUB_SUM_MUL") as u64, crate::stub_sum::MUL);
    }
}
