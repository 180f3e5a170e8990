//! The process: forking the image writer and reaping it, dumpability, credentials,
//! resource limits, huge-page policy, membarrier.

use core::ffi::c_int;

use super::*;

/// Forks a child that shares nothing but a copy-on-write image of this process, without
/// glibc's fork handlers (not async-signal-safe). Its exit is announced by `exit_signal`
/// instead of SIGCHLD, which also keeps it out of the program's own `wait` calls. Returns
/// 0 in the child and its pid in the parent.
pub fn fork_writer(exit_signal: c_int) -> SysResult<i32> {
    // SAFETY: a raw clone with no flags but the exit signal and no new stack behaves like
    // fork; the child only makes raw system calls (the signal-safe writer) and then _exits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            exit_signal as usize,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(r).map(|p| p as i32)
}

/// `PR_GET_DUMPABLE`: 1 when the process may be dumped and its `/proc/self` files are its
/// user's, 0 (or 2) when they belong to root.
pub fn dumpable() -> i32 {
    // SAFETY: prctl with an integer option and no pointers.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) }
}

/// `PR_SET_DUMPABLE` to 0 or 1.
pub fn set_dumpable(on: bool) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong) };
}

/// Sends SIGKILL to our child `pid`.
pub fn kill_child(pid: i32) {
    // SAFETY: kill(2) with a plain signal number, aimed at our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Registers `f` to run at `exit` (after the handlers registered later, the program's).
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: atexit keeps a plain function pointer, which lives as long as the library.
    unsafe { libc::atexit(f) };
}

/// Waits for child `pid` to exit and reaps it.
pub fn reap(pid: i32) {
    reap_status(pid);
}

/// Waits for child `pid` to exit and reaps it: its wait status (0 when it is no child of
/// ours any more).
pub fn reap_status(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            return status;
        }
        if r >= 0 || errno() != libc::EINTR {
            return 0;
        }
    }
}

/// Reaps child `pid` if it has exited: `Some(wait status)` when it is gone (`Some(0)` when
/// it is no child of ours any more), `None` while it runs. Signal-safe.
pub fn reap_nohang(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waits for our own child, without blocking.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
    match r {
        0 => None,
        r if r == pid => Some(status),
        _ => Some(0),
    }
}

/// The real user id.
pub fn getuid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getuid() }
}

/// Whether the process runs in secure-execution mode (`AT_SECURE`: set-user-ID or
/// set-group-ID, or gained capabilities, at its exec).
pub fn secure_execution() -> bool {
    // SAFETY: getauxval reads the auxiliary vector; no pointers involved.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// `prlimit64` on this process: the (soft, hard) limit of resource `res`. Signal-safe.
pub fn get_rlimit(res: u32) -> SysResult<(u64, u64)> {
    let mut old = [0u64; 2];
    // SAFETY: the kernel writes one struct rlimit64 (two u64) into `old`.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            res,
            core::ptr::null::<u64>(),
            old.as_mut_ptr(),
        )
    })?;
    Ok((old[0], old[1]))
}

/// `prlimit64` on this process: sets the (soft, hard) limit of resource `res`. Signal-safe.
pub fn set_rlimit(res: u32, soft: u64, hard: u64) -> SysResult<()> {
    let new = [soft, hard];
    // SAFETY: the kernel reads one struct rlimit64 (two u64) from `new`.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            res,
            new.as_ptr(),
            core::ptr::null_mut::<u64>(),
        )
    })
    .map(drop)
}

/// `PR_GET_THP_DISABLE`: bit 0 set when transparent huge pages are disabled for the
/// process, the other bits the flags it was disabled with. Signal-safe.
pub fn thp_disable() -> SysResult<u64> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(42, 0, 0, 0, 0) } as libc::c_long).map(|v| v as u64)
}

/// `PR_SET_THP_DISABLE` from a `thp_disable` value. Signal-safe.
pub fn set_thp_disable(value: u64) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(41, value & 1, value & !1, 0, 0) } as libc::c_long).map(drop)
}

/// `MEMBARRIER_CMD_GET_REGISTRATIONS`: the registration commands this process issued.
/// Signal-safe.
pub fn membarrier_registrations() -> SysResult<u64> {
    // SAFETY: membarrier with integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_membarrier, 1 << 9, 0, 0) }).map(|v| v as u64)
}

/// Issues the membarrier registration command `cmd` again. Signal-safe.
pub fn membarrier_register(cmd: u64) -> SysResult<()> {
    // SAFETY: membarrier with integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) }).map(drop)
}
