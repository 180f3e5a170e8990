//! The calls that set a disposition (`sigaction`, `signal`, `bsd_signal`, `sysv_signal`,
//! `sigset`, `sigignore`, `siginterrupt`): for ckpt's signals they record the program's
//! action instead of installing it, and report it back.

use core::ffi::c_int;

use super::*;

// ---------------------------------------------------------------------------------------
// Dispositions

/// The action `act` asks for, as the kernel would keep it after glibc's `sigaction`: glibc
/// adds its restorer; the kernel keeps the flags it knows and no SIGKILL or SIGSTOP in the
/// mask.
pub(super) fn kernel_action(act: &libc::sigaction, restorer: u64) -> SigactionRecord {
    SigactionRecord {
        handler: act.sa_sigaction as u64,
        flags: (act.sa_flags as u32 as u64 | SA_RESTORER) & KERNEL_SA_FLAGS,
        restorer,
        mask: sys::sigset_word(&act.sa_mask) & !UNBLOCKABLE,
    }
}

/// Fills `old` from a kernel action as glibc's `sigaction` does (only the first 64 signals
/// of the mask are written).
pub(super) fn fill_action(old: &mut libc::sigaction, r: &SigactionRecord) {
    old.sa_sigaction = r.handler as usize;
    sys::set_sigset_word(&mut old.sa_mask, r.mask);
    old.sa_flags = r.flags as c_int;
    sys::set_sigaction_restorer(old, r.restorer);
}

/// `sigaction` on an owned signal: records `act`, returns the recorded action before it.
/// None when `sig` is not owned (any more), for the caller to forward. Signal-safe.
pub(super) fn owned_sigaction(
    sig: c_int,
    act: Option<&libc::sigaction>,
) -> Option<SigactionRecord> {
    if !owned(sig) {
        return None;
    }
    let new = act.map(|a| kernel_action(a, RESTORER.load(Ordering::Relaxed)));
    let _held = lock();
    if !owned(sig) {
        return None;
    }
    let before = load_record(&ACTIONS, sig);
    if let Some(new) = new {
        store_record(&ACTIONS, sig, &new);
    }
    Some(before)
}

/// An action with `handler`, `flags`, and `mask` as the first 64 signals.
pub(super) fn simple_action(handler: Handler, flags: c_int, mask: u64) -> libc::sigaction {
    // SAFETY: an all-zero sigaction is valid (SIG_DFL, empty mask, no flags).
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = flags;
    sys::set_sigset_word(&mut act.sa_mask, mask);
    act
}

/// Wraps glibc's `sigaction` (see the module documentation).
///
/// # Safety
/// As for glibc's `sigaction`: `act` and `oact` are each null or valid.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    oact: *mut libc::sigaction,
) -> c_int {
    // SAFETY: each pointer is null or valid (the caller's contract); `act` is read before
    // `oact` is written, as glibc does, so the two may be the same.
    let new = unsafe { act.as_ref() }.copied();
    if let Some(before) = owned_sigaction(sig, new.as_ref()) {
        // SAFETY: as above.
        if let Some(old) = unsafe { oact.as_mut() } {
            fill_action(old, &before);
        }
        return 0;
    }
    // SAFETY: sigaction's prototype; the caller's arguments, unchanged.
    match unsafe { REAL_SIGACTION.get::<sys::SigactionFn>() } {
        // SAFETY: glibc's sigaction with the caller's arguments.
        Some(f) => unsafe { f(sig, act, oact) },
        None => missing(),
    }
}

/// glibc exports `sigaction` under this name too.
///
/// # Safety
/// As for `sigaction`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    oact: *mut libc::sigaction,
) -> c_int {
    // SAFETY: the same function, the caller's contract.
    unsafe { sigaction(sig, act, oact) }
}

/// `signal()`-style calls on an owned signal: glibc's checks, then `act` recorded.
pub(super) fn owned_signal(sig: c_int, handler: Handler, act: libc::sigaction) -> Option<Handler> {
    if !owned(sig) {
        return None;
    }
    if handler == SIG_ERR {
        sys::set_errno(libc::EINVAL);
        return Some(SIG_ERR);
    }
    owned_sigaction(sig, Some(&act)).map(|before| before.handler as Handler)
}

/// Forwards a `signal()`-style call to glibc.
pub(super) fn forward_signal(real: &Real, sig: c_int, handler: Handler) -> Handler {
    // SAFETY: `real` is one of glibc's signal functions, of this prototype.
    match unsafe { real.get::<SignalFn>() } {
        // SAFETY: glibc's function with the caller's arguments.
        Some(f) => unsafe { f(sig, handler) },
        None => {
            missing();
            SIG_ERR
        }
    }
}

/// BSD `signal()`, glibc's default: SA_RESTART unless `siginterrupt(sig, 1)`, and the
/// signal itself blocked while its handler runs.
pub(super) fn bsd_signal_for(sig: c_int, handler: Handler) -> Handler {
    let interrupting =
        (1..=64).contains(&sig) && INTERRUPTING.load(Ordering::Relaxed) & bit(sig) != 0;
    let flags = if interrupting { 0 } else { libc::SA_RESTART };
    let act = simple_action(
        handler,
        flags,
        if (1..=64).contains(&sig) { bit(sig) } else { 0 },
    );
    owned_signal(sig, handler, act).unwrap_or_else(|| forward_signal(&REAL_SIGNAL, sig, handler))
}

/// Wraps glibc's `signal` (BSD semantics).
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn signal(sig: c_int, handler: Handler) -> Handler {
    bsd_signal_for(sig, handler)
}

/// glibc's other names for `signal`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn bsd_signal(sig: c_int, handler: Handler) -> Handler {
    bsd_signal_for(sig, handler)
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn ssignal(sig: c_int, handler: Handler) -> Handler {
    bsd_signal_for(sig, handler)
}

/// System V `signal()`: reset to the default when delivered, not blocked during the
/// handler, not restarting.
pub(super) fn sysv_signal_for(sig: c_int, handler: Handler) -> Handler {
    let act = simple_action(handler, libc::SA_RESETHAND | libc::SA_NODEFER, 0);
    owned_signal(sig, handler, act)
        .unwrap_or_else(|| forward_signal(&REAL_SYSV_SIGNAL, sig, handler))
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sysv_signal(sig: c_int, handler: Handler) -> Handler {
    sysv_signal_for(sig, handler)
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn __sysv_signal(sig: c_int, handler: Handler) -> Handler {
    sysv_signal_for(sig, handler)
}

/// Wraps `sigignore`: SIG_IGN, empty mask, no flags.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sigignore(sig: c_int) -> c_int {
    if owned_sigaction(sig, Some(&simple_action(libc::SIG_IGN, 0, 0))).is_some() {
        return 0;
    }
    forward_sig(&REAL_SIGIGNORE, sig)
}

/// Wraps `siginterrupt`: SA_RESTART off (`interrupt` non-zero) or on, remembered for
/// later `signal()` calls.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn siginterrupt(sig: c_int, interrupt: c_int) -> c_int {
    if owned(sig) {
        let _held = lock();
        if owned(sig) {
            let mut action = load_record(&ACTIONS, sig);
            if interrupt != 0 {
                INTERRUPTING.fetch_or(bit(sig), Ordering::Relaxed);
                action.flags &= !(libc::SA_RESTART as u64);
            } else {
                INTERRUPTING.fetch_and(!bit(sig), Ordering::Relaxed);
                action.flags |= libc::SA_RESTART as u64;
            }
            store_record(&ACTIONS, sig, &action);
            return 0;
        }
    }
    type SiginterruptFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
    // SAFETY: siginterrupt's prototype.
    match unsafe { REAL_SIGINTERRUPT.get::<SiginterruptFn>() } {
        // SAFETY: glibc's siginterrupt with the caller's arguments.
        Some(f) => unsafe { f(sig, interrupt) },
        None => missing(),
    }
}

/// Forwards an `int f(int sig)` call to glibc.
pub(super) fn forward_sig(real: &Real, sig: c_int) -> c_int {
    // SAFETY: `real` is sighold, sigrelse or sigignore, of this prototype.
    match unsafe { real.get::<SigFn>() } {
        // SAFETY: glibc's function with the caller's argument.
        Some(f) => unsafe { f(sig) },
        None => missing(),
    }
}

/// A set holding `sig` alone (first 64 signals).
pub(super) fn only(sig: c_int) -> libc::sigset_t {
    let mut set = empty_set();
    sys::set_sigset_word(&mut set, bit(sig));
    set
}

/// Wraps `sigset`: System V's disposition call, where SIG_HOLD blocks the signal and any
/// other disposition unblocks it; returns SIG_HOLD when it was blocked. For an owned signal,
/// glibc's own steps through the wrappers.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn sigset(sig: c_int, disp: Handler) -> Handler {
    if !owned(sig) {
        // SAFETY: sigset's prototype is that of signal().
        return match unsafe { REAL_SIGSET.get::<SignalFn>() } {
            // SAFETY: glibc's sigset with the caller's arguments.
            Some(f) => unsafe { f(sig, disp) },
            None => {
                missing();
                SIG_ERR
            }
        };
    }
    let set = only(sig);
    let mut old = empty_set();
    let mut action = simple_action(disp, 0, 0);
    if disp == SIG_HOLD {
        // SAFETY: valid sets.
        if unsafe { sigprocmask(libc::SIG_BLOCK, &set, &mut old) } < 0 {
            return SIG_ERR;
        }
        if sys::sigset_word(&old) & bit(sig) != 0 {
            return SIG_HOLD;
        }
        // SAFETY: a query into a valid action.
        if unsafe { sigaction(sig, core::ptr::null(), &mut action) } < 0 {
            return SIG_ERR;
        }
        return action.sa_sigaction;
    }
    let new = action;
    // SAFETY: valid actions.
    if unsafe { sigaction(sig, &new, &mut action) } < 0 {
        return SIG_ERR;
    }
    // SAFETY: valid sets.
    if unsafe { sigprocmask(libc::SIG_UNBLOCK, &set, &mut old) } < 0 {
        return SIG_ERR;
    }
    if sys::sigset_word(&old) & bit(sig) != 0 {
        SIG_HOLD
    } else {
        action.sa_sigaction
    }
}
