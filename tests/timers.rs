//! POSIX timers (`timer_create`) and CPU-time clock ids (`clock_getcpuclockid`,
//! `pthread_getcpuclockid`) through checkpoints and restarts.
//!
//! The C program `tests/programs/timers.c` checks itself: its signal handlers check that every
//! tick comes from its timer with its value, every round checks that each timer id still
//! answers and that one-shot timers kept their remaining time, and after every restart it
//! checks intervals, new timers and the CPU clock ids it got before. It prints `BAD …` on a
//! failed check. The tests here drive it through two restarts, look at the kernel's list of
//! the restarted process's timers (`/proc/PID/timers`), and make sure the library said
//! nothing on stderr where it had nothing to say.

use std::path::Path;
use std::process::Command;

use ckpt_tests::*;

const TIMERS_C: &str = include_str!("programs/timers.c");
const NO_TIMER_IDS_C: &str = include_str!("programs/no_timer_ids.c");

/// Reads lines until one starts with `prefix` and returns it; fails on a `BAD` line first.
#[track_caller]
fn wait_for(proc: &mut Proc, prefix: &str) -> String {
    let line = proc.wait_line_matching(
        &format!("a line starting with {prefix:?}"),
        TIMEOUT,
        |line| line.starts_with(prefix) || line.starts_with("BAD"),
    );
    proc.assert_no_bad_lines();
    line
}

/// The numbers after `prefix` in `line` (`ids 0 1 2` → `[0, 1, 2]`).
fn numbers_after(line: &str, prefix: &str) -> Vec<i32> {
    let rest = line.strip_prefix(prefix).unwrap_or("");
    rest.split_whitespace()
        .map(|word| word.parse().expect("a number"))
        .collect()
}

/// `T` and `A` of a round line `ok N ticks T aimed A`.
fn ticks_of(line: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        ["ok", _, "ticks", t, "aimed", a] => Some((t.parse().ok()?, a.parse().ok()?)),
        _ => None,
    }
}

/// Waits until both periodic timers have ticked five more times than at the next round line.
#[track_caller]
fn ticks_keep_coming(proc: &mut Proc) {
    let first = wait_for(proc, "ok ");
    let (ticks, aimed) = ticks_of(&first).expect("a round line");
    proc.wait_line_matching("five more ticks of both timers", TIMEOUT, |line| {
        line.starts_with("BAD")
            || ticks_of(line).is_some_and(|(t, a)| t >= ticks + 5 && a >= aimed + 5)
    });
    proc.assert_no_bad_lines();
}

/// The timers of process `pid` as the kernel lists them: (id, notify line).
fn kernel_timers(proc: &mut Proc) -> Vec<(i32, String)> {
    let path = format!("/proc/{}/timers", proc.pid());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => proc.fail(&format!("cannot read {path}: {e}")),
    };
    let mut timers = Vec::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("ID: ") {
            timers.push((id.trim().parse().expect("a timer id"), String::new()));
        } else if let (Some(notify), Some(last)) =
            (line.strip_prefix("notify: "), timers.last_mut())
        {
            last.1 = notify.to_owned();
        }
    }
    timers
}

/// The restarted process has exactly the program's timers `ids` (and one more, the library's
/// periodic timer, with `periodic`), and the timer `aimed` at the program's thread is aimed
/// at its new thread id.
#[track_caller]
fn check_kernel_timers(proc: &mut Proc, ids: &[i32], aimed: i32, periodic: bool) {
    let listed = kernel_timers(proc);
    let mut program: Vec<i32> = listed
        .iter()
        .map(|&(id, _)| id)
        .filter(|id| ids.contains(id))
        .collect();
    program.sort_unstable();
    let mut wanted = ids.to_vec();
    wanted.sort_unstable();
    let others = listed.len() - program.len();
    if program != wanted || others != usize::from(periodic) {
        proc.fail(&format!(
            "the kernel lists the timers {listed:?}; expected the program's {wanted:?} and {} \
             of the library's",
            usize::from(periodic)
        ));
    }
    let expected = format!("signal/tid.{}", proc.pid());
    if let Some((_, notify)) = listed.iter().find(|(id, _)| *id == aimed) {
        if *notify != expected {
            let notify = notify.clone();
            proc.fail(&format!(
                "timer {aimed} notifies {notify:?}, expected {expected:?}"
            ));
        }
    }
}

#[track_caller]
fn expect_quiet_library(proc: &mut Proc) {
    // Beyond the line saying where a checkpoint that ends the program went.
    let stderr = proc.stderr();
    if stderr
        .lines()
        .any(|line| line.contains("ckpt") && !line.starts_with("ckpt: wrote "))
    {
        proc.fail("the library said something on stderr");
    }
}

/// Runs the timers program under `ckpt` (wrapped by `as_user`), checkpoints it while both
/// periodic timers have a tick pending, restarts it, checkpoints the restarted process while
/// it ticks, and restarts that again. With `periodic`, the library has a periodic timer of
/// its own (a long period, never firing here), which must be neither saved nor duplicated.
fn timers_through_two_restarts(
    dir: &TempDir,
    ckpt: &Path,
    as_user: fn(Command) -> Command,
    periodic: bool,
) {
    let program = compile_c(dir, "timers", TIMERS_C, &[]);
    let checkpoint = checkpoint_path(dir, &program);
    let mut command = ckpt_command_with(ckpt, dir, &program, &["timers"]);
    if periodic {
        command.env("CKPT_MSPERIOD", "600000");
    }
    let mut original = Proc::spawn(as_user(command), "timers");
    let ids = numbers_after(&wait_for(&mut original, "ids "), "ids ");
    let (aimed, idle) = (ids[1], ids[4]);
    wait_for(&mut original, "held");
    original.signal(libc::SIGTSTP);
    original.wait_success(TIMEOUT);
    expect_checkpoint(&mut original, &checkpoint);
    expect_quiet_library(&mut original);

    let live: Vec<i32> = ids.iter().copied().filter(|&id| id != idle).collect();
    for restart in 1..=2 {
        let label = format!("timers.ckpt (restart {restart})");
        let mut proc = Proc::spawn(as_user(restart_command(dir, &checkpoint)), &label);
        let prefix = format!("restart {restart} ok ids ");
        let line = wait_for(&mut proc, &prefix);
        if numbers_after(&line, &prefix) != live {
            proc.fail(&format!("expected the live timers {live:?}"));
        }
        check_kernel_timers(&mut proc, &live, aimed, periodic);
        ticks_keep_coming(&mut proc);
        if restart == 1 {
            proc.signal(libc::SIGTSTP);
            proc.wait_success(TIMEOUT);
            expect_checkpoint(&mut proc, &checkpoint);
        } else {
            proc.kill();
        }
        proc.assert_no_bad_lines();
        expect_quiet_library(&mut proc);
    }
}

#[test]
fn posix_timers_keep_ids_settings_and_ticks_through_two_restarts() {
    let dir = TempDir::new("timers");
    timers_through_two_restarts(&dir, &ckpt_bin(), |command| command, true);
}

#[test]
fn posix_timers_are_restored_for_an_ordinary_user() {
    if !running_as_root() {
        skip(
            Skip::CannotHere,
            "the tests run as an ordinary user: the test above covers this one",
        );
        return;
    }
    if !have_program("setpriv") {
        panic!("running as root but setpriv (util-linux) is missing: cannot test as nobody");
    }
    let dir = TempDir::new("timers-nobody");
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    timers_through_two_restarts(&dir, &ckpt, as_nobody, false);
}

#[test]
fn cpu_clock_ids_from_before_a_restart_read_the_restarted_process() {
    let dir = TempDir::new("cpu-clocks");
    let program = compile_c(&dir, "timers", TIMERS_C, &[]);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &["clocks"]), "timers clocks");
    wait_for(&mut proc, "ready");
    wait_for(&mut proc, "ok 3");
    for restart in 1..=2 {
        proc.signal(libc::SIGTSTP);
        proc.wait_success(TIMEOUT);
        expect_checkpoint(&mut proc, &checkpoint);
        let label = format!("timers.ckpt clocks (restart {restart})");
        proc = Proc::spawn(restart_command(&dir, &checkpoint), &label);
        wait_for(&mut proc, &format!("restart {restart} ok"));
        // Rounds after the restart: the checks run in each.
        for _ in 0..3 {
            wait_for(&mut proc, "ok ");
        }
        expect_quiet_library(&mut proc);
    }
    proc.kill();
}

#[test]
fn timers_beyond_what_a_checkpoint_holds_are_reported_not_dropped_silently() {
    let dir = TempDir::new("many-timers");
    let program = compile_c(&dir, "timers", TIMERS_C, &[]);
    let checkpoint = checkpoint_path(&dir, &program);
    let count = 1100;
    let mut original = Proc::spawn(
        ckpt_command(&dir, &program, &["many", &count.to_string()]),
        "timers many",
    );
    wait_for(&mut original, "ok 2");
    original.signal(libc::SIGTSTP);
    original.wait_exit_only(TIMEOUT);
    expect_checkpoint(&mut original, &checkpoint);
    let said = original.stderr();
    if !said.contains("POSIX timers") {
        original.fail("the checkpoint did not say that it left timers out");
    }
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "timers.ckpt many");
    let line = wait_for(&mut restarted, "restart 1 live ");
    let live = number_after(&line, "restart 1 live ").expect("a count");
    if live == 0 || live >= count {
        restarted.fail(&format!("{live} of {count} timers live after the restart"));
    }
    restarted.wait_stderr("POSIX timers", TIMEOUT);
    restarted.kill();
}

#[test]
fn a_timer_that_cannot_be_made_again_is_named_and_the_program_goes_on() {
    // A timer on the CPU clock of a thread that has ended: a restarted process has no such
    // thread (nor could the library make one).
    let dir = TempDir::new("stranger-timer");
    let program = compile_c(&dir, "timers", TIMERS_C, &[]);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut original = Proc::spawn(
        ckpt_command(&dir, &program, &["stranger"]),
        "timers stranger",
    );
    let id = number_after(&wait_for(&mut original, "id "), "id ").expect("a timer id");
    wait_for(&mut original, "ok 2");
    original.signal(libc::SIGTSTP);
    original.wait_success(TIMEOUT);
    expect_checkpoint(&mut original, &checkpoint);
    expect_quiet_library(&mut original);

    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "timers.ckpt stranger");
    wait_for(&mut restarted, "restart 1 gettime ");
    wait_for(&mut restarted, "ok ");
    let said = format!("ckpt: POSIX timer {id} (CPU-time clock of thread ");
    restarted.wait_stderr(&said, TIMEOUT);
    if !restarted.stderr().contains("is not restored") {
        restarted.fail("the line about the timer does not say it is not restored");
    }
    restarted.kill();
}

#[test]
fn where_the_kernel_cannot_give_timers_their_ids_the_restart_names_them() {
    // Linux before 6.16, as a seccomp filter makes it look: a timer under another id would
    // answer to the wrong timer_t, so none is made, and the restart says which.
    let dir = TempDir::new("no-timer-ids");
    let program = compile_c(&dir, "timers", TIMERS_C, &[]);
    let old_kernel = compile_c(&dir, "no_timer_ids", NO_TIMER_IDS_C, &[]);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut original = Proc::spawn(ckpt_command(&dir, &program, &["many", "3"]), "timers many");
    wait_for(&mut original, "ok 2");
    original.signal(libc::SIGTSTP);
    original.wait_success(TIMEOUT);
    expect_checkpoint(&mut original, &checkpoint);
    expect_quiet_library(&mut original);

    let mut command = Command::new(&old_kernel);
    command.arg(&checkpoint).current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    let mut restarted = Proc::spawn(command, "timers.ckpt (no timer ids)");
    wait_for(&mut restarted, "restart 1 live 0");
    restarted.wait_stderr(
        "POSIX timers cannot be made again with their ids here",
        TIMEOUT,
    );
    if !restarted
        .stderr()
        .contains("3 timers (ids 0 1 2) are not restored")
    {
        restarted.fail("the line does not name the three timers");
    }
    restarted.kill();
}
