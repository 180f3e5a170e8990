//! A thread's record: the callee-saved context of its capture point (to which a restarted
//! thread returns with [`resume_context`]) and the per-thread kernel and glibc state.

/// The callee-saved state a resumed thread needs to return from the capture point; the rest
/// of its registers are in the kernel's signal frame on its (restored) stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeContext {
    pub rsp: u64,
    pub rip: u64,
    pub rbx: u64,
    pub rbp: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub mxcsr: u32,
    pub fpu_cw: u16,
    pub _pad: u16,
}

crate::record_layout!(ResumeContext {
    rsp: u64,
    rip: u64,
    rbx: u64,
    rbp: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    mxcsr: u32,
    fpu_cw: u16,
    _pad: u16,
});

/// Value the resumed capture point returns in the restarted process.
pub const RESUMED: u64 = 0x5245_5354_4152_5400; // "RESTART\0"

/// Loads the callee-saved registers, MXCSR, x87 control word and stack pointer of a
/// [`ResumeContext`] and jumps to its resume address with `value` in rax: the capture call
/// that saved the context returns `value` a second time. The restart stub resumes a
/// checkpointed thread this way (with [`RESUMED`]), and libckpt abandons a body that
/// faulted (see its `FaultGuard`).
///
/// # Safety
/// `ctx` must have been saved by a capture call whose frame and stack still hold what they
/// held then, and everything between here and there must be safe to abandon.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
pub unsafe extern "C" fn resume_context(ctx: *const ResumeContext, value: u64) -> ! {
    core::arch::naked_asm!(
        "ldmxcsr [rdi + 64]",
        "fldcw [rdi + 68]",
        "mov rbx, [rdi + 16]",
        "mov rbp, [rdi + 24]",
        "mov r12, [rdi + 32]",
        "mov r13, [rdi + 40]",
        "mov r14, [rdi + 48]",
        "mov r15, [rdi + 56]",
        "mov rsp, [rdi + 0]",
        "mov rax, rsi",
        "jmp [rdi + 8]",
    )
}

const _: () = {
    // The offsets resume_context reads.
    assert!(core::mem::offset_of!(ResumeContext, rsp) == 0);
    assert!(core::mem::offset_of!(ResumeContext, rip) == 8);
    assert!(core::mem::offset_of!(ResumeContext, rbx) == 16);
    assert!(core::mem::offset_of!(ResumeContext, r15) == 56);
    assert!(core::mem::offset_of!(ResumeContext, mxcsr) == 64);
    assert!(core::mem::offset_of!(ResumeContext, fpu_cw) == 68);
};

/// Per-thread state, one record per thread of the process. The first record is the thread
/// the restart stub resumes: the main thread (its id is the process id) when it was alive,
/// else the thread that took the checkpoint. That thread makes the others again (libckpt,
/// with raw `clone`), each resuming in its own saved context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadRecord {
    pub tid: u32,
    /// `THREAD_*` flags.
    pub flags: u32,
    pub fs_base: u64,
    pub gs_base: u64,
    pub context: ResumeContext,
    /// The thread's signal mask where the checkpoint stopped it (the program's; its own
    /// handler frame restores it).
    pub sigmask: u64,
    pub altstack_sp: u64,
    pub altstack_size: u64,
    pub altstack_flags: u32,
    pub rseq_len: u32,
    pub rseq_area: u64,
    pub rseq_sig: u32,
    /// The low half of XCR0 where the checkpoint was taken: the register state the CPU and
    /// kernel enabled (SSE, AVX, AVX-512, PKRU, AMX …), which the program may use and which
    /// the saved signal frame holds. 0: not recorded.
    pub xcr0: u32,
    pub robust_list_head: u64,
    pub robust_list_len: u64,
    /// glibc's tid field in the thread's control block: the kernel clears it when the thread
    /// ends (`pthread_join` waits for that), and writes the new tid there when the restart
    /// makes the thread again.
    pub clear_child_tid: u64,
    /// Signals pending for this thread alone (bit `sig - 1`), raised at it again.
    pub pending: u64,
    /// Where the checkpoint stopped the thread: its instruction and stack pointers (0: not
    /// known, as for `ckpt_ckpt()`).
    pub pc: u64,
    pub sp: u64,
    /// The thread's name (`PR_GET_NAME`), NUL-padded.
    pub comm: [u8; 16],
    /// The CPUs the thread may run on, bit per CPU (0 to 1023); all zero: not recorded.
    pub affinity: [u64; 16],
}

crate::record_layout!(ThreadRecord {
    tid: u32,
    flags: u32,
    fs_base: u64,
    gs_base: u64,
    context: ResumeContext,
    sigmask: u64,
    altstack_sp: u64,
    altstack_size: u64,
    altstack_flags: u32,
    rseq_len: u32,
    rseq_area: u64,
    rseq_sig: u32,
    xcr0: u32,
    robust_list_head: u64,
    robust_list_len: u64,
    clear_child_tid: u64,
    pending: u64,
    pc: u64,
    sp: u64,
    comm: [u8; 16],
    affinity: [u64; 16],
});

impl ThreadRecord {
    /// The thread's name, without its NUL padding.
    pub fn name(&self) -> &[u8] {
        let n = self.comm.iter().position(|&c| c == 0).unwrap_or(16);
        &self.comm[..n]
    }
}

/// XCR0 (the register state enabled on this CPU): the low half, 0 when there is no XSAVE.
pub fn xcr0() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID.1:ECX.OSXSAVE says that XGETBV may be used.
        let osxsave = core::arch::x86_64::__cpuid(1).ecx & (1 << 27) != 0;
        if osxsave {
            let (lo, _hi): (u32, u32);
            // SAFETY: XGETBV with ECX = 0 reads XCR0; OSXSAVE (checked) makes it legal.
            unsafe {
                core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") _hi,
                    options(nomem, nostack, preserves_flags));
            }
            return lo;
        }
    }
    0
}

/// `ThreadRecord::flags`: the checkpoint interrupted the thread inside the vDSO, so it
/// resumes in vDSO code that reads the kernel's data pages directly: such a checkpoint
/// restarts only under a kernel with the same vDSO.
pub const THREAD_IN_VDSO: u32 = 1;
/// `ThreadRecord::flags`: the process's main thread (its tid was the process id).
pub const THREAD_MAIN: u32 = 2;
/// `ThreadRecord::flags`: the thread that took the checkpoint (it puts the process-wide
/// state back after a restart, runs the hooks, and lets the others go on).
pub const THREAD_LEADER: u32 = 4;
/// `ThreadRecord::flags`: the thread could not stop itself (it blocked ckpt's signal) and
/// was stopped from outside, with ptrace: its registers are kept in the process's memory
/// (libckpt's), and the restart returns it to them through a signal frame it builds. Never
/// the first record: the stub resumes only a thread that saved its own context.
pub const THREAD_PTRACED: u32 = 8;
/// Every `THREAD_*` flag this format defines.
pub const THREAD_FLAGS: u32 = THREAD_IN_VDSO | THREAD_MAIN | THREAD_LEADER | THREAD_PTRACED;
