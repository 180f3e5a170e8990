//! The signals ckpt owns, and the wrappers that keep them its own.
//!
//! Under ckpt the checkpoint signal (`config.asyncsig`, when not 0) and the control signal
//! (`CONTROL_SIGNAL`, 63) belong to the library. A program may still ask for them — vim,
//! less and top install SIGTSTP handlers, top a fatal handler on every signal, daemons block
//! every signal — so the C library's calls that change a disposition or a mask are wrapped
//! (like `mutex`, with `dlsym(RTLD_NEXT)`; DMTCP does the same):
//!
//! - **Dispositions.** For an owned signal, the program's action is recorded in `ACTIONS`
//!   (in the kernel's layout, exactly as the kernel would have kept it) and the kernel keeps
//!   ckpt's handler. The program is told its own action when it asks. Its handler for an
//!   owned signal is recorded but never called: the signal checkpoints instead. When ckpt
//!   gives a signal back (`ckpt_config` moves the checkpoint signal), the recorded action
//!   goes into the kernel.
//! - **Masks.** Owned signals are taken out of every set the program asks to block
//!   (`sigprocmask`, `pthread_sigmask`, `sigsuspend`, `pselect`, `ppoll`, …) and out of the
//!   sets it waits for (`sigwait`, …). What it asked to block of them is kept per thread (a
//!   thread-specific value: glibc keeps it in the thread's control block, so it is copied by
//!   `fork`, stored in a checkpoint, and cleared when the thread ends) and shown in every old
//!   mask returned, so `sigprocmask(0, NULL, &old)` says what the program set. (Should glibc
//!   hand the library a key it keeps outside the control block, where setting a value may
//!   allocate, nothing is kept: the program is then told that ckpt's signals are not
//!   blocked.)
//! - Signals that are not owned, numbers glibc refuses (0, > 64, its own 32 and 33), and
//!   every call made before the library's constructor has run, are forwarded unchanged, so
//!   that errors and errno are glibc's.
//!
//! What gets past the wrappers: raw system calls (`syscall(SYS_rt_sigaction, …)`, Go's
//! runtime), glibc's own internal calls (`setcontext` loading a mask, `siglongjmp`
//! restoring one — those masks came from the kernel, without the owned signals, unless the
//! program built them), and the `sa_mask` of the program's own handlers (while one runs,
//! ckpt's signals wait until it returns). A replaced handler is found at the start of the
//! next checkpoint (`audit_handlers`): one line on stderr names the signal, and ckpt's
//! handler is installed again. A signal that is blocked or ignored past the wrappers never
//! arrives, and the library cannot report what it never sees.
//!
//! Approximations, all for owned signals only: a new thread starts with none of them
//! virtually blocked (the kernel would copy its creator's mask); the virtual bits are not
//! put back when a handler returns (the kernel restores the mask a handler changed) and do
//! not change during `sigsuspend` and its kin; a program that execs another loses them (and
//! an ignored owned signal becomes default in the new program); a `vfork` child shares the
//! recorded actions with its parent. Every function that may run in a signal handler here
//! is signal-safe: atomics, raw system calls, a lock held with every signal blocked.

use core::ffi::{c_int, c_void, CStr};

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use ckpt_image::SigactionRecord;

use crate::line::Line;

use crate::sys::{self, SysResult};

pub mod dispositions;
pub mod masks;
pub mod waits;

use dispositions::*;
use masks::*;

/// The owned signals, bit `sig - 1` each. Read by every wrapper, lock-free.
static OWNED: AtomicU64 = AtomicU64::new(0);

/// Set once `init` has made the wrappers ready to act; before it they forward everything.
static READY: AtomicBool = AtomicBool::new(false);

/// The program's action for each signal while ckpt owns it, in the kernel's layout
/// (handler, flags, restorer, mask). Changed under `lock()`; read under it too, so each
/// record is consistent, but kept in atomics so that no read is ever a data race.
static ACTIONS: [[AtomicU64; 4]; 64] = [const { [const { AtomicU64::new(0) }; 4] }; 64];

/// ckpt's own action for each owned signal, as the kernel reported it once installed: to
/// recognise it at a checkpoint and install it again.
static INSTALLED: [[AtomicU64; 4]; 64] = [const { [const { AtomicU64::new(0) }; 4] }; 64];

/// glibc's signal restorer (`__restore_rt`), as the kernel reported it for ckpt's handler:
/// the program's recorded actions carry it, as glibc's `sigaction` would have put it.
static RESTORER: AtomicU64 = AtomicU64::new(0);

/// Owned signals for which the program called `siginterrupt(sig, 1)` (glibc keeps its own
/// such set for the signals it sees, which `signal()` consults for SA_RESTART).
static INTERRUPTING: AtomicU64 = AtomicU64::new(0);

/// The thread-specific data key holding each thread's virtual blocked bits.
static BLOCKED_KEY: AtomicU32 = AtomicU32::new(NO_KEY);

const NO_KEY: u32 = u32::MAX;

/// glibc keeps the values of keys below this in the thread's control block (no allocation,
/// no lock: safe in a signal handler); above it, it may allocate, so the key is not used.
const KEYS_IN_TCB: u32 = 32;

const SIG_HOLD: usize = 2;

const SIG_ERR: usize = !0;

/// `SA_RESTORER`, which glibc adds to every action it installs on x86-64.
const SA_RESTORER: u64 = 0x0400_0000;

/// The flags the kernel keeps in an action (`UAPI_SA_FLAGS` of linux/signal_types.h);
/// it drops any other bit, so that a program can tell which flags it knows.
const KERNEL_SA_FLAGS: u64 = libc::SA_NOCLDSTOP as u64
    | libc::SA_NOCLDWAIT as u64
    | libc::SA_SIGINFO as u64
    | libc::SA_ONSTACK as u64
    | libc::SA_RESTART as u64
    | libc::SA_NODEFER as u64
    | libc::SA_RESETHAND as u32 as u64
    | 0x800 // SA_EXPOSE_TAGBITS
    | SA_RESTORER;

/// Bit `sig - 1`, for `sig` in 1..=64.
const fn bit(sig: c_int) -> u64 {
    1u64 << (sig - 1)
}

/// Signals the kernel never lets anyone block, catch or mask.
const UNBLOCKABLE: u64 = bit(libc::SIGKILL) | bit(libc::SIGSTOP);

/// Whether ckpt owns `sig` now. Numbers glibc refuses are never owned (taking one fails
/// in glibc's `sigaction`).
fn owned(sig: c_int) -> bool {
    READY.load(Ordering::Acquire)
        && (1..=64).contains(&sig)
        && OWNED.load(Ordering::Acquire) & bit(sig) != 0
}

/// The owned signals, or none before `init`.
fn owned_set() -> u64 {
    if READY.load(Ordering::Acquire) {
        OWNED.load(Ordering::Acquire)
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------
// The lock around the recorded actions and ownership

/// Which thread holds the lock on `ACTIONS` and `OWNED` changes (0: nobody).
static LOCK_HOLDER: AtomicU32 = AtomicU32::new(0);

/// The lock, held: every signal of the holding thread is blocked until it is dropped, so a
/// handler of the same thread can never wait for it; a holder that no longer exists (a
/// child forked while another thread held it) is replaced. Signal-safe.
struct Held {
    mask: u64,
}

fn lock() -> Held {
    let mask = sys::block_all_signals();
    let me = sys::gettid();
    let mut tries = 0u32;
    loop {
        let holder = match LOCK_HOLDER.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => return Held { mask },
            Err(holder) => holder,
        };
        tries = tries.wrapping_add(1);
        if tries.is_multiple_of(128) {
            let gone = !sys::thread_alive(holder);
            if gone
                && LOCK_HOLDER
                    .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Held { mask };
            }
            sys::sched_yield();
        } else {
            core::hint::spin_loop();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        LOCK_HOLDER.store(0, Ordering::Release);
        sys::set_sigmask(self.mask);
    }
}

fn load_record(table: &[[AtomicU64; 4]; 64], sig: c_int) -> SigactionRecord {
    let w = &table[(sig - 1) as usize];
    SigactionRecord {
        handler: w[0].load(Ordering::Relaxed),
        flags: w[1].load(Ordering::Relaxed),
        restorer: w[2].load(Ordering::Relaxed),
        mask: w[3].load(Ordering::Relaxed),
    }
}

fn store_record(table: &[[AtomicU64; 4]; 64], sig: c_int, r: &SigactionRecord) {
    let w = &table[(sig - 1) as usize];
    w[0].store(r.handler, Ordering::Relaxed);
    w[1].store(r.flags, Ordering::Relaxed);
    w[2].store(r.restorer, Ordering::Relaxed);
    w[3].store(r.mask, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------
// Taking signals and giving them back (library load, `ckpt_config`)

/// Makes the wrappers ready: finds glibc's functions and the key for the virtual masks.
/// Called once at library load, before any signal is taken.
pub fn init() {
    for real in ALL_REAL {
        real.address();
    }
    if let Some(key) = sys::thread_key_create() {
        if key < KEYS_IN_TCB {
            BLOCKED_KEY.store(key, Ordering::Relaxed);
        } else {
            // The program's masks still never block ckpt's signals; it is only told
            // that they are not blocked when it asks.
            sys::thread_key_delete(key);
        }
    }
    READY.store(true, Ordering::Release);
}

/// Takes `sig` for ckpt: the kernel's current action becomes the program's recorded one,
/// and `handler` is installed. Not signal-safe (it may look glibc's `sigaction` up).
pub fn take(
    sig: c_int,
    handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void),
) -> SysResult<()> {
    let real = REAL_SIGACTION.address().ok_or(libc::ENOSYS)?;
    let _held = lock();
    let mut before = SigactionRecord::default();
    sys::rt_sigaction(sig, None, Some(&mut before))?;
    sys::install_handler(sig, handler, real)?;
    let mut installed = SigactionRecord::default();
    sys::rt_sigaction(sig, None, Some(&mut installed))?;
    RESTORER.store(installed.restorer, Ordering::Relaxed);
    store_record(&INSTALLED, sig, &installed);
    store_record(&ACTIONS, sig, &before);
    OWNED.fetch_or(bit(sig), Ordering::AcqRel);
    Ok(())
}

/// Gives `sig` back to the program: its recorded action goes into the kernel. Signal-safe.
pub fn give_back(sig: c_int) {
    let _held = lock();
    if OWNED.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) != 0 {
        sys::restore_action(sig, &load_record(&ACTIONS, sig));
    }
}

/// Brings the calling thread's mask in line with what ckpt owns now, after the library
/// loaded (the mask is inherited across exec, and another library's constructor may have
/// blocked signals before ours ran) or after `ckpt_config` moved the checkpoint signal:
/// owned signals blocked in the kernel are unblocked and recorded as the program's wish,
/// and recorded wishes for signals ckpt gave back are put into the kernel. Other threads
/// catch up with signals given back at their next mask call; an owned signal they block
/// in the kernel stays blocked there (process-wide signals reach a thread that does not
/// block it). Signal-safe.
pub fn settle_thread_mask() {
    if !READY.load(Ordering::Acquire) {
        return;
    }
    let owned = OWNED.load(Ordering::Acquire);
    let (kernel, virt) = (sys::sigmask(), thread_blocked());
    let s = settle(kernel, virt, owned);
    if s.block != 0 {
        sys::change_sigmask(true, s.block);
    }
    if s.unblock != 0 {
        sys::change_sigmask(false, s.unblock);
    }
    if s.virt != virt {
        set_thread_blocked(s.virt);
    }
}

/// How the kernel mask and the virtual bits of a thread change to match `owned`.
#[derive(Debug, PartialEq, Eq)]
struct Settled {
    /// Signals to block in the kernel: recorded wishes for signals no longer owned.
    block: u64,
    /// Signals to unblock in the kernel: owned ones it blocks.
    unblock: u64,
    /// The virtual bits after.
    virt: u64,
}

fn settle(kernel: u64, virt: u64, owned: u64) -> Settled {
    Settled {
        block: virt & !owned & !kernel,
        unblock: kernel & owned,
        virt: (virt | kernel) & owned,
    }
}

/// Puts recorded wishes for signals ckpt no longer owns into the kernel (the checkpoint
/// signal moved since this thread last changed its mask). Signal-safe.
fn fold_given_back(owned: u64) {
    let virt = thread_blocked();
    if virt & !owned != 0 {
        sys::change_sigmask(true, virt & !owned);
        set_thread_blocked(virt & owned);
    }
}

fn thread_blocked() -> u64 {
    match BLOCKED_KEY.load(Ordering::Relaxed) {
        NO_KEY => 0,
        key => sys::thread_value(key),
    }
}

fn set_thread_blocked(bits: u64) {
    match BLOCKED_KEY.load(Ordering::Relaxed) {
        NO_KEY => {}
        key => sys::set_thread_value(key, bits),
    }
}

// ---------------------------------------------------------------------------------------
// The checkpoint's look at what got past the wrappers

/// At the start of a checkpoint: an owned signal whose kernel action is no longer ckpt's
/// handler was changed past the wrappers (a raw system call). Says so in one line, records
/// the action as the program's, and installs ckpt's handler again. Signal-safe.
pub fn audit_handlers() {
    let owned = owned_set();
    for sig in 1..=64 {
        if owned & bit(sig) == 0 {
            continue;
        }
        let mut now = SigactionRecord::default();
        let ours = load_record(&INSTALLED, sig);
        if sys::rt_sigaction(sig, None, Some(&mut now)).is_err() || now.handler == ours.handler {
            continue;
        }
        {
            let _held = lock();
            store_record(&ACTIONS, sig, &now);
            sys::restore_action(sig, &ours);
        }
        let mut line = Line::<256>::new();
        line.push(b"ckpt: signal ").push_decimal(sig as u64);
        push_signal_name(&mut line, sig);
        line.push(
            b" had lost ckpt's handler (changed by a raw system call?); it is ckpt's again, \
              and the program's action is recorded\n",
        );
        sys::write_stderr(line.as_bytes());
    }
}

/// ` (SIGTSTP)`, ` (SIGRTMAX-1)`: the name `kill -l` gives `sig`, when it has one.
fn push_signal_name<const N: usize>(line: &mut Line<N>, sig: c_int) {
    match (crate::config::signal_name(sig), sig) {
        (Some(name), _) => line.push(b" (SIG").push(name.as_bytes()),
        (None, 34..=49) => line.push(b" (SIGRTMIN+").push_decimal((sig - 34) as u64),
        (None, 50..=64) => line.push(b" (SIGRTMAX-").push_decimal((64 - sig) as u64),
        (None, _) => return,
    };
    line.push(b")");
}

// ---------------------------------------------------------------------------------------
// glibc's functions

/// A function of the C library this module wraps, found on first use with
/// `dlsym(RTLD_NEXT)` (at library load for every one, so that no wrapper looks one up in a
/// signal handler afterwards).
struct Real {
    name: &'static CStr,
    address: AtomicU64,
}

impl Real {
    const fn new(name: &'static CStr) -> Real {
        Real {
            name,
            address: AtomicU64::new(0),
        }
    }

    fn address(&self) -> Option<u64> {
        match self.address.load(Ordering::Relaxed) {
            0 => {
                let a = sys::next_symbol(self.name)?;
                self.address.store(a, Ordering::Relaxed);
                Some(a)
            }
            a => Some(a),
        }
    }

    /// The function, typed.
    ///
    /// # Safety
    /// `F` must be the C prototype of the function named `self.name`.
    unsafe fn get<F: Copy>(&self) -> Option<F> {
        // SAFETY: F is that function's prototype (the caller's contract).
        self.address().map(|a| unsafe { sys::function_at::<F>(a) })
    }
}

macro_rules! reals {
    ($($id:ident = $name:literal;)*) => {
        $(static $id: Real = Real::new($name);)*
        static ALL_REAL: &[&Real] = &[$(&$id),*];
    };
}

reals! {
    REAL_SIGACTION = c"sigaction";
    REAL_SIGNAL = c"signal";
    REAL_SYSV_SIGNAL = c"sysv_signal";
    REAL_SIGSET = c"sigset";
    REAL_SIGIGNORE = c"sigignore";
    REAL_SIGINTERRUPT = c"siginterrupt";
    REAL_SIGHOLD = c"sighold";
    REAL_SIGRELSE = c"sigrelse";
    REAL_SIGPROCMASK = c"sigprocmask";
    REAL_PTHREAD_SIGMASK = c"pthread_sigmask";
    REAL_SIGSUSPEND = c"sigsuspend";
    REAL_SIGPAUSE = c"__sigpause";
    REAL_SIGBLOCK = c"sigblock";
    REAL_SIGSETMASK = c"sigsetmask";
    REAL_SIGGETMASK = c"siggetmask";
    REAL_PSELECT = c"pselect";
    REAL_PPOLL = c"ppoll";
    REAL_PPOLL_CHK = c"__ppoll_chk";
    REAL_EPOLL_PWAIT = c"epoll_pwait";
    REAL_EPOLL_PWAIT2 = c"epoll_pwait2";
    REAL_SIGWAIT = c"sigwait";
    REAL_SIGWAITINFO = c"sigwaitinfo";
    REAL_SIGTIMEDWAIT = c"sigtimedwait";
}

type SigsetPtr = *const libc::sigset_t;

type Handler = libc::sighandler_t;

type SignalFn = unsafe extern "C" fn(c_int, Handler) -> Handler;

type SigFn = unsafe extern "C" fn(c_int) -> c_int;

type MaskFn = unsafe extern "C" fn(c_int, SigsetPtr, *mut libc::sigset_t) -> c_int;

type SuspendFn = unsafe extern "C" fn(SigsetPtr) -> c_int;

/// Fails a call whose glibc function cannot be found (never on a working system).
fn missing() -> c_int {
    sys::set_errno(libc::ENOSYS);
    -1
}

/// A copy of the program's set (when there is one) without the owned signals, to hand to
/// glibc in its place.
struct Stripped(Option<libc::sigset_t>);

impl Stripped {
    /// # Safety
    /// `set` must be null or point to a `sigset_t`.
    unsafe fn new(set: SigsetPtr, owned: u64) -> Stripped {
        // SAFETY: null or a valid sigset_t (the caller's contract); sigset_t is plain data.
        Stripped(unsafe { set.as_ref() }.map(|s| {
            let mut copy = *s;
            sys::set_sigset_word(&mut copy, sys::sigset_word(s) & !owned);
            copy
        }))
    }

    /// The copy, or null when the program passed none.
    fn ptr(&self) -> SigsetPtr {
        self.0.as_ref().map_or(core::ptr::null(), |s| s)
    }
}

/// An empty `sigset_t`.
fn empty_set() -> libc::sigset_t {
    // SAFETY: sigset_t is an array of integers; all zeros is the empty set.
    unsafe { core::mem::zeroed() }
}

#[cfg(test)]
mod tests;
