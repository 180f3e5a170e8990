//! # Safety
//! The checkpoint path's contact with the kernel and with raw memory: system calls through
//! `libc` (all async-signal-safe), views of reserved memory, and process-global cells,
//! grouped by subsystem (`fs`, `mem`, `signal`, `fault`, `thread`, `time`, `process`,
//! `socket`, `trace`, `uffd`); the assembly is in `crate::arch`. Functions marked
//! "signal-safe" allocate nothing, take no locks and do no stdio; this crate has no
//! allocator at all, so nothing here can allocate.

use core::cell::UnsafeCell;
use core::ffi::c_void;

mod anon;
mod fault;
mod fs;
mod mem;
mod pipe;
mod process;
mod signal;
mod socket;
mod thread;
mod time;
mod tmpfile;
mod trace;
mod tty;
mod uffd;

pub use anon::*;
pub use fault::*;
pub use fs::*;
pub use mem::*;
pub use pipe::*;
pub use process::*;
pub use signal::*;
pub use socket::*;
pub use thread::*;
pub use time::*;
pub use tmpfile::*;
pub use trace::*;
pub use tty::*;
pub use uffd::*;

pub use crate::arch::{capture_and_run, clone_into_context, clone_onto_frame};

/// Result of a raw call: the value, or the errno.
pub type SysResult<T> = Result<T, i32>;

pub fn get_errno() -> i32 {
    errno()
}

pub fn set_errno(v: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = v };
}

/// Where the calling thread's `errno` lives.
pub fn errno_address() -> u64 {
    // SAFETY: __errno_location has no preconditions.
    unsafe { libc::__errno_location() as u64 }
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

fn check(r: libc::c_long) -> SysResult<usize> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// A process-global value mutated only by the checkpoint path (which excludes itself with an
/// atomic flag) or during library initialisation.
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: access is serialised by the callers as described on `get`.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(v: T) -> Self {
        Global(UnsafeCell::new(v))
    }

    /// # Safety
    /// The caller must be the only one using the value for the lifetime of the reference:
    /// library initialisation (before any checkpoint can start) or the checkpoint path while
    /// it holds the in-progress flag.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: exclusivity is the caller's obligation (see above).
        unsafe { &mut *self.0.get() }
    }
}

/// Ends the process at once, without running exit handlers or flushing stdio: after a
/// checkpoint those buffers belong to the image and are flushed by the restarted program.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Ends the process through `exit` (exit handlers and stdio flushes run): for refusing to
/// start.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit never returns.
    unsafe { libc::exit(code) }
}

/// Kills the process with SIGABRT, for the panic handler.
pub fn abort() -> ! {
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

/// The value of environment variable `name`, as bytes (at library load or from API calls:
/// the environment is not changed by another thread then).
pub fn getenv(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv with a NUL-terminated name; the result, when not null, points to a
    // NUL-terminated string in the environment, which lives as long as the process.
    unsafe {
        let p = libc::getenv(name.as_ptr());
        (!p.is_null()).then(|| core::ffi::CStr::from_ptr(p).to_bytes())
    }
}

/// Seconds since the epoch (signal-safe).
pub fn realtime_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec.max(0) as u64
}

pub fn write_stderr(msg: &[u8]) {
    // SAFETY: writes from a live buffer to fd 2; a failure to report is ignored.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Looks up a data symbol exported by an already-loaded object (at library load only).
pub fn lookup_symbol(name: &core::ffi::CStr) -> Option<u64> {
    // SAFETY: dlsym with RTLD_DEFAULT and a valid C string.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p as u64)
}

/// Reads the 8-byte value at `addr`.
///
/// # Safety
/// `addr` must be a live, readable, 8-byte object (here: glibc's `__rseq_offset` and
/// `__rseq_size`, found with `dlsym`).
pub unsafe fn read_i64(addr: u64) -> i64 {
    // SAFETY: the caller's obligation, above.
    unsafe { core::ptr::read_volatile(addr as *const i64) }
}

/// The function at `addr`, as a function pointer of type `F`.
///
/// # Safety
/// `F` must be an `extern "C"` function pointer type whose signature is that of the
/// function at `addr` (which `next_symbol` found by its name).
pub unsafe fn function_at<F: Copy>(addr: u64) -> F {
    assert!(core::mem::size_of::<F>() == core::mem::size_of::<u64>() && addr != 0);
    // SAFETY: F is a function pointer type of the function at `addr` (the caller's
    // contract), and a function pointer is an address on x86-64.
    unsafe { core::mem::transmute_copy(&addr) }
}

pub fn sched_yield() {
    // SAFETY: no arguments.
    unsafe { libc::sched_yield() };
}

/// The next definition of `name` after this library (`dlsym(RTLD_NEXT)`).
pub fn next_symbol(name: &core::ffi::CStr) -> Option<u64> {
    // SAFETY: dlsym with RTLD_NEXT and a valid C string.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    (!p.is_null()).then_some(p as u64)
}

/// The address and size of the function symbol that contains `addr`, from the dynamic
/// symbol table of its object (at library load).
pub fn symbol_extent(addr: u64) -> Option<(u64, u64)> {
    // SAFETY: zeroed Dl_info is valid; dladdr1 fills it and points `sym` at an ElfW(Sym) of
    // the object's symbol table, which lives as long as the object is loaded.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        let mut sym: *mut c_void = core::ptr::null_mut();
        if libc::dladdr1(addr as *const c_void, &mut info, &mut sym, 1) == 0 || sym.is_null() {
            return None;
        }
        let sym = &*(sym as *const libc::Elf64_Sym);
        let start = info.dli_saddr as u64;
        (start != 0 && sym.st_size != 0).then_some((start, sym.st_size))
    }
}
