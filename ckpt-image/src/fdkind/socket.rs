//! Sockets: their saved values, and the address formatting both the restart's messages and
//! `ckpt info` use.
//!
//! A socket is saved by what a restart can make of it ([`Socket::mode`]):
//!
//! - [`SOCKET_LISTEN`]: a listening stream or seqpacket socket (TCP, unix), bound to
//!   `local` again and listening with `backlog`;
//! - [`SOCKET_BOUND`]: bound but neither listening nor connected (UDP, unix datagram, TCP
//!   before `listen`): bound again;
//! - [`SOCKET_FRESH`]: neither bound nor connected: a new socket of the same kind;
//! - [`SOCKET_CONNECTED`]: a connection. A unix socket whose peer (`peer_ino`) is in the
//!   image too comes back as a socket pair with it; a datagram socket connected to a named
//!   peer is connected to it again (UDP has no connection state); anything else (TCP, unix
//!   to another process) comes back as a socket whose peer has closed: what was queued for
//!   it to read, then end-of-file.
//!
//! The record's saved bytes (`FdRecord::data_*`) are the bytes queued for it to read; for a
//! datagram or seqpacket socket the messages one after the other, followed by their
//! `messages` lengths (`u32`, little-endian), in order.

/// The socket's family, type and protocol (`SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`), what a
/// restart makes of it, its options, and its own and its peer's address.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Socket {
    pub family: u32,
    pub kind: u32,
    pub protocol: u32,
    /// `SOCKET_LISTEN`, `SOCKET_BOUND`, `SOCKET_FRESH` or `SOCKET_CONNECTED`.
    pub mode: u32,
    /// The listen backlog (0: it could not be read; `SOMAXCONN` is used).
    pub backlog: u32,
    /// Connections that were waiting to be accepted, or, for a datagram socket whose
    /// queue is not kept (UDP; one connected to a named peer), datagrams that were waiting
    /// to be read: lost either way, and said so at the restart.
    pub waiting: u32,
    /// `OPT_*` bits.
    pub options: u32,
    /// `SO_RCVBUF` and `SO_SNDBUF` as `getsockopt` gave them (the kernel doubles what was
    /// set).
    pub rcvbuf: u32,
    pub sndbuf: u32,
    /// For a datagram or seqpacket socket, how many messages were queued for it to read.
    pub messages: u32,
    /// The inode of the socket at the other end, when the kernel says (unix sockets).
    pub peer_ino: u64,
    pub local_len: u32,
    pub peer_len: u32,
    /// `getsockname` and `getpeername` (a `sockaddr_storage`, `*_len` bytes used).
    pub local: [u8; 128],
    pub peer: [u8; 128],
}

impl Default for Socket {
    fn default() -> Socket {
        Socket {
            family: 0,
            kind: 0,
            protocol: 0,
            mode: 0,
            backlog: 0,
            waiting: 0,
            options: 0,
            rcvbuf: 0,
            sndbuf: 0,
            messages: 0,
            peer_ino: 0,
            local_len: 0,
            peer_len: 0,
            local: [0; 128],
            peer: [0; 128],
        }
    }
}

crate::record_layout!(Socket {
    family: u32,
    kind: u32,
    protocol: u32,
    mode: u32,
    backlog: u32,
    waiting: u32,
    options: u32,
    rcvbuf: u32,
    sndbuf: u32,
    messages: u32,
    peer_ino: u64,
    local_len: u32,
    peer_len: u32,
    local: [u8; 128],
    peer: [u8; 128],
});

pub const SOCKET_LISTEN: u32 = 1;
pub const SOCKET_BOUND: u32 = 2;
pub const SOCKET_FRESH: u32 = 3;
pub const SOCKET_CONNECTED: u32 = 4;

pub const OPT_REUSEADDR: u32 = 1 << 0;
pub const OPT_REUSEPORT: u32 = 1 << 1;
pub const OPT_KEEPALIVE: u32 = 1 << 2;
pub const OPT_NODELAY: u32 = 1 << 3;
pub const OPT_V6ONLY: u32 = 1 << 4;
pub const OPT_PASSCRED: u32 = 1 << 5;
/// The peer is in the same process (found among its descriptors at the checkpoint).
pub const OPT_PEER_HERE: u32 = 1 << 6;
/// The peer had shut its writing side, or the connection was already closed.
pub const OPT_PEER_GONE: u32 = 1 << 7;

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

impl Socket {
    pub fn local(&self) -> &[u8] {
        &self.local[..(self.local_len as usize).min(128)]
    }

    pub fn peer(&self) -> &[u8] {
        &self.peer[..(self.peer_len as usize).min(128)]
    }

    /// Whether messages keep their boundaries (datagram, seqpacket).
    pub fn messages_kept(&self) -> bool {
        self.kind != 1 // SOCK_STREAM
    }

    /// "TCP", "UDP", "unix stream", … for `ckpt info`.
    pub fn kind_name(&self) -> &'static str {
        match (self.family as u16, self.kind) {
            (AF_INET, 1) => "TCP",
            (AF_INET6, 1) => "TCP6",
            (AF_INET, 2) => "UDP",
            (AF_INET6, 2) => "UDP6",
            (AF_UNIX, 1) => "unix stream",
            (AF_UNIX, 2) => "unix datagram",
            (AF_UNIX, 5) => "unix seqpacket",
            _ => "socket",
        }
    }
}

/// Whether `addr` (a sockaddr) names something: a unix path or abstract name, an IP port.
pub fn address_named(addr: &[u8]) -> bool {
    match family(addr) {
        AF_UNIX => addr.len() > 2,
        AF_INET | AF_INET6 => addr.len() >= 4 && (addr[2] | addr[3]) != 0,
        _ => false,
    }
}

/// The filesystem path of a unix address (none for abstract or unnamed ones), without the
/// NUL the kernel may have counted.
pub fn unix_path(addr: &[u8]) -> Option<&[u8]> {
    if family(addr) != AF_UNIX || addr.len() <= 2 || addr[2] == 0 {
        return None;
    }
    let path = &addr[2..];
    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
    Some(&path[..end])
}

fn family(addr: &[u8]) -> u16 {
    if addr.len() < 2 {
        return 0;
    }
    u16::from_ne_bytes([addr[0], addr[1]])
}

/// Writes `addr` (a sockaddr) as text through `push`: `127.0.0.1:8080`, `[::1]:8080`,
/// `/run/x.sock`, `@name` (abstract; other NULs as `@` too), `(unnamed)`.
pub fn write_address(addr: &[u8], push: &mut dyn FnMut(&[u8])) {
    match family(addr) {
        AF_INET if addr.len() >= 8 => {
            for (k, b) in addr[4..8].iter().enumerate() {
                if k > 0 {
                    push(b".");
                }
                decimal(*b as u64, push);
            }
            push(b":");
            decimal(u16::from_be_bytes([addr[2], addr[3]]) as u64, push);
        }
        AF_INET6 if addr.len() >= 24 => {
            push(b"[");
            write_ipv6(&addr[8..24], push);
            push(b"]:");
            decimal(u16::from_be_bytes([addr[2], addr[3]]) as u64, push);
        }
        AF_UNIX if addr.len() > 2 => {
            let path = &addr[2..];
            let path = match unix_path(addr) {
                Some(p) => p,
                None => path,
            };
            for &c in path {
                if c == 0 {
                    push(b"@");
                } else {
                    push(&[c]);
                }
            }
        }
        AF_UNIX => push(b"(unnamed)"),
        _ => push(b"(an address of another family)"),
    }
}

fn decimal(v: u64, push: &mut dyn FnMut(&[u8])) {
    push(crate::digits::decimal(v, &mut [0; 20]));
}

/// An IPv6 address the usual way: groups in hexadecimal, the longest run of zero groups
/// (two or more) as `::`, v4-mapped ones as `::ffff:a.b.c.d`.
fn write_ipv6(a: &[u8], push: &mut dyn FnMut(&[u8])) {
    let group = |k: usize| u16::from_be_bytes([a[2 * k], a[2 * k + 1]]);
    if a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff {
        push(b"::ffff:");
        for (k, b) in a[12..16].iter().enumerate() {
            if k > 0 {
                push(b".");
            }
            decimal(*b as u64, push);
        }
        return;
    }
    let (mut best, mut best_len, mut k) = (8, 0, 0);
    while k < 8 {
        let start = k;
        while k < 8 && group(k) == 0 {
            k += 1;
        }
        if k - start > best_len && k - start >= 2 {
            (best, best_len) = (start, k - start);
        }
        k += 1;
    }
    let mut k = 0;
    while k < 8 {
        if k == best {
            push(b"::");
            k += best_len;
            continue;
        }
        if k > 0 && k != best + best_len {
            push(b":");
        }
        push(crate::digits::hex(group(k) as u64, &mut [0; 16]));
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(addr: &[u8]) -> String {
        let mut s = Vec::new();
        write_address(addr, &mut |b| s.extend_from_slice(b));
        String::from_utf8(s).unwrap()
    }

    fn v6(port: u16, groups: [u16; 8]) -> Vec<u8> {
        let mut a = vec![10, 0];
        a.extend_from_slice(&port.to_be_bytes());
        a.extend_from_slice(&[0; 4]);
        for g in groups {
            a.extend_from_slice(&g.to_be_bytes());
        }
        a.extend_from_slice(&[0; 4]);
        a
    }

    #[test]
    fn addresses() {
        assert_eq!(
            text(&[2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            "127.0.0.1:8080"
        );
        assert_eq!(text(&v6(443, [0, 0, 0, 0, 0, 0, 0, 1])), "[::1]:443");
        assert_eq!(text(&v6(1, [0; 8])), "[::]:1");
        assert_eq!(
            text(&v6(80, [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])),
            "[2001:db8::1:0:0:1]:80"
        );
        assert_eq!(
            text(&v6(80, [0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001])),
            "[::ffff:10.0.0.1]:80"
        );
        assert_eq!(text(b"\x01\x00/tmp/s.sock\0"), "/tmp/s.sock");
        assert_eq!(text(b"\x01\x00\0name"), "@name");
        assert_eq!(text(b"\x01\x00"), "(unnamed)");
        assert!(address_named(b"\x01\x00\0a"));
        assert!(!address_named(b"\x01\x00"));
        assert_eq!(unix_path(b"\x01\x00/a\0"), Some(&b"/a"[..]));
        assert_eq!(unix_path(b"\x01\x00\0a"), None);
    }
}
