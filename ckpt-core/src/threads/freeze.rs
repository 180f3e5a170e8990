//! The leader's side of a freeze: stop every other thread, let them go again.

use core::sync::atomic::{AtomicU32, Ordering};

use ckpt_image::{THREAD_LEADER, THREAD_MAIN};

use super::*;
use crate::config::CONTROL_SIGNAL;
use crate::sys;

/// A freeze fails when no thread has parked or ended for this long (a thread that blocks
/// the control signal, or runs a handler of the program's own that blocks it).
pub const TIMEOUT_MS: u64 = 500;

/// Why the other threads could not all be stopped.
#[derive(Clone, Copy, Debug)]
pub enum FreezeError {
    /// `/proc/self/task` could not be read.
    ListThreads(i32),
    /// More threads than the table holds.
    TooMany,
    /// glibc's thread control block could not be read at load: threads cannot be made again.
    UnknownThreadLayout,
    /// This thread blocks the control signal (past ckpt's wrappers), so it cannot stop.
    Blocks(u32),
    /// This thread did not stop (it may be running a handler that blocks the signal).
    DidNotStop(u32),
}

impl FreezeError {
    pub fn describe(self) -> (&'static str, i32) {
        match self {
            FreezeError::ListThreads(e) => ("cannot list the threads in /proc/self/task", e),
            FreezeError::TooMany => ("more threads than ckpt can stop (4096)", 0),
            FreezeError::UnknownThreadLayout => (
                "the C library's thread layout is unknown, so threads cannot be restored",
                0,
            ),
            FreezeError::Blocks(_) => (
                "blocks ckpt's control signal (63) past ckpt's wrappers (with a raw system \
                 call), so it cannot be stopped",
                0,
            ),
            FreezeError::DidNotStop(_) => (
                "did not stop within 500 ms (it may be running a signal handler that blocks \
                 ckpt's control signal)",
                0,
            ),
        }
    }

    /// The thread the error names (its message follows "thread TID").
    pub fn thread(self) -> Option<u32> {
        match self {
            FreezeError::Blocks(t) | FreezeError::DidNotStop(t) => Some(t),
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
    FIRST_SLOT.store(0, Ordering::Relaxed);
    for s in &SIGNALLED {
        s.store(0, Ordering::Relaxed);
    }
    FREEZE.store(gen, Ordering::SeqCst);
    let result = stop_all(gen, scratch);
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
    } else if let Some(main) = parked_slots(gen).find(|&s| record(s).tid == pid) {
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
        if new == 0 && settled(gen) {
            return Ok(());
        }
        wait_settled(gen)?;
    }
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

/// Marks the threads that have parked or ended; true when none is still waited for.
fn settled(gen: u32) -> bool {
    for s in parked_slots(gen) {
        let (i, known) = find(record(s).tid);
        if known {
            STATUS[i].store(SETTLED, Ordering::Relaxed);
        }
    }
    let mut all = true;
    for i in 0..SET {
        let tid = SIGNALLED[i].load(Ordering::Relaxed);
        if tid == 0 || STATUS[i].load(Ordering::Relaxed) != WAITING {
            continue;
        }
        if gone(tid) {
            STATUS[i].store(SETTLED, Ordering::Relaxed);
        } else {
            all = false;
        }
    }
    all
}

/// Whether thread `tid` has ended: it is gone, or a zombie (the main thread after
/// `pthread_exit`, while others run), which takes no signal any more.
fn gone(tid: u32) -> bool {
    if !sys::thread_alive(tid) {
        return true;
    }
    let mut path = crate::line::Line::<48>::new();
    path.push(b"/proc/self/task/")
        .push_decimal(tid as u64)
        .push(b"/stat\0");
    let mut buf = [0u8; 512];
    match sys::read_file(path.as_bytes(), &mut buf) {
        Ok(n) => matches!(
            ckpt_image::procfs::stat_field(&buf[..n], 3),
            Some(b"Z") | Some(b"X") | Some(b"x")
        ),
        Err(_) => true,
    }
}

/// Waits until every signalled thread has parked or ended; fails when none has for
/// `TIMEOUT_MS`.
fn wait_settled(gen: u32) -> Result<(), FreezeError> {
    let mut progress = PARKED.load(Ordering::SeqCst);
    let mut since = sys::monotonic_ns();
    loop {
        let seen = PARKED.load(Ordering::SeqCst);
        let now = sys::monotonic_ns();
        if seen != progress {
            (progress, since) = (seen, now);
        }
        if settled(gen) {
            return Ok(());
        }
        if now.saturating_sub(since) >= TIMEOUT_MS * 1_000_000 {
            return Err(straggler());
        }
        sys::futex_wait(&PARKED, seen, Some(1_000_000));
    }
}

/// The first thread still waited for, and why it does not stop.
fn straggler() -> FreezeError {
    for i in 0..SET {
        let tid = SIGNALLED[i].load(Ordering::Relaxed);
        if tid == 0 || STATUS[i].load(Ordering::Relaxed) != WAITING {
            continue;
        }
        let mut path = crate::line::Line::<48>::new();
        path.push(b"/proc/self/task/")
            .push_decimal(tid as u64)
            .push(b"/status\0");
        let mut buf = [0u8; 2048];
        let blocked = sys::read_file(path.as_bytes(), &mut buf)
            .ok()
            .and_then(|n| ckpt_image::procfs::status_mask(&buf[..n], b"SigBlk"))
            .unwrap_or(0);
        return if blocked & (1 << (CONTROL_SIGNAL - 1)) != 0 {
            FreezeError::Blocks(tid)
        } else {
            FreezeError::DidNotStop(tid)
        };
    }
    FreezeError::DidNotStop(0)
}

/// Ends the freeze: every parked thread goes on (returns from its handler). Signal-safe.
pub fn thaw() {
    FREEZE.store(0, Ordering::SeqCst);
    RELEASE.fetch_add(1, Ordering::SeqCst);
    sys::futex_wake(&RELEASE, i32::MAX);
}
