//! The copy of libckpt.so this command carries (built by build.rs), for a `ckpt` installed
//! without its library (`cargo install --path ckpt-cmd`). A preload needs a file, so the copy
//! is written to a per-user cache directory, `$XDG_CACHE_HOME/ckpt` or `~/.cache/ckpt` (or
//! `/tmp/ckpt-UID` when neither is set), as `libckpt-HASH.so` (HASH names the contents, so commands of different
//! versions keep their own copies).
//!
//! What gets preloaded must be exactly the carried bytes, whoever else uses the machine: the
//! directory must be ours, a real directory and not a link, and is made mode 0700 (nobody
//! else can put or replace a file in it); the file must be ours, a regular file, writable
//! by nobody else, and equal to the carried copy byte for byte, or it is written again
//! (through a temporary file renamed over it, so that a program starting meanwhile never
//! preloads half a library).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[cfg(ckpt_embedded)]
const LIBRARY: Option<(&[u8], &str)> = Some((
    include_bytes!(env!("CKPT_EMBEDDED_LIBRARY")),
    env!("CKPT_EMBEDDED_HASH"),
));
#[cfg(not(ckpt_embedded))]
const LIBRARY: Option<(&[u8], &str)> = None;

/// Whether this command carries a library at all.
pub(crate) fn carried() -> bool {
    LIBRARY.is_some()
}

/// The path of the carried library, written out where needed; `Err` says why it could
/// not be.
pub(crate) fn library() -> Result<PathBuf, String> {
    let Some((bytes, hash)) = LIBRARY else {
        return Err("this ckpt carries no copy of the library".into());
    };
    let uid = nix::unistd::geteuid().as_raw();
    let dir = cache_dir(uid);
    place(&dir, uid, bytes, hash).map_err(|why| {
        format!(
            "cannot put the copy of the library this ckpt carries in {}: {why}",
            dir.display()
        )
    })
}

/// Where the copy goes: `$XDG_CACHE_HOME/ckpt`, else `$HOME/.cache/ckpt`, else (neither
/// set to an absolute path) `/tmp/ckpt-UID`.
fn cache_dir(uid: u32) -> PathBuf {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if let Some(cache) = absolute("XDG_CACHE_HOME") {
        cache.join("ckpt")
    } else if let Some(home) = absolute("HOME") {
        home.join(".cache/ckpt")
    } else {
        PathBuf::from(format!("/tmp/ckpt-{uid}"))
    }
}

/// Makes `dir` (ours, 0700) and the verified copy in it.
fn place(dir: &Path, uid: u32, bytes: &[u8], hash: &str) -> Result<PathBuf, String> {
    // The loader splits LD_PRELOAD at colons and spaces.
    if dir
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|&b| b == b':' || b == b' ')
    {
        return Err("a preloaded path cannot hold ':' or ' '".into());
    }
    private_dir(dir, uid)?;
    let path = dir.join(format!("libckpt-{hash}.so"));
    match same_contents(&path, uid, bytes) {
        Ok(true) => return Ok(path),
        Ok(false) => {}
        Err(error) => return Err(format!("{}: {error}", path.display())),
    }
    let temporary = dir.join(format!(".libckpt-{hash}.so.{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temporary, &path));
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(format!("cannot write {}: {error}", path.display()));
    }
    Ok(path)
}

/// Creates `dir` if needed and checks it is a directory of ours that nobody else can write.
fn private_dir(dir: &Path, uid: u32) -> Result<(), String> {
    if let Some(parent) = dir.parent() {
        // Parents get the usual mode (~/.cache is shared by many programs).
        fs::create_dir_all(parent).map_err(|error| error.to_string())?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error.to_string()),
    }
    let meta = fs::symlink_metadata(dir).map_err(|error| error.to_string())?;
    if !meta.file_type().is_dir() {
        return Err("not a directory (a symbolic link or a file is in the way)".into());
    }
    if meta.uid() != uid {
        return Err(format!("owned by uid {}, not by you ({uid})", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Whether `path` is a regular file of ours, writable by nobody else, holding `bytes`.
/// `Ok(false)` when it is missing or differs (it is then written again); `Err` when it
/// cannot be judged.
fn same_contents(path: &Path, uid: u32, bytes: &[u8]) -> io::Result<bool> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => file,
        // ELOOP: a symbolic link, which the rename will replace.
        Err(error)
            if error.kind() == io::ErrorKind::NotFound
                || error.raw_os_error() == Some(libc::ELOOP) =>
        {
            return Ok(false)
        }
        Err(error) => return Err(error),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file()
        || meta.uid() != uid
        || meta.mode() & 0o022 != 0
        || meta.len() != bytes.len() as u64
    {
        return Ok(false);
    }
    let mut contents = Vec::with_capacity(bytes.len());
    file.read_to_end(&mut contents)?;
    Ok(contents == bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ckpt-embedded-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn writes_checks_and_rewrites_the_copy() {
        let base = scratch("rewrite");
        let dir = base.join("cache/ckpt");
        let path = place(&dir, uid(), b"library", "0123").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"library");
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        // Changed behind our back, loosened, or replaced by a link: written again.
        fs::write(&path, b"LIBRARY").unwrap();
        assert_eq!(
            fs::read(place(&dir, uid(), b"library", "0123").unwrap()).unwrap(),
            b"library"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        place(&dir, uid(), b"library", "0123").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(base.join("elsewhere"), &path).unwrap();
        place(&dir, uid(), b"library", "0123").unwrap();
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        // A loose directory of ours is made private again.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        place(&dir, uid(), b"library", "0123").unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_a_directory_that_is_not_ours_or_not_a_directory() {
        let base = scratch("refuse");
        let link = base.join("link");
        std::os::unix::fs::symlink(&base, &link).unwrap();
        let why = place(&link, uid(), b"x", "1").unwrap_err();
        assert!(why.contains("not a directory"), "{why}");
        let why = place(&base, uid() + 1, b"x", "1").unwrap_err();
        assert!(why.contains("owned by uid"), "{why}");
        let why = place(&base.join("a b"), uid(), b"x", "1").unwrap_err();
        assert!(why.contains("':' or ' '"), "{why}");
        fs::remove_dir_all(&base).unwrap();
    }
}
