//! Sockets: TCP, UDP (IPv4 and IPv6) and unix (stream, datagram, seqpacket).
//!
//! At the checkpoint the kernel tells what a socket is (`SO_DOMAIN`, `SO_TYPE`,
//! `SO_PROTOCOL`, `SO_ACCEPTCONN`, TCP's state), its addresses, the options worth keeping,
//! and, for unix sockets, through the socket diagnostics every user may ask
//! (`NETLINK_SOCK_DIAG`), its peer's inode and its backlog. What a restart makes of it
//! ([`ckpt_image::fdkind::socket`]):
//!
//! - listening and bound sockets are made with the same options and bound to the same
//!   address again (`SO_REUSEADDR` for the bind; a unix path left by the old process is
//!   removed only when nothing listens on it); listening ones listen with the saved backlog.
//!   `check` tries the bind (or the path) first, so a taken port ends the restart before
//!   anything changed. Connections waiting in the old listen queue are lost, as are
//!   datagrams queued for a bound (or named-peer) datagram socket: their senders cannot be
//!   made again. Both are counted, and the restart says so in one line.
//! - a unix connection with both ends in the process comes back as a socket pair, with the
//!   bytes (and message boundaries) queued each way; descriptors in flight (`SCM_RIGHTS`)
//!   refuse the checkpoint.
//! - a datagram socket connected to a named peer is connected again.
//! - any other connection (TCP, unix to another process) comes back as a socket whose peer
//!   has closed: what was queued for it to read, then end-of-file (writes fail with EPIPE),
//!   so the program reconnects. TCP connections cannot be taken over by an ordinary user
//!   (`TCP_REPAIR` needs CAP_NET_ADMIN). The restart says in one line which came back so.
//!
//! Anything else (netlink, packet, TCP connecting) is not saved: the policy refuses it.

use ckpt_image::fdkind::socket::*;
use ckpt_image::FD_ACTION_REBUILD;

use super::{Failure, Restoring, Saving};
use crate::files::FdError;
use crate::line::Line;
use crate::sys;

const SOL_SOCKET: i32 = libc::SOL_SOCKET;

// TCP states (include/net/tcp_states.h).
const TCP_ESTABLISHED: u8 = 1;
const TCP_FIN_WAIT1: u8 = 4;
const TCP_FIN_WAIT2: u8 = 5;
const TCP_CLOSE: u8 = 7;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_LISTEN: u8 = 10;
const TCP_CLOSING: u8 = 11;

pub(super) fn save(s: &mut Saving) -> Result<bool, FdError> {
    let fd = s.fd;
    let int = |level, name| sys::sockopt_int(fd, level, name);
    let (Ok(family), Ok(kind), Ok(protocol)) = (
        int(SOL_SOCKET, libc::SO_DOMAIN),
        int(SOL_SOCKET, libc::SO_TYPE),
        int(SOL_SOCKET, libc::SO_PROTOCOL),
    ) else {
        return Ok(false);
    };
    let inet = matches!(family, libc::AF_INET | libc::AF_INET6);
    let known = match (family, kind) {
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => protocol == libc::IPPROTO_TCP,
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => protocol == libc::IPPROTO_UDP,
        (libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET) => true,
        _ => false,
    };
    if !known {
        return Ok(false);
    }
    let mut sock = Socket {
        family: family as u32,
        kind: kind as u32,
        protocol: protocol as u32,
        ..Default::default()
    };
    sock.local_len = sys::socket_address(fd, false, &mut sock.local).unwrap_or(0) as u32;
    sock.peer_len = sys::socket_address(fd, true, &mut sock.peer).unwrap_or(0) as u32;
    let on = |level, name| int(level, name).is_ok_and(|v| v != 0);
    for (level, name, bit) in [
        (SOL_SOCKET, libc::SO_REUSEADDR, OPT_REUSEADDR),
        (SOL_SOCKET, libc::SO_REUSEPORT, OPT_REUSEPORT),
        (SOL_SOCKET, libc::SO_KEEPALIVE, OPT_KEEPALIVE),
        (SOL_SOCKET, libc::SO_PASSCRED, OPT_PASSCRED),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY, OPT_NODELAY),
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, OPT_V6ONLY),
    ] {
        let applies = match level {
            libc::IPPROTO_TCP => inet && kind == libc::SOCK_STREAM,
            libc::IPPROTO_IPV6 => family == libc::AF_INET6,
            _ => true,
        };
        if applies && on(level, name) {
            sock.options |= bit;
        }
    }
    sock.rcvbuf = int(SOL_SOCKET, libc::SO_RCVBUF).unwrap_or(0) as u32;
    sock.sndbuf = int(SOL_SOCKET, libc::SO_SNDBUF).unwrap_or(0) as u32;
    let listening = on(SOL_SOCKET, libc::SO_ACCEPTCONN);
    let named = address_named(sock.local());

    if inet && kind == libc::SOCK_STREAM {
        let Ok(state) = sys::tcp_state(fd) else {
            return Ok(false);
        };
        sock.mode = match state {
            TCP_LISTEN => SOCKET_LISTEN,
            // A connection that has ended (after a reset, or its close while the
            // descriptor stays open) comes back closed, not bound again: its port is
            // usually a listening socket's.
            TCP_CLOSE if sys::tcp_exchanged_segments(fd) => {
                sock.options |= OPT_PEER_GONE;
                SOCKET_CONNECTED
            }
            TCP_CLOSE if named => SOCKET_BOUND,
            TCP_CLOSE => SOCKET_FRESH,
            TCP_ESTABLISHED | TCP_FIN_WAIT1 | TCP_FIN_WAIT2 => SOCKET_CONNECTED,
            TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_CLOSING => {
                sock.options |= OPT_PEER_GONE;
                SOCKET_CONNECTED
            }
            // Connecting (SYN_SENT, SYN_RECV): nothing a restart could make of it.
            _ => return Ok(false),
        };
        if sock.mode == SOCKET_LISTEN {
            // The backlog comes from the socket diagnostics; when they cannot say, the
            // restart listens with SOMAXCONN (backlog 0 here).
            let room = &mut s.scratch[..65536];
            if let Ok((waiting, backlog)) = sys::tcp_listen_diag(family, s.rec.ino, room) {
                (sock.waiting, sock.backlog) = (waiting, backlog);
            }
        }
    } else if inet {
        sock.mode = if sock.peer_len > 0 {
            SOCKET_CONNECTED
        } else if named {
            SOCKET_BOUND
        } else {
            SOCKET_FRESH
        };
    } else {
        // Unix: the diagnostics name the peer (a socket pair or a connection inside the
        // process is made again as a pair, so they must be able to tell).
        let diag = match sys::unix_diag(s.rec.ino, &mut s.scratch[..4096]) {
            Ok(d) => d,
            Err(e) => {
                return Err(FdError::Save(
                    s.fd as u32,
                    "cannot be saved: the kernel's socket diagnostics (NETLINK_SOCK_DIAG) \
                     do not say what it is connected to",
                    e,
                ))
            }
        };
        sock.peer_ino = diag.peer_ino;
        sock.mode = if listening {
            (sock.waiting, sock.backlog) = (diag.rqueue, diag.wqueue);
            SOCKET_LISTEN
        } else if sock.peer_len > 0 || diag.peer_ino != 0 {
            SOCKET_CONNECTED
        } else if named {
            SOCKET_BOUND
        } else {
            SOCKET_FRESH
        };
        if sock.mode == SOCKET_CONNECTED {
            if diag.peer_ino == 0 {
                sock.options |= OPT_PEER_GONE;
            } else if holds_socket(diag.peer_ino, s.scratch) {
                sock.options |= OPT_PEER_HERE;
            }
        }
    }

    // What was queued for it to read: given back to it at the restart (UDP's and those of
    // a datagram socket connected again are not: their senders' addresses cannot be made
    // again; they are counted, and the restart says they are lost).
    let keeps_bytes = sock.mode == SOCKET_CONNECTED
        && (family == libc::AF_UNIX || kind == libc::SOCK_STREAM)
        && !(kind == libc::SOCK_DGRAM
            && sock.options & OPT_PEER_HERE == 0
            && address_named(sock.peer()));
    if keeps_bytes {
        let creds = sock.options & OPT_PASSCRED != 0;
        let saved = if sock.messages_kept() {
            save_messages(s, &mut sock, creds)
        } else {
            save_stream(s, creds)
        };
        if let Err(what) = saved {
            return Err(FdError::Save(s.fd as u32, what.0, what.1));
        }
    } else {
        sock.messages = 0;
        if kind == libc::SOCK_DGRAM {
            sock.waiting = count_datagrams(s);
        }
    }
    s.put_aux(&sock)?;
    Ok(true)
}

/// Whether one of this process's descriptors is the socket of inode `ino` (`buf` is room
/// for the directory listing).
fn holds_socket(ino: u64, buf: &mut [u8]) -> bool {
    let mut want = Line::<40>::new();
    want.push(b"socket:[").push_decimal(ino).push(b"]");
    let Ok(dir) = sys::open(
        b"/proc/thread-self/fd\0",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    ) else {
        return false;
    };
    let mut found = false;
    'listing: while let Ok(n @ 1..) = sys::getdents(dir, &mut buf[..32768]) {
        for name in sys::dirent_names(&buf[..n]) {
            if name.first().is_none_or(|c| !c.is_ascii_digit()) {
                continue;
            }
            let mut path = Line::<48>::new();
            path.push(b"/proc/thread-self/fd/").push(name).push(b"\0");
            let mut link = [0u8; 40];
            if sys::readlink(path.as_bytes(), &mut link)
                .is_ok_and(|k| &link[..k] == want.as_bytes())
            {
                found = true;
                break 'listing;
            }
        }
    }
    sys::close(dir);
    found
}

type SaveFailure = (&'static str, i32);

const IN_FLIGHT: SaveFailure = (
    "cannot be saved: descriptors are in flight on it (SCM_RIGHTS), and a restart cannot \
     send them again",
    0,
);

/// Peeks at the queue from the start with `SO_PEEK_OFF` (put back as it was afterwards),
/// so that each peek goes on where the last one stopped.
struct PeekFromStart {
    fd: i32,
    old: Option<i32>,
}

impl PeekFromStart {
    fn new(fd: i32) -> PeekFromStart {
        let old = sys::sockopt_int(fd, SOL_SOCKET, libc::SO_PEEK_OFF).ok();
        let set =
            old.is_some() && sys::set_sockopt_int(fd, SOL_SOCKET, libc::SO_PEEK_OFF, 0).is_ok();
        PeekFromStart {
            fd,
            old: if set { old } else { None },
        }
    }

    /// Whether each peek goes on where the last stopped.
    fn goes_on(&self) -> bool {
        self.old.is_some()
    }
}

impl Drop for PeekFromStart {
    fn drop(&mut self) {
        if let Some(old) = self.old {
            let _ = sys::set_sockopt_int(self.fd, SOL_SOCKET, libc::SO_PEEK_OFF, old);
        }
    }
}

/// How many datagrams are queued for the socket to read, which the restart cannot give
/// back (their senders' addresses cannot be made again): counted so that the restart can
/// say they are lost. Without `SO_PEEK_OFF` (or room to peek a whole datagram) only
/// whether there are any (1).
fn count_datagrams(s: &mut Saving) -> u32 {
    let fd = s.fd;
    let peeking = PeekFromStart::new(fd);
    let room = &mut s.data[s.data_end..];
    let mut count = 0u32;
    while let Ok(p) = sys::peek(fd, room, true, false) {
        count += 1;
        // A datagram longer than the room would be peeked again from its middle.
        if !peeking.goes_on() || p.full > p.len {
            break;
        }
    }
    count
}

/// Saves the bytes queued on a stream socket.
fn save_stream(s: &mut Saving, creds: bool) -> Result<(), SaveFailure> {
    let fd = s.fd;
    let want = sys::queued_to_read(fd).map_err(|e| ("cannot be saved: FIONREAD", e))?;
    if want == 0 {
        return Ok(());
    }
    let peeking = PeekFromStart::new(fd);
    let room = s.data_room();
    if room.len() < want {
        return Err((
            "cannot be saved: the descriptors' saved bytes would exceed 1 GiB",
            0,
        ));
    }
    let mut got = 0;
    while got < want {
        let p = sys::peek(fd, &mut room[got..want], false, creds)
            .map_err(|e| ("cannot be saved: its queued bytes cannot be read", e))?;
        if p.truncated {
            return Err(IN_FLIGHT);
        }
        if p.len == 0 || (!peeking.goes_on() && got > 0) {
            break;
        }
        got += p.len;
        if !peeking.goes_on() {
            // Without SO_PEEK_OFF one peek must take it all.
            if got < want {
                return Err((
                    "cannot be saved: its queued bytes cannot all be read (no SO_PEEK_OFF)",
                    0,
                ));
            }
        }
    }
    drop(peeking);
    if got != want {
        return Err((
            "cannot be saved: fewer bytes could be read than are queued",
            0,
        ));
    }
    s.commit_data(got).map_err(|_| {
        (
            "cannot be saved: the descriptors' saved bytes would exceed 1 GiB",
            0,
        )
    })
}

/// Saves the messages queued on a datagram or seqpacket socket: their bytes, then their
/// lengths; `sock.messages` says how many. (The socket diagnostics count bytes here, not
/// messages: the queue is peeked until it is empty.)
fn save_messages(s: &mut Saving, sock: &mut Socket, creds: bool) -> Result<(), SaveFailure> {
    const FULL: SaveFailure = (
        "cannot be saved: the descriptors' saved bytes would exceed 1 GiB",
        0,
    );
    let fd = s.fd;
    let peeking = PeekFromStart::new(fd);
    let room = &mut s.data[s.data_end..];
    let lengths = &mut *s.scratch;
    let mut got = 0;
    let mut count = 0;
    loop {
        let p = match sys::peek(fd, &mut room[got..], true, creds) {
            Ok(p) => p,
            Err(libc::EAGAIN) => break,
            Err(e) => return Err(("cannot be saved: its queued messages cannot be read", e)),
        };
        if p.truncated {
            return Err(IN_FLIGHT);
        }
        if !peeking.goes_on() {
            return Err((
                "cannot be saved: its queued messages cannot be read one by one (no SO_PEEK_OFF)",
                0,
            ));
        }
        if p.full > p.len || 4 * (count + 1) > lengths.len() {
            return Err(FULL);
        }
        lengths[4 * count..4 * count + 4].copy_from_slice(&(p.len as u32).to_le_bytes());
        got += p.len;
        count += 1;
    }
    drop(peeking);
    if count == 0 {
        return Ok(());
    }
    let head = &s.scratch[..4 * count];
    let room = &mut s.data[s.data_end..];
    if room.len() < got + head.len() {
        return Err(FULL);
    }
    room[got..got + head.len()].copy_from_slice(head);
    sock.messages = count as u32;
    s.commit_data(got + 4 * count).map_err(|_| FULL)
}

// ---------------------------------------------------------------------------------------------
// Restart

const NO_STATE: Failure = Failure::new(b"has no saved socket state", 0);

pub(super) fn check(r: &Restoring, i: usize) -> Result<(), Failure> {
    let sock: Socket = r.aux(i).ok_or(NO_STATE)?;
    match sock.mode {
        SOCKET_LISTEN | SOCKET_BOUND => match unix_path(sock.local()) {
            Some(path) => stale_path(&sock, path, false),
            None => {
                let fd = bound(&sock)?;
                sys::close(fd);
                Ok(())
            }
        },
        SOCKET_FRESH => Ok(()),
        // The bytes queued for it must fit in what a new socket holds: tried on a socket
        // pair made and closed for it.
        SOCKET_CONNECTED => {
            let data = r.data(i);
            if data.is_empty() {
                return Ok(());
            }
            let (sock, kind) = as_pair(&sock);
            let (a, b) = sys::socket_pair(kind)
                .map_err(|e| Failure::new(b"cannot be made again: socketpair", e))?;
            let fits = refill(b, data, &sock);
            sys::close(a);
            sys::close(b);
            fits
        }
        _ => Err(NO_STATE),
    }
}

/// `sock` as the unix socket pair end a restart makes of a connection, and its type (a
/// stream for TCP).
fn as_pair(sock: &Socket) -> (Socket, i32) {
    let kind = if sock.family == libc::AF_UNIX as u32 {
        sock.kind as i32
    } else {
        libc::SOCK_STREAM
    };
    let pair = Socket {
        family: libc::AF_UNIX as u32,
        kind: kind as u32,
        ..*sock
    };
    (pair, kind)
}

pub(super) fn rebuild(r: &mut Restoring, i: usize) -> Result<(), Failure> {
    let sock: Socket = r.aux(i).ok_or(NO_STATE)?;
    let nonblock = r.fds[i].flags as i32 & libc::O_NONBLOCK != 0;
    match sock.mode {
        SOCKET_LISTEN => {
            let fd = bound(&sock)?;
            // A backlog that could not be read (0) is SOMAXCONN, as most servers ask.
            let backlog = match sock.backlog {
                0 => libc::SOMAXCONN,
                b => b.min(i32::MAX as u32) as i32,
            };
            if let Err(e) = sys::listen(fd, backlog) {
                sys::close(fd);
                return Err(Failure::new(b"cannot be made again: listen", e));
            }
            finish(r, i, fd, nonblock)?;
            if sock.waiting > 0 {
                let mut what = Line::<160>::new();
                what.push(b"listens again; the ")
                    .push_decimal(sock.waiting as u64)
                    .push(b" connection(s) waiting to be accepted at the checkpoint are lost");
                crate::files::say_fd(&r.fds[i], r.name(i), what.as_bytes(), 0, b"\n");
            }
            Ok(())
        }
        SOCKET_BOUND => {
            let fd = bound(&sock)?;
            finish(r, i, fd, nonblock)?;
            say_datagrams_lost(r, i, &sock, b"is bound again");
            Ok(())
        }
        SOCKET_FRESH => {
            let fd = fresh(&sock)?;
            finish(r, i, fd, nonblock)
        }
        SOCKET_CONNECTED => {
            if let Some(j) = peer_record(r, i, &sock) {
                return rebuild_pair(r, i, j, &sock);
            }
            if sock.kind == libc::SOCK_DGRAM as u32 && address_named(sock.peer()) {
                if let Some(fd) = connected_again(&sock) {
                    finish(r, i, fd, nonblock)?;
                    say_datagrams_lost(r, i, &sock, b"is connected again");
                    return Ok(());
                }
            }
            rebuild_peer_closed(r, i, &sock, nonblock)
        }
        _ => Err(NO_STATE),
    }
}

/// Says in one line that the datagrams queued for socket `i` at the checkpoint are lost.
fn say_datagrams_lost(r: &Restoring, i: usize, sock: &Socket, done: &[u8]) {
    if sock.kind != libc::SOCK_DGRAM as u32 || sock.waiting == 0 {
        return;
    }
    let mut what = Line::<160>::new();
    what.push(done).push(b"; the ");
    if sock.waiting > 1 {
        what.push_decimal(sock.waiting as u64).push(b" ");
    }
    what.push(b"datagram(s) queued for it at the checkpoint are lost");
    crate::files::say_fd(&r.fds[i], r.name(i), what.as_bytes(), 0, b"\n");
}

/// A new socket of the kind `sock` was, with its options (those that must be set before a
/// bind among them).
fn fresh(sock: &Socket) -> Result<i32, Failure> {
    let fd = sys::socket(sock.family as i32, sock.kind as i32, sock.protocol as i32)
        .map_err(|e| Failure::new(b"cannot be made again: socket", e))?;
    apply_options(fd, sock);
    Ok(fd)
}

/// Sets the options `sock` had. Each is a preference the program made: one the kernel
/// will not take now is left as the new socket has it.
fn apply_options(fd: i32, sock: &Socket) {
    let inet = sock.family != libc::AF_UNIX as u32;
    let flag = |bit| i32::from(sock.options & bit != 0);
    let _ = sys::set_sockopt_int(fd, SOL_SOCKET, libc::SO_REUSEADDR, flag(OPT_REUSEADDR));
    if sock.options & OPT_REUSEPORT != 0 {
        let _ = sys::set_sockopt_int(fd, SOL_SOCKET, libc::SO_REUSEPORT, 1);
    }
    if sock.options & OPT_KEEPALIVE != 0 {
        let _ = sys::set_sockopt_int(fd, SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    }
    if sock.options & OPT_PASSCRED != 0 {
        let _ = sys::set_sockopt_int(fd, SOL_SOCKET, libc::SO_PASSCRED, 1);
    }
    if inet && sock.kind == libc::SOCK_STREAM as u32 && sock.options & OPT_NODELAY != 0 {
        let _ = sys::set_sockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    }
    if sock.family == libc::AF_INET6 as u32 {
        let _ = sys::set_sockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, flag(OPT_V6ONLY));
    }
    // Buffer sizes the program set (they differ from a new socket's): the kernel doubles
    // what it is given, and reports the doubled value.
    for (name, saved) in [
        (libc::SO_RCVBUF, sock.rcvbuf),
        (libc::SO_SNDBUF, sock.sndbuf),
    ] {
        let now = sys::sockopt_int(fd, SOL_SOCKET, name).unwrap_or(0) as u32;
        if saved != 0 && saved != now {
            let _ = sys::set_sockopt_int(fd, SOL_SOCKET, name, (saved / 2) as i32);
        }
    }
}

/// A new socket like `sock`, bound to its address (`SO_REUSEADDR` for the bind, then as
/// the program had it). A unix path left by the old process is removed when nothing
/// listens on it.
fn bound(sock: &Socket) -> Result<i32, Failure> {
    let addr = sock.local();
    if let Some(path) = unix_path(addr) {
        stale_path(sock, path, true)?;
    }
    let fd = fresh(sock)?;
    let _ = sys::set_sockopt_int(fd, SOL_SOCKET, libc::SO_REUSEADDR, 1);
    if let Err(e) = sys::bind(fd, addr) {
        sys::close(fd);
        return Err(match e {
            libc::EADDRINUSE => Failure::new(
                sys::keep_message(
                    &[
                        b"cannot be made again: ",
                        address_text(addr).as_bytes(),
                        b" is in use",
                    ],
                    b"cannot be made again: its address is in use",
                ),
                0,
            ),
            _ => Failure::new(
                sys::keep_message(
                    &[
                        b"cannot be made again: cannot bind to ",
                        address_text(addr).as_bytes(),
                    ],
                    b"cannot be made again: bind",
                ),
                e,
            ),
        });
    }
    if sock.options & OPT_REUSEADDR == 0 {
        let _ = sys::set_sockopt_int(fd, SOL_SOCKET, libc::SO_REUSEADDR, 0);
    }
    Ok(fd)
}

/// `addr` as text, for messages.
fn address_text(addr: &[u8]) -> Line<200> {
    let mut line = Line::<200>::new();
    write_address(addr, &mut |b| {
        line.push(b);
    });
    line
}

/// Whether the unix path `path` can be bound: absent, or a socket the old process left
/// with nothing listening on it (connecting is refused), which is removed when `clear`.
/// Anything else ends the restart, naming the path.
fn stale_path(sock: &Socket, path: &[u8], clear: bool) -> Result<(), Failure> {
    let mut z = [0u8; 110];
    if path.len() >= z.len() {
        return Err(Failure::new(
            b"cannot be made again: its path is too long",
            libc::ENAMETOOLONG,
        ));
    }
    z[..path.len()].copy_from_slice(path);
    let z = &z[..path.len() + 1];
    let refuse = |what: &[u8], e| {
        Failure::new(
            sys::keep_message(
                &[b"cannot be made again: ", path, what],
                b"cannot be made again: its path is taken",
            ),
            e,
        )
    };
    match sys::path_type(z) {
        Err(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(refuse(b" cannot be looked at", e)),
        Ok(t) if t != libc::S_IFSOCK => {
            return Err(refuse(b" exists and is not a socket", 0));
        }
        Ok(_) => {}
    }
    let probe = sys::socket(libc::AF_UNIX, sock.kind as i32, 0)
        .map_err(|e| Failure::new(b"cannot be made again: socket", e))?;
    let reached = sys::connect(probe, sock.local());
    sys::close(probe);
    match reached {
        Err(libc::ECONNREFUSED) if clear => sys::remove_path(z)
            .map_err(|e| refuse(b" (left by the old process) cannot be removed", e)),
        Err(libc::ECONNREFUSED) => Ok(()),
        Ok(()) => Err(refuse(b" is in use (something listens on it)", 0)),
        Err(e) => Err(refuse(b" cannot be reached to see whether it is in use", e)),
    }
}

/// A datagram socket connected to its peer again (and bound to its own address first,
/// when it had a name: a port already taken is given up for a new one). None when the
/// peer cannot be reached.
fn connected_again(sock: &Socket) -> Option<i32> {
    let fd = fresh(sock).ok()?;
    if address_named(sock.local()) && unix_path(sock.local()).is_none() {
        let _ = sys::bind(fd, sock.local());
    }
    if sys::connect(fd, sock.peer()).is_err() {
        sys::close(fd);
        return None;
    }
    Some(fd)
}

/// The record of the other end of unix socket `i`, when it is in the image too (its
/// first descriptor).
fn peer_record(r: &Restoring, i: usize, sock: &Socket) -> Option<usize> {
    if sock.family != libc::AF_UNIX as u32 || sock.peer_ino == 0 {
        return None;
    }
    (0..r.fds.len()).find(|&j| {
        j != i
            && r.fds[j].kind == ckpt_image::FD_KIND_SOCKET
            && r.fds[j].action == FD_ACTION_REBUILD
            && r.fds[j].group as usize == j
            && r.fds[j].ino == sock.peer_ino
    })
}

/// Records `i` and `j`, both ends of one unix connection, as a new socket pair with the
/// bytes queued each way.
fn rebuild_pair(r: &mut Restoring, i: usize, j: usize, sock: &Socket) -> Result<(), Failure> {
    let (a, b) = sys::socket_pair(sock.kind as i32)
        .map_err(|e| Failure::new(b"cannot be made again: socketpair", e))?;
    let other: Socket = r.aux(j).unwrap_or(*sock);
    let done = (|| {
        apply_options(a, sock);
        apply_options(b, &other);
        refill(b, r.data(i), sock)?;
        refill(a, r.data(j), &other)?;
        for (fd, k) in [(a, i), (b, j)] {
            let nonblock = r.fds[k].flags as i32 & libc::O_NONBLOCK != 0;
            sys::set_nonblocking(fd, nonblock)
                .map_err(|e| Failure::new(b"cannot be made again: O_NONBLOCK", e))?;
        }
        Ok(())
    })();
    if let Err(e) = done {
        sys::close(a);
        sys::close(b);
        return Err(e);
    }
    r.place(&mut [(a, i), (b, j)])
}

/// Record `i` as a socket whose peer has closed: one end of a new unix socket pair (of
/// the same type, a stream for TCP) with what was queued for it to read, the other end
/// closed.
fn rebuild_peer_closed(
    r: &mut Restoring,
    i: usize,
    sock: &Socket,
    nonblock: bool,
) -> Result<(), Failure> {
    let kind = if sock.family == libc::AF_UNIX as u32 {
        sock.kind as i32
    } else {
        libc::SOCK_STREAM
    };
    let (a, b) =
        sys::socket_pair(kind).map_err(|e| Failure::new(b"cannot be made again: socketpair", e))?;
    let as_pair = Socket {
        family: libc::AF_UNIX as u32,
        kind: kind as u32,
        ..*sock
    };
    let filled = refill(b, r.data(i), &as_pair);
    sys::close(b);
    if let Err(e) = filled.and_then(|()| {
        sys::set_nonblocking(a, nonblock)
            .map_err(|e| Failure::new(b"cannot be made again: O_NONBLOCK", e))
    }) {
        sys::close(a);
        return Err(e);
    }
    r.place(&mut [(a, i)])?;
    say_peer_closed(r, i);
    Ok(())
}

/// Sends `data` (saved bytes of the socket at the other end of `to`: messages with their
/// lengths first when `sock` keeps boundaries) through `to`.
fn refill(to: i32, data: &[u8], sock: &Socket) -> Result<(), Failure> {
    const NO_ROOM: Failure = Failure::new(b"cannot be made again: its queued bytes do not fit", 0);
    if data.is_empty() {
        return Ok(());
    }
    // Room for it all: the sender's buffer bounds what a unix socket holds in flight.
    let want = (2 * data.len()).min(i32::MAX as usize) as i32;
    if sys::sockopt_int(to, SOL_SOCKET, libc::SO_SNDBUF).is_ok_and(|now| now < want) {
        let _ = sys::set_sockopt_int(to, SOL_SOCKET, libc::SO_SNDBUF, want);
    }
    let send = |bytes: &[u8]| -> Result<(), Failure> {
        match sys::send_now(to, bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            Ok(_) | Err(libc::EAGAIN) => Err(NO_ROOM),
            Err(e) => Err(Failure::new(b"cannot be made again: its queued bytes", e)),
        }
    };
    if !sock.messages_kept() {
        let mut rest = data;
        while !rest.is_empty() {
            match sys::send_now(to, rest) {
                Ok(0) | Err(libc::EAGAIN) => return Err(NO_ROOM),
                Ok(n) => rest = &rest[n..],
                Err(e) => return Err(Failure::new(b"cannot be made again: its queued bytes", e)),
            }
        }
        return Ok(());
    }
    let count = sock.messages as usize;
    let bad = Failure::new(b"has damaged saved messages", 0);
    let split = data.len().checked_sub(4 * count).ok_or(bad)?;
    let (mut bytes, lengths) = data.split_at(split);
    for len in lengths.chunks_exact(4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (message, rest) = bytes.split_at_checked(len).ok_or(bad)?;
        send(message)?;
        bytes = rest;
    }
    if !bytes.is_empty() {
        return Err(bad);
    }
    Ok(())
}

/// After the last socket that came back with its peer closed: one line naming them all.
fn say_peer_closed(r: &Restoring, i: usize) {
    let closed = |k: usize| {
        let f = &r.fds[k];
        f.kind == ckpt_image::FD_KIND_SOCKET
            && f.action == FD_ACTION_REBUILD
            && f.group as usize == k
            && r.aux::<Socket>(k).is_some_and(|s| {
                s.mode == SOCKET_CONNECTED
                    && peer_record(r, k, &s).is_none()
                    && !(s.kind == libc::SOCK_DGRAM as u32 && address_named(s.peer()))
            })
    };
    if (i + 1..r.fds.len()).any(closed) {
        return;
    }
    let mut line = Line::<1024>::new();
    line.push(b"ckpt restart: connections that came back closed by their peer (the program sees end-of-file and may reconnect):");
    let mut first = true;
    for k in (0..=i).filter(|&k| closed(k)) {
        let Some(s) = r.aux::<Socket>(k) else {
            continue;
        };
        line.push(if first { b" fd " } else { b", fd " })
            .push_decimal(r.fds[k].fd as u64)
            .push(b" (");
        first = false;
        if s.peer_len > 0 && address_named(s.peer()) {
            write_address(s.peer(), &mut |b| {
                line.push(b);
            });
        } else {
            line.push(b"unix ").push(r.name(k));
        }
        line.push(b")");
    }
    line.push(b"\n");
    sys::write_stderr(line.as_bytes());
}

/// Puts a made socket in place, with `O_NONBLOCK` as the program had it.
fn finish(r: &mut Restoring, i: usize, fd: i32, nonblock: bool) -> Result<(), Failure> {
    if let Err(e) = sys::set_nonblocking(fd, nonblock) {
        sys::close(fd);
        return Err(Failure::new(b"cannot be made again: O_NONBLOCK", e));
    }
    r.place(&mut [(fd, i)])
}
