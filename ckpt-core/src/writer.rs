//! The forked image writer: a copy-on-write child that writes the image while the program
//! goes on, one at a time; its exit is announced by the control signal and reaped here.
//! Signal-safe.

use crate::arena::Arena;
use crate::capture;
use crate::checkpoint::{Exclusive, State, Trigger};
use crate::line::Line;
use crate::sys;
use crate::trigger::{run_outside_vdso, Retry};

/// A forked image writer.
#[derive(Clone, Copy)]
pub struct Writer {
    pub pid: i32,
    /// The socket of the `ckpt checkpoint` request it answers: kept open here too, so that
    /// the requester hears of a writer that was killed before it could answer.
    pub answer: Option<i32>,
}

/// Whether the image writer child is still running; one that has finished is reaped. It is
/// a clone child (its exit is announced by the control signal, not SIGCHLD, and the
/// program's own `wait` never sees it); reaping it here as well covers an exit signal the
/// kernel could not queue. Signal-safe.
pub(crate) fn writer_running(state: &mut State) -> bool {
    let Some(writer) = state.writer else {
        return false;
    };
    match sys::reap_nohang(writer.pid) {
        None => true,
        Some(status) => {
            writer_gone(state, status);
            false
        }
    }
}

/// The program is ending (`exit`): a forked writer still writing is waited for, so that the
/// checkpoint exists when the program has ended (`ckpt -c prog; ./prog.ckpt` in a script),
/// and a requester hears its answer. Not when another checkpoint is being taken.
pub fn finish_writer_at_exit() {
    let Some(x) = Exclusive::try_acquire() else {
        return;
    };
    let Some(writer) = x.state.writer else {
        return;
    };
    let status = sys::reap_status(writer.pid);
    writer_gone(x.state, status);
}

/// The writer has exited with wait status `status` (and was reaped): one killed before it
/// finished has no image (it was never named, see write.rs), and a requester waiting for
/// its answer is told so. Signal-safe.
pub(crate) fn writer_gone(state: &mut State, status: i32) {
    let Some(writer) = state.writer.take() else {
        return;
    };
    let clean = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    state.incremental.finished(clean);
    if let Some(fd) = writer.answer {
        if libc::WIFSIGNALED(status) {
            let mut why = Line::<128>::new();
            why.push(b"the image writer (process ")
                .push_decimal(writer.pid as u64)
                .push(b") was killed by signal ")
                .push_decimal(libc::WTERMSIG(status) as u64)
                .push(b"; no checkpoint was written");
            crate::request::refuse(fd, why.as_bytes());
        }
        sys::close(fd);
    }
}

/// Forks the writer child, if it sees all of the process's memory: `Some(0)` in the child,
/// `Some(pid)` in the parent, `None` (in the parent) when there is no such child.
///
/// Memory marked `MADV_DONTFORK` (device and DMA buffers, some allocators) is not in a child
/// at all; a child would write a checkpoint without it. So the parent sums the address space
/// it has, and the child, before anything else, sums its own and answers through a pipe
/// whether it has as much; if not it exits unheard of and the parent writes the image itself.
/// That costs the pause two reads of the maps, a few dozen microseconds. Signal-safe.
pub(crate) fn fork_complete_copy(arena: &mut Arena) -> Option<i32> {
    let n = sys::read_file(b"/proc/thread-self/maps\0", arena.maps).ok()?;
    if n == arena.maps.len() {
        return None;
    }
    let ours = capture::mapped_bytes(&arena.maps[..n]);
    let (answer, tell) = sys::pipe().ok()?;
    let forked = sys::fork_writer(crate::config::CONTROL_SIGNAL);
    if let Ok(0) = forked {
        sys::close(answer);
        let complete = match sys::read_file(b"/proc/thread-self/maps\0", arena.maps) {
            Ok(n) if n < arena.maps.len() => capture::mapped_bytes(&arena.maps[..n]) >= ours,
            _ => false,
        };
        sys::write_byte(tell, complete as u8);
        sys::close(tell);
        if !complete {
            sys::exit_now(0);
        }
        return Some(0);
    }
    sys::close(tell);
    let Ok(pid) = forked else {
        sys::close(answer);
        return None;
    };
    // The child answers within microseconds; one that does not within seconds is stuck, and
    // must not hold the program in its signal handler.
    let mut verdict = [0u8; 1];
    let answered = sys::wait_readable(answer, 5000);
    let complete =
        answered && matches!(sys::read_full(answer, &mut verdict), Ok(1)) && verdict[0] == 1;
    sys::close(answer);
    if !complete {
        if !answered {
            sys::kill_child(pid);
        }
        sys::reap(pid);
        return None;
    }
    Some(pid)
}

/// The writer child `pid` has exited: reap it, run the post-checkpoint hooks, and take the
/// checkpoint that was asked for meanwhile, if any (`pc`: where the signal interrupted the
/// program). Its image is either complete under its name or gone: an unfinished one has no
/// name (write.rs). Signal-safe.
pub(crate) fn writer_finished(pid: i32, pc: u64) {
    let saved_errno = sys::get_errno();
    let mut next = None;
    if let Some(x) = Exclusive::try_acquire() {
        if x.state.writer.is_some_and(|w| w.pid == pid) {
            let status = sys::reap_nohang(pid).unwrap_or(0);
            writer_gone(x.state, status);
            next = x.state.pending.take();
            let hooks = x.state.hooks;
            drop(x);
            hooks.post.run(false);
        }
    }
    match next {
        Some(Trigger::Signal) => run_outside_vdso(pc, Retry::Signal),
        Some(_) => run_outside_vdso(pc, Retry::Periodic),
        None => {}
    }
    sys::set_errno(saved_errno);
}
