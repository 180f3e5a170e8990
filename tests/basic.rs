//! The basic promise: `ckpt PROG`, SIGTSTP, `./PROG.ckpt` resumes PROG exactly where it was —
//! for C (PIE and not) and Rust programs, with the original environment, any number of times,
//! through chains of checkpoints, without the original executable, and as an ordinary user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ckpt_tests::*;

const COUNTER_C: &str = include_str!("programs/counter.c");
const COUNTER_RS: &str = include_str!("programs/counter.rs");
const ENVIRON_C: &str = include_str!("programs/environ.c");

/// Lines a counter prints before we checkpoint it.
const LINES_BEFORE: u64 = 20;
/// Lines we read from a restarted counter.
const LINES_AFTER: u64 = 10;

/// Checks that `lines` are the numbers `first`, `first + 1`, …; returns the last.
#[track_caller]
fn expect_consecutive(proc: &mut Proc, lines: &[String], first: u64) -> u64 {
    let mut expected = first;
    for line in lines {
        match line.trim().parse::<u64>() {
            Ok(n) if n == expected => expected += 1,
            _ => proc.fail(&format!(
                "expected {expected} in an unbroken count, got {line:?}"
            )),
        }
    }
    expected - 1
}

/// Runs `command` (a counter, under ckpt or restarted), reads `read` numbers that must
/// continue from `last` (0 for a fresh start), checkpoints it with SIGTSTP, and returns the
/// last number it printed before exiting. Every line up to the exit counts: the program keeps
/// printing between our read and the signal.
#[track_caller]
fn count_then_checkpoint(command: Command, label: &str, last: u64, read: u64) -> u64 {
    let mut proc = Proc::spawn(command, label);
    let first = proc.wait_lines(read as usize, TIMEOUT);
    let after_read = expect_consecutive(&mut proc, &first, last + 1);
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    expect_consecutive(&mut proc, &rest, after_read + 1)
}

/// Restarts `checkpoint` and checks that it counts on from `last`; leaves it killed.
#[track_caller]
fn expect_resume(dir: &TempDir, checkpoint: &Path, last: u64, label: &str) -> Proc {
    let mut proc = Proc::spawn(restart_command(dir, checkpoint), label);
    let lines = proc.wait_lines(LINES_AFTER as usize, TIMEOUT);
    expect_consecutive(&mut proc, &lines, last + 1);
    proc.kill();
    proc
}

#[track_caller]
fn require_checkpoint(dir: &TempDir, program: &Path) -> PathBuf {
    let path = checkpoint_path(dir, program);
    assert!(
        path.is_file(),
        "the program exited after SIGTSTP but {} does not exist",
        path.display()
    );
    path
}

fn c_counter(dir: &TempDir) -> PathBuf {
    compile_c(dir, "counter", COUNTER_C, &[])
}

/// Runs `counter` under ckpt and checkpoints it after a few lines; returns the last number
/// it printed and the checkpoint file.
fn checkpoint_counter(dir: &TempDir, counter: &Path, label: &str) -> (u64, PathBuf) {
    let last = count_then_checkpoint(
        ckpt_command(dir, counter, &["10"]),
        &format!("ckpt {label}"),
        0,
        LINES_BEFORE,
    );
    (last, require_checkpoint(dir, counter))
}

/// Checkpoints `counter` and expects the restart to go on with the next number.
fn counter_round_trip(dir: &TempDir, counter: &Path, label: &str) {
    let (last, checkpoint) = checkpoint_counter(dir, counter, label);
    expect_resume(dir, &checkpoint, last, &format!("{label}.ckpt"));
}

#[test]
fn c_counter_continues_without_gap_or_repeat() {
    let dir = TempDir::new("c-counter");
    let counter = c_counter(&dir);
    counter_round_trip(&dir, &counter, "counter");
}

#[test]
fn non_pie_c_counter_continues() {
    let dir = TempDir::new("no-pie");
    let counter = compile_c_no_pie(&dir, "counter", COUNTER_C, &[]);
    counter_round_trip(&dir, &counter, "counter (no-pie)");
}

#[test]
fn rust_counter_continues() {
    let dir = TempDir::new("rust-counter");
    let counter = compile_rust(&dir, "rcounter", COUNTER_RS);
    counter_round_trip(&dir, &counter, "rcounter");
}

#[test]
fn environment_is_the_original_one() {
    let dir = TempDir::new("environ");
    let program = compile_c(&dir, "environ", ENVIRON_C, &[]);
    let mut command = ckpt_command(&dir, &program, &[]);
    command
        .env("CKPT_TEST_VAR", "original value")
        .env_remove("CKPT_TEST_OTHER");
    let mut proc = Proc::spawn(command, "ckpt environ");
    proc.wait_line("ready");
    let line = proc.wait_lines(3, TIMEOUT).pop().unwrap();
    assert!(
        line.ends_with(" original value (unset)"),
        "before the checkpoint: {line:?}"
    );
    proc.checkpoint_and_collect(TIMEOUT);
    let checkpoint = require_checkpoint(&dir, &program);

    let mut changed = restart_command(&dir, &checkpoint);
    changed
        .env("CKPT_TEST_VAR", "restart value")
        .env("CKPT_TEST_OTHER", "only at restart");
    let mut cleared = restart_command(&dir, &checkpoint);
    cleared.env_clear();

    for (command, label) in [
        (changed, "environ.ckpt with a changed environment"),
        (cleared, "environ.ckpt with an empty environment"),
    ] {
        let mut proc = Proc::spawn(command, label);
        for line in proc.wait_lines(5, TIMEOUT) {
            if !line.ends_with(" original value (unset)") {
                proc.fail(&format!(
                    "expected the original environment (CKPT_TEST_VAR=\"original value\", \
                     CKPT_TEST_OTHER unset), got {line:?}"
                ));
            }
        }
        proc.kill();
    }
}

#[test]
fn chain_of_two_checkpoints() {
    let dir = TempDir::new("chain");
    let counter = c_counter(&dir);
    let checkpoint = checkpoint_path(&dir, &counter);

    let last = count_then_checkpoint(
        ckpt_command(&dir, &counter, &["10"]),
        "ckpt counter",
        0,
        LINES_BEFORE,
    );
    require_checkpoint(&dir, &counter);
    // The restarted program checkpoints again, to the same name in the same directory.
    let last = count_then_checkpoint(
        restart_command(&dir, &checkpoint),
        "counter.ckpt (first restart)",
        last,
        LINES_AFTER,
    );
    require_checkpoint(&dir, &counter);
    expect_resume(&dir, &checkpoint, last, "counter.ckpt (second restart)");
}

#[test]
fn same_checkpoint_restarts_twice() {
    let dir = TempDir::new("twice");
    let counter = c_counter(&dir);
    let (last, checkpoint) = checkpoint_counter(&dir, &counter, "counter");
    expect_resume(&dir, &checkpoint, last, "counter.ckpt (first run)");
    expect_resume(&dir, &checkpoint, last, "counter.ckpt (second run)");
}

#[test]
fn restart_without_the_original_executable() {
    let dir = TempDir::new("deleted-exe");
    let counter = c_counter(&dir);
    let (last, checkpoint) = checkpoint_counter(&dir, &counter, "counter");
    std::fs::remove_file(&counter).expect("remove the original executable");
    // Also move the checkpoint: nothing may depend on where it was written.
    let moved = dir.join("elsewhere.ckpt");
    std::fs::rename(&checkpoint, &moved).unwrap();
    expect_resume(&dir, &moved, last, "elsewhere.ckpt (executable deleted)");
}

#[test]
fn whole_cycle_as_an_ordinary_user() {
    let dir = TempDir::new("nobody");
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    if running_as_root() {
        if !have_program("setpriv") {
            panic!("running as root but setpriv (util-linux) is missing: cannot test as nobody");
        }
        check_world_accessible(&ckpt);
        check_world_accessible(&ckpt.with_file_name("libckpt.so"));
    }
    let counter = c_counter(&dir);
    let checkpoint = checkpoint_path(&dir, &counter);
    let last = count_then_checkpoint(
        as_nobody(ckpt_command_with(&ckpt, &dir, &counter, &["10"])),
        "ckpt counter (as nobody)",
        0,
        LINES_BEFORE,
    );
    require_checkpoint(&dir, &counter);
    let mut proc = Proc::spawn(
        as_nobody(restart_command(&dir, &checkpoint)),
        "counter.ckpt (as nobody)",
    );
    let lines = proc.wait_lines(LINES_AFTER as usize, TIMEOUT);
    expect_consecutive(&mut proc, &lines, last + 1);
}

/// Fails unless every directory above `path` can be searched by others and `path` itself is
/// readable and executable by others (needed when tests run the artifacts as nobody).
fn check_world_accessible(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert!(
        mode & 0o005 == 0o005,
        "{} is not readable and executable by other users (mode {mode:o}); \
         the as-nobody test cannot use it",
        path.display()
    );
    for dir in path.ancestors().skip(1) {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} cannot be searched by other users (mode {mode:o}); the as-nobody test \
             cannot reach {}",
            dir.display(),
            path.display()
        );
    }
}

#[test]
fn checkpoint_file_is_a_private_static_executable() {
    let dir = TempDir::new("file-kind");
    let counter = c_counter(&dir);
    count_then_checkpoint(ckpt_command(&dir, &counter, &["10"]), "ckpt counter", 0, 5);
    let checkpoint = require_checkpoint(&dir, &counter);

    let mode = std::fs::metadata(&checkpoint).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode,
        0o700,
        "{} has mode {mode:o}, expected 700 (it holds the whole memory of the program)",
        checkpoint.display()
    );

    let header = std::fs::read(&checkpoint).unwrap();
    assert!(
        header.starts_with(b"\x7fELF\x02\x01"),
        "not a 64-bit little-endian ELF file"
    );

    if !have_program("file") {
        skip(
            Skip::MissingTool,
            "`file` is not installed; not checking its description of the checkpoint",
        );
        return;
    }
    let output = Command::new("file")
        .arg(&checkpoint)
        .output()
        .expect("run file");
    let description = String::from_utf8_lossy(&output.stdout);
    for expected in ["ELF 64-bit LSB executable", "x86-64", "statically linked"] {
        assert!(
            description.contains(expected),
            "`file` says {description:?}; expected it to contain {expected:?}"
        );
    }
    // No interpreter: the file must run on a machine without ckpt or shared libraries.
    assert!(
        !description.contains("interpreter"),
        "`file` says {description:?}: the checkpoint needs a dynamic loader"
    );
}

#[test]
fn checkpoint_is_written_in_the_working_directory() {
    // Start the program by an absolute path from another directory: the file goes to the
    // program's working directory, named after the program.
    let dir = TempDir::new("cwd");
    let work = TempDir::new("cwd-work");
    let counter = c_counter(&dir);
    let last = count_then_checkpoint(
        ckpt_command(&work, &counter, &["10"]),
        "ckpt counter (other cwd)",
        0,
        5,
    );
    let checkpoint = require_checkpoint(&work, &counter);
    assert!(
        !checkpoint_path(&dir, &counter).exists(),
        "the checkpoint was written beside the executable instead of in the working directory"
    );
    expect_resume(&work, &checkpoint, last, "counter.ckpt (other cwd)");
}
