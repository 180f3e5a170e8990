//! The leader's side of a freeze: stop every other thread, let them go again.

use core::sync::atomic::{AtomicU32, Ordering};

use ckpt_image::{ThreadRecord, THREAD_IN_VDSO, THREAD_LEADER, THREAD_MAIN, THREAD_PTRACED};

use super::*;
use crate::config::CONTROL_SIGNAL;
use crate::sys;

/// Threads that have not parked when no thread has parked or ended for this long are
/// stopped from outside (`ptrace`): a thread that blocks the control signal (at once, see
/// `BLOCKED_MS`), or runs a handler of the program's own that blocks it.
pub const TIMEOUT_MS: u64 = 500;

/// Why the other threads could not all be stopped.
#[derive(Clone, Copy, Debug)]
pub enum FreezeError {
    /// `/proc/self/task` could not be read.
    ListThreads(i32),
    /// More threads than the table holds.
    TooMany,
    /// More threads block the control signal than ptrace stops in one checkpoint.
    TooManyBlocking,
    /// glibc's thread control block could not be read at load: threads cannot be made again.
    UnknownThreadLayout,
    /// This thread did not stop for the control signal (it blocks it, when `blocks`), and
    /// ptrace could not stop it either (errno).
    Unstoppable { tid: u32, blocks: bool, errno: i32 },
    /// This thread parked but was not seen asleep within `TIMEOUT_MS`.
    NotAsleep { tid: u32 },
}

impl FreezeError {
    pub fn describe(self) -> (&'static str, i32) {
        match self {
            FreezeError::ListThreads(e) => ("cannot list the threads in /proc/self/task", e),
            FreezeError::TooMany => ("more threads than ckpt can stop (4096)", 0),
            FreezeError::TooManyBlocking => (
                "more threads block ckpt's control signal (63) past ckpt's wrappers than ckpt \
                 can stop with ptrace (64)",
                0,
            ),
            FreezeError::UnknownThreadLayout => (
                "the C library's thread layout is unknown, so threads cannot be restored",
                0,
            ),
            FreezeError::Unstoppable {
                blocks: true,
                errno,
                ..
            } => (
                "blocks ckpt's control signal (63) past ckpt's wrappers, and ptrace could not \
                 stop it either",
                errno,
            ),
            FreezeError::Unstoppable { errno, .. } => (
                "did not stop for ckpt's control signal within 500 ms, and ptrace could not \
                 stop it either",
                errno,
            ),
            FreezeError::NotAsleep { .. } => (
                "stopped for ckpt's control signal but did not go to sleep within 500 ms",
                0,
            ),
        }
    }

    /// The thread the error names (its message follows "thread TID").
    pub fn thread(self) -> Option<u32> {
        match self {
            FreezeError::Unstoppable { tid, .. } | FreezeError::NotAsleep { tid } => Some(tid),
            _ => None,
        }
    }
}

/// Generation counter of freezes (never 0 for a freeze in progress).
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// The tids signalled in this freeze and what became of each: an open-addressing set owned
/// by the leader.
const SET: usize = 2 * MAX_THREADS;
static SIGNALLED: [AtomicU32; SET] = [const { AtomicU32::new(0) }; SET];
static STATUS: [AtomicU32; SET] = [const { AtomicU32::new(0) }; SET];
const WAITING: u32 = 1;
const SETTLED: u32 = 2;

/// The one-shot timer (its id + 1; 0: none) that brings back a thread of the set that put
/// off parking (`park_again_soon`), and how often it has, by the thread's index in the set.
/// Deleted and cleared by the leader once every thread has parked, before the program's
/// timers are saved.
static PARK_TIMERS: [AtomicU32; SET] = [const { AtomicU32::new(0) }; SET];
static PARK_TRIES: [AtomicU32; SET] = [const { AtomicU32::new(0) }; SET];

/// The control signal's value when it comes from a `PARK_TIMERS` timer.
pub(crate) const PARK_AGAIN_VALUE: i32 = 0x5041_524b;

/// A thread that put off parking is signalled again this long after, by a timer of its own:
/// it still holds its CPU then, almost always, and has left the code it was in (a call into
/// the vDSO takes well under a microsecond). Where the leader signalled it again instead,
/// each put-off cost the thread a turn of the whole run queue: with 128 threads spinning on
/// the clock over 2 CPUs, 6 s to stop them all, and as the leader's list of put-off threads
/// overflowed, some parked inside the vDSO after all.
const PARK_AGAIN_NS: u64 = 20_000;

/// Tries per thread, as for the leader's own checkpoint (`trigger::defer_inside_vdso`): 50 ms
/// of them; then it parks where it is.
const MAX_PARK_TRIES: u32 = 2500;

/// What a thread that must not park where it is does (`park_again_soon`).
pub(super) enum Again {
    /// Its own timer signals it again soon.
    Armed,
    /// It has tried long enough: it parks where it is.
    Enough,
    /// It has no timer (it is not one the leader signalled, or none can be made): the leader
    /// signals it again.
    Ask,
}

/// Arms the calling thread's own timer to signal it again in `PARK_AGAIN_NS`. Signal-safe;
/// called from the thread's handler.
pub(super) fn park_again_soon(tid: u32) -> Again {
    let (i, known) = find(tid);
    if !known {
        return Again::Ask;
    }
    if PARK_TRIES[i].fetch_add(1, Ordering::Relaxed) >= MAX_PARK_TRIES {
        return Again::Enough;
    }
    let saved_errno = sys::get_errno();
    let mut id = PARK_TIMERS[i].load(Ordering::Relaxed) as i32 - 1;
    if id < 0 {
        id = sys::timer_create_for_thread(CONTROL_SIGNAL, tid, PARK_AGAIN_VALUE).unwrap_or(-1);
        if id >= 0 {
            PARK_TIMERS[i].store(id as u32 + 1, Ordering::Relaxed);
        }
    }
    let armed = id >= 0 && sys::timer_fire_in(id, PARK_AGAIN_NS).is_ok();
    sys::set_errno(saved_errno);
    if armed {
        Again::Armed
    } else {
        Again::Ask
    }
}

/// Whether thread `tid` is one the freeze under way signalled (a `PARK_TIMERS` signal for
/// any other, or after the freeze, is stale or forged). Signal-safe.
pub(super) fn signalled_in_freeze(tid: u32) -> bool {
    FREEZE.load(Ordering::SeqCst) != 0 && find(tid).1
}

/// Deletes the threads' `PARK_TIMERS` (they have fired: every thread has parked or ended)
/// and clears their tries.
fn end_park_timers() {
    for (t, tries) in PARK_TIMERS.iter().zip(&PARK_TRIES) {
        let id = t.swap(0, Ordering::Relaxed);
        if id != 0 {
            sys::timer_delete(id as i32 - 1);
        }
        tries.store(0, Ordering::Relaxed);
    }
}

fn find(tid: u32) -> (usize, bool) {
    let mut i = (tid as usize).wrapping_mul(0x9e37_79b9) % SET;
    loop {
        match SIGNALLED[i].load(Ordering::Relaxed) {
            0 => return (i, false),
            t if t == tid => return (i, true),
            _ => i = (i + 1) % SET,
        }
    }
}

/// Stops every other thread of the process; on success every one has parked, with its
/// record in the thread table, and the leader's record (slot 0) is marked leader (and main,
/// when it is). `scratch` receives directory listings. On failure the threads that stopped
/// are let go again. Signal-safe; the caller holds the checkpoint path.
pub fn stop_others(scratch: &mut [u8]) -> Result<(), FreezeError> {
    let gen = loop {
        let g = GENERATION.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if g != 0 {
            break g;
        }
    };
    NEXT_SLOT.store(1, Ordering::SeqCst);
    PARKED.store(0, Ordering::SeqCst);
    WAKE_AT.store(0, Ordering::SeqCst);
    PUT_OFF_COUNT.store(0, Ordering::SeqCst);
    for e in &PUT_OFF {
        e.store(0, Ordering::SeqCst);
    }
    FIRST_SLOT.store(0, Ordering::Relaxed);
    super::ptrace::reset();
    for s in &SIGNALLED {
        s.store(0, Ordering::Relaxed);
    }
    FREEZE.store(gen, Ordering::SeqCst);
    let result = stop_all(gen, scratch);
    end_park_timers();
    if result.is_err() {
        thaw();
        return result;
    }
    // The record the restart resumes first: the main thread's, when it was alive.
    let (pid, me) = (sys::getpid(), sys::gettid());
    let leader = super::leader();
    leader.flags = THREAD_LEADER;
    if me == pid {
        leader.flags |= THREAD_MAIN;
    } else if let Some(main) =
        parked_slots(gen).find(|&s| record(s).tid == pid && record(s).flags & THREAD_PTRACED == 0)
    {
        FIRST_SLOT.store(main as u32, Ordering::Relaxed);
    }
    Ok(())
}

fn stop_all(gen: u32, scratch: &mut [u8]) -> Result<(), FreezeError> {
    let me = sys::gettid();
    let mut signalled = 0usize;
    loop {
        let new = signal_new(me, scratch, &mut signalled)?;
        if NEXT_SLOT.load(Ordering::SeqCst) as usize > MAX_THREADS {
            return Err(FreezeError::TooMany);
        }
        if new == 0 && settled(gen, false) == 0 {
            return Ok(());
        }
        if !wait_settled(gen, scratch) {
            stop_from_outside(gen, scratch)?;
        }
    }
}

/// The "slot" of a thread the tracer stopped that is not in the table (it had parked).
const NOT_IN_TABLE: usize = u32::MAX as usize;

/// Stops the threads that did not park with ptrace (`ptrace`), each into a slot of its own
/// marked `THREAD_PTRACED`.
fn stop_from_outside(gen: u32, scratch: &mut [u8]) -> Result<(), FreezeError> {
    let mut tids = [0u32; super::ptrace::MAX_CAPTURED];
    let mut n = 0;
    for (_, tid) in waited_for() {
        if n == tids.len() {
            return Err(FreezeError::TooManyBlocking);
        }
        tids[n] = tid;
        n += 1;
    }
    let mut full = false;
    let captured = super::ptrace::capture(&tids[..n], |k, st| {
        // A thread that parked after it was last looked at, before the tracer stopped it
        // (under load the window is wide), is in the table already, asleep in the handler:
        // a second record of it would make the restart run it twice, on one stack.
        if parked_slots(gen).any(|s| record(s).tid == st.tid) {
            super::ptrace::assign(k, NOT_IN_TABLE);
            return;
        }
        let s = NEXT_SLOT.fetch_add(1, Ordering::SeqCst) as usize;
        if s >= MAX_THREADS {
            full = true;
            return;
        }
        // SAFETY: slot `s` was handed to the leader alone by NEXT_SLOT.
        let rec = unsafe { slot(s) };
        fill_from_outside(rec, st, scratch);
        super::ptrace::assign(k, s);
        READY[s].store(gen, Ordering::SeqCst);
        let (i, known) = find(st.tid);
        if known {
            STATUS[i].store(SETTLED, Ordering::Relaxed);
        }
    });
    if full {
        return Err(FreezeError::TooMany);
    }
    // (A thread that ended meanwhile is found gone by the next `settled`.)
    captured.map_err(|f| match f.errno {
        libc::E2BIG => FreezeError::TooManyBlocking,
        errno => unstoppable(f.tid, errno, scratch),
    })
}

fn unstoppable(tid: u32, errno: i32, scratch: &mut [u8]) -> FreezeError {
    let blocks = blocks_control_signal(tid, scratch);
    FreezeError::Unstoppable { tid, blocks, errno }
}

/// Whether thread `tid` blocks ckpt's control signal (per its `SigBlk`).
fn blocks_control_signal(tid: u32, scratch: &mut [u8]) -> bool {
    task_status(tid, b"SigBlk", scratch).unwrap_or(0) & (1 << (CONTROL_SIGNAL - 1)) != 0
}

/// The path of file `name` (NUL-terminated) of thread `tid` in `/proc/self/task`.
fn task_file(tid: u32, name: &[u8]) -> crate::line::Line<48> {
    let mut path = crate::line::Line::<48>::new();
    path.push(b"/proc/self/task/")
        .push_decimal(tid as u64)
        .push(b"/")
        .push(name);
    path
}

/// A mask line (`SigBlk`, `SigPnd`) of thread `tid`'s status.
fn task_status(tid: u32, key: &[u8], scratch: &mut [u8]) -> Option<u64> {
    let n = sys::read_file(task_file(tid, b"status\0").as_bytes(), scratch).ok()?;
    ckpt_image::procfs::status_mask(&scratch[..n], key)
}

/// The record of a thread stopped with ptrace, from what the tracer read and what the
/// kernel tells of it by its id.
fn fill_from_outside(rec: &mut ThreadRecord, st: &super::ptrace::Captured, scratch: &mut [u8]) {
    use super::ptrace::reg::*;
    let tid = st.tid;
    *rec = ThreadRecord::default();
    rec.tid = tid;
    rec.flags = THREAD_PTRACED;
    if crate::trigger::in_vdso(st.regs[RIP]) {
        rec.flags |= THREAD_IN_VDSO;
    }
    rec.fs_base = st.regs[FS_BASE];
    rec.gs_base = st.regs[GS_BASE];
    rec.sigmask = task_status(tid, b"SigBlk", scratch).unwrap_or(0);
    let stopped_with = match st.signal {
        sig @ 1..=64 => 1u64 << (sig - 1),
        _ => 0,
    };
    rec.pending = (task_status(tid, b"SigPnd", scratch).unwrap_or(0) | stopped_with)
        & !OWN_SIGNALS.load(Ordering::Relaxed);
    rec.altstack_flags = 2; // SS_DISABLE: ptrace cannot read it
    (rec.rseq_area, rec.rseq_len, rec.rseq_sig) =
        (st.rseq[0], st.rseq[1] as u32, st.rseq[2] as u32);
    rec.xcr0 = ckpt_image::xcr0();
    (rec.robust_list_head, rec.robust_list_len) = sys::robust_list_of(tid);
    let tid_offset = TID_OFFSET.load(Ordering::Relaxed);
    rec.clear_child_tid = rec.fs_base.wrapping_add(tid_offset);
    (rec.pc, rec.sp) = (st.regs[RIP], st.regs[RSP]);
    if let Ok(n) = sys::read_file(task_file(tid, b"comm\0").as_bytes(), &mut rec.comm) {
        let end = rec.comm[..n].iter().position(|&c| c == b'\n').unwrap_or(n);
        rec.comm[end..].fill(0);
    }
    rec.affinity = sys::affinity_of(tid).unwrap_or([0; 16]);
}

/// Signals every listed thread not signalled yet; returns how many.
fn signal_new(me: u32, scratch: &mut [u8], signalled: &mut usize) -> Result<usize, FreezeError> {
    if crate::threads::TID_OFFSET.load(Ordering::Relaxed) == u64::MAX {
        // Without glibc's layout a second thread cannot be made again: refuse if there is one.
        return match count_listed(scratch)? {
            n if n > 1 => Err(FreezeError::UnknownThreadLayout),
            _ => Ok(0),
        };
    }
    let fd = sys::open(
        b"/proc/self/task\0",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .map_err(FreezeError::ListThreads)?;
    let mut new = 0;
    let result = loop {
        let n = match sys::getdents(fd, scratch) {
            Ok(0) => break Ok(new),
            Ok(n) => n,
            Err(e) => break Err(FreezeError::ListThreads(e)),
        };
        for name in sys::dirent_names(&scratch[..n]) {
            let Some(tid) = ckpt_image::procfs::parse_dec(name) else {
                continue;
            };
            let tid = tid as u32;
            if tid == me || tid == 0 {
                continue;
            }
            let (i, known) = find(tid);
            if known {
                continue;
            }
            if *signalled + 1 >= MAX_THREADS {
                sys::close(fd);
                return Err(FreezeError::TooMany);
            }
            SIGNALLED[i].store(tid, Ordering::Relaxed);
            *signalled += 1;
            new += 1;
            let status = match sys::tgkill(tid, CONTROL_SIGNAL) {
                Ok(()) => WAITING,
                // Ended since it was listed.
                Err(_) => SETTLED,
            };
            STATUS[i].store(status, Ordering::Relaxed);
        }
    };
    sys::close(fd);
    result
}

fn count_listed(scratch: &mut [u8]) -> Result<usize, FreezeError> {
    let fd = sys::open(
        b"/proc/self/task\0",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .map_err(FreezeError::ListThreads)?;
    let mut count = 0;
    let result = loop {
        match sys::getdents(fd, scratch) {
            Ok(0) => break Ok(count),
            Ok(n) => {
                count += sys::dirent_names(&scratch[..n])
                    .filter(|n| n.first().is_some_and(u8::is_ascii_digit))
                    .count()
            }
            Err(e) => break Err(FreezeError::ListThreads(e)),
        }
    };
    sys::close(fd);
    result
}

/// Marks the threads that have parked or ended; returns how many are still waited for. Whether
/// a thread has ended without parking is looked up only when `look_for_ended` (a `/proc`
/// read for each thread waited for: while threads are still parking, the leader leaves the
/// CPUs to them).
fn settled(gen: u32, look_for_ended: bool) -> usize {
    for s in parked_slots(gen) {
        let (i, known) = find(record(s).tid);
        if known {
            STATUS[i].store(SETTLED, Ordering::Relaxed);
        }
    }
    let mut waiting = 0;
    for (i, tid) in waited_for() {
        if look_for_ended && gone(tid) {
            STATUS[i].store(SETTLED, Ordering::Relaxed);
        } else {
            waiting += 1;
        }
    }
    waiting
}

/// Whether thread `tid` has ended: it is gone, or a zombie (the main thread after
/// `pthread_exit`, while others run), which takes no signal any more.
fn gone(tid: u32) -> bool {
    if !sys::thread_alive(tid) {
        return true;
    }
    let mut buf = [0u8; 512];
    match sys::read_file(task_file(tid, b"stat\0").as_bytes(), &mut buf) {
        Ok(n) => matches!(
            ckpt_image::procfs::stat_field(&buf[..n], 3),
            Some(b"Z") | Some(b"X") | Some(b"x")
        ),
        Err(_) => true,
    }
}

/// Waits until every signalled thread has parked or ended; false when the rest must be
/// stopped from outside: none has parked or ended for `TIMEOUT_MS`, or for `BLOCKED_MS`
/// when every one left blocks the signal (it would wait in vain).
fn wait_settled(gen: u32, scratch: &mut [u8]) -> bool {
    let mut progress = PARKED.load(Ordering::SeqCst);
    let mut since = sys::monotonic_ns();
    let mut looked = false;
    loop {
        signal_put_off();
        let seen = PARKED.load(Ordering::SeqCst);
        let now = sys::monotonic_ns();
        if seen != progress {
            (progress, since, looked) = (seen, now, false);
        }
        let quiet = now.saturating_sub(since);
        let waiting = settled(gen, quiet >= LOOK_FOR_ENDED_NS);
        if waiting == 0 {
            return true;
        }
        if quiet >= TIMEOUT_MS * 1_000_000 {
            return false;
        }
        if quiet >= BLOCKED_MS * 1_000_000 && !looked {
            looked = true;
            if all_waiting_block(scratch) {
                return false;
            }
        }
        // Woken when all of them have parked (`seen` may be a few behind: then earlier),
        // or after a millisecond to look again.
        WAKE_AT.store(seen.wrapping_add(waiting as u32), Ordering::SeqCst);
        sys::futex_wait(&PARKED, seen, Some(1_000_000));
    }
}

/// Waits until every parked thread sleeps on `RELEASE`. A thread marks its slot ready just
/// before it goes to sleep, and until it does it still writes: its stack (the calls into the
/// futex), `PARKED`, `errno`, and the kernel its rseq area when it was preempted meanwhile.
/// A thread preempted there can run again at any moment of the write, and memory that
/// changes under the writer gives a file whose checksums disagree with its contents (seen
/// under load: "checkpoint payload is damaged" from `ckpt verify`). Costs a read of a small
/// `/proc` file per thread; where that cannot be read, the thread's state `S` in its `stat`
/// stands for it. Fails after `TIMEOUT_MS` without one
/// more thread asleep.
///
/// Called before this process writes memory into an image itself; not when a forked child
/// writes it (the fork's copy of memory is one instant's, whatever a parker does after), so
/// the pause of `CKPT_CONTINUE` does not pay for it. (On failure the checkpoint lets the
/// threads go, as after any failure.)
pub fn wait_asleep(scratch: &mut [u8]) -> Result<(), FreezeError> {
    match FREEZE.load(Ordering::SeqCst) {
        0 => Ok(()),
        gen => wait_asleep_in(gen, scratch),
    }
}

fn wait_asleep_in(gen: u32, scratch: &mut [u8]) -> Result<(), FreezeError> {
    let release = RELEASE.as_ptr() as u64;
    let mut since = sys::monotonic_ns();
    for s in parked_slots(gen) {
        let rec = record(s);
        if rec.flags & THREAD_PTRACED != 0 {
            continue;
        }
        let mut tries = 0u32;
        while !asleep_on(rec.tid, release, scratch) {
            if sys::monotonic_ns().saturating_sub(since) >= TIMEOUT_MS * 1_000_000 {
                return Err(FreezeError::NotAsleep { tid: rec.tid });
            }
            // Its CPU goes to the thread (it is one system call away from sleeping).
            tries += 1;
            if tries < 8 {
                sys::sched_yield();
            } else {
                sys::sleep_ns(50_000);
            }
        }
        since = sys::monotonic_ns();
    }
    Ok(())
}

/// Whether parked thread `tid` sleeps in the futex wait on `release` (or has ended).
fn asleep_on(tid: u32, release: u64, scratch: &mut [u8]) -> bool {
    match sys::read_file(task_file(tid, b"syscall\0").as_bytes(), scratch) {
        Ok(n) => {
            ckpt_image::procfs::blocked_syscall(&scratch[..n])
                == Some((libc::SYS_futex as u64, release))
        }
        Err(libc::ENOENT) | Err(libc::ESRCH) => true,
        Err(_) => match sys::read_file(task_file(tid, b"stat\0").as_bytes(), scratch) {
            Ok(n) => ckpt_image::procfs::stat_field(&scratch[..n], 3) == Some(b"S"),
            Err(_) => true,
        },
    }
}

/// Signals again the threads that put off parking (`park::put_off`), after a moment for
/// them to leave the code they were in.
fn signal_put_off() {
    let mut any = false;
    for e in &PUT_OFF {
        let tid = e.swap(0, Ordering::SeqCst);
        if tid != 0 {
            if !any {
                sys::sleep_ns(20_000);
                any = true;
            }
            // A thread that has ended meanwhile is found by `settled`.
            let _ = sys::tgkill(tid, CONTROL_SIGNAL);
        }
    }
}

/// How long without a thread parking before the freeze looks whether the threads waited for
/// have ended (exited, or a zombie main thread).
const LOOK_FOR_ENDED_NS: u64 = 1_000_000;

/// How long the freeze waits before it looks whether the threads left block the signal.
const BLOCKED_MS: u64 = 10;

/// Whether every thread still waited for blocks the control signal.
fn all_waiting_block(scratch: &mut [u8]) -> bool {
    waited_for().all(|(_, tid)| blocks_control_signal(tid, scratch))
}

/// The threads signalled and still waited for: (their index in the set, their id).
fn waited_for() -> impl Iterator<Item = (usize, u32)> {
    (0..SET).filter_map(|i| {
        let tid = SIGNALLED[i].load(Ordering::Relaxed);
        (tid != 0 && STATUS[i].load(Ordering::Relaxed) == WAITING).then_some((i, tid))
    })
}

/// Ends the freeze: every parked thread goes on (returns from its handler). Signal-safe.
pub fn thaw() {
    FREEZE.store(0, Ordering::SeqCst);
    RELEASE.fetch_add(1, Ordering::SeqCst);
    sys::futex_wake(&RELEASE, i32::MAX);
    super::ptrace::release();
}
