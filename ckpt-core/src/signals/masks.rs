//! The calls that change the blocked mask (`sigprocmask`, `pthread_sigmask`, `sighold`,
//! `sigrelse`, `sigblock`, `sigsetmask`, `siggetmask`): ckpt's signals are never blocked,
//! and what the program asked is kept per thread and reported back.

use core::ffi::c_int;

use super::*;

/// Wraps `sighold`: blocks `sig`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sighold(sig: c_int) -> c_int {
    if !owned(sig) {
        return forward_sig(&REAL_SIGHOLD, sig);
    }
    // SAFETY: a valid set, no old set.
    unsafe { sigprocmask(libc::SIG_BLOCK, &only(sig), core::ptr::null_mut()) }
}

/// Wraps `sigrelse`: unblocks `sig`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sigrelse(sig: c_int) -> c_int {
    if !owned(sig) {
        return forward_sig(&REAL_SIGRELSE, sig);
    }
    // SAFETY: a valid set, no old set.
    unsafe { sigprocmask(libc::SIG_UNBLOCK, &only(sig), core::ptr::null_mut()) }
}

// ---------------------------------------------------------------------------------------
// Masks

/// The thread's virtual bits after a successful mask change `how` with `set` (first 64
/// signals), from `before`.
pub(super) fn virtual_after(how: c_int, set: u64, owned: u64, before: u64) -> u64 {
    match how {
        libc::SIG_BLOCK => before | (set & owned),
        libc::SIG_UNBLOCK => before & !set,
        libc::SIG_SETMASK => set & owned,
        _ => before,
    }
}

/// A mask change through glibc's `call` (sigprocmask or pthread_sigmask), whose result
/// `succeeded` tells: owned signals stay out of the kernel's mask and go into the thread's
/// virtual bits, which are added to the old mask returned. Signal-safe.
///
/// # Safety
/// `set` and `old` are each null or valid, as for sigprocmask.
pub(super) unsafe fn change_mask(
    how: c_int,
    set: SigsetPtr,
    old: *mut libc::sigset_t,
    real: &Real,
    succeeded: impl Fn(c_int) -> bool,
) -> c_int {
    // SAFETY: sigprocmask and pthread_sigmask share this prototype.
    let Some(call) = (unsafe { real.get::<MaskFn>() }) else {
        return missing();
    };
    if !READY.load(Ordering::Acquire) {
        // SAFETY: glibc's function with the caller's arguments.
        return unsafe { call(how, set, old) };
    }
    let owned = OWNED.load(Ordering::Acquire);
    fold_given_back(owned);
    let before = thread_blocked();
    // SAFETY: null or valid (the caller's contract); copied before `old` is written, so
    // the two may be the same.
    let stripped = unsafe { Stripped::new(set, owned) };
    // SAFETY: as above.
    let wanted = unsafe { set.as_ref() }.map(sys::sigset_word);
    // SAFETY: glibc's function with a valid set (or null) and the caller's `old`.
    let r = unsafe { call(how, stripped.ptr(), old) };
    if !succeeded(r) {
        return r;
    }
    if let Some(wanted) = wanted {
        set_thread_blocked(virtual_after(how, wanted, owned, before));
    }
    // SAFETY: null or valid (the caller's contract).
    if let Some(old) = unsafe { old.as_mut() } {
        sys::set_sigset_word(old, sys::sigset_word(old) | before);
    }
    r
}

/// Wraps glibc's `sigprocmask` (see the module documentation).
///
/// # Safety
/// As for glibc's `sigprocmask`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigprocmask(
    how: c_int,
    set: SigsetPtr,
    old: *mut libc::sigset_t,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { change_mask(how, set, old, &REAL_SIGPROCMASK, |r| r == 0) }
}

/// Wraps glibc's `pthread_sigmask` (which returns an error number, not -1 and errno).
///
/// # Safety
/// As for glibc's `pthread_sigmask`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pthread_sigmask(
    how: c_int,
    set: SigsetPtr,
    old: *mut libc::sigset_t,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { change_mask(how, set, old, &REAL_PTHREAD_SIGMASK, |r| r == 0) }
}

/// `sigset_t` from the BSD `int` mask of signals 1-32 (glibc's `sigset_set_old_mask`).
pub(super) fn set_from_old_mask(mask: c_int) -> libc::sigset_t {
    let mut set = empty_set();
    sys::set_sigset_word(&mut set, mask as u32 as u64);
    set
}

/// The BSD mask calls: `how` with `mask`, the old mask returned as an `int`.
pub(super) fn bsd_mask(how: c_int, mask: c_int, real: &Real) -> c_int {
    if !READY.load(Ordering::Acquire) {
        type BsdMaskFn = unsafe extern "C" fn(c_int) -> c_int;
        // SAFETY: sigblock and sigsetmask take and return an int mask.
        return match unsafe { real.get::<BsdMaskFn>() } {
            // SAFETY: glibc's function with the caller's argument.
            Some(f) => unsafe { f(mask) },
            None => missing(),
        };
    }
    let set = set_from_old_mask(mask);
    let mut old = empty_set();
    // SAFETY: valid sets.
    if unsafe { sigprocmask(how, &set, &mut old) } < 0 {
        return -1;
    }
    sys::sigset_word(&old) as u32 as c_int
}

/// Wraps `sigblock`: adds the signals of `mask` (1-32) to the blocked ones.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sigblock(mask: c_int) -> c_int {
    bsd_mask(libc::SIG_BLOCK, mask, &REAL_SIGBLOCK)
}

/// Wraps `sigsetmask`: sets the blocked signals to `mask` (1-32).
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sigsetmask(mask: c_int) -> c_int {
    bsd_mask(libc::SIG_SETMASK, mask, &REAL_SIGSETMASK)
}

/// Wraps `siggetmask`: the blocked signals among 1-32.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn siggetmask() -> c_int {
    if !READY.load(Ordering::Acquire) {
        type GetMaskFn = unsafe extern "C" fn() -> c_int;
        // SAFETY: siggetmask's prototype.
        return match unsafe { REAL_SIGGETMASK.get::<GetMaskFn>() } {
            // SAFETY: glibc's siggetmask.
            Some(f) => unsafe { f() },
            None => missing(),
        };
    }
    bsd_mask(libc::SIG_BLOCK, 0, &REAL_SIGBLOCK)
}
