//! Threads and glibc's per-thread state: ids, the thread pointer, robust lists, rseq,
//! thread-specific values.

use core::ffi::{c_int, c_void};

use super::*;

pub fn fs_base() -> u64 {
    let mut v = 0u64;
    // SAFETY: ARCH_GET_FS stores the thread pointer in `v`.
    unsafe { libc::syscall(libc::SYS_arch_prctl, 0x1003, &mut v) };
    v
}

pub fn gettid() -> u32 {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

pub fn getpid() -> u32 {
    // SAFETY: no arguments.
    unsafe { libc::getpid() as u32 }
}

pub fn robust_list() -> (u64, u64) {
    let mut head = 0u64;
    let mut len = 0usize;
    // SAFETY: query for the calling thread into two locals.
    unsafe { libc::syscall(libc::SYS_get_robust_list, 0, &mut head, &mut len) };
    (head, len as u64)
}

pub fn set_robust_list(head: u64, len: u64) {
    // SAFETY: re-registers the list head glibc registered before the checkpoint; the memory
    // is the restored TCB.
    unsafe { libc::syscall(libc::SYS_set_robust_list, head, len) };
}

pub fn set_tid_address(addr: u64) {
    // SAFETY: the address is the tid field of the restored TCB, as glibc set it at start.
    unsafe { libc::syscall(libc::SYS_set_tid_address, addr) };
}

/// Unregisters the calling thread's rseq area.
pub fn rseq_unregister(area: u64, len: u32, sig: u32) -> SysResult<()> {
    // SAFETY: unregistering only tells the kernel to stop writing into the area.
    check(unsafe { libc::syscall(libc::SYS_rseq, area, len, 1, sig) }).map(drop)
}

/// The calling thread's id, from the kernel.
pub fn thread_id() -> u32 {
    gettid()
}

/// Registers the thread's rseq area again (glibc's, at the saved address).
pub fn rseq_register(area: u64, len: u32, sig: u32) -> SysResult<()> {
    // SAFETY: the area is glibc's rseq area in the restored TCB, len and signature as glibc
    // registered them.
    check(unsafe { libc::syscall(libc::SYS_rseq, area, len, 0, sig) }).map(drop)
}

/// Whether thread `tid` of this process still exists. Signal-safe.
pub fn thread_alive(tid: u32) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as c_int, 0) };
    r == 0 || errno() != libc::ESRCH
}

/// A new thread-specific data key (no destructor), or None.
pub fn thread_key_create() -> Option<u32> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: pthread_key_create writes the key into a local.
    (unsafe { libc::pthread_key_create(&mut key, None) } == 0).then_some(key)
}

pub fn thread_key_delete(key: u32) {
    // SAFETY: deletes a key this library created and never used.
    unsafe { libc::pthread_key_delete(key) };
}

/// The calling thread's value for `key` (0 until set; glibc clears it when a thread ends).
/// Signal-safe for the keys glibc keeps in the thread's control block (below 32): a load.
pub fn thread_value(key: u32) -> u64 {
    // SAFETY: pthread_getspecific with a key this library created; it only reads.
    unsafe { libc::pthread_getspecific(key) as u64 }
}

/// Sets the calling thread's value for `key`. Signal-safe for keys below 32: glibc then
/// stores into the thread's control block without allocating or locking.
pub fn set_thread_value(key: u32, value: u64) {
    // SAFETY: pthread_setspecific with a key this library created; the value is a number,
    // never dereferenced.
    unsafe { libc::pthread_setspecific(key, value as usize as *const c_void) };
}

/// glibc's `pthread_self()`: the calling thread's control block (no system call).
///
/// Read from the thread pointer itself (glibc's control block starts with a pointer to
/// itself), so that it inlines into the mutex wrappers without a call out of them.
#[inline(always)]
pub fn thread_self() -> u64 {
    let tcb: u64;
    // SAFETY: on x86-64 glibc, fs:0 holds the thread control block's own address.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) tcb, options(nostack, readonly, preserves_flags))
    };
    tcb
}

/// Calls a `int f(pthread_mutex_t *, ...)`-shaped function found by `next_symbol`, passing
/// its arguments through.
///
/// # Safety
/// `f` must be the address of a C function taking up to three pointer-sized arguments and
/// returning int, and the arguments must be what it expects.
#[inline(always)]
pub unsafe fn call_mutex_fn(f: u64, a: *mut c_void, b: *const c_void, c: *const c_void) -> c_int {
    // SAFETY: guaranteed by the caller; extra arguments are ignored by the x86-64 C ABI.
    let f: extern "C" fn(*mut c_void, *const c_void, *const c_void) -> c_int =
        unsafe { core::mem::transmute(f as usize) };
    f(a, b, c)
}

/// Waits while `word` holds `expected`, for at most `timeout_ns` (None: no limit), or until
/// woken; may return early (a signal, a spurious wake). A raw futex, private to the process:
/// not a glibc wait, so no cancellation point and nothing left behind in a thread that a
/// restart makes again. Signal-safe.
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32, timeout_ns: Option<u64>) {
    let ts = timeout_ns.map(|ns| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: the futex word is a live AtomicU32; the timeout, when given, lives for the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        )
    };
}

/// Wakes up to `n` threads waiting on `word`. Signal-safe.
pub fn futex_wake(word: &core::sync::atomic::AtomicU32, n: i32) {
    // SAFETY: the futex word is a live AtomicU32; waking touches no memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        )
    };
}

/// The calling thread's name (`PR_GET_NAME`), NUL-padded.
pub fn thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    name
}

/// Names the calling thread (`PR_SET_NAME`; the kernel takes up to 15 bytes).
pub fn set_thread_name(name: &[u8; 16]) {
    let mut z = *name;
    z[15] = 0;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, z.as_ptr()) };
}

/// The CPUs the calling thread may run on (bit per CPU, 0 to 1023), or None.
pub fn affinity() -> Option<[u64; 16]> {
    let mut mask = [0u64; 16];
    // SAFETY: the kernel writes at most the 128 bytes given.
    let r = unsafe { libc::syscall(libc::SYS_sched_getaffinity, 0, 128usize, mask.as_mut_ptr()) };
    (r > 0).then_some(mask)
}

/// Lets the calling thread run on the CPUs of `mask`.
pub fn set_affinity(mask: &[u64; 16]) -> SysResult<()> {
    // SAFETY: the kernel reads the 128 bytes given.
    check(unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, 128usize, mask.as_ptr()) })
        .map(drop)
}
