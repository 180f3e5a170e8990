//! Checkpoint storms: many checkpoint signals against a program that continues after each
//! (`-c`) while its forked writers are still writing. At most one writer may run at a time,
//! every writer is reaped, and no temp file outlives its writer; the storm coalesces into
//! a few checkpoints, and the last one restarts.

use std::path::Path;
use std::time::{Duration, Instant};

use ckpt_tests::*;

/// Touches MIB mebibytes (first argument), prints "ready", then a "tick N" line every 10 ms
/// with a checksum of its memory, which must survive checkpoints and restarts.
const BIG_TICKER_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "common.h"

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 256;
    size_t words = (mib << 20) / 8;
    uint64_t *m = malloc(words * 8);
    for (size_t i = 0; i < words; i++)
        m[i] = mix64(i);
    printf("ready\n");
    fflush(stdout);
    for (unsigned long n = 1;; n++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < words; i += 4096)
            sum += m[i] ^ mix64(i);
        printf("tick %lu %s\n", n, sum == 0 ? "intact" : "DAMAGED");
        fflush(stdout);
        sleep_ms(10);
    }
}
"#;

/// `ckpt -c bigticker 256`.
fn continuing(dir: &TempDir, program: &Path) -> std::process::Command {
    let mut command = ckpt_command(dir, program, &["256"]);
    command.env("CKPT_CONTINUE", "1");
    command
}

/// The children of process `pid` (its writers), as `(pid, state)`.
fn children(pid: i32) -> Vec<(i32, char)> {
    let list =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace()
        .filter_map(|c| c.parse::<i32>().ok())
        .filter_map(|c| Some((c, process_state(c)?)))
        .collect()
}

/// Bytes process `pid` has written so far (`wchar` of /proc/PID/io).
fn written_by(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("wchar: ")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Files in `dir` whose names say they are temp files of a checkpoint.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn a_storm_of_checkpoint_signals_runs_one_writer_at_a_time() {
    let dir = TempDir::new("storm");
    let program = compile_c(&dir, "bigticker", BIG_TICKER_C, &[]);
    let mut proc = Proc::spawn(continuing(&dir, &program), "ckpt -c bigticker");
    proc.wait_line("ready");
    let pid = proc.pid();

    // 100 checkpoint signals in one second, watching the writers between them.
    let mut most = 0;
    let start = Instant::now();
    for k in 0..100u32 {
        proc.signal(libc::SIGTSTP);
        let writers = children(pid);
        most = most.max(writers.len());
        assert!(
            writers.len() <= 1,
            "{} writers at once after {k} signals: {writers:?}",
            writers.len()
        );
        let next = start + Duration::from_millis(10 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    assert!(most >= 1, "no writer was ever seen: the storm did nothing");

    // It settles: the checkpoint coalesced from the last signals runs after the writer that
    // was running, then every writer has been reaped (no zombie) and no temp file is left.
    // Settled means so for a whole second; until then there is still never more than one.
    let deadline = Instant::now() + TIMEOUT * 3;
    let mut quiet_since: Option<Instant> = None;
    loop {
        let writers = children(pid);
        let temps = temp_files(dir.path());
        assert!(
            writers.len() <= 1,
            "{} writers at once: {writers:?}",
            writers.len()
        );
        if writers.is_empty() && temps.is_empty() {
            if quiet_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(1) {
                break;
            }
        } else {
            quiet_since = None;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: writers {writers:?}, temp files {temps:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let checkpoint = checkpoint_path(&dir, &program);
    let line = proc.wait_line_matching("a tick", TIMEOUT, |l| l.starts_with("tick "));
    assert!(line.ends_with("intact"), "{line}");
    proc.kill();
    assert!(
        !proc.stderr().contains("failed"),
        "a checkpoint failed: {}",
        proc.stderr()
    );

    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "restart");
    let line = restarted.wait_line_matching("a tick", TIMEOUT, |l| l.starts_with("tick "));
    assert!(line.ends_with("intact"), "{line}");
    restarted.kill();
}

#[test]
fn a_writer_killed_half_way_leaves_no_temp_file_and_says_so() {
    let dir = TempDir::new("writer-killed");
    let program = compile_c(&dir, "bigticker", BIG_TICKER_C, &[]);
    let mut proc = Proc::spawn(continuing(&dir, &program), "ckpt -c bigticker");
    proc.wait_line("ready");
    let pid = proc.pid();
    let mut request = Proc::spawn(
        ckpt_tool(&dir, &["checkpoint", &pid.to_string()]),
        "ckpt checkpoint",
    );
    let deadline = Instant::now() + TIMEOUT;
    let writer = loop {
        if let Some(&(writer, _)) = children(pid).first() {
            break writer;
        }
        assert!(Instant::now() < deadline, "no writer started");
        std::thread::sleep(Duration::from_millis(1));
    };
    // Half-way: once it has written some of the image (killed before it has checked that it
    // sees all of the process, it is not the writer: the program then writes by itself).
    while written_by(writer) < 16 << 20 {
        assert!(Instant::now() < deadline, "the writer wrote nothing");
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: kill(2) on the writer child we just saw.
    unsafe { libc::kill(writer, libc::SIGKILL) };
    let status = request.wait_exit_only(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", request.stderr());
    assert!(
        request.stderr().contains(&format!(
            "the image writer (process {writer}) was killed by signal 9"
        )),
        "{}",
        request.stderr()
    );
    assert!(
        children(pid).is_empty(),
        "the killed writer was never reaped"
    );
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
    assert!(!checkpoint_path(&dir, &program).exists());
    // The program goes on, and the next checkpoint works.
    proc.wait_line_matching("a tick", TIMEOUT, |l| l.starts_with("tick "));
    proc.signal(libc::SIGTSTP);
    proc.wait_for_file(&checkpoint_path(&dir, &program));
    proc.kill();
}
