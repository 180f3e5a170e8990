//! Saying where the checkpoint went: a checkpoint that ends the program prints one line on
//! stderr with the file's path and size (unless CKPT_QUIET=1); `ckpt checkpoint` reports its
//! progress (bytes of memory written of the total, the rate): with CKPT_PROGRESS=1 a line
//! each, and on a terminal, once a second has gone by, one line redrawn in place.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ckpt_tests::*;

/// Touches `MIB` MiB of memory, prints `ready`, then counts. With a second argument `MS`,
/// a pre-checkpoint hook waits `MS` milliseconds: every checkpoint takes that much longer
/// (the hooks run after `ckpt checkpoint` has asked, before the memory is written), on any
/// machine. Memory alone would tie the test to the speed of the disk and page cache, which
/// varies several times over (README), and would need a GiB or more.
const BIG: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"
extern void ckpt_on_preckpt(void (*f)(void *), void *arg) __attribute__((weak));
static long hook_ms;
static void slow_hook(void *arg) { (void)arg; sleep_ms(hook_ms); }
int main(int argc, char **argv) {
    size_t size = (size_t)atoi(argc > 1 ? argv[1] : "1") << 20;
    if (argc > 2) {
        if (!ckpt_on_preckpt) {
            fprintf(stderr, "big: no ckpt_on_preckpt: is libckpt.so loaded?\n");
            return 2;
        }
        hook_ms = atol(argv[2]);
        ckpt_on_preckpt(slow_hook, NULL);
    }
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

/// A progress report as shown, its sizes as written ("1.5 GiB").
#[derive(Clone, Copy, Debug)]
struct Report<'a> {
    done: &'a str,
    total: &'a str,
    percent: &'a str,
    /// Bytes a second ("768 MiB"); none in the first report, before any time has passed.
    rate: Option<&'a str>,
}

/// "ckpt checkpoint: 1.5 GiB of 2 GiB written (75%), 768 MiB/s", or the same without the
/// rate.
fn progress_of(line: &str) -> Option<Report<'_>> {
    let rest = line.strip_prefix("ckpt checkpoint: ")?;
    let (done, rest) = rest.split_once(" of ")?;
    let (total, rest) = rest.split_once(" written (")?;
    let (percent, rest) = rest.split_once("%)")?;
    let rate = match rest {
        "" => None,
        rest => Some(rest.strip_prefix(", ")?.strip_suffix("/s")?),
    };
    Some(Report {
        done,
        total,
        percent,
        rate,
    })
}

/// The bytes a size as the command writes it stands for ("66.8 MiB"), to a tenth of its
/// unit.
fn bytes_of(size: &str) -> Option<f64> {
    let (number, unit) = size.split_once(' ')?;
    let shift = ["B", "KiB", "MiB", "GiB", "TiB"]
        .iter()
        .position(|&u| u == unit)?;
    Some(number.parse::<f64>().ok()? * (1u64 << (10 * shift)) as f64)
}

#[test]
fn ckpt_checkpoint_reports_progress_when_asked() {
    let dir = TempDir::new("telling-progress");
    let stderr = requested_checkpoint_stderr(&dir, Some("1"));
    let lines: Vec<&str> = stderr.lines().collect();
    let reports: Vec<Report> = lines.iter().filter_map(|l| progress_of(l)).collect();
    assert_eq!(reports.len(), lines.len(), "only progress lines: {stderr}");
    // The first report says nothing is written yet, and as the first, no rate; the last
    // says that all is; the total is the program's memory (64 MiB touched, plus its code
    // and libraries).
    assert!(reports.len() >= 2, "{stderr}");
    let (first, last) = (reports[0], reports[reports.len() - 1]);
    assert_eq!((first.done, first.percent), ("0 B", "0"), "{stderr}");
    assert_eq!(first.rate, None, "{stderr}");
    assert_eq!((last.done, last.percent), (last.total, "100"), "{stderr}");
    let total_mib: f64 = last
        .total
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

// ---------------------------------------------------------------------------------------------
// On a terminal

/// The terminal `ckpt checkpoint` ran on: what it showed, how it ended, how long it took.
struct OnTerminal {
    /// Everything written to the terminal, with the "\r\n" the terminal makes of a "\n"
    /// (ONLCR) turned back into "\n".
    shown: String,
    status: ExitStatus,
    took: Duration,
}

impl OnTerminal {
    #[track_caller]
    fn fail(&self, message: &str) -> ! {
        panic!(
            "ckpt checkpoint on a terminal: {message}\n  status: {}\n  took: {:?}\n  \
             the terminal showed: {:?}",
            describe_status(self.status),
            self.took,
            self.shown
        );
    }
}

/// Runs `command` with its stdout and stderr on a new pseudo-terminal (as at a shell, where
/// both show on the same screen, in the order written), `columns` wide if given, and reads
/// the terminal until the command has ended and closed it; fails after `timeout`.
fn run_on_terminal(mut command: Command, columns: Option<u16>, timeout: Duration) -> OnTerminal {
    let (mut master, slave) = pseudo_terminal("ckpt checkpoint");
    if let Some(columns) = columns {
        size_terminal(&master, columns, 24);
    }
    command
        .stdin(Stdio::null())
        .stdout(slave.try_clone().expect("dup the terminal"))
        .stderr(slave);
    let started = Instant::now();
    let mut child =
        try_spawn(&mut command).unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    // The command keeps the terminal's slave side open in this process until it is dropped.
    drop(command);

    // Reading the master side ends in EIO once no process has the slave open.
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = master.read(&mut buffer) {
            if n == 0 {
                break;
            }
            shown.extend_from_slice(&buffer[..n]);
        }
        let _ = sender.send(shown);
    });
    let shown = match received.recv_timeout(timeout) {
        Ok(shown) => shown,
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().expect("wait for ckpt checkpoint");
            let shown = received
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| b"(the terminal stayed open)".to_vec());
            OnTerminal {
                shown: String::from_utf8_lossy(&shown).replace("\r\n", "\n"),
                status,
                took: started.elapsed(),
            }
            .fail(&format!("did not end within {timeout:?}"));
        }
    };
    let took = started.elapsed();
    // The terminal is closed: the command has ended, or is about to.
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for ckpt checkpoint") {
            Some(status) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            None => {
                let _ = child.kill();
                panic!("ckpt checkpoint closed its terminal but did not end within {TIMEOUT:?}");
            }
        }
    };
    OnTerminal {
        shown: String::from_utf8_lossy(&shown).replace("\r\n", "\n"),
        status,
        took,
    }
}

/// `ckpt checkpoint PID` on a terminal for `big MIB [HOOK_MS]`, with CKPT_PROGRESS as
/// given; returns what the terminal showed and the answer line expected at its end.
fn requested_checkpoint_on_terminal(
    dir: &TempDir,
    big_args: &[&str],
    progress: Option<&str>,
) -> (OnTerminal, String) {
    requested_checkpoint_on_sized_terminal(dir, big_args, progress, None)
}

/// As `requested_checkpoint_on_terminal`, on a terminal `columns` wide if given (a new one
/// does not say how wide it is).
fn requested_checkpoint_on_sized_terminal(
    dir: &TempDir,
    big_args: &[&str],
    progress: Option<&str>,
    columns: Option<u16>,
) -> (OnTerminal, String) {
    compile_c(dir, "big", BIG, &[]);
    let mut proc = Proc::spawn(ckpt_command(dir, Path::new("./big"), big_args), "ckpt big");
    proc.wait_line("ready");
    let pid = proc.pid();
    let mut command = ckpt_tool(dir, &["checkpoint", &pid.to_string(), "--timeout", "20"]);
    if let Some(progress) = progress {
        command.env("CKPT_PROGRESS", progress);
    }
    let terminal = run_on_terminal(command, columns, Duration::from_secs(30));
    proc.kill();
    if terminal.status.code() != Some(0) {
        terminal.fail("expected exit status 0");
    }
    let answer = format!(
        "ckpt checkpoint: {pid} checkpointed to big.ckpt ({})\n",
        dir.join("big.ckpt").display()
    );
    (terminal, answer)
}

/// The pre-checkpoint hook's wait: more than the second a terminal stays quiet for.
const SLOW_HOOK_MS: &str = "1200";

/// The reports drawn in place before the answer, each as drawn: "\r", the report and
/// "\x1b[K" (erase the rest of a longer line before it), with no newline between reports;
/// then "\r\x1b[K" erases the line, and the answer is printed on the clean line.
fn drawn_reports<'a>(terminal: &'a OnTerminal, answer: &str) -> Vec<&'a str> {
    let Some(drawn) = terminal.shown.strip_suffix(answer) else {
        terminal.fail(&format!("expected it to end with the answer {answer:?}"));
    };
    let Some(drawn) = drawn.strip_suffix("\r\x1b[K") else {
        terminal.fail("expected the progress line erased (\"\\r\\x1b[K\") before the answer");
    };
    if drawn.contains('\n') {
        terminal.fail("expected no newline before the answer: one line, redrawn");
    }
    let Some(drawn) = drawn.strip_prefix('\r') else {
        terminal.fail("expected the first report to start with \"\\r\"");
    };
    let mut reports = Vec::new();
    for report in drawn.split('\r') {
        match report.strip_suffix("\x1b[K") {
            Some(report) => reports.push(report),
            None => terminal.fail(&format!(
                "expected \"\\r\", a progress report and \"\\x1b[K\", not {report:?}"
            )),
        }
    }
    reports
}

/// Past its first second, the progress is one line drawn over and over in place (as
/// `drawn_reports` reads it), from nothing written to all of it; the rate is of the writing
/// alone, not of the hook's wait before it.
#[test]
fn ckpt_checkpoint_redraws_its_progress_in_place_on_a_terminal() {
    let dir = TempDir::new("telling-terminal");
    let (terminal, answer) = requested_checkpoint_on_terminal(&dir, &["64", SLOW_HOOK_MS], None);
    let mut reports = Vec::new();
    for report in drawn_reports(&terminal, &answer) {
        match progress_of(report) {
            Some(progress) => reports.push(progress),
            None => terminal.fail(&format!("expected a progress report, not {report:?}")),
        }
    }
    // The first report (0 B written) came after the hook's wait, so it was drawn, as was
    // the last (all of it).
    if reports.len() < 2 {
        terminal.fail("expected the first and the last report at least");
    }
    let (first, last) = (reports[0], reports[reports.len() - 1]);
    if (first.done, first.percent) != ("0 B", "0")
        || (last.done, last.percent) != (last.total, "100")
    {
        terminal.fail("expected the reports from 0 B (0%) to all of it (100%)");
    }
    let percents: Option<Vec<u32>> = reports.iter().map(|r| r.percent.parse().ok()).collect();
    if reports.iter().any(|r| r.total != last.total) || !percents.is_some_and(|p| p.is_sorted()) {
        terminal.fail("expected one total, and percentages that only grow");
    }

    // The first report is the first point in time of the writing: no rate yet.
    if first.rate.is_some() {
        terminal.fail("expected no rate in the first report, before any time has passed");
    }
    // The writing began after the hook's wait, so it took at most what the whole command
    // took less the wait: a report of DONE bytes shows at least DONE over that, however
    // slow the machine (less a tenth, for sizes written to a tenth of their unit). Counting
    // the wait as writing time gave less than DONE over the wait alone, a fraction of it.
    let hook = Duration::from_millis(SLOW_HOOK_MS.parse().unwrap());
    let writing_at_most = terminal.took.saturating_sub(hook).as_secs_f64();
    for report in &reports {
        let Some(rate) = report.rate else { continue };
        let done = bytes_of(report.done);
        let rate = bytes_of(rate);
        let (Some(done), Some(rate)) = (done, rate) else {
            terminal.fail(&format!("expected sizes in {report:?}"));
        };
        if rate < 0.9 * done / writing_at_most {
            terminal.fail(&format!(
                "expected the rate of the writing, at least {} over {writing_at_most:.3} s, \
                 not {report:?}",
                report.done
            ));
        }
    }
    // (Reports read together are timed together and show no rate: a command kept off the
    // CPU for the whole writing, some 40 ms, reads the first and the last at once. So a
    // run may show none, and this does not ask for one.)
}

/// On a terminal narrower than the line, each report is cut to the width less a column:
/// one that wrapped would leave its second row behind at every redraw.
#[test]
fn ckpt_checkpoint_cuts_its_progress_to_a_narrow_terminal() {
    const COLUMNS: u16 = 40;
    let dir = TempDir::new("telling-terminal-narrow");
    let (terminal, answer) =
        requested_checkpoint_on_sized_terminal(&dir, &["64", SLOW_HOOK_MS], None, Some(COLUMNS));
    let reports = drawn_reports(&terminal, &answer);
    if reports.is_empty() {
        terminal.fail("expected progress drawn past the hook's wait");
    }
    for report in reports {
        if !report.starts_with("ckpt checkpoint: ") || report.len() >= usize::from(COLUMNS) {
            terminal.fail(&format!(
                "expected a report cut to {} columns, not {report:?}",
                COLUMNS - 1
            ));
        }
    }
}

/// A checkpoint that is over within a second draws nothing: the terminal shows the answer
/// alone.
#[test]
fn ckpt_checkpoint_is_quiet_on_a_terminal_within_a_second() {
    let dir = TempDir::new("telling-terminal-fast");
    let (terminal, answer) = requested_checkpoint_on_terminal(&dir, &["1"], None);
    if terminal.shown != answer {
        terminal.fail(&format!(
            "expected the answer {answer:?} alone (a checkpoint of 1 MiB takes far less \
             than a second)"
        ));
    }
}

/// CKPT_PROGRESS decides on a terminal too: `0` draws nothing however long the checkpoint
/// takes; `1` prints every report as a line of its own, nothing drawn in place, even for a
/// checkpoint that is over within a second.
#[test]
fn ckpt_progress_overrides_the_terminal() {
    let dir = TempDir::new("telling-terminal-off");
    let (terminal, answer) =
        requested_checkpoint_on_terminal(&dir, &["64", SLOW_HOOK_MS], Some("0"));
    if terminal.shown != answer {
        terminal.fail(&format!("expected the answer {answer:?} alone"));
    }

    let dir = TempDir::new("telling-terminal-lines");
    let (terminal, answer) = requested_checkpoint_on_terminal(&dir, &["1"], Some("1"));
    let Some(printed) = terminal.shown.strip_suffix(&answer) else {
        terminal.fail(&format!("expected it to end with the answer {answer:?}"));
    };
    if printed.contains(['\r', '\x1b']) {
        terminal.fail("expected lines, nothing drawn in place");
    }
    let reports: Option<Vec<_>> = printed.lines().map(progress_of).collect();
    match reports.as_deref() {
        Some([first, .., last])
            if first.done == "0 B"
                && (last.done, last.percent) == (last.total, "100")
                && printed.ends_with('\n') => {}
        _ => terminal.fail("expected progress reports only, a line each, from 0 B to all"),
    }
}
