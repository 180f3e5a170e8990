//! The ptrace, wait and cross-process memory calls `ckpt attach` makes, as small safe
//! functions over libc. The command's `nix` has no ptrace feature, and these few calls are
//! clearer spelled out than behind a feature switch of a workspace dependency.
//!
//! # Safety
//!
//! Every call here lends the kernel only memory owned by the function for the duration of
//! the call (a local register structure, a buffer, an iovec describing a slice), or none.
//! Memory of the *traced* process is named by addresses the kernel checks; nothing here
//! dereferences them in this process.
#![allow(unsafe_code)]

use std::io;
use std::time::{Duration, Instant};

pub use libc::user_regs_struct as Regs;

/// `PTRACE_EVENT_STOP`: the stop `PTRACE_INTERRUPT` (or a group stop) of a seized thread.
pub const EVENT_STOP: i32 = 128;

fn check(result: libc::c_long) -> io::Result<libc::c_long> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn request(
    req: libc::c_uint,
    tid: i32,
    addr: *mut libc::c_void,
    data: *mut libc::c_void,
) -> io::Result<libc::c_long> {
    // SAFETY: the callers below pass for `addr`/`data` either integers the request reads as
    // values, or pointers to memory they own that is valid for what the request reads or
    // writes (documented at each call).
    check(unsafe { libc::ptrace(req, tid, addr, data) })
}

/// `PTRACE_SEIZE`: traces thread `tid` without stopping it, with no options.
pub fn seize(tid: i32) -> io::Result<()> {
    request(
        libc::PTRACE_SEIZE,
        tid,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
    .map(drop)
}

/// `PTRACE_INTERRUPT`: asks a seized thread to stop (it reports `EVENT_STOP`).
pub fn interrupt(tid: i32) -> io::Result<()> {
    request(
        libc::PTRACE_INTERRUPT,
        tid,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
    .map(drop)
}

/// `PTRACE_CONT`, delivering `signal` (0: none).
pub fn cont(tid: i32, signal: i32) -> io::Result<()> {
    request(
        libc::PTRACE_CONT,
        tid,
        std::ptr::null_mut(),
        signal as usize as *mut libc::c_void,
    )
    .map(drop)
}

/// `PTRACE_DETACH`, delivering `signal` (0: none).
pub fn detach(tid: i32, signal: i32) -> io::Result<()> {
    request(
        libc::PTRACE_DETACH,
        tid,
        std::ptr::null_mut(),
        signal as usize as *mut libc::c_void,
    )
    .map(drop)
}

pub fn get_regs(tid: i32) -> io::Result<Regs> {
    // SAFETY: user_regs_struct is plain integers; all zeroes is a valid value.
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    // PTRACE_GETREGS writes one user_regs_struct to `data`, which is ours and that large.
    request(
        libc::PTRACE_GETREGS,
        tid,
        std::ptr::null_mut(),
        (&mut regs as *mut Regs).cast(),
    )?;
    Ok(regs)
}

pub fn set_regs(tid: i32, regs: &Regs) -> io::Result<()> {
    // PTRACE_SETREGS reads one user_regs_struct from `data`.
    request(
        libc::PTRACE_SETREGS,
        tid,
        std::ptr::null_mut(),
        (regs as *const Regs).cast_mut().cast(),
    )
    .map(drop)
}

/// `NT_X86_XSTATE` (elf.h): the whole extended FPU state (x87, SSE, AVX, ...).
const NT_X86_XSTATE: usize = 0x202;
/// Larger than any XSAVE area a CPU has today (AMX makes it about 11 KiB).
const XSTATE_MAX: usize = 64 * 1024;

/// The thread's extended FPU state, exactly as large as the kernel says it is.
pub fn get_xstate(tid: i32) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; XSTATE_MAX];
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // PTRACE_GETREGSET writes at most iov_len bytes to iov_base (our buffer) and sets
    // iov_len (in our iovec) to the length it wrote.
    request(
        libc::PTRACE_GETREGSET,
        tid,
        NT_X86_XSTATE as *mut libc::c_void,
        (&mut iov as *mut libc::iovec).cast(),
    )?;
    buffer.truncate(iov.iov_len);
    Ok(buffer)
}

pub fn set_xstate(tid: i32, xstate: &[u8]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: xstate.as_ptr().cast_mut().cast(),
        iov_len: xstate.len(),
    };
    // PTRACE_SETREGSET reads iov_len bytes from iov_base (the caller's slice).
    request(
        libc::PTRACE_SETREGSET,
        tid,
        NT_X86_XSTATE as *mut libc::c_void,
        (&mut iov as *mut libc::iovec).cast(),
    )
    .map(drop)
}

pub fn get_siginfo(tid: i32) -> io::Result<libc::siginfo_t> {
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // PTRACE_GETSIGINFO writes one siginfo_t to `data`.
    request(
        libc::PTRACE_GETSIGINFO,
        tid,
        std::ptr::null_mut(),
        (&mut info as *mut libc::siginfo_t).cast(),
    )?;
    Ok(info)
}

pub fn set_siginfo(tid: i32, info: &libc::siginfo_t) -> io::Result<()> {
    // PTRACE_SETSIGINFO reads one siginfo_t from `data`.
    request(
        libc::PTRACE_SETSIGINFO,
        tid,
        std::ptr::null_mut(),
        (info as *const libc::siginfo_t).cast_mut().cast(),
    )
    .map(drop)
}

/// `rt_tgsigqueueinfo(tgid, tid, sig, info)`: queues a signal with its siginfo (the kernel
/// accepts it from another process only for `si_code < 0`, other than `SI_TKILL`).
pub fn tgsigqueueinfo(tgid: i32, tid: i32, info: &libc::siginfo_t) -> io::Result<()> {
    // SAFETY: the kernel reads one siginfo_t from `info`, a reference we hold.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            tgid,
            tid,
            info.si_signo,
            info as *const libc::siginfo_t,
        )
    };
    check(r).map(drop)
}

/// `tgkill(tgid, tid, sig)`.
pub fn tgkill(tgid: i32, tid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: three integers; no memory is lent.
    check(unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, signal) }).map(drop)
}

/// What `waitpid` said about a traced thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A signal-delivery-stop: the thread is about to receive this signal.
    Signal(i32),
    /// A `PTRACE_EVENT_STOP` (interrupt or group stop), with the signal the kernel reports
    /// (SIGTRAP for an interrupt, the stop signal for a group stop).
    Event(i32),
    /// Another ptrace event (none is asked for; kept so that nothing is misread).
    OtherEvent(i32, i32),
    /// The thread exited (status) or was killed (signal): it is gone.
    Exited(i32),
    Killed(i32),
}

/// The SIGALRM handler that only interrupts a blocking `waitpid`.
extern "C" fn wake_up(_: libc::c_int) {}

/// Installs [`wake_up`] for SIGALRM, without SA_RESTART, once.
fn install_wake_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction reads one struct sigaction we built; the handler does nothing,
        // so it is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = wake_up as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut());
        }
    });
}

/// Arms the real-time interval timer: first expiry after `first`, then every 10 ms (so a
/// signal that fired just before `waitpid` blocked is followed by another); `None` disarms.
fn set_alarm(first: Option<Duration>) {
    let to_timeval = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros().max(1) as libc::suseconds_t,
    };
    let zero = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let timer = match first {
        Some(first) => libc::itimerval {
            it_value: to_timeval(first),
            it_interval: to_timeval(Duration::from_millis(10)),
        },
        None => libc::itimerval {
            it_value: zero,
            it_interval: zero,
        },
    };
    // SAFETY: setitimer reads one itimerval, a local; the old value is not asked for.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}

/// Waits for a state change of traced thread `tid`, up to `deadline`; `Ok(None)` when the
/// deadline passed first. `waitpid` has no timeout: it blocks (so the stop is seen at
/// once, which keeps the target's pause short) and a SIGALRM timer interrupts it.
pub fn wait_until(tid: i32, deadline: Instant) -> io::Result<Option<Stop>> {
    install_wake_up();
    loop {
        let now = Instant::now();
        let flags = if now >= deadline {
            libc::__WALL | libc::WNOHANG
        } else {
            set_alarm(Some(deadline - now));
            libc::__WALL
        };
        let mut status = 0;
        // SAFETY: waitpid writes one int to `status`, a local.
        let r = unsafe { libc::waitpid(tid, &mut status, flags) };
        let error = io::Error::last_os_error();
        set_alarm(None);
        if r == tid {
            return Ok(Some(decode(status)));
        }
        if r == -1 && error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
        if flags & libc::WNOHANG != 0 {
            return Ok(None);
        }
    }
}

fn decode(status: i32) -> Stop {
    if libc::WIFEXITED(status) {
        return Stop::Exited(libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        return Stop::Killed(libc::WTERMSIG(status));
    }
    let signal = libc::WSTOPSIG(status);
    match status >> 16 {
        0 => Stop::Signal(signal),
        EVENT_STOP => Stop::Event(signal),
        event => Stop::OtherEvent(event, signal),
    }
}

/// Writes `bytes` at `address` in process `pid`.
pub fn write_memory(pid: i32, address: u64, bytes: &[u8]) -> io::Result<()> {
    let local = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: the kernel reads `bytes` through `local` (our slice) and writes the other
    // process's memory at `remote`, which it checks; one iovec each, both locals.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    match n {
        -1 => Err(io::Error::last_os_error()),
        n if n as usize == bytes.len() => Ok(()),
        n => Err(io::Error::other(format!(
            "short write to {address:#x}: {n} of {} bytes",
            bytes.len()
        ))),
    }
}

/// Reads up to `buffer.len()` bytes at `address` of process `pid`; returns how many.
pub fn read_memory(pid: i32, address: u64, buffer: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: buffer.len(),
    };
    // SAFETY: the kernel writes at most buffer.len() bytes into `buffer` through `local`
    // and reads the other process's memory at `remote`, which it checks.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Our effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
