//! A restarted process's threads: the first one makes the others, each puts its own kernel
//! state back, and the leader waits for all of them.

use core::sync::atomic::Ordering;

use super::*;
use crate::line::Line;
use crate::sys;

/// How the restart makes a thread again: as `pthread_create` does, the kernel writing the new
/// thread id into glibc's control block (`CLONE_PARENT_SETTID`) before the thread runs, and
/// clearing it when the thread ends (`CLONE_CHILD_CLEARTID`: `pthread_join` waits for that).
const CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

/// In a restarted process, each thread as it comes back in its capture point (`s`: its
/// slot). The first one (the one the stub resumed) makes all the others first. Then the
/// thread takes back its kernel state and says it is back. Signal-safe.
pub(crate) fn thread_resumed(s: usize) {
    // SAFETY: the thread's own slot.
    let rec = unsafe { slot(s) };
    if s == FIRST_SLOT.load(Ordering::SeqCst) as usize {
        RESUMED.store(0, Ordering::SeqCst);
        RESUME_COUNT.store(frozen_slots().count() as u32, Ordering::SeqCst);
        // This thread is the process's first: glibc's tid field gets its id from here, and
        // the kernel clears it when the thread ends.
        if rec.clear_child_tid != 0 {
            // SAFETY: glibc's tid field in this thread's restored control block.
            unsafe { sys::store_u32(rec.clear_child_tid, sys::gettid()) };
            sys::set_tid_address(rec.clear_child_tid);
        }
        make_others(s);
    }
    if rec.robust_list_head != 0 {
        sys::set_robust_list(rec.robust_list_head, rec.robust_list_len);
    }
    if rec.rseq_len != 0 {
        let _ = sys::rseq_register(rec.rseq_area, rec.rseq_len, rec.rseq_sig);
    }
    if rec.comm[0] != 0 {
        sys::set_thread_name(&rec.comm);
    }
    if rec.affinity.iter().any(|&w| w != 0) {
        // Best effort: the CPUs may not exist on this machine.
        let _ = sys::set_affinity(&rec.affinity);
    }
    // Signals pending for this thread alone come back pending (one instance each); they are
    // delivered when its handler returns. (The leader's go with the process's, some with
    // their information: `restore`.)
    let pending = match s {
        0 => 0,
        _ => rec.pending & !OWN_SIGNALS.load(Ordering::Relaxed),
    };
    for sig in 1..=64 {
        if pending & (1u64 << (sig - 1)) != 0 {
            sys::raise_in_thread(sig);
        }
    }
    NEW_TID[s].store(sys::gettid(), Ordering::SeqCst);
    let back = RESUMED.fetch_add(1, Ordering::SeqCst) + 1;
    if back >= RESUME_COUNT.load(Ordering::SeqCst) {
        sys::futex_wake(&RESUMED, 1);
    }
}

/// Makes every frozen thread but the first (slot `first`) again, each resuming in its own
/// context. A thread that cannot be made fails the restart: the program would go on without
/// it. Signal-safe.
fn make_others(first: usize) {
    for s in frozen_slots().filter(|&s| s != first) {
        // SAFETY: a frozen thread's slot, read by the one thread running.
        let rec = unsafe { slot(s) };
        let r = match super::ptrace::of_slot(s) {
            // SAFETY: the record's context was saved by capture_and_run in that thread,
            // whose stack the image restored; tls and the tid field are that thread's own.
            None => unsafe {
                sys::clone_into_context(CLONE_FLAGS, &rec.context, rec.fs_base, rec.clear_child_tid)
            },
            // A thread stopped with ptrace: back through a signal frame built on its stack.
            Some(st) => {
                // SAFETY: the thread's stack is restored and unused until it runs.
                let (uc, stack) = unsafe { super::ptrace::build_frame(st, rec.sigmask) };
                // SAFETY: the frame was just built from the thread's own state; the stack
                // below it is unused; tls and the tid field are that thread's own.
                unsafe {
                    sys::clone_onto_frame(
                        CLONE_FLAGS,
                        stack,
                        rec.fs_base,
                        rec.clear_child_tid,
                        s as u64,
                        uc,
                        resumed_from_outside,
                    )
                }
            }
        };
        if r < 0 {
            let mut msg = Line::<160>::new();
            msg.push(b"ckpt restart: cannot make thread ")
                .push_decimal(rec.tid as u64)
                .push(b" again: ")
                .push(crate::report::errno_name(-r as i32).as_bytes())
                .push(b" (errno ")
                .push_decimal((-r) as u64)
                .push(b")\n");
            sys::write_stderr(msg.as_bytes());
            sys::exit_now(ckpt_image::ExitStatus::RestoreFailed.code());
        }
    }
}

/// The leader, back: waits until every thread is, then maps their old ids to the new ones.
/// Signal-safe.
pub(crate) fn all_back(scratch: &mut [u8]) {
    super::ptrace::forget_tracers();
    let count = frozen_slots().count() as u32;
    loop {
        let back = RESUMED.load(Ordering::SeqCst);
        if back >= count {
            break;
        }
        sys::futex_wait(&RESUMED, back, Some(10_000_000));
    }
    tids::restart(
        frozen_slots().map(|s| {
            // SAFETY: every thread is back and waits; its slot no longer changes.
            (unsafe { slot(s) }.tid, NEW_TID[s].load(Ordering::SeqCst))
        }),
        scratch,
    );
}

/// The first code of a thread stopped with ptrace, made again (`slot`: its record): it takes
/// back its kernel state like any thread, waits for the leader, and returns to
/// `clone_onto_frame`, which returns it to its registers. Signal-safe.
extern "C" fn resumed_from_outside(slot: u64) {
    let (gen, release) = (
        FREEZE.load(Ordering::SeqCst),
        RELEASE.load(Ordering::SeqCst),
    );
    thread_resumed(slot as usize);
    super::park::wait_for_release(gen, release);
}
