//! Reading the kernel's text files under `/proc`, once for every side that does: the maps
//! (the writer, the restart stub, `ckpt checkpoint`), `stat` (the writer, `ckpt
//! checkpoint`), `status` (the writer, `ckpt checkpoint`) and `fdinfo` (the writer, whose
//! fields read like `status`'s). Pure functions without
//! allocation, so that the stub and the signal handler can use them; fuzzed in
//! `tests/fuzz.rs`.

/// A hexadecimal number of 1 to 16 digits.
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        Some((v << 4) | (c as char).to_digit(16)? as u64)
    })
}

/// A decimal number of at least one digit that fits in 64 bits.
pub fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        v.checked_mul(10)?
            .checked_add((c as char).to_digit(10)? as u64)
    })
}

/// An octal number of 1 to 22 digits that fits in 64 bits (`flags` of
/// `/proc/PID/fdinfo/N`).
pub fn parse_oct(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 22 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        if v >> 61 != 0 {
            return None;
        }
        Some((v << 3) | (c as char).to_digit(8)? as u64)
    })
}

/// The `start-end` addresses a maps line begins with (before its first blank).
pub fn line_range(line: &[u8]) -> Option<(u64, u64)> {
    let range = &line[..line.iter().position(|&c| c == b' ')?];
    let dash = range.iter().position(|&c| c == b'-')?;
    Some((parse_hex(&range[..dash])?, parse_hex(&range[dash + 1..])?))
}

/// One line of `/proc/PID/maps`:
/// `start-end perms offset major:minor inode name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsLine<'a> {
    pub start: u64,
    pub end: u64,
    /// `rwxp`, `r--s` …: four bytes.
    pub perms: [u8; 4],
    pub offset: u64,
    /// The device, as (major, minor).
    pub dev: (u64, u64),
    pub inode: u64,
    /// The path or the kernel's name (`[heap]`, `[vdso]`, …); empty for anonymous memory.
    /// A path may hold blanks, and ends in ` (deleted)` for a deleted file.
    pub name: &'a [u8],
}

/// Splits off the next blank-separated field.
fn field<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let s = rest.iter().position(|&c| c != b' ').unwrap_or(rest.len());
    let r = &rest[s..];
    let e = r.iter().position(|&c| c == b' ').unwrap_or(r.len());
    *rest = &r[e..];
    &r[..e]
}

/// Parses one maps line; `None` when it is not one.
pub fn maps_line(line: &[u8]) -> Option<MapsLine<'_>> {
    let (start, end) = line_range(line)?;
    let mut rest = line;
    let _range = field(&mut rest);
    let perms: [u8; 4] = field(&mut rest).try_into().ok()?;
    let offset = parse_hex(field(&mut rest))?;
    let dev = field(&mut rest);
    let colon = dev.iter().position(|&c| c == b':')?;
    let dev = (parse_hex(&dev[..colon])?, parse_hex(&dev[colon + 1..])?);
    let inode = parse_dec(field(&mut rest))?;
    let skip = rest.iter().position(|&c| c != b' ').unwrap_or(rest.len());
    Some(MapsLine {
        start,
        end,
        perms,
        offset,
        dev,
        inode,
        name: &rest[skip..],
    })
}

/// Field `n` of `/proc/PID/stat`, numbered from 1 as in proc(5): 1 is the pid, 2 the command
/// name (in parentheses, and may hold anything, `) ` included, so it is skipped by the last
/// `)`), 3 the state, and so on.
pub fn stat_field(stat: &[u8], n: usize) -> Option<&[u8]> {
    let close = stat.iter().rposition(|&c| c == b')')?;
    match n {
        0 => None,
        1 => stat[..close].split(|&c| c == b' ').find(|f| !f.is_empty()),
        2 => {
            let open = stat.iter().position(|&c| c == b'(')?;
            stat.get(open + 1..close)
        }
        _ => stat[close + 1..]
            .split(|&c| c == b' ' || c == b'\n')
            .filter(|f| !f.is_empty())
            .nth(n - 3),
    }
}

/// Field `n` of `/proc/PID/stat` as an unsigned number.
pub fn stat_number(stat: &[u8], n: usize) -> Option<u64> {
    parse_dec(stat_field(stat, n)?)
}

/// The value of `key` (a field name such as `VmLck`, without its colon) in
/// `/proc/PID/status`, without the blanks around it.
pub fn status_value<'a>(status: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let value = status
        .split(|&c| c == b'\n')
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(b":"))?;
    let start = value.iter().position(|c| !c.is_ascii_whitespace())?;
    let end = value.iter().rposition(|c| !c.is_ascii_whitespace())? + 1;
    Some(&value[start..end])
}

/// A size in KiB (`VmLck:      12 kB`) of `/proc/PID/status`.
pub fn status_kib(status: &[u8], key: &[u8]) -> Option<u64> {
    let value = status_value(status, key)?;
    parse_dec(value.strip_suffix(b" kB").unwrap_or(value))
}

/// A signal set (`SigBlk`, `SigIgn`, `SigCgt`, hexadecimal) of `/proc/PID/status`, as a mask
/// with bit `n - 1` for signal `n`.
pub fn status_mask(status: &[u8], key: &[u8]) -> Option<u64> {
    parse_hex(status_value(status, key)?)
}

/// The system call a thread sleeps in and its first argument, from
/// `/proc/PID/task/TID/syscall` (`202 0x7f… 0x80 …`); `None` while it runs (`running`), or
/// when it is blocked outside any system call (`-1 …`).
pub fn blocked_syscall(text: &[u8]) -> Option<(u64, u64)> {
    let mut fields = text
        .split(|&c| c == b' ' || c == b'\n')
        .filter(|f| !f.is_empty());
    let nr = parse_dec(fields.next()?)?;
    let arg = parse_hex(fields.next()?.strip_prefix(b"0x")?)?;
    Some((nr, arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_syscalls() {
        let futex = b"202 0x7f12345678 0x80 0x3 0x0 0x0 0x0 0x7ffd0000 0x7f00001\n";
        assert_eq!(blocked_syscall(futex), Some((202, 0x7f12345678)));
        assert_eq!(blocked_syscall(b"running\n"), None);
        assert_eq!(blocked_syscall(b"-1 0x7ffd0000 0x7f00001\n"), None);
        assert_eq!(blocked_syscall(b""), None);
        assert_eq!(blocked_syscall(b"0 0x3"), Some((0, 3)));
    }

    #[test]
    fn octal_numbers() {
        assert_eq!(parse_oct(b"0100002"), Some(0o100002));
        assert_eq!(parse_oct(b"02000000"), Some(0o2000000));
        assert_eq!(parse_oct(b"1777777777777777777777"), Some(u64::MAX));
        assert_eq!(parse_oct(b"2000000000000000000000"), None);
        assert_eq!(parse_oct(b"8"), None);
        assert_eq!(parse_oct(b""), None);
    }

    #[test]
    fn maps_lines() {
        let l = maps_line(
            b"7f1c2a000000-7f1c2a021000 r-xp 00002000 fe:01 131090                     \
              /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!((l.start, l.end), (0x7f1c2a000000, 0x7f1c2a021000));
        assert_eq!(&l.perms, b"r-xp");
        assert_eq!((l.offset, l.dev, l.inode), (0x2000, (0xfe, 1), 131090));
        assert_eq!(l.name, b"/usr/lib/x86_64-linux-gnu/libc.so.6");
        let anon = maps_line(b"7f0000000000-7f0000001000 ---p 00000000 00:00 0").unwrap();
        assert_eq!(anon.name, b"");
        let spaced = maps_line(b"1000-2000 rw-s 00000000 00:01 7 /a b/c (deleted)").unwrap();
        assert_eq!(spaced.name, b"/a b/c (deleted)");
        for bad in [
            &b"nonsense"[..],
            b"1000-2000 rw-p",
            b"1000-2000 rwxpq 0 00:00 0",
            b"1000-2000 rw-p 0 0000 0",
            b"1000-2000 rw-p 0 00:00 x",
            b"",
        ] {
            assert_eq!(maps_line(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn stat_fields() {
        let stat = b"4711 (a) b) c) R 1 2 3 4 5 6 7\n";
        assert_eq!(stat_field(stat, 1), Some(&b"4711"[..]));
        assert_eq!(stat_field(stat, 2), Some(&b"a) b) c"[..]));
        assert_eq!(stat_field(stat, 3), Some(&b"R"[..]));
        assert_eq!(stat_number(stat, 4), Some(1));
        assert_eq!(stat_number(stat, 10), Some(7));
        assert_eq!(stat_field(stat, 11), None);
        assert_eq!(stat_field(stat, 0), None);
        assert_eq!(stat_field(b"no parenthesis", 3), None);
    }

    #[test]
    fn status_fields() {
        let status = b"Name:\tx\nVmLck:\t      12 kB\nSigBlk:\t4000000000000000\nSigCgtX:\t1\n";
        assert_eq!(status_value(status, b"Name"), Some(&b"x"[..]));
        assert_eq!(status_kib(status, b"VmLck"), Some(12));
        assert_eq!(status_mask(status, b"SigBlk"), Some(1 << 62));
        assert_eq!(status_mask(status, b"SigCgt"), None);
        assert_eq!(status_value(status, b"Vm"), None);
    }
}
