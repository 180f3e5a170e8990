//! What `ckpt checkpoint` reads of its target in /proc before it asks anything, as pure
//! functions. The request protocol itself is [`ckpt_image::request`], shared with libckpt.
//!
//! The /proc text is parsed by [`ckpt_image::procfs`], which the checkpoint writer and the
//! restart stub use too (it allocates nothing, so they can; no crate can run there). It
//! reads raw bytes, as /proc holds them: a non-UTF-8 path or command name is no reason to
//! misjudge a process, and a line that does not parse is skipped, not fatal.

use ckpt_image::procfs;

/// A signal set line of `/proc/PID/status` (`SigBlk:`, `SigIgn:`, `SigCgt:`) as a mask
/// (bit `n - 1` for signal `n`).
pub fn status_mask(status: &[u8], field: &str) -> Option<u64> {
    procfs::status_mask(status, field.as_bytes())
}

/// The state letter (field 3) and start time (field 22, clock ticks since boot) of a
/// `/proc/PID/stat` text.
pub fn stat_identity(stat: &[u8]) -> Option<(char, u64)> {
    let state = *procfs::stat_field(stat, 3)?.first()?;
    Some((char::from(state), procfs::stat_number(stat, 22)?))
}

/// Whether a `/proc/PID/maps` line maps a file named `libckpt.so` (possibly deleted since).
pub fn maps_line_has_libckpt(line: &[u8]) -> bool {
    let Some(mapping) = procfs::maps_line(line.strip_suffix(b"\n").unwrap_or(line)) else {
        return false;
    };
    let path = mapping.name;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_masks() {
        let status = b"Name:\tx\nSigQ:\t0/1\nSigPnd:\t0000000000000000\n\
            SigBlk:\t4000000000000000\nSigIgn:\t0000000000001000\n\
            SigCgt:\t4000000000080002\n";
        assert_eq!(status_mask(status, "SigBlk"), Some(1 << 62));
        assert_eq!(status_mask(status, "SigIgn"), Some(0x1000));
        assert_eq!(status_mask(status, "SigCgt"), Some(0x4000_0000_0008_0002));
        assert_eq!(status_mask(status, "SigPnd"), Some(0));
        assert_eq!(status_mask(status, "ShdPnd"), None);
        assert_eq!(status_mask(b"SigCgt:\tzz\n", "SigCgt"), None);
    }

    #[test]
    fn stat_fields() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21\n";
        let stat = format!("77 (we) ird) name) {tail}").into_bytes();
        assert_eq!(stat_identity(&stat), Some(('S', 424242)));
        let mut raw = b"77 (\xff\xfe) ".to_vec();
        raw.extend_from_slice(tail.as_bytes());
        assert_eq!(stat_identity(&raw), Some(('S', 424242)));
        assert_eq!(stat_identity(b"77 (x) S 1 2"), None);
        assert_eq!(stat_identity(b"77 (x"), None);
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
