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

/// Sends `buf` on a socket if it fits now, never waiting and never raising SIGPIPE; whether
/// it went. Signal-safe.
pub fn send_nowait(fd: c_int, buf: &[u8]) -> bool {
    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
    // SAFETY: sends from a live buffer.
    let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
    r == buf.len() as isize
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

// ---------------------------------------------------------------------------------------------
// Sockets the program has open: what they are (at the checkpoint) and making them again (at
// the restart).

/// An integer socket option. Signal-safe.
pub fn sockopt_int(fd: c_int, level: c_int, name: c_int) -> SysResult<i32> {
    let mut v: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `v`.
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut c_int).cast(), &mut len) };
    check(r as libc::c_long)?;
    Ok(v)
}

/// Sets an integer socket option. Signal-safe.
pub fn set_sockopt_int(fd: c_int, level: c_int, name: c_int, v: i32) -> SysResult<()> {
    // SAFETY: the kernel reads one c_int from `v`.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const c_int).cast(),
            core::mem::size_of::<c_int>() as libc::socklen_t,
        )
    } as libc::c_long)
    .map(drop)
}

/// The state of a TCP socket (`tcpi_state` of `TCP_INFO`: 1 established, 7 closed, 10
/// listening, …). Signal-safe.
pub fn tcp_state(fd: c_int) -> SysResult<u8> {
    let mut info = [0u8; 8];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    } as libc::c_long)?;
    Ok(info[0])
}

/// Whether TCP socket `fd` has sent or received segments (`tcp_info`'s `tcpi_segs_out`
/// and `tcpi_segs_in`, since Linux 4.2): in the closed state, one that was connected (an
/// accepted connection after its end, say) and not one only bound. Signal-safe.
pub fn tcp_exchanged_segments(fd: c_int) -> bool {
    let mut info = [0u8; 144];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 || (len as usize) < info.len() {
        return false;
    }
    let word = |at: usize| u32::from_ne_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    word(136) != 0 || word(140) != 0
}

/// The socket's own address (`peer`: its peer's) into `buf`; its length. Signal-safe.
pub fn socket_address(fd: c_int, peer: bool, buf: &mut [u8; 128]) -> SysResult<usize> {
    let mut len = buf.len() as libc::socklen_t;
    let p = buf.as_mut_ptr().cast::<libc::sockaddr>();
    // SAFETY: the kernel writes at most `len` bytes of address into `buf`.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    check(r as libc::c_long)?;
    Ok((len as usize).min(buf.len()))
}

/// A new socket (close-on-exec). Signal-safe.
pub fn socket(family: c_int, kind: c_int, protocol: c_int) -> SysResult<c_int> {
    // SAFETY: socket(2) with plain integer arguments.
    check(unsafe { libc::socket(family, kind | libc::SOCK_CLOEXEC, protocol) } as libc::c_long)
        .map(|fd| fd as c_int)
}

/// A new pair of connected unix sockets (close-on-exec). Signal-safe.
pub fn socket_pair(kind: c_int) -> SysResult<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: the kernel writes two descriptors into `fds`.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } as libc::c_long)?;
    Ok((fds[0], fds[1]))
}

/// Binds a socket to `addr` (a sockaddr). Signal-safe.
pub fn bind(fd: c_int, addr: &[u8]) -> SysResult<()> {
    // SAFETY: the kernel reads `addr.len()` bytes of address from a live buffer; a sockaddr
    // needs no alignment beyond bytes for the kernel's copy.
    check(
        unsafe { libc::bind(fd, addr.as_ptr().cast(), addr.len() as libc::socklen_t) }
            as libc::c_long,
    )
    .map(drop)
}

/// Connects a socket to `addr` (a sockaddr), going on after a signal. Signal-safe.
pub fn connect(fd: c_int, addr: &[u8]) -> SysResult<()> {
    loop {
        // SAFETY: as for `bind`.
        let r = unsafe { libc::connect(fd, addr.as_ptr().cast(), addr.len() as libc::socklen_t) };
        match check(r as libc::c_long) {
            Err(libc::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

pub fn listen(fd: c_int, backlog: i32) -> SysResult<()> {
    // SAFETY: listen(2) with plain integer arguments.
    check(unsafe { libc::listen(fd, backlog) } as libc::c_long).map(drop)
}

/// The bytes queued for a socket to read (`SIOCINQ`; for a datagram socket, the first
/// message's). Signal-safe.
pub fn queued_to_read(fd: c_int) -> SysResult<usize> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one c_int.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } as libc::c_long)?;
    Ok(n.max(0) as usize)
}

/// What one peek at a socket's queue found.
pub struct Peeked {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The whole message's length (datagram, seqpacket: more than `len` when it did not fit).
    pub full: usize,
    /// Descriptors or other ancillary data the peek left out (`MSG_CTRUNC`): with room for
    /// credentials only, that is descriptors in flight (`SCM_RIGHTS`).
    pub truncated: bool,
}

/// Copies queued bytes of a socket into `buf` without taking them (`MSG_PEEK`), never
/// waiting. `messages`: the socket keeps message boundaries, and `full` is the message's
/// whole length (`MSG_TRUNC`, which on a TCP socket would drop the bytes instead). `creds`: room for one `SCM_CREDENTIALS` (the socket has `SO_PASSCRED`), and
/// nothing else, so that descriptors in flight show as `truncated` and are never received.
/// Signal-safe.
pub fn peek(fd: c_int, buf: &mut [u8], messages: bool, creds: bool) -> SysResult<Peeked> {
    // Room for one cmsghdr and a ucred (CMSG_SPACE(12) = 32 on x86-64), aligned for it.
    let mut control = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no control); it is filled below.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if creds {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = core::mem::size_of_val(&control);
    }
    let mut flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    if messages {
        flags |= libc::MSG_TRUNC;
    }
    loop {
        // SAFETY: `msg` points at `iov` (into `buf`) and `control`, live for the call.
        let r = unsafe { libc::recvmsg(fd, &mut msg, flags) };
        match check(r as libc::c_long) {
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(full) => {
                return Ok(Peeked {
                    len: full.min(buf.len()),
                    full,
                    truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
                })
            }
        }
    }
}

/// Sends `buf` as one message (or as many bytes of a stream as the socket takes now),
/// never waiting and never raising SIGPIPE; the bytes sent. Signal-safe.
pub fn send_now(fd: c_int, buf: &[u8]) -> SysResult<usize> {
    loop {
        // SAFETY: sends from a live buffer.
        let r = unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        match check(r as libc::c_long) {
            Err(libc::EINTR) => continue,
            r => return r,
        }
    }
}

/// What the kernel's socket diagnostics (`NETLINK_SOCK_DIAG`, open to every user) say of a
/// unix socket.
#[derive(Clone, Copy, Default, Debug)]
pub struct UnixDiag {
    /// The inode of the socket at the other end (0: none).
    pub peer_ino: u64,
    /// Listening: connections waiting to be accepted and the backlog; otherwise messages
    /// queued to read and (unused) the queue to send.
    pub rqueue: u32,
    pub wqueue: u32,
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;

/// The diagnostics of the unix socket of inode `ino`; `buf` is room for the answer (a few
/// hundred bytes). Signal-safe.
pub fn unix_diag(ino: u64, buf: &mut [u8]) -> SysResult<UnixDiag> {
    // nlmsghdr (16) + unix_diag_req (24): family, protocol, pad, states, ino, show, cookie[2].
    let mut req = [0u8; 40];
    req[0..4].copy_from_slice(&40u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req[16] = libc::AF_UNIX as u8;
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    req[24..28].copy_from_slice(&(ino as u32).to_ne_bytes());
    req[28..32].copy_from_slice(&(UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).to_ne_bytes());
    // No cookie: INET_DIAG_NOCOOKIE (all ones).
    req[32..40].copy_from_slice(&[0xff; 8]);
    let n = diag_exchange(&req, buf)?;
    let mut out = UnixDiag::default();
    let mut found = false;
    for (kind, msg) in netlink_messages(&buf[..n]) {
        match kind {
            k if k == libc::NLMSG_ERROR as u16 => {
                let e = msg
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                return Err(if e < 0 { -e } else { libc::EPROTO });
            }
            SOCK_DIAG_BY_FAMILY if msg.len() >= 16 => {
                // unix_diag_msg: family, type, state, pad, ino, cookie[2]; then attributes.
                if u32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]) as u64 != ino {
                    continue;
                }
                found = true;
                for (t, v) in netlink_attributes(&msg[16..]) {
                    match t {
                        UNIX_DIAG_PEER if v.len() >= 4 => {
                            out.peer_ino = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]) as u64
                        }
                        UNIX_DIAG_RQLEN if v.len() >= 8 => {
                            out.rqueue = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
                            out.wqueue = u32::from_ne_bytes([v[4], v[5], v[6], v[7]]);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if found {
        Ok(out)
    } else {
        Err(libc::ENOENT)
    }
}

/// For the listening TCP socket of inode `ino` (family `family`): (connections waiting to
/// be accepted, backlog), from the kernel's socket diagnostics (a dump of the listening
/// sockets of that family); `buf` is room for the answers. Signal-safe.
pub fn tcp_listen_diag(family: c_int, ino: u64, buf: &mut [u8]) -> SysResult<(u32, u32)> {
    // nlmsghdr (16) + inet_diag_req_v2 (56): family, protocol, ext, pad, states, sockid (48).
    let mut req = [0u8; 72];
    req[0..4].copy_from_slice(&72u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[16] = family as u8;
    req[17] = libc::IPPROTO_TCP as u8;
    // Listening sockets only (1 << TCP_LISTEN).
    req[20..24].copy_from_slice(&(1u32 << 10).to_ne_bytes());
    let fd = diag_socket()?;
    let sent = send_all(fd, &req);
    let mut result = Err(libc::ENOENT);
    if let Err(e) = sent {
        close(fd);
        return Err(e);
    }
    'reading: loop {
        let n = match receive(fd, buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        for (kind, msg) in netlink_messages(&buf[..n]) {
            match kind {
                k if k == libc::NLMSG_DONE as u16 => break 'reading,
                k if k == libc::NLMSG_ERROR as u16 => {
                    result = Err(libc::EPROTO);
                    break 'reading;
                }
                // inet_diag_msg: … rqueue at 56, wqueue at 60, inode at 68.
                SOCK_DIAG_BY_FAMILY if msg.len() >= 72 => {
                    let at =
                        |k: usize| u32::from_ne_bytes([msg[k], msg[k + 1], msg[k + 2], msg[k + 3]]);
                    if at(68) as u64 == ino {
                        result = Ok((at(56), at(60)));
                    }
                }
                _ => {}
            }
        }
    }
    close(fd);
    result
}

fn diag_socket() -> SysResult<c_int> {
    // SAFETY: socket(2) with constant arguments.
    check(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    } as libc::c_long)
    .map(|fd| fd as c_int)
}

/// Sends one request to the socket diagnostics and reads one answer into `buf`.
fn diag_exchange(req: &[u8], buf: &mut [u8]) -> SysResult<usize> {
    let fd = diag_socket()?;
    let r = send_all(fd, req).and_then(|()| receive(fd, buf));
    close(fd);
    r
}

fn receive(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: receives into a live buffer.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        match check(r as libc::c_long) {
            Err(libc::EINTR) => continue,
            r => return r,
        }
    }
}

/// The (type, payload) of each netlink message in `buf`.
fn netlink_messages(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    core::iter::from_fn(move || {
        if buf.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 16 || len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let payload = &buf[16..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((kind, payload))
    })
}

/// The (type, value) of each netlink attribute in `buf`.
fn netlink_attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    core::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < 4 || len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([buf[2], buf[3]]);
        let value = &buf[4..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((kind, value))
    })
}

/// Text kept for the one message a failed restart prints (`Failure::what` is `'static`):
/// written once, by the first caller, then only read.
static MESSAGE: Global<[u8; 512]> = Global::new([0; 512]);
static MESSAGE_TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// `parts` joined, as `'static` text for a restart's failure message (cut at 512 bytes).
/// Only the first call's text is kept: later calls get `fallback`. Signal-safe.
pub fn keep_message(parts: &[&[u8]], fallback: &'static [u8]) -> &'static [u8] {
    if MESSAGE_TAKEN.swap(true, core::sync::atomic::Ordering::AcqRel) {
        return fallback;
    }
    // SAFETY: the flag above lets exactly one call through here, ever, so this is the only
    // mutable use of the buffer; afterwards it is only read through the returned slice.
    let buf = unsafe { MESSAGE.get() };
    let mut n = 0;
    for part in parts {
        let k = part.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&part[..k]);
        n += k;
    }
    &buf[..n]
}

/// The file type bits (`S_IFMT`) of what `path` (NUL-terminated) names, not following a
/// final symbolic link. Signal-safe.
pub fn path_type(path: &[u8]) -> SysResult<u32> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: an all-zero stat is a valid value; lstat fills it from a NUL-terminated path.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated (checked) and `st` is writable.
    check(unsafe { libc::lstat(path.as_ptr().cast(), &mut st) } as libc::c_long)?;
    Ok(st.st_mode & libc::S_IFMT)
}

/// Removes the file `path` (NUL-terminated). Signal-safe.
pub fn remove_path(path: &[u8]) -> SysResult<()> {
    if path.last() != Some(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: a NUL-terminated path (checked).
    check(unsafe { libc::unlink(path.as_ptr().cast()) } as libc::c_long).map(drop)
}
