//! Calling functions inside a stopped thread of another process.
//!
//! The thread was stopped by `PTRACE_INTERRUPT` inside a blocking system call (a safe point:
//! it holds no allocator or loader lock). Its registers and extended FPU state are saved;
//! each call sets `rip` to the function, the System V argument registers, `rsp` to a
//! 16-byte-aligned spot below the red zone and the scratch area holding our strings, with a
//! return address of 0 pushed. When the function returns, the thread faults at address 0
//! and the kernel stops it with SIGSEGV before any handler runs: `rax` is the result.
//! `orig_rax = -1` keeps the kernel's system-call restart logic off the modified registers.
//! [`Session::finish`] puts the saved state back exactly, so that the interrupted system
//! call is restarted as if nothing happened, and detaches.
//!
//! Signals that arrive while a call runs are not delivered then (a handler would run on top
//! of a half-done `dlopen`): their siginfo is kept and they are delivered at the detach.

use std::io;
use std::time::{Duration, Instant};

use super::ptrace::{self, Regs, Stop};

/// Bytes below the red zone kept for the strings the calls take.
pub const SCRATCH: u64 = 16 * 1024;
/// The x86-64 red zone, which the interrupted code may be using below its `rsp`.
const RED_ZONE: u64 = 128;
/// How long one call may go without news (a `dlopen` of libckpt takes well under a
/// millisecond): each signal that stops it meanwhile shows that it runs and starts the
/// wait again, up to [`CALL_LIMIT`] in all (a storm of signals slows a call; abandoning it
/// half done could leave the loader's lock held).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// How a call went wrong.
#[derive(Debug)]
pub enum CallError {
    /// The process ended meanwhile (exit status or signal, in words).
    Gone(String),
    /// The called code faulted somewhere else than the return address.
    Crashed {
        signal: i32,
        rip: u64,
    },
    /// No return within the time limit: the function hangs (a lock it waits for).
    Hung,
    Io(io::Error),
}

impl From<io::Error> for CallError {
    fn from(error: io::Error) -> Self {
        CallError::Io(error)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Gone(how) => write!(f, "the process {how}"),
            CallError::Crashed { signal, rip } => {
                write!(f, "the call faulted with signal {signal} at {rip:#x}")
            }
            CallError::Hung => write!(
                f,
                "the call did not return within {} s",
                CALL_TIMEOUT.as_secs()
            ),
            CallError::Io(e) => write!(f, "{}", crate::image::io_message(e)),
        }
    }
}

/// A thread of `pid` stopped at a safe point, with its state saved.
pub struct Session {
    pub pid: i32,
    pub tid: i32,
    saved: Regs,
    xstate: Vec<u8>,
    /// Where the next string goes in the scratch area (growing upwards).
    next_string: u64,
    scratch_end: u64,
    /// `rsp` at a call's entry: 8 below a 16-byte boundary, where the return address is.
    call_rsp: u64,
    /// Whether the thread is in a signal-delivery-stop (after a call) rather than the
    /// interrupt stop: only there can a signal be handed over at the detach.
    in_signal_stop: bool,
    /// Signals that arrived during calls, to be delivered at the detach.
    deferred: Vec<libc::siginfo_t>,
}

impl Session {
    /// Takes over `tid`, stopped with `saved` registers.
    pub fn new(pid: i32, tid: i32, saved: Regs) -> io::Result<Session> {
        let xstate = ptrace::get_xstate(tid)?;
        let scratch = (saved.rsp - RED_ZONE - SCRATCH) & !15;
        // Below the scratch area, 16-byte aligned, then the return address.
        let call_rsp = ((scratch - 64) & !15) - 8;
        ptrace::write_memory(pid, call_rsp, &0u64.to_ne_bytes())?;
        Ok(Session {
            pid,
            tid,
            saved,
            xstate,
            next_string: scratch,
            scratch_end: saved.rsp - RED_ZONE,
            call_rsp,
            in_signal_stop: false,
            deferred: Vec::new(),
        })
    }

    /// Copies a NUL-terminated string into the target; returns its address there.
    pub fn put_string(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let mut with_nul = bytes.to_vec();
        with_nul.push(0);
        let at = self.next_string;
        if at + with_nul.len() as u64 > self.scratch_end {
            return Err(io::Error::other(
                "the strings do not fit in the scratch area",
            ));
        }
        ptrace::write_memory(self.pid, at, &with_nul)?;
        self.next_string = at + with_nul.len() as u64;
        Ok(at)
    }

    /// Reads a NUL-terminated string of the target (at most 64 KiB), page by page so that a
    /// string ending just before an unmapped page is read whole.
    pub fn read_string(&self, mut address: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < 64 * 1024 {
            let page_left = 4096 - (address & 4095) as usize;
            let mut chunk = vec![0u8; page_left];
            let n = ptrace::read_memory(self.pid, address, &mut chunk)?;
            if n == 0 {
                break;
            }
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
            address += n as u64;
        }
        Err(io::Error::other("unterminated string"))
    }

    /// The entries of the environment array `*environ` points to; `None` when it is NULL
    /// (the program has its own copy of the variable, which glibc uses instead).
    pub fn read_environment(&self, environ: u64) -> io::Result<Option<Vec<Vec<u8>>>> {
        let mut word = [0u8; 8];
        let read_word = |address: u64, word: &mut [u8; 8]| -> io::Result<u64> {
            if ptrace::read_memory(self.pid, address, word)? != 8 {
                return Err(io::Error::other(format!("cannot read {address:#x}")));
            }
            Ok(u64::from_ne_bytes(*word))
        };
        let array = read_word(environ, &mut word)?;
        if array == 0 {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for i in 0..100_000u64 {
            match read_word(array + 8 * i, &mut word)? {
                0 => return Ok(Some(entries)),
                entry => entries.push(self.read_string(entry)?),
            }
        }
        Err(io::Error::other("the environment array does not end"))
    }

    /// Calls `function(args...)` (integers or pointers, at most six) in the thread and
    /// returns `rax`.
    pub fn call(&mut self, function: u64, args: &[u64]) -> Result<u64, CallError> {
        assert!(args.len() <= 6, "at most six register arguments");
        let mut regs = self.saved;
        let slots = [
            &mut regs.rdi,
            &mut regs.rsi,
            &mut regs.rdx,
            &mut regs.rcx,
            &mut regs.r8,
            &mut regs.r9,
        ];
        for (slot, &value) in slots.into_iter().zip(args) {
            *slot = value;
        }
        regs.rip = function;
        regs.rsp = self.call_rsp;
        // No vector registers used by a variadic callee; no system call to restart.
        regs.rax = 0;
        regs.orig_rax = u64::MAX;
        // The ABI wants the direction flag clear at a call.
        regs.eflags &= !(1 << 10);
        ptrace::set_regs(self.tid, &regs)?;
        ptrace::cont(self.tid, 0)?;
        let started = Instant::now();
        let mut deadline = started + CALL_TIMEOUT;
        loop {
            let Some(stop) = ptrace::wait_until(self.tid, deadline)? else {
                return Err(CallError::Hung);
            };
            match stop {
                Stop::Signal(libc::SIGSEGV) if ptrace::get_siginfo(self.tid)?.si_code > 0 => {
                    self.in_signal_stop = true;
                    let after = ptrace::get_regs(self.tid)?;
                    if after.rip == 0 {
                        return Ok(after.rax);
                    }
                    return Err(CallError::Crashed {
                        signal: libc::SIGSEGV,
                        rip: after.rip,
                    });
                }
                Stop::Signal(signal) => {
                    let info = ptrace::get_siginfo(self.tid)?;
                    if matches!(
                        signal,
                        libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP
                    ) && info.si_code > 0
                    {
                        // A fault of the called code itself, not a signal sent to it.
                        self.in_signal_stop = true;
                        let rip = ptrace::get_regs(self.tid)?.rip;
                        return Err(CallError::Crashed { signal, rip });
                    }
                    // Kept with its siginfo, delivered at the detach.
                    self.deferred.push(info);
                    deadline = (Instant::now() + CALL_TIMEOUT).min(started + CALL_LIMIT);
                    ptrace::cont(self.tid, 0)?;
                }
                // A group stop (another thread got SIGSTOP) or a stray interrupt: the call
                // goes on; the group stop is taken again at the detach (the kernel
                // re-arms it for a thread leaving ptrace while its group is stopped).
                Stop::Event(_) | Stop::OtherEvent(..) => ptrace::cont(self.tid, 0)?,
                Stop::Exited(status) => {
                    return Err(CallError::Gone(format!("exited with status {status}")))
                }
                Stop::Killed(signal) => {
                    return Err(CallError::Gone(format!("was killed by signal {signal}")))
                }
            }
        }
    }

    /// After [`CallError::Hung`]: stops the thread again so that it can be put back.
    /// Whatever the abandoned call held (the loader's lock, say) stays held.
    pub fn stop_hung_call(&mut self) -> io::Result<()> {
        ptrace::interrupt(self.tid)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match ptrace::wait_until(self.tid, deadline)? {
                Some(Stop::Event(_)) => {
                    self.in_signal_stop = false;
                    return Ok(());
                }
                Some(Stop::Signal(_)) => {
                    // Stopped is enough: the state is put back from here, and this signal
                    // is delivered at the detach with the others.
                    self.deferred.push(ptrace::get_siginfo(self.tid)?);
                    self.in_signal_stop = true;
                    return Ok(());
                }
                Some(Stop::OtherEvent(..)) => ptrace::cont(self.tid, 0)?,
                Some(Stop::Exited(_) | Stop::Killed(_)) => {
                    return Err(io::Error::other("the process ended"))
                }
                None => return Err(io::Error::other("the thread does not stop")),
            }
        }
    }

    /// Puts the registers and the extended state back exactly and detaches, delivering the
    /// signals that arrived meanwhile. Returns how many signals were held back (the first is
    /// handed over at the detach with its siginfo; others are queued again, with their
    /// siginfo when the kernel allows it, else as sent by this process).
    pub fn finish(self) -> io::Result<usize> {
        ptrace::set_regs(self.tid, &self.saved)?;
        ptrace::set_xstate(self.tid, &self.xstate)?;
        let held = self.deferred.len();
        let mut deferred = self.deferred.into_iter();
        let first = if self.in_signal_stop {
            deferred.next()
        } else {
            None
        };
        for info in deferred {
            let queued = info.si_code < 0 && info.si_code != libc::SI_TKILL;
            if !(queued && ptrace::tgsigqueueinfo(self.pid, self.tid, &info).is_ok()) {
                let _ = ptrace::tgkill(self.pid, self.tid, info.si_signo);
            }
        }
        match first {
            Some(info) => {
                ptrace::set_siginfo(self.tid, &info)?;
                ptrace::detach(self.tid, info.si_signo)?;
            }
            None => ptrace::detach(self.tid, 0)?,
        }
        Ok(held)
    }
}
