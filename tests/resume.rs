//! `ckpt --resume`: one command line that starts a program the first time and resumes it from
//! its checkpoint every time after; a damaged checkpoint is refused (or, when asked, moved
//! aside); and a batch scheduler's preempt-and-requeue cycle, simulated with a job script.

mod damaged;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ckpt_tests::*;

/// Prints 1..LAST (first argument), one every INTERVAL ms (second argument), then `done`.
const COUNT_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include "common.h"
int main(int argc, char **argv)
{
    long last = argc > 1 ? atol(argv[1]) : 100;
    long interval = argc > 2 ? atol(argv[2]) : 10;
    for (long n = 1; n <= last; n++) {
        printf("%ld\n", n);
        fflush(stdout);
        sleep_ms(interval);
    }
    printf("done\n");
    return 0;
}
"#;

/// `ckpt --resume -n job.ckpt ./count ARGS…` in `dir`.
fn resume_command(dir: &TempDir, args: &[&str]) -> Command {
    let mut all = vec!["-n", "job.ckpt", "./count"];
    all.extend_from_slice(args);
    ckpt_command(dir, Path::new("--resume"), &all)
}

fn number(proc: &mut Proc, line: &str) -> u64 {
    match line.trim().parse() {
        Ok(n) => n,
        Err(_) => proc.fail(&format!("expected a number, got {line:?}")),
    }
}

/// Reads the first line and three more from a counting run, checks they count on from
/// `after` (the first is `after + 1`), checkpoints it with SIGTSTP, and returns the last
/// number it printed.
fn count_then_checkpoint(proc: &mut Proc, after: u64) -> u64 {
    let lines = proc.wait_lines(4, TIMEOUT);
    let numbers: Vec<u64> = lines.iter().map(|line| number(proc, line)).collect();
    let expected: Vec<u64> = (after + 1..after + 5).collect();
    if numbers != expected {
        proc.fail(&format!("expected {expected:?}, got {numbers:?}"));
    }
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    let mut last = after + 4;
    for line in rest {
        let n = number(proc, &line);
        if n != last + 1 {
            proc.fail(&format!("{n} after {last}"));
        }
        last = n;
    }
    last
}

#[test]
fn the_same_command_line_starts_then_resumes() {
    let dir = TempDir::new("resume-cycle");
    compile_c(&dir, "count", COUNT_C, &[]);
    let checkpoint = dir.join("job.ckpt");

    // No checkpoint yet: a fresh start, which writes job.ckpt when signalled.
    let mut first = Proc::spawn(resume_command(&dir, &["200", "10"]), "first start");
    let last = count_then_checkpoint(&mut first, 0);
    expect_checkpoint(&mut first, &checkpoint);
    if first.stderr().contains("resuming") {
        first.fail("a fresh start said it was resuming");
    }

    // The same command line resumes it, and the resumed program checkpoints to the same
    // file again. The arguments given are ignored: the saved ones apply (it counts to 200).
    let mut second = Proc::spawn(resume_command(&dir, &["3", "10"]), "second run");
    let last = count_then_checkpoint(&mut second, last);
    if !second
        .stderr()
        .contains("ckpt: --resume: resuming job.ckpt")
    {
        second.fail("expected one line saying it resumes job.ckpt");
    }

    // And once more, to the end.
    let finished = run_to_end(resume_command(&dir, &["3", "10"]), "last run", TIMEOUT);
    let mut expected: Vec<String> = (last + 1..=200).map(|n| n.to_string()).collect();
    expected.push("done".to_owned());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    finished.expect_success_with("last run", &expected);
    // The last checkpoint stays after the program ends (README: a finished job leaves it).
    if !checkpoint.is_file() {
        finished.fail("last run", "job.ckpt is gone");
    }
}

#[test]
fn the_default_name_is_prog_ckpt_in_the_working_directory() {
    let dir = TempDir::new("resume-default");
    compile_c(&dir, "count", COUNT_C, &[]);
    let command = |args: &[&str]| {
        let mut all = vec!["./count"];
        all.extend_from_slice(args);
        ckpt_command(&dir, Path::new("--resume"), &all)
    };
    let mut first = Proc::spawn(command(&["100", "10"]), "first start");
    let last = count_then_checkpoint(&mut first, 0);
    expect_checkpoint(&mut first, &dir.join("count.ckpt"));
    let mut second = Proc::spawn(command(&["100", "10"]), "second run");
    let next = second.next_number();
    if next != last + 1 {
        second.fail(&format!("resumed at {next}, expected {}", last + 1));
    }
    second.kill();
}

/// A real checkpoint of the infinite counter, damaged by `damage`, as `job.ckpt` beside the
/// counter (named `count`, the program `--resume` would start).
fn damaged_job(label: &str, damage: impl FnOnce(&damaged::Base) -> Vec<u8>) -> (TempDir, Vec<u8>) {
    let base = damaged::Base::new(label);
    let bytes = damage(&base);
    let dir = TempDir::new(&format!("{label}-job"));
    std::fs::write(dir.join("job.ckpt"), &bytes).expect("write job.ckpt");
    std::fs::set_permissions(dir.join("job.ckpt"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod job.ckpt");
    compile_c(&dir, "count", COUNT_C, &[]);
    (dir, bytes)
}

fn payload_flipped(base: &damaged::Base) -> Vec<u8> {
    let extent = base.extent_of(ckpt_image::region_flags::STACK);
    base.flip(extent.file_offset as usize + 8, 0)
}

fn truncated(base: &damaged::Base) -> Vec<u8> {
    base.bytes[..base.bytes.len() / 2].to_vec()
}

/// `--resume` refuses a damaged job.ckpt with `status` in one line naming it, starts
/// nothing and leaves the file as it was.
fn refused(dir: &TempDir, bytes: &[u8], status: i32, what: &str) {
    let finished = run_to_end(resume_command(dir, &["5", "1"]), "ckpt --resume", TIMEOUT);
    let label = format!("--resume with a {what} job.ckpt");
    if finished.status.code() != Some(status) {
        finished.fail(&label, &format!("expected exit status {status}"));
    }
    if !finished.stdout.is_empty() {
        finished.fail(&label, "the program started");
    }
    let lines: Vec<&str> = finished.stderr.lines().collect();
    if lines.len() != 1
        || !lines[0].starts_with("ckpt: --resume: job.ckpt: ")
        || !lines[0].contains(what)
        || !lines[0].contains("fresh-if-damaged")
    {
        finished.fail(
            &label,
            &format!("expected one line naming job.ckpt, {what}"),
        );
    }
    if std::fs::read(dir.join("job.ckpt")).ok().as_deref() != Some(bytes) {
        finished.fail(&label, "job.ckpt was changed");
    }
    if dir.join("job.ckpt.damaged").exists() {
        finished.fail(&label, "job.ckpt was moved aside");
    }
}

#[test]
fn a_damaged_payload_is_refused_with_the_verify_status() {
    let (dir, bytes) = damaged_job("resume-payload", payload_flipped);
    refused(&dir, &bytes, 75, "payload is damaged");
}

#[test]
fn a_truncated_checkpoint_is_refused_with_the_verify_status() {
    let (dir, bytes) = damaged_job("resume-truncated", truncated);
    refused(&dir, &bytes, 69, "truncated");
}

#[test]
fn fresh_if_damaged_starts_afresh_and_keeps_the_damaged_file() {
    let (dir, bytes) = damaged_job("resume-fresh", payload_flipped);
    let command = ckpt_command(
        &dir,
        Path::new("--resume=fresh-if-damaged"),
        &["-n", "job.ckpt", "./count", "100", "10"],
    );
    let mut proc = Proc::spawn(command, "--resume=fresh-if-damaged");
    count_then_checkpoint(&mut proc, 0);
    let stderr = proc.stderr();
    let said = stderr.lines().any(|line| {
        line.starts_with("ckpt: --resume: job.ckpt: ")
            && line.contains("payload is damaged")
            && line.contains("moved it to job.ckpt.damaged and starting afresh")
    });
    if !said {
        proc.fail("expected one line saying it moved job.ckpt aside and starts afresh");
    }
    if std::fs::read(dir.join("job.ckpt.damaged")).ok() != Some(bytes) {
        proc.fail("job.ckpt.damaged does not hold the damaged file");
    }
    // The fresh start's own checkpoint took the name, and it verifies.
    expect_checkpoint(&mut proc, &dir.join("job.ckpt"));
    let verify = run_to_end(
        ckpt_tool(&dir, &["verify", "job.ckpt"]),
        "ckpt verify",
        TIMEOUT,
    );
    if verify.status.code() != Some(0) {
        verify.fail("ckpt verify", "the fresh checkpoint does not verify");
    }
}

// ---------------------------------------------------------------------------------------------
// A batch scheduler, simulated

/// Writes the job script: what a SLURM job would run, the same on every requeue. It says on
/// stderr that it started (not on stdout, which must match an uninterrupted run's), then
/// `exec`s ckpt, so that the program is the batch shell's own process and takes the signal
/// a scheduler sends to it (`--signal=B:TSTP`) or to its process group.
fn job_script(dir: &TempDir, period_ms: u32) -> PathBuf {
    let text = format!(
        "#!/bin/sh\necho attempt >&2\nexec '{}' --resume -n job.ckpt -z {period_ms} ./count 150 10\n",
        ckpt_bin().display()
    );
    let path = dir.join("job.sh");
    std::fs::write(&path, text).expect("write job.sh");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    compile_c(dir, "count", COUNT_C, &[]);
    path
}

/// `sh job.sh` in its own process group, as a scheduler starts a batch script.
fn job_command(dir: &TempDir) -> Command {
    let mut command = Command::new("./job.sh");
    command.current_dir(dir.path()).process_group(0);
    clear_ckpt_settings(&mut command);
    command.env_remove("BASH_ENV").env_remove("ENV");
    command
}

/// Sends `signal` to the job's process group, as a scheduler does.
fn signal_job(proc: &mut Proc, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions; the group is our child's own (it
    // stays a zombie, keeping the group id from reuse, until we wait for it).
    if unsafe { libc::kill(-proc.pid(), signal) } != 0 {
        let error = std::io::Error::last_os_error();
        proc.fail(&format!("kill(-{}, {signal}): {error}", proc.pid()));
    }
}

#[test]
fn a_preempted_and_requeued_job_ends_as_an_uninterrupted_one() {
    let uninterrupted_dir = TempDir::new("sched-whole");
    job_script(&uninterrupted_dir, 600_000);
    let whole = run_to_end(
        job_command(&uninterrupted_dir),
        "uninterrupted job",
        Duration::from_secs(30),
    );
    if whole.status.code() != Some(0) || whole.lines().last() != Some(&"done") {
        whole.fail("uninterrupted job", "expected it to count to the end");
    }

    let dir = TempDir::new("sched-preempted");
    job_script(&dir, 600_000);
    let mut output: Vec<String> = Vec::new();
    for attempt in 1..=3 {
        let label = format!("attempt {attempt}");
        let mut proc = Proc::spawn(job_command(&dir), &label);
        // Preemption: the scheduler's signal once the job has made progress.
        proc.wait_lines(3, TIMEOUT);
        signal_job(&mut proc, libc::SIGTSTP);
        let status = proc.wait_exit(TIMEOUT);
        if !status.success() {
            proc.fail(&format!(
                "expected the checkpoint to end it with status 0, got {}",
                describe_status(status)
            ));
        }
        let rest = proc.rest_of_output();
        output.extend(proc.seen().iter().cloned());
        output.extend(rest);
        if attempt > 1 && !proc.stderr().contains("resuming job.ckpt") {
            proc.fail("the requeued job did not resume its checkpoint");
        }
        expect_checkpoint(&mut proc, &dir.join("job.ckpt"));
    }
    let last = run_to_end(job_command(&dir), "last attempt", Duration::from_secs(30));
    output.extend(last.lines().into_iter().map(str::to_owned));
    if output != whole.lines() {
        last.fail(
            "last attempt",
            &format!(
                "the attempts together printed {output:?}, the uninterrupted job {:?}",
                whole.lines()
            ),
        );
    }
}

#[test]
fn after_a_node_failure_the_job_resumes_from_its_last_periodic_checkpoint() {
    let dir = TempDir::new("sched-node-failure");
    job_script(&dir, 200);
    let mut proc = Proc::spawn(job_command(&dir), "attempt before the failure");
    proc.wait_for_file(&dir.join("job.ckpt"));
    proc.wait_lines(5, TIMEOUT);
    // The node dies: no signal to checkpoint on, just the end.
    signal_job(&mut proc, libc::SIGKILL);
    proc.wait_exit_only(TIMEOUT);
    let before: Vec<u64> = proc
        .seen()
        .iter()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    let last_seen = *before.last().expect("numbers before the failure");

    let after = run_to_end(job_command(&dir), "attempt after the failure", TIMEOUT);
    let lines = after.lines();
    let Some(first) = lines.first().and_then(|line| line.parse::<u64>().ok()) else {
        after.fail("attempt after the failure", "expected numbers");
    };
    // It goes back to the last periodic checkpoint: no further than the failure, and not
    // to the beginning (the checkpoint was written before the lines read after it).
    if first < 2 || first > last_seen + 1 {
        after.fail(
            "attempt after the failure",
            &format!("resumed at {first}; the failed attempt printed up to {last_seen}"),
        );
    }
    let mut expected: Vec<String> = (first..=150).map(|n| n.to_string()).collect();
    expected.push("done".to_owned());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    after.expect_success_with("attempt after the failure", &expected);
}
