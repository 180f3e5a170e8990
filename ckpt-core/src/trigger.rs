//! Triggers: the checkpoint signal, the control signal and the periodic timer, and their
//! handlers.
//!
//! Installing a trigger takes its signal for ckpt (`signals::take`: the program's action is
//! recorded, and so is every action it sets later); removing it gives the signal back with
//! the action the program last asked for. The periodic timer is a POSIX timer of the
//! library's own delivering `CONTROL_SIGNAL` to the thread that set it, so `alarm` and
//! `setitimer` remain the program's. The same signal, queued by `ckpt checkpoint`, requests
//! a checkpoint (`request`), and announces that the image writer has exited (`writer`).
//!
//! A checkpoint signal that finds the program inside the vDSO, or inside the mutex code
//! (`mutex::in_critical_code`), is put off and tried again 20 µs later by a one-shot timer
//! (`defer_inside_vdso`). The handlers here run with every signal blocked: signal-safe.

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use crate::arena::Arena;
use crate::capture;
use crate::checkpoint::{checkpoint, Outcome, State, Trigger, STATE};
use crate::config::CONTROL_SIGNAL;
use crate::report::{periodic_went_well, report_failure, report_periodic_failure};
use crate::signals;
use crate::sys::{self, SysResult};
use crate::writer::writer_finished;

/// Whether the periodic timer is armed in this process: a timer signal that is neither
/// the periodic timer's nor a retry is not acted on.
pub static PERIODIC: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Makes `sig` the asynchronous checkpoint signal (0: none), giving the previous one back
/// to the program.
pub fn set_async_signal(state: &mut State, sig: i32) -> SysResult<()> {
    let old = state.config.asyncsig;
    if old == sig && state.async_installed {
        return Ok(());
    }
    if state.async_installed {
        signals::give_back(old);
        state.async_installed = false;
    }
    if sig != 0 {
        signals::take(sig, on_checkpoint_signal)?;
        state.async_installed = true;
    }
    state.config.asyncsig = sig;
    Ok(())
}

/// Arms the periodic timer for `state.config.msperiod` (disarms it for 0), creating the
/// timer and installing its handler the first time. Signal-safe.
pub fn arm_periodic(state: &mut State) -> SysResult<()> {
    let period = state.config.msperiod;
    // Timers are not inherited: in a child of the process that made it, the id is stale (and
    // may name a timer of the child's own), so it is forgotten, never used.
    let pid = sys::getpid();
    if state.periodic_timer.is_some_and(|(_, owner)| owner != pid) {
        state.periodic_timer = None;
    }
    PERIODIC.store(period != 0, core::sync::atomic::Ordering::Relaxed);
    if period == 0 {
        if let Some((id, _)) = state.periodic_timer.take() {
            sys::timer_delete(id);
        }
        return Ok(());
    }
    install_control(state)?;
    let id = match state.periodic_timer {
        Some((id, _)) => id,
        None => {
            let id = sys::timer_create_for_thread(CONTROL_SIGNAL, sys::gettid(), 0)?;
            state.periodic_timer = Some((id, pid));
            id
        }
    };
    sys::timer_set_period(id, period)
}

/// Installs the handler of the control signal (once).
pub fn install_control(state: &mut State) -> SysResult<()> {
    if !state.control_installed {
        signals::take(CONTROL_SIGNAL, on_control_signal)?;
        state.control_installed = true;
    }
    Ok(())
}

/// The handler of the asynchronous checkpoint signal. Signal-safe.
pub(crate) extern "C" fn on_checkpoint_signal(
    _sig: i32,
    _info: *mut libc::siginfo_t,
    ctx: *mut c_void,
) {
    // SAFETY: ctx is what the kernel passed to this SA_SIGINFO handler.
    let pc = unsafe { sys::interrupted_pc(ctx) };
    run_outside_vdso(pc, Retry::Signal);
}

/// Takes the checkpoint `what` asks for, unless `pc` (where its signal interrupted the
/// program) is inside the vDSO: then it is put off (`defer_inside_vdso`). Signal-safe.
pub(crate) fn run_outside_vdso(pc: u64, what: Retry) {
    if defer_inside_vdso(pc, what) {
        return;
    }
    INTERRUPTED_PC.store(pc, Ordering::Relaxed);
    match what {
        Retry::Signal => handle(Trigger::Signal),
        Retry::Periodic => handle(Trigger::Periodic),
        Retry::Request(pid, value) => crate::request::serve(pid, value),
    }
}

/// The vDSO's address range, to tell a signal that interrupted the program inside it. Set at
/// library load and after each restart. Signal-safe.
pub fn note_vdso(arena: &mut Arena) {
    let range = match sys::read_file(b"/proc/thread-self/maps\0", arena.maps) {
        Ok(n) if n < arena.maps.len() => capture::vdso_range(&arena.maps[..n]),
        _ => None,
    };
    let (lo, hi) = range.unwrap_or((0, 0));
    VDSO_RANGE[0].store(lo, Ordering::Relaxed);
    VDSO_RANGE[1].store(hi, Ordering::Relaxed);
    RETRY_TIMER.store(-1, Ordering::Relaxed);
}

/// Whether `pc` lies in the vDSO. Signal-safe.
pub(crate) fn in_vdso(pc: u64) -> bool {
    (VDSO_RANGE[0].load(Ordering::Relaxed)..VDSO_RANGE[1].load(Ordering::Relaxed)).contains(&pc)
}

/// Whether a thread interrupted at `pc` must not stop there for a checkpoint: inside the
/// vDSO, or the mutex wrappers and glibc's mutex code (see `defer_inside_vdso`). Signal-safe.
pub(crate) fn no_stop_at(pc: u64) -> bool {
    in_vdso(pc) || crate::mutex::in_critical_code(pc)
}

static VDSO_RANGE: [core::sync::atomic::AtomicU64; 2] = [
    core::sync::atomic::AtomicU64::new(0),
    core::sync::atomic::AtomicU64::new(0),
];

/// The one-shot timer that tries a checkpoint again (-1: not created in this process), the
/// tries so far, and what to try: `RETRY_SIGNAL`, `RETRY_PERIODIC`, or a request (the
/// requester's pid and value, as `ckpt checkpoint` sent them).
pub(crate) static RETRY_TIMER: core::sync::atomic::AtomicI32 =
    core::sync::atomic::AtomicI32::new(-1);

pub(crate) static RETRY_TIMER_PID: core::sync::atomic::AtomicU32 =
    core::sync::atomic::AtomicU32::new(0);

static RETRIES: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

static RETRY_WHAT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

static RETRY_REQUEST: [core::sync::atomic::AtomicU32; 2] = [
    core::sync::atomic::AtomicU32::new(0),
    core::sync::atomic::AtomicU32::new(0),
];

const RETRY_SIGNAL: u32 = 1;

const RETRY_PERIODIC: u32 = 2;

const RETRY_REQUEST_WHAT: u32 = 3;

/// What a deferred checkpoint is.
#[derive(Clone, Copy)]
pub(crate) enum Retry {
    Signal,
    Periodic,
    /// A `ckpt checkpoint` request: the requester's pid and the signal's value.
    Request(u32, u32),
}

/// The control signal's value when it comes from the retry timer.
const RETRY_VALUE: i32 = 0x5254_5259;

/// Tries are 20 µs apart, for at most 50 ms: a program in a tight loop of clock calls is
/// outside the vDSO a tenth of the time or more, so a try finds it there within a few
/// hundred microseconds.
const RETRY_NS: u64 = 20_000;

const MAX_RETRIES: u32 = 2500;

/// A checkpoint that would catch the program inside the vDSO is tried again a little later:
/// a thread interrupted there resumes in vDSO code reading the kernel's data directly, which
/// only works under a kernel with the same vDSO, while one interrupted anywhere else restarts
/// under any (the stub forwards the old vDSO's functions). Likewise inside the mutex
/// wrappers and glibc's locking code (`mutex::in_critical_code`). True when the try is put
/// off; after MAX_RETRIES the checkpoint is taken anyway (and marked `THREAD_IN_VDSO` when
/// it is inside the vDSO). Signal-safe.
pub(crate) fn defer_inside_vdso(pc: u64, what: Retry) -> bool {
    if !no_stop_at(pc) || RETRIES.fetch_add(1, Ordering::Relaxed) >= MAX_RETRIES {
        RETRIES.store(0, Ordering::Relaxed);
        return false;
    }
    let saved_errno = sys::get_errno();
    let mut id = RETRY_TIMER.load(Ordering::Relaxed);
    // Timers are not inherited: in a child, the id is stale (and may name one of its own).
    let pid = sys::getpid();
    if id < 0 || RETRY_TIMER_PID.load(Ordering::Relaxed) != pid {
        id =
            sys::timer_create_for_thread(crate::config::CONTROL_SIGNAL, sys::gettid(), RETRY_VALUE)
                .unwrap_or(-1);
        RETRY_TIMER.store(id, Ordering::Relaxed);
        RETRY_TIMER_PID.store(pid, Ordering::Relaxed);
    }
    let armed = id >= 0 && sys::timer_fire_in(id, RETRY_NS).is_ok();
    sys::set_errno(saved_errno);
    if !armed {
        RETRIES.store(0, Ordering::Relaxed);
        return false;
    }
    let code = match what {
        Retry::Signal => RETRY_SIGNAL,
        Retry::Periodic => RETRY_PERIODIC,
        Retry::Request(pid, value) => {
            RETRY_REQUEST[0].store(pid, Ordering::Relaxed);
            RETRY_REQUEST[1].store(value, Ordering::Relaxed);
            RETRY_REQUEST_WHAT
        }
    };
    RETRY_WHAT.store(code, Ordering::Relaxed);
    true
}

/// Where the signal that started the checkpoint under way interrupted the program (0 for
/// `ckpt_ckpt()`): a checkpoint taken inside the vDSO is marked so (`THREAD_IN_VDSO`).
pub(crate) static INTERRUPTED_PC: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(0);

/// The handler of the control signal: the periodic timer and the retry timer (`SI_TIMER`),
/// checkpoint requests from `ckpt checkpoint` (`SI_QUEUE`), the image writer's exit, and
/// another thread's checkpoint stopping this one (`SI_TKILL` from this process).
/// Signal-safe.
pub(crate) extern "C" fn on_control_signal(
    _sig: i32,
    info: *mut libc::siginfo_t,
    ctx: *mut c_void,
) {
    // SAFETY: `info` and `ctx` are what the kernel passed to this SA_SIGINFO handler.
    let ((code, pid, value), pc) = unsafe { (sys::siginfo_fields(info), sys::interrupted_pc(ctx)) };
    match code {
        // An image writer has finished: the checkpoint is complete (or failed), so the
        // post-checkpoint hooks run now. (Only the kernel can send a positive si_code to
        // another process, so this cannot be forged.)
        libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED => writer_finished(pid as i32, pc),
        // A thread that put off parking in another thread's checkpoint, brought back by its
        // own timer (threads::freeze::park_again_soon).
        libc::SI_TIMER if value == crate::threads::freeze::PARK_AGAIN_VALUE => {
            crate::threads::park::park_again(ctx)
        }
        // Anyone who may signal the program can queue a fake timer signal; it can do no more
        // than the checkpoint signal itself, and only what the library has armed.
        libc::SI_TIMER => {
            let retry = RETRY_WHAT.swap(0, Ordering::Relaxed);
            let what = match (value, retry) {
                (RETRY_VALUE, RETRY_SIGNAL) => Retry::Signal,
                (RETRY_VALUE, RETRY_PERIODIC) => Retry::Periodic,
                (RETRY_VALUE, RETRY_REQUEST_WHAT) => Retry::Request(
                    RETRY_REQUEST[0].load(Ordering::Relaxed),
                    RETRY_REQUEST[1].load(Ordering::Relaxed),
                ),
                _ if crate::trigger::PERIODIC.load(Ordering::Relaxed) => Retry::Periodic,
                _ => return,
            };
            run_outside_vdso(pc, what);
        }
        // Who asks is learnt from the kernel, not from the signal (request.rs).
        libc::SI_QUEUE => run_outside_vdso(pc, Retry::Request(pid, value as u32)),
        // Another thread of this process is taking a checkpoint and stops this one (the
        // kernel fills in the sender of a tgkill: nobody else can send this).
        libc::SI_TKILL if pid == sys::getpid() => crate::threads::park::park(ctx),
        _ => {}
    }
}

pub(crate) fn handle(trigger: Trigger) {
    let saved_errno = sys::get_errno();
    let periodic = matches!(trigger, Trigger::Periodic);
    match checkpoint(None, trigger, None) {
        Outcome::Failed(e) => {
            // SAFETY: a read-only look at the name after the checkpoint released the state;
            // it changes only through ckpt_config, which blocks signals while it holds the
            // state.
            if let Some(state) = unsafe { STATE.get() }.as_ref() {
                let name = state.config.name_bytes();
                if periodic {
                    report_periodic_failure(name, e);
                } else {
                    report_failure(name, e);
                }
            }
        }
        Outcome::Busy | Outcome::Coalesced => {}
        _ if periodic => periodic_went_well(),
        _ => {}
    }
    sys::set_errno(saved_errno);
}
