//! Real interpreters survive restarts: python3 (holding a dict and a list of 200,000 entries
//! each), perl, bash (builtins only), gawk and mawk — each through a checkpoint, a restart, a
//! checkpoint of the restarted process and a second restart, counting on without a gap or a
//! repeat and with its data intact; and sqlite3 with an in-memory database, fed statements on
//! a pipe, checkpointed while it waits for more, and restarted with a new pipe.
//!
//! A test whose interpreter is not installed says so and passes, except under `CI=true`, where
//! it fails (`.ci/run` installs them).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ckpt_tests::*;

const LOOP_PY: &str = include_str!("programs/loop.py");
const LOOP_PL: &str = include_str!("programs/loop.pl");
const LOOP_SH: &str = include_str!("programs/loop.sh");
const LOOP_AWK: &str = include_str!("programs/loop.awk");

/// The absolute path of `name` on PATH, if it is there.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The interpreter `name`, or `None` after saying that the test is skipped.
fn interpreter(name: &str) -> Option<PathBuf> {
    let found = find_program(name);
    if found.is_none() {
        skip(Skip::MissingTool, &format!("{name} is not installed"));
    }
    found
}

/// What a counting interpreter printed so far, across its processes.
struct Count {
    /// The last `ok N`.
    last: u64,
    /// The checksum of its data from the `ready` line.
    checksum: String,
    /// How many checksum lines (`sum X`, `restarted X`) the current process printed.
    checksums_seen: usize,
}

impl Count {
    /// Checks `lines`: `ok N` must count on from the last; `sum X` and `restarted X` must
    /// repeat the checksum of `ready`; nothing else may appear.
    #[track_caller]
    fn follow(&mut self, proc: &mut Proc, lines: &[String]) {
        for line in lines {
            if let Some(n) = number_after(line, "ok ") {
                if n != self.last + 1 {
                    proc.fail(&format!(
                        "expected \"ok {}\" in an unbroken count, got {line:?}",
                        self.last + 1
                    ));
                }
                self.last = n;
            } else if let Some(sum) = line
                .strip_prefix("sum ")
                .or_else(|| line.strip_prefix("restarted "))
            {
                if sum != self.checksum {
                    proc.fail(&format!(
                        "the data changed: checksum {sum} in {line:?}, {} before",
                        self.checksum
                    ));
                }
                self.checksums_seen += 1;
            } else {
                proc.fail(&format!("unexpected line {line:?}"));
            }
        }
    }

    /// Reads lines until at least `count` arrived and, when `with_checksum`, one of them was
    /// a checksum.
    #[track_caller]
    fn read(&mut self, proc: &mut Proc, count: usize, with_checksum: bool) {
        self.checksums_seen = 0;
        let deadline = Instant::now() + TIMEOUT;
        let mut read = 0;
        while read < count || (with_checksum && self.checksums_seen == 0) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = proc.wait_lines(1, left);
            self.follow(proc, &line);
            read += 1;
        }
    }
}

/// Runs `interpreter ARGS` under ckpt (a program that prints `ready CHECKSUM`, then `ok N`
/// and checksum lines), checkpoints it, restarts it, checkpoints the restarted process,
/// restarts that, and checks the count and the checksums all along. When
/// `says_restarted`, every restarted process must print `restarted CHECKSUM`.
#[track_caller]
fn count_through_two_cycles(interpreter: &Path, args: &[&str], label: &str, says_restarted: bool) {
    let dir = TempDir::new(label);
    let checkpoint = checkpoint_path(&dir, interpreter);
    let mut command = ckpt_command(&dir, interpreter, args);
    command.env_remove("BASH_ENV").env_remove("ENV");
    let mut proc = Proc::spawn(command, &format!("ckpt {label}"));
    let ready = proc.wait_line_matching("the ready line", TIMEOUT, |line| {
        line.starts_with("ready ") || line.starts_with("BAD")
    });
    proc.assert_no_bad_lines();
    let mut count = Count {
        last: 0,
        checksum: ready["ready ".len()..].to_owned(),
        checksums_seen: 0,
    };
    count.read(&mut proc, 10, false);
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    count.follow(&mut proc, &rest);
    expect_checkpoint(&mut proc, &checkpoint);

    for cycle in 1..=2 {
        // Run a renamed copy, so that the next checkpoint cannot be mistaken for this one.
        let running = dir.join(format!("restart{cycle}.ckpt"));
        std::fs::rename(&checkpoint, &running).expect("rename the checkpoint");
        let mut proc = Proc::spawn(
            restart_command(&dir, &running),
            &format!("{label} (restart {cycle})"),
        );
        // Every restarted process shows that its data is intact.
        count.read(&mut proc, 10, true);
        if says_restarted && !proc.seen().iter().any(|l| l.starts_with("restarted ")) {
            proc.fail("no \"restarted CHECKSUM\" line: the data was not verified");
        }
        if cycle == 1 {
            let rest = proc.checkpoint_and_collect(TIMEOUT);
            count.follow(&mut proc, &rest);
            expect_checkpoint(&mut proc, &checkpoint);
        } else {
            proc.kill();
        }
    }
}

#[test]
fn python3_with_a_large_dict() {
    let Some(python) = python3() else { return };
    count_through_two_cycles(&python, &["-c", LOOP_PY], "python3", true);
}

#[test]
fn perl_loop() {
    let Some(perl) = interpreter("perl") else {
        return;
    };
    count_through_two_cycles(&perl, &["-e", LOOP_PL], "perl", false);
}

#[test]
fn bash_builtin_loop() {
    let Some(bash) = interpreter("bash") else {
        return;
    };
    count_through_two_cycles(&bash, &["-c", LOOP_SH], "bash", false);
}

#[test]
fn gawk_loop() {
    let Some(gawk) = interpreter("gawk") else {
        return;
    };
    count_through_two_cycles(&gawk, &[LOOP_AWK], "gawk", false);
}

#[test]
fn mawk_loop() {
    let Some(mawk) = interpreter("mawk") else {
        return;
    };
    count_through_two_cycles(&mawk, &[LOOP_AWK], "mawk", false);
}

// ---------------------------------------------------------------------------------------------
// sqlite3

/// Rows the first statements insert.
const ROWS: u64 = 10_000;

/// Writes SQL to sqlite3's stdin.
#[track_caller]
fn feed(proc: &mut Proc, stdin: &mut std::fs::File, sql: &str) {
    // One write (`writeln!` may split the text and its newline into two).
    if let Err(e) = stdin.write_all(format!("{sql}\n").as_bytes()) {
        proc.fail(&format!("cannot write {sql:?} to its stdin: {e}"));
    }
}

/// The next line, which must be `expected`.
#[track_caller]
fn expect_next(proc: &mut Proc, expected: &str) {
    let line = proc.wait_lines(1, TIMEOUT).remove(0);
    if line != expected {
        proc.fail(&format!("expected {expected:?}, got {line:?}"));
    }
}

/// Checkpoints sqlite3 once it waits for input in read(), then closes that input.
#[track_caller]
fn checkpoint_while_reading(mut proc: Proc, stdin: std::fs::File, checkpoint: &Path) {
    proc.wait_blocked_in(&[libc::SYS_read], TIMEOUT);
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    if !rest.is_empty() {
        proc.fail(&format!("printed {rest:?} when checkpointed"));
    }
    expect_checkpoint(&mut proc, checkpoint);
    drop(stdin);
}

#[test]
fn sqlite3_in_memory_database() {
    let Some(sqlite3) = interpreter("sqlite3") else {
        return;
    };
    let dir = TempDir::new("sqlite3");
    let checkpoint = checkpoint_path(&dir, &sqlite3);
    let summary = "SELECT 'rows', count(*), sum(x), sum(length(y)) FROM t;";
    let lengths: u64 = (1..=ROWS).map(|i| format!("row {i}").len() as u64).sum();
    let added = "after restart";

    let (mut proc, mut stdin) =
        Proc::spawn_with_stdin(ckpt_command(&dir, &sqlite3, &[]), "ckpt sqlite3");
    feed(&mut proc, &mut stdin, "CREATE TABLE t(x INTEGER, y TEXT);");
    feed(
        &mut proc,
        &mut stdin,
        &format!(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {ROWS}) \
             INSERT INTO t SELECT i, 'row ' || i FROM c;"
        ),
    );
    feed(&mut proc, &mut stdin, summary);
    expect_next(
        &mut proc,
        &format!("rows|{ROWS}|{}|{lengths}", ROWS * (ROWS + 1) / 2),
    );
    checkpoint_while_reading(proc, stdin, &checkpoint);

    // Restart with new input: the table is there, and takes a new row.
    let running = dir.join("restart1.ckpt");
    std::fs::rename(&checkpoint, &running).unwrap();
    let (mut proc, mut stdin) =
        Proc::spawn_with_stdin(restart_command(&dir, &running), "sqlite3 (restart 1)");
    feed(
        &mut proc,
        &mut stdin,
        &format!("INSERT INTO t VALUES (-1, '{added}');"),
    );
    feed(&mut proc, &mut stdin, summary);
    let after = format!(
        "rows|{}|{}|{}",
        ROWS + 1,
        ROWS * (ROWS + 1) / 2 - 1,
        lengths + added.len() as u64
    );
    expect_next(&mut proc, &after);
    checkpoint_while_reading(proc, stdin, &checkpoint);

    // And once more, from the checkpoint of the restarted process.
    let running = dir.join("restart2.ckpt");
    std::fs::rename(&checkpoint, &running).unwrap();
    let (mut proc, mut stdin) =
        Proc::spawn_with_stdin(restart_command(&dir, &running), "sqlite3 (restart 2)");
    feed(&mut proc, &mut stdin, summary);
    expect_next(&mut proc, &after);
    feed(&mut proc, &mut stdin, "SELECT y FROM t WHERE x = -1;");
    expect_next(&mut proc, added);
    drop(stdin);
    proc.wait_success(TIMEOUT);
    let rest = proc.rest_of_output();
    if !rest.is_empty() {
        proc.fail(&format!("printed {rest:?} at the end of its input"));
    }
}
