//! Unix sockets: the `ckpt checkpoint` request channel, authenticated by the kernel.

use core::ffi::c_int;

use super::*;

/// Connects a new stream socket (close-on-exec) to the abstract unix socket `name` (without
/// its leading NUL). Signal-safe.
pub fn connect_abstract(name: &[u8]) -> SysResult<c_int> {
    // SAFETY: socket(2) with constant arguments.
    let fd = check(
        unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) }
            as libc::c_long,
    )? as c_int;
    // SAFETY: an all-zero sockaddr_un is valid; it is filled below.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() + 1 > addr.sun_path.len() {
        close(fd);
        return Err(libc::ENAMETOOLONG);
    }
    // sun_path[0] stays 0: an abstract name.
    for (d, s) in addr.sun_path[1..].iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let len = core::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    loop {
        // SAFETY: `addr` is a valid sockaddr_un of which `len` bytes are used.
        let r = unsafe {
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            )
        };
        match check(r as libc::c_long) {
            Ok(_) => return Ok(fd),
            Err(libc::EINTR) => continue,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        }
    }
}

/// The credentials the kernel vouches for at the other end of a connected unix socket
/// (`SO_PEERCRED`: for a client, those of the process that called `listen`): (pid, uid).
/// Signal-safe.
pub fn peer_credentials(fd: c_int) -> SysResult<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = core::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `cred`.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    } as libc::c_long)?;
    Ok((cred.pid as u32, cred.uid))
}

/// Reads from a socket until `buf` holds a newline, the peer closes, `buf` is full or `ms`
/// milliseconds pass without data; returns the bytes read. Signal-safe.
pub fn read_line_within(fd: c_int, buf: &mut [u8], ms: i32) -> usize {
    let mut n = 0;
    while n < buf.len() && !buf[..n].contains(&b'\n') {
        if !wait_readable(fd, ms) {
            break;
        }
        // SAFETY: the destination is the unfilled tail of `buf`.
        let r = unsafe {
            libc::recv(
                fd,
                buf[n..].as_mut_ptr().cast(),
                buf.len() - n,
                libc::MSG_DONTWAIT,
            )
        };
        match check(r as libc::c_long) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(libc::EINTR) | Err(libc::EAGAIN) => continue,
            Err(_) => break,
        }
    }
    n
}

/// Sends all of `buf` on a socket, never raising SIGPIPE (the peer may be gone; the
/// program must not die of it). Signal-safe.
pub fn send_all(fd: c_int, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: sends from a live buffer.
        let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        match check(r as libc::c_long) {
            Ok(k) => buf = &buf[k..],
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
