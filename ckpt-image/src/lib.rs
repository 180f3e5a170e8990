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
//! | `tables_offset`        | tables: regions, extents, threads, signal actions, auxv, names   |
//!
//! The `PT_CKPT` program header points at the image header, so a reader needs nothing but the
//! file. Everything is little-endian `#[repr(C)]` with explicit padding; the header is checked
//! in the order magic, version, architecture, length, checksum ([`ImageHeader::validate`]).
//! The tables carry their own checksum, verified before anything is restored.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod crc32c;
pub mod elf;
pub mod lz4;
pub mod request;
pub mod signals;
pub mod stub_sum;

/// Reading `/proc/<pid>/maps` lines, which the writer and the stub both do.
pub mod maps {
    /// A hexadecimal number of 1 to 16 digits.
    pub fn parse_hex(s: &[u8]) -> Option<u64> {
        if s.is_empty() || s.len() > 16 {
            return None;
        }
        s.iter().try_fold(0u64, |v, &c| {
            Some((v << 4) | (c as char).to_digit(16)? as u64)
        })
    }

    /// The `start-end` addresses a maps line begins with (before its first blank).
    pub fn line_range(line: &[u8]) -> Option<(u64, u64)> {
        let range = &line[..line.iter().position(|&c| c == b' ')?];
        let dash = range.iter().position(|&c| c == b'-')?;
        Some((parse_hex(&range[..dash])?, parse_hex(&range[dash + 1..])?))
    }
}

/// Little-endian words at a byte offset (panicking out of bounds, like indexing).
pub(crate) mod le {
    pub fn u32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    pub fn u64(b: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    }
}

pub const PAGE_SIZE: u64 = 4096;

/// Where the stub's loadable bytes start in the file.
pub const STUB_FILE_OFFSET: u64 = PAGE_SIZE;

/// `p_type` of the program header that locates the image header ("ckpt" in ASCII).
pub const PT_CKPT: u32 = 0x636b_7074;

pub const MAGIC: [u8; 8] = *b"CKPTIMG\0";
/// 2: the entry check verifies the restart stub against `ImageHeader::stub_sum`; extents
/// may be guard pages (`EXTENT_GUARD`); regions carry the properties the program set on
/// them (`region_flags::VM_FLAGS`).
pub const FORMAT_VERSION: u32 = 2;
pub const EM_X86_64: u32 = 62;

/// Largest number of signals whose actions are saved (Linux: 1..=64).
pub const NSIG: usize = 64;

/// Size the header occupies in the file; payloads start after it.
pub const HEADER_SPACE: u64 = PAGE_SIZE;

/// Round `x` up to a multiple of the page size.
pub const fn page_up(x: u64) -> u64 {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

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
    /// The [`stub_sum`] of the file's bytes in [`elf::checked_range`] (the rest of the first
    /// page and the stub's pages), which the entry check also holds and verifies.
    pub stub_sum: u64,
    pub reserved: [u64; 7],
}

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

/// Region kinds and properties (`RegionRecord::flags`).
pub mod region_flags {
    /// Mapped `MAP_SHARED`.
    pub const SHARED: u32 = 1 << 0;
    /// Backed by a file that existed at checkpoint time (its name is recorded).
    pub const FILE: u32 = 1 << 1;
    /// Backed by a deleted file or a memfd: contents are stored, the file is gone.
    pub const DELETED: u32 = 1 << 2;
    pub const MEMFD: u32 = 1 << 3;
    /// The main thread's stack (`[stack]`), restored as growing down.
    pub const STACK: u32 = 1 << 4;
    /// The program break area (`[heap]`).
    pub const HEAP: u32 = 1 << 5;
    /// `[vvar]`: recreated by moving the kernel's, never read.
    pub const VVAR: u32 = 1 << 6;
    /// `[vvar_vclock]`: likewise.
    pub const VVAR_VCLOCK: u32 = 1 << 7;
    /// `[vdso]`: its image is stored to check that the restarting kernel's is the same.
    pub const VDSO: u32 = 1 << 8;
    /// Any of the three kernel-provided vDSO mappings.
    pub const VDSO_FAMILY: u32 = VVAR | VVAR_VCLOCK | VDSO;
    /// Some of its memory was in transparent huge pages, and the restart fills it in huge
    /// pages again: where the program asked for them (`HUGEPAGE`) by that advice, given
    /// before filling; otherwise (the system's setting gave them, or `MADV_COLLAPSE`) by
    /// `MADV_COLLAPSE` after filling, which leaves the region's own advice as it was.
    pub const HUGE: u32 = 1 << 9;

    // What the program set on the mapping with `mmap`, `madvise`, `mlock` and `mseal`, as
    // `/proc/PID/smaps` shows it (`VmFlags`); the restart sets each again (see `VM_FLAGS`).

    /// `MAP_NORESERVE` (`nr`): not charged against the commit limit. A region without it is
    /// mapped without it, and charged as the original was.
    pub const NORESERVE: u32 = 1 << 10;
    /// `MADV_DONTFORK` (`dc`): not in a child (device and DMA buffers).
    pub const DONTFORK: u32 = 1 << 11;
    /// `MADV_WIPEONFORK` (`wf`): zero in a child (keys, random state).
    pub const WIPEONFORK: u32 = 1 << 12;
    /// `MADV_DONTDUMP` (`dd`): left out of core dumps (secrets).
    pub const DONTDUMP: u32 = 1 << 13;
    /// `MADV_HUGEPAGE` (`hg`): transparent huge pages asked for.
    pub const HUGEPAGE: u32 = 1 << 14;
    /// `MADV_NOHUGEPAGE` (`nh`): no transparent huge pages.
    pub const NOHUGEPAGE: u32 = 1 << 15;
    /// `MADV_MERGEABLE` (`mg`): KSM may merge its pages.
    pub const MERGEABLE: u32 = 1 << 16;
    /// `MADV_RANDOM` (`rr`): no readahead.
    pub const RANDOM: u32 = 1 << 17;
    /// `MADV_SEQUENTIAL` (`sr`): aggressive readahead.
    pub const SEQUENTIAL: u32 = 1 << 18;
    /// `mlock` (`lo`): kept in memory.
    pub const LOCKED: u32 = 1 << 19;
    /// With `LOCKED`: `mlock2(MLOCK_ONFAULT)` (`lf`), pages locked as they are touched.
    pub const LOCKONFAULT: u32 = 1 << 20;
    /// `MAP_GROWSDOWN` (`gd`): `[stack]`, or a program's own such mapping.
    pub const GROWSDOWN: u32 = 1 << 21;
    /// `mseal` (`sl`): its mapping and protection can no longer change.
    pub const SEALED: u32 = 1 << 22;

    /// Each of those flags with its `VmFlags` mnemonic in `/proc/PID/smaps` and the word
    /// `ckpt info` uses for it. Other mnemonics are derived from the protection and kind of
    /// the mapping (`rd`, `mr`, `sh` …), accounting (`ac`), or the kernel's own (`sd`, `de`
    /// …), and are not recorded.
    pub const VM_FLAGS: [(u32, [u8; 2], &str); 13] = [
        (NORESERVE, *b"nr", "noreserve"),
        (DONTFORK, *b"dc", "dontfork"),
        (WIPEONFORK, *b"wf", "wipeonfork"),
        (DONTDUMP, *b"dd", "dontdump"),
        (HUGEPAGE, *b"hg", "hugepage"),
        (NOHUGEPAGE, *b"nh", "nohugepage"),
        (MERGEABLE, *b"mg", "mergeable"),
        (RANDOM, *b"rr", "random"),
        (SEQUENTIAL, *b"sr", "sequential"),
        (LOCKED, *b"lo", "locked"),
        (LOCKONFAULT, *b"lf", "lockonfault"),
        (GROWSDOWN, *b"gd", "growsdown"),
        (SEALED, *b"sl", "sealed"),
    ];

    /// The flags of a `VmFlags` list (`rd wr mr mw me dc ac`, blank separated).
    pub fn from_vm_flags(list: &[u8]) -> u32 {
        list.split(|&c| c == b' ')
            .filter_map(|m| VM_FLAGS.iter().find(|(_, name, _)| name[..] == *m))
            .fold(0, |flags, (flag, _, _)| flags | flag)
    }
}

/// Protection bits as in `mmap` (`PROT_READ` = 1, `PROT_WRITE` = 2, `PROT_EXEC` = 4).
pub mod prot {
    pub const READ: u32 = 1;
    pub const WRITE: u32 = 2;
    pub const EXEC: u32 = 4;
}

/// One mapping of the saved address space.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionRecord {
    pub start: u64,
    pub len: u64,
    pub prot: u32,
    pub flags: u32,
    /// Index of the first extent of this region and how many follow.
    pub first_extent: u32,
    pub extent_count: u32,
    /// Offset in the backing file, as in `/proc/self/maps`.
    pub file_offset: u64,
    /// Inode and device of the backing file (zero for anonymous memory).
    pub inode: u64,
    pub dev: u64,
    /// The mapping's name (path or `[heap]` …) in the names table.
    pub name_offset: u32,
    pub name_len: u32,
    /// Bytes of payload stored for this region.
    pub stored: u64,
}

/// A run of stored pages: `len` bytes at `addr`, found at `file_offset` in the file.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtentRecord {
    pub addr: u64,
    pub len: u64,
    pub file_offset: u64,
    /// The payload's checksum ([`crc32c::PayloadChecksum`]), valid when `flags` has
    /// [`EXTENT_HAS_CRC`].
    pub crc: u32,
    pub flags: u32,
}

/// `ExtentRecord::flags`: `crc` holds the checksum of the extent's payload bytes.
pub const EXTENT_HAS_CRC: u32 = 1;
/// `ExtentRecord::flags`: the payload is a sequence of [`lz4`] frames starting at
/// `file_offset` (not page aligned); its length in the file is that of its frames.
pub const EXTENT_LZ4: u32 = 2;
/// `ExtentRecord::flags`: no payload; these pages were guard pages
/// (`MADV_GUARD_INSTALL`: any access faults), installed again at restart. The only flag of
/// such an extent, whose `file_offset` and `crc` are zero.
pub const EXTENT_GUARD: u32 = 4;
/// The control signal of libckpt (SIGRTMAX-1): periodic checkpoints (from its POSIX timer)
/// and checkpoint requests from `ckpt checkpoint` (queued with `sigqueue`).
pub const CONTROL_SIGNAL: i32 = 63;

/// The callee-saved state a resumed thread needs to return from the capture point; the rest
/// of its registers are in the kernel's signal frame on its (restored) stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeContext {
    pub rsp: u64,
    pub rip: u64,
    pub rbx: u64,
    pub rbp: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub mxcsr: u32,
    pub fpu_cw: u16,
    pub _pad: u16,
}

/// Value the resumed capture point returns in the restarted process.
pub const RESUMED: u64 = 0x5245_5354_4152_5400; // "RESTART\0"

/// Loads the callee-saved registers, MXCSR, x87 control word and stack pointer of a
/// [`ResumeContext`] and jumps to its resume address with `value` in rax: the capture call
/// that saved the context returns `value` a second time. The restart stub resumes a
/// checkpointed thread this way (with [`RESUMED`]), and libckpt abandons a body that
/// faulted (see its `FaultGuard`).
///
/// # Safety
/// `ctx` must have been saved by a capture call whose frame and stack still hold what they
/// held then, and everything between here and there must be safe to abandon.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
pub unsafe extern "C" fn resume_context(ctx: *const ResumeContext, value: u64) -> ! {
    core::arch::naked_asm!(
        "ldmxcsr [rdi + 64]",
        "fldcw [rdi + 68]",
        "mov rbx, [rdi + 16]",
        "mov rbp, [rdi + 24]",
        "mov r12, [rdi + 32]",
        "mov r13, [rdi + 40]",
        "mov r14, [rdi + 48]",
        "mov r15, [rdi + 56]",
        "mov rsp, [rdi + 0]",
        "mov rax, rsi",
        "jmp [rdi + 8]",
    )
}

const _: () = {
    // The offsets resume_context reads.
    assert!(core::mem::offset_of!(ResumeContext, rsp) == 0);
    assert!(core::mem::offset_of!(ResumeContext, rip) == 8);
    assert!(core::mem::offset_of!(ResumeContext, rbx) == 16);
    assert!(core::mem::offset_of!(ResumeContext, r15) == 56);
    assert!(core::mem::offset_of!(ResumeContext, mxcsr) == 64);
    assert!(core::mem::offset_of!(ResumeContext, fpu_cw) == 68);
};

/// Per-thread state. The first record is the thread that took the checkpoint.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadRecord {
    pub tid: u32,
    /// `THREAD_IN_VDSO` and nothing else yet.
    pub flags: u32,
    pub fs_base: u64,
    pub gs_base: u64,
    pub context: ResumeContext,
    /// Signal mask to install before jumping to the resume point.
    pub sigmask: u64,
    pub altstack_sp: u64,
    pub altstack_size: u64,
    pub altstack_flags: u32,
    pub rseq_len: u32,
    pub rseq_area: u64,
    pub rseq_sig: u32,
    /// The low half of XCR0 where the checkpoint was taken: the register state the CPU and
    /// kernel enabled (SSE, AVX, AVX-512, PKRU, AMX …), which the program may use and which
    /// the saved signal frame holds. 0: not recorded.
    pub xcr0: u32,
    pub robust_list_head: u64,
    pub robust_list_len: u64,
    pub clear_child_tid: u64,
}

/// Free address space the writer keeps on each side of the stub's reservation. After the
/// reservation the restart may keep this kernel's vDSO when it differs from the saved one.
pub const STUB_GAP: u64 = 16 << 20;

/// XCR0 (the register state enabled on this CPU): the low half, 0 when there is no XSAVE.
pub fn xcr0() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID.1:ECX.OSXSAVE says that XGETBV may be used.
        let osxsave = core::arch::x86_64::__cpuid(1).ecx & (1 << 27) != 0;
        if osxsave {
            let (lo, _hi): (u32, u32);
            // SAFETY: XGETBV with ECX = 0 reads XCR0; OSXSAVE (checked) makes it legal.
            unsafe {
                core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") _hi,
                    options(nomem, nostack, preserves_flags));
            }
            return lo;
        }
    }
    0
}

/// `ThreadRecord::flags`: the checkpoint signal interrupted the thread inside the vDSO, so it
/// resumes in vDSO code that reads the kernel's data pages directly: such a checkpoint
/// restarts only under a kernel with the same vDSO.
pub const THREAD_IN_VDSO: u32 = 1;

/// A signal's action in the kernel's x86-64 `struct sigaction` layout, for `rt_sigaction`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigactionRecord {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

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

/// Byte sizes of the tables, in file order.
pub const REGION_SIZE: usize = core::mem::size_of::<RegionRecord>();
pub const EXTENT_SIZE: usize = core::mem::size_of::<ExtentRecord>();
pub const THREAD_SIZE: usize = core::mem::size_of::<ThreadRecord>();
pub const SIGACTION_SIZE: usize = core::mem::size_of::<SigactionRecord>();

/// Where each table lives, relative to the start of the tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableLayout {
    pub regions: usize,
    pub extents: usize,
    pub threads: usize,
    pub sigactions: usize,
    pub auxv: usize,
    pub names: usize,
    pub total: usize,
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
        let names = auxv.checked_add((self.auxv_words as usize).checked_mul(8)?)?;
        let total = names.checked_add(self.names_len as usize)?;
        Some(TableLayout {
            regions,
            extents,
            threads,
            sigactions,
            auxv,
            names,
            total,
        })
    }

    /// The header as bytes (it is plain old data with explicit padding).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: ImageHeader is repr(C), made of integers with explicit padding fields, so
        // every byte is initialised; the slice borrows self.
        unsafe {
            core::slice::from_raw_parts(
                self as *const Self as *const u8,
                core::mem::size_of::<Self>(),
            )
        }
    }

    /// Reads a header from the start of `bytes` (unaligned is fine).
    pub fn read_from(bytes: &[u8]) -> Option<ImageHeader> {
        if bytes.len() < core::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked, the read is unaligned, and every bit pattern is a
        // valid ImageHeader (integers and byte arrays only).
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr() as *const ImageHeader) })
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

/// Typed views of the tables of a validated image.
pub struct Tables<'a> {
    pub regions: &'a [RegionRecord],
    pub extents: &'a [ExtentRecord],
    pub threads: &'a [ThreadRecord],
    pub sigactions: &'a [SigactionRecord],
    pub auxv: &'a [u64],
    pub names: &'a [u8],
}

impl<'a> Tables<'a> {
    /// Interprets `bytes` (the tables, 8-byte aligned, length checked by the caller against
    /// the header) as tables, after checking their checksum and their internal consistency:
    /// regions sorted and disjoint, page-aligned, each extent inside its region and inside
    /// the file at a page-aligned offset.
    pub fn parse(header: &ImageHeader, bytes: &'a [u8]) -> Result<Tables<'a>, FormatError> {
        let layout = header.table_layout().ok_or(FormatError::BadTables)?;
        if bytes.len() != layout.total || !(bytes.as_ptr() as usize).is_multiple_of(8) {
            return Err(FormatError::BadTables);
        }
        if crc32c::crc32c(0, bytes) != header.tables_crc {
            return Err(FormatError::TablesChecksum);
        }
        // SAFETY: the buffer is 8-byte aligned and long enough for every table (layout.total
        // matches), each table starts at a multiple of 8 (all record sizes are multiples of
        // 8), and all record types are plain integers valid for any bit pattern.
        let tables = unsafe {
            let at = |off: usize| bytes.as_ptr().add(off);
            Tables {
                regions: core::slice::from_raw_parts(
                    at(layout.regions) as *const RegionRecord,
                    header.region_count as usize,
                ),
                extents: core::slice::from_raw_parts(
                    at(layout.extents) as *const ExtentRecord,
                    header.extent_count as usize,
                ),
                threads: core::slice::from_raw_parts(
                    at(layout.threads) as *const ThreadRecord,
                    header.thread_count as usize,
                ),
                sigactions: core::slice::from_raw_parts(
                    at(layout.sigactions) as *const SigactionRecord,
                    header.sigaction_count as usize,
                ),
                auxv: core::slice::from_raw_parts(
                    at(layout.auxv) as *const u64,
                    header.auxv_words as usize,
                ),
                names: &bytes[layout.names..],
            }
        };
        tables.check(header)?;
        Ok(tables)
    }

    fn check(&self, header: &ImageHeader) -> Result<(), FormatError> {
        let bad = Err(FormatError::BadTables);
        let mut prev_end = 0u64;
        let payload_start = STUB_FILE_OFFSET;
        for r in self.regions {
            let end = match r.start.checked_add(r.len) {
                Some(e) => e,
                None => return bad,
            };
            if r.start % PAGE_SIZE != 0 || r.len % PAGE_SIZE != 0 || r.len == 0 {
                return bad;
            }
            if r.start < prev_end || end > 0x0000_8000_0000_0000 {
                return bad;
            }
            prev_end = end;
            if (r.name_offset as usize).saturating_add(r.name_len as usize) > self.names.len() {
                return bad;
            }
            let first = r.first_extent as usize;
            let last = match first.checked_add(r.extent_count as usize) {
                Some(l) if l <= self.extents.len() => l,
                _ => return bad,
            };
            let mut stored = 0u64;
            let mut prev_ext_end = r.start;
            for e in &self.extents[first..last] {
                let e_end = match e.addr.checked_add(e.len) {
                    Some(x) => x,
                    None => return bad,
                };
                if e.flags & EXTENT_GUARD != 0 {
                    if e.flags != EXTENT_GUARD
                        || e.file_offset != 0
                        || e.crc != 0
                        || e.addr < prev_ext_end
                        || e_end > end
                        || e.addr % PAGE_SIZE != 0
                        || e.len % PAGE_SIZE != 0
                        || e.len == 0
                    {
                        return bad;
                    }
                    prev_ext_end = e_end;
                    continue;
                }
                let f_end = match e.file_offset.checked_add(e.len) {
                    Some(x) => x,
                    None => return bad,
                };
                let compressed = e.flags & EXTENT_LZ4 != 0;
                // A compressed extent's frames are checked as they are read.
                let in_file = if compressed {
                    e.file_offset + lz4::FRAME_HEADER as u64 <= header.file_len
                } else {
                    e.file_offset % PAGE_SIZE == 0 && f_end <= header.file_len
                };
                if e.addr < prev_ext_end
                    || e_end > end
                    || e.addr % PAGE_SIZE != 0
                    || e.len % PAGE_SIZE != 0
                    || e.file_offset < payload_start
                    || !in_file
                {
                    return bad;
                }
                prev_ext_end = e_end;
                stored += e.len;
            }
            if stored != r.stored {
                return bad;
            }
        }
        // The stub's reservation must not overlap the saved layout.
        let stub_end = match header.stub_base.checked_add(header.stub_reserve) {
            Some(e) => e,
            None => return bad,
        };
        for r in self.regions {
            if r.start < stub_end && header.stub_base < r.start + r.len {
                return bad;
            }
        }
        Ok(())
    }

    pub fn name(&self, r: &RegionRecord) -> &'a [u8] {
        let s = r.name_offset as usize;
        &self.names[s..s + r.name_len as usize]
    }

    pub fn extents_of(&self, r: &RegionRecord) -> &'a [ExtentRecord] {
        let s = r.first_extent as usize;
        &self.extents[s..s + r.extent_count as usize]
    }

    /// The extents of `r` that hold stored bytes (not its guard pages).
    pub fn stored_extents_of(
        &self,
        r: &RegionRecord,
    ) -> impl Iterator<Item = &'a ExtentRecord> + use<'a> {
        self.extents_of(r)
            .iter()
            .filter(|e| e.flags & EXTENT_GUARD == 0)
    }

    /// The guard-page extents of `r`.
    pub fn guards_of(&self, r: &RegionRecord) -> impl Iterator<Item = &'a ExtentRecord> + use<'a> {
        self.extents_of(r)
            .iter()
            .filter(|e| e.flags & EXTENT_GUARD != 0)
    }
}

const _: () = {
    assert!(REGION_SIZE.is_multiple_of(8));
    assert!(EXTENT_SIZE.is_multiple_of(8));
    assert!(THREAD_SIZE.is_multiple_of(8));
    assert!(SIGACTION_SIZE.is_multiple_of(8));
    assert!(core::mem::size_of::<ImageHeader>() as u64 <= HEADER_SPACE);
};

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> ImageHeader {
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

    #[test]
    fn vm_flags_lists() {
        use region_flags as rf;
        assert_eq!(rf::from_vm_flags(b"rd wr mr mw me ac sd"), 0);
        assert_eq!(
            rf::from_vm_flags(b"rd wr mr mw me dc nr lo lf ac wf "),
            rf::DONTFORK | rf::NORESERVE | rf::LOCKED | rf::LOCKONFAULT | rf::WIPEONFORK
        );
        assert_eq!(rf::from_vm_flags(b"  gd  sl"), rf::GROWSDOWN | rf::SEALED);
        assert_eq!(rf::from_vm_flags(b"nrx xnr n"), 0);
        // Every flag is distinct from the others and from the kinds before it.
        let all = rf::VM_FLAGS.iter().fold(0, |acc, (f, _, _)| {
            assert_eq!(acc & f, 0);
            acc | f
        });
        assert_eq!(all & (rf::HUGE | (rf::HUGE - 1)), 0);
    }

    #[test]
    fn tables_checks() {
        let mut h = header();
        let region = RegionRecord {
            start: 0x40_0000,
            len: 0x2000,
            prot: prot::READ,
            first_extent: 0,
            extent_count: 1,
            stored: 0x1000,
            ..Default::default()
        };
        let extent = ExtentRecord {
            addr: 0x40_1000,
            len: 0x1000,
            file_offset: 0x2000,
            ..Default::default()
        };
        let thread = ThreadRecord::default();
        let mut buf: Vec<u64> = Vec::new();
        let push = |buf: &mut Vec<u64>, bytes: &[u8]| {
            for c in bytes.chunks(8) {
                buf.push(u64::from_le_bytes(c.try_into().unwrap()));
            }
        };
        // SAFETY: test-only views of repr(C) integer records.
        let as_bytes = |p: *const u8, n: usize| unsafe { core::slice::from_raw_parts(p, n) };
        push(
            &mut buf,
            as_bytes(&region as *const _ as *const u8, REGION_SIZE),
        );
        push(
            &mut buf,
            as_bytes(&extent as *const _ as *const u8, EXTENT_SIZE),
        );
        push(
            &mut buf,
            as_bytes(&thread as *const _ as *const u8, THREAD_SIZE),
        );
        h.region_count = 1;
        h.extent_count = 1;
        h.tables_len = (buf.len() * 8) as u64;
        // SAFETY: viewing a Vec<u64> as bytes.
        let bytes =
            unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 8) };
        h.tables_crc = crc32c::crc32c(0, bytes);
        h.header_crc = h.compute_crc();
        h.validate(0x10000).unwrap();
        let t = Tables::parse(&h, bytes).unwrap();
        assert_eq!(t.regions[0], region);
        assert_eq!(t.extents_of(&t.regions[0])[0], extent);

        let mut damaged = buf.clone();
        damaged[1] ^= 0x1000;
        // SAFETY: as above.
        let d = unsafe {
            core::slice::from_raw_parts(damaged.as_ptr() as *const u8, damaged.len() * 8)
        };
        assert_eq!(
            Tables::parse(&h, d).err(),
            Some(FormatError::TablesChecksum)
        );

        // An extent outside its region is refused even with a valid checksum.
        let mut bad = buf.clone();
        bad[REGION_SIZE / 8] = 0x50_0000;
        // SAFETY: as above.
        let b = unsafe { core::slice::from_raw_parts(bad.as_ptr() as *const u8, bad.len() * 8) };
        let mut h2 = h;
        h2.tables_crc = crc32c::crc32c(0, b);
        assert_eq!(Tables::parse(&h2, b).err(), Some(FormatError::BadTables));
    }
}
