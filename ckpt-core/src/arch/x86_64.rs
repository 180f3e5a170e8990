//! # Safety
//! The x86-64 assembly of the checkpoint path: the capture point, the return path of
//! handlers installed with the raw system call, the thread pointer, and the context a
//! signal interrupted. Hand-written because no crate can provide a capture point that a
//! restarted process returns into.

use core::arch::naked_asm;
use core::ffi::c_void;

use ckpt_image::ResumeContext;

/// Saves the callee-saved registers, MXCSR, the x87 control word, the stack pointer and a
/// resume address into `ctx`, then calls `body(arg)` and returns its result.
///
/// When a restarted process jumps to the saved context (the stub does, with `rax = RESUMED`),
/// this function returns [`ckpt_image::RESUMED`] a second time, into the same caller frame,
/// which the image preserved because the caller was suspended in this call while the image
/// was written. Signal-safe.
///
/// # Safety
/// `ctx` must be valid for writes; `body` must be safe to call with `arg`.
#[unsafe(naked)]
pub unsafe extern "C" fn capture_and_run(
    ctx: *mut ResumeContext,
    body: extern "C" fn(*mut c_void) -> u64,
    arg: *mut c_void,
) -> u64 {
    naked_asm!(
        "mov [rdi + 0], rsp",
        "lea rax, [rip + 2f]",
        "mov [rdi + 8], rax",
        "mov [rdi + 16], rbx",
        "mov [rdi + 24], rbp",
        "mov [rdi + 32], r12",
        "mov [rdi + 40], r13",
        "mov [rdi + 48], r14",
        "mov [rdi + 56], r15",
        "stmxcsr [rdi + 64]",
        "fnstcw [rdi + 68]",
        "mov rax, rsi",
        "mov rdi, rdx",
        "sub rsp, 8",
        "call rax",
        "add rsp, 8",
        "ret",
        "2:",
        "ret",
    )
}

/// Returns from a signal handler (the `sa_restorer` of handlers installed with the raw
/// system call).
#[unsafe(naked)]
pub extern "C" fn restore_rt() {
    naked_asm!("mov rax, 15", "syscall", "ud2")
}

/// Makes a thread of this process (raw `clone`, `flags` as given, thread pointer `tls`, the
/// kernel writing its tid at `tid_addr` and clearing it there when the thread ends) that
/// resumes at once in the saved context `ctx`, its capture call returning
/// [`ckpt_image::RESUMED`]. Returns the new thread's id, or a negative errno.
///
/// The new thread runs no instruction of this function after the system call: its stack
/// pointer is set 1 KiB below the saved one (below the red zone, unused by then), and it jumps
/// straight into the context with its registers as the system call left them. Signal-safe.
///
/// # Safety
/// `ctx` must be a context saved by `capture_and_run` in a thread of this process whose stack
/// and frames hold what they held then; `tls` its thread pointer; `tid_addr` the tid field of
/// its control block; `flags` must include `CLONE_VM | CLONE_THREAD | CLONE_SIGHAND`.
#[unsafe(naked)]
pub unsafe extern "C" fn clone_into_context(
    flags: u64,
    ctx: *const ResumeContext,
    tls: u64,
    tid_addr: u64,
) -> i64 {
    naked_asm!(
        // clone(flags, stack, parent_tid, child_tid, tls): rdi, rsi, rdx, r10, r8.
        "mov r9, rsi",
        "mov rsi, [r9]",
        "sub rsi, 1024",
        "mov r8, rdx",
        "mov rdx, rcx",
        "mov r10, rcx",
        "mov eax, 56",
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // The new thread: rdi = ctx, rsi = RESUMED.
        "mov rdi, r9",
        "movabs rsi, {resumed}",
        "jmp {resume}",
        "2:",
        "ret",
        resumed = const ckpt_image::RESUMED,
        resume = sym ckpt_image::resume_context,
    )
}

/// Makes a thread of this process (raw `clone`, as [`clone_into_context`]) that runs
/// `entry(arg)` on the stack `stack`, then returns through the signal frame whose context is
/// at `uc` (`rt_sigreturn`), to the registers, extended state and signal mask it holds.
/// Returns the new thread's id, or a negative errno. Signal-safe.
///
/// # Safety
/// `stack` must be a 16-byte aligned stack pointer with room for `entry`, `uc` a context
/// built as the kernel builds one for a signal, whose registers are a valid state of the
/// thread; `tls` its thread pointer and `tid_addr` the tid field of its control block;
/// `flags` must include `CLONE_VM | CLONE_THREAD | CLONE_SIGHAND`.
#[unsafe(naked)]
pub unsafe extern "C" fn clone_onto_frame(
    flags: u64,
    stack: u64,
    tls: u64,
    tid_addr: u64,
    arg: u64,
    uc: u64,
    entry: extern "C" fn(u64),
) -> i64 {
    naked_asm!(
        // The seventh argument is on the stack: [rsp + 8] at entry.
        "push r12",
        "push r13",
        "push r14",
        "mov r14, [rsp + 32]",
        "mov r12, r8",
        "mov r13, r9",
        // clone(flags, stack, parent_tid, child_tid, tls): rdi, rsi, rdx, r10, r8.
        "mov r8, rdx",
        "mov rdx, rcx",
        "mov r10, rcx",
        "mov eax, 56",
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // The new thread: entry(arg) on its stack, then rt_sigreturn from the frame.
        "mov rdi, r12",
        "call r14",
        "mov rsp, r13",
        "mov eax, 15",
        "syscall",
        "ud2",
        "2:",
        "pop r14",
        "pop r13",
        "pop r12",
        "ret",
    )
}
