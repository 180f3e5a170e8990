//! The C API of `ckpt.h`: hooks (order and when they run), `ckpt_ckpt` (return values, a
//! name of its own, failure, exit without CKPT_CONTINUE), `ckpt_config` (defaults, round
//! trips, flags, invalid values), and the ways of loading the library (linked with `-lckpt`
//! and run as it is, under `ckpt`, with `LD_PRELOAD`: one copy of the library, hooks once).
//!
//! The programs are linked with `-lckpt` and run with `LD_LIBRARY_PATH` naming the target
//! directory, unless a test says otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use ckpt_tests::*;

const API_C: &str = include_str!("programs/api.c");
const EXAMPLE_C: &str = include_str!("../examples/api.c");

/// Builds `tests/programs/api.c` as `<dir>/api`.
fn api_program(dir: &TempDir) -> PathBuf {
    compile_c_with_api(dir, "api", API_C)
}

/// `api ARGS…` run as it is (linked with -lckpt, found through LD_LIBRARY_PATH).
fn linked(dir: &TempDir, program: &Path, args: &[&str]) -> Command {
    let mut command = direct_command(dir, program, args);
    with_library_path(&mut command);
    command
}

/// What `api sync` prints after `ckpt_ckpt` returned `result`: the configured name, the
/// count and "done".
fn after_ckpt(result: &str) -> Vec<String> {
    let mut lines = vec![format!("ckpt_ckpt {result}"), "name api.ckpt".to_owned()];
    lines.extend((1..=3).map(|i| format!("count {i}")));
    lines.push("done".to_owned());
    lines
}

/// The lines before `ckpt_ckpt` returns: set-up and the pre hooks.
const START: [&str; 4] = ["ready", "copies 1", "pre 1", "pre 2"];
const POST: [&str; 2] = ["post 1", "post 2"];
const RESTART: [&str; 2] = ["restart 2", "restart 1"];

fn concat(parts: &[&[&str]], tail: &[String]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|part| part.iter().map(|line| (*line).to_owned()))
        .chain(tail.iter().cloned())
        .collect()
}

#[track_caller]
fn expect_exactly(finished: &Finished, label: &str, expected: &[String]) {
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    finished.expect_success_with(label, &expected);
}

/// Runs `api sync cont` through `command` and checks everything it prints, then restarts
/// the checkpoint it wrote and checks that too.
#[track_caller]
fn sync_continue_cycle(dir: &TempDir, command: Command, label: &str) {
    let finished = run_to_end(command, label, TIMEOUT);
    expect_exactly(
        &finished,
        label,
        &concat(&[&START, &POST], &after_ckpt("0")),
    );
    let checkpoint = dir.join("api.ckpt");
    if !checkpoint.is_file() {
        finished.fail(label, "ckpt_ckpt returned 0 but api.ckpt does not exist");
    }
    let restart_label = format!("api.ckpt (from {label})");
    let restarted = run_to_end(restart_command(dir, &checkpoint), &restart_label, TIMEOUT);
    expect_exactly(
        &restarted,
        &restart_label,
        &concat(&[&RESTART], &after_ckpt("1")),
    );
}

#[test]
fn sync_checkpoint_runs_hooks_in_order_and_returns_0_then_1() {
    let dir = TempDir::new("api-sync");
    let api = api_program(&dir);
    sync_continue_cycle(&dir, linked(&dir, &api, &["sync", "cont"]), "api sync cont");
}

#[test]
fn sync_checkpoint_without_continue_exits_0_and_restarts_returning_1() {
    let dir = TempDir::new("api-sync-exit");
    let api = api_program(&dir);
    let label = "api sync (no CKPT_CONTINUE)";
    let finished = run_to_end(linked(&dir, &api, &["sync"]), label, TIMEOUT);
    // No post hooks and no return: the process exits with status 0 once the file is written.
    finished.expect_success_with(label, &START);
    let checkpoint = dir.join("api.ckpt");
    if !checkpoint.is_file() {
        finished.fail(label, "exited but api.ckpt does not exist");
    }
    let restarted = run_to_end(restart_command(&dir, &checkpoint), "api.ckpt", TIMEOUT);
    expect_exactly(
        &restarted,
        "api.ckpt",
        &concat(&[&RESTART], &after_ckpt("1")),
    );
}

#[test]
fn sync_checkpoint_to_a_name_of_its_own() {
    let dir = TempDir::new("api-sync-name");
    let api = api_program(&dir);
    let label = "api sync cont name=given.ckpt";
    let finished = run_to_end(
        linked(&dir, &api, &["sync", "cont", "name=given.ckpt"]),
        label,
        TIMEOUT,
    );
    // "name api.ckpt": the name given to ckpt_ckpt is for that call only.
    expect_exactly(
        &finished,
        label,
        &concat(&[&START, &POST], &after_ckpt("0")),
    );
    let given = dir.join("given.ckpt");
    if !given.is_file() {
        finished.fail(label, "given.ckpt does not exist");
    }
    if dir.join("api.ckpt").exists() {
        finished.fail(label, "api.ckpt was written although ckpt_ckpt got a name");
    }
    let restarted = run_to_end(restart_command(&dir, &given), "given.ckpt", TIMEOUT);
    expect_exactly(
        &restarted,
        "given.ckpt",
        &concat(&[&RESTART], &after_ckpt("1")),
    );
}

#[test]
fn failed_sync_checkpoint_returns_minus_1_with_errno_and_keeps_running() {
    let dir = TempDir::new("api-sync-fail");
    let api = api_program(&dir);
    let missing_dir = dir.join("missing");
    let target = format!("name={}", missing_dir.join("x.ckpt").display());
    for cont in [true, false] {
        let mut args = vec!["sync"];
        if cont {
            args.push("cont");
        }
        args.push(&target);
        let label = format!("api {}", args.join(" "));
        let finished = run_to_end(linked(&dir, &api, &args), &label, TIMEOUT);
        if finished.status.code() != Some(0) {
            finished.fail(
                &label,
                "expected the program to go on after the failed checkpoint and exit 0",
            );
        }
        let lines = finished.lines();
        // The post hooks run after a failed checkpoint, whatever CKPT_CONTINUE says.
        let mut expected = concat(&[&START, &POST], &after_ckpt("-1"));
        let result = lines.get(START.len() + POST.len()).copied().unwrap_or("");
        let errno = result
            .strip_prefix("ckpt_ckpt -1 errno ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<i32>().ok());
        match errno {
            Some(0) => finished.fail(&label, "ckpt_ckpt returned -1 but left errno at 0"),
            Some(_) => expected[START.len() + POST.len()] = result.to_owned(),
            None => finished.fail(
                &label,
                &format!("expected \"ckpt_ckpt -1 errno E (…)\", got {result:?}"),
            ),
        }
        if lines != expected {
            finished.fail(
                &label,
                &format!("expected exactly these lines: {expected:#?}"),
            );
        }
        for stray in [dir.join("api.ckpt"), missing_dir.clone()] {
            if stray.exists() {
                finished.fail(
                    &label,
                    &format!("{} exists after a failed checkpoint", stray.display()),
                );
            }
        }
    }
}

/// Reads `tick` lines until the line `first_hook`, checking that the ticks are consecutive
/// from `last + 1`; returns the last tick before the hook.
#[track_caller]
fn ticks_until(proc: &mut Proc, first_hook: &str, mut last: u64) -> u64 {
    loop {
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        if line == first_hook {
            return last;
        }
        match number_after(&line, "tick ") {
            Some(n) if n == last + 1 => last = n,
            _ => proc.fail(&format!(
                "expected \"tick {}\" or {first_hook:?}, got {line:?}",
                last + 1
            )),
        }
    }
}

/// Expects exactly `expected` as the next lines.
#[track_caller]
fn expect_next(proc: &mut Proc, expected: &[String]) {
    let lines = proc.wait_lines(expected.len(), TIMEOUT);
    if lines != expected {
        proc.fail(&format!("expected {expected:?}, got {lines:?}"));
    }
}

/// Restarts `checkpoint` and expects the restart hooks, in reverse order, then the ticks
/// from `last + 1`.
#[track_caller]
fn expect_async_restart(dir: &TempDir, checkpoint: &Path, last: u64) {
    let mut proc = Proc::spawn(restart_command(dir, checkpoint), "api.ckpt (async)");
    let expected = concat(
        &[&RESTART],
        &[format!("tick {}", last + 1), format!("tick {}", last + 2)],
    );
    expect_next(&mut proc, &expected);
    proc.kill();
}

#[test]
fn async_checkpoint_runs_hooks_in_order_and_continues() {
    let dir = TempDir::new("api-async-cont");
    let api = api_program(&dir);
    let mut proc = Proc::spawn(linked(&dir, &api, &["async", "cont"]), "api async cont");
    expect_next(&mut proc, &["ready".to_owned(), "copies 1".to_owned()]);
    proc.wait_line("tick 5");
    proc.signal(libc::SIGTSTP);
    let last = ticks_until(&mut proc, "pre 1", 5);
    // The pre-checkpoint hooks run one after the other in the signal handler. The image is
    // written by a child while the program goes on counting, and the post-checkpoint hooks
    // run, one after the other, once it is complete.
    expect_next(&mut proc, &["pre 2".to_owned()]);
    let during = ticks_until(&mut proc, POST[0], last);
    let expected = concat(&[&POST[1..]], &[format!("tick {}", during + 1)]);
    expect_next(&mut proc, &expected);
    let checkpoint = dir.join("api.ckpt");
    if !checkpoint.is_file() {
        proc.fail("the post hooks ran but api.ckpt does not exist");
    }
    proc.kill();
    expect_async_restart(&dir, &checkpoint, last);
}

#[test]
fn async_checkpoint_without_continue_runs_pre_hooks_and_exits() {
    let dir = TempDir::new("api-async-exit");
    let api = api_program(&dir);
    let mut proc = Proc::spawn(linked(&dir, &api, &["async"]), "api async");
    expect_next(&mut proc, &["ready".to_owned(), "copies 1".to_owned()]);
    proc.wait_line("tick 3");
    proc.signal(libc::SIGTSTP);
    let last = ticks_until(&mut proc, "pre 1", 3);
    proc.wait_success(TIMEOUT);
    let rest = proc.rest_of_output();
    if rest != ["pre 2"] {
        proc.fail(&format!(
            "expected only \"pre 2\" after \"pre 1\" (no post hooks when exiting), got {rest:?}"
        ));
    }
    let checkpoint = dir.join("api.ckpt");
    expect_checkpoint(&mut proc, &checkpoint);
    expect_async_restart(&dir, &checkpoint, last);
}

/// What `api config` prints up to "ready" for a program named `api` started with the default
/// configuration.
fn config_lines(defaults: &str) -> Vec<String> {
    let line = |label: &str, rest: &str| format!("{label}: flags=30 {rest}");
    vec![
        line("defaults", defaults),
        // Setting CKPT_* variables at run time changes nothing: they are read at load time.
        line("after setenv", defaults),
        // ckpt_config(cfg, old) gives the values from before cfg was applied.
        line("old", defaults),
        line(
            "all four",
            "name=first.ckpt asyncsig=10 continues=1 msperiod=3600000",
        ),
        line(
            "name only",
            "name=second.ckpt asyncsig=10 continues=1 msperiod=3600000",
        ),
        line(
            "continue and period",
            "name=second.ckpt asyncsig=10 continues=0 msperiod=0",
        ),
        line(
            "signal only",
            "name=second.ckpt asyncsig=12 continues=0 msperiod=0",
        ),
        line(
            "no flags",
            "name=second.ckpt asyncsig=12 continues=0 msperiod=0",
        ),
        "invalid values".to_owned(),
        line(
            "after invalid",
            "name=second.ckpt asyncsig=12 continues=0 msperiod=0",
        ),
        "null ok".to_owned(),
        "ready".to_owned(),
    ]
}

#[test]
fn config_defaults_round_trip_flags_and_invalid_values() {
    let dir = TempDir::new("api-config");
    let api = api_program(&dir);
    let mut proc = Proc::spawn(linked(&dir, &api, &["config"]), "api config");
    let expected = config_lines("name=api.ckpt asyncsig=20 continues=0 msperiod=0");
    expect_next(&mut proc, &expected);
    // stderr is read by a thread of its own: give it a moment to catch up with stdout.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let refusals = loop {
        let refusals = proc
            .stderr()
            .lines()
            .filter(|line| !line.trim().is_empty())
            .count();
        if refusals >= 3 || std::time::Instant::now() > deadline {
            break refusals;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    if refusals != 3 {
        proc.fail(&format!(
            "expected a message on stderr for each of the 3 invalid values, got {refusals} lines"
        ));
    }

    // The configuration in effect is the one read back: SIGUSR2, second.ckpt, no continue.
    proc.wait_line("tick 3");
    proc.signal(libc::SIGUSR2);
    // (The refusal messages are on stderr: wait without looking at it.)
    let status = proc.wait_exit_only(TIMEOUT);
    if !status.success() {
        proc.fail("expected exit status 0 after the SIGUSR2 checkpoint");
    }
    proc.rest_of_output();
    let last = proc
        .seen()
        .iter()
        .rev()
        .find_map(|line| number_after(line, "tick "))
        .expect("a tick was seen");
    let checkpoint = dir.join("second.ckpt");
    expect_checkpoint(&mut proc, &checkpoint);
    for other in ["api.ckpt", "first.ckpt", "third.ckpt", "changed.ckpt"] {
        if dir.join(other).exists() {
            proc.fail(&format!("{other} was written; expected only second.ckpt"));
        }
    }
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "second.ckpt");
    expect_next(
        &mut restarted,
        &[format!("tick {}", last + 1), format!("tick {}", last + 2)],
    );
    restarted.kill();
}

#[test]
fn linked_program_under_ckpt_or_preload_loads_the_library_once() {
    let dir = TempDir::new("api-linked-twice");
    let api = api_program(&dir);

    let mut under_ckpt = ckpt_command(&dir, &api, &["sync", "cont"]);
    with_library_path(&mut under_ckpt);
    sync_continue_cycle(&dir, under_ckpt, "ckpt api sync cont");
    std::fs::remove_file(dir.join("api.ckpt")).expect("remove api.ckpt");

    let mut preloaded = preload_command(&dir, &api, &["sync", "cont"]);
    with_library_path(&mut preloaded);
    sync_continue_cycle(&dir, preloaded, "LD_PRELOAD=libckpt.so api sync cont");
}

#[test]
fn linked_program_checkpoints_on_sigtstp_without_calling_the_api() {
    // No LD_PRELOAD, no ckpt: linking with libckpt.so is enough for the default signal.
    let dir = TempDir::new("api-linked-tstp");
    // The program references nothing in libckpt.so: without --no-as-needed, a linker that
    // links as needed (the default on Debian and Ubuntu) would drop -lckpt altogether.
    let lib_dir = format!("-L{}", libckpt().parent().expect("target dir").display());
    let counter = compile_c(
        &dir,
        "counter",
        include_str!("programs/counter.c"),
        &[&lib_dir, "-Wl,--no-as-needed", "-lckpt"],
    );
    let mut proc = Proc::spawn(linked(&dir, &counter, &["10"]), "counter -lckpt");
    proc.wait_lines(5, TIMEOUT);
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    let last: u64 = rest
        .last()
        .or(proc.seen().last())
        .and_then(|line| line.parse().ok())
        .expect("a number before the checkpoint");
    let checkpoint = checkpoint_path(&dir, &counter);
    expect_checkpoint(&mut proc, &checkpoint);
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "counter.ckpt");
    let first = restarted.next_number();
    if first != last + 1 {
        restarted.fail(&format!("expected {} after restart, got {first}", last + 1));
    }
    restarted.kill();
}

#[test]
fn example_builds_and_runs() {
    let dir = TempDir::new("api-example");
    let example = compile_c_with_api(&dir, "api", EXAMPLE_C);
    let label = "examples/api.c";
    let finished = run_to_end(linked(&dir, &example, &[]), label, TIMEOUT);
    let counters = |range: std::ops::RangeInclusive<u32>| -> Vec<String> {
        range.map(|i| format!("counter {i}")).collect()
    };
    let mut expected = vec!["checkpoint name api.ckpt, signal 20".to_owned()];
    expected.extend(counters(1..=3));
    expected.extend(concat(
        &[&["pre 1", "pre 2"], &POST, &["taken"]],
        &counters(4..=6),
    ));
    expect_exactly(&finished, label, &expected);

    let checkpoint = dir.join("api.ckpt");
    let restarted = run_to_end(
        restart_command(&dir, &checkpoint),
        "api.ckpt (example)",
        TIMEOUT,
    );
    let expected = concat(&[&RESTART, &["restarted"]], &counters(4..=6));
    expect_exactly(&restarted, "api.ckpt (example)", &expected);
}
