//! What glibc, the Rust standard library and the kernel keep for a process, after restarts:
//! glibc's cached thread id, rseq, the robust list, pending signals, interval timers, the
//! heap, the kernel's view of memory, arguments and environment, children, the working
//! directory and umask, system calls cut short by the checkpoint, a deleted executable and
//! shared library, and output that moves from a file to a pipe.
//!
//! The C program `tests/programs/glibc_state.c` and the Rust program
//! `tests/programs/std_state.rs` check themselves after every restart (they notice that their
//! process id changed) and print `ok ITEM` or `BAD ITEM: …`; they also print `tick N` lines,
//! which must go on without a gap or a repeat through every checkpoint. Every restart runs
//! from another directory than the original, with a different environment.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ckpt_tests::*;

const GLIBC_STATE_C: &str = include_str!("programs/glibc_state.c");
const LIBTINY_C: &str = include_str!("programs/libtiny.c");
const STD_STATE_RS: &str = include_str!("programs/std_state.rs");

/// Builds `libtiny.so` and `glibc_state` (linked against it, found through its rpath) in
/// `dir`; returns the program.
fn build_glibc_state(dir: &TempDir) -> PathBuf {
    compile_c(dir, "libtiny.so", LIBTINY_C, &["-shared", "-fPIC"]);
    let lib_dir = dir.path().display().to_string();
    compile_c(
        dir,
        "glibc_state",
        GLIBC_STATE_C,
        &[
            &format!("-L{lib_dir}"),
            "-ltiny",
            &format!("-Wl,-rpath,{lib_dir}"),
        ],
    )
}

/// Follows the `tick N` lines of one program through all its processes: each must be the
/// number after the last.
#[derive(Default)]
struct Ticks {
    last: u64,
}

impl Ticks {
    #[track_caller]
    fn follow(&mut self, proc: &mut Proc, lines: &[String]) {
        for line in lines {
            if let Some(n) = number_after(line, "tick ") {
                if n != self.last + 1 {
                    proc.fail(&format!(
                        "expected \"tick {}\" in an unbroken count, got {line:?}",
                        self.last + 1
                    ));
                }
                self.last = n;
            }
        }
    }
}

/// The value of `CKPT_TEST_MARK` for an original process (restarts get another).
fn original_mark() -> String {
    format!("original-{}", std::process::id())
}

/// A restart of `checkpoint` from `cwd` with an environment of its own, which the restarted
/// program must not see.
fn restart_elsewhere(cwd: &TempDir, checkpoint: &Path) -> Command {
    let mut command = restart_command(cwd, checkpoint);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", cwd.path())
        .env("CKPT_TEST_MARK", "restart")
        .env("CKPT_TEST_RESTART_ONLY", "1");
    command
}

/// What one restarted process printed.
struct Restart {
    lines: Vec<String>,
    stderr: String,
}

/// Two checkpoint/restart cycles of a self-checking program.
struct Cycles {
    restarts: Vec<Restart>,
    /// Where the original ran (and where a restarted process should write its checkpoint).
    original_dir: PathBuf,
    /// Where the restarted process wrote its checkpoint.
    chained_checkpoint_dir: PathBuf,
}

impl Cycles {
    /// The lines (but the ticks) and stderr of every restart, for failure messages.
    fn transcript(&self) -> String {
        let mut text = String::new();
        for (i, restart) in self.restarts.iter().enumerate() {
            text.push_str(&format!("  restart {}:\n", i + 1));
            for line in restart.lines.iter().filter(|l| !l.starts_with("tick ")) {
                text.push_str(&format!("    {line}\n"));
            }
            for line in restart.stderr.lines() {
                text.push_str(&format!("    stderr: {line}\n"));
            }
        }
        text
    }

    /// Fails unless every restart printed exactly one line for each of `items`, and it says
    /// `ok`. Reports every problem at once.
    #[track_caller]
    fn expect_ok(&self, items: &[&str]) {
        let mut problems = Vec::new();
        for (i, restart) in self.restarts.iter().enumerate() {
            for item in items {
                let lines: Vec<&String> = restart
                    .lines
                    .iter()
                    .filter(|line| item_of(line) == Some(item))
                    .collect();
                match lines.as_slice() {
                    [line] if line.starts_with("ok ") => {
                        if line.contains("skipped") {
                            skip(Skip::CannotHere, &format!("restart {}: {line}", i + 1));
                        }
                    }
                    [] => problems.push(format!("restart {}: no line for {item}", i + 1)),
                    lines => {
                        for line in lines {
                            problems.push(format!("restart {}: {line}", i + 1));
                        }
                    }
                }
            }
        }
        assert!(
            problems.is_empty(),
            "after the restarts:\n  {}\neverything the restarts printed but ticks:\n{}",
            problems.join("\n  "),
            self.transcript()
        );
    }
}

/// The item an `ok ITEM …` or `BAD ITEM: …` line is about.
fn item_of(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("ok ")
        .or_else(|| line.strip_prefix("BAD "))?;
    rest.split_whitespace()
        .next()
        .map(|word| word.trim_end_matches(':'))
}

/// Runs `program ARGS` under ckpt in `dir` (with `CKPT_TEST_MARK` set), checkpoints it,
/// calls `after_checkpoint`, restarts it from another directory with another environment,
/// lets it check itself ("checked 1"), checkpoints the restarted process, restarts that once
/// more and lets it check itself again. The ticks must run on through all of it.
#[track_caller]
fn two_cycles(
    dir: &TempDir,
    program: &Path,
    args: &[&str],
    after_checkpoint: impl FnOnce(),
) -> Cycles {
    let name = program.file_name().unwrap().to_string_lossy().into_owned();
    let elsewhere = TempDir::new(&format!("{name}-elsewhere"));
    let checkpoint = checkpoint_path(dir, program);
    let mut ticks = Ticks::default();

    let mut command = ckpt_command(dir, program, args);
    command
        .env("CKPT_TEST_MARK", original_mark())
        .env_remove("CKPT_TEST_RESTART_ONLY");
    let mut proc = Proc::spawn(command, &format!("ckpt {name}"));
    proc.wait_line_matching("the ready line", TIMEOUT, |line| {
        line == "ready" || line.starts_with("BAD")
    });
    proc.assert_no_bad_lines();
    let lines = proc.wait_lines(5, TIMEOUT);
    ticks.follow(&mut proc, &lines);
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    ticks.follow(&mut proc, &rest);
    proc.assert_no_bad_lines();
    expect_checkpoint(&mut proc, &checkpoint);
    after_checkpoint();

    let mut restarts = Vec::new();
    let mut chained_checkpoint_dir = PathBuf::new();
    for cycle in 1..=2 {
        // Run a renamed copy, so that the next checkpoint cannot be mistaken for this one.
        let running = dir.join(format!("restart{cycle}.ckpt"));
        std::fs::rename(&checkpoint, &running).expect("rename the checkpoint");
        let label = format!("{name}.ckpt (restart {cycle}, from another directory)");
        let mut proc = Proc::spawn(restart_elsewhere(&elsewhere, &running), &label);
        let checked = format!("checked {cycle}");
        proc.wait_line_matching(&format!("line {checked:?}"), TIMEOUT, |line| {
            line == checked
        });
        // A few ticks after the checks (all lines are followed below).
        proc.wait_lines(3, TIMEOUT);
        if cycle == 1 {
            proc.checkpoint_and_collect(TIMEOUT);
            // With the working directory restored, the checkpoint lands where the original
            // ran; otherwise in the directory of the restart. Accept both here: the cwd test
            // says which.
            let there = checkpoint_path(&elsewhere, program);
            if !checkpoint.is_file() && there.is_file() {
                std::fs::rename(&there, &checkpoint).expect("move the checkpoint");
                chained_checkpoint_dir = elsewhere.path().to_path_buf();
            } else {
                expect_checkpoint(&mut proc, &checkpoint);
                chained_checkpoint_dir = dir.path().to_path_buf();
            }
        } else {
            proc.kill();
        }
        let lines = proc.seen().to_vec();
        ticks.follow(&mut proc, &lines);
        if !lines
            .iter()
            .any(|line| *line == format!("restarted {cycle}"))
        {
            proc.fail(&format!("no \"restarted {cycle}\" line"));
        }
        restarts.push(Restart {
            lines,
            stderr: proc.stderr(),
        });
    }
    Cycles {
        restarts,
        original_dir: dir.path().to_path_buf(),
        chained_checkpoint_dir,
    }
}

/// The two cycles of `glibc_state state`, run once for all the tests below (which look at
/// different items). Its executable and `libtiny.so` are deleted after the first checkpoint.
fn glibc_state() -> &'static Cycles {
    static CYCLES: OnceLock<Cycles> = OnceLock::new();
    CYCLES.get_or_init(|| {
        let dir = TempDir::new("glibc-state");
        let program = build_glibc_state(&dir);
        let library = dir.join("libtiny.so");
        two_cycles(&dir, &program, &["state"], || {
            std::fs::remove_file(&program).expect("remove the executable");
            std::fs::remove_file(&library).expect("remove libtiny.so");
        })
    })
}

#[test]
fn glibc_state_checks_pass_without_ckpt() {
    let dir = TempDir::new("glibc-state-plain");
    let program = build_glibc_state(&dir);
    check_without_ckpt(&dir, &program, "glibc_state check (no ckpt)");
}

/// Runs `program check` without libckpt and expects it to pass: the checks themselves hold
/// before any checkpoint is involved.
fn check_without_ckpt(dir: &TempDir, program: &Path, label: &str) -> Proc {
    let mut command = Command::new(program);
    command
        .arg("check")
        .current_dir(dir.path())
        .env("CKPT_TEST_MARK", original_mark())
        .env_remove("LD_PRELOAD")
        .env_remove("CKPT_TEST_RESTART_ONLY");
    let mut proc = Proc::spawn(command, label);
    proc.wait_line("checked 0");
    proc.wait_success(TIMEOUT);
    proc.assert_no_bad_lines();
    proc
}

#[test]
fn glibc_thread_id_is_the_new_one() {
    glibc_state().expect_ok(&[
        "raise",
        "pthread_kill",
        "errorcheck-mutex",
        "recursive-mutex",
        "tid",
    ]);
}

#[test]
fn rseq_is_registered_again() {
    glibc_state().expect_ok(&["rseq"]);
}

#[test]
fn robust_list_is_registered_again() {
    glibc_state().expect_ok(&["robust-list"]);
}

#[test]
fn pending_signal_is_delivered_after_restart() {
    glibc_state().expect_ok(&["pending-signal"]);
}

#[test]
fn interval_timers_and_alarm_keep_running() {
    let cycles = glibc_state();
    cycles.expect_ok(&["itimer-virtual", "itimer-prof", "alarm"]);
    for restart in &cycles.restarts {
        if let Some(line) = restart.lines.iter().find(|l| l.starts_with("BAD timers")) {
            panic!("{line}\n{}", cycles.transcript());
        }
    }
}

#[test]
fn heap_and_malloc_work_after_restart() {
    glibc_state().expect_ok(&["heap-contents", "heap-churn", "calloc"]);
}

#[test]
fn kernel_view_of_memory_and_arguments() {
    glibc_state().expect_ok(&[
        "brk",
        "heap-map",
        "stack-map",
        "cmdline",
        "args",
        "thread-stack",
    ]);
}

#[test]
fn original_environment_is_seen() {
    glibc_state().expect_ok(&["environ"]);
}

#[test]
fn children_fork_spawn_and_exec() {
    let cycles = glibc_state();
    cycles.expect_ok(&["fork", "system", "posix_spawn", "exec"]);
    for (i, restart) in cycles.restarts.iter().enumerate() {
        let marker = format!("exec-marker {}", i + 1);
        let ok_exec = restart.lines.iter().position(|line| line == "ok exec");
        let printed = restart.lines.iter().position(|line| *line == marker);
        assert!(
            matches!((printed, ok_exec), (Some(p), Some(o)) if p < o),
            "restart {}: the exec'ed /bin/echo did not print {marker:?} before \"ok exec\"\n{}",
            i + 1,
            cycles.transcript()
        );
    }
}

#[test]
fn working_directory_and_umask_are_restored() {
    let cycles = glibc_state();
    let expected_cwd = format!("cwd {}", cycles.original_dir.display());
    for (i, restart) in cycles.restarts.iter().enumerate() {
        for expected in [expected_cwd.as_str(), "umask 027"] {
            assert!(
                restart.lines.iter().any(|line| line == expected),
                "restart {} (run from another directory, umask {:03o}): expected a line \
                 {expected:?}\n{}",
                i + 1,
                current_umask(),
                cycles.transcript()
            );
        }
    }
    cycles.expect_ok(&["cwd", "umask"]);
    assert_eq!(
        cycles.chained_checkpoint_dir, cycles.original_dir,
        "the restarted program wrote its checkpoint in the directory it was restarted from"
    );
}

/// This test process's umask (which a restarted program would have without a restore).
fn current_umask() -> u32 {
    // SAFETY: umask cannot fail; it is set back at once. (Another test thread creating a
    // file in between would see 0o022 either way: the tests do not change it.)
    let mask = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(mask) };
    mask
}

#[test]
fn deleted_executable_and_shared_library() {
    // glibc_state's executable and libtiny.so are gone before the first restart.
    glibc_state().expect_ok(&["libtiny"]);
}

#[test]
fn every_line_after_restart_is_known() {
    let cycles = glibc_state();
    for (i, restart) in cycles.restarts.iter().enumerate() {
        for line in &restart.lines {
            let known = [
                "tick ",
                "restarted ",
                "checked ",
                "cwd ",
                "umask ",
                "exec-marker ",
            ]
            .iter()
            .any(|prefix| line.starts_with(prefix))
                || item_of(line).is_some();
            assert!(
                known,
                "restart {}: unexpected line {line:?}\n{}",
                i + 1,
                cycles.transcript()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output redirected; system calls cut short by the checkpoint

/// Polls `path` until a line satisfies `predicate`; returns all its lines. The program writes
/// to the file, not to the test, so this is the only way to follow it.
#[track_caller]
fn wait_file_line(proc: &mut Proc, path: &Path, predicate: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // Only whole lines count.
        let lines: Vec<String> = text
            .split_inclusive('\n')
            .filter_map(|line| line.strip_suffix('\n'))
            .map(str::to_owned)
            .collect();
        if lines.iter().any(|line| predicate(line)) {
            return lines;
        }
        if Instant::now() >= deadline {
            proc.fail(&format!(
                "{} never had the line waited for; it holds:\n{text}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn output_moves_from_a_file_to_a_pipe() {
    let dir = TempDir::new("redirect");
    let program = build_glibc_state(&dir);
    let out = dir.join("out.txt");
    // `sh` opens the file and execs ckpt, which execs the program: one process throughout.
    let inner = ckpt_command(&dir, &program, &["state"]);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("exec \"$0\" \"$@\" > out.txt")
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(dir.path());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.env("CKPT_TEST_MARK", original_mark());
    let mut proc = Proc::spawn(command, "ckpt glibc_state > out.txt");
    wait_file_line(&mut proc, &out, |line| line == "tick 5");
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let written = wait_file_line(&mut proc, &out, |line| line.starts_with("tick "));
    let mut ticks = Ticks::default();
    ticks.follow(&mut proc, &written);
    if let Some(bad) = written.iter().find(|line| line.starts_with("BAD")) {
        proc.fail(&format!("out.txt has {bad:?}"));
    }
    let checkpoint = checkpoint_path(&dir, &program);
    expect_checkpoint(&mut proc, &checkpoint);

    // Restart with stdout a pipe to the test; checkpoint that and restart it once more.
    for cycle in 1..=2 {
        let running = dir.join(format!("restart{cycle}.ckpt"));
        std::fs::rename(&checkpoint, &running).expect("rename the checkpoint");
        let mut restarted = Proc::spawn(
            restart_command(&dir, &running),
            &format!("glibc_state.ckpt (restart {cycle}, stdout a pipe)"),
        );
        restarted.wait_line(&format!("checked {cycle}"));
        let more = restarted.wait_lines(5, TIMEOUT);
        if !more.iter().any(|line| line.starts_with("tick ")) {
            restarted.fail("no ticks after the checks");
        }
        if cycle == 1 {
            restarted.checkpoint_and_collect(TIMEOUT);
            expect_checkpoint(&mut restarted, &checkpoint);
        } else {
            restarted.kill();
        }
        let lines = restarted.seen().to_vec();
        ticks.follow(&mut restarted, &lines);
    }
    let after = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        after.lines().count(),
        written.len(),
        "a restarted program wrote to the original's file: {after}"
    );
}

/// Writes one line to a process's stdin.
#[track_caller]
fn feed(proc: &mut Proc, stdin: &mut std::fs::File, line: &str) {
    // One write: `writeln!` on an unbuffered file may write the line and its newline
    // separately, and the program would then read two lines.
    if let Err(e) = stdin.write_all(format!("{line}\n").as_bytes()) {
        proc.fail(&format!("cannot write {line:?} to its stdin: {e}"));
    }
}

/// Waits until `proc` is blocked in one of `syscalls`, checkpoints it there, and expects
/// it to print nothing more and to leave `checkpoint`.
#[track_caller]
fn checkpoint_while_blocked(proc: &mut Proc, syscalls: &[i64], checkpoint: &Path) {
    proc.wait_blocked_in(syscalls, TIMEOUT);
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    if !rest.is_empty() {
        proc.fail(&format!("printed {rest:?} when checkpointed"));
    }
    expect_checkpoint(proc, checkpoint);
}

/// The next line, which must be `expected`.
#[track_caller]
fn expect_next(proc: &mut Proc, expected: &str) {
    let line = proc.wait_lines(1, TIMEOUT).remove(0);
    if line != expected {
        proc.fail(&format!("expected {expected:?}, got {line:?}"));
    }
}

#[test]
fn read_from_stdin_goes_on_after_restart() {
    let dir = TempDir::new("blocked-read");
    let program = build_glibc_state(&dir);
    let checkpoint = checkpoint_path(&dir, &program);
    let command = ckpt_command(&dir, &program, &["read"]);
    let (mut proc, mut stdin) = Proc::spawn_with_stdin(command, "ckpt glibc_state read");
    proc.wait_line("reading");
    feed(&mut proc, &mut stdin, "first");
    expect_next(&mut proc, "got first");

    for (cycle, line) in [(1, "second"), (2, "third")] {
        // Checkpoint it while it sits in read(), then take its input away.
        checkpoint_while_blocked(&mut proc, &[libc::SYS_read], &checkpoint);
        drop(stdin);
        let running = dir.join(format!("restart{cycle}.ckpt"));
        std::fs::rename(&checkpoint, &running).unwrap();

        let label = format!("glibc_state.ckpt (restart {cycle}, new stdin)");
        (proc, stdin) = Proc::spawn_with_stdin(restart_command(&dir, &running), &label);
        feed(&mut proc, &mut stdin, line);
        expect_next(&mut proc, &format!("got {line}"));
    }
    drop(stdin);
    expect_next(&mut proc, "eof");
    proc.wait_success(TIMEOUT);
}

#[test]
fn read_from_a_terminal_goes_on_after_restart() {
    let dir = TempDir::new("blocked-tty-read");
    let program = build_glibc_state(&dir);
    let checkpoint = checkpoint_path(&dir, &program);
    let command = ckpt_command(&dir, &program, &["read"]);
    let (mut proc, mut tty) = Proc::spawn_with_terminal(command, "ckpt glibc_state read (tty)");
    proc.wait_line("reading");
    feed(&mut proc, &mut tty, "first");
    expect_next(&mut proc, "got first");
    checkpoint_while_blocked(&mut proc, &[libc::SYS_read], &checkpoint);
    drop(tty);
    // Restarted on another terminal: the interrupted read() goes on there.
    let (mut proc, mut tty) = Proc::spawn_with_terminal(
        restart_command(&dir, &checkpoint),
        "glibc_state.ckpt (new terminal)",
    );
    feed(&mut proc, &mut tty, "second");
    expect_next(&mut proc, "got second");
    proc.kill();
}

#[test]
fn select_waits_again_after_restart() {
    let dir = TempDir::new("blocked-select");
    let program = build_glibc_state(&dir);
    let checkpoint = checkpoint_path(&dir, &program);
    let command = ckpt_command(&dir, &program, &["select"]);
    let (mut proc, stdin) = Proc::spawn_with_stdin(command, "ckpt glibc_state select");
    proc.wait_line("selecting");
    checkpoint_while_blocked(
        &mut proc,
        &[libc::SYS_select, libc::SYS_pselect6],
        &checkpoint,
    );
    drop(stdin);
    let (mut proc, mut stdin) = Proc::spawn_with_stdin(
        restart_command(&dir, &checkpoint),
        "glibc_state.ckpt (select)",
    );
    // The interrupted select() returns EINTR in the restarted process (as after any handled
    // signal); the program waits again, on the new stdin.
    feed(&mut proc, &mut stdin, "after");
    let line = proc.wait_line_matching("the line read after the restart", TIMEOUT, |l| {
        l.starts_with("got ") || l.starts_with("BAD")
    });
    if line != "got after" {
        proc.fail(&format!("expected \"got after\", got {line:?}"));
    }
    drop(stdin);
    proc.wait_line("eof");
    proc.wait_success(TIMEOUT);
}

#[test]
fn sleep_finishes_after_restart() {
    let dir = TempDir::new("blocked-sleep");
    let program = build_glibc_state(&dir);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut proc = Proc::spawn(
        ckpt_command(&dir, &program, &["sleep"]),
        "ckpt glibc_state sleep",
    );
    proc.wait_line("sleeping 1");
    // Round 1 sleeps with sleep(), round 2 with nanosleep(): checkpoint each while it sleeps.
    for cycle in 1..=2 {
        checkpoint_while_blocked(
            &mut proc,
            &[libc::SYS_nanosleep, libc::SYS_clock_nanosleep],
            &checkpoint,
        );
        let running = dir.join(format!("restart{cycle}.ckpt"));
        std::fs::rename(&checkpoint, &running).unwrap();

        let label = format!("glibc_state.ckpt (restart {cycle}, in sleep)");
        proc = Proc::spawn(restart_command(&dir, &running), &label);
        // It may say that the sleep was cut short; then it must sleep the rest and go on.
        let slept = format!("slept {cycle}");
        proc.wait_line_matching(&format!("line {slept:?}"), TIMEOUT, |line| {
            line == slept || line.starts_with("BAD")
        });
        proc.assert_no_bad_lines();
        expect_next(&mut proc, &format!("sleeping {}", cycle + 1));
    }
    proc.wait_line("slept 3");
    expect_next(&mut proc, "done");
    proc.wait_success(TIMEOUT);
    proc.assert_no_bad_lines();
    let unexpected = proc.seen().iter().find(|line| {
        !(line.starts_with("sleep")
            || line.starts_with("slept ")
            || line.starts_with("nanosleep interrupted")
            || *line == "done")
    });
    if let Some(line) = unexpected.cloned() {
        proc.fail(&format!("unexpected line {line:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// A Rust program using std

const STD_ITEMS: &[&str] = &[
    "maps", "format", "instant", "command", "args", "env", "thread",
];

#[test]
fn std_state_checks_pass_without_ckpt() {
    let dir = TempDir::new("std-state-plain");
    let program = compile_rust(&dir, "std_state", STD_STATE_RS);
    let mut proc = check_without_ckpt(&dir, &program, "std_state check (no ckpt)");
    for item in STD_ITEMS {
        if !proc.seen().iter().any(|line| *line == format!("ok {item}")) {
            proc.fail(&format!("no \"ok {item}\" line"));
        }
    }
}

#[test]
fn rust_std_state_survives_two_cycles() {
    let dir = TempDir::new("std-state");
    let program = compile_rust(&dir, "std_state", STD_STATE_RS);
    let cycles = two_cycles(&dir, &program, &["state", "alpha", "two words", "β"], || {});
    cycles.expect_ok(STD_ITEMS);
}
