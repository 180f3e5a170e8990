//! The checkpoint image format, defined once for the writer (libckpt) and the reader
//! (the restart stub and `ckpt info`/`verify`).
//!
//! A checkpoint file is a static ELF executable:
//!
//! | file offset            | contents                                                        |
//! |------------------------|-----------------------------------------------------------------|
//! | 0                      | ELF header, entry check, program headers ([`elf`])               |
//! | [`STUB_FILE_OFFSET`]   | the restart stub, position independent, loaded at `stub_base`    |
//! | `header_offset`        | [`ImageHeader`] (one page)                                       |
//! | after the header       | region payloads, each extent at a page-aligned offset            |
//! | `tables_offset`        | tables: regions, extents, threads, signal actions, auxv, fds, names |
//!
//! The `PT_CKPT` program header points at the image header, so a reader needs nothing but the
//! file. Everything is little-endian `#[repr(C)]` with explicit padding; the header is checked
//! in the order magic, version, architecture, length, checksum ([`ImageHeader::validate`]).
//! The tables carry their own checksum, verified before anything is restored.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod crc32c;
pub mod digits;
pub mod elf;
pub mod fdkind;
pub mod le;
pub mod lz4;
pub mod pagemap;
pub mod procfs;
pub mod relocate;
pub mod request;
pub mod settings;
pub mod signals;
pub mod stub_sum;

mod fd;
mod header;
mod records;
mod tables;
mod thread;

pub use fd::*;
pub use header::*;
pub use records::*;
pub use tables::*;
pub use thread::*;

pub const PAGE_SIZE: u64 = 4096;

/// Where the stub's loadable bytes start in the file.
pub const STUB_FILE_OFFSET: u64 = PAGE_SIZE;

/// `p_type` of the program header that locates the image header ("ckpt" in ASCII).
pub const PT_CKPT: u32 = 0x636b_7074;

pub const MAGIC: [u8; 8] = *b"CKPTIMG\0";

/// 2: the entry check verifies the restart stub against `ImageHeader::stub_sum`; extents
/// may be guard pages (`EXTENT_GUARD`); regions carry the properties the program set on
/// them (`region_flags::VM_FLAGS`). 3: one thread record per thread, with its pending
/// signals, where it was stopped, its name and CPU affinity. 4: one descriptor record per
/// open descriptor ([`FdRecord`]), their paths in the names area. 5: descriptors made again
/// from saved state ([`FD_ACTION_REBUILD`]: pipes, sockets, eventfd and its family, deleted
/// files, terminals), their values in [`fdkind`] layouts.
pub const FORMAT_VERSION: u32 = 5;

pub const EM_X86_64: u32 = 62;

/// Largest number of signals whose actions are saved (Linux: 1..=64).
pub const NSIG: usize = 64;

/// Size the header occupies in the file; payloads start after it.
pub const HEADER_SPACE: u64 = PAGE_SIZE;

/// Round `x` up to a multiple of the page size.
pub const fn page_up(x: u64) -> u64 {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// [`page_up`] of a number read from a file: `None` past the top of the address space.
pub const fn checked_page_up(x: u64) -> Option<u64> {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

/// Restart options (`ImageHeader::restart_options`): `CKPT_STRICT_FILES` is set (not to 0)
/// in the environment of the restart.
pub const RESTART_STRICT_FILES: u64 = 1;
/// Restart option: `CKPT_RESTORE_STDIO` is set: standard input, output and error are the
/// saved ones (where they can be opened again), not the restart's.
pub const RESTART_RESTORE_STDIO: u64 = 2;

/// The control signal of libckpt (SIGRTMAX-1): periodic checkpoints (from its POSIX timer)
/// and checkpoint requests from `ckpt checkpoint` (queued with `sigqueue`).
pub const CONTROL_SIGNAL: i32 = 63;

/// Free address space the writer keeps on each side of the stub's reservation. After the
/// reservation the restart may keep this kernel's vDSO when it differs from the saved one.
pub const STUB_GAP: u64 = 16 << 20;
