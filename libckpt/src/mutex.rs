//! Mutexes locked before a checkpoint, taken over by the restarted thread.
//!
//! glibc records the owner of error-checking, recursive, robust and priority-inheritance
//! mutexes as a thread id. A restarted process has a new thread id (libckpt writes it into
//! glibc's thread control block, so that `pthread_kill`, scheduling calls and new locks are
//! right), so a mutex locked before the checkpoint would look owned by a stranger: unlock
//! would fail with EPERM, and a recursive relock would deadlock. libckpt therefore wraps
//! the mutex entry points: after a restart, a mutex whose owner is one of the thread ids
//! this process had before a restart is handed to the current thread id first. Before any
//! restart the wrappers only forward the call.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sys;

/// Set once the process has been restarted at least once.
pub static RESTARTED: AtomicBool = AtomicBool::new(false);
/// Offset of the tid in glibc's thread control block (set at load).
pub static TID_OFFSET: AtomicU64 = AtomicU64::new(u64::MAX);

/// Thread ids the (main) thread had before restarts, newest last; 0 = unused.
const MAX_OLD_TIDS: usize = 16;
static OLD_TIDS: [core::sync::atomic::AtomicU32; MAX_OLD_TIDS] =
    [const { core::sync::atomic::AtomicU32::new(0) }; MAX_OLD_TIDS];

/// Records `tid` as a former thread id of this process. Signal-safe.
pub fn remember_old_tid(tid: u32) {
    for slot in &OLD_TIDS {
        if slot.load(Ordering::Relaxed) == tid {
            return;
        }
    }
    for slot in &OLD_TIDS {
        if slot
            .compare_exchange(0, tid, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            break;
        }
    }
    RESTARTED.store(true, Ordering::Release);
}

fn is_old(tid: u32) -> bool {
    tid != 0 && OLD_TIDS.iter().any(|s| s.load(Ordering::Relaxed) == tid)
}

// Layout of glibc's `struct __pthread_mutex_s` on x86-64.
const LOCK: u64 = 0;
const OWNER: u64 = 8;
const KIND: u64 = 16;
const KIND_ROBUST: u32 = 16;
const KIND_PI: u32 = 32;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

fn adopt(m: *mut c_void) {
    if !RESTARTED.load(Ordering::Acquire) || m.is_null() {
        return;
    }
    let off = TID_OFFSET.load(Ordering::Relaxed);
    if off == u64::MAX {
        return;
    }
    let base = m as u64;
    let now = sys::load_u32(sys::thread_self() + off);
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
    if is_old(o) {
        let _ = owner.compare_exchange(o, now, Ordering::AcqRel, Ordering::Relaxed);
    }
    if kind.load(Ordering::Relaxed) & (KIND_ROBUST | KIND_PI) != 0 {
        let l = lock.load(Ordering::Relaxed);
        if is_old(l & FUTEX_TID_MASK) {
            let _ = lock.compare_exchange(
                l,
                (l & !FUTEX_TID_MASK) | now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

/// The glibc definition of a wrapped function, looked up on first use.
fn real(slot: &AtomicU64, name: &core::ffi::CStr) -> Option<u64> {
    let f = slot.load(Ordering::Relaxed);
    if f != 0 {
        return Some(f);
    }
    let f = sys::next_symbol(name)?;
    slot.store(f, Ordering::Relaxed);
    Some(f)
}

macro_rules! forward {
    ($name:ident, $cname:literal, ($($arg:ident),*), ($a:expr, $b:expr)) => {
        /// Wraps glibc's function of the same name (see the module documentation).
        ///
        /// # Safety
        /// As for glibc's function: the arguments must be valid for it.
        #[no_mangle]
        pub unsafe extern "C" fn $name(m: *mut c_void $(, $arg: *const c_void)*) -> c_int {
            static REAL: AtomicU64 = AtomicU64::new(0);
            let Some(f) = real(&REAL, $cname) else { return libc::ENOSYS };
            adopt(m);
            // SAFETY: `f` is glibc's function of this name, called with the caller's arguments.
            unsafe { sys::call_mutex_fn(f, m, $a, $b) }
        }
    };
}

const NONE: *const c_void = core::ptr::null();
forward!(pthread_mutex_lock, c"pthread_mutex_lock", (), (NONE, NONE));
forward!(
    pthread_mutex_trylock,
    c"pthread_mutex_trylock",
    (),
    (NONE, NONE)
);
forward!(
    pthread_mutex_unlock,
    c"pthread_mutex_unlock",
    (),
    (NONE, NONE)
);
forward!(
    pthread_mutex_timedlock,
    c"pthread_mutex_timedlock",
    (abstime),
    (abstime, NONE)
);
forward!(
    pthread_mutex_clocklock,
    c"pthread_mutex_clocklock",
    (clock, abstime),
    (clock, abstime)
);
