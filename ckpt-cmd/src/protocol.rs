//! The checkpoint-request protocol between `ckpt checkpoint` and libckpt, as pure functions.
//!
//! 1. The command makes two pipes (`O_CLOEXEC`): `req`, which it writes, and `resp`, which it
//!    reads. It writes the request line into `req`: the checkpoint name for this request and
//!    `\n` (an empty line means the target's configured name), and closes its write end of
//!    `req`, so that the target reads the line and then end-of-file. It keeps the other three
//!    ends open: the read end of `req` and the write end of `resp` are what the target opens.
//! 2. It queues signal [`ckpt_image::CONTROL_SIGNAL`] (63) at the target with `sigqueue`,
//!    `si_pid` = its own pid and `sival_int` = `(req_read_fd << 16) | resp_write_fd` — its own
//!    descriptor numbers of the two ends the target needs, both below 65536.
//! 3. The library opens `/proc/<si_pid>/fd/<n>` for both, reads the line, checkpoints (and
//!    keeps running, whatever `CKPT_CONTINUE` says), and writes one answer line into `resp`:
//!    `ok <name>\n` or `error <message>\n`.

use std::os::unix::ffi::OsStrExt;

/// The request line for a checkpoint name (`None`: the target's own name).
pub fn request_line(name: Option<&std::ffi::OsStr>) -> Result<Vec<u8>, &'static str> {
    let mut line = name.map(|n| n.as_bytes().to_vec()).unwrap_or_default();
    if line.contains(&b'\n') {
        return Err("the checkpoint name must not contain a newline");
    }
    line.push(b'\n');
    Ok(line)
}

/// `sival_int` for the two descriptors, or `None` when one does not fit in 16 bits.
pub fn encode_value(req_read_fd: i32, resp_write_fd: i32) -> Option<i32> {
    let fits = |fd: i32| (0..65536).contains(&fd);
    if !fits(req_read_fd) || !fits(resp_write_fd) {
        return None;
    }
    Some(((req_read_fd as u32) << 16 | resp_write_fd as u32) as i32)
}

/// The two descriptors of a `sival_int`: `(req_read_fd, resp_write_fd)` (the library's side).
#[cfg(test)]
pub fn decode_value(value: i32) -> (i32, i32) {
    let value = value as u32;
    ((value >> 16) as i32, (value & 0xffff) as i32)
}

/// The target's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    /// The checkpoint was written to this name (as the target wrote it).
    Ok(Vec<u8>),
    /// The checkpoint failed, for this reason.
    Error(String),
}

/// Parses one answer line (without its `\n`).
pub fn parse_response(line: &[u8]) -> Result<Response, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(name) = line.strip_prefix(b"ok ") {
        if name.is_empty() {
            return Err("the target answered \"ok\" without a name".to_owned());
        }
        return Ok(Response::Ok(name.to_vec()));
    }
    if let Some(message) = line.strip_prefix(b"error") {
        let message = message.strip_prefix(b" ").unwrap_or(message);
        let message = String::from_utf8_lossy(message).trim().to_owned();
        return Ok(Response::Error(if message.is_empty() {
            "the checkpoint failed".to_owned()
        } else {
            message
        }));
    }
    Err(format!(
        "unexpected answer from the target: {:?}",
        String::from_utf8_lossy(line)
    ))
}

/// Collects answer bytes; yields the first complete line.
#[derive(Default)]
pub struct LineBuffer {
    bytes: Vec<u8>,
}

impl LineBuffer {
    /// Adds bytes; returns the first line (without `\n`) once one is complete.
    pub fn push(&mut self, more: &[u8]) -> Option<Vec<u8>> {
        self.bytes.extend_from_slice(more);
        let end = self.bytes.iter().position(|&b| b == b'\n')?;
        Some(self.bytes[..end].to_vec())
    }
}

/// Whether a `/proc/PID/maps` line maps a file named `libckpt.so` (possibly deleted since).
pub fn maps_line_has_libckpt(line: &[u8]) -> bool {
    // address perms offset dev inode path: the path starts after the fifth field.
    let mut rest = line;
    for _ in 0..5 {
        let trimmed = trim_start(rest);
        match trimmed.iter().position(|&b| b == b' ') {
            Some(at) => rest = &trimmed[at..],
            None => return false,
        }
    }
    let path = trim_start(rest);
    let path = path.strip_suffix(b"\n").unwrap_or(path);
    let path = path.strip_suffix(b" (deleted)").unwrap_or(path);
    if !path.starts_with(b"/") {
        return false;
    }
    let file_name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    file_name == b"libckpt.so"
}

/// Whether the text of `/proc/PID/maps` shows libckpt loaded.
pub fn maps_have_libckpt(maps: &[u8]) -> bool {
    maps.split(|&b| b == b'\n').any(maps_line_has_libckpt)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|&&b| b == b' ').count();
    &bytes[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn request_lines() {
        assert_eq!(request_line(None).unwrap(), b"\n");
        assert_eq!(
            request_line(Some(OsStr::new("x.ckpt"))).unwrap(),
            b"x.ckpt\n"
        );
        assert_eq!(
            request_line(Some(OsStr::from_bytes(b"/a b/\xff.ckpt"))).unwrap(),
            b"/a b/\xff.ckpt\n"
        );
        assert!(request_line(Some(OsStr::new("a\nb"))).is_err());
    }

    #[test]
    fn values() {
        assert_eq!(encode_value(3, 6), Some(0x0003_0006));
        assert_eq!(decode_value(0x0003_0006), (3, 6));
        assert_eq!(encode_value(65535, 65535), Some(-1));
        assert_eq!(decode_value(-1), (65535, 65535));
        assert_eq!(encode_value(40000, 2), Some((40000u32 << 16 | 2) as i32));
        assert_eq!(decode_value(encode_value(40000, 2).unwrap()), (40000, 2));
        assert_eq!(encode_value(65536, 1), None);
        assert_eq!(encode_value(1, -1), None);
    }

    #[test]
    fn responses() {
        assert_eq!(
            parse_response(b"ok counter.ckpt"),
            Ok(Response::Ok(b"counter.ckpt".to_vec()))
        );
        assert_eq!(
            parse_response(b"ok /dir with space/x"),
            Ok(Response::Ok(b"/dir with space/x".to_vec()))
        );
        assert_eq!(
            parse_response(b"error cannot create the checkpoint file: No such file"),
            Ok(Response::Error(
                "cannot create the checkpoint file: No such file".to_owned()
            ))
        );
        assert_eq!(
            parse_response(b"error"),
            Ok(Response::Error("the checkpoint failed".to_owned()))
        );
        assert!(parse_response(b"ok ").is_err());
        assert!(parse_response(b"hello").is_err());
        assert!(parse_response(b"").is_err());
    }

    #[test]
    fn line_buffer() {
        let mut buffer = LineBuffer::default();
        assert_eq!(buffer.push(b"ok x"), None);
        assert_eq!(buffer.push(b".ckpt\nrest"), Some(b"ok x.ckpt".to_vec()));
    }

    #[test]
    fn maps_lines() {
        let yes = b"7f1c2a000000-7f1c2a010000 r-xp 00000000 fd:01 123456                     /work/target/release/libckpt.so";
        assert!(maps_line_has_libckpt(yes));
        let deleted =
            b"7f1c2a000000-7f1c2a010000 r-xp 00000000 fd:01 123456   /tmp/x/libckpt.so (deleted)";
        assert!(maps_line_has_libckpt(deleted));
        for no in [
            &b"7f1c2a000000-7f1c2a010000 r-xp 00000000 fd:01 123456   /usr/lib/libc.so.6"[..],
            b"7f1c2a000000-7f1c2a010000 r-xp 00000000 fd:01 123456   /tmp/libckpt.so.1",
            b"7f1c2a000000-7f1c2a010000 r-xp 00000000 fd:01 123456   /tmp/notlibckpt.so",
            b"7f1c2a000000-7f1c2a010000 rw-p 00000000 00:00 0 ",
            b"7ffd1a000000-7ffd1a021000 rw-p 00000000 00:00 0                          [stack]",
            b"7f1c2a000000-7f1c2a010000 rw-p 00000000 00:00 0   [anon:libckpt.so]",
            b"",
        ] {
            assert!(
                !maps_line_has_libckpt(no),
                "{}",
                String::from_utf8_lossy(no)
            );
        }
        let mut maps = Vec::new();
        maps.extend_from_slice(b"55d0-55d1 r--p 00000000 fd:01 1 /usr/bin/sleep\n");
        assert!(!maps_have_libckpt(&maps));
        maps.extend_from_slice(yes);
        maps.push(b'\n');
        assert!(maps_have_libckpt(&maps));
    }
}
