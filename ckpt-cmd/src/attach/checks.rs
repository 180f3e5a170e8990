//! Step 1 of an attach: what /proc says of the target, checked before it is touched
//! (same user, not traced, not stopped, dumpable, glibc mapped with the functions the calls
//! need, libckpt not there already, SIGSEGV not ignored, signal 63 free, no seccomp), and
//! why the kernel refused to trace it.

use super::*;

/// Reads `/proc/PID/<file>`.
pub(super) fn proc_file(pid: i32, file: &str) -> Result<Vec<u8>, AttachError> {
    std::fs::read(format!("/proc/{pid}/{file}")).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AttachError::Refused(format!("no process {pid} (it does not exist or has ended)"))
        } else {
            AttachError::Refused(format!(
                "cannot read /proc/{pid}/{file}: {}",
                io_message(&e)
            ))
        }
    })
}

/// Step 1: everything that can be checked without touching the target.
pub(super) fn check(pid: i32) -> Result<target::LibcFunctions, AttachError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: String| Err(AttachError::Refused(format!("process {pid} {why}")));
    let status = proc_file(pid, "status")?;
    let Some(status) = target::parse_status(&status) else {
        return refuse("has a /proc status this command cannot read".to_owned());
    };
    if matches!(status.state, b'Z' | b'X') {
        return Err(AttachError::Refused(format!(
            "no process {pid} (it has ended)"
        )));
    }
    let me = ptrace::euid();
    if me != 0 && status.uids.iter().any(|&uid| uid != me) {
        return refuse(format!(
            "belongs to another user (uid {}); ckpt attach works on your own processes only",
            status.uids[1]
        ));
    }
    if status.tracer != 0 {
        return refuse(format!(
            "is already traced by process {} (a debugger, strace, or another ckpt attach); \
             a process can have only one tracer",
            status.tracer
        ));
    }
    // A filter may kill the program for a system call the library's loading makes (openat,
    // mmap, mprotect, rt_sigaction …), and which it forbids cannot be read as an ordinary
    // user: never risk it.
    if status.seccomp != 0 {
        return refuse(format!(
            "runs under a seccomp {} (Seccomp: {} in /proc/{pid}/status), which may kill it              for the system calls loading libckpt makes; start it under ckpt instead",
            if status.seccomp == 1 { "strict mode" } else { "filter" },
            status.seccomp
        ));
    }
    if matches!(status.state, b'T' | b't') {
        return refuse("is stopped; continue it first (kill -CONT)".to_owned());
    }
    // The kernel gives the files of /proc/PID of a non-dumpable process to root (proc(5)).
    if let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/status")) {
        if meta.uid() == 0 && status.uids[1] != 0 {
            return refuse(
                "is not dumpable (it called prctl(PR_SET_DUMPABLE, 0), or changed its \
                 user or ran a set-user-ID program); the kernel forbids tracing it"
                    .to_owned(),
            );
        }
    }
    let maps = proc_file(pid, "maps")?;
    if crate::checkpoint::runs_libckpt(pid, &maps) {
        return Err(AttachError::AlreadyLoaded);
    }
    let Some(libc) = target::find_libc(&maps) else {
        return refuse(if target::executable_is_dynamic(pid) {
            "has no libc.so.6 mapped (yet): it is still starting up, or uses another C \
             library; libckpt can be loaded only by glibc's dlopen"
                .to_owned()
        } else {
            "has no libc.so.6 mapped: it is statically linked, and libckpt can be loaded \
             only by glibc's dlopen"
                .to_owned()
        });
    };
    if status.ignored & (1 << (libc::SIGSEGV - 1)) != 0 {
        return refuse(
            "ignores SIGSEGV, which ckpt attach needs to regain control after each call \
             (the kernel would reset it to the default action)"
                .to_owned(),
        );
    }
    let control = ckpt_image::CONTROL_SIGNAL;
    if status.caught & (1 << (control - 1)) != 0 {
        return refuse(format!(
            "catches signal {control} itself, which is ckpt's control signal"
        ));
    }
    target::libc_functions(pid, &libc)
        .map_err(|why| AttachError::Refused(format!("process {pid}: {why}; not injecting")))
}

/// Why `PTRACE_SEIZE` said EPERM, as far as can be told.
pub(super) fn seize_refused(pid: i32, error: &std::io::Error) -> AttachError {
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let why = match (error.raw_os_error(), yama) {
        (Some(libc::EPERM), Some(scope)) if scope >= 1 => format!(
            "the kernel refused to trace it (EPERM): Yama's ptrace_scope is {scope}, which \
             lets a process trace only its own descendants; allow it with \
             `sysctl kernel.yama.ptrace_scope=0` (as root), or start the program under ckpt"
        ),
        (Some(libc::EPERM), _) => "the kernel refused to trace it (EPERM: a security module \
             or a namespace boundary forbids it)"
            .to_owned(),
        _ => format!("cannot trace it: {}", io_message(error)),
    };
    AttachError::Refused(format!("process {pid}: {why}"))
}
