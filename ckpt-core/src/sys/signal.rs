//! Signals: actions, masks, the alternate stack, pending signals and their information,
//! and the context a handler receives.

use core::ffi::{c_int, c_void};

use super::*;

/// Raw `rt_sigaction` in the kernel's layout (query or set).
pub fn rt_sigaction(
    sig: c_int,
    new: Option<&ckpt_image::SigactionRecord>,
    old: Option<&mut ckpt_image::SigactionRecord>,
) -> SysResult<()> {
    let newp = new.map_or(core::ptr::null(), |n| n as *const _);
    let oldp = old.map_or(core::ptr::null_mut(), |o| o as *mut _);
    // SAFETY: both pointers are null or point to records in the kernel's sigaction layout.
    check(unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, newp, oldp, 8) }).map(drop)
}

/// The calling thread's blocked-signal mask.
pub fn sigmask() -> u64 {
    let mut old = 0u64;
    // SAFETY: query only; `old` receives 8 bytes.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            core::ptr::null::<u64>(),
            &mut old,
            8,
        )
    };
    old
}

pub fn set_sigmask(mask: u64) {
    // SAFETY: sets the calling thread's mask from an 8-byte value.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask,
            core::ptr::null_mut::<u64>(),
            8,
        )
    };
}

/// The alternate signal stack: (sp, flags, size).
pub fn sigaltstack() -> (u64, u32, u64) {
    let mut ss = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: query only.
    unsafe { libc::sigaltstack(core::ptr::null(), &mut ss) };
    (ss.ss_sp as u64, ss.ss_flags as u32, ss.ss_size as u64)
}

/// Installs `handler` (an `SA_SIGINFO` handler) for `sig` with every signal blocked while it
/// runs, through `sigaction_fn`: the address of glibc's `sigaction` (this library's own
/// `sigaction` would only record the action, see `signals`), which puts its own restorer
/// in the kernel's action as for any handler of the program.
pub fn install_handler(
    sig: c_int,
    handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void),
    sigaction_fn: u64,
) -> SysResult<()> {
    // SAFETY: a zeroed sigaction is valid; the fields are filled below.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = handler as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    set_sigset_word(&mut sa.sa_mask, !0);
    // SAFETY: `sigaction_fn` is glibc's sigaction (the caller's contract), called with a
    // valid action; the handler's code lives as long as the process (this library is never
    // unloaded: it is preloaded or linked).
    let r = unsafe {
        let f: SigactionFn = function_at(sigaction_fn);
        f(sig, &sa, core::ptr::null_mut())
    };
    check(r as libc::c_long).map(drop)
}

/// Puts back a signal action saved earlier (in the kernel's layout).
pub fn restore_action(sig: c_int, action: &ckpt_image::SigactionRecord) {
    let _ = rt_sigaction(sig, Some(action), None);
}

/// The C prototype of `sigaction`.
pub type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

/// Blocks every signal in the calling thread; returns the mask it had. Signal-safe.
pub fn block_all_signals() -> u64 {
    let all = !0u64;
    let mut old = 0u64;
    // SAFETY: sets the calling thread's mask from an 8-byte value and reads the old one
    // into a local.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all,
            &mut old,
            8,
        )
    };
    old
}

/// Blocks (`block`) or unblocks the signals of `set` in the calling thread. Signal-safe.
pub fn change_sigmask(block: bool, set: u64) {
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: changes the calling thread's mask from an 8-byte value.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set,
            core::ptr::null_mut::<u64>(),
            8,
        )
    };
}

/// The first 64 signals of a C `sigset_t`: all the kernel knows on x86-64 (bit `sig - 1`).
pub fn sigset_word(set: &libc::sigset_t) -> u64 {
    // SAFETY: glibc's sigset_t is an array of unsigned longs, the first holding signals
    // 1-64; the reference makes the read valid and aligned.
    unsafe { *(set as *const libc::sigset_t).cast::<u64>() }
}

/// Sets the first 64 signals of a C `sigset_t`, leaving the rest as they are.
pub fn set_sigset_word(set: &mut libc::sigset_t, word: u64) {
    // SAFETY: as for `sigset_word`, through a mutable reference.
    unsafe { *(set as *mut libc::sigset_t).cast::<u64>() = word };
}

/// Sets the restorer field of a C `struct sigaction` to `addr` (0: none).
pub fn set_sigaction_restorer(action: &mut libc::sigaction, addr: u64) {
    // SAFETY: Option<extern "C" fn()> is a nullable function pointer: 0 is None, any other
    // value an address. The restorer is only ever handed back to the kernel, which jumps to
    // it; `addr` is glibc's restorer as the kernel reported it, or 0.
    action.sa_restorer =
        unsafe { core::mem::transmute::<usize, Option<extern "C" fn()>>(addr as usize) };
}

/// A `siginfo_t` as the kernel hands it out (128 bytes), kept to be queued again.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct SigInfo(pub [u8; 128]);

impl SigInfo {
    pub const fn zeroed() -> SigInfo {
        SigInfo([0; 128])
    }

    pub fn signo(&self) -> c_int {
        c_int::from_ne_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

/// Takes one pending instance of a signal in `set` (bit `sig - 1`; blocked or not) with its
/// information, without waiting: `Some(info)`, or `None` when none is pending. Signal-safe.
pub fn take_pending(set: u64) -> Option<SigInfo> {
    let mut info = SigInfo::zeroed();
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: rt_sigtimedwait reads an 8-byte set and a timeout and writes at most 128 bytes
    // of siginfo into `info`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set,
            info.0.as_mut_ptr(),
            &zero,
            8,
        )
    };
    (r > 0).then_some(info)
}

/// Queues `info` (its signal, code, value, …, as the kernel gave them) to the calling thread.
/// The kernel takes any code a process queues to itself. Signal-safe.
pub fn queue_to_self(info: &SigInfo) -> SysResult<()> {
    // SAFETY: rt_tgsigqueueinfo reads 128 bytes of siginfo; the ids are our own.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            info.signo(),
            info.0.as_ptr(),
        )
    })
    .map(drop)
}

/// Signals pending for the calling thread or the process.
pub fn sigpending() -> u64 {
    let mut set = 0u64;
    // SAFETY: the kernel writes 8 bytes into `set`.
    unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut set, 8) };
    set
}

/// Sends `sig` to the calling thread.
pub fn raise_in_thread(sig: c_int) {
    // SAFETY: plain tgkill to ourselves.
    unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            sig,
        )
    };
}

/// `si_code`, `si_pid` and `si_value.sival_int` of a delivered signal's info.
///
/// # Safety
/// `info` must be null or the siginfo the kernel passed to an `SA_SIGINFO` handler.
pub unsafe fn siginfo_fields(info: *const libc::siginfo_t) -> (c_int, u32, i32) {
    if info.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: the kernel passed a valid siginfo to the SA_SIGINFO handler; the pid and value
    // fields are read as the layout of queued and timer signals has them.
    unsafe {
        (
            (*info).si_code,
            (*info).si_pid() as u32,
            (*info).si_value().sival_ptr as usize as i32,
        )
    }
}

/// Removes one pending instance of `sig` without running its handler.
pub fn discard_pending(sig: c_int) {
    let set: u64 = 1 << (sig - 1);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: rt_sigtimedwait with an 8-byte set, no info wanted and a zero timeout.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set,
            core::ptr::null_mut::<libc::siginfo_t>(),
            &zero,
            8,
        )
    };
}

/// The instruction pointer a signal interrupted, from the `ucontext_t` a SA_SIGINFO handler
/// receives (0 when there is none).
///
/// # Safety
/// `ctx` is null or the context pointer the kernel passed to the running handler.
pub unsafe fn interrupted_pc(ctx: *const c_void) -> u64 {
    if ctx.is_null() {
        return 0;
    }
    // SAFETY: per the contract, ctx points to the kernel's ucontext_t for this signal.
    unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 }
}

/// Where a signal interrupted the thread: its instruction and stack pointers and its signal
/// mask there, from the `ucontext_t` a SA_SIGINFO handler receives ((0, 0, 0) when there is
/// none).
///
/// # Safety
/// `ctx` is null or the context pointer the kernel passed to the running handler.
pub unsafe fn interrupted_state(ctx: *const c_void) -> (u64, u64, u64) {
    if ctx.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: per the contract, ctx points to the kernel's ucontext_t for this signal; the
    // kernel's 8-byte mask sits where glibc's sigset_t begins.
    unsafe {
        let uc = &*(ctx as *const libc::ucontext_t);
        let mask = core::ptr::read_unaligned(core::ptr::addr_of!(uc.uc_sigmask) as *const u64);
        (
            uc.uc_mcontext.gregs[libc::REG_RIP as usize] as u64,
            uc.uc_mcontext.gregs[libc::REG_RSP as usize] as u64,
            mask,
        )
    }
}

/// Sends `sig` to thread `tid` of this process (`SI_TKILL`: the kernel fills in our pid and
/// uid, which nobody else can forge).
pub fn tgkill(tid: u32, sig: c_int) -> SysResult<()> {
    // SAFETY: tgkill takes integers only.
    check(unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as c_int, sig) }).map(drop)
}

/// Sends `sig` to this process (any thread that does not block it takes it).
pub fn raise_in_process(sig: c_int) {
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(libc::getpid(), sig) };
}
