//! `ckpt --resume [-n NAME] PROG ARGS…`: one command line for the first start and every
//! restart of a batch job. When the checkpoint file exists and passes `ckpt verify`, it is
//! run (the restart: the program's own arguments and environment, saved in it, apply);
//! when it does not exist, PROG starts under ckpt writing its checkpoints there.
//!
//! A file that exists but does not verify is never silently replaced by a fresh start, which
//! would throw away the work it holds and then overwrite it at the next checkpoint: it is
//! refused with `ckpt verify`'s status, unless `--resume=fresh-if-damaged` asks to move it
//! aside (to NAME.damaged, kept for inspection) and start afresh. A file that cannot be read
//! at all (permissions, an I/O error, a directory) is not damage: it is always refused.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::args::Resume;
use crate::image::{io_message, Image, EXIT_CANNOT_READ};
use crate::launch::{program_basename, Failure};
use crate::{verify, EXIT_CANNOT_RUN, EXIT_NOT_FOUND};

/// The checkpoint file `--resume` looks for: `-n NAME`, else basename(PROG).ckpt, made
/// absolute against the working directory of ckpt. The library gets it absolute too, so
/// that a program that changes directory still writes its checkpoint where the next
/// `ckpt --resume` looks.
fn checkpoint_file(name: Option<&OsStr>, program: &OsStr) -> (PathBuf, String) {
    let name = match name {
        Some(name) => name.to_os_string(),
        None => {
            let mut name = program_basename(program).to_os_string();
            name.push(".ckpt");
            name
        }
    };
    let shown = Path::new(&name).display().to_string();
    let file = std::path::absolute(Path::new(&name)).unwrap_or_else(|_| PathBuf::from(name));
    (file, shown)
}

/// Decides between a restart (execs the checkpoint file: returns only on failure) and a
/// fresh start: returns the absolute checkpoint path to give PROG.
pub fn resume_or_start(
    mode: Resume,
    name: Option<&OsStr>,
    program: &OsStr,
) -> Result<PathBuf, Failure> {
    let (file, shown) = checkpoint_file(name, program);
    match std::fs::symlink_metadata(&file) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(file),
        Err(error) => {
            return Err(Failure::new(
                EXIT_CANNOT_READ,
                format!("--resume: {shown}: {}", io_message(&error)),
            ))
        }
        Ok(_) => {}
    }
    let refusal = match Image::open(&file).and_then(|image| verify::verify(&image)) {
        Ok(_) => return Err(restart(&file, &shown)),
        Err(refusal) => refusal,
    };
    if mode == Resume::RefuseDamaged || refusal.status == EXIT_CANNOT_READ {
        let advice = if refusal.status == EXIT_CANNOT_READ {
            ""
        } else {
            "; not starting afresh over it (--resume=fresh-if-damaged would move it aside)"
        };
        return Err(Failure::new(
            refusal.status,
            format!("--resume: {shown}: {}{advice}", refusal.message),
        ));
    }
    let mut aside = file.as_os_str().to_os_string();
    aside.push(".damaged");
    let aside = PathBuf::from(aside);
    std::fs::rename(&file, &aside).map_err(|error| {
        Failure::new(
            EXIT_CANNOT_RUN,
            format!(
                "--resume: {shown}: {}; cannot move it aside to {shown}.damaged: {}",
                refusal.message,
                io_message(&error)
            ),
        )
    })?;
    say(&format!(
        "--resume: {shown}: {}; moved it to {shown}.damaged and starting afresh",
        refusal.message
    ));
    Ok(file)
}

/// Execs the verified checkpoint file; returns why it could not.
fn restart(file: &Path, shown: &str) -> Failure {
    say(&format!(
        "--resume: resuming {shown} (the program's saved arguments apply, not those given here)"
    ));
    let error = Command::new(file).arg0(OsString::from(file)).exec();
    let status = if error.kind() == io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_RUN
    };
    Failure::new(
        status,
        format!("--resume: cannot run {shown}: {}", io_message(&error)),
    )
}

/// One line on stderr, unless `CKPT_QUIET=1`.
fn say(line: &str) {
    if std::env::var_os("CKPT_QUIET").is_some_and(|quiet| quiet == "1") {
        return;
    }
    let _ = writeln!(io::stderr(), "ckpt: {line}");
}
