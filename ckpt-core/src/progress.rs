//! How far the image being written has got, told to `ckpt checkpoint` (which shows it on a
//! terminal) as `progress DONE TOTAL` lines on the request connection, before the answer.
//! DONE and TOTAL count the memory bytes stored, whatever compression makes of them in the
//! file. A line when the payloads start and when they are all written, and between them at
//! most one every [`INTERVAL_NS`]; never waiting: when the connection is full
//! or gone, the line is dropped. Signal-safe.

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use ckpt_image::request::Answer;

use crate::sys;

/// How often a line is sent.
const INTERVAL_NS: u64 = 200_000_000;

/// The request connection of the checkpoint being taken; -1 when nobody asks.
static FD: AtomicI32 = AtomicI32::new(-1);
static TOTAL: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
static LAST_NS: AtomicU64 = AtomicU64::new(0);

/// The checkpoint about to be taken answers on `fd` (a `ckpt checkpoint` request), or on
/// nothing. Signal-safe.
pub fn listen(fd: Option<i32>) {
    FD.store(fd.unwrap_or(-1), Ordering::Relaxed);
}

/// The payloads to be written hold `total` bytes of memory: said at once. Signal-safe.
pub fn start(total: u64) {
    TOTAL.store(total, Ordering::Relaxed);
    DONE.store(0, Ordering::Relaxed);
    LAST_NS.store(sys::monotonic_ns(), Ordering::Relaxed);
    send(0);
}

/// Every payload is in the file: said at once, as all of the total (pages an incremental
/// checkpoint took from the previous file, or a file mapping's pages past its end, were not
/// counted on the way). Signal-safe.
pub fn finish() {
    send(TOTAL.load(Ordering::Relaxed));
}

/// `bytes` more of memory are in the file. Signal-safe.
pub fn advance(bytes: u64) {
    let done = DONE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    if FD.load(Ordering::Relaxed) < 0 {
        return;
    }
    let now = sys::monotonic_ns();
    if now.saturating_sub(LAST_NS.load(Ordering::Relaxed)) < INTERVAL_NS {
        return;
    }
    LAST_NS.store(now, Ordering::Relaxed);
    send(done);
}

fn send(done: u64) {
    let fd = FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let mut line = [0u8; 64];
    let n = Answer::Progress {
        done,
        total: TOTAL.load(Ordering::Relaxed),
    }
    .write(&mut line);
    let _ = sys::send_nowait(fd, &line[..n]);
}
