//! libckpt: the in-process half of ckpt.
//!
//! Loaded into a program (by the `ckpt` command, `LD_PRELOAD`, or linking with `-lckpt`), it
//! reads its configuration once, reserves the memory the checkpoint path needs, and installs
//! the handler of the checkpoint signal. On the signal it captures the whole address space,
//! registers and signal state, and writes a self-restarting ELF executable; in the restarted
//! process, execution comes back through the same capture point.
//!
//! Module map, in the order a checkpoint runs: [`checkpoint`] (trigger, capture point,
//! resume), [`capture`] (what to store), [`write`] (the image file), with [`sys`] holding
//! every system call and all unsafe code. [`signals`] keeps ckpt's signals its own, past a
//! program that installs handlers for them or blocks them. [`timers`] saves the program's
//! POSIX timers and makes them again after a restart; [`clocks`] keeps CPU-time clock ids
//! from before a restart naming the process.
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
        $crate::sys::write_stderr(alloc::format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

pub mod api;
pub mod arena;
pub mod capture;
pub mod checkpoint;
pub mod clocks;
pub mod config;
pub mod line;
pub mod mutex;
pub mod process;
pub mod request;
pub mod rseq;
pub mod signals;
pub mod sys;
pub mod timers;
pub mod trigger;
pub mod write;

include!(concat!(env!("OUT_DIR"), "/stub/stub_layout.rs"));

/// The restart stub's loadable bytes, as linked at base 0 (see build.rs).
pub static STUB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stub/restart-stub.bin"));

use checkpoint::{State, STATE};

// The C library the program runs on: malloc, getenv, dlsym and the system call wrappers.
#[link(name = "c")]
extern "C" {}

#[cfg(not(test))]
#[global_allocator]
static HEAP: sys::Malloc = sys::Malloc;

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
    let mut line = line::Line::<256>::new();
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
    (0..0x800u64)
        .step_by(4)
        .find(|off| sys::load_u32(fs + off) == tid)
}

fn rseq_offset() -> Option<i64> {
    let size = sys::lookup_symbol(c"__rseq_size")?;
    let off = sys::lookup_symbol(c"__rseq_offset")?;
    // __rseq_size is an unsigned int; registered when non-zero.
    if (sys::read_i64(size) & 0xffff_ffff) == 0 {
        return None;
    }
    Some(sys::read_i64(off))
}

/// Library initialisation: configuration, reserved memory, the triggers.
#[ctor::ctor]
fn init() {
    // First: the clock and syscall() wrappers make system calls themselves until they have
    // glibc's.
    clocks::init();
    rseq::init();
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
    if let Some(off) = tid_offset {
        mutex::TID_OFFSET.store(off, core::sync::atomic::Ordering::Relaxed);
    }
    mutex::init();
    let state = State {
        config,
        tid_offset,
        rseq_offset: rseq_offset(),
        stub: Default::default(),
        async_installed: false,
        periodic_timer: None,
        control_installed: false,
        hooks: Default::default(),
        writer: None,
        pending: None,
        process: Default::default(),
    };
    // SAFETY: library load runs before any trigger is installed and before the program can
    // call the API, so nothing else uses the state or the arena yet.
    let state = unsafe {
        let arena = arena::ARENA.get();
        *arena = Some(arena::Arena::reserve());
        if let Some(arena) = arena.as_mut() {
            checkpoint::note_vdso(arena);
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
