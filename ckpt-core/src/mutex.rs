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
//!
//! Two more kinds of lock keep a thread id. A read-write lock held for writing records its
//! writer (`__cur_writer`), which its unlock compares with the caller's id: the
//! `pthread_rwlock_unlock` wrapper hands it over the same way. And the dynamic loader's own
//! locks (`_rtld_global`'s recursive mutexes: `dlopen`, `dl_iterate_phdr`, TLS set-up, the
//! exit path) are taken inside libc without any wrapper: a restart held in one of them would
//! make the program hang at `exit`. [`adopt_loader_locks`] hands every such lock to its
//! owner's new id once after each restart, finding them from the loader's symbol table.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

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
const COUNT: u64 = 4;
const OWNER: u64 = 8;
const KIND: u64 = 16;
const KIND_RECURSIVE: u32 = 1;
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
    hand_over(owner);
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

/// A word holding a former thread id of this process gets that thread's id now (unless it
/// changed meanwhile). Signal-safe.
#[inline(always)]
fn hand_over(word: &AtomicU32) {
    let old = word.load(Ordering::Relaxed);
    if let Some(now) = tids::current(old) {
        let _ = word.compare_exchange(old, now, Ordering::AcqRel, Ordering::Relaxed);
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

/// A write-locked rwlock records its writer's thread id (`__cur_writer`, at byte 24 on
/// x86-64), and glibc's unlock compares it with the caller's to choose the writer's path:
/// after a restart the writer is handed over like a mutex's owner.
#[inline(always)]
fn adopt_writer(rw: *mut c_void) {
    if !RESTARTED.load(Ordering::Acquire) || rw.is_null() {
        return;
    }
    // SAFETY: `rw` is the rwlock the program passes to pthread_rwlock_unlock, a live,
    // aligned pthread_rwlock_t; glibc itself reads this word atomically.
    hand_over(unsafe { sys::atomic_u32_at(rw as u64 + 24) });
}

/// The loader's own locks (`_rtld_global`: the lock `dlopen`, `dlclose`, the creation of a
/// thread's TLS and `exit` take), found at load: glibc locks them through its internal
/// mutex functions, past the wrappers here.
static LOADER: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// In a restarted process, with every other thread waiting: the loader's recursive locks
/// that a thread held at the checkpoint are handed to its new id (else its unlock fails
/// unseen, and the next `dlopen` or `exit` waits forever). They are found by their shape
/// in `_rtld_global` (a recursive `pthread_mutex_t`: lock word 1 or 2, count at least 1,
/// kind recursive, owner a former thread id), whose layout differs between glibc versions.
/// Signal-safe.
pub fn adopt_loader_locks() {
    let (base, size) = (
        LOADER[0].load(Ordering::Relaxed),
        LOADER[1].load(Ordering::Relaxed),
    );
    let mut at = base;
    while size >= 40 && at <= base + size - 40 {
        // SAFETY: inside `_rtld_global`, ld.so's object (its extent from the symbol table),
        // read and written as the words glibc's mutex code uses atomically.
        let (lock, count, owner, kind) = unsafe {
            (
                sys::atomic_u32_at(at + LOCK).load(Ordering::Relaxed),
                sys::atomic_u32_at(at + COUNT).load(Ordering::Relaxed),
                sys::atomic_u32_at(at + OWNER),
                sys::atomic_u32_at(at + KIND).load(Ordering::Relaxed),
            )
        };
        if (lock == 1 || lock == 2) && count >= 1 && kind & 0x7f == KIND_RECURSIVE {
            hand_over(owner);
        }
        at += 8;
    }
}

/// The glibc functions the wrappers forward to, in the order of [`NAMES`].
static REAL: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
const F_LOCK: usize = 0;
const F_TRYLOCK: usize = 1;
const F_UNLOCK: usize = 2;
const F_TIMEDLOCK: usize = 3;
const F_CLOCKLOCK: usize = 4;
const F_RWUNLOCK: usize = 5;
const NAMES: [&core::ffi::CStr; 6] = [
    c"pthread_mutex_lock",
    c"pthread_mutex_trylock",
    c"pthread_mutex_unlock",
    c"pthread_mutex_timedlock",
    c"pthread_mutex_clocklock",
    c"pthread_rwlock_unlock",
];

/// Code a checkpoint must not interrupt: the wrappers and glibc's functions they call, as
/// (start, end) address ranges found at library load.
static CRITICAL: [[AtomicU64; 2]; 12] = [const { [AtomicU64::new(0), AtomicU64::new(0)] }; 12];

/// Looks up glibc's functions and the extents of the code a checkpoint must not interrupt,
/// and the loader's locks. At library load.
pub fn init() {
    if let Some((base, size)) = sys::lookup_symbol(c"_rtld_global").and_then(sys::symbol_extent) {
        LOADER[0].store(base, Ordering::Relaxed);
        LOADER[1].store(size, Ordering::Relaxed);
    }
    let wrappers: [u64; 6] = [
        pthread_mutex_lock as *const () as u64,
        pthread_mutex_trylock as *const () as u64,
        pthread_mutex_unlock as *const () as u64,
        pthread_mutex_timedlock as *const () as u64,
        pthread_mutex_clocklock as *const () as u64,
        pthread_rwlock_unlock as *const () as u64,
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
        forward!($name, $which, ($($arg),*), ($a, $b), adopt);
    };
    ($name:ident, $which:expr, ($($arg:ident),*), ($a:expr, $b:expr), $adopt:ident) => {
        /// Wraps glibc's function of the same name (see the module documentation).
        ///
        /// # Safety
        /// As for glibc's function: the arguments must be valid for it.
        #[no_mangle]
        pub unsafe extern "C" fn $name(m: *mut c_void $(, $arg: *const c_void)*) -> c_int {
            let Some(f) = real(&REAL[$which], NAMES[$which]) else { return libc::ENOSYS };
            let restarts = RESTARTS.load(Ordering::Acquire);
            $adopt(m);
            // SAFETY: `f` is glibc's function of this name, called with the caller's arguments.
            let r = unsafe { sys::call_mutex_fn(f, m, $a, $b) };
            if $which == F_UNLOCK && r == libc::EPERM && RESTARTS.load(Ordering::Acquire) != restarts {
                // Restarted during the call: hand over, and unlock for real.
                $adopt(m);
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
forward!(
    pthread_rwlock_unlock,
    F_RWUNLOCK,
    (),
    (NONE, NONE),
    adopt_writer
);
