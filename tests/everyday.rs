//! Everyday use: the checkpoint of `ckpt PROG` is named after PROG as the user gave it (a
//! script run through its `#!` line included), and children that inherit the library do not
//! take signal checkpoints of their own unless CKPT_CHILDREN=1 asks them to; the command's
//! messages for a directory, a refused `-a` and an unknown option.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ckpt_tests::*;

/// Writes an executable script `name` in `dir` with `text` as its contents.
fn script(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A shell script that prints `ready`, then `TAG N` now and then, forever, with no child
/// process (a busy loop of builtins).
fn counting_shell_script(tag: &str) -> String {
    format!(
        "#!/bin/sh\necho ready\ni=0\nwhile :; do\n  i=$((i+1))\n  \
         if [ $((i % 2000)) -eq 0 ]; then echo {tag} $i; fi\ndone\n"
    )
}

/// The names of the `*.ckpt` files in `dir`, sorted.
fn checkpoints_in(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read the directory")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".ckpt"))
        .collect();
    names.sort();
    names
}

/// Runs `./NAME` under ckpt in `dir`, waits for `ready`, checkpoints it with SIGTSTP, and
/// checks it exited 0 having written `NAME.ckpt` and no other checkpoint (none named after
/// its interpreter): the checkpoints in `dir` are then `before` and `NAME.ckpt`.
fn checkpoint_script(dir: &TempDir, name: &str, before: &[&str]) -> PathBuf {
    let mut command = ckpt_command(dir, Path::new(&format!("./{name}")), &[]);
    command.env_remove("BASH_ENV").env_remove("ENV");
    let mut proc = Proc::spawn(command, &format!("ckpt ./{name}"));
    proc.wait_line("ready");
    proc.checkpoint_and_collect(TIMEOUT);
    let own = format!("{name}.ckpt");
    let mut expected: Vec<String> = before.iter().map(|s| s.to_string()).collect();
    expected.push(own.clone());
    expected.sort();
    let found = checkpoints_in(dir);
    if found != expected {
        proc.fail(&format!(
            "checkpoints written: {found:?}; expected {expected:?}"
        ));
    }
    dir.join(own)
}

/// Restarts `checkpoint` and checks that it goes on printing `TAG N` lines.
fn restart_prints(dir: &TempDir, checkpoint: &Path, tag: &str) {
    let mut proc = Proc::spawn(
        restart_command(dir, checkpoint),
        &format!("restart {}", checkpoint.display()),
    );
    let line = proc.wait_line_matching("a counter line", TIMEOUT, |_| true);
    if !line.starts_with(&format!("{tag} ")) {
        proc.fail(&format!("expected a line from {tag}, got {line:?}"));
    }
    proc.kill();
}

#[test]
fn a_script_checkpoint_is_named_after_the_script() {
    let dir = TempDir::new("script-name");
    script(&dir, "job.sh", &counting_shell_script("job"));
    let checkpoint = checkpoint_script(&dir, "job.sh", &[]);
    restart_prints(&dir, &checkpoint, "job");
}

#[test]
fn a_python_script_checkpoint_is_named_after_the_script() {
    let Some(python) = python3() else {
        return;
    };
    let dir = TempDir::new("python-name");
    let text = format!(
        "#!{}\nimport sys\nprint('ready', flush=True)\ni = 0\nwhile True:\n    i += 1\n    \
         if i % 100000 == 0:\n        print('job', i, flush=True)\n",
        python.display()
    );
    script(&dir, "job.py", &text);
    let checkpoint = checkpoint_script(&dir, "job.py", &[]);
    restart_prints(&dir, &checkpoint, "job");
}

#[test]
fn two_scripts_in_one_directory_keep_their_own_checkpoints() {
    let dir = TempDir::new("two-scripts");
    script(&dir, "first.sh", &counting_shell_script("first"));
    script(&dir, "second.sh", &counting_shell_script("second"));
    let first = checkpoint_script(&dir, "first.sh", &[]);
    let second = checkpoint_script(&dir, "second.sh", &["first.sh.ckpt"]);
    restart_prints(&dir, &first, "first");
    restart_prints(&dir, &second, "second");
}

#[test]
fn a_name_given_with_n_still_wins() {
    let dir = TempDir::new("script-n");
    script(&dir, "job.sh", &counting_shell_script("job"));
    let mut command = ckpt_command(&dir, Path::new("-n"), &["given.ckpt", "./job.sh"]);
    command.env_remove("BASH_ENV").env_remove("ENV");
    let mut proc = Proc::spawn(command, "ckpt -n given.ckpt ./job.sh");
    proc.wait_line("ready");
    proc.checkpoint_and_collect(TIMEOUT);
    if !dir.join("given.ckpt").is_file() || dir.join("job.sh.ckpt").exists() {
        proc.fail("expected given.ckpt and no job.sh.ckpt");
    }
}

// ---------------------------------------------------------------------------------------------
// Children

/// Prints `child PID`, then loops; with an argument DIR it first changes to DIR (where a
/// checkpoint of its own would be written).
const LOOPER_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    if (argc > 1 && chdir(argv[1]) != 0)
        return 1;
    printf("child %d\n", (int)getpid());
    fflush(stdout);
    for (;;)
        usleep(10000);
}
"#;

/// Forks; the child changes to directory `child` (so that a checkpoint of its own would go
/// there, not over its parent's) and prints `child PID`; the parent prints `parent` once
/// the child has; both loop.
const FORKER_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void)
{
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        if (chdir("child") != 0)
            _exit(1);
        printf("child %d\n", (int)getpid());
        fflush(stdout);
        close(ready[1]);
        for (;;)
            usleep(10000);
    }
    char c;
    close(ready[1]);
    (void)read(ready[0], &c, 1);
    close(ready[0]);
    printf("parent\n");
    fflush(stdout);
    for (;;)
        usleep(10000);
}
"#;

/// Sends `signal` to process group `pgid`.
fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    let r = unsafe { libc::kill(-pgid, signal) };
    assert_eq!(
        r,
        0,
        "kill(-{pgid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// The state letter of process `pid` (`T` stopped, `R`, `S`, `Z`, ...), or None once it
/// is gone.
fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

/// Waits until `pid` is stopped or gone: what a child the checkpoint signal does not
/// checkpoint does with SIGTSTP (it stops; or, once its process group is orphaned, the
/// kernel's SIGHUP ends it). Fails on timeout.
fn wait_stopped_or_gone(pid: i32) -> Option<char> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match state_of(pid) {
            None => return None,
            Some(s @ ('T' | 't' | 'Z')) => return Some(s),
            Some(_) if std::time::Instant::now() > deadline => {
                panic!("child {pid} neither stopped nor ended after the group's SIGTSTP")
            }
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// Ends the child `pid` (whatever its state), for cleaning up.
fn kill_child(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions; a pid reused meanwhile is unlikely
    // within the test, and the worst case is a signal to one of our own processes.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// The pid in a `child PID` line.
fn child_pid(proc: &mut Proc) -> i32 {
    let line = proc.wait_line_matching("the child's line", TIMEOUT, |l| l.starts_with("child "));
    line["child ".len()..].trim().parse().expect("a pid")
}

/// `ckpt sh -c './looper & wait'` in its own process group, as a shell job is: returns the
/// running ckpt'd shell and the looper's pid, once the looper runs (with the library
/// loaded: its constructor runs before main prints).
fn shell_with_a_child(dir: &TempDir, env: &[(&str, &str)]) -> (Proc, i32) {
    use std::os::unix::process::CommandExt;
    compile_c(dir, "looper", LOOPER_C, &[]);
    let mut command = ckpt_command(dir, Path::new("sh"), &["-c", "./looper & wait"]);
    command
        .env_remove("BASH_ENV")
        .env_remove("ENV")
        .process_group(0);
    command.envs(env.iter().copied());
    let mut proc = Proc::spawn(command, "ckpt sh -c './looper & wait'");
    let looper = child_pid(&mut proc);
    (proc, looper)
}

#[test]
fn a_group_tstp_checkpoints_the_program_not_its_exec_children() {
    let dir = TempDir::new("children-exec");
    let (mut proc, looper) = shell_with_a_child(&dir, &[]);
    signal_group(proc.pid(), libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let state = wait_stopped_or_gone(looper);
    kill_child(looper);
    let found = checkpoints_in(&dir);
    assert_eq!(
        found,
        ["sh.ckpt"],
        "only the shell's checkpoint (looper was {state:?})"
    );
}

#[test]
fn ckpt_children_lets_exec_children_checkpoint_too() {
    let dir = TempDir::new("children-exec-on");
    let (mut proc, looper) = shell_with_a_child(&dir, &[("CKPT_CHILDREN", "1")]);
    signal_group(proc.pid(), libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    proc.wait_for_file(&dir.join("looper.ckpt"));
    kill_child(looper);
    assert_eq!(checkpoints_in(&dir), ["looper.ckpt", "sh.ckpt"]);
}

/// `ckpt forker` in its own process group; returns it, once parent and child run, and the
/// child's pid.
fn forker(dir: &TempDir, env: &[(&str, &str)]) -> (Proc, i32) {
    use std::os::unix::process::CommandExt;
    let program = compile_c(dir, "forker", FORKER_C, &[]);
    std::fs::create_dir(dir.join("child")).expect("mkdir child");
    let mut command = ckpt_command(dir, &program, &[]);
    command.process_group(0).envs(env.iter().copied());
    let mut proc = Proc::spawn(command, "ckpt forker");
    let child = child_pid(&mut proc);
    proc.wait_line("parent");
    (proc, child)
}

#[test]
fn a_group_tstp_checkpoints_the_program_not_its_forked_child() {
    let dir = TempDir::new("children-fork");
    let (mut proc, child) = forker(&dir, &[]);
    signal_group(proc.pid(), libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let state = wait_stopped_or_gone(child);
    kill_child(child);
    assert!(dir.join("forker.ckpt").is_file(), "the parent's checkpoint");
    assert!(
        !dir.join("child/forker.ckpt").exists(),
        "the forked child checkpointed itself (it was {state:?})"
    );
}

#[test]
fn ckpt_children_lets_a_forked_child_checkpoint_too() {
    let dir = TempDir::new("children-fork-on");
    let (mut proc, child) = forker(&dir, &[("CKPT_CHILDREN", "1")]);
    signal_group(proc.pid(), libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    proc.wait_for_file(&dir.join("child/forker.ckpt"));
    kill_child(child);
    assert!(dir.join("forker.ckpt").is_file(), "the parent's checkpoint");
}

// ---------------------------------------------------------------------------------------------
// Messages

/// Runs `ckpt ARGS` in `dir`; returns its exit code and stderr.
fn ckpt_says(dir: &TempDir, args: &[&str]) -> (i32, String) {
    let mut command = std::process::Command::new(ckpt_bin());
    command.args(args).current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    let mut proc = Proc::spawn(command, &format!("ckpt {}", args.join(" ")));
    let status = proc.wait_exit_only(TIMEOUT);
    (status.code().unwrap_or(-1), proc.stderr())
}

#[test]
fn a_directory_is_said_to_be_one() {
    let dir = TempDir::new("msg-dir");
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    for program in ["/tmp", "./sub"] {
        let (code, stderr) = ckpt_says(&dir, &[program]);
        assert_eq!(code, 126, "{stderr}");
        assert_eq!(stderr, format!("ckpt: {program}: is a directory\n"));
    }
    // A file without an execute bit is not said to be a directory.
    std::fs::write(dir.join("plain"), "data\n").expect("write");
    let (code, stderr) = ckpt_says(&dir, &["./plain"]);
    assert_eq!(code, 126, "{stderr}");
    assert_eq!(
        stderr,
        "ckpt: ./plain: permission denied (not executable)\n"
    );
}

#[test]
fn refusals_of_a_name_the_option_and_write_ranges_like_help() {
    let dir = TempDir::new("msg-a");
    for value in ["99", "FOO", "9", "63", ""] {
        let (code, stderr) = ckpt_says(&dir, &["-a", value, "true"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.starts_with(&format!("ckpt: bad value for -a: {value:?} (")),
            "-a {value:?}: {stderr}"
        );
        assert!(!stderr.contains("..="), "-a {value:?}: {stderr}");
    }
    let (_, stderr) = ckpt_says(&dir, &["-a", "99", "true"]);
    assert!(stderr.contains("1..64"), "{stderr}");
    let help = std::process::Command::new(ckpt_bin())
        .arg("--help")
        .output()
        .expect("ckpt --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("a number 1..64"),
        "--help writes the range as 1..64"
    );
    let (code, stderr) = ckpt_says(&dir, &["checkpoint", "1", "--signal", "0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("1..64") && !stderr.contains("..="),
        "{stderr}"
    );
    // The library's own message for CKPT_ASYNCSIG.
    let mut command = ckpt_command(&dir, Path::new("true"), &[]);
    command.env("CKPT_ASYNCSIG", "99");
    let mut proc = Proc::spawn(command, "CKPT_ASYNCSIG=99 ckpt true");
    let status = proc.wait_exit_only(TIMEOUT);
    assert_eq!(status.code(), Some(2), "{}", proc.stderr());
    assert!(
        proc.stderr().contains("1..64") && !proc.stderr().contains("0-64"),
        "{}",
        proc.stderr()
    );
}

#[test]
fn an_unknown_option_prints_a_one_line_usage_hint() {
    let dir = TempDir::new("msg-usage");
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus", "true"], "usage: ckpt [-n NAME]"),
        (&["-x"], "usage: ckpt [-n NAME]"),
        (
            &["checkpoint", "1", "--bogus"],
            "usage: ckpt checkpoint PID",
        ),
        (&["info", "x", "--bogus"], "usage: ckpt info FILE"),
        (&["verify", "--bogus"], "usage: ckpt verify FILE"),
        (&["attach", "1", "--bogus"], "usage: ckpt attach PID"),
    ];
    for (args, usage) in cases {
        let (code, stderr) = ckpt_says(&dir, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {stderr}");
        assert!(lines[0].contains("unknown option"), "{args:?}: {stderr}");
        assert!(lines[1].starts_with(usage), "{args:?}: {stderr}");
        assert!(lines[1].contains("--help"), "{args:?}: {stderr}");
    }
}
