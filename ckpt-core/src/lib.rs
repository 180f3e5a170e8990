//! ckpt-core: the checkpoint path of libckpt, everything that runs inside a signal handler.
//!
//! It is a crate of its own so that the compiler checks what its handlers may do: it has
//! no allocator (no `alloc`, no `std`), so nothing here can allocate; it makes raw system
//! calls through `libc` and uses memory reserved when the library loads ([`arena`]).
//! libckpt, the preloaded library, reads the configuration, offers the C API and installs
//! this crate's handlers.
//!
//! The path a checkpoint takes, by module:
//!
//! - [`trigger`]: the checkpoint signal, the control signal (periodic checkpoints, requests
//!   from `ckpt checkpoint` served by [`request`], the writer's exit, another thread's
//!   freeze), and checkpoints put off while the program is inside the vDSO or the mutex
//!   code;
//! - [`threads`]: every other thread stopped (the freeze) and, after a restart, made again;
//! - [`checkpoint`]: the core (the library's state, one checkpoint at a time, hooks, the
//!   capture point), with [`writer`] for the forked image writer;
//! - [`capture`]: what the address space holds and what to store of it; [`process`] and
//!   [`timers`]: process-wide kernel state; [`files`]: the open descriptors;
//! - [`write`](mod@write): the image file;
//! - the restart stub (`restart-stub/`) maps it all back and jumps into the capture point;
//! - [`restore`]: what a restarted process puts back itself.
//!
//! Beside the path: [`signals`] keeps ckpt's signals its own past a program's `sigaction`
//! and `sigprocmask`; [`mutex`], [`clocks`] and [`rseq`] wrap glibc functions whose state
//! names thread or process ids; [`sys`] holds the system calls, `arch` the assembly.
//!
//! Where `unsafe` is: the system calls and views of raw memory are in [`sys`] (their
//! wrappers are safe where the call cannot break memory safety, `unsafe fn` where it can),
//! the assembly in `arch`; the wrappers of glibc functions ([`signals`], [`mutex`],
//! [`clocks`], [`rseq`]) call the functions they wrap with the program's pointers, and the
//! writer and [`restore`] read the program's memory and change mappings, and
//! [`threads`] makes threads with raw `clone` and reads traced threads' registers, each
//! `unsafe` block saying why it is sound.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
mod arch;
#[cfg(not(target_arch = "x86_64"))]
compile_error!("ckpt runs on Linux x86-64 only");

pub mod arena;
pub mod capture;
pub mod checkpoint;
pub mod clocks;
pub mod config;
pub mod dirty;
pub mod files;
pub mod line;
pub mod mutex;
pub mod process;
pub mod progress;
pub mod report;
pub mod request;
pub mod restore;
pub mod rseq;
pub mod signals;
pub mod sys;
pub mod threads;
pub mod timers;
pub mod trigger;
pub mod write;
pub mod writer;

include!(concat!(env!("OUT_DIR"), "/stub/stub_layout.rs"));

/// The restart stub's loadable bytes, as linked at base 0 (see build.rs).
pub static STUB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stub/restart-stub.bin"));

// The C library the program runs on: dlsym and the system call wrappers.
#[link(name = "c")]
extern "C" {}
