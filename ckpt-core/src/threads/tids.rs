//! Former thread ids of this process and what each is now, across any number of restarts.
//!
//! glibc keeps thread ids in memory where the library cannot find them all: the owner of an
//! error-checking, recursive, robust or priority-inheritance mutex; the target of a
//! `SIGEV_THREAD_ID` timer; a thread's CPU-time clock id. After a restart every thread has
//! a new id, so the library maps each former id to the thread's id now, and the wrappers
//! that meet one (`mutex`, `clocks`, `timers`) translate it.
//!
//! A fixed open-addressing table: looked up lock-free by any thread at any time; changed
//! only by the leader of a restart while every other thread waits (`restart`). When a
//! thread of the restarted process happens to get an id that an earlier thread had, the id
//! means the live thread from then on: its entry is dropped.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::sys;

const CAP: usize = 16384;
const EMPTY: u32 = 0;
const TOMB: u32 = u32::MAX;

static KEYS: [AtomicU32; CAP] = [const { AtomicU32::new(EMPTY) }; CAP];
static VALUES: [AtomicU32; CAP] = [const { AtomicU32::new(0) }; CAP];

fn home(tid: u32) -> usize {
    ((tid as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 50) as usize & (CAP - 1)
}

/// What former thread id `old` of this process is now, if it is one. Signal-safe, lock-free.
#[inline]
pub fn current(old: u32) -> Option<u32> {
    if old == EMPTY || old == TOMB {
        return None;
    }
    let mut i = home(old);
    for _ in 0..CAP {
        match KEYS[i].load(Ordering::Acquire) {
            EMPTY => return None,
            k if k == old => return Some(VALUES[i].load(Ordering::Acquire)),
            _ => i = (i + 1) & (CAP - 1),
        }
    }
    None
}

fn slot_of(tid: u32) -> Option<usize> {
    let mut i = home(tid);
    for _ in 0..CAP {
        match KEYS[i].load(Ordering::Relaxed) {
            EMPTY => return None,
            k if k == tid => return Some(i),
            _ => i = (i + 1) & (CAP - 1),
        }
    }
    None
}

fn insert(old: u32, new: u32) -> bool {
    if let Some(i) = slot_of(old) {
        VALUES[i].store(new, Ordering::Release);
        return true;
    }
    let mut i = home(old);
    for _ in 0..CAP {
        let k = KEYS[i].load(Ordering::Relaxed);
        if k == EMPTY || k == TOMB {
            VALUES[i].store(new, Ordering::Release);
            KEYS[i].store(old, Ordering::Release);
            return true;
        }
        i = (i + 1) & (CAP - 1);
    }
    false
}

/// Records a restart: `pairs` are (id before, id now) of every thread. Earlier former ids
/// of a thread follow it to its new id; an id a live thread has now stops naming a former
/// thread. `scratch` (at least 8 bytes per thread, 8-byte aligned) holds the pairs sorted.
/// Run by the restart's leader while every other thread waits. Signal-safe.
pub fn restart(pairs: impl Iterator<Item = (u32, u32)>, scratch: &mut [u8]) {
    let Some(sorted) = ckpt_image::records_mut::<u64>(scratch) else {
        return;
    };
    let mut n = 0;
    for (old, new) in pairs {
        if n == sorted.len() {
            break;
        }
        sorted[n] = (old as u64) << 32 | new as u64;
        n += 1;
    }
    let sorted = &mut sorted[..n];
    sorted.sort_unstable();
    let now_of = |old: u32| -> Option<u32> {
        sorted
            .binary_search_by_key(&old, |p| (p >> 32) as u32)
            .ok()
            .map(|i| sorted[i] as u32)
    };
    // Former ids of these threads from earlier restarts: now their new ids.
    for i in 0..CAP {
        let k = KEYS[i].load(Ordering::Relaxed);
        if k == EMPTY || k == TOMB {
            continue;
        }
        if let Some(new) = now_of(VALUES[i].load(Ordering::Relaxed)) {
            VALUES[i].store(new, Ordering::Release);
        }
    }
    let mut lost = false;
    for &p in sorted.iter() {
        let (old, new) = ((p >> 32) as u32, p as u32);
        if old != new && old != EMPTY && old != TOMB {
            lost |= !insert(old, new);
        }
    }
    // An id a thread has now names that thread, not a former one (should a former thread
    // have had it too, its old locks are the ambiguous ones, not the live thread's).
    for &p in sorted.iter() {
        if let Some(i) = slot_of(p as u32) {
            KEYS[i].store(TOMB, Ordering::Release);
        }
    }
    if lost {
        sys::write_stderr(
            b"ckpt: too many former thread ids to remember; mutexes locked before the \
              checkpoint by some threads may refuse to unlock\n",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart_with(pairs: &[(u32, u32)]) {
        let mut scratch = vec![0u64; 64];
        restart(
            pairs.iter().copied(),
            ckpt_image::record_bytes_mut(&mut scratch),
        );
    }

    #[test]
    fn follows_threads_across_restarts() {
        restart_with(&[(100, 200), (101, 201)]);
        assert_eq!(current(100), Some(200));
        assert_eq!(current(101), Some(201));
        assert_eq!(current(102), None);
        // Second restart: 200 → 300; 100 follows. 201's thread had ended.
        restart_with(&[(200, 300)]);
        assert_eq!(current(100), Some(300));
        assert_eq!(current(200), Some(300));
        assert_eq!(current(101), Some(201));
        // A new thread got id 101: it names that thread now.
        restart_with(&[(300, 400), (500, 101)]);
        assert_eq!(current(101), None);
        assert_eq!(current(100), Some(400));
        assert_eq!(current(500), Some(101));
        // Ids that swap between threads: each names its live thread.
        restart_with(&[(400, 101), (101, 400)]);
        assert_eq!(current(400), None);
        assert_eq!(current(101), None);
        assert_eq!(current(100), Some(101));
    }
}
