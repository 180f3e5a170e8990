//! What a restarted process puts back itself once every thread is back (`threads::resume`
//! made them again, each with its own kernel state): the stub's memory released, the
//! process-wide state, the open descriptors, timers, pending signals, and the library's own timers. Run by the
//! leader while the other threads wait. Signal-safe.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::arena::Arena;
use crate::checkpoint::State;
use crate::sys;
use crate::trigger::note_vdso;

/// The options of the restart's own environment (`ckpt_image::RESTART_*`), written here by
/// the restart stub (the image header gives it this address).
pub static RESTART_OPTIONS: AtomicU64 = AtomicU64::new(0);

/// The restart's `CKPT_RELOCATE`, NUL-terminated, written here by the restart stub (the
/// image header gives it this address); empty in the process the checkpoint was taken of.
pub static RESTART_RELOCATE: [AtomicU8; ckpt_image::relocate::RELOCATE_MAX] =
    [const { AtomicU8::new(0) }; ckpt_image::relocate::RELOCATE_MAX];

/// The restart's `CKPT_RELOCATE` value, copied into `buf`. Signal-safe.
pub fn relocation(buf: &mut [u8; ckpt_image::relocate::RELOCATE_MAX]) -> &[u8] {
    let mut n = 0;
    for (b, c) in buf.iter_mut().zip(&RESTART_RELOCATE) {
        *b = c.load(Ordering::Relaxed);
        if *b == 0 {
            break;
        }
        n += 1;
    }
    &buf[..n.min(buf.len() - 1)]
}

/// Repairs, in a restarted process, what the kernel does not carry over. Signal-safe.
pub(crate) fn after_restart(state: &mut State, arena: &mut Arena) {
    // SAFETY: the stub's reservation, which nothing references once it has jumped here (the
    // first thread made the others before it came back).
    unsafe { sys::munmap(state.stub.base, state.stub.reserve) };
    crate::mutex::note_restart();
    crate::mutex::adopt_loader_locks();
    crate::rseq::note_restart();
    let p = &state.process;
    p.restore(arena.misc);
    // The program's descriptors, once its resource limits (RLIMIT_NOFILE) are back: every
    // one checked before any is changed.
    let options = RESTART_OPTIONS.load(Ordering::Relaxed);
    let files = crate::files::RestoreOptions {
        strict: state.config.strict_files || options & ckpt_image::RESTART_STRICT_FILES != 0,
        stdio: options & ckpt_image::RESTART_RESTORE_STDIO != 0,
    };
    crate::files::restore(arena, p.files, files);
    for (which, &(interval, value)) in p.itimers.iter().enumerate() {
        if value != 0 {
            sys::set_itimer(which, interval, value);
        }
    }
    // Former pids and tids name this process now (CPU-time clock ids); the program's POSIX
    // timers come back with their ids before the library makes its own (below).
    crate::clocks::note_restart();
    crate::timers::restore();
    // A restored terminal: SIGWINCH a moment after the threads go on (from a timer of the
    // library's, made once the program's have their ids back).
    crate::files::send_window_change();
    // Signals that were pending come back pending (one instance each): the process's to the
    // process, this thread's to this thread (the other threads raised their own); not ckpt's
    // own, which would checkpoint again at once.
    for sig in 1..=64 {
        let ours = sig == state.config.asyncsig || sig == crate::config::CONTROL_SIGNAL;
        let bit = 1u64 << (sig - 1);
        if p.pending & bit != 0 && !ours {
            if p.shared_pending & bit != 0 {
                sys::raise_in_process(sig);
            } else {
                sys::raise_in_thread(sig);
            }
        }
    }
    // Kernel timers do not survive; the periodic one is created again for this process.
    state.periodic_timer = None;
    // The original process's writer child is not this process's (nor is the socket it
    // answered on: that descriptor number may be the program's own now).
    state.writer = None;
    state.pending = None;
    // Nothing was tracked in this process yet: its first checkpoint is full.
    state.incremental.after_restart();
    note_vdso(arena);
    if state.config.msperiod != 0 {
        let _ = crate::trigger::arm_periodic(state);
    }
}
