//! A program on a terminal across a checkpoint: it runs under script(1) (a pseudo-terminal),
//! in raw mode, with /dev/tty open as descriptor 3. The restart, under another script(1),
//! gives it that terminal with the saved settings (raw again) and SIGWINCH
//! (tests/programs/fd_tty.c).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use ckpt_tests::*;

const FD_TTY_C: &str = include_str!("programs/fd_tty.c");

/// `command_line` run by script(1) on a new pseudo-terminal, in `dir`.
fn under_script(dir: &TempDir, command_line: &str) -> Command {
    let mut command = Command::new("script");
    command
        .args(["-qec", command_line, "/dev/null"])
        .current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    command
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// Lines as the terminal gave them (each ends in "\r\n"), without the "\r".
fn plain(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}

/// Checkpoints `fd_tty ARGS` under script(1) and restarts it under another: what the
/// restart printed (after its "winch", "go" is sent), and `ckpt info`'s output.
fn checkpoint_and_restart(label: &str, args: &str) -> (Vec<String>, String) {
    if !have_program("script") {
        panic!("script(1) (util-linux) is needed: .ci/run installs it");
    }
    let dir = TempDir::new(label);
    let program = compile_c(&dir, "fd_tty", FD_TTY_C, &[]);
    let image = checkpoint_path(&dir, &program);
    let line = format!("exec {} {} {args}", quoted(&ckpt_bin()), quoted(&program));
    let (mut proc, _stdin) = Proc::spawn_with_stdin(under_script(&dir, &line), "fd_tty");
    let ready = proc.wait_line_matching("ready PID", TIMEOUT, |l| l.starts_with("ready "));
    let pid: i32 = ready
        .trim_end_matches('\r')
        .trim_start_matches("ready ")
        .parse()
        .expect("a pid after ready");
    // SAFETY: kill has no memory preconditions; the pid is the program's, still running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTSTP) }, 0);
    proc.wait_success(TIMEOUT);
    expect_checkpoint(&mut proc, &image);

    let info = ckpt_info(&dir, &image);
    let (mut restarted, mut stdin) = Proc::spawn_with_stdin(
        under_script(&dir, &format!("exec {}", quoted(&image))),
        "fd_tty.ckpt",
    );
    // The restart sends SIGWINCH once the terminal has its settings back: then "go" is
    // read in raw mode (no echo).
    restarted.wait_line_matching("winch", TIMEOUT, |l| l.trim_end_matches('\r') == "winch");
    writeln!(stdin, "go").expect("write go");
    restarted.wait_success(TIMEOUT);
    restarted.rest_of_output();
    let lines = plain(restarted.seen());
    if !restarted.stderr().is_empty() {
        restarted.fail("the restart said something");
    }
    (lines, info)
}

/// Stdin in raw mode and /dev/tty open as descriptor 3: both are raw again on the
/// restart's terminal, and the program gets SIGWINCH.
#[test]
fn raw_terminal_is_raw_again_and_gets_sigwinch() {
    let (lines, info) = checkpoint_and_restart("fd-tty", "");
    assert_eq!(lines, ["winch", "got go", "stdin raw", "fd 3 raw", "done"]);
    assert!(
        info.contains("opened on the restart's terminal, with the saved settings (raw, no echo")
            && info.contains("given the saved settings when it is a terminal: raw"),
        "{info}"
    );
}

/// Only the standard descriptors are the terminal: the restart's own gets the settings.
#[test]
fn raw_standard_input_alone_is_raw_again() {
    let (lines, _) = checkpoint_and_restart("fd-tty-stdio", "stdio");
    assert_eq!(
        lines,
        [
            "winch",
            "got go",
            "stdin raw",
            "fd 3 not a terminal",
            "done"
        ]
    );
}

/// Descriptor 3 a dup of the terminal on stdin (`exec 3<&0`): after the restart it is a dup
/// of the restart's stdin again, sharing its description, not a terminal opened apart.
#[test]
fn dup_of_the_terminal_on_stdin_is_a_dup_of_the_restarts() {
    let (lines, info) = checkpoint_and_restart("fd-tty-dup", "dup");
    assert_eq!(
        lines,
        [
            "winch",
            "got go",
            "stdin raw",
            "fd 3 raw",
            "fd 3 shares stdin",
            "done"
        ]
    );
    assert!(info.contains("dup of 0"), "{info}");
}

/// The one child of process `pid` (script(1)'s: the program it runs).
fn only_child(pid: i32) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .expect("read the children of script");
    let mut ids = children.split_whitespace();
    let child = ids
        .next()
        .and_then(|c| c.parse().ok())
        .expect("script runs a program");
    assert!(
        ids.next().is_none(),
        "script runs more than one program: {children}"
    );
    child
}

/// `less` on a 24-line terminal, checkpointed on its second page: the restart redraws that
/// page at once (SIGWINCH), pages on with the space bar, and quits with `q`, status 0.
#[test]
fn less_pages_on_after_a_restart() {
    let dir = TempDir::new("fd-tty-less");
    let Some(less) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("less"))
        .find(|p| p.exists())
    else {
        panic!("less is needed: .ci/run installs it");
    };
    let numbers: String = (1..=5000).map(|n| format!("{n}\n")).collect();
    std::fs::write(dir.join("nums.txt"), numbers).expect("write nums.txt");
    let image = checkpoint_path(&dir, &less);
    let terminal = |command: Command| {
        let mut command = command;
        command
            .env("TERM", "xterm")
            .env("LINES", "24")
            .env("COLUMNS", "80")
            .env("LESS", "")
            .env_remove("LESSOPEN");
        command
    };
    let line = format!("exec {} {} nums.txt", quoted(&ckpt_bin()), quoted(&less));
    let (mut proc, mut keys) = Proc::spawn_with_stdin(terminal(under_script(&dir, &line)), "less");
    proc.wait_line_matching("the first page", TIMEOUT, |l| l.contains("23"));
    keys.write_all(b" ").expect("space");
    proc.wait_line_matching("the second page", TIMEOUT, |l| l.contains("46"));
    let less_pid = only_child(proc.pid());
    // SAFETY: kill has no memory preconditions; the pid is less's, still running.
    let sent = unsafe { libc::kill(less_pid, libc::SIGTSTP) };
    assert_eq!(sent, 0, "kill -TSTP less");
    proc.wait_success(TIMEOUT);
    expect_checkpoint(&mut proc, &image);

    let (mut restarted, mut keys) = Proc::spawn_with_stdin(
        terminal(under_script(&dir, &format!("exec {}", quoted(&image)))),
        "less.ckpt",
    );
    // Redrawn without a key: the second page again.
    restarted.wait_line_matching("the second page again", TIMEOUT, |l| l.contains("46"));
    keys.write_all(b" ").expect("space");
    restarted.wait_line_matching("the third page", TIMEOUT, |l| l.contains("69"));
    keys.write_all(b"q").expect("q");
    restarted.wait_success(TIMEOUT);
    if !restarted.stderr().is_empty() {
        restarted.fail("the restart said something");
    }
}
