//! The ELF prefix that `elf::write_prefix` writes, read back by an independent ELF reader
//! (`object`): the writer is hand-written because it runs in a signal handler without an
//! allocator, so this checks it against someone else's reading of the format, the way the
//! kernel will read it.

use object::elf::{ProgramType, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Architecture, Endianness, LittleEndian as LE, Object, ObjectKind};

use ckpt_image::elf::{self, StubPlacement};
use ckpt_image::{page_up, ImageHeader, PAGE_SIZE, PT_CKPT, STUB_FILE_OFFSET};

const STUB: StubPlacement = StubPlacement {
    base: 0x7f00_1234_0000,
    file_size: 0x2ff8,
    mem_size: 0x9000,
    entry: 0x10,
};

/// A whole file as the writer lays it out: the prefix, the stub's pages, the header page.
fn checkpoint_file(stub: &StubPlacement) -> (Vec<u8>, u64) {
    let header_offset = STUB_FILE_OFFSET + page_up(stub.file_size);
    let file_len = header_offset + PAGE_SIZE;
    let mut file = vec![0u8; file_len as usize];
    elf::write_prefix(
        &mut file,
        stub,
        header_offset,
        std::mem::size_of::<ImageHeader>() as u64,
        file_len,
        0x0123_4567_89ab_cdef,
    );
    (file, header_offset)
}

#[test]
fn the_file_header_is_an_x86_64_executable() {
    let (file, _) = checkpoint_file(&STUB);
    let parsed = ElfFile64::<Endianness>::parse(&file[..]).expect("object parses the prefix");
    assert_eq!(parsed.architecture(), Architecture::X86_64);
    assert!(parsed.is_little_endian() && parsed.is_64());
    assert_eq!(parsed.kind(), ObjectKind::Executable);
    let header = parsed.elf_header();
    let endian = parsed.endian();
    assert_eq!(header.e_type(endian), ET_EXEC);
    assert_eq!(header.e_ehsize(endian) as usize, elf::EHDR_SIZE);
    assert_eq!(header.e_phoff(endian), elf::PHDRS_AT as u64);
    // The entry point is the entry check, right after the ELF header in the first page.
    assert_eq!(
        parsed.entry(),
        elf::prefix_address(STUB.base) + elf::EHDR_SIZE as u64
    );
    // No sections: nothing for a debugger to find, and nothing the kernel needs.
    assert_eq!(header.e_shnum(endian), 0);
    assert_eq!(parsed.sections().count(), 0);
}

#[test]
fn the_program_headers_load_the_prefix_and_the_stub_and_locate_the_header() {
    let (file, header_offset) = checkpoint_file(&STUB);
    let parsed = ElfFile64::<LE>::parse(&file[..]).expect("object parses the prefix");
    let phdrs = parsed.elf_program_headers();
    assert_eq!(phdrs.len(), elf::PHDR_COUNT);
    let (first, stub, ckpt) = (&phdrs[0], &phdrs[1], &phdrs[2]);
    let prefix_at = elf::prefix_address(STUB.base);

    // The first page, read and executed: the headers and the entry check.
    assert_eq!(first.p_type(LE), PT_LOAD);
    assert_eq!(first.p_flags(LE), PF_R | PF_X);
    assert_eq!(first.p_offset(LE), 0);
    assert_eq!(first.p_vaddr(LE), prefix_at);
    assert_eq!(first.p_paddr(LE), prefix_at);
    assert_eq!(
        (first.p_filesz(LE), first.p_memsz(LE)),
        (PAGE_SIZE, PAGE_SIZE)
    );
    assert_eq!(first.p_align(LE), PAGE_SIZE);
    let entry = parsed.entry();
    assert!(prefix_at <= entry && entry < prefix_at + PAGE_SIZE);
    assert_eq!(
        first.data(LE, &file[..]).unwrap(),
        &file[..PAGE_SIZE as usize]
    );

    // The stub, whole pages of it in the file, right after the first page in memory as in
    // the file, so that the entry check's relative jump and checked range hold.
    assert_eq!(stub.p_type(LE), PT_LOAD);
    assert_eq!(stub.p_flags(LE), PF_R | PF_W | PF_X);
    assert_eq!(stub.p_offset(LE), STUB_FILE_OFFSET);
    assert_eq!(stub.p_vaddr(LE), STUB.base);
    assert_eq!(stub.p_paddr(LE), STUB.base);
    assert_eq!(stub.p_filesz(LE), page_up(STUB.file_size));
    assert_eq!(stub.p_memsz(LE), STUB.mem_size);
    assert_eq!(stub.p_vaddr(LE) - first.p_vaddr(LE), stub.p_offset(LE));
    // What the kernel requires of a loadable segment.
    for load in [first, stub] {
        let align = load.p_align(LE);
        assert!(align.is_power_of_two());
        assert_eq!(load.p_offset(LE) % align, load.p_vaddr(LE) % align);
        assert!(load.p_filesz(LE) <= load.p_memsz(LE));
    }

    // PT_CKPT: where the image header is, and how long it is; nothing to load.
    assert_eq!(ckpt.p_type(LE), ProgramType(PT_CKPT));
    assert_eq!(ckpt.p_flags(LE), PF_R);
    assert_eq!(ckpt.p_offset(LE), header_offset);
    assert_eq!(ckpt.p_vaddr(LE), 0);
    let header_len = std::mem::size_of::<ImageHeader>() as u64;
    assert_eq!(
        (ckpt.p_filesz(LE), ckpt.p_memsz(LE)),
        (header_len, header_len)
    );
    assert_eq!(elf::locate_header(&file), Some(header_offset));
}

/// A stub whose bss is smaller than its page-rounded file size still gets a segment whose
/// memory covers its file bytes.
#[test]
fn a_stub_without_bss_beyond_its_pages_loads_whole_pages() {
    let small = StubPlacement {
        mem_size: 0x1000,
        ..STUB
    };
    let (file, _) = checkpoint_file(&small);
    let parsed = ElfFile64::<LE>::parse(&file[..]).unwrap();
    let stub = &parsed.elf_program_headers()[1];
    assert_eq!(stub.p_filesz(LE), page_up(small.file_size));
    assert_eq!(stub.p_memsz(LE), page_up(small.file_size));
}
