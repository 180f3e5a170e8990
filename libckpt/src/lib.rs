//! libckpt: the in-process half of ckpt.
//!
//! Loaded into a program (by the `ckpt` command, `LD_PRELOAD`, or linking with `-lckpt`), it
//! reads its configuration once, reserves the memory the checkpoint path needs, and installs
//! the handler of the checkpoint signal. On the signal it captures the whole address space,
//! registers and signal state, and writes a self-restarting ELF executable; in the restarted
//! process, execution comes back through the same capture point.
//!
//! Everything that runs in a signal handler is in [`ckpt_core`], a crate without an
//! allocator; this crate is what runs in ordinary context: the constructor (`init` reads
//! the configuration, [`config`], reserves memory and installs the triggers), the C API of
//! `include/ckpt.h` ([`api`]), the allocator and the panic handler.
//!
//! The library is `no_std`: it lives inside someone else's process, so it brings no runtime
//! of its own (no unwinder, no backtrace symbolizer, no libgcc_s), only what it uses. That
//! keeps it small, and a small library is cheap to carry in every checkpoint. Its few
//! allocations (configuration, API calls) use the program's `malloc`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

/// `eprintln!` for a library without std: one `write` to fd 2 (not signal-safe: it
/// allocates).
macro_rules! eprintln {
    ($($arg:tt)*) => {
        ckpt_core::sys::write_stderr(alloc::format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

pub mod api;
pub mod config;

use ckpt_core::checkpoint::{State, STATE};
use ckpt_core::{arena, clocks, mutex, request, rseq, signals, sys, threads, trigger};

// The C library the program runs on: malloc, getenv, dlsym and the system call wrappers.
#[link(name = "c")]
extern "C" {}

#[cfg(not(test))]
#[global_allocator]
static HEAP: Malloc = Malloc;

/// The heap of the library's own allocations (configuration and API calls, never the
/// signal handler): the program's `malloc`.
pub struct Malloc;

// SAFETY: malloc returns memory aligned for any fundamental type (16 bytes here) or null;
// larger alignments go through posix_memalign; free takes what either returned.
unsafe impl core::alloc::GlobalAlloc for Malloc {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        if layout.align() <= 16 {
            // SAFETY: see the impl.
            unsafe { libc::malloc(layout.size()).cast() }
        } else {
            let mut p = core::ptr::null_mut();
            // SAFETY: see the impl; p is written only on success.
            match unsafe { libc::posix_memalign(&mut p, layout.align(), layout.size()) } {
                0 => p.cast(),
                _ => core::ptr::null_mut(),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: core::alloc::Layout) {
        // SAFETY: ptr came from alloc above.
        unsafe { libc::free(ptr.cast()) }
    }
}

// The precompiled `core` and `alloc` have landing pads that name the unwinder's entry
// points. Panics abort here (the workspace's profiles), so nothing unwinds and those are
// never called; these stand-ins trap if they ever were. They are hidden (and rustc's export
// list for a cdylib leaves them out too): exported, they would take the place of the real
// ones in a C++ or Rust program that unwinds (tests/unwinding.rs).
#[cfg(not(test))]
core::arch::global_asm!(
    ".globl _Unwind_Resume",
    ".hidden _Unwind_Resume",
    ".type _Unwind_Resume, @function",
    "_Unwind_Resume:",
    "ud2",
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality, @function",
    "rust_eh_personality:",
    "ud2",
);

/// A bug in the library: say where, and abort (the program cannot safely go on).
#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut line = ckpt_core::line::Line::<256>::new();
    line.push(b"ckpt: internal error");
    if let Some(at) = info.location() {
        line.push(b" at ")
            .push(at.file().as_bytes())
            .push(b":")
            .push_decimal(at.line().into());
    }
    sys::write_stderr(line.push(b"\n").as_bytes());
    sys::abort()
}

/// Finds the offset of glibc's cached thread id in the calling thread's control block by
/// looking for the thread's id in it.
fn find_tid_offset() -> Option<u64> {
    let fs = sys::fs_base();
    let tid = sys::gettid();
    if fs == 0 {
        return None;
    }
    (0..0x800u64).step_by(4).find(|off| {
        // SAFETY: inside the calling thread's control block (glibc's struct pthread, more
        // than 2 KiB from the thread pointer), which is mapped while the thread lives.
        unsafe { sys::load_u32(fs + off) == tid }
    })
}

fn rseq_offset() -> Option<i64> {
    let size = sys::lookup_symbol(c"__rseq_size")?;
    let off = sys::lookup_symbol(c"__rseq_offset")?;
    // __rseq_size is an unsigned int, __rseq_offset a ptrdiff_t (glibc's ABI); registered
    // when the size is not zero.
    // SAFETY: both are ld.so's exported objects of those types, found by dlsym.
    let (size, off) = unsafe { (sys::load_u32(size), sys::read_i64(off)) };
    (size != 0).then_some(off)
}

/// Library initialisation: configuration, reserved memory, the triggers.
#[ctor::ctor(unsafe)]
fn init() {
    // First: the clock and syscall() wrappers make system calls themselves until they have
    // glibc's.
    clocks::init();
    rseq::init();
    ckpt_core::files::note_standard_descriptors();
    request::SECURE.store(
        sys::secure_execution(),
        core::sync::atomic::Ordering::Relaxed,
    );
    let config = match config::from_env() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("ckpt: {msg}");
            sys::exit(2);
        }
    };
    // Settle the checksum's CPU check now, not in the middle of writing an image.
    ckpt_image::crc32c::have_sse42();
    let tid_offset = find_tid_offset();
    let rseq_offset = rseq_offset();
    threads::init(tid_offset, rseq_offset);
    mutex::init();
    let state = State {
        config,
        tid_offset,
        rseq_offset,
        stub: Default::default(),
        async_installed: false,
        periodic_timer: None,
        control_installed: false,
        hooks: Default::default(),
        writer: None,
        pending: None,
        process: Default::default(),
        incremental: ckpt_core::write::incremental::Incremental::reserve(),
    };
    // SAFETY: library load runs before any trigger is installed and before the program can
    // call the API, so nothing else uses the state or the arena yet.
    let state = unsafe {
        let arena = arena::ARENA.get();
        *arena = Some(arena::Arena::reserve());
        if let Some(arena) = arena.as_mut() {
            trigger::note_vdso(arena);
        }
        let slot = STATE.get();
        *slot = Some(state);
        slot.as_mut().expect("state was just set")
    };
    signals::init();
    if let Err(e) = trigger::set_async_signal(state, config.asyncsig) {
        eprintln!(
            "ckpt: cannot install the handler for signal {}: errno {e}",
            config.asyncsig
        );
        sys::exit(2);
    }
    if let Err(e) = trigger::install_control(state) {
        eprintln!(
            "ckpt: cannot install the handler for signal {}: errno {e}",
            config::CONTROL_SIGNAL
        );
        sys::exit(2);
    }
    // A forked child of the program is not checkpointed by a signal meant for the process
    // group unless CKPT_CHILDREN=1 (`on_fork_child`).
    // SAFETY: registers a handler glibc calls in the child of fork(); it takes no arguments.
    if unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) } != 0 {
        eprintln!("ckpt: cannot register the fork handler (pthread_atfork failed)");
        sys::exit(2);
    }
    // At exit, a forked writer still writing the last checkpoint is waited for: the file is
    // there once the program has ended.
    sys::at_exit(at_exit);
    // The mask is inherited across exec, and another library's constructor may have run
    // before this one: ckpt's signals must not start out blocked.
    signals::settle_thread_mask();
    if let Err(e) = trigger::arm_periodic(state) {
        eprintln!(
            "ckpt: cannot set up periodic checkpoints every {} ms: errno {e}",
            config.msperiod
        );
        sys::exit(2);
    }
}

extern "C" fn at_exit() {
    ckpt_core::writer::finish_writer_at_exit();
}

/// In the child of the program's `fork()` (glibc runs it; the library's own writer and
/// ptrace helper are made with raw system calls and do not): unless `CKPT_CHILDREN=1`, the
/// child takes no signal or periodic checkpoints of its own. The checkpoint signal goes
/// back to the program's own action (by default SIGTSTP stops the child, as it would any
/// process), so a ^Z to the process group checkpoints the program alone, and a child can
/// no longer overwrite its parent's checkpoint. `ckpt checkpoint PID` and the API still
/// work in the child.
extern "C" fn on_fork_child() {
    let mask = sys::sigmask();
    sys::set_sigmask(!0);
    if let Some(x) = ckpt_core::checkpoint::Exclusive::try_acquire() {
        if !x.state.config.children {
            // Giving a signal back and forgetting the parent's timer cannot fail.
            let _ = trigger::set_async_signal(x.state, 0);
            x.state.config.msperiod = 0;
            let _ = trigger::arm_periodic(x.state);
        }
        drop(x);
    }
    sys::set_sigmask(mask);
    // The program's own wishes for the signal given back (blocked, say) go into the kernel.
    signals::settle_thread_mask();
}
