//! The few system calls the command needs beyond std, each wrapped once with its safety
//! argument: peer credentials, random bits, queued signals, `kill`, `poll`, and a byte view
//! of aligned buffers.
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

/// The credentials the kernel vouches for at the other end of a connected unix socket
/// (`SO_PEERCRED`): `(pid, uid)`.
pub fn peer_credentials(fd: i32) -> io::Result<(i32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `cred`, which has that size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid))
}

/// 32 random bits from the kernel.
pub fn random_u32() -> io::Result<u32> {
    let mut bytes = [0u8; 4];
    // SAFETY: getrandom writes at most 4 bytes into the 4-byte buffer.
    let r = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if r != bytes.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(u32::from_ne_bytes(bytes))
}

/// `sigqueue(pid, signal, value)` with our own pid and uid in the `siginfo` (as glibc's
/// sigqueue does), by `rt_sigqueueinfo`.
pub fn sigqueue(pid: i32, signal: i32, value: i32) -> io::Result<()> {
    /// The start of the kernel's `siginfo_t` for `SI_QUEUE` (x86-64); the rest is zero.
    #[repr(C)]
    struct QueueInfo {
        si_signo: i32,
        si_errno: i32,
        si_code: i32,
        _pad: i32,
        si_pid: i32,
        si_uid: u32,
        si_value: u64,
        _rest: [u64; 12],
    }
    const _: () = assert!(std::mem::size_of::<QueueInfo>() == 128);
    let info = QueueInfo {
        si_signo: signal,
        si_errno: 0,
        si_code: libc::SI_QUEUE,
        _pad: 0,
        si_pid: std::process::id() as i32,
        // SAFETY: getuid has no preconditions and cannot fail.
        si_uid: unsafe { libc::getuid() },
        // sival_int is the low half of the union on a little-endian machine.
        si_value: value as u32 as u64,
        _rest: [0; 12],
    };
    // SAFETY: the kernel reads 128 bytes of siginfo from a valid, initialised struct of that
    // size; the call has no other memory effects.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigqueueinfo,
            pid as libc::c_long,
            signal as libc::c_long,
            &info as *const QueueInfo,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `kill(pid, signal)`; signal 0 only checks that the process exists and may be signalled.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` for `fd` to become readable (or hung up); returns whether it did.
pub fn poll_readable(fd: i32, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: poll reads and writes exactly one pollfd, which lives on our stack.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    match r {
        -1 => {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// The bytes of a slice of `u64` (an 8-byte aligned buffer for the image tables).
pub fn u64s_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: any initialised u64 is 8 initialised bytes; the slice borrows `words`, so it
    // stays valid and unaliased by writers for its lifetime.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, std::mem::size_of_val(words)) }
}

/// The mutable bytes of a slice of `u64`.
pub fn u64s_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: as above; every byte pattern is a valid u64, so writes through the byte view
    // cannot create an invalid value, and the exclusive borrow prevents aliasing.
    unsafe {
        std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, std::mem::size_of_val(words))
    }
}
