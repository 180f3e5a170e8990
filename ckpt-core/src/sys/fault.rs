//! The fault guard: reading memory that faults fails the checkpoint instead of ending the
//! program (DESIGN invariant 3).

use core::ffi::{c_int, c_void};

use ckpt_image::ResumeContext;

use super::*;
use crate::arch::restore_rt;

/// Value [`capture_and_run`] returns when a fault cut its body short (see [`FaultGuard`]).
const FAULTED: u64 = 0x4641_554c_5445_4400; // "FAULTED\0"
static FAULT_ARMED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

static FAULT_TID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

static FAULT_ADDR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

static FAULT_CONTEXT: Global<ResumeContext> = Global::new(ResumeContext {
    rsp: 0,
    rip: 0,
    rbx: 0,
    rbp: 0,
    r12: 0,
    r13: 0,
    r14: 0,
    r15: 0,
    mxcsr: 0,
    fpu_cw: 0,
    _pad: 0,
});

static FAULT_PREVIOUS: Global<[ckpt_image::SigactionRecord; 2]> = Global::new(
    [ckpt_image::SigactionRecord {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    }; 2],
);

const FAULT_SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The kernel's flag for a handler that brings its own return path (`restore_rt`).
const SA_RESTORER: c_int = 0x0400_0000;

/// While it lives, a fault (SIGSEGV, SIGBUS) in a body run by [`FaultGuard::run`] on this
/// thread ends that body instead of the process: reading memory that turns out not to be
/// readable fails the checkpoint with the faulting address, and the program goes on (the
/// kernel's copies report such memory with EFAULT, but the checksum reads memory itself).
/// Dropping it puts the program's handlers and the signal mask back. Signal-safe.
pub struct FaultGuard {
    mask: u64,
}

impl FaultGuard {
    /// Takes over SIGSEGV and SIGBUS and unblocks them (the checkpoint handler runs with every
    /// signal blocked, and a blocked fault signal kills).
    pub fn install() -> SysResult<FaultGuard> {
        let action = ckpt_image::SigactionRecord {
            handler: on_fault as *const () as u64,
            flags: (libc::SA_SIGINFO | SA_RESTORER) as u64,
            restorer: restore_rt as *const () as u64,
            mask: !0,
        };
        // SAFETY: a checkpoint holds the library's state exclusively, and only it installs a
        // guard; the saved actions are read back by `drop` and `on_fault` of this guard.
        let previous = unsafe { FAULT_PREVIOUS.get() };
        for (i, &sig) in FAULT_SIGNALS.iter().enumerate() {
            rt_sigaction(sig, Some(&action), Some(&mut previous[i]))?;
        }
        let mask = sigmask();
        let bits = FAULT_SIGNALS.iter().fold(0u64, |m, &s| m | 1 << (s - 1));
        set_sigmask(mask & !bits);
        FAULT_TID.store(gettid(), core::sync::atomic::Ordering::Relaxed);
        Ok(FaultGuard { mask })
    }

    /// Runs `body(arg)`: `Ok(its result)`, or `Err(address)` when it faulted at `address`.
    ///
    /// # Safety
    /// `body` must be safe to call with `arg`, and safe to abandon at any point: no locks
    /// held, nothing to drop (a fault returns straight here, like `siglongjmp`, past its
    /// frames).
    pub unsafe fn run(
        &self,
        body: extern "C" fn(*mut c_void) -> u64,
        arg: *mut c_void,
    ) -> Result<u64, u64> {
        use core::sync::atomic::Ordering::Relaxed;
        // SAFETY: the context is this guard's (one checkpoint at a time); `body` may be called
        // with `arg` (the caller's promise); a fault resumes this call with FAULTED, in this
        // frame, which is live until the call returns.
        let r = unsafe {
            let ctx = FAULT_CONTEXT.get() as *mut ResumeContext;
            FAULT_ARMED.store(true, Relaxed);
            let r = capture_and_run(ctx, body, arg);
            FAULT_ARMED.store(false, Relaxed);
            r
        };
        if r == FAULTED {
            // The fault handler left every signal blocked; back to the guard's mask.
            let bits = FAULT_SIGNALS.iter().fold(0u64, |m, &s| m | 1 << (s - 1));
            set_sigmask(self.mask & !bits);
            return Err(FAULT_ADDR.load(Relaxed));
        }
        Ok(r)
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        // SAFETY: as in `install`: this guard's saved actions.
        let previous = unsafe { FAULT_PREVIOUS.get() };
        for (i, &sig) in FAULT_SIGNALS.iter().enumerate() {
            restore_action(sig, &previous[i]);
        }
        set_sigmask(self.mask);
    }
}

/// The guard's SIGSEGV/SIGBUS handler: a fault of the guarded body on the guarded thread
/// resumes [`FaultGuard::run`] with the faulting address; any other fault gets the
/// program's own handler back and happens again (then as it would have without ckpt).
extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    use core::sync::atomic::Ordering::Relaxed;
    let ours = gettid() == FAULT_TID.load(Relaxed);
    if ours && FAULT_ARMED.swap(false, Relaxed) {
        // SAFETY: the kernel passed a valid siginfo for a fault signal.
        let addr = unsafe { (*info).si_addr() } as u64;
        FAULT_ADDR.store(addr, Relaxed);
        // SAFETY: the context was saved by the `capture_and_run` of the guarded body, whose
        // frame is still live (the fault happened inside it); the frames between here and
        // there hold nothing that needs dropping (the contract of `FaultGuard::run`).
        unsafe { ckpt_image::resume_context(FAULT_CONTEXT.get(), FAULTED) }
    }
    // SAFETY: reading the saved actions, which the guard does not change while installed.
    let previous = unsafe { FAULT_PREVIOUS.get() };
    let i = FAULT_SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    restore_action(sig, &previous[i]);
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn read_byte(arg: *mut c_void) -> u64 {
        // SAFETY: the test passes an address that is either readable or faults cleanly.
        unsafe { core::ptr::read_volatile(arg as *const u8) as u64 }
    }

    #[test]
    fn a_fault_in_a_guarded_body_is_an_error_not_a_death() {
        // SAFETY: a fresh anonymous mapping of two pages, unmapped at the end; the second
        // becomes inaccessible, the first a guard page where the kernel has them.
        let pages = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(pages, libc::MAP_FAILED);
        let second = pages as u64 + 4096;
        // SAFETY: the second page of the test's own mapping, referenced by nothing.
        unsafe { mprotect(second, 4096, 0) }.unwrap();
        // SAFETY: the first page of our own mapping.
        let guarded = unsafe { libc::madvise(pages, 4096, 102) } == 0;

        let before = sigmask();
        let guard = FaultGuard::install().unwrap();
        let seven = [7u8; 8];
        // SAFETY: read_byte reads one byte and holds nothing.
        unsafe {
            assert_eq!(guard.run(read_byte, second as *mut c_void), Err(second));
            if guarded {
                assert_eq!(guard.run(read_byte, pages), Err(pages as u64));
            }
            assert_eq!(guard.run(read_byte, seven.as_ptr() as *mut c_void), Ok(7));
        }
        drop(guard);
        assert_eq!(sigmask(), before, "the mask is put back");
        let mut action = ckpt_image::SigactionRecord::default();
        rt_sigaction(libc::SIGSEGV, None, Some(&mut action)).unwrap();
        assert_ne!(
            action.handler, on_fault as *const () as u64,
            "the handler is put back"
        );
        // SAFETY: unmapping the test's own mapping.
        unsafe { libc::munmap(pages, 8192) };
    }
}
