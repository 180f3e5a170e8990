//! What the command reads of ELF files, through `object`: whether a program is statically
//! linked, where a checkpoint's image header is, and the restart stub's load segment.
//!
//! The restart stub finds the image header with `ckpt_image::elf::locate_header`, which is
//! hand-written because the stub can use no crate. `ckpt info` and `ckpt verify` must refuse
//! exactly the files a restart refuses, so [`ckpt_header_offset`] applies that function's
//! rules (an x86-64 little-endian ELF64 with at most 64 program headers, the first
//! `PT_CKPT` wins) rather than a general reader's, and a test flips every bit of a real
//! prefix to check that the two agree.

use object::elf::{
    FileHeader64, ProgramType, ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64, PT_INTERP, PT_LOAD,
};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;

use ckpt_image::{elf, PT_CKPT};

/// Most program headers the stub looks through for `PT_CKPT`.
const MAX_PHDRS: u16 = 64;

/// The ELF64 file header at the start of `head`, when it has the ELF magic and class 64.
fn file_header(head: &[u8]) -> Option<&FileHeader64<LE>> {
    let (header, _) = object::pod::from_bytes::<FileHeader64<LE>>(head).ok()?;
    (header.e_ident.magic == ELFMAG && header.e_ident.class == ELFCLASS64).then_some(header)
}

/// Whether `head` (the start of a file) is a 64-bit ELF executable without a program
/// interpreter (`PT_INTERP`), i.e. one the dynamic loader never sees. Program headers beyond
/// `head` make it `false`: what was not read is not guessed at.
pub fn is_static_elf(head: &[u8]) -> bool {
    let Some(header) = file_header(head) else {
        return false;
    };
    let Ok(phdrs) = header.program_headers(LE, head) else {
        return false;
    };
    let has = |ty| phdrs.iter().any(|ph| ph.p_type(LE) == ty);
    has(PT_LOAD) && !has(PT_INTERP)
}

/// The image header's file offset from the first bytes of a checkpoint (its `PT_CKPT`
/// program header), or `None` when the restart stub would not find one either.
pub fn ckpt_header_offset(first: &[u8]) -> Option<u64> {
    let header = file_header(first)?;
    if header.e_ident.data != ELFDATA2LSB
        || header.e_machine(LE) != EM_X86_64
        || header.e_phnum(LE) > MAX_PHDRS
    {
        return None;
    }
    header
        .program_headers(LE, first)
        .ok()?
        .iter()
        .find(|ph| ph.p_type(LE) == ProgramType(PT_CKPT))
        .map(|ph| ph.p_offset(LE))
}

/// The restart stub's load segment as the program headers of a checkpoint's prefix give
/// it: `(p_vaddr, p_filesz, p_memsz)`, when there are exactly the headers the writer
/// writes and the second is a `PT_LOAD`.
pub fn stub_segment(first: &[u8]) -> Option<(u64, u64, u64)> {
    let phdrs = file_header(first)?.program_headers(LE, first).ok()?;
    if phdrs.len() != elf::PHDR_COUNT {
        return None;
    }
    let stub = &phdrs[1];
    (stub.p_type(LE) == PT_LOAD).then(|| (stub.p_vaddr(LE), stub.p_filesz(LE), stub.p_memsz(LE)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ckpt_image::elf::StubPlacement;
    use ckpt_image::PAGE_SIZE;

    /// The first page of a checkpoint as the writer makes it.
    fn prefix_page() -> Vec<u8> {
        let stub = StubPlacement {
            base: 0x7f00_1234_0000,
            file_size: 0x2ff8,
            mem_size: 0x9000,
            entry: 0x10,
        };
        let mut page = vec![0u8; PAGE_SIZE as usize];
        elf::write_prefix(&mut page, &stub, 0x4000, 256, 0x9000, 0x1234);
        page
    }

    #[test]
    fn finds_the_header_and_the_stub() {
        let page = prefix_page();
        assert_eq!(ckpt_header_offset(&page), Some(0x4000));
        assert_eq!(
            stub_segment(&page),
            Some((0x7f00_1234_0000, 0x3000, 0x9000))
        );
        assert!(
            is_static_elf(&page),
            "a checkpoint has no interpreter; main.rs lets it run by its PT_CKPT"
        );
    }

    /// The command refuses what the restart stub refuses: every single-bit damage of the
    /// prefix, and every truncation of it, is judged alike by both readers.
    #[test]
    fn agrees_with_the_stub_on_every_damaged_prefix() {
        let page = prefix_page();
        let mut checked = 0;
        for at in 0..elf::PREFIX_SIZE {
            for bit in 0..8 {
                let mut damaged = page.clone();
                damaged[at] ^= 1 << bit;
                assert_eq!(
                    ckpt_header_offset(&damaged),
                    elf::locate_header(&damaged),
                    "bit {bit} of byte {at} flipped"
                );
                checked += 1;
            }
        }
        for len in 0..=elf::PREFIX_SIZE {
            assert_eq!(
                ckpt_header_offset(&page[..len]),
                elf::locate_header(&page[..len]),
                "cut to {len} bytes"
            );
        }
        assert_eq!(checked, elf::PREFIX_SIZE * 8);
    }

    #[test]
    fn other_files_have_no_header() {
        assert_eq!(ckpt_header_offset(b""), None);
        assert_eq!(ckpt_header_offset(b"#!/bin/sh\necho hi\n"), None);
        let own = std::fs::read("/bin/sh").unwrap_or_default();
        assert_eq!(ckpt_header_offset(&own), elf::locate_header(&own));
        assert_eq!(stub_segment(&own), None);
    }
}
