//! Reading `/proc/<pid>/maps` lines, which the writer and the stub both do.

/// A hexadecimal number of 1 to 16 digits.
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        Some((v << 4) | (c as char).to_digit(16)? as u64)
    })
}

/// The `start-end` addresses a maps line begins with (before its first blank).
pub fn line_range(line: &[u8]) -> Option<(u64, u64)> {
    let range = &line[..line.iter().position(|&c| c == b' ')?];
    let dash = range.iter().position(|&c| c == b'-')?;
    Some((parse_hex(&range[..dash])?, parse_hex(&range[dash + 1..])?))
}
