//! Sockets: listening and bound ones are bound again, connections inside the process come
//! back as socket pairs with their queued bytes, datagram sockets are connected again, and
//! other connections come back closed by their peer.

use ckpt_image::fdkind::socket::*;
use ckpt_image::FdRecord;

pub fn restart(f: &FdRecord, aux: &[u8]) -> Option<String> {
    let s: Socket = ckpt_image::read_record(aux)?;
    let name = s.kind_name();
    // What was queued for it to read, which it reads first after the restart.
    let queued = match (f.data_len, s.messages_kept()) {
        (0, _) => None,
        (_, true) => Some(format!("{} queued message(s)", s.messages)),
        (bytes, false) => Some(format!("{bytes} queued byte(s)")),
    };
    let said = match s.mode {
        SOCKET_LISTEN => {
            let backlog = match s.backlog {
                0 => "backlog SOMAXCONN (the saved one could not be read)".to_owned(),
                b => format!("backlog {b}"),
            };
            let lost = match s.waiting {
                0 => "connections waiting to be accepted at the checkpoint are lost".to_owned(),
                n => format!("the {n} connection(s) waiting to be accepted are lost"),
            };
            format!(
                "{name} listening on {} again ({backlog}; {lost})",
                address(s.local())
            )
        }
        SOCKET_BOUND => format!(
            "{name} bound to {} again{}",
            address(s.local()),
            datagrams_lost(&s)
        ),
        SOCKET_FRESH => format!("a new {name} socket (it was neither bound nor connected)"),
        SOCKET_CONNECTED if s.options & OPT_PEER_HERE != 0 => format!(
            "{name} socket pair with the socket of inode {}{}",
            s.peer_ino,
            queued.map(|q| format!(", with {q}")).unwrap_or_default()
        ),
        SOCKET_CONNECTED if s.kind == libc::SOCK_DGRAM as u32 && address_named(s.peer()) => {
            format!(
                "{name} connected to {} again (peer-closed if it cannot be reached){}",
                address(s.peer()),
                datagrams_lost(&s)
            )
        }
        SOCKET_CONNECTED => {
            let was = if address_named(s.peer()) {
                address(s.peer())
            } else {
                "another process".to_owned()
            };
            format!(
                "peer-closed (was {name} connected to {was}){}",
                queued
                    .map(|q| format!("; reads {q} then end-of-file"))
                    .unwrap_or_default()
            )
        }
        _ => return None,
    };
    Some(said)
}

fn address(addr: &[u8]) -> String {
    let mut text = Vec::new();
    write_address(addr, &mut |b| text.extend_from_slice(b));
    String::from_utf8_lossy(&text).into_owned()
}

/// "; the N datagram(s) queued at the checkpoint are lost", for a datagram socket whose
/// queue was not kept.
fn datagrams_lost(s: &Socket) -> String {
    match (s.kind == libc::SOCK_DGRAM as u32, s.waiting) {
        (false, _) | (_, 0) => String::new(),
        (true, 1) => "; the datagram(s) queued at the checkpoint are lost".to_owned(),
        (true, n) => format!("; the {n} datagrams queued at the checkpoint are lost"),
    }
}
