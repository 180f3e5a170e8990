//! The file an image is written into: unnamed (`O_TMPFILE`) in the target's directory where
//! the file system allows, so that a writer that dies leaves nothing, else a temp name
//! created exclusively and never through a symlink; the reason when it cannot be made; and
//! how a complete one takes the target's name. Signal-safe.

use super::WriteError;
use crate::sys;

/// Builds `<target>.tmp.<pid>` (NUL-terminated) next to the target into `out`.
pub(super) fn temp_name(target: &[u8], out: &mut [u8], pid: u32) -> Option<usize> {
    let mut name = crate::line::Line::<{ crate::arena::PATH_MAX + 32 }>::new();
    name.push(target)
        .push(b".tmp.")
        .push_decimal(pid.into())
        .push(b"\0");
    let bytes = name.as_bytes();
    if !name.fits() || bytes.len() > out.len() {
        return None;
    }
    out[..bytes.len()].copy_from_slice(bytes);
    Some(bytes.len())
}

/// Why the checkpoint file could not be created: a relative name in a deleted working
/// directory says so, instead of a bare "no such file or directory". Signal-safe.
pub(super) fn create_error(errno: i32, name: &[u8]) -> WriteError {
    // (ENOENT for a named file, EPERM for an unnamed one.)
    if name.first() != Some(&b'/') {
        let mut cwd = [0u8; 1024];
        if let Ok(n) = sys::readlink(b"/proc/thread-self/cwd\0", &mut cwd) {
            if cwd[..n].ends_with(b" (deleted)") {
                return WriteError::CwdDeleted;
            }
        }
    }
    WriteError::Create(errno)
}

/// Opens the file the image is written into: `(fd, named)`. Preferably an unnamed file in
/// the target's directory (`O_TMPFILE`), named only once it is complete: a writer that is
/// killed half-way (a forked writer, or the whole process) then leaves nothing behind.
/// Where the file system has no unnamed files, the temp name itself. Signal-safe.
pub(super) fn create_temp(target: &[u8], temp: &[u8]) -> Result<(i32, bool), i32> {
    let name = &target[..target.len() - 1];
    let dir: &[u8] = match name.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/",
        Some(i) => &name[..i],
        None => b".",
    };
    let mut dir_path = [0u8; crate::arena::PATH_MAX];
    dir_path[..dir.len()].copy_from_slice(dir);
    let dir_len = dir.len();
    match sys::open(
        &dir_path[..dir_len + 1],
        libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
        0o700,
    ) {
        Ok(fd) => Ok((fd, false)),
        // No unnamed files here (or no directory: the named create says which).
        Err(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT) => {
            create_exclusive(temp).map(|fd| (fd, true))
        }
        Err(e) => Err(e),
    }
}

fn create_exclusive(path: &[u8]) -> Result<i32, i32> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    match sys::open(path, flags, 0o700) {
        // A leftover temp file of an earlier process with our pid: remove it (unlink never
        // follows a symlink) and try once more.
        Err(libc::EEXIST) => {
            sys::unlink(path);
            sys::open(path, flags, 0o700)
        }
        r => r,
    }
}

/// Puts the complete checkpoint at `spare` in place at `target`, and the file that was
/// there at `spare`, in one step; where there was none (or the file system cannot swap),
/// renames it over. Signal-safe.
pub(super) fn swap(spare: &[u8], target: &[u8]) -> sys::SysResult<()> {
    match sys::exchange(spare, target) {
        Err(libc::ENOENT | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
            sys::rename(spare, target)
        }
        r => r,
    }
}

/// Removes `path` if it names the file open at `fd`. Signal-safe.
pub(super) fn remove_if(fd: i32, path: &[u8]) {
    if let (Ok(ours), Ok(there)) = (sys::fstat(fd), sys::lstat(path)) {
        if (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino) {
            sys::unlink(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        let mut out = [0u8; 64];
        let n = temp_name(b"dir/foo.ckpt", &mut out, 4711).unwrap();
        assert_eq!(&out[..n], b"dir/foo.ckpt.tmp.4711\0");
        let mut small = [0u8; 8];
        assert!(temp_name(b"dir/foo.ckpt", &mut small, 1).is_none());
    }
}
