//! Threads: every thread of the process stops for a checkpoint and comes back after a
//! restart.
//!
//! - [`freeze`]: the thread that takes the checkpoint (the *leader*) lists
//!   `/proc/self/task` and sends each other thread the control signal with `tgkill`
//!   (`SI_TKILL` from this process: the kernel fills in the sender, so nobody outside can
//!   forge it, and it is told apart from `ckpt checkpoint`'s requests, which are `SI_QUEUE`).
//!   Each thread *parks* in the signal's handler ([`park`]): it records its state in its own
//!   slot of the thread table, saves its capture-point context and waits on a raw futex. The
//!   leader lists the threads again until a pass finds none it has not signalled and every
//!   signalled one has parked or ended; a thread made meanwhile is found by the next pass (only
//!   a thread that has not parked can make one, and the new one is listed before its maker's
//!   `clone` returns). A thread that blocks the control signal and so cannot park (glibc's
//!   `SIGEV_THREAD` helper, runtimes that mask everything) is stopped from outside by a
//!   forked tracer ([`ptrace`]). When no thread has parked or ended for
//!   [`freeze::TIMEOUT_MS`], or tracing is refused, the checkpoint fails, naming a thread that
//!   did not stop and why, and every thread goes on.
//!   [`thaw`] lets them go: after the post-checkpoint hooks, after the restart hooks in a
//!   restarted process, at once when a forked child writes the image.
//! - [`resume`]: the restart stub resumes one thread, the first record of the image (the
//!   main thread when it was alive, so that its id is the process id again). That thread
//!   makes every other one with a raw `clone` straight into its saved context (a thread
//!   stopped from outside, onto a signal frame built from its registers), the kernel
//!   writing the new thread id into glibc's control block before the thread runs. Each thread
//!   registers its robust list and rseq area again, takes back its name and CPU affinity and
//!   its pending signals; the leader waits for all of them, maps the old thread ids to the new
//!   ones ([`tids`]), puts the process-wide state back, runs the restart hooks and thaws.
//!
//! The thread table lives in memory reserved at library load, so it is part of every image:
//! a restarted thread finds its record where it left it. A slot is written only by its own
//! thread (the leader's, slot 0, by the leader), and read by the leader once the thread has
//! marked it ready. Everything here is signal-safe.

use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use ckpt_image::ThreadRecord;

use crate::sys;

pub mod freeze;
pub mod park;
pub mod ptrace;
pub mod resume;
pub mod tids;

pub use freeze::{stop_others, thaw, FreezeError};

/// Most threads a checkpoint takes (the table is reserved at load: 1.3 MiB of address space,
/// touched only as far as it is used).
pub const MAX_THREADS: usize = 4096;

/// The thread table (`MAX_THREADS` records), reserved at library load.
static TABLE: AtomicPtr<ThreadRecord> = AtomicPtr::new(core::ptr::null_mut());

/// For each slot, the freeze generation in which its record was completed (0: never).
static READY: [AtomicU32; MAX_THREADS] = [const { AtomicU32::new(0) }; MAX_THREADS];

/// For each slot, the thread's id after a restart.
static NEW_TID: [AtomicU32; MAX_THREADS] = [const { AtomicU32::new(0) }; MAX_THREADS];

/// The freeze in progress (its generation; 0: none).
static FREEZE: AtomicU32 = AtomicU32::new(0);

/// The next slot a parking thread takes (slot 0 is the leader's).
static NEXT_SLOT: AtomicU32 = AtomicU32::new(1);

/// Counts parked threads; the leader waits on it.
static PARKED: AtomicU32 = AtomicU32::new(0);

/// The `PARKED` count at which the leader wants to be woken: when every thread it waits for
/// has parked. Parking threads before that do not wake it (each wake-up would take a CPU
/// from the threads that still have to run to park).
static WAKE_AT: AtomicU32 = AtomicU32::new(0);

/// Threads that put off parking (interrupted inside the mutex code or the vDSO, see
/// `park::park`): each writes its id into a free entry, and the leader sends it the signal
/// again. A thread that finds no free entry parks where it is.
static PUT_OFF: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

/// How many times the threads of the freeze under way have put off parking; beyond
/// `MAX_PUT_OFF` they park wherever they are (taken as the leader's own checkpoint is
/// after its retries: marked when inside the vDSO).
static PUT_OFF_COUNT: AtomicU32 = AtomicU32::new(0);
const MAX_PUT_OFF: u32 = 20_000;

/// Bumped to let parked threads go; they wait on it.
static RELEASE: AtomicU32 = AtomicU32::new(0);

/// Counts threads back after a restart; the leader waits on it.
static RESUMED: AtomicU32 = AtomicU32::new(0);

/// How many threads the restart makes (the first one too): the `RESUMED` count at which
/// the leader is woken. Threads back before the last do not wake it (each wake-up would
/// take a CPU from the thread still making the others).
static RESUME_COUNT: AtomicU32 = AtomicU32::new(0);

/// The slot of the thread the restart stub resumes (the first record of the image).
static FIRST_SLOT: AtomicU32 = AtomicU32::new(0);

/// Offset of glibc's cached thread id and of its rseq area in the thread control block
/// (`u64::MAX`: unknown), set at load.
pub(crate) static TID_OFFSET: AtomicU64 = AtomicU64::new(u64::MAX);
pub(crate) static RSEQ_OFFSET: AtomicU64 = AtomicU64::new(u64::MAX);

/// ckpt's own signals (bit `sig - 1`), never raised again after a restart.
pub(crate) static OWN_SIGNALS: AtomicU64 = AtomicU64::new(0);

/// Reserves the thread table and notes glibc's offsets. At library load.
pub fn init(tid_offset: Option<u64>, rseq_offset: Option<i64>) {
    let table: &'static mut [ThreadRecord] = sys::as_records(sys::reserve(
        MAX_THREADS * core::mem::size_of::<ThreadRecord>(),
    ));
    TABLE.store(table.as_mut_ptr(), Ordering::Release);
    ptrace::init();
    TID_OFFSET.store(tid_offset.unwrap_or(u64::MAX), Ordering::Relaxed);
    RSEQ_OFFSET.store(
        rseq_offset.map_or(u64::MAX, |o| o as u64),
        Ordering::Relaxed,
    );
}

/// The record in `slot`.
///
/// # Safety
/// `slot < MAX_THREADS`, the table is reserved (`init`), and the caller is the one writer
/// of that slot (its own thread) or reads it after the thread marked it ready.
#[allow(clippy::mut_from_ref)]
pub(crate) unsafe fn slot(slot: usize) -> &'static mut ThreadRecord {
    debug_assert!(slot < MAX_THREADS);
    // SAFETY: the table holds MAX_THREADS records for the life of the process; exclusivity
    // is the caller's obligation.
    unsafe { &mut *TABLE.load(Ordering::Acquire).add(slot) }
}

/// The leader's record (slot 0), where `checkpoint` saves its capture-point context.
pub fn leader() -> &'static mut ThreadRecord {
    // SAFETY: slot 0 is written only by the thread holding the checkpoint path (the
    // caller), and the table is reserved at load, before any checkpoint.
    unsafe { slot(0) }
}

/// The slots of the threads parked in freeze `gen` (not the leader's).
fn parked_slots(gen: u32) -> impl Iterator<Item = usize> {
    let used = (NEXT_SLOT.load(Ordering::SeqCst) as usize).min(MAX_THREADS);
    READY[..used]
        .iter()
        .enumerate()
        .skip(1)
        .filter(move |(_, r)| r.load(Ordering::Acquire) == gen)
        .map(|(s, _)| s)
}

/// The slots of the frozen threads: the leader's and the parked ones.
fn frozen_slots() -> impl Iterator<Item = usize> {
    core::iter::once(0).chain(parked_slots(FREEZE.load(Ordering::SeqCst)))
}

/// How many threads the checkpoint froze (the leader too); in a restarted process, until the
/// thaw, how many the restart made.
pub fn frozen_count() -> usize {
    frozen_slots().count()
}

/// The slots of the frozen threads, the restart's first one first: the order of the
/// image's thread table.
pub fn image_order() -> impl Iterator<Item = usize> {
    let first = FIRST_SLOT.load(Ordering::Relaxed) as usize;
    core::iter::once(first).chain(frozen_slots().filter(move |&s| s != first))
}

/// The record of `slot` (one of `image_order`), for writing the image.
pub fn record(s: usize) -> &'static ThreadRecord {
    // SAFETY: the slot is the leader's or was marked ready, and its thread is parked: nobody
    // writes it while the leader reads.
    unsafe { slot(s) }
}

/// The record of a parked thread's `slot`, for the leader to amend while the thread waits.
pub(crate) fn record_mut(s: usize) -> &'static mut ThreadRecord {
    // SAFETY: as `record`: the thread is parked and the leader is the only one at its slot.
    unsafe { slot(s) }
}
