//! Saying where the checkpoint went: a checkpoint that ends the program prints one line on
//! stderr with the file's path and size (unless CKPT_QUIET=1); `ckpt checkpoint` reports its
//! progress (bytes of memory written of the total, the rate).

use std::path::Path;
use std::time::Duration;

use ckpt_tests::*;

/// Touches `MIB` MiB of memory, prints `ready`, then counts.
const BIG: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    size_t size = (size_t)atoi(argc > 1 ? argv[1] : "1") << 20;
    char *memory = malloc(size);
    for (size_t i = 0; i < size; i += 4096) memory[i] = (char)(i >> 12) | 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    for (unsigned long n = 1;; n++) {
        printf("%lu\n", n);
        usleep(5000);
    }
}
"#;

/// "100 bytes", "1 MiB", "5.5 MiB": the largest binary unit reached (up to GiB), with one
/// decimal, rounded down, where it is not whole — as the library writes sizes.
fn size_text(size: u64) -> String {
    let (unit, shift) = [(" GiB", 30), (" MiB", 20), (" KiB", 10)]
        .into_iter()
        .find(|&(_, shift)| size >> shift > 0)
        .unwrap_or((" bytes", 0));
    let tenths = ((size as u128 * 10) >> shift) as u64;
    match tenths % 10 {
        0 => format!("{}{unit}", tenths / 10),
        d => format!("{}.{d}{unit}", tenths / 10),
    }
}

/// Runs BIG under ckpt with `args` and `env`, checkpoints it with SIGTSTP and returns its
/// stderr.
fn checkpoint_stderr(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> String {
    compile_c(dir, "big", BIG, &[]);
    let mut command = ckpt_command(dir, Path::new("./big"), &[]);
    command.args(args);
    command.envs(env.iter().copied());
    let mut proc = Proc::spawn(command, "ckpt big");
    proc.wait_line("ready");
    proc.checkpoint_and_collect(TIMEOUT);
    proc.stderr()
}

#[test]
fn a_checkpoint_that_ends_the_program_says_where_it_went() {
    let dir = TempDir::new("telling-line");
    let stderr = checkpoint_stderr(&dir, &["8"], &[]);
    let file = dir.join("big.ckpt");
    let size = std::fs::metadata(&file).expect("big.ckpt written").len();
    let expected = format!(
        "ckpt: wrote {} ({}); run it to resume the program\n",
        file.display(),
        size_text(size)
    );
    assert_eq!(stderr, expected);

    // A relative -n name is shown resolved in the program's working directory.
    std::fs::create_dir(dir.join("sub")).expect("mkdir sub");
    let mut command = ckpt_command(&dir, Path::new("./big"), &[]);
    command.args(["1"]).env("CKPT_NAME", "sub/named.ckpt");
    let mut proc = Proc::spawn(command, "ckpt big -n");
    proc.wait_line("ready");
    proc.checkpoint_and_collect(TIMEOUT);
    let file = dir.join("sub/named.ckpt");
    let size = std::fs::metadata(&file)
        .expect("sub/named.ckpt written")
        .len();
    assert_eq!(
        proc.stderr(),
        format!(
            "ckpt: wrote {} ({}); run it to resume the program\n",
            file.display(),
            size_text(size)
        )
    );

    // The restart resumes, and the line was the only thing said.
    let mut resumed = Proc::spawn(restart_command(&dir, &file), "restart");
    resumed.next_number();
    resumed.kill();
}

#[test]
fn ckpt_quiet_keeps_the_line_back() {
    let dir = TempDir::new("telling-quiet");
    let stderr = checkpoint_stderr(&dir, &["1"], &[("CKPT_QUIET", "1")]);
    assert_eq!(stderr, "", "CKPT_QUIET=1 prints nothing");
    assert!(dir.join("big.ckpt").is_file());
}

#[test]
fn a_checkpoint_that_continues_says_nothing() {
    let dir = TempDir::new("telling-continue");
    compile_c(&dir, "big", BIG, &[]);
    let mut command = ckpt_command(&dir, Path::new("./big"), &["1"]);
    command.env("CKPT_CONTINUE", "1");
    let mut proc = Proc::spawn(command, "ckpt -c big");
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    proc.wait_for_file(&dir.join("big.ckpt"));
    proc.wait_lines(3, TIMEOUT);
    proc.kill();
    assert_eq!(proc.stderr(), "", "the program goes on: nothing to say");
}

/// `ckpt checkpoint PID` with CKPT_PROGRESS set as given; returns its stderr.
fn requested_checkpoint_stderr(dir: &TempDir, progress: Option<&str>) -> String {
    compile_c(dir, "big", BIG, &[]);
    let mut proc = Proc::spawn(ckpt_command(dir, Path::new("./big"), &["64"]), "ckpt big");
    proc.wait_line("ready");
    let mut command = ckpt_tool(
        dir,
        &["checkpoint", &proc.pid().to_string(), "--timeout", "20"],
    );
    if let Some(progress) = progress {
        command.env("CKPT_PROGRESS", progress);
    }
    let result = run_to_end(command, "ckpt checkpoint", Duration::from_secs(30));
    if result.status.code() != Some(0) {
        result.fail("ckpt checkpoint", "expected success");
    }
    proc.kill();
    result.stderr
}

/// "ckpt checkpoint: 1.5 GiB of 2 GiB written (75%), 768 MiB/s" → (done, total, percent).
fn progress_of(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix("ckpt checkpoint: ")?;
    let (done, rest) = rest.split_once(" of ")?;
    let (total, rest) = rest.split_once(" written (")?;
    let (percent, rest) = rest.split_once("%), ")?;
    rest.ends_with("/s").then_some((done, total, percent))
}

#[test]
fn ckpt_checkpoint_reports_progress_when_asked() {
    let dir = TempDir::new("telling-progress");
    let stderr = requested_checkpoint_stderr(&dir, Some("1"));
    let lines: Vec<&str> = stderr.lines().collect();
    let reports: Vec<(&str, &str, &str)> = lines.iter().filter_map(|l| progress_of(l)).collect();
    assert_eq!(reports.len(), lines.len(), "only progress lines: {stderr}");
    // The first report says nothing is written yet, the last that all is; the total is the
    // program's memory (64 MiB touched, plus its code and libraries).
    let (first, last) = (reports[0], reports[reports.len() - 1]);
    assert!(reports.len() >= 2, "{stderr}");
    assert_eq!((first.0, first.2), ("0 B", "0"), "{stderr}");
    assert_eq!((last.0, last.2), (last.1, "100"), "{stderr}");
    let total_mib: f64 = last
        .1
        .strip_suffix(" MiB")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("total in MiB: {stderr}"));
    assert!((64.0..100.0).contains(&total_mib), "{stderr}");
}

#[test]
fn ckpt_checkpoint_reports_no_progress_off_a_terminal() {
    let dir = TempDir::new("telling-no-progress");
    assert_eq!(requested_checkpoint_stderr(&dir, None), "");
    let dir = TempDir::new("telling-progress-off");
    assert_eq!(requested_checkpoint_stderr(&dir, Some("0")), "");
}
