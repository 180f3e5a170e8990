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

// ---------------------------------------------------------------------------------------
// Dispositions

/// The action `act` asks for, as the kernel would keep it after glibc's `sigaction`: glibc
/// adds its restorer; the kernel keeps the flags it knows and no SIGKILL or SIGSTOP in the
/// mask.
fn kernel_action(act: &libc::sigaction, restorer: u64) -> SigactionRecord {
    SigactionRecord {
        handler: act.sa_sigaction as u64,
        flags: (act.sa_flags as u32 as u64 | SA_RESTORER) & KERNEL_SA_FLAGS,
        restorer,
        mask: sys::sigset_word(&act.sa_mask) & !UNBLOCKABLE,
    }
}

/// Fills `old` from a kernel action as glibc's `sigaction` does (only the first 64 signals
/// of the mask are written).
fn fill_action(old: &mut libc::sigaction, r: &SigactionRecord) {
    old.sa_sigaction = r.handler as usize;
    sys::set_sigset_word(&mut old.sa_mask, r.mask);
    old.sa_flags = r.flags as c_int;
    sys::set_sigaction_restorer(old, r.restorer);
}

/// `sigaction` on an owned signal: records `act`, returns the recorded action before it.
/// None when `sig` is not owned (any more), for the caller to forward. Signal-safe.
fn owned_sigaction(sig: c_int, act: Option<&libc::sigaction>) -> Option<SigactionRecord> {
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
fn simple_action(handler: Handler, flags: c_int, mask: u64) -> libc::sigaction {
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
fn owned_signal(sig: c_int, handler: Handler, act: libc::sigaction) -> Option<Handler> {
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
fn forward_signal(real: &Real, sig: c_int, handler: Handler) -> Handler {
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
fn bsd_signal_for(sig: c_int, handler: Handler) -> Handler {
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
fn sysv_signal_for(sig: c_int, handler: Handler) -> Handler {
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
fn forward_sig(real: &Real, sig: c_int) -> c_int {
    // SAFETY: `real` is sighold, sigrelse or sigignore, of this prototype.
    match unsafe { real.get::<SigFn>() } {
        // SAFETY: glibc's function with the caller's argument.
        Some(f) => unsafe { f(sig) },
        None => missing(),
    }
}

/// A set holding `sig` alone (first 64 signals).
fn only(sig: c_int) -> libc::sigset_t {
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
fn virtual_after(how: c_int, set: u64, owned: u64, before: u64) -> u64 {
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
unsafe fn change_mask(
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
fn set_from_old_mask(mask: c_int) -> libc::sigset_t {
    let mut set = empty_set();
    sys::set_sigset_word(&mut set, mask as u32 as u64);
    set
}

/// The BSD mask calls: `how` with `mask`, the old mask returned as an `int`.
fn bsd_mask(how: c_int, mask: c_int, real: &Real) -> c_int {
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

#[cfg(test)]
mod tests {
    use super::*;

    const TSTP: u64 = bit(libc::SIGTSTP);
    const CONTROL: u64 = bit(63);
    const USR1: u64 = bit(libc::SIGUSR1);
    const OWNED_NOW: u64 = TSTP | CONTROL;

    #[test]
    fn blocking_everything_keeps_the_owned_signals_virtual() {
        let all = !0u64;
        assert_eq!(virtual_after(libc::SIG_BLOCK, all, OWNED_NOW, 0), OWNED_NOW);
        assert_eq!(
            virtual_after(libc::SIG_SETMASK, all, OWNED_NOW, 0),
            OWNED_NOW
        );
        assert_eq!(
            virtual_after(libc::SIG_SETMASK, USR1, OWNED_NOW, OWNED_NOW),
            0
        );
        assert_eq!(
            virtual_after(libc::SIG_UNBLOCK, TSTP, OWNED_NOW, OWNED_NOW),
            CONTROL
        );
        assert_eq!(
            virtual_after(libc::SIG_BLOCK, USR1, OWNED_NOW, CONTROL),
            CONTROL
        );
        // A bad `how` changes nothing (glibc fails before any change).
        assert_eq!(virtual_after(12345, all, OWNED_NOW, TSTP), TSTP);
    }

    #[test]
    fn settling_moves_blocked_owned_signals_out_of_the_kernel_and_given_back_ones_in() {
        // Inherited across exec: SIGTSTP and SIGUSR1 blocked in the kernel.
        assert_eq!(
            settle(TSTP | USR1, 0, OWNED_NOW),
            Settled {
                block: 0,
                unblock: TSTP,
                virt: TSTP,
            }
        );
        // SIGUSR1 was owned and virtually blocked; it was given back, SIGTSTP taken.
        assert_eq!(
            settle(TSTP, USR1, OWNED_NOW),
            Settled {
                block: USR1,
                unblock: TSTP,
                virt: TSTP,
            }
        );
        assert_eq!(
            settle(USR1, CONTROL, OWNED_NOW),
            Settled {
                block: 0,
                unblock: 0,
                virt: CONTROL,
            }
        );
    }

    #[test]
    fn recorded_actions_look_as_the_kernel_keeps_them() {
        let act = simple_action(
            0x1234,
            libc::SA_SIGINFO | libc::SA_RESETHAND | 0x400,
            bit(libc::SIGINT) | UNBLOCKABLE,
        );
        let r = kernel_action(&act, 0xabc0);
        assert_eq!(r.handler, 0x1234);
        assert_eq!(r.restorer, 0xabc0);
        // The unknown flag (SA_UNSUPPORTED) is dropped; glibc's SA_RESTORER is added.
        assert_eq!(
            r.flags,
            libc::SA_SIGINFO as u64 | libc::SA_RESETHAND as u32 as u64 | SA_RESTORER
        );
        assert_eq!(r.mask, bit(libc::SIGINT));

        let mut back = simple_action(0, 0, 0);
        sys::set_sigset_word(&mut back.sa_mask, !0);
        fill_action(&mut back, &r);
        assert_eq!(back.sa_sigaction, 0x1234);
        assert_eq!(back.sa_flags, r.flags as c_int);
        assert_eq!(sys::sigset_word(&back.sa_mask), bit(libc::SIGINT));
        assert_eq!(back.sa_restorer.map(|f| f as usize), Some(0xabc0));
    }

    #[test]
    fn signals_are_named_as_kill_names_them() {
        let name = |sig| {
            let mut line = Line::<32>::new();
            push_signal_name(&mut line, sig);
            String::from_utf8(line.as_bytes().to_vec()).unwrap()
        };
        assert_eq!(name(libc::SIGTSTP), " (SIGTSTP)");
        assert_eq!(name(63), " (SIGRTMAX-1)");
        assert_eq!(name(35), " (SIGRTMIN+1)");
        assert_eq!(name(32), "");
    }

    #[test]
    fn old_bsd_masks_are_the_first_32_signals() {
        assert_eq!(sys::sigset_word(&set_from_old_mask(-1)), 0xffff_ffff);
        assert_eq!(
            sys::sigset_word(&set_from_old_mask(1 << (libc::SIGTSTP - 1))),
            TSTP
        );
    }

    #[test]
    fn stripping_leaves_the_callers_set_alone() {
        let mut set = only(libc::SIGTSTP);
        sys::set_sigset_word(&mut set, TSTP | USR1 | CONTROL);
        // SAFETY: a valid set.
        let stripped = unsafe { Stripped::new(&set, OWNED_NOW) };
        assert_eq!(stripped.0.as_ref().map(sys::sigset_word), Some(USR1));
        assert_eq!(sys::sigset_word(&set), TSTP | USR1 | CONTROL);
        // SAFETY: null is allowed.
        assert!(unsafe { Stripped::new(core::ptr::null(), OWNED_NOW) }
            .ptr()
            .is_null());
    }
}
