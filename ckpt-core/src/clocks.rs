//! CPU-time clock ids that name a process or thread which a restart has renamed.
//!
//! `clock_getcpuclockid(pid)` and `pthread_getcpuclockid(thread)` hand the program a clock id
//! with the pid or tid inside it (`(~id << 3) | kind`, kind bit 2: per thread). A restarted
//! process has a new pid and tid, so such an id kept from before gives EINVAL — or, for a
//! process clock, silently reads another process that now has the old pid. The program
//! cannot know the id holds a pid (it is opaque), so the library translates: it records the
//! pid and tid at each checkpoint, and after a restart maps every former pid and tid of the
//! process to the one it has now (`RENAMED`). The C library's calls that take a clock id are
//! wrapped (`clock_gettime`, `clock_getres`, `clock_settime`, `clock_nanosleep`,
//! `timer_create`); a CPU-time clock id that names a former pid or tid is translated before
//! the real call. So is the clock of a restored POSIX timer (`timers`).
//!
//! The new process's CPU time starts at zero: these clocks count from the restart, exactly
//! like `CLOCK_PROCESS_CPUTIME_ID`, `clock()`, `times()` and `getrusage()`, which reach the
//! kernel without a clock id to translate. Adding the old process's CPU time to translated
//! ids only would make two clocks of the same process disagree.
//!
//! `clock_gettime` is hot (a vDSO call, some 20 ns): its wrapper forwards every clock id that
//! needs no translation — the ordinary clocks (>= 0) and the calling process's and thread's
//! own CPU clocks (pid 0: -8..-1) — after one comparison, by a tail call to glibc's function,
//! found at library load. Until then (another library's constructor may run first) it makes
//! the system call itself, which is always right, only slower.
//!
//! An id naming a former pid is taken to mean this process even if another process has that
//! pid now: before the restart it could only have meant this one.

use core::ffi::{c_int, c_void, CStr};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use crate::sys;

/// Clock ids from here up need no translation: ordinary clocks, and CPU-time clocks with pid
/// 0 (the caller itself).
const FIRST_OWN_CLOCK: libc::clockid_t = -8;
/// The kind bits of a dynamic clock (`(~fd << 3) | 3`, a PTP device): an fd, not a pid.
const CLOCKFD: libc::clockid_t = 3;

/// Former pids of this process and what each is now: (old, new) pairs, the newest last,
/// `RENAMED_LEN` of them in use. Written only by `note_restart`, which runs while the
/// restarted process's other threads wait; read lock-free by the wrappers on any thread.
/// Former thread ids are `threads::tids`'.
const MAX_RENAMED: usize = 1024;
static RENAMED: [[AtomicU32; 2]; MAX_RENAMED] =
    [const { [AtomicU32::new(0), AtomicU32::new(0)] }; MAX_RENAMED];
static RENAMED_LEN: AtomicUsize = AtomicUsize::new(0);
/// The next slot to overwrite once the table is full (the oldest pair).
static RENAMED_NEXT: AtomicUsize = AtomicUsize::new(0);

/// The pid of the process at its last checkpoint. Saved with the image.
static CHECKPOINTED: AtomicU32 = AtomicU32::new(0);

/// Records the pid of the checkpointing process. Signal-safe.
pub fn note_checkpoint() {
    CHECKPOINTED.store(sys::getpid(), Ordering::Relaxed);
}

/// In a restarted process: every former pid now names this process. Signal-safe.
pub fn note_restart() {
    let pid = sys::getpid();
    let old_pid = CHECKPOINTED.load(Ordering::Relaxed);
    for pair in &RENAMED[..RENAMED_LEN.load(Ordering::Relaxed)] {
        if pair[1].load(Ordering::Relaxed) == old_pid {
            pair[1].store(pid, Ordering::Relaxed);
        }
    }
    rename(old_pid, pid);
}

fn rename(old: u32, new: u32) {
    if old == 0 || old == new {
        return;
    }
    let len = RENAMED_LEN.load(Ordering::Relaxed);
    let slot = if len < MAX_RENAMED {
        len
    } else {
        // A process restarted a thousand times forgets its oldest names first.
        let next = RENAMED_NEXT.load(Ordering::Relaxed);
        RENAMED_NEXT.store((next + 1) % MAX_RENAMED, Ordering::Relaxed);
        next
    };
    RENAMED[slot][0].store(old, Ordering::Relaxed);
    RENAMED[slot][1].store(new, Ordering::Release);
    if len < MAX_RENAMED {
        RENAMED_LEN.store(len + 1, Ordering::Release);
    }
}

/// What a former pid or tid of this process is now, if `id` is one.
fn renamed(id: u32) -> Option<u32> {
    let len = RENAMED_LEN.load(Ordering::Acquire);
    RENAMED[..len]
        .iter()
        .find(|pair| pair[0].load(Ordering::Relaxed) == id)
        .map(|pair| pair[1].load(Ordering::Acquire))
}

/// `clock` with a former pid or tid of this process replaced by the current one; any other
/// clock id as it is. Signal-safe.
pub fn translate(clock: libc::clockid_t) -> libc::clockid_t {
    let now = cpu_clock_owner(clock).and_then(|(id, thread)| match thread {
        true => crate::threads::tids::current(id).or_else(|| renamed(id)),
        false => renamed(id),
    });
    match now {
        Some(now) => (!(now as libc::clockid_t) << 3) | (clock & 7),
        None => clock,
    }
}

/// The pid or tid a CPU-time clock id names, and whether it is a thread's; None for other
/// clocks and for the caller's own (pid 0).
pub fn cpu_clock_owner(clock: libc::clockid_t) -> Option<(u32, bool)> {
    if clock >= FIRST_OWN_CLOCK || clock & 7 == CLOCKFD {
        return None;
    }
    Some((!(clock >> 3) as u32, clock & 4 != 0))
}

// ---------------------------------------------------------------------------------------
// The wrapped functions

/// A function of the C library wrapped here: a stand-in until glibc's is found (null: look
/// it up on first use), glibc's from library load on.
struct Real {
    name: &'static CStr,
    address: AtomicPtr<c_void>,
}

impl Real {
    const fn new(name: &'static CStr, stand_in: *mut c_void) -> Real {
        Real {
            name,
            address: AtomicPtr::new(stand_in),
        }
    }

    fn resolve(&self) {
        if let Some(a) = sys::next_symbol(self.name) {
            self.address.store(a as *mut c_void, Ordering::Release);
        }
    }

    /// The function, typed; None when the C library has none.
    ///
    /// # Safety
    /// `F` must be the C prototype of the function named `self.name`.
    unsafe fn get<F: Copy>(&self) -> Option<F> {
        let mut a = self.address.load(Ordering::Acquire);
        if a.is_null() {
            self.resolve();
            a = self.address.load(Ordering::Acquire);
        }
        // SAFETY: F is the prototype of this function, which the stand-in shares (the
        // caller's contract).
        (!a.is_null()).then(|| unsafe { sys::function_at::<F>(a as u64) })
    }
}

type ClockTimeFn = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> c_int;
type ClockSetFn = unsafe extern "C" fn(libc::clockid_t, *const libc::timespec) -> c_int;
type ClockSleepFn = unsafe extern "C" fn(
    libc::clockid_t,
    c_int,
    *const libc::timespec,
    *mut libc::timespec,
) -> c_int;
type TimerCreateFn =
    unsafe extern "C" fn(libc::clockid_t, *mut libc::sigevent, *mut libc::timer_t) -> c_int;

static CLOCK_GETTIME: Real = Real::new(
    c"clock_gettime",
    sys::raw_clock_gettime as ClockTimeFn as *mut c_void,
);
static CLOCK_GETRES: Real = Real::new(
    c"clock_getres",
    sys::raw_clock_getres as ClockTimeFn as *mut c_void,
);
static CLOCK_SETTIME: Real = Real::new(c"clock_settime", core::ptr::null_mut());
static CLOCK_NANOSLEEP: Real = Real::new(c"clock_nanosleep", core::ptr::null_mut());
static TIMER_CREATE: Real = Real::new(c"timer_create", core::ptr::null_mut());

/// Finds glibc's functions. Called once, at library load.
pub fn init() {
    for real in [
        &CLOCK_GETTIME,
        &CLOCK_GETRES,
        &CLOCK_SETTIME,
        &CLOCK_NANOSLEEP,
        &TIMER_CREATE,
    ] {
        real.resolve();
    }
}

/// Wraps glibc's `clock_gettime` (see the module documentation). Signal-safe.
///
/// # Safety
/// As for glibc's function: `tp` must be valid for writing a `struct timespec`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn clock_gettime(clock: libc::clockid_t, tp: *mut libc::timespec) -> c_int {
    if clock < FIRST_OWN_CLOCK {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { clock_gettime_translated(clock, tp) };
    }
    // SAFETY: CLOCK_GETTIME holds glibc's clock_gettime or the stand-in, never null, both of
    // ClockTimeFn's prototype; the caller's arguments are passed on.
    unsafe {
        let f = core::mem::transmute::<*mut c_void, ClockTimeFn>(
            CLOCK_GETTIME.address.load(Ordering::Relaxed),
        );
        f(clock, tp)
    }
}

/// `clock_gettime` for a clock id that may name a former pid or tid, out of the fast path.
///
/// # Safety
/// As for glibc's function.
#[cold]
#[inline(never)]
unsafe extern "C" fn clock_gettime_translated(
    clock: libc::clockid_t,
    tp: *mut libc::timespec,
) -> c_int {
    // SAFETY: as in `clock_gettime`.
    unsafe {
        let f = core::mem::transmute::<*mut c_void, ClockTimeFn>(
            CLOCK_GETTIME.address.load(Ordering::Relaxed),
        );
        f(translate(clock), tp)
    }
}

/// Wraps glibc's `clock_getres` (see the module documentation). Signal-safe.
///
/// # Safety
/// As for glibc's function: `res` must be null or valid for writing a `struct timespec`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn clock_getres(clock: libc::clockid_t, res: *mut libc::timespec) -> c_int {
    // SAFETY: CLOCK_GETRES always has an address (glibc's or the stand-in) of this prototype.
    match unsafe { CLOCK_GETRES.get::<ClockTimeFn>() } {
        // SAFETY: glibc's function (or the stand-in) with the caller's arguments.
        Some(f) => unsafe { f(translate(clock), res) },
        None => fail_errno(libc::ENOSYS),
    }
}

/// Wraps glibc's `clock_settime` (see the module documentation).
///
/// # Safety
/// As for glibc's function: `tp` must point to a `struct timespec`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn clock_settime(clock: libc::clockid_t, tp: *const libc::timespec) -> c_int {
    // SAFETY: ClockSetFn is clock_settime's prototype.
    match unsafe { CLOCK_SETTIME.get::<ClockSetFn>() } {
        // SAFETY: glibc's function with the caller's arguments.
        Some(f) => unsafe { f(translate(clock), tp) },
        None => fail_errno(libc::ENOSYS),
    }
}

/// Wraps glibc's `clock_nanosleep` (see the module documentation).
///
/// # Safety
/// As for glibc's function: `request` must point to a `struct timespec`, and `remain` be null
/// or valid for writing one.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    request: *const libc::timespec,
    remain: *mut libc::timespec,
) -> c_int {
    // SAFETY: ClockSleepFn is clock_nanosleep's prototype.
    match unsafe { CLOCK_NANOSLEEP.get::<ClockSleepFn>() } {
        // SAFETY: glibc's function with the caller's arguments.
        Some(f) => unsafe { f(translate(clock), flags, request, remain) },
        // clock_nanosleep returns the error number itself.
        None => libc::ENOSYS,
    }
}

/// Wraps glibc's `timer_create` (see the module documentation).
///
/// # Safety
/// As for glibc's function: `event` must be null or point to a `struct sigevent`, and
/// `timer` be valid for writing a `timer_t`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn timer_create(
    clock: libc::clockid_t,
    event: *mut libc::sigevent,
    timer: *mut libc::timer_t,
) -> c_int {
    // SAFETY: TimerCreateFn is timer_create's prototype.
    match unsafe { TIMER_CREATE.get::<TimerCreateFn>() } {
        // SAFETY: glibc's function with the caller's arguments.
        Some(f) => unsafe { f(translate(clock), event, timer) },
        None => fail_errno(libc::ENOSYS),
    }
}

/// -1 with `errno` set, as a C library function fails.
fn fail_errno(e: c_int) -> c_int {
    sys::set_errno(e);
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CPU clock id for `id`: `kind` 2 is CPUCLOCK_SCHED, plus 4 per thread.
    fn cpu_clock(id: u32, kind: i32) -> i32 {
        (!(id as i32) << 3) | kind
    }

    #[test]
    fn clock_ids_round_trip_and_only_cpu_clocks_of_former_ids_change() {
        // One test: the table is process-wide.
        assert_eq!(cpu_clock(8368, 2), -66950, "glibc's encoding, as measured");
        CHECKPOINTED.store(7100, Ordering::Relaxed);
        rename(7100, 7200);
        rename(7101, 7200);
        assert_eq!(translate(cpu_clock(7100, 2)), cpu_clock(7200, 2));
        assert_eq!(translate(cpu_clock(7101, 6)), cpu_clock(7200, 6));
        for unchanged in [
            0,
            1,
            libc::CLOCK_PROCESS_CPUTIME_ID,
            -6,
            -2,
            cpu_clock(7300, 2),
            cpu_clock(7100, 3), // an fd of a dynamic clock
        ] {
            assert_eq!(translate(unchanged), unchanged);
        }
        // A second restart: the first one's names follow, and the second's are added.
        CHECKPOINTED.store(7200, Ordering::Relaxed);
        let pid = sys::getpid();
        note_restart();
        assert_eq!(translate(cpu_clock(7100, 2)), cpu_clock(pid, 2));
        assert_eq!(translate(cpu_clock(7101, 6)), cpu_clock(pid, 6));
        assert_eq!(translate(cpu_clock(7200, 2)), cpu_clock(pid, 2));
    }
}
