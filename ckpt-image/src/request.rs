//! The checkpoint-request protocol between `ckpt checkpoint` and libckpt, defined once for
//! both sides.
//!
//! A request must be authenticated by the kernel, never by what its sender writes: the
//! `si_pid` and value of a queued signal can be forged by any process that may signal the
//! program (`rt_sigqueueinfo`). So the signal only says "look here", and the program learns
//! who asks from a socket:
//!
//! 1. The command listens on an abstract unix stream socket named by [`socket_name`]: its own
//!    pid and a random 32-bit nonce.
//! 2. It queues [`crate::CONTROL_SIGNAL`] at the program with `sigqueue`, the nonce as
//!    `sival_int`.
//! 3. The library connects to the socket that `si_pid` and the value name, and asks the
//!    kernel who listens there (`SO_PEERCRED`, the credentials of the process that called
//!    `listen`). It serves the request only when that process is the claimed sender and runs
//!    as the program's real user or as root. Anything else is ignored and counted; the
//!    library never opens anything of the sender's but this socket, and writes nothing
//!    anywhere else.
//! 4. The command, for its part, accepts only a connection whose peer is the target process.
//!    It sends the request line ([`request_line`]: the checkpoint name, empty for the
//!    program's own, and `\n`); the library checkpoints and answers one line ([`Answer`]).
//!
//! Everything here is pure (no allocation), so the library can use it in its signal handler.

/// Longest request line the library accepts, newline included.
pub const MAX_REQUEST: usize = 1024;

/// Prefix of the abstract socket name; the full name is `ckpt-request/<pid>/<nonce>`.
const SOCKET_PREFIX: &[u8] = b"ckpt-request/";

/// Room [`socket_name`] needs.
pub const SOCKET_NAME_MAX: usize = 48;

/// The abstract socket name (without its leading NUL) for requests from process `pid` with
/// `nonce`: `ckpt-request/<pid decimal>/<nonce as 8 hex digits>`. Returns its length.
pub fn socket_name(pid: u32, nonce: u32, out: &mut [u8; SOCKET_NAME_MAX]) -> usize {
    let mut n = SOCKET_PREFIX.len();
    out[..n].copy_from_slice(SOCKET_PREFIX);
    let mut digits = [0; 20];
    let pid = crate::digits::decimal(pid as u64, &mut digits);
    out[n..n + pid.len()].copy_from_slice(pid);
    n += pid.len();
    out[n] = b'/';
    n += 1;
    for shift in (0..8).rev() {
        let d = ((nonce >> (shift * 4)) & 0xf) as u8;
        out[n] = crate::digits::hex_digit(d);
        n += 1;
    }
    n
}

/// Why a request line cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The name holds a newline or a NUL.
    BadName,
    /// The name is longer than a request line can carry.
    TooLong,
}

/// The request line for a checkpoint name (`None` or empty: the program's own name), written
/// into `out`; returns its length.
pub fn request_line(
    name: Option<&[u8]>,
    out: &mut [u8; MAX_REQUEST],
) -> Result<usize, RequestError> {
    let name = name.unwrap_or(&[]);
    if name.contains(&b'\n') || name.contains(&0) {
        return Err(RequestError::BadName);
    }
    if name.len() + 1 > MAX_REQUEST {
        return Err(RequestError::TooLong);
    }
    out[..name.len()].copy_from_slice(name);
    out[name.len()] = b'\n';
    Ok(name.len() + 1)
}

/// The name a complete request line asks for: `Some(None)` for the program's own name,
/// `Some(Some(name))` for another, `None` when the bytes are not one complete line.
pub fn parse_request(line: &[u8]) -> Option<Option<&[u8]>> {
    let end = line.iter().position(|&c| c == b'\n')?;
    if end + 1 != line.len() || line[..end].contains(&0) {
        return None;
    }
    Some((end > 0).then_some(&line[..end]))
}

/// The library's answer, one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The checkpoint was written to this name (as the program names it: relative to its
    /// working directory unless absolute).
    Ok(&'a [u8]),
    /// No checkpoint: this is why.
    Error(&'a [u8]),
    /// Another checkpoint is being taken; ask again in a moment.
    Busy,
    /// Not the answer yet: `done` of `total` bytes of memory are written (sent now and then
    /// while the image is written; the answer follows).
    Progress { done: u64, total: u64 },
}

impl<'a> Answer<'a> {
    /// The answer line, `\n` included, written into `out` (cut short if it does not fit, but
    /// always ending in `\n`); returns its length.
    pub fn write(&self, out: &mut [u8]) -> usize {
        let mut numbers = [0u8; 48];
        let (head, body): (&[u8], &[u8]) = match *self {
            Answer::Ok(name) => (b"ok ", name),
            Answer::Error(message) => (b"error ", message),
            Answer::Busy => (b"busy", b""),
            Answer::Progress { done, total } => {
                let mut n = 0;
                for (i, v) in [done, total].into_iter().enumerate() {
                    if i > 0 {
                        numbers[n] = b' ';
                        n += 1;
                    }
                    let mut buf = [0; 20];
                    let digits = crate::digits::decimal(v, &mut buf);
                    numbers[n..n + digits.len()].copy_from_slice(digits);
                    n += digits.len();
                }
                (b"progress ", &numbers[..n])
            }
        };
        if out.is_empty() {
            return 0;
        }
        let room = out.len() - 1;
        let mut n = 0;
        for &b in head.iter().chain(body) {
            if n == room {
                break;
            }
            // A newline inside would end the answer early: never send one.
            out[n] = if b == b'\n' { b' ' } else { b };
            n += 1;
        }
        out[n] = b'\n';
        n + 1
    }

    /// Parses one answer line (without its `\n`).
    pub fn parse(line: &'a [u8]) -> Option<Answer<'a>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"busy" {
            return Some(Answer::Busy);
        }
        if let Some(name) = line.strip_prefix(b"ok ") {
            return (!name.is_empty()).then_some(Answer::Ok(name));
        }
        if let Some(numbers) = line.strip_prefix(b"progress ") {
            let mut parts = numbers.split(|&b| b == b' ');
            let mut number = || {
                let digits = parts.next().filter(|d| !d.is_empty())?;
                digits.iter().try_fold(0u64, |v, &d| {
                    let digit = d.is_ascii_digit().then(|| u64::from(d - b'0'))?;
                    v.checked_mul(10)?.checked_add(digit)
                })
            };
            let (done, total) = (number()?, number()?);
            return parts
                .next()
                .is_none()
                .then_some(Answer::Progress { done, total });
        }
        if line == b"error" {
            return Some(Answer::Error(b""));
        }
        line.strip_prefix(b"error ").map(Answer::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names() {
        let mut out = [0u8; SOCKET_NAME_MAX];
        let n = socket_name(4711, 0xdead_beef, &mut out);
        assert_eq!(&out[..n], b"ckpt-request/4711/deadbeef");
        let n = socket_name(u32::MAX, 0, &mut out);
        assert_eq!(&out[..n], b"ckpt-request/4294967295/00000000");
        let n = socket_name(0, 1, &mut out);
        assert_eq!(&out[..n], b"ckpt-request/0/00000001");
    }

    #[test]
    fn request_lines_round_trip() {
        let mut out = [0u8; MAX_REQUEST];
        let n = request_line(None, &mut out).unwrap();
        assert_eq!(&out[..n], b"\n");
        assert_eq!(parse_request(&out[..n]), Some(None));
        let n = request_line(Some(b"/a b/\xff.ckpt"), &mut out).unwrap();
        assert_eq!(parse_request(&out[..n]), Some(Some(&b"/a b/\xff.ckpt"[..])));
        assert_eq!(
            request_line(Some(b"a\nb"), &mut out),
            Err(RequestError::BadName)
        );
        assert_eq!(
            request_line(Some(b"a\0b"), &mut out),
            Err(RequestError::BadName)
        );
        let long = [b'x'; MAX_REQUEST];
        assert_eq!(
            request_line(Some(&long), &mut out),
            Err(RequestError::TooLong)
        );
        assert_eq!(parse_request(b"x"), None);
        assert_eq!(parse_request(b"x\ny\n"), None);
        assert_eq!(parse_request(b"x\0\n"), None);
    }

    #[test]
    fn answers_round_trip() {
        let mut out = [0u8; 64];
        for answer in [
            Answer::Ok(b"counter.ckpt"),
            Answer::Ok(b"/dir with space/x"),
            Answer::Error(b"cannot create the checkpoint file: no such file"),
            Answer::Busy,
            Answer::Progress { done: 0, total: 0 },
            Answer::Progress {
                done: 1 << 30,
                total: u64::MAX,
            },
        ] {
            let n = answer.write(&mut out);
            assert_eq!(out[n - 1], b'\n');
            assert_eq!(Answer::parse(&out[..n - 1]), Some(answer));
        }
        assert_eq!(Answer::parse(b"error"), Some(Answer::Error(b"")));
        assert_eq!(Answer::parse(b"ok "), None);
        assert_eq!(Answer::parse(b"hello"), None);
        assert_eq!(Answer::parse(b"progress 1"), None);
        assert_eq!(Answer::parse(b"progress 1 2 3"), None);
        assert_eq!(Answer::parse(b"progress 1 x"), None);
        assert_eq!(Answer::parse(b"progress 99999999999999999999 1"), None);
        assert_eq!(Answer::parse(b""), None);
        // Cut to fit, newlines inside replaced, always one line.
        let mut small = [0u8; 8];
        let n = Answer::Error(b"a\nbcdefgh").write(&mut small);
        assert_eq!(&small[..n], b"error a\n");
    }
}
