//! Process state beyond memory contents: every register (vector, general, flags, MXCSR, x87
//! control word) across an asynchronous checkpoint, the signal disposition, mask and
//! alternate stack, glibc's cached thread id, a working heap, and a process that made itself
//! not dumpable.

use ckpt_tests::*;

const REGISTERS_C: &str = include_str!("programs/registers.c");
const SIGNALS_C: &str = include_str!("programs/signals.c");
const HEAP_C: &str = include_str!("programs/heap.c");
const UNDUMPABLE_C: &str = include_str!("programs/undumpable.c");

/// Checkpoints `program` (run under ckpt with `args`) after `before` rounds, restarts it and
/// expects `after` more rounds in sequence; then checkpoints the restarted process again and
/// does the same once more, so that two asynchronous checkpoints land at arbitrary points.
#[track_caller]
fn two_cycles(dir: &TempDir, program: &std::path::Path, args: &[&str], before: u64, after: u64) {
    let name = program.file_name().unwrap().to_string_lossy().into_owned();
    let checkpoint = checkpoint_path(dir, program);
    let (_, last) = rounds_then_checkpoint(
        ckpt_command(dir, program, args),
        &format!("ckpt {name}"),
        before,
    );
    assert!(
        checkpoint.is_file(),
        "no checkpoint file {}",
        checkpoint.display()
    );

    let mut restarted = expect_rounds(
        restart_command(dir, &checkpoint),
        &format!("{name}.ckpt (first restart)"),
        last,
        after,
    );
    restarted.checkpoint_and_collect(TIMEOUT);
    restarted.assert_no_bad_lines();
    let last = restarted
        .seen()
        .iter()
        .rev()
        .find_map(|line| number_after(line, "ok "))
        .unwrap();

    let mut again = expect_rounds(
        restart_command(dir, &checkpoint),
        &format!("{name}.ckpt (second restart)"),
        last,
        after,
    );
    again.kill();
}

#[test]
fn registers_survive_an_asynchronous_checkpoint() {
    let dir = TempDir::new("registers");
    let program = compile_c(&dir, "registers", REGISTERS_C, &[]);
    two_cycles(&dir, &program, &[], 5, 10);
}

#[test]
fn signal_state_is_restored() {
    let dir = TempDir::new("signals");
    let program = compile_c(&dir, "signals", SIGNALS_C, &[]);
    // 12 rounds before (the handler has run on the altstack at round 10) and 25 after, so the
    // restarted program raises SIGUSR1 at least twice.
    two_cycles(&dir, &program, &[], 12, 25);
}

#[test]
fn raise_works_after_restart() {
    // glibc's raise() signals the thread id cached in the TCB; after restart it must be the
    // new process's, or raise() fails with ESRCH (or signals somebody else).
    let dir = TempDir::new("raise");
    let program = compile_c(&dir, "signals", SIGNALS_C, &[]);
    two_cycles(&dir, &program, &["raise"], 12, 25);
}

#[test]
fn heap_contents_and_malloc_survive() {
    let dir = TempDir::new("heap");
    let program = compile_c(&dir, "heap", HEAP_C, &[]);
    two_cycles(&dir, &program, &[], 3, 10);
}

#[test]
fn heap_survives_in_a_non_pie_program() {
    // A position-dependent executable has its brk heap right after its data: a different
    // layout from PIE for the restart to reproduce.
    let dir = TempDir::new("heap-no-pie");
    let program = compile_c_no_pie(&dir, "heap", HEAP_C, &[]);
    let (_, last) = rounds_then_checkpoint(ckpt_command(&dir, &program, &[]), "ckpt heap", 3);
    let mut proc = expect_rounds(
        restart_command(&dir, &checkpoint_path(&dir, &program)),
        "heap.ckpt (no-pie)",
        last,
        10,
    );
    proc.kill();
}

#[test]
fn undumpable_program_is_checkpointed_by_an_ordinary_user_and_stays_undumpable() {
    let dir = TempDir::new("undumpable");
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    let program = compile_c(&dir, "undumpable", UNDUMPABLE_C, &[]);
    let (_, last) = rounds_then_checkpoint(
        as_nobody(ckpt_command_with(&ckpt, &dir, &program, &[])),
        "undumpable (as nobody)",
        10,
    );
    let checkpoint = checkpoint_path(&dir, &program);
    let mut restarted = expect_rounds(
        as_nobody(restart_command(&dir, &checkpoint)),
        "undumpable.ckpt (as nobody)",
        last,
        5,
    );
    for line in restarted.seen().to_vec() {
        if !line.ends_with(" dumpable 0") {
            restarted.fail(&format!("dumpable again after the restart: {line:?}"));
        }
    }
    restarted.kill();
}
