//! # Safety
//! Raw Linux x86-64 system calls, the entry point, the final jump and the memory primitives
//! the compiler expects: the stub runs with no libc, and everything here follows the
//! kernel's x86-64 ABI directly. The system calls are `unsafe fn`s; the other modules call
//! them (and read the image's memory) in `unsafe` blocks that each say why they are sound.
//!
//! The kernel's numbers here (system calls, flags, errno values) are typed by hand: the
//! stub is compiled by the build script with rustc alone, without cargo, so it cannot
//! depend on `linux-raw-sys` or `libc`. `tests/constants.rs` reads every `pub const` of this
//! file and checks it against `linux-raw-sys`; a constant added here fails that test until
//! it is listed there too (in `KERNEL`, or in `OWN` if it is the stub's own).

use core::arch::{asm, naked_asm};

pub const SYS_READ: usize = 0;
pub const SYS_WRITE: usize = 1;
pub const SYS_OPEN: usize = 2;
pub const SYS_CLOSE: usize = 3;
pub const SYS_FSTAT: usize = 5;
pub const SYS_MMAP: usize = 9;
pub const SYS_MPROTECT: usize = 10;
pub const SYS_MUNMAP: usize = 11;
pub const SYS_RT_SIGACTION: usize = 13;
pub const SYS_RT_SIGPROCMASK: usize = 14;
pub const SYS_IOCTL: usize = 16;
pub const SYS_PREAD64: usize = 17;
pub const SYS_MREMAP: usize = 25;
pub const SYS_MADVISE: usize = 28;
pub const SYS_SIGALTSTACK: usize = 131;
pub const SYS_PRCTL: usize = 157;
pub const SYS_ARCH_PRCTL: usize = 158;
pub const SYS_EXIT_GROUP: usize = 231;
pub const SYS_USERFAULTFD: usize = 323;
pub const SYS_MLOCK2: usize = 325;
pub const SYS_MSEAL: usize = 462;

pub const O_RDONLY: usize = 0;
pub const O_CLOEXEC: usize = 0o2000000;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const MAP_SHARED: usize = 0x01;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_FIXED_NOREPLACE: usize = 0x100000;
pub const MREMAP_MAYMOVE: usize = 1;
pub const MREMAP_FIXED: usize = 2;
pub const SIG_SETMASK: usize = 2;
pub const ARCH_SET_FS: usize = 0x1002;
pub const PR_SET_MM: usize = 35;
pub const PR_SET_MM_MAP: usize = 14;
pub const EINTR: isize = 4;
pub const EAGAIN: isize = 11;
pub const ENOMEM: isize = 12;
pub const MADV_POPULATE_WRITE: usize = 23;
pub const MADV_GUARD_INSTALL: usize = 102;
pub const MLOCK_ONFAULT: usize = 1;
/// userfaultfd, for moving pages filled in huge pages into place (`regions.rs`): an
/// ordinary user may only open it for faults in user mode.
pub const UFFD_USER_MODE_ONLY: usize = 1;
pub const UFFD_API: u64 = 0xaa;
pub const UFFD_FEATURE_MOVE: u64 = 0x1_0000;
pub const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// `_IOWR(0xaa, 0x3f, struct uffdio_api)`, three words: api, features, ioctls.
pub const UFFDIO_API: usize = 0xc018_aa3f;
/// `_IOWR(0xaa, 0x00, struct uffdio_register)`, four words: start, len, mode, ioctls.
pub const UFFDIO_REGISTER: usize = 0xc020_aa00;
/// `_IOR(0xaa, 0x01, struct uffdio_range)`, two words: start, len.
pub const UFFDIO_UNREGISTER: usize = 0x8010_aa01;
/// `_IOWR(0xaa, 0x05, struct uffdio_move)`, five words: dst, src, len, mode, and `move`,
/// which the kernel sets to the bytes it moved or to a negated errno.
pub const UFFDIO_MOVE: usize = 0xc028_aa05;
pub const ENOSYS: isize = 38;
/// How long a huge-page window takes to fault in (`regions.rs`), read with the system call:
/// the stub does not call the vDSO, which it moves.
/// `PAGEMAP_SCAN`'s category of pages mapped huge (a 2 MiB page table entry): which pages of
/// a window the kernel gave in huge pages (Linux 6.7).
pub const PAGE_IS_HUGE: u64 = 0x40;
pub const SIGKILL: usize = 9;
pub const SIGSTOP: usize = 19;
/// The auxiliary vector entry with the executed file's name.
pub const AT_EXECFN: usize = 31;
/// `struct stat`, in 8-byte words, and the word holding `st_size`.
pub const STAT_WORDS: usize = 18;
pub const STAT_SIZE_WORD: usize = 6;

/// Issues system call `n`; returns the raw result (negative errno on failure).
///
/// # Safety
/// The call must be sound with these arguments: pointers must point to live memory of the
/// length the call reads or writes, and a call that changes mappings, protections, signal
/// actions or the thread pointer must not pull anything from under code that still uses it.
#[inline(always)]
pub unsafe fn syscall6(
    n: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the syscall instruction clobbers only rax (result), rcx and r11, which are
    // declared; what the call does is the caller's obligation (above).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `syscall6` with three arguments.
///
/// # Safety
/// As [`syscall6`].
pub unsafe fn syscall3(n: usize, a1: usize, a2: usize, a3: usize) -> isize {
    // SAFETY: the caller's obligation, passed on.
    unsafe { syscall6(n, a1, a2, a3, 0, 0, 0) }
}

pub fn write_all(fd: usize, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writes from a live buffer of the length given.
        let r = unsafe { syscall3(SYS_WRITE, fd, buf.as_ptr() as usize, buf.len()) };
        if r == -EINTR {
            continue;
        }
        if r <= 0 {
            return;
        }
        buf = &buf[r as usize..];
    }
}

pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: ends the process.
        unsafe { syscall3(SYS_EXIT_GROUP, code as usize, 0, 0) };
    }
}

/// `pread` until `len` bytes are read into `addr`; false on error or end of file.
pub fn pread_full(fd: usize, mut addr: usize, mut len: usize, mut off: u64) -> bool {
    while len > 0 {
        let chunk = len.min(0x4000_0000);
        // SAFETY: reads into memory of the given length that the caller owns.
        let r = unsafe { syscall6(SYS_PREAD64, fd, addr, chunk, off as usize, 0, 0) };
        if r == -EINTR {
            continue;
        }
        if r <= 0 {
            return false;
        }
        addr += r as usize;
        len -= r as usize;
        off += r as u64;
    }
    true
}

/// A static buffer of the stub. The stub is one thread and uses each buffer for one purpose
/// at a time, so a `&mut` to it is exclusive while the caller holds it.
pub struct Static<T>(core::cell::UnsafeCell<T>);

// SAFETY: the stub runs as a single thread; exclusivity is the caller's obligation (`get`).
unsafe impl<T> Sync for Static<T> {}

impl<T> Static<T> {
    pub const fn new(v: T) -> Self {
        Static(core::cell::UnsafeCell::new(v))
    }

    /// # Safety
    /// No other reference to the value may be live while the returned one is used.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: the caller's obligation, above.
        unsafe { &mut *self.0.get() }
    }
}

/// The stub's own stack, inside its loaded segment (which the checkpoint writer placed in a
/// hole of the saved layout), so that the kernel's stack can be unmapped.
const STACK_SIZE: usize = 128 * 1024;
#[repr(C, align(16))]
pub struct Stack([u8; STACK_SIZE]);
pub static mut STACK: Stack = Stack([0; STACK_SIZE]);

/// Entry point: the kernel starts the stub with `rsp` at `argc`. Switch to the stub's own
/// stack at once and call `stub_main(initial_sp)`.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn _start() -> ! {
    naked_asm!(
        "mov rdi, rsp",
        "lea rsp, [rip + {stack} + {size}]",
        "xor ebp, ebp",
        "call {main}",
        "ud2",
        stack = sym STACK,
        size = const STACK_SIZE,
        main = sym crate::stub_main,
    )
}

// The compiler lowers copies and fills to these symbols; with no libc the stub provides them.
// They use string instructions so that the compiler cannot turn them back into calls.

/// # Safety
/// `dst` and `src` must be valid for `n` bytes and not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid; rep movsb copies exactly n bytes
    // forward (the direction flag is clear per the ABI).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `dst` and `src` must be valid for `n` bytes; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
        // SAFETY: a forward copy is correct when dst is below src or past its end.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: overlapping with dst above src: copy backwards with the direction flag set and
    // cleared again, as the ABI requires on return.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// # Safety
/// `dst` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range; rep stosb stores exactly n bytes.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and both ranges are valid for n bytes.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// As `memcmp`.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// The precompiled `core` refers to the unwinding personality even with `panic=abort`; the
/// stub never unwinds, so this is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// # Safety
/// `s` must point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a terminator; volatile reads keep the compiler from
    // turning this loop back into a call to strlen.
    while unsafe { core::ptr::read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}
