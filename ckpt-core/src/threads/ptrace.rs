//! Threads that cannot park, stopped from outside.
//!
//! A thread that blocks ckpt's control signal past its wrappers never runs the handler
//! that would park it: glibc's own helper thread for `SIGEV_THREAD` timers blocks every
//! signal, and so do runtimes that set masks with raw system calls; a thread that sits in a
//! handler of the program's whose mask blocks the signal does not park either. When the
//! freeze finds such threads, a child of the process (a copy-on-write fork made without
//! glibc's fork handlers) seizes each with ptrace, interrupts it, reads its registers and
//! extended state, hands them to the leader through a pipe, and holds the thread stopped
//! until the leader lets every thread go ([`release`]). An ordinary user may trace its own
//! process when no security module forbids it (Yama is not built into this kernel; measured
//! in `DESIGN-threads-files-attach.md` F4). Under Yama's `ptrace_scope` 1 (Ubuntu's
//! default) a child may trace its parent only when the parent names it with
//! `PR_SET_PTRACER`, which the leader does before the tracer starts and withdraws at the
//! release (a tracer the program had named itself is replaced meanwhile: the kernel keeps
//! one per process and does not tell which). Where tracing is refused (`ptrace_scope` 2 or
//! 3, seccomp), the checkpoint fails, naming the thread.
//!
//! The state goes into memory reserved at load, so it is part of the image. After a restart
//! `resume` makes such a thread again on a signal frame built from it, as the kernel builds
//! one: `rt_sigreturn` then puts back every register, the extended state and the signal
//! mask. What ptrace cannot read is not restored for such a thread: its alternate signal
//! stack.
//!
//! Everything here runs in the checkpoint path's signal handler or in the tracer child:
//! signal-safe, no allocation.

use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, Ordering};

use crate::sys;

/// Most threads one checkpoint stops with ptrace.
pub const MAX_CAPTURED: usize = 64;

/// Room for a thread's extended state (XSAVE layout; AMX needs some 11 KiB).
const XSTATE_MAX: usize = 16 * 1024;

/// One thread's state as the tracer read it.
#[repr(C, align(64))]
pub struct Captured {
    /// The XSAVE area (`PTRACE_GETREGSET`, `NT_X86_XSTATE`), `xstate_len` bytes of it.
    pub xstate: [u8; XSTATE_MAX],
    /// `struct user_regs_struct`.
    pub regs: [u64; 27],
    pub xstate_len: u64,
    /// Its rseq registration: area, length, signature (`PTRACE_GET_RSEQ_CONFIGURATION`).
    pub rseq: [u64; 3],
    /// The signal it was stopped with, if it was stopped on its way to a handler (the
    /// tracer hands it back when it lets go); 0 otherwise.
    pub signal: u64,
    pub tid: u32,
    /// 0, or why it could not be read (ESRCH: it ended).
    pub error: i32,
}

/// Indices into `user_regs_struct`.
pub mod reg {
    pub const R15: usize = 0;
    pub const R14: usize = 1;
    pub const R13: usize = 2;
    pub const R12: usize = 3;
    pub const RBP: usize = 4;
    pub const RBX: usize = 5;
    pub const R11: usize = 6;
    pub const R10: usize = 7;
    pub const R9: usize = 8;
    pub const R8: usize = 9;
    pub const RAX: usize = 10;
    pub const RCX: usize = 11;
    pub const RDX: usize = 12;
    pub const RSI: usize = 13;
    pub const RDI: usize = 14;
    pub const ORIG_RAX: usize = 15;
    pub const RIP: usize = 16;
    pub const CS: usize = 17;
    pub const EFLAGS: usize = 18;
    pub const RSP: usize = 19;
    pub const SS: usize = 20;
    pub const FS_BASE: usize = 21;
    pub const GS_BASE: usize = 22;
}

/// The captured states (`MAX_CAPTURED`), reserved at load.
static STATES: AtomicPtr<Captured> = AtomicPtr::new(core::ptr::null_mut());
/// How many are in use in the freeze under way, and the thread-table slot of each.
static COUNT: AtomicU32 = AtomicU32::new(0);
static SLOT_OF: [AtomicU32; MAX_CAPTURED] = [const { AtomicU32::new(0) }; MAX_CAPTURED];

/// The tracer children of the freeze under way (pid, and the pipe that lets them go).
pub const MAX_TRACERS: usize = 8;
static TRACERS: [[AtomicI32; 2]; MAX_TRACERS] =
    [const { [AtomicI32::new(0), AtomicI32::new(-1)] }; MAX_TRACERS];

/// Reserves the room for captured states. At library load.
pub fn init() {
    let bytes = sys::reserve(MAX_CAPTURED * core::mem::size_of::<Captured>());
    STATES.store(bytes.as_mut_ptr().cast(), Ordering::Release);
}

/// The captured state number `k`.
///
/// # Safety
/// `k < MAX_CAPTURED`; the caller is its only user (the leader while it captures, the
/// restart's first thread while it builds frames, the tracer child in its own copy).
#[allow(clippy::mut_from_ref)]
unsafe fn state(k: usize) -> &'static mut Captured {
    // SAFETY: reserved at load for MAX_CAPTURED states, page aligned (so 64-byte aligned);
    // exclusivity is the caller's obligation.
    unsafe { &mut *STATES.load(Ordering::Acquire).add(k) }
}

/// The captured state of the thread in table slot `slot`, if it was stopped with ptrace.
pub(super) fn of_slot(slot: usize) -> Option<&'static Captured> {
    let n = (COUNT.load(Ordering::SeqCst) as usize).min(MAX_CAPTURED);
    let k = (0..n).find(|&k| SLOT_OF[k].load(Ordering::SeqCst) as usize == slot)?;
    // SAFETY: written before the slot was marked ready, read-only since.
    Some(unsafe { state(k) })
}

/// Starts a freeze: no thread captured yet.
pub(super) fn reset() {
    COUNT.store(0, Ordering::SeqCst);
}

/// Why capturing failed: the thread and the errno.
#[derive(Clone, Copy, Debug)]
pub struct CaptureFailed {
    pub tid: u32,
    pub errno: i32,
}

/// Stops `tids` with ptrace from a child process and reads their state; the child holds
/// them stopped until `release`. Calls `found(k, state)` for each thread captured (`k` its
/// index; an ended thread is skipped). Signal-safe; the caller holds the checkpoint path.
pub(super) fn capture(
    tids: &[u32],
    mut found: impl FnMut(usize, &Captured),
) -> Result<(), CaptureFailed> {
    let first = COUNT.load(Ordering::SeqCst) as usize;
    let fail = |errno| CaptureFailed {
        tid: tids.first().copied().unwrap_or(0),
        errno,
    };
    if first + tids.len() > MAX_CAPTURED {
        return Err(fail(libc::E2BIG));
    }
    let slot = TRACERS
        .iter()
        .position(|t| t[0].load(Ordering::SeqCst) == 0)
        .ok_or(fail(libc::E2BIG))?;
    let (from_child, to_parent) = sys::pipe().map_err(fail)?;
    let (let_go_read, let_go) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            sys::close(from_child);
            sys::close(to_parent);
            return Err(fail(e));
        }
    };
    let pid = match sys::fork_writer(0) {
        Ok(0) => {
            sys::close(from_child);
            sys::close(let_go);
            tracer(tids, first, to_parent, let_go_read)
        }
        Ok(pid) => pid,
        Err(e) => {
            for fd in [from_child, to_parent, let_go_read, let_go] {
                sys::close(fd);
            }
            return Err(fail(e));
        }
    };
    sys::close(to_parent);
    sys::close(let_go_read);
    // Under Yama's ptrace_scope 1 a child may not trace its parent unless the parent says
    // so; the tracer starts when it has.
    sys::allow_tracer(pid);
    sys::write_byte(let_go, 1);
    TRACERS[slot][0].store(pid, Ordering::SeqCst);
    TRACERS[slot][1].store(let_go, Ordering::SeqCst);

    let mut result = Ok(());
    for (i, &tid) in tids.iter().enumerate() {
        let k = first + i;
        // SAFETY: states first.. are this capture's, used by nothing else meanwhile.
        let st = unsafe { state(k) };
        let bytes = as_bytes_mut(st);
        let got = if sys::wait_readable(from_child, 5000) {
            sys::read_full(from_child, bytes).unwrap_or(0)
        } else {
            0
        };
        if got != bytes.len() || st.tid != tid {
            result = Err(CaptureFailed {
                tid,
                errno: libc::EIO,
            });
            break;
        }
        match st.error {
            0 => {}
            libc::ESRCH => continue,
            errno => {
                result = Err(CaptureFailed { tid, errno });
                break;
            }
        }
        let n = COUNT.fetch_add(1, Ordering::SeqCst) as usize;
        // Keep the states dense: move this one down if an ended thread left a gap.
        if n != k {
            // SAFETY: n < k, both this capture's.
            let (dst, src) = unsafe { (state(n), state(k)) };
            as_bytes_mut(dst).copy_from_slice(as_bytes_mut(src));
        }
        // SAFETY: as above.
        found(n, unsafe { state(n) });
    }
    sys::close(from_child);
    result
}

/// The descriptors the tracers' pipes hold open in this process while they hold threads
/// stopped (ckpt's own: a checkpoint does not record them), -1 where there is none.
pub fn tracer_fds() -> [i32; MAX_TRACERS] {
    core::array::from_fn(|i| TRACERS[i][1].load(Ordering::SeqCst))
}

/// Records that captured state `k` belongs to thread-table slot `slot`.
pub(super) fn assign(k: usize, slot: usize) {
    SLOT_OF[k].store(slot as u32, Ordering::SeqCst);
}

/// In a restarted process: the tracers recorded in memory were the checkpointed
/// process's children, gone with it (and their pipes' numbers may be the program's
/// descriptors now). Signal-safe.
pub(super) fn forget_tracers() {
    for t in &TRACERS {
        t[0].store(0, Ordering::SeqCst);
        t[1].store(-1, Ordering::SeqCst);
    }
}

/// Lets every thread stopped with ptrace go on: the tracers detach and exit. Signal-safe.
pub(super) fn release() {
    for t in &TRACERS {
        let pid = t[0].swap(0, Ordering::SeqCst);
        let let_go = t[1].swap(-1, Ordering::SeqCst);
        if let_go >= 0 {
            sys::write_byte(let_go, 1);
            sys::close(let_go);
        }
        if pid > 0 {
            sys::reap(pid);
            sys::allow_tracer(0);
        }
    }
}

fn as_bytes_mut(st: &mut Captured) -> &mut [u8] {
    // SAFETY: Captured is plain data (integers and byte arrays, no padding the reader
    // could trip on: it is only ever copied whole between this process and its child).
    unsafe {
        core::slice::from_raw_parts_mut(
            (st as *mut Captured).cast::<u8>(),
            core::mem::size_of::<Captured>(),
        )
    }
}

const PTRACE_GETREGS: u32 = 12;
const PTRACE_DETACH: u32 = 17;
const PTRACE_GETREGSET: u32 = 0x4204;
const PTRACE_SEIZE: u32 = 0x4206;
const PTRACE_INTERRUPT: u32 = 0x4207;
const PTRACE_GET_RSEQ_CONFIGURATION: u32 = 0x420f;
const NT_X86_XSTATE: u64 = 0x202;
const PTRACE_EVENT_STOP: i32 = 128;

/// The tracer child: seizes and stops each thread, sends its state, then waits to be let
/// go (a byte, or the end of the pipe when the process is gone) and detaches.
fn tracer(tids: &[u32], first: usize, out: i32, let_go: i32) -> ! {
    // One byte: the parent allows the tracing; the next: it lets the threads go.
    let mut byte = [0u8; 1];
    if sys::read_full(let_go, &mut byte) != Ok(1) {
        sys::exit_now(1)
    }
    let mut held = [0u32; MAX_CAPTURED];
    let mut signals = [0u64; MAX_CAPTURED];
    for (i, &tid) in tids.iter().enumerate() {
        // SAFETY: this child's own copy of the reserved states.
        let st = unsafe { state(first + i) };
        st.tid = tid;
        st.signal = 0;
        st.error = match stop(tid, st) {
            Ok(()) => {
                held[i] = tid;
                signals[i] = st.signal;
                0
            }
            Err(e) => e,
        };
        let bytes = as_bytes_mut(st);
        if sys::pwrite_all_stream(out, bytes).is_err() {
            break;
        }
    }
    sys::close(out);
    let _ = sys::read_full(let_go, &mut byte);
    for (i, &tid) in held.iter().enumerate().take(tids.len()) {
        if tid != 0 {
            // SAFETY: detaching passes back the signal the thread was stopped with.
            let _ = unsafe { sys::ptrace(PTRACE_DETACH, tid, 0, signals[i]) };
        }
    }
    sys::exit_now(0)
}

/// Seizes thread `tid`, stops it and reads its state into `st`.
fn stop(tid: u32, st: &mut Captured) -> Result<(), i32> {
    // SAFETY: SEIZE and INTERRUPT take no memory.
    unsafe {
        sys::ptrace(PTRACE_SEIZE, tid, 0, 0)?;
        sys::ptrace(PTRACE_INTERRUPT, tid, 0, 0)?;
    }
    let deadline = sys::monotonic_ns() + 2_000_000_000;
    loop {
        match sys::wait_traced(tid)? {
            Some(status) if libc::WIFSTOPPED(status) => {
                if status >> 16 != PTRACE_EVENT_STOP {
                    // Stopped on its way to a handler: the signal goes back at the detach.
                    st.signal = libc::WSTOPSIG(status) as u64;
                }
                break;
            }
            Some(_) => return Err(libc::ESRCH),
            None if sys::monotonic_ns() > deadline => return Err(libc::ETIMEDOUT),
            None => sys::sleep_ns(200_000),
        }
    }
    // SAFETY: GETREGS writes one user_regs_struct (27 words) into regs.
    unsafe { sys::ptrace(PTRACE_GETREGS, tid, 0, st.regs.as_mut_ptr() as u64)? };
    let mut iov = libc::iovec {
        iov_base: st.xstate.as_mut_ptr().cast(),
        iov_len: XSTATE_MAX,
    };
    // SAFETY: GETREGSET writes at most iov_len bytes at iov_base and the length into iov.
    unsafe {
        sys::ptrace(
            PTRACE_GETREGSET,
            tid,
            NT_X86_XSTATE,
            &mut iov as *mut _ as u64,
        )?
    };
    st.xstate_len = iov.iov_len as u64;
    let mut conf = [0u64; 3];
    // SAFETY: the request writes a struct ptrace_rseq_configuration (24 bytes) into conf.
    st.rseq = match unsafe {
        sys::ptrace(
            PTRACE_GET_RSEQ_CONFIGURATION,
            tid,
            24,
            conf.as_mut_ptr() as u64,
        )
    } {
        // rseq_abi_pointer; rseq_abi_size and signature share the second word.
        Ok(_) if conf[0] != 0 => [conf[0], conf[1] & 0xffff_ffff, conf[1] >> 32],
        _ => [0; 3],
    };
    Ok(())
}

/// `struct sigcontext` (x86-64), as `rt_sigreturn` reads it.
#[repr(C)]
#[derive(Default)]
struct SigContext {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    eflags: u64,
    cs: u16,
    gs: u16,
    fs: u16,
    ss: u16,
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved: [u64; 8],
}

/// `struct ucontext` (x86-64) with the kernel's 8-byte signal mask.
#[repr(C)]
#[derive(Default)]
struct UContext {
    flags: u64,
    link: u64,
    stack_sp: u64,
    stack_flags: i32,
    stack_pad: i32,
    stack_size: u64,
    mcontext: SigContext,
    sigmask: u64,
}

const _: () = {
    assert!(core::mem::size_of::<SigContext>() == 256);
    assert!(core::mem::size_of::<UContext>() == 304);
};

/// `struct rt_sigframe`: the return address, the context, the signal's information.
const FRAME_SIZE: u64 = 8 + 304 + 128;
const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const SS_DISABLE: i32 = 2;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Where the software-defined bytes of the XSAVE area are (`struct _fpx_sw_bytes`).
const SW_BYTES: usize = 464;

/// Builds, on the stack of the thread `st` describes (which does not run: it is being made
/// again), the signal frame whose `rt_sigreturn` returns it to its registers, extended
/// state and signal mask `sigmask` — what the kernel builds to deliver a signal, with the
/// interrupted system call made to start again as the kernel would have. Returns the
/// address of the frame's context (the stack pointer for `rt_sigreturn`) and a stack
/// pointer below the frame for the code the new thread runs first.
///
/// # Safety
/// The thread's stack (below its saved stack pointer) must be mapped, writable, and used by
/// nothing else: the restarted process's first thread calls this before it makes the
/// thread.
pub(super) unsafe fn build_frame(st: &Captured, sigmask: u64) -> (u64, u64) {
    use reg::*;
    let r = &st.regs;
    let xlen = (st.xstate_len as usize).min(XSTATE_MAX);
    let top = r[RSP].wrapping_sub(128);
    let fp = (top - xlen as u64 - 4) & !63;
    let frame = ((fp - FRAME_SIZE) & !15) - 8;
    // The extended state, and the marker after it that says the kernel may read all of it.
    // SAFETY: [fp, fp + xlen + 4) lies in the thread's unused stack (the caller's contract).
    let area = unsafe { core::slice::from_raw_parts_mut(fp as *mut u8, xlen + 4) };
    area[..xlen].copy_from_slice(&st.xstate[..xlen]);
    let word = |at: usize| u32::from_le_bytes([area[at], area[at + 1], area[at + 2], area[at + 3]]);
    let mut flags = UC_SIGCONTEXT_SS;
    if xlen >= SW_BYTES + 20 && word(SW_BYTES) == FP_XSTATE_MAGIC1 {
        let size = word(SW_BYTES + 16) as usize;
        if size + 4 <= xlen + 4 && size >= SW_BYTES {
            area[size..size + 4].copy_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
            flags |= UC_FP_XSTATE;
        }
    }
    // A system call the stop interrupted starts again, as after any stop.
    let (mut rax, mut rip) = (r[RAX], r[RIP]);
    if (r[ORIG_RAX] as i64) >= 0 {
        match rax as i64 {
            -514..=-512 => (rax, rip) = (r[ORIG_RAX], rip - 2),
            -516 => (rax, rip) = (libc::SYS_restart_syscall as u64, rip - 2),
            _ => {}
        }
    }
    let uc = UContext {
        flags,
        stack_flags: SS_DISABLE,
        mcontext: SigContext {
            r8: r[R8],
            r9: r[R9],
            r10: r[R10],
            r11: r[R11],
            r12: r[R12],
            r13: r[R13],
            r14: r[R14],
            r15: r[R15],
            rdi: r[RDI],
            rsi: r[RSI],
            rbp: r[RBP],
            rbx: r[RBX],
            rdx: r[RDX],
            rax,
            rcx: r[RCX],
            rsp: r[RSP],
            rip,
            eflags: r[EFLAGS],
            cs: r[CS] as u16,
            ss: r[SS] as u16,
            fpstate: fp,
            ..Default::default()
        },
        sigmask,
        ..Default::default()
    };
    // SAFETY: [frame, frame + FRAME_SIZE) lies below the extended state in the same unused
    // stack; the context goes 8 bytes in, after the (unused) return address.
    unsafe {
        core::ptr::write_bytes(frame as *mut u8, 0, FRAME_SIZE as usize);
        core::ptr::write((frame + 8) as *mut UContext, uc);
    }
    (frame + 8, (frame - 256) & !15)
}
