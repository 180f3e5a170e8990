//! The ELF wrapper of a checkpoint: the few bytes that make the image an executable.
//!
//! The writer emits an `ET_EXEC` header with three program headers: one `PT_LOAD` for the
//! restart stub (position independent, placed at a base chosen at checkpoint time), a
//! `PT_GNU_STACK`, and a `PT_CKPT` that tells any reader where the image header is.

use crate::{PT_CKPT, STUB_FILE_OFFSET};

pub const EHDR_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
pub const PHDR_COUNT: usize = 3;
/// Bytes of the ELF prefix (header and program headers); the rest of the first page is zero.
pub const PREFIX_SIZE: usize = EHDR_SIZE + PHDR_COUNT * PHDR_SIZE;

const PT_LOAD: u32 = 1;
const PT_GNU_STACK: u32 = 0x6474_e551;
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
fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn get64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Writes the ELF header and program headers into `out` (at least [`PREFIX_SIZE`] bytes).
pub fn write_prefix(out: &mut [u8], stub: &StubPlacement, header_offset: u64, header_len: u64) {
    let out = &mut out[..PREFIX_SIZE];
    out.fill(0);
    out[0..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little endian
    out[6] = 1; // EV_CURRENT
    put16(out, 16, 2); // ET_EXEC
    put16(out, 18, crate::EM_X86_64 as u16);
    put32(out, 20, 1);
    put64(out, 24, stub.base + stub.entry);
    put64(out, 32, EHDR_SIZE as u64); // e_phoff
    put16(out, 52, EHDR_SIZE as u16);
    put16(out, 54, PHDR_SIZE as u16);
    put16(out, 56, PHDR_COUNT as u16);
    put16(out, 58, 64); // e_shentsize, with no sections

    let mut ph = |i: usize,
                  ty: u32,
                  flags: u32,
                  off: u64,
                  vaddr: u64,
                  filesz: u64,
                  memsz: u64,
                  align: u64| {
        let at = EHDR_SIZE + i * PHDR_SIZE;
        put32(out, at, ty);
        put32(out, at + 4, flags);
        put64(out, at + 8, off);
        put64(out, at + 16, vaddr);
        put64(out, at + 24, vaddr);
        put64(out, at + 32, filesz);
        put64(out, at + 40, memsz);
        put64(out, at + 48, align);
    };
    ph(
        0,
        PT_LOAD,
        PF_R | PF_W | PF_X,
        STUB_FILE_OFFSET,
        stub.base,
        stub.file_size,
        stub.mem_size,
        0x1000,
    );
    ph(1, PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16);
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

/// Finds the image header's file offset from the first bytes of a file, or `None` when the
/// bytes are not an x86-64 ELF executable with a `PT_CKPT` program header.
pub fn locate_header(first: &[u8]) -> Option<u64> {
    if first.len() < EHDR_SIZE || &first[0..4] != b"\x7fELF" || first[4] != 2 || first[5] != 1 {
        return None;
    }
    if get16(first, 18) != crate::EM_X86_64 as u16 {
        return None;
    }
    let phoff = get64(first, 32) as usize;
    let phentsize = get16(first, 54) as usize;
    let phnum = get16(first, 56) as usize;
    if phentsize != PHDR_SIZE || phnum > 64 {
        return None;
    }
    for i in 0..phnum {
        let at = phoff.checked_add(i * PHDR_SIZE)?;
        if at.checked_add(PHDR_SIZE)? > first.len() {
            return None;
        }
        if get32(first, at) == PT_CKPT {
            return Some(get64(first, at + 8));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trip() {
        let mut page = [0u8; 4096];
        let stub = StubPlacement {
            base: 0x1000_0000_0000,
            file_size: 0x3000,
            mem_size: 0x9000,
            entry: 0x10,
        };
        write_prefix(&mut page, &stub, 0x5000, 256);
        assert_eq!(locate_header(&page), Some(0x5000));
        assert_eq!(get64(&page, 24), 0x1000_0000_0010);
        let mut not_elf = page;
        not_elf[1] = b'X';
        assert_eq!(locate_header(&not_elf), None);
        assert_eq!(locate_header(&page[..40]), None);
    }
}
