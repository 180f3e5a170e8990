//! Path relocation at a restart (`CKPT_RELOCATE=OLD=NEW[:OLD=NEW…]`): files the program had
//! open under directory OLD are opened under NEW instead (moved to another machine or
//! directory; BLCR's `--relocate`, DMTCP's `--restartdir`). Pure functions, without
//! allocation, for the restart stub (which checks the value before it changes anything)
//! and libckpt (which applies it).

/// Longest value of `CKPT_RELOCATE`, with room for its terminating NUL in the buffer the
/// stub fills (`ImageHeader::restart_relocate`).
pub const RELOCATE_MAX: usize = 4096;

/// The `OLD=NEW` pairs of `value` (separated by `:`), each without trailing slashes (but
/// `/` itself stays `/`); `Err(pair)` for a pair that is not two absolute paths around `=`.
pub fn pairs(value: &[u8]) -> impl Iterator<Item = Result<(&[u8], &[u8]), &[u8]>> {
    value
        .split(|&c| c == b':')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let eq = pair.iter().position(|&c| c == b'=').ok_or(pair)?;
            let (old, new) = (trim(&pair[..eq]), trim(&pair[eq + 1..]));
            if old.first() != Some(&b'/') || new.first() != Some(&b'/') {
                return Err(pair);
            }
            Ok((old, new))
        })
}

fn trim(path: &[u8]) -> &[u8] {
    let mut p = path;
    while p.len() > 1 && p.ends_with(b"/") {
        p = &p[..p.len() - 1];
    }
    p
}

/// The first malformed pair of `value`, if any.
pub fn malformed(value: &[u8]) -> Option<&[u8]> {
    pairs(value).find_map(Result::err)
}

/// `path` relocated by the longest OLD of `value` that is `path` or a directory above it,
/// written into `out`; `None` when no pair applies (or the result does not fit).
pub fn relocate<'a>(value: &[u8], path: &[u8], out: &'a mut [u8]) -> Option<&'a [u8]> {
    let (old, new) = pairs(value)
        .filter_map(Result::ok)
        .filter(|(old, _)| {
            path.starts_with(old)
                && (path.len() == old.len() || path[old.len()] == b'/' || *old == b"/")
        })
        .max_by_key(|(old, _)| old.len())?;
    // "/" as OLD keeps the path's leading slash; NEW "/" drops its own.
    let rest = if old == b"/" {
        path
    } else {
        &path[old.len()..]
    };
    let new = if new == b"/" && rest.starts_with(b"/") {
        &b""[..]
    } else {
        new
    };
    let len = new.len() + rest.len();
    if len > out.len() {
        return None;
    }
    out[..new.len()].copy_from_slice(new);
    out[new.len()..len].copy_from_slice(rest);
    Some(&out[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(value: &str, path: &str) -> Option<String> {
        let mut out = [0u8; 256];
        relocate(value.as_bytes(), path.as_bytes(), &mut out)
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
    }

    #[test]
    fn relocations() {
        assert_eq!(moved("/a/b=/c", "/a/b/x"), Some("/c/x".into()));
        assert_eq!(moved("/a/b/=/c/", "/a/b/x"), Some("/c/x".into()));
        assert_eq!(moved("/a/b=/c", "/a/b"), Some("/c".into()));
        assert_eq!(moved("/a/b=/c", "/a/bc/x"), None);
        assert_eq!(moved("/a=/x:/a/b=/y", "/a/b/f"), Some("/y/f".into()));
        assert_eq!(moved("/a/b=/y:/a=/x", "/a/c/f"), Some("/x/c/f".into()));
        assert_eq!(moved("/=/new", "/a/f"), Some("/new/a/f".into()));
        assert_eq!(moved("/old=/", "/old/f"), Some("/f".into()));
        assert_eq!(moved("", "/a"), None);
        assert_eq!(moved("/a=/b", "relative"), None);
    }

    #[test]
    fn malformed_pairs() {
        assert_eq!(malformed(b"/a=/b:/c=/d"), None);
        assert_eq!(malformed(b"/a=/b::"), None);
        assert_eq!(malformed(b"/a/b"), Some(&b"/a/b"[..]));
        assert_eq!(malformed(b"/a=b"), Some(&b"/a=b"[..]));
        assert_eq!(malformed(b"a=/b"), Some(&b"a=/b"[..]));
    }
}
