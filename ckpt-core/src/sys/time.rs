//! Time: POSIX timers (created with a chosen id too), interval timers, raw clock calls.

use core::ffi::c_int;

use super::*;

/// The kernel's `struct sigevent` (64 bytes), as `timer_create` reads it.
#[repr(C)]
struct KernelSigevent {
    value: u64,
    signo: c_int,
    notify: c_int,
    tid: c_int,
    _pad: [c_int; 11],
}

const SIGEV_THREAD_ID: c_int = 4;

/// How a timer notifies: the fields of the kernel's `struct sigevent` that it keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerEvent {
    /// `sigev_value`, all 64 bits.
    pub value: u64,
    pub signo: c_int,
    /// `SIGEV_SIGNAL`, `SIGEV_NONE`, `SIGEV_THREAD` (to the kernel: like `SIGEV_SIGNAL`), or
    /// `SIGEV_THREAD_ID | SIGEV_SIGNAL`.
    pub notify: c_int,
    /// The thread, with `SIGEV_THREAD_ID`.
    pub tid: c_int,
}

/// Raw `timer_create`: a timer on `clock` notifying as `event`. The kernel writes the new
/// timer's id into the third argument, and reads the id wanted from there while
/// `PR_TIMER_CREATE_RESTORE_IDS` is on (`preset`; ignored otherwise). Signal-safe.
pub fn timer_create(clock: c_int, event: &TimerEvent, preset: i32) -> SysResult<i32> {
    let ev = KernelSigevent {
        value: event.value,
        signo: event.signo,
        notify: event.notify,
        tid: event.tid,
        _pad: [0; 11],
    };
    let mut id: c_int = preset;
    // SAFETY: the kernel reads the sigevent and reads and writes the timer id in `id`.
    check(unsafe { libc::syscall(libc::SYS_timer_create, clock, &ev, &mut id) })?;
    Ok(id)
}

/// Creates a CLOCK_MONOTONIC POSIX timer that delivers `sig` to thread `tid`; returns the
/// kernel's timer id. Raw system call: signal-safe.
pub fn timer_create_for_thread(sig: c_int, tid: u32, value: i32) -> SysResult<i32> {
    let event = TimerEvent {
        value: value as u32 as u64,
        signo: sig,
        notify: SIGEV_THREAD_ID,
        tid: tid as c_int,
    };
    timer_create(libc::CLOCK_MONOTONIC, &event, -1)
}

/// A timer on `CLOCK_MONOTONIC` that sends `sig` to the process (any thread that does not
/// block it). Signal-safe.
pub fn timer_create_for_process(sig: c_int) -> SysResult<i32> {
    let event = TimerEvent {
        value: 0,
        signo: sig,
        notify: libc::SIGEV_SIGNAL,
        tid: 0,
    };
    timer_create(libc::CLOCK_MONOTONIC, &event, -1)
}

/// Arms (period > 0) or disarms (0) a timer created by `timer_create_for_thread`.
pub fn timer_set_period(id: i32, period_ms: u32) -> SysResult<()> {
    let ns = period_ms as u64 * 1_000_000;
    timer_settime(id, ns, ns)
}

/// Arms a timer created by `timer_create_for_thread` to fire once, `ns` nanoseconds from now.
pub fn timer_fire_in(id: i32, ns: u64) -> SysResult<()> {
    timer_settime(id, 0, ns)
}

/// Raw `timer_settime`, relative: the timer fires in `value_ns` (0: disarmed) and then every
/// `interval_ns` (0: once). Signal-safe.
pub fn timer_settime(id: i32, interval_ns: u64, value_ns: u64) -> SysResult<()> {
    let ts = |ns: u64| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: ts(interval_ns),
        it_value: ts(value_ns),
    };
    // SAFETY: the kernel reads the itimerspec; no old value is requested.
    check(unsafe {
        libc::syscall(
            libc::SYS_timer_settime,
            id,
            0,
            &spec,
            core::ptr::null_mut::<libc::itimerspec>(),
        )
    })
    .map(drop)
}

/// Raw `timer_gettime`: (interval, time left) in nanoseconds. Signal-safe.
pub fn timer_gettime(id: i32) -> SysResult<(u64, u64)> {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut spec = libc::itimerspec {
        it_interval: zero,
        it_value: zero,
    };
    // SAFETY: the kernel writes one itimerspec into a local.
    check(unsafe { libc::syscall(libc::SYS_timer_gettime, id, &mut spec) })?;
    let ns = |t: libc::timespec| t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
    Ok((ns(spec.it_interval), ns(spec.it_value)))
}

pub fn timer_delete(id: i32) {
    // SAFETY: deletes a timer this library created.
    unsafe { libc::syscall(libc::SYS_timer_delete, id) };
}

/// `prctl(PR_TIMER_CREATE_RESTORE_IDS, …)` (Linux 6.16): `TIMER_IDS_ON` makes `timer_create`
/// take the id preset in its third argument, `TIMER_IDS_OFF` lets the kernel choose again,
/// `TIMER_IDS_GET` answers which is in force. EINVAL from older kernels. Signal-safe.
pub fn timer_restore_ids(mode: u64) -> SysResult<usize> {
    // SAFETY: prctl with integer arguments only.
    check(
        unsafe { libc::prctl(PR_TIMER_CREATE_RESTORE_IDS, mode, 0u64, 0u64, 0u64) } as libc::c_long,
    )
}

const PR_TIMER_CREATE_RESTORE_IDS: c_int = 77;

pub const TIMER_IDS_OFF: u64 = 0;

pub const TIMER_IDS_ON: u64 = 1;

pub const TIMER_IDS_GET: u64 = 2;

/// `clock_gettime` as a bare system call, for `clocks` to call until it has found glibc's
/// (which uses the vDSO). Signal-safe.
///
/// # Safety
/// `tp` must be valid for writing a `struct timespec`.
pub unsafe extern "C" fn raw_clock_gettime(
    clock: libc::clockid_t,
    tp: *mut libc::timespec,
) -> c_int {
    // SAFETY: the caller's contract; the kernel writes one timespec at `tp`.
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as c_int }
}

/// `clock_getres` as a bare system call, like `raw_clock_gettime`. Signal-safe.
///
/// # Safety
/// `res` must be null or valid for writing a `struct timespec`.
pub unsafe extern "C" fn raw_clock_getres(
    clock: libc::clockid_t,
    res: *mut libc::timespec,
) -> c_int {
    // SAFETY: the caller's contract; the kernel writes one timespec at `res` unless null.
    unsafe { libc::syscall(libc::SYS_clock_getres, clock, res) as c_int }
}

/// The three interval timers (REAL, VIRTUAL, PROF) as (interval, value) in microseconds.
pub fn get_itimers() -> [(u64, u64); 3] {
    let mut out = [(0, 0); 3];
    for (which, slot) in out.iter_mut().enumerate() {
        let mut v = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: raw getitimer into a local.
        unsafe { libc::syscall(libc::SYS_getitimer, which as c_int, &mut v) };
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        *slot = (us(v.it_interval), us(v.it_value));
    }
    out
}

pub fn set_itimer(which: usize, interval_us: u64, value_us: u64) {
    let tv = |us: u64| libc::timeval {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_usec: (us % 1_000_000) as libc::suseconds_t,
    };
    let v = libc::itimerval {
        it_interval: tv(interval_us),
        it_value: tv(value_us),
    };
    // SAFETY: raw setitimer from a local; no old value requested.
    unsafe {
        libc::syscall(
            libc::SYS_setitimer,
            which as c_int,
            &v,
            core::ptr::null_mut::<libc::itimerval>(),
        )
    };
}

/// Nanoseconds of `CLOCK_MONOTONIC` (signal-safe).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec.max(0) as u64 * 1_000_000_000 + ts.tv_nsec.max(0) as u64
}

/// Sleeps `ns` nanoseconds (less when a signal comes). Signal-safe.
pub fn sleep_ns(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep reads one timespec; no remainder wanted.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}
