//! Writeback started while a durable image is still being written: the kernel begins to
//! write the pages already in the file (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does
//! not wait) every [`STEP`] bytes, so that the disk works while the writer copies the rest
//! and the final `fsync` finds little left to do. Without it nothing is written back before
//! the `fsync` (the kernel's background writeback starts only past a tenth of memory
//! dirty), and the checkpoint takes the time to copy plus the time to write. Signal-safe.

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::sys;

/// Bytes written between two starts of writeback.
const STEP: u64 = 8 << 20;

/// The file being written durably; -1: none (not durable, or no image being written).
static FD: AtomicI32 = AtomicI32::new(-1);
static PENDING: AtomicU64 = AtomicU64::new(0);

/// The image goes to `fd`, durably or not. Signal-safe.
pub fn start(fd: i32, durable: bool) {
    FD.store(if durable { fd } else { -1 }, Ordering::Relaxed);
    PENDING.store(0, Ordering::Relaxed);
}

/// `n` more bytes are in the file. Signal-safe.
pub fn wrote(n: u64) {
    let fd = FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    if PENDING.fetch_add(n, Ordering::Relaxed) + n >= STEP {
        PENDING.store(0, Ordering::Relaxed);
        sys::start_writeback(fd);
    }
}

/// The image is written. Signal-safe.
pub fn finish() {
    FD.store(-1, Ordering::Relaxed);
}
