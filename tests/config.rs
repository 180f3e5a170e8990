//! Configuration: the `CKPT_*` variables (with `LD_PRELOAD` and through `ckpt`), the `ckpt`
//! options `-n`, `-c`, `-a`, `-z`, periodic checkpoints next to a program's own timer, bad
//! values refused before the program runs, and moving the checkpoint signal with
//! `ckpt_config`, which gives the program its own handler back.
//!
//! Most tests run `tests/programs/ticker.c`, which is not linked with the library but
//! registers hooks through weak symbols when it is preloaded: its "pre", "post" and
//! "restart" lines say when a checkpoint happened.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ckpt_tests::*;

const TICKER_C: &str = include_str!("programs/ticker.c");
const ALARMS_C: &str = include_str!("programs/alarms.c");
const API_C: &str = include_str!("programs/api.c");
const SIGSWITCH_C: &str = include_str!("programs/sigswitch.c");

fn ticker(dir: &TempDir) -> PathBuf {
    compile_c(dir, "ticker", TICKER_C, &[])
}

/// Starts `command` (the ticker, with the library loaded) and checks that it found the hook
/// functions of the library.
#[track_caller]
fn start(command: Command, label: &str) -> Proc {
    let mut proc = Proc::spawn(command, label);
    let line = proc.wait_line_matching("the ready line", TIMEOUT, |line| line.starts_with("ready"));
    if line != "ready hooks=1" {
        proc.fail(
            "the ticker did not find ckpt_on_preckpt/ckpt_on_postckpt/ckpt_on_restart: \
             is libckpt.so loaded and does it export the API?",
        );
    }
    proc
}

/// Reads lines until `marker`, checking that all lines before it are consecutive ticks from
/// `last + 1`; returns the last tick before the marker.
#[track_caller]
fn ticks_until(proc: &mut Proc, marker: &str, mut last: u64) -> u64 {
    loop {
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        if line == marker {
            return last;
        }
        match number_after(&line, "tick ") {
            Some(n) if n == last + 1 => last = n,
            _ => proc.fail(&format!(
                "expected \"tick {}\" or {marker:?}, got {line:?}",
                last + 1
            )),
        }
    }
}

/// Reads `n` lines, which must be the ticks after `last`; returns the last one.
#[track_caller]
fn expect_ticks(proc: &mut Proc, n: u64, last: u64) -> u64 {
    for expected in last + 1..=last + n {
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        if number_after(&line, "tick ") != Some(expected) {
            proc.fail(&format!("expected \"tick {expected}\", got {line:?}"));
        }
    }
    last + n
}

/// Waits for "tick {after}", sends `signal`, and expects a checkpoint that ends the process:
/// "pre", no "post", exit status 0, the file `checkpoint`. Returns the last tick before it.
#[track_caller]
fn checkpoint_and_exit(proc: &mut Proc, signal: i32, after: u64, checkpoint: &Path) -> u64 {
    proc.wait_line(&format!("tick {after}"));
    proc.signal(signal);
    let last = ticks_until(proc, "pre", after);
    proc.wait_success(TIMEOUT);
    let rest = proc.rest_of_output();
    if !rest.is_empty() {
        proc.fail(&format!(
            "expected nothing after \"pre\" (the process exits), got {rest:?}"
        ));
    }
    expect_checkpoint(proc, checkpoint);
    last
}

/// Waits for "tick {after}", sends `signal`, and expects a checkpoint after which the process
/// goes on: "pre", "post", the next tick, the file `checkpoint`. Returns the last tick before
/// the checkpoint (the restarted process prints the one after it) and the last tick read
/// (the image is written while the program ticks on, so ticks may come before "post").
#[track_caller]
fn checkpoint_and_continue(
    proc: &mut Proc,
    signal: i32,
    after: u64,
    checkpoint: &Path,
) -> (u64, u64) {
    proc.wait_line(&format!("tick {after}"));
    proc.signal(signal);
    let last = ticks_until(proc, "pre", after);
    // The image is written by a copy-on-write child while the program goes on ticking;
    // "post" comes once the file is complete.
    let during = ticks_until(proc, "post", last);
    let line = proc.wait_lines(1, TIMEOUT).remove(0);
    if number_after(&line, "tick ") != Some(during + 1) {
        proc.fail(&format!(
            "expected \"tick {}\" after \"post\", got {line:?}",
            during + 1
        ));
    }
    if !checkpoint.is_file() {
        proc.fail(&format!(
            "the post hook ran but {} does not exist",
            checkpoint.display()
        ));
    }
    (last, during + 1)
}

/// Restarts `checkpoint`: "restart", then the ticks after `last`.
#[track_caller]
fn expect_restart(dir: &TempDir, checkpoint: &Path, last: u64) {
    let label = format!("{} (restart)", checkpoint.display());
    let mut proc = Proc::spawn(restart_command(dir, checkpoint), &label);
    let line = proc.wait_lines(1, TIMEOUT).remove(0);
    if line != "restart" {
        proc.fail(&format!("expected \"restart\" first, got {line:?}"));
    }
    expect_ticks(&mut proc, 2, last);
    proc.kill();
}

/// The `*.ckpt` files in `dir`.
fn checkpoint_files(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read temp dir")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".ckpt"))
        .collect();
    names.sort();
    names
}

/// Sends SIGTSTP and expects its ordinary meaning: the process stops (state T) and writes no
/// checkpoint; after SIGCONT it counts on. The process must be in a process group of its own
/// (an orphaned process group would discard SIGTSTP). Returns the last tick read.
#[track_caller]
fn expect_sigtstp_stops(proc: &mut Proc, dir: &TempDir, after: u64) -> u64 {
    proc.wait_line(&format!("tick {after}"));
    proc.signal(libc::SIGTSTP);
    if !wait_for_state(proc.pid(), 'T', TIMEOUT) {
        proc.fail(&format!(
            "SIGTSTP did not stop the process (state {:?})",
            process_state(proc.pid())
        ));
    }
    let files = checkpoint_files(dir);
    if !files.is_empty() {
        proc.fail(&format!("SIGTSTP wrote a checkpoint: {files:?}"));
    }
    proc.signal(libc::SIGCONT);
    // The ticks printed before the stop and those after SIGCONT, without a checkpoint.
    expect_ticks(proc, 3, after)
}

#[test]
fn name_from_the_environment() {
    let dir = TempDir::new("env-name");
    let ticker = ticker(&dir);
    let mut command = preload_command(&dir, &ticker, &[]);
    command.env("CKPT_NAME", "from-env.ckpt");
    let mut proc = start(command, "CKPT_NAME=from-env.ckpt ticker");
    let checkpoint = dir.join("from-env.ckpt");
    let last = checkpoint_and_exit(&mut proc, libc::SIGTSTP, 3, &checkpoint);
    if checkpoint_path(&dir, &ticker).exists() {
        proc.fail("ticker.ckpt was written although CKPT_NAME says from-env.ckpt");
    }
    expect_restart(&dir, &checkpoint, last);
}

#[test]
fn continue_from_the_environment_keeps_running_and_checkpoints_again() {
    let dir = TempDir::new("env-continue");
    let ticker = ticker(&dir);
    let mut command = preload_command(&dir, &ticker, &[]);
    command.env("CKPT_CONTINUE", "1");
    let mut proc = start(command, "CKPT_CONTINUE=1 ticker");
    let checkpoint = checkpoint_path(&dir, &ticker);
    let (first_last, seen) = checkpoint_and_continue(&mut proc, libc::SIGTSTP, 3, &checkpoint);
    let first = dir.join("first.ckpt");
    std::fs::rename(&checkpoint, &first).expect("rename the first checkpoint");
    // It goes on counting; the second checkpoint comes at the tick after the next three.
    let after = expect_ticks(&mut proc, 3, seen) + 1;
    let (second_last, _) = checkpoint_and_continue(&mut proc, libc::SIGTSTP, after, &checkpoint);
    proc.kill();
    expect_restart(&dir, &first, first_last);
    expect_restart(&dir, &checkpoint, second_last);
}

#[test]
fn continue_zero_from_the_environment_exits() {
    let dir = TempDir::new("env-continue-0");
    let ticker = ticker(&dir);
    let mut command = preload_command(&dir, &ticker, &[]);
    command.env("CKPT_CONTINUE", "0");
    let mut proc = start(command, "CKPT_CONTINUE=0 ticker");
    let checkpoint = checkpoint_path(&dir, &ticker);
    let last = checkpoint_and_exit(&mut proc, libc::SIGTSTP, 3, &checkpoint);
    expect_restart(&dir, &checkpoint, last);
}

#[test]
fn signal_from_the_environment_by_name_or_number() {
    let dir = TempDir::new("env-asyncsig");
    let ticker = ticker(&dir);
    let checkpoint = checkpoint_path(&dir, &ticker);
    for value in ["SIGUSR1", "USR1", "usr1", "SigUsr1", "10"] {
        let mut command = preload_command(&dir, &ticker, &[]);
        command.env("CKPT_ASYNCSIG", value);
        let mut proc = start(command, &format!("CKPT_ASYNCSIG={value} ticker"));
        let last = checkpoint_and_exit(&mut proc, libc::SIGUSR1, 2, &checkpoint);
        if value == "USR1" {
            expect_restart(&dir, &checkpoint, last);
        }
        std::fs::remove_file(&checkpoint).expect("remove the checkpoint");
    }
}

#[test]
fn signal_from_the_environment_leaves_sigtstp_alone() {
    let dir = TempDir::new("env-asyncsig-tstp");
    let ticker = ticker(&dir);
    let mut command = preload_command(&dir, &ticker, &[]);
    command.env("CKPT_ASYNCSIG", "SIGUSR1").process_group(0);
    let mut proc = start(command, "CKPT_ASYNCSIG=SIGUSR1 ticker");
    let last = expect_sigtstp_stops(&mut proc, &dir, 3);
    let checkpoint = checkpoint_path(&dir, &ticker);
    let last = checkpoint_and_exit(&mut proc, libc::SIGUSR1, last + 1, &checkpoint);
    expect_restart(&dir, &checkpoint, last);
}

#[test]
fn signal_zero_disables_asynchronous_checkpoints() {
    let dir = TempDir::new("env-asyncsig-0");
    let ticker = ticker(&dir);
    for (launch, mut command) in [
        ("LD_PRELOAD", preload_command(&dir, &ticker, &[])),
        ("ckpt", ckpt_command(&dir, &ticker, &[])),
    ] {
        command.env("CKPT_ASYNCSIG", "0").process_group(0);
        let mut proc = start(command, &format!("CKPT_ASYNCSIG=0 ticker ({launch})"));
        expect_sigtstp_stops(&mut proc, &dir, 3);
        proc.kill();
    }
}

/// A line "round R alarms A ms T" of alarms.c.
struct Round {
    round: u64,
    alarms: u64,
    ms: u64,
}

fn parse_round(line: &str) -> Option<Round> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        ["round", round, "alarms", alarms, "ms", ms] => Some(Round {
            round: round.parse().ok()?,
            alarms: alarms.parse().ok()?,
            ms: ms.parse().ok()?,
        }),
        _ => None,
    }
}

/// The identity of a file: a checkpoint written anew (a new file renamed into place, or the
/// same file rewritten) changes it.
fn file_identity(path: &Path) -> Option<(u64, i64, i64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.ino(), metadata.mtime(), metadata.mtime_nsec()))
}

#[test]
fn periodic_checkpoints_leave_the_programs_timer_alone() {
    const PERIOD_MS: u64 = 150;
    /// alarms.c's own timer.
    const ALARM_MS: u64 = 50;
    let dir = TempDir::new("env-msperiod");
    let alarms = compile_c(&dir, "alarms", ALARMS_C, &[]);
    let checkpoint = checkpoint_path(&dir, &alarms);
    let mut command = preload_command(&dir, &alarms, &[]);
    command.env("CKPT_MSPERIOD", PERIOD_MS.to_string());
    let mut proc = Proc::spawn(command, "CKPT_MSPERIOD=150 alarms");
    proc.wait_line("ready");

    // Read rounds (one per 100 ms) for two seconds and more, until the checkpoint file has
    // been written at least twice: the program must go on undisturbed all along.
    let mut rounds: Vec<Round> = Vec::new();
    let mut first_identity = None;
    let mut replaced = false;
    let deadline = Instant::now() + TIMEOUT;
    while rounds.last().is_none_or(|r| r.ms < 2000) || !replaced {
        if Instant::now() > deadline {
            proc.fail(&format!(
                "after {TIMEOUT:?}: checkpoint file {} (replaced since first seen: {replaced})",
                if first_identity.is_some() {
                    "appeared"
                } else {
                    "never appeared"
                }
            ));
        }
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        let Some(round) = parse_round(&line) else {
            proc.fail(&format!("expected \"round R alarms A ms T\", got {line:?}"));
        };
        let expected = rounds.last().map_or(1, |r| r.round + 1);
        if round.round != expected {
            proc.fail(&format!("expected round {expected}, got {line:?}"));
        }
        if let Some(previous) = rounds.last() {
            if round.ms > previous.ms + 1000 {
                proc.fail(&format!(
                    "the program stalled for {} ms between two rounds",
                    round.ms - previous.ms
                ));
            }
        }
        rounds.push(round);
        match (first_identity, file_identity(&checkpoint)) {
            (None, Some(identity)) => first_identity = Some(identity),
            (Some(first), Some(now)) if now != first => replaced = true,
            _ => {}
        }
    }

    // The program's SIGALRM count follows its own 50 ms timer: ckpt neither took the timer
    // over (the count would follow the checkpoint period, or stop) nor sent SIGALRM itself
    // (the count would run ahead).
    let start = rounds
        .iter()
        .find(|r| r.ms >= 300)
        .expect("a round after 300 ms");
    let end = rounds.last().expect("rounds");
    let expected = (end.ms - start.ms) as f64 / ALARM_MS as f64;
    let counted = (end.alarms - start.alarms) as f64;
    if counted < expected * 0.75 || counted > expected * 1.25 {
        proc.fail(&format!(
            "between {} ms and {} ms the program counted {counted} SIGALRMs; its timer \
             should have given about {expected:.0}",
            start.ms, end.ms
        ));
    }
    proc.kill();
    let last_round = proc
        .rest_of_output()
        .iter()
        .rev()
        .find_map(|line| parse_round(line))
        .map(|r| r.round)
        .unwrap_or(end.round);

    // The latest periodic checkpoint restarts and goes on counting rounds.
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "alarms.ckpt");
    let mut previous = None;
    for _ in 0..3 {
        let line = restarted.wait_lines(1, TIMEOUT).remove(0);
        let Some(round) = parse_round(&line) else {
            restarted.fail(&format!("expected \"round R alarms A ms T\", got {line:?}"));
        };
        let ok = match previous {
            None => round.round >= 1 && round.round <= last_round + 1,
            Some(previous) => round.round == previous + 1,
        };
        if !ok {
            restarted.fail(&format!(
                "unexpected round after restart (the original reached round {last_round}): \
                 {line:?}"
            ));
        }
        previous = Some(round.round);
    }
    restarted.kill();
}

#[test]
fn option_c_keeps_running_after_a_checkpoint() {
    let dir = TempDir::new("opt-c");
    let ticker = ticker(&dir);
    let mut command = Command::new(ckpt_bin());
    command.arg("-c");
    let mut command = with_ckpt_args(command, &dir, &ticker);
    command.env("CKPT_CONTINUE", "0"); // the option wins over the environment
    let mut proc = start(command, "ckpt -c ticker");
    let checkpoint = checkpoint_path(&dir, &ticker);
    let (last, seen) = checkpoint_and_continue(&mut proc, libc::SIGTSTP, 3, &checkpoint);
    expect_ticks(&mut proc, 2, seen);
    proc.kill();
    expect_restart(&dir, &checkpoint, last);
}

/// Completes `command` (`ckpt` with options) with the ticker, its working directory and no
/// inherited ckpt settings.
fn with_ckpt_args(mut command: Command, dir: &TempDir, ticker: &Path) -> Command {
    command.arg(ticker).current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    command
}

fn ckpt_with(options: &[&str], dir: &TempDir, program: &Path) -> Command {
    let mut command = Command::new(ckpt_bin());
    command.args(options);
    with_ckpt_args(command, dir, program)
}

#[test]
fn option_a_with_a_number() {
    let dir = TempDir::new("opt-a-number");
    let ticker = ticker(&dir);
    let mut proc = start(ckpt_with(&["-a", "10"], &dir, &ticker), "ckpt -a 10 ticker");
    let checkpoint = checkpoint_path(&dir, &ticker);
    let last = checkpoint_and_exit(&mut proc, libc::SIGUSR1, 3, &checkpoint);
    expect_restart(&dir, &checkpoint, last);
}

#[test]
fn option_a_usr1_leaves_sigtstp_alone() {
    let dir = TempDir::new("opt-a-usr1");
    let ticker = ticker(&dir);
    let mut command = ckpt_with(&["-a", "USR1"], &dir, &ticker);
    command.process_group(0);
    let mut proc = start(command, "ckpt -a USR1 ticker");
    let last = expect_sigtstp_stops(&mut proc, &dir, 3);
    let checkpoint = checkpoint_path(&dir, &ticker);
    let last = checkpoint_and_exit(&mut proc, libc::SIGUSR1, last + 1, &checkpoint);
    expect_restart(&dir, &checkpoint, last);
}

#[test]
fn option_z_checkpoints_periodically_and_keeps_running() {
    let dir = TempDir::new("opt-z");
    let ticker = ticker(&dir);
    let mut proc = start(
        ckpt_with(&["-z", "100"], &dir, &ticker),
        "ckpt -z 100 ticker",
    );
    let checkpoint = checkpoint_path(&dir, &ticker);
    // Three periodic checkpoints, each "pre" then "post", with the count going on between
    // and after them; no signal from us.
    let mut last = 0;
    let mut before_checkpoints = Vec::new();
    for _ in 0..3 {
        last = ticks_until(&mut proc, "pre", last);
        before_checkpoints.push(last);
        // Periodic checkpoints continue; the ticks go on while the image is written.
        last = ticks_until(&mut proc, "post", last);
        if !checkpoint.is_file() {
            proc.fail("the post hook ran but ticker.ckpt does not exist");
        }
    }
    proc.kill();
    // A checkpoint may have completed after the last "post" we read.
    let mut seen_last = last;
    for line in proc.rest_of_output() {
        if line == "pre" {
            before_checkpoints.push(seen_last);
        } else if let Some(n) = number_after(&line, "tick ") {
            seen_last = n;
        }
    }

    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "ticker.ckpt (-z)");
    let line = restarted.wait_lines(1, TIMEOUT).remove(0);
    if line != "restart" {
        restarted.fail(&format!("expected \"restart\" first, got {line:?}"));
    }
    let line = restarted.wait_lines(1, TIMEOUT).remove(0);
    let first = number_after(&line, "tick ").unwrap_or(0);
    if !before_checkpoints.contains(&(first.wrapping_sub(1))) {
        restarted.fail(&format!(
            "expected the tick after one of the checkpoints (after ticks \
             {before_checkpoints:?}), got {line:?}"
        ));
    }
    expect_ticks(&mut restarted, 2, first);
    restarted.kill();
}

/// The first line of `api config`: the configuration the library started with.
#[track_caller]
fn initial_configuration(command: Command, label: &str) -> String {
    let mut proc = Proc::spawn(command, label);
    let line = proc.wait_lines(1, TIMEOUT).remove(0);
    proc.kill();
    line
}

#[test]
fn environment_and_options_reach_ckpt_config() {
    let dir = TempDir::new("config-sources");
    let api = compile_c_with_api(&dir, "api", API_C);

    let mut linked = direct_command(&dir, &api, &["config"]);
    with_library_path(&mut linked)
        .env("CKPT_NAME", "env.ckpt")
        .env("CKPT_CONTINUE", "yes")
        .env("CKPT_ASYNCSIG", "sigusr1")
        .env("CKPT_MSPERIOD", "3600000");
    let mut preloaded = preload_command(&dir, &api, &["config"]);
    with_library_path(&mut preloaded)
        .env("CKPT_ASYNCSIG", "0")
        .env("CKPT_CONTINUE", "0")
        .env("CKPT_MSPERIOD", "0");
    // Options override the environment of ckpt.
    let mut options = ckpt_with(
        &["-n", "opt.ckpt", "-c", "-a", "USR2", "-z", "3600000"],
        &dir,
        &api,
    );
    options.arg("config");
    with_library_path(&mut options)
        .env("CKPT_NAME", "env.ckpt")
        .env("CKPT_ASYNCSIG", "SIGHUP")
        .env("CKPT_MSPERIOD", "7");

    for (command, label, expected) in [
        (
            linked,
            "api config (linked, CKPT_* set)",
            "name=env.ckpt asyncsig=10 continues=1 msperiod=3600000",
        ),
        (
            preloaded,
            "api config (LD_PRELOAD, CKPT_ASYNCSIG=0)",
            "name=api.ckpt asyncsig=0 continues=0 msperiod=0",
        ),
        (
            options,
            "ckpt -n opt.ckpt -c -a USR2 -z 3600000 api config",
            "name=opt.ckpt asyncsig=12 continues=1 msperiod=3600000",
        ),
    ] {
        let line = initial_configuration(command, label);
        let expected = format!("defaults: flags=30 {expected}");
        assert_eq!(line, expected, "{label}");
    }
}

/// Checks that a refused run printed exactly one line on stderr, mentioning `what`, nothing on
/// stdout (the program did not run) and exited with status 2.
#[track_caller]
fn expect_refused(finished: &Finished, label: &str, what: &str) {
    if finished.status.code() != Some(2) {
        finished.fail(label, "expected exit status 2");
    }
    if !finished.stdout.is_empty() {
        finished.fail(label, "the program ran (it printed something)");
    }
    let lines: Vec<&str> = finished.stderr.lines().collect();
    if lines.len() != 1 || !lines[0].starts_with("ckpt") || !lines[0].contains(what) {
        finished.fail(
            label,
            &format!("expected one line on stderr, starting with \"ckpt\" and naming {what}"),
        );
    }
}

#[test]
fn bad_environment_values_are_refused_before_the_program_runs() {
    let dir = TempDir::new("env-bad");
    let ticker = ticker(&dir);
    for (var, value) in [
        ("CKPT_ASYNCSIG", "bogus"),
        ("CKPT_ASYNCSIG", ""),
        ("CKPT_MSPERIOD", "abc"),
        ("CKPT_COMPRESS", "zip"),
        ("CKPT_FSYNC", ""),
        ("CKPT_NAME", ""),
        ("CKPT_CONTINUE", ""),
        ("CKPT_FD_POLICY", "drop"),
        ("CKPT_FD_POLICY", ""),
        ("CKPT_STRICT_FILES", ""),
        ("CKPT_MAX_DELETED", "lots"),
        ("CKPT_MAX_DELETED", "1.5M"),
    ] {
        // The ticker stops by itself after 3 ticks if it is (wrongly) allowed to run.
        for (launch, mut command) in [
            ("LD_PRELOAD", preload_command(&dir, &ticker, &["10", "3"])),
            ("ckpt", ckpt_command(&dir, &ticker, &["10", "3"])),
        ] {
            command.env(var, value);
            let label = format!("{var}={value:?} ticker ({launch})");
            let finished = run_to_end(command, &label, TIMEOUT);
            expect_refused(&finished, &label, var);
        }
    }
    let files = checkpoint_files(&dir);
    assert!(files.is_empty(), "checkpoint files appeared: {files:?}");
}

#[test]
fn bad_option_values_are_refused() {
    let dir = TempDir::new("opt-bad");
    let ticker = ticker(&dir);
    for (option, value) in [
        ("-a", "bogus"),
        ("-a", "KILL"),
        ("-a", "65"),
        ("-a", ""),
        ("-z", "abc"),
        ("-z", "-5"),
        ("-n", ""),
    ] {
        let mut command = ckpt_with(&[option, value], &dir, &ticker);
        command.args(["10", "3"]);
        let label = format!("ckpt {option} {value:?} ticker");
        let finished = run_to_end(command, &label, TIMEOUT);
        expect_refused(&finished, &label, option);
    }
}

#[test]
fn changing_the_signal_gives_the_program_its_handler_back() {
    let dir = TempDir::new("config-sigswitch");
    let program = compile_c_with_api(&dir, "sigswitch", SIGSWITCH_C);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut command = direct_command(&dir, &program, &[]);
    with_library_path(&mut command);
    let mut proc = Proc::spawn(command, "sigswitch");

    proc.wait_line("phase 1");
    proc.signal(libc::SIGUSR2);
    // SIGUSR2 becomes the checkpoint signal (ckpt's handler in the kernel; the program, when
    // it asks, is told its own), and SIGTSTP gets back the action it had before ckpt took
    // it: the default.
    expect_lines(
        &mut proc,
        &[
            "own usr2 1",
            "usr2 handler own",
            "tstp handler default",
            "phase 2",
        ],
    );
    proc.signal(libc::SIGUSR2);
    // A checkpoint (continuing) instead of the program's handler; then back to SIGTSTP,
    // and SIGUSR2 has the program's own handler again (SIGTSTP's, as the program sees it,
    // is still the default).
    expect_lines(
        &mut proc,
        &[
            "post",
            "usr2 handler own",
            "tstp handler default",
            "phase 3",
        ],
    );
    if !checkpoint.is_file() {
        proc.fail("SIGUSR2 in phase 2 did not write sigswitch.ckpt");
    }
    std::fs::remove_file(&checkpoint).expect("remove the phase 2 checkpoint");

    proc.wait_line("tick 3");
    proc.signal(libc::SIGUSR2);
    let line = proc.wait_line_matching("the program's SIGUSR2 handler", TIMEOUT, |line| {
        !line.starts_with("tick ")
    });
    if line != "own usr2 2" {
        proc.fail(&format!(
            "expected the program's handler (\"own usr2 2\") after SIGUSR2, got {line:?}"
        ));
    }
    if checkpoint.exists() {
        proc.fail("SIGUSR2 wrote a checkpoint after the signal was changed back");
    }
    let seen_before = proc.seen().len();
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    proc.rest_of_output();
    let last = proc.seen()[..]
        .iter()
        .rev()
        .find_map(|line| number_after(line, "tick "))
        .expect("a tick was seen");
    if proc.seen()[seen_before..]
        .iter()
        .any(|line| !line.starts_with("tick "))
    {
        proc.fail("expected only ticks before the SIGTSTP checkpoint ended the program");
    }
    expect_checkpoint(&mut proc, &checkpoint);

    // The restarted program still has its own SIGUSR2 handler, and its count.
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "sigswitch.ckpt");
    expect_lines(&mut restarted, &["restart"]);
    expect_ticks(&mut restarted, 1, last);
    restarted.signal(libc::SIGUSR2);
    let line = restarted.wait_line_matching("the program's SIGUSR2 handler", TIMEOUT, |line| {
        !line.starts_with("tick ")
    });
    if line != "own usr2 3" {
        restarted.fail(&format!(
            "expected the program's handler, with its count, (\"own usr2 3\"), got {line:?}"
        ));
    }
    restarted.kill();
}

/// Expects exactly `expected` as the next lines.
#[track_caller]
fn expect_lines(proc: &mut Proc, expected: &[&str]) {
    let lines = proc.wait_lines(expected.len(), TIMEOUT);
    if lines != expected {
        proc.fail(&format!("expected {expected:?}, got {lines:?}"));
    }
}

#[test]
fn checkpoint_signals_during_a_checkpoint_are_not_lost_and_do_not_corrupt_it() {
    let dir = TempDir::new("signal-burst");
    let ticker = ticker(&dir);
    let checkpoint = checkpoint_path(&dir, &ticker);
    let mut proc = start(ckpt_with(&["-c"], &dir, &ticker), "ckpt -c ticker (burst)");
    proc.wait_line("tick 5");
    // More signals while the first checkpoint is being taken: they are held back and taken
    // after it (signals pending together merge into one, so at least one more checkpoint).
    proc.signal(libc::SIGTSTP);
    proc.wait_line("pre");
    proc.signal(libc::SIGTSTP);
    proc.signal(libc::SIGTSTP);
    let mut pre = 1;
    let mut post = 0;
    let deadline = std::time::Instant::now() + TIMEOUT;
    // At least two checkpoints, each completed ("post" after its file is renamed).
    while post < 2 || post < pre {
        if std::time::Instant::now() > deadline {
            proc.fail(&format!(
                "{pre} checkpoints began but only {post} completed"
            ));
        }
        match proc.wait_lines(1, TIMEOUT).remove(0).as_str() {
            "pre" => pre += 1,
            "post" => post += 1,
            _ => {}
        }
    }
    proc.wait_lines(3, TIMEOUT);
    proc.kill();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
    let verify = Command::new(ckpt_bin())
        .arg("verify")
        .arg(&checkpoint)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the last checkpoint does not verify: {verify:?}"
    );
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "ticker.ckpt (burst)");
    let line = restarted.wait_lines(1, TIMEOUT).remove(0);
    if line != "restart" {
        restarted.fail(&format!("expected \"restart\" first, got {line:?}"));
    }
    restarted.wait_lines(2, TIMEOUT);
    restarted.kill();
}
