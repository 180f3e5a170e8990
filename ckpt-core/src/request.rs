//! Serving `ckpt checkpoint` requests: the library's side of [`ckpt_image::request`].
//!
//! The control signal's `si_pid` and value only say where to look; who asks is learnt from
//! the kernel (`SO_PEERCRED` of the socket the sender listens on). A request is served when
//! it comes from the program's real user or from root; in secure-execution mode (a
//! set-user-ID or set-group-ID program) only root may choose the file name. A request that
//! cannot be authenticated is ignored and counted, and nothing but the socket is ever read
//! or written.
//!
//! Everything here runs in the control signal's handler: signal-safe, no allocation.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use ckpt_image::request::{self, Answer, MAX_REQUEST, SOCKET_NAME_MAX};

use crate::checkpoint::{checkpoint, Outcome, Trigger};
use crate::config::{CONTROL_SIGNAL, MAXNAME};
use crate::line::Line;
use crate::report::errno_name;
use crate::sys;
use crate::write::WriteError;

/// Set at library load when the process runs in secure-execution mode (`AT_SECURE`).
pub static SECURE: AtomicBool = AtomicBool::new(false);

/// Requests ignored because they could not be authenticated.
static IGNORED: AtomicU32 = AtomicU32::new(0);

/// How long the library waits for the request line once it has connected (the command
/// sends it as soon as it accepts). Its signal handler holds the program meanwhile.
const REQUEST_WAIT_MS: i32 = 2000;

/// Why a request was not authenticated.
enum Unauthenticated {
    /// Nothing listens where the signal points (forged, or the command is gone).
    NoListener(i32),
    /// The socket's listener is not the process the signal claims to come from.
    NotTheSender(u32),
    /// The sender is neither the program's real user nor root.
    Stranger(u32),
    /// No well-formed request line arrived in time.
    NoRequest,
}

/// Serves a request whose signal claims to come from process `pid` with `nonce`. Signal-safe.
pub fn serve(pid: u32, nonce: u32) {
    let saved_errno = sys::get_errno();
    match authenticate(pid, nonce) {
        Ok((fd, uid)) => serve_authenticated(fd, uid, pid),
        Err(why) => ignored(pid, why),
    }
    sys::set_errno(saved_errno);
}

/// Connects to the socket the signal names and checks who listens there: `(socket, uid)`.
fn authenticate(pid: u32, nonce: u32) -> Result<(i32, u32), Unauthenticated> {
    let mut name = [0u8; SOCKET_NAME_MAX];
    let len = request::socket_name(pid, nonce, &mut name);
    let fd = sys::connect_abstract(&name[..len]).map_err(Unauthenticated::NoListener)?;
    let checked = match sys::peer_credentials(fd) {
        Err(e) => Err(Unauthenticated::NoListener(e)),
        Ok((listener, _)) if listener != pid => Err(Unauthenticated::NotTheSender(listener)),
        Ok((_, uid)) if uid != 0 && uid != sys::getuid() => Err(Unauthenticated::Stranger(uid)),
        Ok((_, uid)) => Ok((fd, uid)),
    };
    if checked.is_err() {
        sys::close(fd);
    }
    checked
}

fn serve_authenticated(fd: i32, uid: u32, pid: u32) {
    let mut line = [0u8; MAX_REQUEST];
    let n = sys::read_line_within(fd, &mut line, REQUEST_WAIT_MS);
    let Some(name) = request::parse_request(&line[..n]) else {
        sys::close(fd);
        return ignored(pid, Unauthenticated::NoRequest);
    };
    let refusal: Option<&[u8]> = match name {
        Some(n) if n.len() >= MAXNAME => Some(b"the checkpoint name is too long"),
        Some(_) if uid != 0 && SECURE.load(Ordering::Relaxed) => Some(
            b"a set-user-ID or set-group-ID program writes its checkpoint only under its own \
              name (only root may choose another)",
        ),
        _ => None,
    };
    if let Some(message) = refusal {
        refuse(fd, message);
        return sys::close(fd);
    }
    match checkpoint(name, Trigger::Request, Some(fd)) {
        // The socket belongs to the original process; this one never opened it (and that
        // descriptor number may now be the program's own).
        Outcome::Restarted => return,
        // The writer child answers; the socket stays open here until it has exited.
        Outcome::Forked => return,
        Outcome::Busy | Outcome::Coalesced => send(fd, Answer::Busy),
        // Answered already, by this process.
        Outcome::Written | Outcome::Failed(_) => {}
    }
    sys::close(fd);
}

/// Answers a request with `error MESSAGE`. Signal-safe.
pub fn refuse(fd: i32, message: &[u8]) {
    send(fd, Answer::Error(message));
}

/// Answers a request: `ok NAME` or `error MESSAGE`. Signal-safe.
pub fn answer(fd: i32, name: &[u8], result: Result<(), WriteError>) {
    match result {
        Ok(()) => send(fd, Answer::Ok(name)),
        Err(e) => {
            let (what, errno) = e.describe();
            let mut msg = Line::<512>::new();
            if let Some(fd) = e.descriptor() {
                let mut link = [0u8; 128];
                let n = crate::files::refused_name(&mut link);
                msg.push(b"fd ")
                    .push_decimal(fd as u64)
                    .push(b" (")
                    .push(&link[..n])
                    .push(b") ");
            }
            match e {
                WriteError::Files(f) => f.push_what(&mut msg),
                _ => {
                    msg.push(what.as_bytes());
                }
            }
            if let Some(addr) = e.address() {
                msg.push(b" at ").push_hex(addr);
            }
            if errno != 0 {
                msg.push(b": ").push(errno_name(errno).as_bytes());
            }
            send(fd, Answer::Error(msg.as_bytes()));
        }
    }
}

fn send(fd: i32, answer: Answer) {
    let mut out = [0u8; MAXNAME + 64];
    let n = answer.write(&mut out);
    let _ = sys::send_all(fd, &out[..n]);
}

/// Counts an ignored request and says so on stderr: the first time, then at every power of
/// two, so that a flood of forged signals cannot flood the program's stderr. Signal-safe.
fn ignored(pid: u32, why: Unauthenticated) {
    let count = IGNORED.fetch_add(1, Ordering::Relaxed) + 1;
    if !count.is_power_of_two() {
        return;
    }
    let mut line = Line::<512>::new();
    line.push(b"ckpt: ignored a checkpoint request (signal ")
        .push_decimal(CONTROL_SIGNAL as u64)
        .push(b") claiming to come from process ")
        .push_decimal(pid.into())
        .push(b": ");
    match why {
        Unauthenticated::NoListener(e) => {
            line.push(b"no ckpt command listens for it (")
                .push(errno_name(e).as_bytes())
                .push(b")");
        }
        Unauthenticated::NotTheSender(listener) => {
            line.push(b"its socket belongs to process ")
                .push_decimal(listener.into());
        }
        Unauthenticated::Stranger(uid) => {
            line.push(b"it comes from user ")
                .push_decimal(uid.into())
                .push(b", neither this program's user nor root");
        }
        Unauthenticated::NoRequest => {
            line.push(b"no request arrived");
        }
    }
    line.push(b" (")
        .push_decimal(count.into())
        .push(b" ignored so far)\n");
    sys::write_stderr(line.as_bytes());
}
