//! Signals the program takes away (issue 10, item 6): the checkpoint signal and signal 63
//! belong to ckpt. A program that installs its own SIGTSTP handler (with `sigaction`,
//! `signal()`, or from Python), blocks every signal, or catches every signal like `top`, is
//! still checkpointed, and still sees its own settings when it asks for them; a handler
//! replaced past the wrappers with a raw system call is reported at the next checkpoint and
//! put back; and moving the checkpoint signal with `ckpt_config` hands the program's recorded
//! wishes to the kernel and back.
//!
//! The programs are `tests/programs/owned.c` (one mode per case) and
//! `tests/programs/owned_switch.c` (linked with the API).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ckpt_tests::*;

const OWNED_C: &str = include_str!("programs/owned.c");
const OWNED_SWITCH_C: &str = include_str!("programs/owned_switch.c");

/// A Python program that installs its own SIGTSTP handler, then counts, printing whether
/// the handler is still its own.
const OWN_HANDLER_PY: &str = r#"
import signal, time

def own(signum, frame):
    print("BAD own handler ran", flush=True)

signal.signal(signal.SIGTSTP, own)
print("ready", flush=True)
n = 0
while True:
    n += 1
    mine = signal.getsignal(signal.SIGTSTP) is own
    print(f"ok {n} handler={'own' if mine else 'other'}", flush=True)
    time.sleep(0.01)
"#;

/// Rounds read before each checkpoint and after each restart.
const ROUNDS: u64 = 5;

fn owned_program(dir: &TempDir) -> PathBuf {
    compile_c(dir, "owned", OWNED_C, &["-pthread"])
}

/// `ckpt checkpoint PID`, with a bounded wait.
fn ckpt_checkpoint(dir: &TempDir, pid: i32) -> Finished {
    let pid = pid.to_string();
    run_to_end(
        ckpt_tool(dir, &["checkpoint", &pid, "--timeout", "20"]),
        &format!("ckpt checkpoint {pid}"),
        Duration::from_secs(30),
    )
}

/// Fails unless every `ok` line seen so far ends with `suffix`.
#[track_caller]
fn expect_ok_lines_end_with(proc: &mut Proc, suffix: &str) {
    let wrong = proc
        .seen()
        .iter()
        .find(|line| line.starts_with("ok ") && !line.ends_with(suffix))
        .cloned();
    if let Some(line) = wrong {
        proc.fail(&format!(
            "expected every line to end with {suffix:?}, got {line:?}"
        ));
    }
}

/// Runs `owned MODE` under ckpt, checkpoints it with SIGTSTP, restarts it, and checks that
/// the program saw `suffix` on every line, before the checkpoint and after the restart.
#[track_caller]
fn checkpoint_and_restart_mode(mode: &str, suffix: &str) {
    let dir = TempDir::new(&format!("owned-{mode}"));
    let program = owned_program(&dir);
    let label = format!("ckpt owned {mode}");
    let (mut proc, last) =
        rounds_then_checkpoint(ckpt_command(&dir, &program, &[mode]), &label, ROUNDS);
    expect_ok_lines_end_with(&mut proc, suffix);
    let checkpoint = checkpoint_path(&dir, &program);
    expect_checkpoint(&mut proc, &checkpoint);

    let mut restarted = expect_rounds(
        restart_command(&dir, &checkpoint),
        &format!("owned {mode} (restarted)"),
        last,
        ROUNDS,
    );
    expect_ok_lines_end_with(&mut restarted, suffix);
    restarted.kill();
}

#[test]
fn own_sigtstp_handler_with_sigaction_is_recorded_and_checkpoint_happens() {
    checkpoint_and_restart_mode("sigaction", " handler=own");
}

#[test]
fn own_sigtstp_handler_with_signal_is_recorded_and_checkpoint_happens() {
    checkpoint_and_restart_mode("signal", " handler=own");
}

#[test]
fn blocking_every_signal_with_sigprocmask_leaves_the_checkpoint_signal() {
    checkpoint_and_restart_mode("block", " blocked=all");
}

#[test]
fn blocking_every_signal_with_pthread_sigmask_leaves_the_checkpoint_signal() {
    checkpoint_and_restart_mode("pthread_block", " blocked=all");
}

#[test]
fn a_mask_inherited_across_exec_does_not_block_the_checkpoint_signal() {
    let dir = TempDir::new("owned-inherited");
    let program = owned_program(&dir);
    let mut command = ckpt_command(&dir, &program, &["report"]);
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // sigprocmask on a local set, which is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTSTP);
            libc::sigaddset(&mut set, 63);
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // ckpt's signals come unblocked, the program is told they are blocked (SIGUSR2 is not).
    let (mut proc, last) = rounds_then_checkpoint(command, "ckpt owned report", ROUNDS);
    expect_ok_lines_end_with(&mut proc, " blocked=-usr2");
    let checkpoint = checkpoint_path(&dir, &program);
    expect_checkpoint(&mut proc, &checkpoint);
    let mut restarted = expect_rounds(
        restart_command(&dir, &checkpoint),
        "owned report (restarted)",
        last,
        ROUNDS,
    );
    expect_ok_lines_end_with(&mut restarted, " blocked=-usr2");
    restarted.kill();
}

#[test]
fn waiting_with_a_full_mask_or_for_every_signal_leaves_the_checkpoint_signal() {
    // Each wait and the x86-64 system calls it blocks in.
    let waits: &[(&str, &[i64])] = &[
        ("sigsuspend", &[130]),
        ("pselect", &[270]),
        ("ppoll", &[271]),
        ("epoll_pwait", &[281]),
        ("epoll_pwait2", &[441]),
        ("sigwait", &[128]),
    ];
    let dir = TempDir::new("owned-wait");
    let program = owned_program(&dir);
    let checkpoint = checkpoint_path(&dir, &program);
    for &(kind, syscalls) in waits {
        let label = format!("ckpt owned wait {kind}");
        let command = ckpt_command(&dir, &program, &["wait", kind]);
        let mut proc = Proc::spawn(command, &label);
        proc.wait_line("ready");
        proc.wait_blocked_in(syscalls, TIMEOUT);
        let rest = proc.checkpoint_and_collect(TIMEOUT);
        if !rest.is_empty() {
            proc.fail(&format!(
                "expected no lines: the program's wait never ends, got {rest:?}"
            ));
        }
        expect_checkpoint(&mut proc, &checkpoint);
        // The restarted program comes back into its wait, interrupted (sigwait, which glibc
        // restarts, says nothing), then waits again (not on an epoll descriptor, which the
        // checkpoint left closed).
        let mut restarted = Proc::spawn(
            restart_command(&dir, &checkpoint),
            &format!("owned wait {kind} (restarted)"),
        );
        if kind != "sigwait" {
            restarted.wait_line("woke 1");
        }
        if !kind.starts_with("epoll") {
            restarted.wait_blocked_in(syscalls, TIMEOUT);
        }
        restarted.kill();
        std::fs::remove_file(&checkpoint).expect("remove the checkpoint");
    }
}

#[test]
fn a_program_that_catches_every_signal_survives_ckpt_checkpoint() {
    let dir = TempDir::new("owned-fatal");
    let program = owned_program(&dir);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &["fatal"]), "ckpt owned fatal");
    proc.wait_line("ready");
    proc.wait_line("ok 3");
    let result = ckpt_checkpoint(&dir, proc.pid());
    if result.status.code() != Some(0) {
        result.fail("ckpt checkpoint", "expected success");
    }
    // The program goes on counting: its fatal handler never saw signal 63.
    let after = proc.wait_lines(3, TIMEOUT);
    if let Some(line) = after.iter().find(|line| !line.starts_with("ok ")) {
        proc.fail(&format!("expected the count to go on, got {line:?}"));
    }
    let checkpoint = checkpoint_path(&dir, &program);
    if !checkpoint.is_file() {
        proc.fail("ckpt checkpoint succeeded but left no checkpoint file");
    }
    // And SIGTSTP still checkpoints it, past its handler for SIGTSTP.
    std::fs::remove_file(&checkpoint).expect("remove the first checkpoint");
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    if let Some(line) = rest.iter().find(|line| !line.starts_with("ok ")) {
        proc.fail(&format!(
            "expected only counting before the exit, got {line:?}"
        ));
    }
    expect_checkpoint(&mut proc, &checkpoint);
    let last = proc.last_number_after("ok ");
    let mut restarted = expect_rounds(
        restart_command(&dir, &checkpoint),
        "owned fatal (restarted)",
        last,
        ROUNDS,
    );
    restarted.kill();
}

#[test]
fn python_with_its_own_sigtstp_handler_is_checkpointed() {
    let Some(python) = python3() else { return };
    let dir = TempDir::new("owned-python");
    let (mut proc, last) = rounds_then_checkpoint(
        ckpt_command(&dir, &python, &["-c", OWN_HANDLER_PY]),
        "ckpt python3 (own SIGTSTP handler)",
        ROUNDS,
    );
    expect_ok_lines_end_with(&mut proc, " handler=own");
    let checkpoint = checkpoint_path(&dir, &python);
    expect_checkpoint(&mut proc, &checkpoint);
    let mut restarted = expect_rounds(
        restart_command(&dir, &checkpoint),
        "python3 (restarted)",
        last,
        ROUNDS,
    );
    expect_ok_lines_end_with(&mut restarted, " handler=own");
    restarted.kill();
}

/// Polls the process's stderr until a line satisfies `predicate`; fails after `TIMEOUT`.
#[track_caller]
fn wait_stderr_line(proc: &mut Proc, what: &str, predicate: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(line) = proc.stderr().lines().find(|line| predicate(line)) {
            return line.to_owned();
        }
        if Instant::now() > deadline {
            proc.fail(&format!("no {what} on stderr within {TIMEOUT:?}"));
        }
        // Reading stdout keeps the program from blocking on a full pipe while we look.
        proc.wait_lines(1, TIMEOUT);
    }
}

#[test]
fn a_handler_replaced_by_a_raw_system_call_is_reported_and_put_back() {
    let dir = TempDir::new("owned-raw");
    let program = owned_program(&dir);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &["raw"]), "ckpt owned raw");
    proc.wait_line("ready");
    proc.wait_line("ok 3");
    // The raw rt_sigaction set SIGTSTP to SIG_IGN behind ckpt's back; the next checkpoint
    // says so and puts ckpt's handler back.
    let result = ckpt_checkpoint(&dir, proc.pid());
    if result.status.code() != Some(0) {
        result.fail("ckpt checkpoint", "expected success");
    }
    let warning = wait_stderr_line(&mut proc, "warning about signal 20", |line| {
        line.starts_with("ckpt: ") && line.contains("signal 20 (SIGTSTP)")
    });
    let warnings = proc
        .stderr()
        .lines()
        .filter(|line| line.contains("signal 20"))
        .count();
    if warnings != 1 {
        proc.fail(&format!(
            "expected one warning line, got {warnings}: {warning:?}"
        ));
    }
    std::fs::remove_file(&checkpoint).expect("remove the requested checkpoint");
    // ^Z checkpoints again.
    proc.checkpoint_and_collect(TIMEOUT);
    expect_checkpoint(&mut proc, &checkpoint);
}

#[test]
fn moving_the_checkpoint_signal_hands_the_programs_wishes_to_the_kernel_and_back() {
    let dir = TempDir::new("owned-switch");
    let program = compile_c_with_api(&dir, "owned_switch", OWNED_SWITCH_C);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut command = direct_command(&dir, &program, &[]);
    with_library_path(&mut command).env("CKPT_CONTINUE", "1");
    let mut proc = Proc::spawn(command, "owned_switch");

    // SIGTSTP belongs to ckpt, though the program installed its own handler and sees it.
    expect_lines(
        &mut proc,
        &["tstp=own usr1=own usr1-blocked=yes", "phase 1"],
    );
    proc.signal(libc::SIGTSTP);
    expect_lines(&mut proc, &["post 1"]);
    // Now SIGUSR1 is ckpt's, even though the program blocked it; SIGTSTP runs the
    // program's own handler, which the kernel has now.
    expect_lines(
        &mut proc,
        &["tstp=own usr1=own usr1-blocked=yes", "phase 2"],
    );
    std::fs::remove_file(&checkpoint).expect("remove the first checkpoint");
    proc.signal(libc::SIGTSTP);
    expect_lines(&mut proc, &["own tstp 1"]);
    proc.signal(libc::SIGUSR1);
    expect_lines(&mut proc, &["post 2"]);
    if !checkpoint.is_file() {
        proc.fail("SIGUSR1 in phase 2 did not write a checkpoint");
    }
    // Back to SIGTSTP: SIGUSR1 is really blocked again (it stays pending until the program
    // unblocks it, then its own handler runs).
    expect_lines(
        &mut proc,
        &["tstp=own usr1=own usr1-blocked=yes", "phase 3"],
    );
    proc.signal(libc::SIGUSR1);
    expect_lines(&mut proc, &["usr1 pending", "own usr1 1", "phase 4"]);
    proc.wait_line("tick 2");
    proc.kill();
}

#[test]
fn signal_calls_on_ckpts_signals_answer_as_on_any_other() {
    let dir = TempDir::new("owned-compare");
    let program = owned_program(&dir);
    let mut proc = Proc::spawn(
        ckpt_command(&dir, &program, &["compare"]),
        "ckpt owned compare",
    );
    let lines = proc.wait_lines(4, TIMEOUT);
    let result = |label: &str| -> String {
        let prefix = format!("compare {label}: ");
        lines
            .iter()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    for (owned, other) in [("TSTP", "USR2"), ("63", "62")] {
        let (owned_result, other_result) = (result(owned), result(other));
        if owned_result.is_empty() || owned_result != other_result {
            proc.fail(&format!(
                "signal {owned} (ckpt's) answered otherwise than signal {other}:\n  \
                 {owned}: {owned_result}\n  {other}: {other_result}"
            ));
        }
    }
    // After all that, SIGTSTP still checkpoints the program.
    proc.wait_line("ready");
    proc.wait_line("ok 3");
    proc.checkpoint_and_collect(TIMEOUT);
    expect_checkpoint(&mut proc, &checkpoint_path(&dir, &program));
}

#[track_caller]
fn expect_lines(proc: &mut Proc, expected: &[&str]) {
    let lines = proc.wait_lines(expected.len(), TIMEOUT);
    if lines != expected {
        proc.fail(&format!("expected {expected:?}, got {lines:?}"));
    }
}
