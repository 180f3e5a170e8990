//! Running PROG under ckpt (`ckpt [options] PROG ARGS…`): PROG found in `PATH`, refused
//! when set-user-ID or statically linked, libckpt.so found and put first in `LD_PRELOAD`,
//! the options turned into `CKPT_*` variables, and this process replaced by PROG. Each
//! refusal is a [`Failure`]: one line and a shell-like exit status.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::args::RunOptions;
use crate::elf_reader::{self, is_static_elf};
use crate::{embedded, resume, EXIT_CANNOT_RUN, EXIT_NOT_FOUND};

/// The search path execvp uses when `PATH` is unset (glibc's default).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

const LIBRARY_FILE: &str = "libckpt.so";

/// Why PROG was not started: the line to print and the exit status.
pub(crate) struct Failure {
    pub message: String,
    pub status: u8,
}

impl Failure {
    pub fn new(status: u8, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status,
        }
    }
}

/// Resolves PROG and the library, sets up the environment and execs; returns only on failure.
pub(crate) fn run(mut options: RunOptions) -> Result<std::convert::Infallible, Failure> {
    // First: a restart needs neither PROG nor the library, the checkpoint carries both.
    if let Some(mode) = options.resume {
        let file = resume::resume_or_start(mode, options.name.as_deref(), &options.program)?;
        options.name = Some(file.into_os_string());
    }
    let program = resolve_program(&options.program)?;
    refuse_set_id(&program)?;
    refuse_static(&program)?;
    let library = find_library()?;

    let mut command = Command::new(&program);
    command.arg0(&options.program).args(&options.program_args);
    command.env(
        "LD_PRELOAD",
        preload_value(&library, std::env::var_os("LD_PRELOAD")),
    );
    if let Some(name) = &options.name {
        command.env("CKPT_NAME", name);
    }
    // PROG runs in this process (exec), so this pid is PROG's: the library tells the process
    // ckpt started from its descendants by it, and names the former's checkpoint after PROG
    // as given (`ckpt ./job.py` writes job.py.ckpt, not python3.ckpt).
    command.env("CKPT_PID", std::process::id().to_string());
    command.env("CKPT_PROGRAM", program_basename(&options.program));
    if options.continue_after_checkpoint {
        command.env("CKPT_CONTINUE", "1");
    }
    if let Some(signal) = &options.async_signal {
        command.env("CKPT_ASYNCSIG", signal);
    }
    if let Some(period) = options.period_ms {
        command.env("CKPT_MSPERIOD", period.to_string());
    }

    let error = command.exec();
    let status = if error.kind() == io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_RUN
    };
    Err(Failure::new(
        status,
        format!("cannot run {}: {error}", program.display()),
    ))
}

/// The basename of PROG as the user gave it: the default checkpoint name is this plus
/// `.ckpt`.
pub(crate) fn program_basename(program: &OsStr) -> &OsStr {
    let bytes = program.as_bytes();
    let base = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    OsStr::from_bytes(base)
}

/// Finds PROG the way execvp does: a name with a slash is used as it is; otherwise each
/// `PATH` entry is tried in order (an empty entry means the current directory), and the first
/// regular file with an execute bit wins.
fn resolve_program(program: &OsStr) -> Result<PathBuf, Failure> {
    if program.is_empty() {
        return Err(Failure::new(EXIT_NOT_FOUND, "empty program name"));
    }
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        return match path.metadata() {
            Ok(metadata) if metadata.is_dir() => Err(Failure::new(
                EXIT_CANNOT_RUN,
                format!("{}: is a directory", path.display()),
            )),
            Ok(metadata) if metadata.permissions().mode() & 0o111 == 0 => Err(Failure::new(
                EXIT_CANNOT_RUN,
                format!("{}: permission denied (not executable)", path.display()),
            )),
            Ok(_) => Ok(path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(Failure::new(
                EXIT_NOT_FOUND,
                format!("{}: no such file", path.display()),
            )),
            Err(error) => Err(Failure::new(
                EXIT_CANNOT_RUN,
                format!("{}: {error}", path.display()),
            )),
        };
    }

    let search = std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let mut not_executable = None;
    for dir in search.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        let Ok(metadata) = candidate.metadata() else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        if metadata.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
        not_executable.get_or_insert(candidate);
    }
    Err(match not_executable {
        Some(path) => Failure::new(
            EXIT_CANNOT_RUN,
            format!("{}: permission denied (not executable)", path.display()),
        ),
        None => Failure::new(
            EXIT_NOT_FOUND,
            format!(
                "{}: command not found in PATH",
                Path::new(program).display()
            ),
        ),
    })
}

/// Refuses set-user-ID and set-group-ID programs: the dynamic loader runs them in secure mode
/// and ignores an LD_PRELOAD path like ours, so they would run without checkpointing.
fn refuse_set_id(program: &Path) -> Result<(), Failure> {
    let mode = program
        .metadata()
        .map_err(|error| Failure::new(EXIT_CANNOT_RUN, format!("{}: {error}", program.display())))?
        .permissions()
        .mode();
    let set_id = libc::S_ISUID | libc::S_ISGID;
    if mode & set_id != 0 {
        return Err(Failure::new(
            EXIT_CANNOT_RUN,
            format!(
                "{} is a set-user-ID or set-group-ID program; it cannot be checkpointed \
                 (the loader ignores LD_PRELOAD for it)",
                program.display()
            ),
        ));
    }
    Ok(())
}

/// Refuses statically linked ELF programs: nothing loads a preloaded library into them, so
/// the checkpoint signal would merely stop them. (Scripts and other files are left to the
/// kernel: an interpreter started for them is dynamically linked as usual.)
fn refuse_static(program: &Path) -> Result<(), Failure> {
    let Ok(bytes) =
        std::fs::read(program).map(|b| b.into_iter().take(64 * 1024).collect::<Vec<u8>>())
    else {
        return Ok(());
    };
    // A checkpoint file is static too, but it needs no library: it carries its own.
    if is_static_elf(&bytes) && elf_reader::ckpt_header_offset(&bytes).is_none() {
        return Err(Failure::new(
            EXIT_CANNOT_RUN,
            format!(
                "{} is statically linked; the checkpoint library cannot be loaded into it \
                 (build it as a dynamically linked program)",
                program.display()
            ),
        ));
    }
    Ok(())
}

/// Finds libckpt.so: `$CKPT_LIBRARY` if set, else beside the ckpt executable, else in
/// `../lib/` or `../lib/ckpt/` relative to it, else the copy this command carries, written
/// to a private cache directory (see `embedded`). The result is absolute: a relative LD_PRELOAD
/// entry would be looked up again, relative to whatever directory PROG or its children are in.
pub(crate) fn find_library() -> Result<PathBuf, Failure> {
    if let Some(explicit) = std::env::var_os("CKPT_LIBRARY").filter(|value| !value.is_empty()) {
        let path = absolute(Path::new(&explicit));
        if !path.is_file() {
            return Err(Failure::new(
                EXIT_NOT_FOUND,
                format!("CKPT_LIBRARY={}: no such file", path.display()),
            ));
        }
        return check_preloadable(path);
    }

    let exe = std::env::current_exe().map_err(|error| {
        Failure::new(
            EXIT_NOT_FOUND,
            format!("cannot find {LIBRARY_FILE}: cannot locate the ckpt executable: {error}"),
        )
    })?;
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [
        exe_dir.join(LIBRARY_FILE),
        exe_dir.join("../lib").join(LIBRARY_FILE),
        exe_dir.join("../lib/ckpt").join(LIBRARY_FILE),
    ];
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return check_preloadable(absolute(found));
    }
    let searched: Vec<String> = candidates
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    let searched = format!(
        "cannot find {LIBRARY_FILE}; searched $CKPT_LIBRARY (unset), {}",
        searched.join(", ")
    );
    if !embedded::carried() {
        return Err(Failure::new(EXIT_NOT_FOUND, searched));
    }
    embedded::library().map_err(|why| Failure::new(EXIT_NOT_FOUND, format!("{searched}; {why}")))
}

/// The loader splits LD_PRELOAD at colons and spaces, so such a path cannot be preloaded.
fn check_preloadable(path: PathBuf) -> Result<PathBuf, Failure> {
    if path
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|&b| b == b':' || b == b' ')
    {
        return Err(Failure::new(
            EXIT_NOT_FOUND,
            format!(
                "cannot preload {}: LD_PRELOAD cannot hold a path with ':' or ' '; \
                 set CKPT_LIBRARY to another location",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// Makes a path absolute and tidies `..` components, without resolving symlinks of the file
/// itself (the loader does that).
fn absolute(path: &Path) -> PathBuf {
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (joined.parent().map(Path::canonicalize), joined.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => joined,
    }
}

/// The new LD_PRELOAD: our library first, then whatever was there.
fn preload_value(library: &Path, existing: Option<OsString>) -> OsString {
    let mut value = library.as_os_str().to_os_string();
    if let Some(existing) = existing.filter(|existing| !existing.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

#[cfg(test)]
mod tests {
    #[test]
    fn static_elf_detection() {
        // A minimal ELF64 header with two program headers of the given types.
        let elf = |types: &[u32]| {
            let mut b = vec![0u8; 64 + 56 * types.len()];
            b[..4].copy_from_slice(b"\x7fELF");
            b[4] = 2;
            b[32..40].copy_from_slice(&64u64.to_le_bytes());
            b[54..56].copy_from_slice(&56u16.to_le_bytes());
            b[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
            for (i, t) in types.iter().enumerate() {
                b[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
            }
            b
        };
        assert!(super::is_static_elf(&elf(&[1, 1])));
        assert!(!super::is_static_elf(&elf(&[6, 3, 1])));
        assert!(!super::is_static_elf(b"#!/bin/sh\necho hi\n"));
        let own = std::fs::read("/bin/sh").unwrap_or_default();
        assert!(!super::is_static_elf(&own), "/bin/sh is dynamically linked");
    }

    use super::*;

    #[test]
    fn preload_prepends() {
        let lib = Path::new("/opt/ckpt/libckpt.so");
        assert_eq!(preload_value(lib, None), "/opt/ckpt/libckpt.so");
        assert_eq!(
            preload_value(lib, Some(OsString::new())),
            "/opt/ckpt/libckpt.so"
        );
        assert_eq!(
            preload_value(lib, Some(OsString::from("/a.so:/b.so"))),
            "/opt/ckpt/libckpt.so:/a.so:/b.so"
        );
    }

    #[test]
    fn program_with_slash_must_exist() {
        let failure = resolve_program(OsStr::new("/nonexistent/dir/prog")).unwrap_err();
        assert_eq!(failure.status, EXIT_NOT_FOUND);
        assert!(failure.message.contains("/nonexistent/dir/prog"));
    }

    #[test]
    fn absolute_tidies_parent_components() {
        let tidy = absolute(Path::new("/usr/lib/../bin/env"));
        assert_eq!(tidy, std::fs::canonicalize("/usr/bin").unwrap().join("env"));
    }
}
