//! Another thread's state, from outside it: ptrace (by a forked helper, for threads that
//! cannot park) and the per-thread queries that take a thread id.

use core::ffi::c_long;

use super::*;

/// `ptrace(request, tid, addr, data)`.
///
/// # Safety
/// `addr` and `data` must be what `request` expects: for requests that write into our
/// memory, pointers to buffers of the size the request fills.
pub unsafe fn ptrace(request: u32, tid: u32, addr: u64, data: u64) -> SysResult<c_long> {
    // SAFETY: the caller's obligation.
    check(unsafe {
        libc::syscall(
            libc::SYS_ptrace,
            request as c_long,
            tid as c_long,
            addr,
            data,
        )
    })
    .map(|r| r as c_long)
}

/// Lets process `pid` trace this one where Yama's `ptrace_scope` 1 allows only tracing of
/// descendants (`PR_SET_PTRACER`; 0 withdraws it). Without Yama the kernel refuses the
/// call, and there is nothing to allow: the error is ignored.
pub fn allow_tracer(pid: i32) {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PTRACER, pid as libc::c_ulong, 0, 0, 0) };
}

/// Waits for a state change of traced thread `tid` without blocking: `Some(status)` when
/// there was one.
pub fn wait_traced(tid: u32) -> SysResult<Option<i32>> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local.
    let r = unsafe { libc::waitpid(tid as i32, &mut status, libc::WNOHANG | libc::__WALL) };
    match check(r as c_long)? {
        0 => Ok(None),
        _ => Ok(Some(status)),
    }
}

/// The robust futex list of thread `tid` of this process.
pub fn robust_list_of(tid: u32) -> (u64, u64) {
    let mut head = 0u64;
    let mut len = 0usize;
    // SAFETY: the kernel writes the head and length into two locals.
    unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            tid as c_long,
            &mut head,
            &mut len,
        )
    };
    (head, len as u64)
}

/// The CPUs thread `tid` may run on (bit per CPU, 0 to 1023), or None.
pub fn affinity_of(tid: u32) -> Option<[u64; 16]> {
    let mut mask = [0u64; 16];
    // SAFETY: the kernel writes at most the 128 bytes given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            tid as c_long,
            128usize,
            mask.as_mut_ptr(),
        )
    };
    (r > 0).then_some(mask)
}
