//! The image header: magic, version, architecture, the file's length and checksums, where
//! the tables are, the stub's place and the process's memory layout; checked in that order
//! ([`ImageHeader::validate`]); and the exit status of each refusal.

use crate::{checked_page_up, crc32c, EM_X86_64, FORMAT_VERSION, MAGIC, NSIG};
use crate::{EXTENT_SIZE, FD_SIZE, REGION_SIZE, SIGACTION_SIZE, THREAD_SIZE};

/// The fixed-size header of an image.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageHeader {
    pub magic: [u8; 8],
    pub version: u32,
    /// `size_of::<ImageHeader>()` of the writer.
    pub header_size: u32,
    pub arch: u32,
    /// CRC-32C of the header with this field set to zero.
    pub header_crc: u32,
    /// Total length of the file; a shorter file is truncated.
    pub file_len: u64,
    pub tables_offset: u64,
    pub tables_len: u64,
    /// CRC-32C of the `tables_len` bytes at `tables_offset`.
    pub tables_crc: u32,
    pub flags: u32,

    // Counts of the tables, which follow each other in this order, each 8-byte aligned.
    pub region_count: u32,
    pub extent_count: u32,
    pub thread_count: u32,
    pub sigaction_count: u32,
    pub auxv_words: u32,
    pub names_len: u32,

    /// Where the stub is loaded and how much address space from there on was free in the
    /// saved layout (stub, its scratch memory and a parking spot for the vDSO).
    pub stub_base: u64,
    pub stub_reserve: u64,
    /// Address space the loaded stub itself occupies from `stub_base`; the rest of the
    /// reservation is the stub's scratch memory.
    pub stub_mem: u64,

    /// The process's `mm` fields, for `PR_SET_MM_MAP`.
    pub mm: MmLayout,

    /// Seconds since the epoch when the checkpoint was taken.
    pub taken_at: u64,
    pub pid: u32,
    pub _pad0: u32,
    /// The [`stub_sum`](crate::stub_sum) of the file's bytes in [`elf::checked_range`](crate::elf::checked_range) (the rest of the first
    /// page and the stub's pages), which the entry check also holds and verifies.
    pub stub_sum: u64,
    /// Descriptor records, after the auxv words and before the names.
    pub fd_count: u32,
    pub _pad1: u32,
    /// Where, in the program's memory (libckpt's), the stub writes the options of the
    /// restart's own environment (`RESTART_*` bits) for libckpt to read; 0: nowhere.
    pub restart_options: u64,
    /// Where, in the program's memory (libckpt's), the stub writes the value of the
    /// restart's `CKPT_RELOCATE` (`relocate::RELOCATE_MAX` bytes, NUL-terminated; empty when
    /// it is not set); 0: nowhere.
    pub restart_relocate: u64,
    /// Payload bytes an incremental checkpoint kept from the file it was written over (the
    /// checkpoint before the previous one) instead of writing them from memory
    /// (information only; the file holds them all).
    pub kept: u64,
    pub reserved: [u64; 3],
}

crate::record_layout!(ImageHeader {
    magic: [u8; 8],
    version: u32,
    header_size: u32,
    arch: u32,
    header_crc: u32,
    file_len: u64,
    tables_offset: u64,
    tables_len: u64,
    tables_crc: u32,
    flags: u32,
    region_count: u32,
    extent_count: u32,
    thread_count: u32,
    sigaction_count: u32,
    auxv_words: u32,
    names_len: u32,
    stub_base: u64,
    stub_reserve: u64,
    stub_mem: u64,
    mm: MmLayout,
    taken_at: u64,
    pid: u32,
    _pad0: u32,
    stub_sum: u64,
    fd_count: u32,
    _pad1: u32,
    restart_options: u64,
    restart_relocate: u64,
    kept: u64,
    reserved: [u64; 3],
});

/// The memory-layout fields of the kernel's `mm_struct` that `PR_SET_MM_MAP` sets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmLayout {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

crate::record_layout!(MmLayout {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
});

/// The exit status of each class of failure of a restart, also used by `ckpt info` and
/// `ckpt verify` for the same failure (the README's table). 64–71 are decided before the
/// restart changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The file cannot be read (missing, permission, I/O error).
    CannotRead = 64,
    /// Not a checkpoint image.
    BadMagic = 65,
    /// Another format version.
    Version = 66,
    /// Made for another architecture.
    OtherArch = 67,
    /// The header or the restart stub is damaged.
    HeaderDamaged = 68,
    /// The file is truncated (the entry check says so too, before the stub runs).
    Truncated = 69,
    /// The tables are damaged (checksum).
    TablesDamaged = 70,
    /// The tables are impossible (checksums fine).
    BadTables = 71,
    /// This kernel's vDSO cannot stand in for the checkpointed one.
    OtherKernel = 72,
    /// No room to lay out the restart.
    Layout = 73,
    /// Restoring failed past the point of no return.
    RestoreFailed = 74,
    /// A payload extent's checksum does not match.
    PayloadDamaged = 75,
    /// This CPU lacks register state the program used.
    OtherCpu = 76,
    /// A restart option (`CKPT_RELOCATE`) is malformed; nothing was restored.
    BadOption = 79,
}

impl ExitStatus {
    pub const fn code(self) -> i32 {
        self as u8 as i32
    }
}

/// Why a header or table is refused. Each maps to a distinct exit status of the stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    BadMagic,
    NewerVersion,
    OtherArch,
    HeaderChecksum,
    Truncated,
    TablesChecksum,
    BadTables,
}

impl FormatError {
    pub const fn message(self) -> &'static str {
        match self {
            FormatError::BadMagic => "not a ckpt checkpoint image",
            FormatError::NewerVersion => "checkpoint image has an unsupported format version",
            FormatError::OtherArch => "checkpoint image is for another architecture",
            FormatError::HeaderChecksum => "checkpoint header is damaged (checksum mismatch)",
            FormatError::Truncated => "checkpoint file is truncated",
            FormatError::TablesChecksum => "checkpoint tables are damaged (checksum mismatch)",
            FormatError::BadTables => "checkpoint tables are inconsistent",
        }
    }

    /// The exit status of a restart refused for this reason (documented in README).
    pub const fn status(self) -> ExitStatus {
        match self {
            FormatError::BadMagic => ExitStatus::BadMagic,
            FormatError::NewerVersion => ExitStatus::Version,
            FormatError::OtherArch => ExitStatus::OtherArch,
            FormatError::HeaderChecksum => ExitStatus::HeaderDamaged,
            FormatError::Truncated => ExitStatus::Truncated,
            FormatError::TablesChecksum => ExitStatus::TablesDamaged,
            FormatError::BadTables => ExitStatus::BadTables,
        }
    }

    pub const fn exit_code(self) -> i32 {
        self.status().code()
    }
}

/// Where each table lives, relative to the start of the tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableLayout {
    pub regions: usize,
    pub extents: usize,
    pub threads: usize,
    pub sigactions: usize,
    pub auxv: usize,
    pub fds: usize,
    pub names: usize,
    pub total: usize,
}

/// See [`ImageHeader::stub_scratch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubScratch {
    pub tables: u64,
    pub park: u64,
    pub end: u64,
}

impl ImageHeader {
    pub fn table_layout(&self) -> Option<TableLayout> {
        let regions = 0usize;
        let extents =
            regions.checked_add((self.region_count as usize).checked_mul(REGION_SIZE)?)?;
        let threads =
            extents.checked_add((self.extent_count as usize).checked_mul(EXTENT_SIZE)?)?;
        let sigactions =
            threads.checked_add((self.thread_count as usize).checked_mul(THREAD_SIZE)?)?;
        let auxv =
            sigactions.checked_add((self.sigaction_count as usize).checked_mul(SIGACTION_SIZE)?)?;
        let fds = auxv.checked_add((self.auxv_words as usize).checked_mul(8)?)?;
        let names = fds.checked_add((self.fd_count as usize).checked_mul(FD_SIZE)?)?;
        let total = names.checked_add(self.names_len as usize)?;
        Some(TableLayout {
            regions,
            extents,
            threads,
            sigactions,
            auxv,
            fds,
            names,
            total,
        })
    }

    /// Where the restart stub keeps its scratch memory, inside its reservation after its
    /// own image: the tables at `tables`, then the parking place of the vDSO family at
    /// `park`, up to `end`. `None` when the tables do not fit (the image is refused as
    /// `BadTables`, by the stub and by `ckpt verify` alike).
    pub fn stub_scratch(&self) -> Option<StubScratch> {
        let tables = self
            .stub_base
            .checked_add(checked_page_up(self.stub_mem)?)?;
        let park = tables.checked_add(checked_page_up(self.tables_len)?)?;
        let end = self.stub_base.checked_add(self.stub_reserve)?;
        (park <= end).then_some(StubScratch { tables, park, end })
    }

    /// The header as bytes (it is plain old data with explicit padding).
    pub fn as_bytes(&self) -> &[u8] {
        crate::record_bytes(core::slice::from_ref(self))
    }

    /// Reads a header from the start of `bytes` (unaligned is fine).
    pub fn read_from(bytes: &[u8]) -> Option<ImageHeader> {
        crate::read_record(bytes)
    }

    pub fn compute_crc(&self) -> u32 {
        let mut copy = *self;
        copy.header_crc = 0;
        crc32c::crc32c(0, copy.as_bytes())
    }

    /// Checks magic, version, architecture, header checksum and the file length, in that
    /// order. `actual_file_len` is the length of the file the header was read from.
    pub fn validate(&self, actual_file_len: u64) -> Result<(), FormatError> {
        if self.magic != MAGIC {
            return Err(FormatError::BadMagic);
        }
        if self.version != FORMAT_VERSION {
            return Err(FormatError::NewerVersion);
        }
        if self.arch != EM_X86_64 {
            return Err(FormatError::OtherArch);
        }
        if self.header_size as usize != core::mem::size_of::<Self>()
            || self.compute_crc() != self.header_crc
        {
            return Err(FormatError::HeaderChecksum);
        }
        if actual_file_len < self.file_len {
            return Err(FormatError::Truncated);
        }
        let layout = self.table_layout().ok_or(FormatError::BadTables)?;
        let tables_end = self
            .tables_offset
            .checked_add(self.tables_len)
            .ok_or(FormatError::BadTables)?;
        if layout.total as u64 != self.tables_len || tables_end > self.file_len {
            return Err(FormatError::BadTables);
        }
        if self.thread_count == 0
            || self.sigaction_count as usize > NSIG
            || self.stub_mem > self.stub_reserve
        {
            return Err(FormatError::BadTables);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid header of a small image, for the tests here and in `tables`.
    pub(crate) fn header() -> ImageHeader {
        let mut h = ImageHeader {
            magic: MAGIC,
            version: FORMAT_VERSION,
            header_size: core::mem::size_of::<ImageHeader>() as u32,
            arch: EM_X86_64,
            file_len: 0x10000,
            tables_offset: 0x8000,
            tables_len: (THREAD_SIZE) as u64,
            thread_count: 1,
            stub_base: 0x1000_0000_0000,
            stub_reserve: 0x10_0000,
            ..Default::default()
        };
        h.header_crc = h.compute_crc();
        h
    }

    #[test]
    fn header_round_trip_and_rejections() {
        let h = header();
        assert_eq!(h.validate(0x10000), Ok(()));
        let back = ImageHeader::read_from(h.as_bytes()).unwrap();
        assert_eq!(back, h);
        assert_eq!(h.validate(0xffff), Err(FormatError::Truncated));
        let mut bad = h;
        bad.magic[0] ^= 1;
        assert_eq!(bad.validate(0x10000), Err(FormatError::BadMagic));
        let mut bad = h;
        bad.version = FORMAT_VERSION + 1;
        assert_eq!(bad.validate(0x10000), Err(FormatError::NewerVersion));
        let mut bad = h;
        bad.pid ^= 4;
        assert_eq!(bad.validate(0x10000), Err(FormatError::HeaderChecksum));
        // Every single bit flip is caught.
        let bytes = h.as_bytes().to_vec();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let d = ImageHeader::read_from(&b).unwrap();
            assert!(d.validate(0x10000).is_err(), "bit {i} flip accepted");
        }
    }
}
