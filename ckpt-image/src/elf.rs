//! The ELF wrapper of a checkpoint: the few bytes that make the image an executable.
//!
//! The writer emits an `ET_EXEC` header with four program headers: a `PT_LOAD` for the first
//! page (this header and the length check below), a `PT_LOAD` for the restart stub (position
//! independent, placed at a base chosen at checkpoint time), a `PT_GNU_STACK`, and a
//! `PT_CKPT` that tells any reader where the image header is.
//!
//! The entry point is a tiny length check right after the ELF header ([`LOADER`]): it
//! compares the size of `/proc/self/exe` with the image's length and, when the file is
//! truncated, prints one line and exits 69 before anything touches the (possibly missing)
//! stub; otherwise it jumps to the stub. The program headers come after it, so a file cut
//! before the check's end cannot be executed at all (the kernel refuses it). The stub's
//! file size is a whole number of pages, so the kernel never has to clear a partial page
//! past the end of a truncated file while loading it.

use crate::le::{u32 as get32, u64 as get64};
use crate::{page_up, PT_CKPT, STUB_FILE_OFFSET};

pub const EHDR_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
pub const PHDR_COUNT: usize = 4;

/// The length check, assembled from:
///
/// ```text
///     lea rdi, [rip + path]      ; open("/proc/self/exe", O_RDONLY)
///     xor esi, esi
///     mov eax, 2
///     syscall
///     test eax, eax
///     js 2f                      ; no /proc: leave it to the stub
///     mov edi, eax
///     sub rsp, 144               ; fstat into the kernel's stack, below argc
///     mov rsi, rsp
///     mov eax, 5
///     syscall
///     mov r8, [rsp + 48]         ; st_size
///     add rsp, 144
///     mov r9, rax
///     mov eax, 3                 ; close
///     syscall
///     test r9, r9
///     js 2f
///     cmp r8, [rip + file_len]
///     jb 3f
/// 2:  jmp [rip + real_entry]     ; the stub, with the initial stack untouched
/// 3:  mov edi, 2                 ; write(2, msg, len); exit_group(69)
///     lea rsi, [rip + msg]
///     mov edx, msg_end - msg
///     mov eax, 1
///     syscall
///     mov edi, 69
///     mov eax, 231
///     syscall
///     ud2
/// path: .asciz "/proc/self/exe"
/// msg: .ascii "ckpt restart: checkpoint file is truncated\n"
/// .balign 8
/// file_len: .quad 0
/// real_entry: .quad 0
/// ```
pub const LOADER: [u8; 200] = [
    0x48, 0x8d, 0x3d, 0x70, 0x00, 0x00, 0x00, 0x31, 0xf6, 0xb8, 0x02, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0x85, 0xc0, 0x78, 0x37, 0x89, 0xc7, 0x48, 0x81, 0xec, 0x90, 0x00, 0x00, 0x00, 0x48, 0x89, 0xe6,
    0xb8, 0x05, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x4c, 0x8b, 0x44, 0x24, 0x30, 0x48, 0x81, 0xc4, 0x90,
    0x00, 0x00, 0x00, 0x49, 0x89, 0xc1, 0xb8, 0x03, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x4d, 0x85, 0xc9,
    0x78, 0x09, 0x4c, 0x3b, 0x05, 0x6f, 0x00, 0x00, 0x00, 0x72, 0x06, 0xff, 0x25, 0x6f, 0x00, 0x00,
    0x00, 0xbf, 0x02, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x29, 0x00, 0x00, 0x00, 0xba, 0x2b, 0x00,
    0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x45, 0x00, 0x00, 0x00, 0xb8, 0xe7,
    0x00, 0x00, 0x00, 0x0f, 0x05, 0x0f, 0x0b, 0x2f, 0x70, 0x72, 0x6f, 0x63, 0x2f, 0x73, 0x65, 0x6c,
    0x66, 0x2f, 0x65, 0x78, 0x65, 0x00, 0x63, 0x6b, 0x70, 0x74, 0x20, 0x72, 0x65, 0x73, 0x74, 0x61,
    0x72, 0x74, 0x3a, 0x20, 0x63, 0x68, 0x65, 0x63, 0x6b, 0x70, 0x6f, 0x69, 0x6e, 0x74, 0x20, 0x66,
    0x69, 0x6c, 0x65, 0x20, 0x69, 0x73, 0x20, 0x74, 0x72, 0x75, 0x6e, 0x63, 0x61, 0x74, 0x65, 0x64,
    0x0a, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
];
/// Where the check sits in the file, and its two patched words.
const LOADER_AT: usize = EHDR_SIZE;
const LOADER_FILE_LEN: usize = LOADER_AT + 0xb8;
const LOADER_REAL_ENTRY: usize = LOADER_AT + 0xc0;
/// The program headers follow the check.
pub const PHDRS_AT: usize = LOADER_AT + LOADER.len();
/// Bytes of the ELF prefix; the rest of the first page is zero.
pub const PREFIX_SIZE: usize = PHDRS_AT + PHDR_COUNT * PHDR_SIZE;

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

/// Where the first page (headers and length check) is loaded: just below the stub, in the
/// free gap the writer keeps around the stub's reservation.
pub const fn prefix_address(stub_base: u64) -> u64 {
    stub_base - 0x1000
}

/// Writes the ELF header, the length check and the program headers into `out` (at least
/// [`PREFIX_SIZE`] bytes). `file_len` is the complete image's length.
pub fn write_prefix(
    out: &mut [u8],
    stub: &StubPlacement,
    header_offset: u64,
    header_len: u64,
    file_len: u64,
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
    put64(out, LOADER_FILE_LEN, file_len);
    put64(out, LOADER_REAL_ENTRY, stub.base + stub.entry);

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
    let prefix = PREFIX_SIZE as u64;
    ph(
        0,
        PT_LOAD,
        PF_R | PF_X,
        0,
        prefix_at,
        prefix,
        prefix,
        0x1000,
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
    ph(2, PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16);
    ph(
        3,
        PT_CKPT,
        PF_R,
        header_offset,
        0,
        header_len,
        header_len,
        8,
    );
}

/// What a prefix says about the stub and the image length, for checking a prefix against
/// its image header: (placement with the page-rounded stub size, file length).
pub fn read_placement(first: &[u8]) -> Option<(StubPlacement, u64)> {
    if first.len() < PREFIX_SIZE || get16(first, 56) as usize != PHDR_COUNT {
        return None;
    }
    let ph = |i: usize, field: usize| get64(first, PHDRS_AT + i * PHDR_SIZE + field);
    let base = ph(1, 16);
    let placement = StubPlacement {
        base,
        file_size: ph(1, 32),
        mem_size: ph(1, 40),
        entry: get64(first, LOADER_REAL_ENTRY).checked_sub(base)?,
    };
    Some((placement, get64(first, LOADER_FILE_LEN)))
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
        write_prefix(&mut page, &stub, 0x5000, 256, 0x12345);
        assert_eq!(locate_header(&page), Some(0x5000));
        assert_eq!(get64(&page, 24), 0x1000_0000_0000 - 0x1000 + 64);
        assert_eq!(read_placement(&page), Some((stub, 0x12345)));
        // The patched words are where the assembled check reads them (rip-relative).
        assert_eq!(&LOADER[0xb8..0xc0], &[0x11; 8]);
        assert_eq!(&LOADER[0xc0..0xc8], &[0x22; 8]);
        let mut not_elf = page;
        not_elf[1] = b'X';
        assert_eq!(locate_header(&not_elf), None);
        assert_eq!(locate_header(&page[..40]), None);
    }
}
