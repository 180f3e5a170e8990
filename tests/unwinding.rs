//! Programs that unwind — C++ exceptions, Rust panics caught with `catch_unwind` — go on
//! unwinding under ckpt, before a checkpoint and after the restart, whichever way the library
//! was loaded. libckpt is `no_std` and carries no unwinder: its stand-ins for the unwinder's
//! entry points are hidden, and must never take the place of the program's.

use std::path::Path;
use std::process::Command;

use ckpt_tests::*;

const EXCEPTIONS_CPP: &str = include_str!("programs/exceptions.cpp");
const PANICS_RS: &str = include_str!("programs/panics.rs");

/// Runs the program under ckpt and with LD_PRELOAD: 30 rounds, a checkpoint, then 30 more
/// rounds in the restarted process.
fn unwinds_across_a_restart(dir: &TempDir, program: &Path, name: &str) {
    let launches: [(&str, Command); 2] = [
        ("ckpt", ckpt_command(dir, program, &[])),
        ("LD_PRELOAD", preload_command(dir, program, &[])),
    ];
    for (launch, command) in launches {
        let label = format!("{name} ({launch})");
        let (_, last) = rounds_then_checkpoint(command, &label, 30);
        let checkpoint = checkpoint_path(dir, program);
        let mut restarted = expect_rounds(
            restart_command(dir, &checkpoint),
            &format!("{label}, restarted"),
            last,
            30,
        );
        restarted.assert_no_bad_lines();
        restarted.kill();
        std::fs::remove_file(&checkpoint).unwrap();
    }
}

#[test]
fn cxx_exceptions_are_caught_before_and_after_a_restart() {
    let dir = TempDir::new("unwind-cxx");
    let program = compile_cxx(&dir, "exceptions", EXCEPTIONS_CPP);
    unwinds_across_a_restart(&dir, &program, "exceptions");
}

#[test]
fn rust_panics_are_caught_before_and_after_a_restart() {
    let dir = TempDir::new("unwind-rust");
    let program = compile_rust(&dir, "panics", PANICS_RS);
    unwinds_across_a_restart(&dir, &program, "panics");
}
