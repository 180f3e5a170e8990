//! What a restarted process puts back itself once the stub has jumped into the capture
//! point: the stub's memory released, glibc's cached thread id, the robust list and rseq,
//! process-wide state, timers, pending signals, and the library's own timers. Signal-safe.

use crate::arena::Arena;
use crate::checkpoint::State;
use crate::sys;
use crate::trigger::note_vdso;

/// Repairs, in a restarted process, what the kernel does not carry over: the stub's memory
/// is released, glibc's cached thread id, the robust futex list and rseq are registered for
/// the new thread. Signal-safe.
pub(crate) fn after_restart(state: &mut State, arena: &mut Arena) {
    // SAFETY: the stub's reservation, which nothing references once it has jumped here.
    unsafe { sys::munmap(state.stub.base, state.stub.reserve) };
    let t = &arena.thread;
    if let Some(off) = state.tid_offset {
        let at = t.fs_base + off;
        crate::mutex::remember_old_tid(t.tid);
        // SAFETY: glibc's cached thread id in this thread's restored control block.
        unsafe { sys::store_u32(at, sys::gettid()) };
        sys::set_tid_address(at);
    }
    if t.robust_list_head != 0 {
        sys::set_robust_list(t.robust_list_head, t.robust_list_len);
    }
    if t.rseq_len != 0 {
        let _ = sys::rseq_register(t.rseq_area, t.rseq_len, t.rseq_sig);
    }
    let p = &state.process;
    p.restore(arena.misc);
    for (which, &(interval, value)) in p.itimers.iter().enumerate() {
        if value != 0 {
            sys::set_itimer(which, interval, value);
        }
    }
    // Former pids and tids name this process now (CPU-time clock ids); the program's POSIX
    // timers come back with their ids before the library makes its own (below).
    crate::clocks::note_restart();
    crate::timers::restore();
    // Signals that were pending come back pending (one instance each); not ckpt's own,
    // which would checkpoint again at once.
    for sig in 1..=64 {
        let ours = sig == state.config.asyncsig || sig == crate::config::CONTROL_SIGNAL;
        if p.pending & (1u64 << (sig - 1)) != 0 && !ours {
            sys::raise_in_thread(sig);
        }
    }
    // Kernel timers do not survive; the periodic one is created again for this process.
    state.periodic_timer = None;
    // The original process's writer child is not this process's (nor is the socket it
    // answered on: that descriptor number may be the program's own now).
    state.writer = None;
    state.pending = None;
    note_vdso(arena);
    if state.config.msperiod != 0 {
        let _ = crate::trigger::arm_periodic(state);
    }
}
