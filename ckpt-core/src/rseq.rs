//! Which rseq area the checkpointing thread has registered, so that a restart registers
//! that one again.
//!
//! glibc registers an area of its own for every thread (`__rseq_offset` from the thread
//! pointer), and most programs leave it so. Some unregister it and register their own with
//! `syscall(SYS_rseq, …)` (CRIU's and DMTCP's tests do; so do libraries that predate
//! glibc's registration). The kernel has no call that says where the current registration
//! is, so the library wraps `syscall()` to record what the program registers, and checks
//! the record at each checkpoint: asking the kernel to register the same area again gives
//! EBUSY exactly when that area is the registered one. A registration the library cannot
//! confirm (made by inline assembly, past the wrapper) is said in one line, and not
//! restored.
//!
//! The wrapper is hand-written assembly because `syscall()` is variadic: it must hand every
//! argument register and the stack to glibc untouched.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys;

const SYS_RSEQ: i64 = 334;
const RSEQ_FLAG_UNREGISTER: i64 = 1;

/// glibc's `syscall`, found at library load (0 before).
static REAL_SYSCALL: AtomicU64 = AtomicU64::new(0);

/// Registrations recorded through the wrapper, one slot per thread: tid (0: free), area (0:
/// unregistered), length and signature packed as `len << 32 | sig`.
const SLOTS: usize = 128;
static TIDS: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];
static AREAS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static LEN_SIG: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// Finds glibc's `syscall`. At library load, before anything else the library does.
pub fn init() {
    if let Some(f) = sys::next_symbol(c"syscall") {
        REAL_SYSCALL.store(f, Ordering::Relaxed);
    }
}

/// The program's `syscall()`: SYS_rseq is made (and recorded) here, anything else goes to
/// glibc's, arguments untouched (or is made here, before the library found glibc's).
///
/// # Safety
/// As glibc's `syscall`: the arguments must be valid for the system call they name.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn syscall() -> i64 {
    core::arch::naked_asm!(
        "cmp rdi, {rseq}",
        "je {rseq_call}",
        "mov rax, [rip + {real}]",
        "test rax, rax",
        "jz {direct}",
        "jmp rax",
        rseq = const SYS_RSEQ,
        rseq_call = sym rseq_call,
        real = sym REAL_SYSCALL,
        direct = sym direct_syscall,
    )
}

/// A system call made here, with `syscall()`'s arguments and result convention (-1 and
/// errno on failure).
extern "C" fn direct_syscall(nr: i64, a1: i64, a2: i64, a3: i64, a4: i64, a5: i64, a6: i64) -> i64 {
    let r: i64;
    // SAFETY: the program asked for exactly this system call with these arguments (the
    // contract of `syscall`); only rax, rcx and r11 are clobbered.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => r,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    if (-4095..0).contains(&r) {
        sys::set_errno(-r as i32);
        return -1;
    }
    r
}

/// `syscall(SYS_rseq, area, len, flags, sig)`: made here, and a success recorded for the
/// calling thread.
extern "C" fn rseq_call(nr: i64, area: i64, len: i64, flags: i64, sig: i64) -> i64 {
    let r = direct_syscall(nr, area, len, flags, sig, 0, 0);
    if r == 0 {
        let tid = sys::thread_id();
        match flags {
            0 => record(tid, area as u64, len as u32, sig as u32),
            RSEQ_FLAG_UNREGISTER => record(tid, 0, 0, 0),
            _ => {}
        }
    }
    r
}

/// Records the registration of thread `tid` (area 0: none). A full table forgets it, and the
/// checkpoint then says it cannot tell. Signal-safe.
fn record(tid: u32, area: u64, len: u32, sig: u32) {
    let slot = TIDS
        .iter()
        .position(|t| t.load(Ordering::Relaxed) == tid)
        .or_else(|| {
            TIDS.iter().position(|t| {
                t.compare_exchange(0, tid, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            })
        });
    if let Some(i) = slot {
        AREAS[i].store(area, Ordering::Relaxed);
        LEN_SIG[i].store(((len as u64) << 32) | sig as u64, Ordering::Relaxed);
    }
}

/// glibc's registration parameters (the area is at the thread pointer plus `__rseq_offset`).
pub const GLIBC_LEN: u32 = 32;
pub const GLIBC_SIG: u32 = 0x5305_3053;

/// The calling thread's rseq registration as (area, length, signature), confirmed with the
/// kernel; `None` when there is none. `glibc_area` is where glibc registers (when it does).
/// A registration that cannot be confirmed is reported, and `None`. Signal-safe.
pub fn current(glibc_area: Option<u64>) -> Option<(u64, u32, u32)> {
    let tid = sys::thread_id();
    let recorded = TIDS
        .iter()
        .position(|t| t.load(Ordering::Relaxed) == tid)
        .map(|i| {
            let packed = LEN_SIG[i].load(Ordering::Relaxed);
            (
                AREAS[i].load(Ordering::Relaxed),
                (packed >> 32) as u32,
                packed as u32,
            )
        });
    let candidate = match recorded {
        Some((0, _, _)) | None => glibc_area.map(|a| (a, GLIBC_LEN, GLIBC_SIG)),
        Some(registered) => Some(registered),
    }?;
    let (area, len, sig) = candidate;
    match sys::rseq_register(area, len, sig) {
        // Registering it again is refused as a duplicate: it is the registered area.
        Err(libc::EBUSY) => Some(candidate),
        // Nothing was registered (the try just did it): undo.
        Ok(()) => {
            let _ = sys::rseq_unregister(area, len, sig);
            None
        }
        Err(_) => {
            sys::write_stderr(
                b"ckpt: this thread's rseq area was registered past ckpt's view (not through \
                  syscall()); a restart does not register it again\n",
            );
            None
        }
    }
}

/// In a restarted process (every thread back, its former id mapped to its new one): the
/// recorded registrations follow their threads to their new ids; those of threads that had
/// ended are forgotten. Signal-safe.
pub fn note_restart() {
    for t in &TIDS {
        let tid = t.load(Ordering::Relaxed);
        if tid != 0 {
            t.store(
                crate::threads::tids::current(tid).unwrap_or(0),
                Ordering::Relaxed,
            );
        }
    }
}
