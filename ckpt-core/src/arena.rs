//! Memory reserved at library load for the checkpoint path, which runs in a signal handler
//! and may not allocate. The buffers are lazily committed anonymous memory: pages never
//! touched cost nothing, neither in the process nor in its checkpoints.

use ckpt_image::{ExtentRecord, FdRecord, RegionRecord, SigactionRecord, NSIG};

use crate::capture::NotedLock;
use crate::sys::{self, Global, PageRegion};

/// Longest checkpoint path, including its terminating NUL.
pub const PATH_MAX: usize = 4096;

pub struct Arena {
    pub maps: &'static mut [u8],
    /// `/proc/self/smaps` passes through here in pieces (it is read for the `VmFlags`).
    pub smaps: &'static mut [u8],
    /// The mappings the program had locked, noted for a writer child (which inherits no
    /// locks); the first `noted_locks` are valid.
    pub locks: &'static mut [NotedLock],
    pub noted_locks: usize,
    pub regions: &'static mut [RegionRecord],
    pub extents: &'static mut [ExtentRecord],
    pub names: &'static mut [u8],
    pub scan: &'static mut [PageRegion],
    pub pagemap: &'static mut [u64],
    pub residency: &'static mut [u8],
    /// A copy of the restart stub, relocated for the base chosen at each checkpoint.
    pub stub: &'static mut [u8],
    /// Copies of the chunks of memory that change while they are written (see write.rs).
    pub staging: &'static mut [u8],
    /// Compressed frames on their way to the file, and the compressor's hash table.
    pub packed: &'static mut [u8],
    pub lz4_table: lz4_flex::block::CompressTable,
    /// `/proc/self/stat` and other small reads.
    pub misc: &'static mut [u8],
    pub auxv: &'static mut [u64],
    /// The open descriptors (`files`), their paths, and a restart's plan for each.
    pub fds: &'static mut [FdRecord],
    pub fd_names: &'static mut [u8],
    pub fd_plans: &'static mut [u8],
    pub fd_dup_of: &'static mut [u32],
    /// Saved bytes of descriptors (`FdRecord::data_*`: queued pipe data, deleted files'
    /// contents, epoll watches …), part of the image like all memory; released after each
    /// checkpoint and restart (`files::release_data`).
    pub fd_data: &'static mut [u8],
    /// Scratch memory of the descriptors' kind code at a checkpoint and a restart.
    pub fd_scratch: &'static mut [u8],
    pub sigactions: [SigactionRecord; NSIG],
    pub target_path: [u8; PATH_MAX],
    pub temp_path: [u8; PATH_MAX + 32],
}

pub static ARENA: Global<Option<Arena>> = Global::new(None);

impl Arena {
    /// Reserves every buffer. Called once, at library load.
    pub fn reserve() -> Arena {
        Arena {
            maps: sys::reserve(8 << 20),
            smaps: sys::reserve(64 << 10),
            locks: sys::as_records(sys::reserve(4096 * core::mem::size_of::<NotedLock>())),
            noted_locks: 0,
            regions: sys::as_records(sys::reserve(64 << 20 >> 4)),
            extents: sys::as_records(sys::reserve(64 << 20)),
            names: sys::reserve(4 << 20),
            scan: sys::as_records(sys::reserve(4096 * core::mem::size_of::<PageRegion>())),
            pagemap: sys::as_records(sys::reserve(64 << 10)),
            residency: sys::reserve(64 << 10),
            stub: sys::reserve(crate::STUB.len()),
            staging: sys::reserve(ckpt_image::lz4::FRAME_MAX),
            packed: sys::reserve(lz4_flex::block::get_maximum_output_size(
                ckpt_image::lz4::FRAME_MAX,
            )),
            // Large: frames exceed 64 KiB, and the small table would be replaced on the
            // stack inside the handler.
            lz4_table: lz4_flex::block::CompressTable::large(),
            misc: sys::reserve(64 << 10),
            auxv: sys::as_records(sys::reserve(4096)),
            fds: sys::as_records(sys::reserve(
                crate::files::MAX_FDS * core::mem::size_of::<FdRecord>(),
            )),
            fd_names: sys::reserve(16 << 20),
            fd_plans: sys::reserve(crate::files::MAX_FDS),
            fd_dup_of: sys::as_records(sys::reserve(crate::files::MAX_FDS * 4)),
            fd_data: sys::reserve(crate::files::FD_DATA_MAX),
            fd_scratch: sys::reserve(1 << 20),
            sigactions: [SigactionRecord::default(); NSIG],
            target_path: [0; PATH_MAX],
            temp_path: [0; PATH_MAX + 32],
        }
    }
}
