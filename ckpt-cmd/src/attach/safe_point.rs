//! Step 2 of an attach: a thread stopped at a safe point — blocked in a system call other
//! than a futex wait, so that it holds neither the allocator's nor the loader's lock —
//! tried over every thread about every millisecond for at most [`SAFE_POINT_BOUND`].

use super::*;

/// How long a thread is left to run between two tries.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(1);

/// A thread seized and stopped at a safe point, with its registers.
pub(super) struct Chosen {
    pub tid: i32,
    pub regs: ptrace::Regs,
    pub stopped_at: Instant,
}

/// The kernel's "interrupted, restart me" codes and EINTR: a thread stopped with one of
/// these in rax was blocked in the system call, not merely passing through it.
pub(super) fn interrupted_in_syscall(rax: u64) -> bool {
    matches!(rax as i64, -4 | -512 | -513 | -514 | -516)
}

/// Whether a thread stopped with `regs` is at a safe point: blocked in a system call other
/// than a futex wait (a futex may be the allocator's or the loader's lock).
pub(super) fn safe_point(regs: &ptrace::Regs) -> bool {
    (regs.orig_rax as i64) >= 0
        && regs.orig_rax != libc::SYS_futex as u64
        && interrupted_in_syscall(regs.rax)
}

/// Seizes and interrupts `tid`; keeps it if it is at a safe point, releases it otherwise.
/// Errors: `Err` for a refusal to trace.
pub(super) fn try_thread(pid: i32, tid: i32) -> Result<Option<Chosen>, AttachError> {
    if let Err(error) = ptrace::seize(tid) {
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(None); // the thread ended meanwhile
        }
        return Err(seize_refused(pid, &error));
    }
    let interrupted_at = Instant::now();
    let fail = |what: &str, e: std::io::Error| {
        AttachError::Refused(format!(
            "process {pid}: cannot {what} thread {tid}: {}",
            io_message(&e)
        ))
    };
    ptrace::interrupt(tid).map_err(|e| fail("interrupt", e))?;
    let deadline = interrupted_at + Duration::from_secs(1);
    loop {
        match ptrace::wait_until(tid, deadline).map_err(|e| fail("wait for", e))? {
            // A signal on its way: delivered as it would have been, siginfo and all.
            Some(ptrace::Stop::Signal(signal)) => {
                ptrace::cont(tid, signal).map_err(|e| fail("continue", e))?
            }
            Some(ptrace::Stop::Event(libc::SIGTRAP)) => break,
            // A group stop (the process was stopped meanwhile): not ours to undo.
            Some(ptrace::Stop::Event(_)) => {
                let _ = ptrace::detach(tid, 0);
                return Err(AttachError::Refused(format!(
                    "process {pid} was stopped by a signal while ckpt attach looked at it"
                )));
            }
            Some(ptrace::Stop::OtherEvent(..)) => {
                ptrace::cont(tid, 0).map_err(|e| fail("continue", e))?
            }
            Some(ptrace::Stop::Exited(_) | ptrace::Stop::Killed(_)) => return Ok(None),
            // Stuck in an uninterruptible sleep: the kernel lets it go when this command
            // ends (a tracer's exit detaches its tracees).
            None => {
                return Err(AttachError::Refused(format!(
                    "process {pid}: thread {tid} did not stop within a second (uninterruptible \
                     sleep?)"
                )))
            }
        }
    }
    let regs = ptrace::get_regs(tid).map_err(|e| fail("read the registers of", e))?;
    let blocks_segv = std::fs::read(format!("/proc/{pid}/task/{tid}/status"))
        .ok()
        .and_then(|s| target::parse_status(&s))
        .is_none_or(|s| s.blocked & (1 << (libc::SIGSEGV - 1)) != 0);
    if safe_point(&regs) && !blocks_segv {
        return Ok(Some(Chosen {
            tid,
            regs,
            stopped_at: interrupted_at,
        }));
    }
    ptrace::detach(tid, 0).map_err(|e| fail("release", e))?;
    Ok(None)
}

/// Step 2: a thread at a safe point, within [`SAFE_POINT_BOUND`]. Threads blocked in a
/// futex are not even interrupted (they could not be used); threads blocked in another
/// system call are tried first.
pub(super) fn choose_thread(pid: i32) -> Result<(Chosen, u32), AttachError> {
    let deadline = Instant::now() + SAFE_POINT_BOUND;
    let mut tries = 0;
    loop {
        let mut candidates: Vec<(bool, i32)> = target::threads(pid)
            .into_iter()
            .filter_map(|tid| match target::blocked_in(pid, tid) {
                Some(nr) if nr == libc::SYS_futex as u64 => None,
                Some(_) => Some((false, tid)),
                None => Some((true, tid)),
            })
            .collect();
        if target::threads(pid).is_empty() {
            return Err(AttachError::Refused(format!(
                "no process {pid} (it has ended)"
            )));
        }
        candidates.sort_by_key(|&(running, _)| running);
        for (_, tid) in candidates {
            tries += 1;
            if let Some(chosen) = try_thread(pid, tid)? {
                return Ok((chosen, tries));
            }
        }
        if Instant::now() >= deadline {
            return Err(AttachError::Refused(format!(
                "process {pid}: no thread was at a safe point within {} s ({tries} tries): \
                 injecting is safe only while a thread is blocked in a system call other \
                 than a futex wait (a busy or lock-bound program could be holding the \
                 allocator's or the loader's lock); not injecting, try again",
                SAFE_POINT_BOUND.as_secs_f64()
            )));
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_points() {
        // SAFETY: plain integers; all zeroes is a valid value.
        #[allow(unsafe_code)]
        let mut regs: ptrace::Regs = unsafe { std::mem::zeroed() };
        regs.orig_rax = libc::SYS_clock_nanosleep as u64;
        regs.rax = (-516i64) as u64;
        assert!(safe_point(&regs));
        regs.rax = (-4i64) as u64;
        assert!(safe_point(&regs));
        // Passing through a system call that returned (mmap inside malloc, say).
        regs.rax = 0x7f00_0000_0000;
        assert!(!safe_point(&regs));
        regs.orig_rax = libc::SYS_futex as u64;
        regs.rax = (-512i64) as u64;
        assert!(!safe_point(&regs));
        regs.orig_rax = u64::MAX;
        assert!(!safe_point(&regs));
    }
}
