//! The C API of `include/ckpt.h`: hooks, configuration and synchronous checkpoints, with the
//! names and semantics of the original ckpt 2.
//!
//! These functions are called from C; the ones taking pointers are `unsafe` and say what a
//! caller must guarantee (the same words are in ckpt.h).

use alloc::vec::Vec;
use core::ffi::{c_char, c_int, c_uint, c_void, CStr};

use ckpt_core::checkpoint::{self, Exclusive, Hook, Outcome, Trigger};
use ckpt_core::{sys, trigger};

use crate::config::{check_asyncsig, MAXNAME};

pub const CKPT_NAME: c_int = 1 << 1;
pub const CKPT_ASYNCSIG: c_int = 1 << 2;
pub const CKPT_CONTINUE: c_int = 1 << 3;
pub const CKPT_MSPERIOD: c_int = 1 << 4;

pub const CKPT_CKPT_FAILED: c_int = -1;
pub const CKPT_CKPT_TAKEN: c_int = 0;
pub const CKPT_CKPT_RESTARTED: c_int = 1;

/// `struct ckptconfig` of ckpt.h.
#[repr(C)]
pub struct CkptConfig {
    pub flags: c_int,
    pub name: [c_char; MAXNAME],
    pub asyncsig: c_uint,
    pub continues: c_uint,
    pub msperiod: c_uint,
}

/// Runs `f` with every signal blocked (so that no checkpoint handler of this thread can see
/// a half-made change) and the library's state held. While another thread's checkpoint
/// holds the state, this thread waits with its signals as they were, so that the
/// checkpoint can stop it.
fn with_state<R>(f: impl FnOnce(&mut Exclusive) -> R) -> Option<R> {
    let mask = sys::sigmask();
    for _ in 0..1_000_000 {
        sys::set_sigmask(!0);
        if let Some(mut x) = Exclusive::try_acquire() {
            let r = f(&mut x);
            drop(x);
            sys::set_sigmask(mask);
            return Some(r);
        }
        sys::set_sigmask(mask);
        sys::sched_yield();
    }
    eprintln!("ckpt: the library is not initialised or stays busy; call ignored");
    None
}

#[derive(Clone, Copy)]
enum HookKind {
    Pre,
    Post,
    Restart,
}

fn register(kind: HookKind, f: Option<extern "C" fn(*mut c_void)>, arg: *mut c_void) {
    let Some(f) = f else {
        eprintln!("ckpt: a NULL function cannot be registered as a hook; ignored");
        return;
    };
    let added = with_state(|x| {
        let hooks = &mut x.state.hooks;
        let list = match kind {
            HookKind::Pre => &mut hooks.pre,
            HookKind::Post => &mut hooks.post,
            HookKind::Restart => &mut hooks.restart,
        };
        list.push(Hook { f, arg })
    });
    if added == Some(false) {
        eprintln!(
            "ckpt: at most {} hooks of each kind can be registered; ignored",
            checkpoint::MAX_HOOKS
        );
    }
}

/// Registers `f(arg)` to run before each checkpoint, in registration order.
#[no_mangle]
pub extern "C" fn ckpt_on_preckpt(f: Option<extern "C" fn(*mut c_void)>, arg: *mut c_void) {
    register(HookKind::Pre, f, arg);
}

/// Registers `f(arg)` to run after each checkpoint the process continues from, in
/// registration order.
#[no_mangle]
pub extern "C" fn ckpt_on_postckpt(f: Option<extern "C" fn(*mut c_void)>, arg: *mut c_void) {
    register(HookKind::Post, f, arg);
}

/// Registers `f(arg)` to run after a restart, in reverse registration order.
#[no_mangle]
pub extern "C" fn ckpt_on_restart(f: Option<extern "C" fn(*mut c_void)>, arg: *mut c_void) {
    register(HookKind::Restart, f, arg);
}

/// Copies the configuration to `old` (when non-null) and applies the fields of `cfg` that
/// its `flags` select (when non-null).
///
/// # Safety
/// `cfg` and `old` must each be null or point to a `struct ckptconfig`; with `CKPT_NAME` in
/// `cfg->flags`, `cfg->name` must hold a NUL within `CKPT_MAXNAME` bytes (it is checked, not
/// read past).
#[no_mangle]
pub unsafe extern "C" fn ckpt_config(cfg: *const CkptConfig, old: *mut CkptConfig) {
    // SAFETY: the caller guarantees each pointer is null or valid (see above).
    let (cfg, old) = unsafe { (cfg.as_ref(), old.as_mut()) };
    with_state(|x| {
        let state = &mut *x.state;
        if let Some(old) = old {
            let c = &state.config;
            old.flags = CKPT_NAME | CKPT_ASYNCSIG | CKPT_CONTINUE | CKPT_MSPERIOD;
            old.name = [0; MAXNAME];
            for (d, s) in old.name.iter_mut().zip(c.name_bytes()) {
                *d = *s as c_char;
            }
            old.asyncsig = c.asyncsig as c_uint;
            old.continues = c.continues as c_uint;
            old.msperiod = c.msperiod;
        }
        let Some(cfg) = cfg else { return };
        if cfg.flags & CKPT_NAME != 0 {
            let bytes: Vec<u8> = cfg.name.iter().map(|&c| c as u8).collect();
            match CStr::from_bytes_until_nul(&bytes) {
                Ok(name) => {
                    if let Err(e) = crate::config::set_name(&mut state.config, name.to_bytes()) {
                        eprintln!("ckpt_config: name refused: {e}");
                    }
                }
                Err(_) => eprintln!(
                    "ckpt_config: name refused: not NUL-terminated within CKPT_MAXNAME bytes"
                ),
            }
        }
        if cfg.flags & CKPT_CONTINUE != 0 {
            state.config.continues = cfg.continues != 0;
        }
        if cfg.flags & CKPT_ASYNCSIG != 0 {
            let sig = cfg.asyncsig.min(i32::MAX as c_uint) as i32;
            match check_asyncsig(sig) {
                Ok(()) => {
                    if let Err(e) = trigger::set_async_signal(state, sig) {
                        eprintln!(
                            "ckpt_config: cannot install the handler for signal {sig}: errno {e}"
                        );
                    }
                }
                Err(e) => eprintln!("ckpt_config: asyncsig refused: {e}"),
            }
        }
        if cfg.flags & CKPT_MSPERIOD != 0 {
            state.config.msperiod = cfg.msperiod;
            if let Err(e) = trigger::arm_periodic(state) {
                eprintln!("ckpt_config: cannot set up periodic checkpoints: errno {e}");
            }
        }
    });
    // After with_state has put the caller's mask back: a signal ckpt took may be blocked
    // in it, one it gave back may have been blocked by the program meanwhile.
    crate::signals::settle_thread_mask();
}

/// Takes a checkpoint now. Returns `CKPT_CKPT_TAKEN` in the original process (continuing),
/// `CKPT_CKPT_RESTARTED` in a restarted one, `CKPT_CKPT_FAILED` with errno set on failure.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ckpt_ckpt(name: *const c_char) -> c_int {
    let name = if name.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees a NUL-terminated string.
        Some(unsafe { CStr::from_ptr(name) }.to_bytes())
    };
    if let Some(n) = name {
        if n.is_empty() || n.len() >= MAXNAME {
            sys::set_errno(if n.is_empty() {
                libc::EINVAL
            } else {
                libc::ENAMETOOLONG
            });
            return CKPT_CKPT_FAILED;
        }
    }
    // No signal handler may change memory while the image is taken; the restarted process
    // gets the caller's mask back.
    let mask = sys::sigmask();
    sys::set_sigmask(!0);
    let outcome = checkpoint::checkpoint(name, Trigger::Call { sigmask: mask }, None);
    sys::set_sigmask(mask);
    match outcome {
        Outcome::Written | Outcome::Forked => CKPT_CKPT_TAKEN,
        Outcome::Restarted => CKPT_CKPT_RESTARTED,
        // (A call is never coalesced: it writes from this process.)
        Outcome::Busy | Outcome::Coalesced => {
            sys::set_errno(libc::EBUSY);
            CKPT_CKPT_FAILED
        }
        Outcome::Failed(e) => {
            let configured;
            let shown = match name {
                Some(n) => n,
                None => {
                    configured = current_name();
                    &configured[..]
                }
            };
            ckpt_core::report::report_failure(shown, e);
            let (_, errno) = e.describe();
            sys::set_errno(if errno != 0 { errno } else { libc::EIO });
            CKPT_CKPT_FAILED
        }
    }
}

fn current_name() -> Vec<u8> {
    with_state(|x| x.state.config.name_bytes().to_vec()).unwrap_or_default()
}
