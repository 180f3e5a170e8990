//! Triggers: the asynchronous checkpoint signal and the periodic timer.
//!
//! Installing a trigger takes its signal for ckpt (`signals::take`: the program's action is
//! recorded, and so is every action it sets later); removing it gives the signal back with
//! the action the program last asked for.
//! The periodic timer is a POSIX timer of the library's own delivering `CONTROL_SIGNAL` to
//! the thread that set it, so `alarm`/`setitimer` remain the program's. The same signal,
//! queued by `ckpt checkpoint`, requests a checkpoint; its handler is installed at load.

use crate::checkpoint::{on_checkpoint_signal, on_control_signal, State};
use crate::config::CONTROL_SIGNAL;
use crate::signals;
use crate::sys::{self, SysResult};

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
