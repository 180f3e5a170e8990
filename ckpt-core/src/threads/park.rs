//! A thread's side of a freeze: it parks in the control signal's handler until the leader
//! lets it go, and after a restart comes back here.

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ckpt_image::{ThreadRecord, RESUMED, THREAD_IN_VDSO};

use super::*;
use crate::sys;

/// The control signal came with `SI_TKILL` from this process: the leader's freeze. Records
/// this thread in a slot of its own, saves its context and waits until the leader lets it
/// go; in a restarted process it comes back here, made again by the first thread, and waits
/// for the leader again. `ctx` is the handler's `ucontext_t`. Signal-safe.
pub(crate) fn park(ctx: *mut c_void) {
    let gen = FREEZE.load(Ordering::SeqCst);
    if gen == 0 {
        // A late signal of a freeze that has ended.
        return;
    }
    // SAFETY: ctx is what the kernel passed to the running handler.
    let (pc, sp, mask) = unsafe { sys::interrupted_state(ctx) };
    if put_off(pc) {
        return;
    }
    let s = NEXT_SLOT.fetch_add(1, Ordering::SeqCst) as usize;
    if s >= MAX_THREADS {
        // The leader sees the count and fails the checkpoint.
        return;
    }
    let saved_errno = sys::get_errno();
    // SAFETY: slot `s` was handed to this thread alone by NEXT_SLOT.
    let rec = unsafe { slot(s) };
    record(rec, pc, sp, mask);
    let mut wait = Wait { gen, slot: s };
    // SAFETY: the context goes into this thread's own slot; `wait_body` gets a pointer to
    // `wait`, which outlives the call. A restarted thread returns RESUMED here, into this
    // frame, which the image preserved because the thread was suspended in the call.
    let r = unsafe {
        sys::capture_and_run(&mut rec.context, wait_body, (&mut wait as *mut Wait).cast())
    };
    if r == RESUMED {
        let release = RELEASE.load(Ordering::SeqCst);
        super::resume::thread_resumed(s);
        wait_for_release(gen, release);
    }
    sys::set_errno(saved_errno);
}

/// The control signal from the thread's own timer of `freeze::park_again_soon`: parks as
/// for the leader's signal, while the freeze that armed it is under way. Signal-safe.
pub(crate) fn park_again(ctx: *mut c_void) {
    if super::freeze::signalled_in_freeze(sys::gettid()) {
        park(ctx);
    }
}

/// A thread interrupted inside the mutex wrappers or glibc's mutex code must not park there:
/// a restart between a wrapper's look at the owner and glibc's would leave a mutex owned by
/// the thread's former id, and its next relock or unlock would wait forever or fail (the
/// same reason the leader's own checkpoint is put off there, `trigger`). Nor inside the
/// vDSO, whose code works only under the same kernel. Such a thread returns from the handler
/// and is signalled again by a timer of its own, or where it has none by the leader, which it
/// asks to; it leaves that code within microseconds. True when it put off parking.
/// Signal-safe.
fn put_off(pc: u64) -> bool {
    if !crate::trigger::no_stop_at(pc) {
        return false;
    }
    let tid = sys::gettid();
    match super::freeze::park_again_soon(tid) {
        super::freeze::Again::Armed => return true,
        super::freeze::Again::Enough => return false,
        super::freeze::Again::Ask => {}
    }
    if PUT_OFF_COUNT.fetch_add(1, Ordering::Relaxed) >= MAX_PUT_OFF {
        return false;
    }
    let noted = PUT_OFF.iter().any(|e| {
        e.compare_exchange(0, tid, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    });
    if noted {
        sys::futex_wake(&PARKED, 1);
    }
    noted
}

struct Wait {
    gen: u32,
    slot: usize,
}

/// Marks the slot ready and waits to be let go.
extern "C" fn wait_body(arg: *mut c_void) -> u64 {
    // SAFETY: `park` passes its live Wait.
    let w = unsafe { &*(arg as *const Wait) };
    let release = RELEASE.load(Ordering::SeqCst);
    READY[w.slot].store(w.gen, Ordering::SeqCst);
    let parked = PARKED.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
    if parked >= WAKE_AT.load(Ordering::SeqCst) {
        sys::futex_wake(&PARKED, 1);
    }
    wait_for_release(w.gen, release);
    0
}

/// Waits until the freeze `gen` ends (`RELEASE` moves on from `release`).
pub(super) fn wait_for_release(gen: u32, release: u32) {
    while RELEASE.load(Ordering::SeqCst) == release && FREEZE.load(Ordering::SeqCst) == gen {
        sys::futex_wait(&RELEASE, release, None);
    }
}

/// The calling thread's state, into its record. `pc`, `sp` and `mask` are where the signal
/// interrupted it.
fn record(rec: &mut ThreadRecord, pc: u64, sp: u64, mask: u64) {
    let fs = sys::fs_base();
    let tid = sys::gettid();
    rec.tid = tid;
    rec.flags = if crate::trigger::in_vdso(pc) {
        THREAD_IN_VDSO
    } else {
        0
    };
    if tid == sys::getpid() {
        rec.flags |= ckpt_image::THREAD_MAIN;
    }
    rec.fs_base = fs;
    rec.gs_base = 0;
    rec.sigmask = mask;
    rec.xcr0 = ckpt_image::xcr0();
    fill_common(rec, fs);
    rec.pending = sys::sigpending() & !OWN_SIGNALS.load(Ordering::Relaxed);
    (rec.pc, rec.sp) = (pc, sp);
}

/// What every thread records the same way, the leader too: alternate stack, robust list,
/// rseq area, glibc's tid field, name and CPU affinity. Signal-safe.
pub(crate) fn fill_common(rec: &mut ThreadRecord, fs: u64) {
    (rec.altstack_sp, rec.altstack_flags, rec.altstack_size) = sys::sigaltstack();
    (rec.robust_list_head, rec.robust_list_len) = sys::robust_list();
    let rseq_offset = RSEQ_OFFSET.load(Ordering::Relaxed);
    let glibc_rseq = (rseq_offset != u64::MAX).then(|| fs.wrapping_add(rseq_offset));
    (rec.rseq_area, rec.rseq_len, rec.rseq_sig) =
        crate::rseq::current(glibc_rseq).unwrap_or((0, 0, 0));
    let tid_offset = TID_OFFSET.load(Ordering::Relaxed);
    rec.clear_child_tid = if tid_offset != u64::MAX {
        fs + tid_offset
    } else {
        0
    };
    rec.comm = sys::thread_name();
    rec.affinity = sys::affinity().unwrap_or([0; 16]);
}
