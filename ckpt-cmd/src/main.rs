//! `ckpt` — run a program with checkpointing enabled, and look after checkpoints.
//!
//! `ckpt info`, `ckpt verify`, `ckpt checkpoint` and `ckpt attach` (first argument only)
//! describe a checkpoint file, check its checksums, ask a running program to checkpoint
//! itself, and load libckpt into a running program that was not started under ckpt.
//!
//! To run a program, the command does no checkpointing itself: it finds `libckpt.so`, puts it first in
//! `LD_PRELOAD`, turns its options into the `CKPT_*` variables the library reads when it is
//! loaded, and replaces itself with PROG (like `execvp`). Everything it refuses, it refuses
//! before the exec, with one line on stderr and a shell-like exit status:
//! 2 for a bad command line, 126 for a program it must not or cannot run, 127 for something
//! that is not there (PROG or the library).

#![deny(unsafe_code)]

mod args;
mod attach;
mod checkpoint;
mod elf_reader;
mod embedded;
mod image;
mod info;
mod launch;
mod progress;
mod protocol;
mod resume;
mod sys;
mod usage;
mod verify;

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use args::Request;
use image::Image;
use launch::{find_library, run};
use usage::{usage_line, USAGE};

/// Exit status for a bad command line.
const EXIT_USAGE: u8 = 2;
/// Exit status for a program that exists but cannot or must not be run (as in sh).
const EXIT_CANNOT_RUN: u8 = 126;
/// Exit status for something not found (as in sh).
const EXIT_NOT_FOUND: u8 = 127;

fn main() -> ExitCode {
    sys::default_sigpipe();
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Request::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Request::Version) => {
            println!("ckpt {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Request::Info { file, json }) => info_command(&file, json),
        Ok(Request::Verify { file }) => verify_command(&file),
        Ok(Request::Attach(options)) => {
            let library = match find_library() {
                Ok(library) => library,
                Err(failure) => {
                    let _ = writeln!(io::stderr(), "ckpt attach: {}", failure.message);
                    return ExitCode::from(failure.status);
                }
            };
            let report = attach::run(&options, &library);
            if report.to_stderr {
                let _ = writeln!(io::stderr(), "{}", report.line);
            } else {
                println!("{}", report.line);
            }
            ExitCode::from(report.status)
        }
        Ok(Request::Checkpoint(options)) => {
            if let Err(status) = inject_for_checkpoint(options.pid) {
                return ExitCode::from(status);
            }
            let outcome = checkpoint::run(&options);
            for line in &outcome.stdout {
                println!("{line}");
            }
            for line in &outcome.stderr {
                let _ = writeln!(io::stderr(), "{line}");
            }
            ExitCode::from(outcome.status)
        }
        Ok(Request::Run(options)) => match run(options) {
            Ok(never) => match never {},
            Err(failure) => {
                fail(&failure.message);
                ExitCode::from(failure.status)
            }
        },
        Err(error) => {
            fail(&error.to_string());
            let hint = match &error {
                args::ArgError::MissingProgram | args::ArgError::UnknownOption(_) => {
                    Some(usage_line(None))
                }
                args::ArgError::Subcommand { command, message }
                    if message.starts_with("unknown option") =>
                {
                    Some(usage_line(Some(command)))
                }
                _ => None,
            };
            if let Some(line) = hint {
                let _ = writeln!(io::stderr(), "usage: {line}   (ckpt --help for more)");
            }
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// For `ckpt checkpoint PID`: a process without libckpt gets it loaded first (with the
/// defaults of `ckpt attach`: no checkpoint signal), saying so in one line on stderr. A
/// refusal is printed, and is the command's exit status.
fn inject_for_checkpoint(pid: i32) -> Result<(), u8> {
    if !attach::needs_injection(pid) {
        return Ok(());
    }
    let library = find_library().map_err(|failure| {
        let _ = writeln!(
            io::stderr(),
            "ckpt checkpoint: process {pid} does not run with libckpt, and it cannot be \
             loaded: {}; not signalling it",
            failure.message
        );
        checkpoint::EXIT_NO_TARGET
    })?;
    let options = attach::AttachOptions {
        pid,
        ..Default::default()
    };
    match attach::inject(&options, &library) {
        Ok(attached) => {
            let _ = writeln!(
                io::stderr(),
                "ckpt checkpoint: process {pid} did not run with libckpt; loaded it \
                 (thread {}, paused {:.3} ms)",
                attached.tid,
                attached.pause.as_secs_f64() * 1e3
            );
            Ok(())
        }
        // Someone else loaded it meanwhile: go on.
        Err(attach::AttachError::AlreadyLoaded) => Ok(()),
        Err(attach::AttachError::Refused(why)) => {
            let _ = writeln!(
                io::stderr(),
                "ckpt checkpoint: {pid} does not run with libckpt, and loading it was \
                 refused: {why}; not signalling it"
            );
            Err(checkpoint::EXIT_NO_TARGET)
        }
        Err(attach::AttachError::Failed(why)) => {
            let _ = writeln!(io::stderr(), "ckpt checkpoint: {why}; not signalling it");
            Err(checkpoint::EXIT_FAILED)
        }
    }
}

/// `ckpt info FILE [--json]`.
fn info_command(file: &OsStr, json: bool) -> ExitCode {
    let shown = Path::new(file).display().to_string();
    match Image::open(Path::new(file)) {
        Ok(image) => {
            let info = info::Info::gather(&shown, &image);
            if json {
                println!("{}", info.json());
            } else {
                print!("{}", info.text());
            }
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            let _ = writeln!(io::stderr(), "ckpt info: {shown}: {}", refusal.message);
            ExitCode::from(refusal.status)
        }
    }
}

/// `ckpt verify FILE`.
fn verify_command(file: &OsStr) -> ExitCode {
    let shown = Path::new(file).display().to_string();
    match Image::open(Path::new(file)).and_then(|image| verify::verify(&image)) {
        Ok(verified) => {
            println!(
                "{shown}: ok ({} regions, {} extents, {} bytes verified)",
                verified.regions, verified.extents, verified.bytes
            );
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            let _ = writeln!(io::stderr(), "ckpt verify: {shown}: {}", refusal.message);
            ExitCode::from(refusal.status)
        }
    }
}

fn fail(message: &str) {
    let _ = writeln!(io::stderr(), "ckpt: {message}");
}
