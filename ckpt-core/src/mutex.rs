//! Mutexes locked before a checkpoint, taken over by the restarted threads.
//!
//! glibc records the owner of error-checking, recursive, robust and priority-inheritance
//! mutexes as a thread id. Every thread of a restarted process has a new id (in glibc's
//! thread control block too, so that `pthread_kill`, scheduling calls and new locks are
//! right), so a mutex locked before the checkpoint would look owned by a stranger: unlock
//! would fail with EPERM, and a recursive relock would deadlock. libckpt therefore wraps
//! the mutex entry points: after a restart, a mutex whose owner is a former thread id of
//! this process is handed to that thread's id now (`threads::tids`) first. Before any
//! restart the wrappers only forward the call.
//!
//! A checkpoint must not land between a wrapper's hand-over and glibc's own look at the
//! owner: the hand-over would have seen the old process's id as current, and glibc, run in
//! the restarted one, compares the owner with the new id (an error-checking unlock then
//! fails with EPERM; a recursive relock deadlocks). So a checkpoint signal that interrupts
//! a wrapper or glibc's locking functions is put off and tried again a moment later, as
//! inside the vDSO ([`in_critical_code`]); and an unlock that fails with EPERM after a
//! restart happened during the call hands the mutex over and tries once more (glibc's
//! unlock checks the owner before it changes anything, and part of it lies in a function
//! glibc does not export, whose extent is unknown).

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sys;
use crate::threads::tids;

/// Set once the process has been restarted at least once.
pub static RESTARTED: AtomicBool = AtomicBool::new(false);

/// Counts restarts, so that a wrapper can tell that one happened during its call.
static RESTARTS: AtomicU64 = AtomicU64::new(0);

/// Notes a restart (once every thread's former id is mapped to its new one, `tids`).
/// Signal-safe.
pub fn note_restart() {
    RESTARTED.store(true, Ordering::Release);
    RESTARTS.fetch_add(1, Ordering::AcqRel);
}

// Layout of glibc's `struct __pthread_mutex_s` on x86-64.
const LOCK: u64 = 0;
const OWNER: u64 = 8;
const KIND: u64 = 16;
const KIND_ROBUST: u32 = 16;
const KIND_PI: u32 = 32;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

#[inline(always)]
fn adopt(m: *mut c_void) {
    if !RESTARTED.load(Ordering::Acquire) || m.is_null() {
        return;
    }
    // Without glibc's layout no thread id was made right; the owners stay as they are.
    if crate::threads::TID_OFFSET.load(Ordering::Relaxed) == u64::MAX {
        return;
    }
    let base = m as u64;
    // SAFETY: `m` is the mutex the program passes to a pthread_mutex_* call, a live, aligned
    // pthread_mutex_t; glibc itself accesses these words atomically.
    let (owner, lock, kind) = unsafe {
        (
            sys::atomic_u32_at(base + OWNER),
            sys::atomic_u32_at(base + LOCK),
            sys::atomic_u32_at(base + KIND),
        )
    };
    let o = owner.load(Ordering::Relaxed);
    if let Some(now) = tids::current(o) {
        let _ = owner.compare_exchange(o, now, Ordering::AcqRel, Ordering::Relaxed);
    }
    if kind.load(Ordering::Relaxed) & (KIND_ROBUST | KIND_PI) != 0 {
        let l = lock.load(Ordering::Relaxed);
        if let Some(now) = tids::current(l & FUTEX_TID_MASK) {
            let _ = lock.compare_exchange(
                l,
                (l & !FUTEX_TID_MASK) | now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// The glibc definition of a wrapped function, looked up at library load or on first use.
#[inline(always)]
fn real(slot: &AtomicU64, name: &core::ffi::CStr) -> Option<u64> {
    let f = slot.load(Ordering::Relaxed);
    if f != 0 {
        return Some(f);
    }
    let f = sys::next_symbol(name)?;
    slot.store(f, Ordering::Relaxed);
    Some(f)
}

/// The glibc functions the wrappers forward to, in the order of [`NAMES`].
static REAL: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
const F_LOCK: usize = 0;
const F_TRYLOCK: usize = 1;
const F_UNLOCK: usize = 2;
const F_TIMEDLOCK: usize = 3;
const F_CLOCKLOCK: usize = 4;
const NAMES: [&core::ffi::CStr; 5] = [
    c"pthread_mutex_lock",
    c"pthread_mutex_trylock",
    c"pthread_mutex_unlock",
    c"pthread_mutex_timedlock",
    c"pthread_mutex_clocklock",
];

/// Code a checkpoint must not interrupt: the wrappers and glibc's functions they call, as
/// (start, end) address ranges found at library load.
static CRITICAL: [[AtomicU64; 2]; 10] = [const { [AtomicU64::new(0), AtomicU64::new(0)] }; 10];

/// Looks up glibc's functions and the extents of the code a checkpoint must not interrupt.
/// At library load.
pub fn init() {
    let wrappers: [u64; 5] = [
        pthread_mutex_lock as *const () as u64,
        pthread_mutex_trylock as *const () as u64,
        pthread_mutex_unlock as *const () as u64,
        pthread_mutex_timedlock as *const () as u64,
        pthread_mutex_clocklock as *const () as u64,
    ];
    let mut n = 0;
    for (i, name) in NAMES.iter().enumerate() {
        let glibc = real(&REAL[i], name);
        for f in [Some(wrappers[i]), glibc].into_iter().flatten() {
            if let Some((start, size)) = sys::symbol_extent(f) {
                CRITICAL[n][0].store(start, Ordering::Relaxed);
                CRITICAL[n][1].store(start + size, Ordering::Relaxed);
                n += 1;
            }
        }
    }
}

/// Whether `pc` lies in a mutex wrapper or in glibc's mutex code, where a checkpoint would
/// split a hand-over from glibc's look at the owner. Signal-safe.
pub fn in_critical_code(pc: u64) -> bool {
    CRITICAL
        .iter()
        .any(|[lo, hi]| (lo.load(Ordering::Relaxed)..hi.load(Ordering::Relaxed)).contains(&pc))
}

macro_rules! forward {
    ($name:ident, $which:expr, ($($arg:ident),*), ($a:expr, $b:expr)) => {
        /// Wraps glibc's function of the same name (see the module documentation).
        ///
        /// # Safety
        /// As for glibc's function: the arguments must be valid for it.
        #[no_mangle]
        pub unsafe extern "C" fn $name(m: *mut c_void $(, $arg: *const c_void)*) -> c_int {
            let Some(f) = real(&REAL[$which], NAMES[$which]) else { return libc::ENOSYS };
            let restarts = RESTARTS.load(Ordering::Acquire);
            adopt(m);
            // SAFETY: `f` is glibc's function of this name, called with the caller's arguments.
            let r = unsafe { sys::call_mutex_fn(f, m, $a, $b) };
            if $which == F_UNLOCK && r == libc::EPERM && RESTARTS.load(Ordering::Acquire) != restarts {
                // Restarted during the call: hand over, and unlock for real.
                adopt(m);
                // SAFETY: as above.
                return unsafe { sys::call_mutex_fn(f, m, $a, $b) };
            }
            r
        }
    };
}

const NONE: *const c_void = core::ptr::null();
forward!(pthread_mutex_lock, F_LOCK, (), (NONE, NONE));
forward!(pthread_mutex_trylock, F_TRYLOCK, (), (NONE, NONE));
forward!(pthread_mutex_unlock, F_UNLOCK, (), (NONE, NONE));
forward!(
    pthread_mutex_timedlock,
    F_TIMEDLOCK,
    (abstime),
    (abstime, NONE)
);
forward!(
    pthread_mutex_clocklock,
    F_CLOCKLOCK,
    (clock, abstime),
    (clock, abstime)
);
