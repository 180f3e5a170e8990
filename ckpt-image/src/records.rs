//! The records of the tables: regions (mappings) and their flags, extents (stored runs of
//! pages), signal actions. Little-endian `#[repr(C)]`, with explicit padding.

use crate::{ImageHeader, ThreadRecord, HEADER_SPACE};

/// A plain record: `#[repr(C)]`, made of integers only, without padding — so every byte of
/// one is initialised, and any bytes are a valid one. Viewing records as bytes (to write
/// them) and bytes as records (to read them) is sound for exactly these types
/// ([`record_bytes`], [`records`]); the format's records and the tables the checkpoint path
/// keeps in reserved memory are such records.
///
/// # Safety
/// Implement it through [`record_layout!`](crate::record_layout), which proves at compile time that the fields,
/// in order and with the types it is given, fill the type without a gap, and that each of
/// those types is a `Record` itself.
pub unsafe trait Record: Copy + 'static {}

// SAFETY: integers have no padding and no invalid bit patterns.
unsafe impl Record for u8 {}
// SAFETY: as above.
unsafe impl Record for u16 {}
// SAFETY: as above.
unsafe impl Record for u32 {}
// SAFETY: as above.
unsafe impl Record for u64 {}
// SAFETY: an array has no padding between its elements (a size is a multiple of its
// alignment), and is valid for any bytes when its element type is.
unsafe impl<T: Record, const N: usize> Record for [T; N] {}

/// Declares the layout of a `#[repr(C)]` record, field by field with its type, checks it at
/// compile time (each field where the one before it ends, the last at the end of the type:
/// no padding, no field left out, so a layout change cannot go unnoticed), and implements
/// [`Record`] for it.
#[macro_export]
macro_rules! record_layout {
    ($t:ty { $($field:ident: $ty:ty),+ $(,)? }) => {
        const _: () = {
            const fn plain<T: $crate::Record>() {}
            let mut at = 0usize;
            $(
                plain::<$ty>();
                assert!(
                    core::mem::offset_of!($t, $field) == at,
                    concat!(stringify!($t), ".", stringify!($field), " is not where its layout says")
                );
                at += core::mem::size_of::<$ty>();
            )+
            assert!(
                at == core::mem::size_of::<$t>(),
                concat!(stringify!($t), " has padding or fields its layout does not list")
            );
        };
        // SAFETY: the assertions above prove that the listed fields, each a Record, fill the
        // type without a gap.
        unsafe impl $crate::Record for $t {}
    };
}

/// The bytes of a table of records, to write them.
pub fn record_bytes<T: Record>(records: &[T]) -> &[u8] {
    // SAFETY: a Record has no padding, so all its bytes are initialised; the view borrows
    // the records and covers exactly them.
    unsafe { core::slice::from_raw_parts(records.as_ptr().cast(), core::mem::size_of_val(records)) }
}

/// The bytes of a table of records, to read into them.
pub fn record_bytes_mut<T: Record>(records: &mut [T]) -> &mut [u8] {
    // SAFETY: as above, and any bytes written through the view make a valid record; the
    // view borrows the records exclusively.
    unsafe {
        core::slice::from_raw_parts_mut(
            records.as_mut_ptr().cast(),
            core::mem::size_of_val(records),
        )
    }
}

/// `bytes` as a table of records: `None` unless they are aligned for `T` and a whole number
/// of records.
pub fn records<T: Record>(bytes: &[u8]) -> Option<&[T]> {
    let size = core::mem::size_of::<T>();
    if !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>())
        || !bytes.len().is_multiple_of(size)
    {
        return None;
    }
    // SAFETY: aligned and a whole number of records (both checked), and any bytes are a
    // valid Record; the view borrows `bytes`.
    Some(unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast(), bytes.len() / size) })
}

/// `bytes` as a mutable table of records (`None` unless aligned for `T`); bytes past the
/// last whole record are left out.
pub fn records_mut<T: Record>(bytes: &mut [u8]) -> Option<&mut [T]> {
    let size = core::mem::size_of::<T>();
    if !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return None;
    }
    // SAFETY: aligned (checked), inside `bytes`, and any bytes are a valid Record; the view
    // borrows `bytes` exclusively.
    Some(unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast(), bytes.len() / size) })
}

/// Reads one record from the start of `bytes` (unaligned is fine).
pub fn read_record<T: Record>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < core::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: long enough (checked), read unaligned, and any bytes are a valid Record.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast()) })
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

crate::record_layout!(RegionRecord {
    start: u64,
    len: u64,
    prot: u32,
    flags: u32,
    first_extent: u32,
    extent_count: u32,
    file_offset: u64,
    inode: u64,
    dev: u64,
    name_offset: u32,
    name_len: u32,
    stored: u64,
});

/// A run of stored pages: `len` bytes at `addr`, found at `file_offset` in the file.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtentRecord {
    pub addr: u64,
    pub len: u64,
    pub file_offset: u64,
    /// The payload's checksum ([`crc32c::PayloadChecksum`](crate::crc32c::PayloadChecksum)), valid when `flags` has
    /// [`EXTENT_HAS_CRC`].
    pub crc: u32,
    pub flags: u32,
}

crate::record_layout!(ExtentRecord {
    addr: u64,
    len: u64,
    file_offset: u64,
    crc: u32,
    flags: u32,
});

/// `ExtentRecord::flags`: `crc` holds the checksum of the extent's payload bytes.
pub const EXTENT_HAS_CRC: u32 = 1;

/// `ExtentRecord::flags`: the payload is a sequence of [`lz4`](crate::lz4) frames starting at
/// `file_offset` (not page aligned); its length in the file is that of its frames.
pub const EXTENT_LZ4: u32 = 2;

/// `ExtentRecord::flags`: no payload; these pages were guard pages
/// (`MADV_GUARD_INSTALL`: any access faults), installed again at restart. The only flag of
/// such an extent, whose `file_offset` and `crc` are zero.
pub const EXTENT_GUARD: u32 = 4;

/// A signal's action in the kernel's x86-64 `struct sigaction` layout, for `rt_sigaction`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigactionRecord {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

crate::record_layout!(SigactionRecord {
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
});

/// Byte sizes of the tables, in file order.
pub const REGION_SIZE: usize = core::mem::size_of::<RegionRecord>();

pub const EXTENT_SIZE: usize = core::mem::size_of::<ExtentRecord>();

pub const THREAD_SIZE: usize = core::mem::size_of::<ThreadRecord>();

pub const SIGACTION_SIZE: usize = core::mem::size_of::<SigactionRecord>();

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
}
