//! The calls that wait with a mask of their own (`sigsuspend`, `sigpause`, `pselect`,
//! `ppoll`, `epoll_pwait`, `epoll_pwait2`) or wait for signals (`sigwait`, `sigwaitinfo`,
//! `sigtimedwait`): ckpt's signals stay deliverable and are never taken.

use core::ffi::{c_int, c_void};

use super::*;

/// Wraps `sigsuspend`: waits with `set` as the mask, less the owned signals.
///
/// # Safety
/// As for glibc's `sigsuspend`: `set` points to a valid set.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigsuspend(set: SigsetPtr) -> c_int {
    // SAFETY: the caller's contract.
    let stripped = unsafe { Stripped::new(set, owned_set()) };
    // SAFETY: sigsuspend's prototype.
    match unsafe { REAL_SIGSUSPEND.get::<SuspendFn>() } {
        // SAFETY: glibc's sigsuspend with the caller's set or its stripped copy (a null set
        // stays null: glibc's own EFAULT).
        Some(f) => unsafe { f(if set.is_null() { set } else { stripped.ptr() }) },
        None => missing(),
    }
}

/// glibc exports `sigsuspend` under this name too.
///
/// # Safety
/// As for `sigsuspend`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __sigsuspend(set: SigsetPtr) -> c_int {
    // SAFETY: the same function, the caller's contract.
    unsafe { sigsuspend(set) }
}

/// glibc's `__sigpause`: waits with the current mask less `sig` (`is_sig`, X/Open), or
/// with the BSD `int` mask (glibc's internal `sigsuspend` would bypass the wrapper).
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __sigpause(sig_or_mask: c_int, is_sig: c_int) -> c_int {
    if !READY.load(Ordering::Acquire) {
        type SigpauseFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
        // SAFETY: __sigpause's prototype.
        return match unsafe { REAL_SIGPAUSE.get::<SigpauseFn>() } {
            // SAFETY: glibc's function with the caller's arguments.
            Some(f) => unsafe { f(sig_or_mask, is_sig) },
            None => missing(),
        };
    }
    let set = if is_sig != 0 {
        let mut current = empty_set();
        // SAFETY: a query into a valid set.
        if unsafe { sigprocmask(libc::SIG_BLOCK, core::ptr::null(), &mut current) } < 0
            // SAFETY: sigdelset on a valid set; it refuses a bad signal number.
            || unsafe { libc::sigdelset(&mut current, sig_or_mask) } < 0
        {
            return -1;
        }
        current
    } else {
        set_from_old_mask(sig_or_mask)
    };
    // SAFETY: a valid set.
    unsafe { sigsuspend(&set) }
}

/// BSD `sigpause(mask)`, glibc's default.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sigpause(mask: c_int) -> c_int {
    __sigpause(mask, 0)
}

/// X/Open `sigpause(sig)`, which `<signal.h>` picks for X/Open programs.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __xpg_sigpause(sig: c_int) -> c_int {
    __sigpause(sig, 1)
}

/// Wraps `pselect`: its temporary mask keeps ckpt's signals deliverable.
///
/// # Safety
/// As for glibc's `pselect`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    readfds: *mut c_void,
    writefds: *mut c_void,
    exceptfds: *mut c_void,
    timeout: *const c_void,
    sigmask: SigsetPtr,
) -> c_int {
    type PselectFn = unsafe extern "C" fn(
        c_int,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *const c_void,
        SigsetPtr,
    ) -> c_int;
    // SAFETY: the caller's contract: sigmask is null or valid.
    let stripped = unsafe { Stripped::new(sigmask, owned_set()) };
    // SAFETY: pselect's prototype.
    match unsafe { REAL_PSELECT.get::<PselectFn>() } {
        // SAFETY: glibc's pselect with the caller's arguments, the mask stripped.
        Some(f) => unsafe { f(nfds, readfds, writefds, exceptfds, timeout, stripped.ptr()) },
        None => missing(),
    }
}

/// Wraps `ppoll`: its temporary mask keeps ckpt's signals deliverable.
///
/// # Safety
/// As for glibc's `ppoll`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut c_void,
    nfds: libc::nfds_t,
    timeout: *const c_void,
    sigmask: SigsetPtr,
) -> c_int {
    type PpollFn =
        unsafe extern "C" fn(*mut c_void, libc::nfds_t, *const c_void, SigsetPtr) -> c_int;
    // SAFETY: the caller's contract: sigmask is null or valid.
    let stripped = unsafe { Stripped::new(sigmask, owned_set()) };
    // SAFETY: ppoll's prototype.
    match unsafe { REAL_PPOLL.get::<PpollFn>() } {
        // SAFETY: glibc's ppoll with the caller's arguments, the mask stripped.
        Some(f) => unsafe { f(fds, nfds, timeout, stripped.ptr()) },
        None => missing(),
    }
}

/// Wraps `__ppoll_chk`, what `ppoll` becomes with `_FORTIFY_SOURCE`.
///
/// # Safety
/// As for glibc's `__ppoll_chk`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut c_void,
    nfds: libc::nfds_t,
    timeout: *const c_void,
    sigmask: SigsetPtr,
    fdslen: usize,
) -> c_int {
    type PpollChkFn =
        unsafe extern "C" fn(*mut c_void, libc::nfds_t, *const c_void, SigsetPtr, usize) -> c_int;
    // SAFETY: the caller's contract: sigmask is null or valid.
    let stripped = unsafe { Stripped::new(sigmask, owned_set()) };
    // SAFETY: __ppoll_chk's prototype.
    match unsafe { REAL_PPOLL_CHK.get::<PpollChkFn>() } {
        // SAFETY: glibc's function with the caller's arguments, the mask stripped.
        Some(f) => unsafe { f(fds, nfds, timeout, stripped.ptr(), fdslen) },
        None => missing(),
    }
}

/// Wraps `epoll_pwait`: its temporary mask keeps ckpt's signals deliverable.
///
/// # Safety
/// As for glibc's `epoll_pwait`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut c_void,
    maxevents: c_int,
    timeout: c_int,
    sigmask: SigsetPtr,
) -> c_int {
    type EpollPwaitFn = unsafe extern "C" fn(c_int, *mut c_void, c_int, c_int, SigsetPtr) -> c_int;
    // SAFETY: the caller's contract: sigmask is null or valid.
    let stripped = unsafe { Stripped::new(sigmask, owned_set()) };
    // SAFETY: epoll_pwait's prototype.
    match unsafe { REAL_EPOLL_PWAIT.get::<EpollPwaitFn>() } {
        // SAFETY: glibc's function with the caller's arguments, the mask stripped.
        Some(f) => unsafe { f(epfd, events, maxevents, timeout, stripped.ptr()) },
        None => missing(),
    }
}

/// Wraps `epoll_pwait2` (a `timespec` timeout).
///
/// # Safety
/// As for glibc's `epoll_pwait2`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    events: *mut c_void,
    maxevents: c_int,
    timeout: *const c_void,
    sigmask: SigsetPtr,
) -> c_int {
    type EpollPwait2Fn =
        unsafe extern "C" fn(c_int, *mut c_void, c_int, *const c_void, SigsetPtr) -> c_int;
    // SAFETY: the caller's contract: sigmask is null or valid.
    let stripped = unsafe { Stripped::new(sigmask, owned_set()) };
    // SAFETY: epoll_pwait2's prototype.
    match unsafe { REAL_EPOLL_PWAIT2.get::<EpollPwait2Fn>() } {
        // SAFETY: glibc's function with the caller's arguments, the mask stripped.
        Some(f) => unsafe { f(epfd, events, maxevents, timeout, stripped.ptr()) },
        None => missing(),
    }
}

/// Wraps `sigwait`: a program cannot wait for (and so consume) ckpt's signals.
///
/// # Safety
/// As for glibc's `sigwait`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigwait(set: SigsetPtr, sig: *mut c_int) -> c_int {
    type SigwaitFn = unsafe extern "C" fn(SigsetPtr, *mut c_int) -> c_int;
    // SAFETY: the caller's contract: set is valid.
    let stripped = unsafe { Stripped::new(set, owned_set()) };
    // SAFETY: sigwait's prototype.
    match unsafe { REAL_SIGWAIT.get::<SigwaitFn>() } {
        // SAFETY: glibc's sigwait, the set stripped (a null set stays null).
        Some(f) => unsafe { f(if set.is_null() { set } else { stripped.ptr() }, sig) },
        None => libc::ENOSYS,
    }
}

/// Wraps `sigwaitinfo`, as `sigwait`.
///
/// # Safety
/// As for glibc's `sigwaitinfo`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigwaitinfo(set: SigsetPtr, info: *mut c_void) -> c_int {
    type SigwaitinfoFn = unsafe extern "C" fn(SigsetPtr, *mut c_void) -> c_int;
    // SAFETY: the caller's contract: set is valid.
    let stripped = unsafe { Stripped::new(set, owned_set()) };
    // SAFETY: sigwaitinfo's prototype.
    match unsafe { REAL_SIGWAITINFO.get::<SigwaitinfoFn>() } {
        // SAFETY: glibc's sigwaitinfo, the set stripped (a null set stays null).
        Some(f) => unsafe { f(if set.is_null() { set } else { stripped.ptr() }, info) },
        None => missing(),
    }
}

/// Wraps `sigtimedwait`, as `sigwait`.
///
/// # Safety
/// As for glibc's `sigtimedwait`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigtimedwait(
    set: SigsetPtr,
    info: *mut c_void,
    timeout: *const c_void,
) -> c_int {
    type SigtimedwaitFn = unsafe extern "C" fn(SigsetPtr, *mut c_void, *const c_void) -> c_int;
    // SAFETY: the caller's contract: set is valid.
    let stripped = unsafe { Stripped::new(set, owned_set()) };
    // SAFETY: sigtimedwait's prototype.
    match unsafe { REAL_SIGTIMEDWAIT.get::<SigtimedwaitFn>() } {
        // SAFETY: glibc's sigtimedwait, the set stripped (a null set stays null).
        Some(f) => unsafe {
            f(
                if set.is_null() { set } else { stripped.ptr() },
                info,
                timeout,
            )
        },
        None => missing(),
    }
}
