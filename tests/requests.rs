//! Who may ask a program for a checkpoint: requests are authenticated by the kernel (the
//! credentials of the socket `ckpt checkpoint` listens on), never by what the sender
//! writes into the signal; a set-user-ID program ignores its invoking user's environment.
//!
//! The forged requests below are exactly what an attacker who may signal the program can
//! send: `rt_sigqueueinfo` lets it choose `si_pid` and the value.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ckpt_tests::*;

const FORGE_C: &str = include_str!("programs/forge.c");
const REQUESTER_C: &str = include_str!("programs/requester.c");

/// Prints "ready", waits for SIGUSR2, then echoes one line of its stdin.
const ECHO_AFTER_USR2_C: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t go;
static void on_usr2(int sig) { (void)sig; go = 1; }

int main(void)
{
    signal(SIGUSR2, on_usr2);
    printf("ready\n");
    fflush(stdout);
    while (!go)
        pause();
    char line[256];
    if (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        printf("echo: %s\n", line);
    } else {
        printf("echo: nothing\n");
    }
    fflush(stdout);
    return 0;
}
"#;

/// Runs the forger against `target` and waits until the target says it ignored the request;
/// returns the forger (kept alive, its descriptors open, until dropped).
fn forge(dir: &TempDir, target: &mut Proc, claimed: &str, value: &str, file: Option<&Path>) {
    let forger = compile_c(dir, "forge", FORGE_C, &[]);
    let mut command = Command::new(&forger);
    command
        .arg(target.pid().to_string())
        .arg(claimed)
        .arg(value)
        .current_dir(dir.path());
    if let Some(file) = file {
        command.arg(file);
    }
    let (mut forger, input) = Proc::spawn_with_stdin(command, "forge");
    forger.wait_line("sent");
    target.wait_stderr("ignored a checkpoint request", TIMEOUT);
    drop(input);
    forger.wait_success(TIMEOUT);
}

#[test]
fn a_forged_request_naming_the_programs_own_stdin_is_ignored() {
    let dir = TempDir::new("forged-stdin");
    let program = compile_c(&dir, "echo", ECHO_AFTER_USR2_C, &[]);
    let (mut proc, mut input) =
        Proc::spawn_with_stdin(ckpt_command(&dir, &program, &[]), "ckpt echo");
    proc.wait_line("ready");
    // The line waits in the pipe for the program; the old protocol would have read it as
    // the request (from /proc/PID/fd/0) and written its answer into the program's stdout.
    std::io::Write::write_all(&mut input, b"hello\n").unwrap();
    let pid = proc.pid().to_string();
    forge(&dir, &mut proc, &pid, "0x00000001", None);
    proc.signal(libc::SIGUSR2);
    let line = proc.wait_line_matching("the echo", TIMEOUT, |l| l.starts_with("echo:"));
    assert_eq!(line, "echo: hello", "the program's input was not eaten");
    proc.wait_success(TIMEOUT);
    let stderr = proc.stderr();
    assert!(
        stderr.contains(&format!("claiming to come from process {pid}"))
            && stderr.contains("1 ignored so far"),
        "{stderr}"
    );
    assert!(
        !proc.seen().iter().any(|l| l.starts_with("ok ")),
        "an answer went into the program's stdout: {:?}",
        proc.seen()
    );
    for name in ["hello", "echo.ckpt"] {
        assert!(!dir.join(name).exists(), "a checkpoint {name} was written");
    }
}

#[test]
fn a_forged_request_never_writes_into_the_senders_files() {
    let dir = TempDir::new("forged-file");
    let program = compile_c(&dir, "echo", ECHO_AFTER_USR2_C, &[]);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &[]), "ckpt echo");
    proc.wait_line("ready");
    let precious = dir.join("precious");
    std::fs::write(&precious, "precious data\n").unwrap();
    // The forger claims to be itself and names a file it opened read-only, four times.
    let forger = compile_c(&dir, "forge", FORGE_C, &[]);
    for round in 1..=4 {
        // Claim the forger's own pid ($$ of the shell it replaces): the old protocol opened
        // /proc/<sender>/fd/<n> for the request and for the answer.
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg("exec \"$0\" \"$1\" $$ fd \"$2\"")
            .arg(&forger)
            .arg(proc.pid().to_string())
            .arg(&precious)
            .current_dir(dir.path());
        let (mut f, input) = Proc::spawn_with_stdin(shell, "forge");
        f.wait_line("sent");
        // Reported at powers of two only: the third is counted silently.
        if round != 3 {
            proc.wait_stderr(&format!("({round} ignored so far)"), TIMEOUT);
        }
        drop(input);
        f.wait_success(TIMEOUT);
    }
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "precious data\n",
        "the sender's file was written"
    );
    assert!(!dir.join("precious data").exists());
    assert!(!dir.join("echo.ckpt").exists());
    let stderr = proc.stderr();
    assert_eq!(
        stderr.matches("ignored a checkpoint request").count(),
        3,
        "reported at the 1st, 2nd and 4th, not the 3rd: {stderr}"
    );
    // The program is unharmed and still answers a real request.
    let ok = run_to_end(
        ckpt_tool(&dir, &["checkpoint", &proc.pid().to_string()]),
        "ckpt checkpoint",
        TIMEOUT,
    );
    if ok.status.code() != Some(0) {
        ok.fail("ckpt checkpoint", "a real request after forged ones");
    }
    assert!(dir.join("echo.ckpt").exists());
    proc.kill();
}

#[test]
fn root_checkpoints_another_users_program() {
    if !running_as_root() {
        skip(
            Skip::CannotHere,
            "root asking another user's program: needs root",
        );
        return;
    }
    let dir = TempDir::new("root-asks");
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    let counter = compile_c(&dir, "counter", COUNTER_SOURCE, &[]);
    let mut proc = Proc::spawn(
        as_nobody(ckpt_command_with(&ckpt, &dir, &counter, &["20"])),
        "nobody's counter",
    );
    proc.wait_lines(3, TIMEOUT);
    let started = std::time::Instant::now();
    let asked = run_to_end(
        ckpt_tool(
            &dir,
            &["checkpoint", &proc.pid().to_string(), "--timeout", "20"],
        ),
        "root: ckpt checkpoint",
        TIMEOUT * 2,
    );
    if asked.status.code() != Some(0) || !asked.stdout.contains("checkpointed to counter.ckpt") {
        asked.fail(
            "root: ckpt checkpoint",
            "expected root's request to be served",
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5), "served at once");
    let checkpoint = dir.join("counter.ckpt");
    assert_eq!(
        std::fs::metadata(&checkpoint).unwrap().uid(),
        65534,
        "written by the program, as its user"
    );
    let last = proc.next_number();
    proc.kill();
    let mut restarted = Proc::spawn(as_nobody(restart_command(&dir, &checkpoint)), "restart");
    assert!(restarted.next_number() <= last + 1);
    restarted.kill();
}

/// A counter linked with libckpt (found through its RUNPATH: a set-user-ID program ignores
/// LD_PRELOAD and LD_LIBRARY_PATH), in a directory every user can use.
fn secure_counter(dir: &TempDir) -> std::path::PathBuf {
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(dir);
    let lib_dir = ckpt.parent().unwrap().display().to_string();
    compile_c(
        dir,
        "counter",
        COUNTER_SOURCE,
        &[
            "-Wl,--no-as-needed",
            &format!("-L{lib_dir}"),
            "-lckpt",
            &format!("-Wl,-rpath,{lib_dir}"),
        ],
    )
}

/// `command` with real ids `real` and effective ids `effective`: exec then runs the program
/// in secure-execution mode (AT_SECURE), as a set-user-ID program would.
fn with_ids(command: Command, real: u32, effective: u32) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped.args([
        format!("--ruid={real}"),
        format!("--euid={effective}"),
        format!("--rgid={real}"),
        format!("--egid={effective}"),
        "--clear-groups".to_owned(),
        "--".to_owned(),
    ]);
    wrapped.arg(command.get_program()).args(command.get_args());
    if let Some(cwd) = command.get_current_dir() {
        wrapped.current_dir(cwd);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// The requester program, run as user `uid`, against `pid`: its one line of output.
fn request_as(dir: &TempDir, uid: u32, pid: i32, name: Option<&Path>) -> String {
    let requester = compile_c(dir, "requester", REQUESTER_C, &[]);
    let mut command = Command::new(&requester);
    command.arg(pid.to_string()).current_dir(dir.path());
    if let Some(name) = name {
        command.arg(name);
    }
    let out = run_to_end(with_ids(command, uid, uid), "requester", TIMEOUT * 3);
    if !out.status.success() {
        out.fail("requester", "did not run");
    }
    out.stdout.trim().to_owned()
}

#[test]
fn a_set_user_id_program_ignores_its_users_environment_and_requests() {
    if !running_as_root() {
        skip(
            Skip::CannotHere,
            "secure-execution mode: needs root to run a program with two user ids",
        );
        return;
    }
    let dir = TempDir::new("secure");
    let counter = secure_counter(&dir);
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let chosen = dir.join("chosen.ckpt");

    // Real user nobody, effective user root: what a set-user-ID-root program gets.
    let mut command = direct_command(&dir, &counter, &["20"]);
    command
        .env("CKPT_NAME", &victim)
        .env("CKPT_CONTINUE", "1")
        .env("CKPT_MSPERIOD", "50");
    let mut proc = Proc::spawn(with_ids(command, 65534, 0), "setuid counter");
    proc.wait_lines(3, TIMEOUT);
    let pid = proc.pid();

    // Its real user may ask, but not choose where root writes.
    let answer = request_as(&dir, 65534, pid, Some(&chosen));
    assert!(
        answer.starts_with("answer: error ") && answer.contains("only root may choose"),
        "{answer}"
    );
    assert!(!chosen.exists(), "nobody chose where root writes");
    // Root may.
    let answer = request_as(&dir, 0, pid, Some(&chosen));
    assert!(answer.starts_with("answer: ok "), "{answer}");
    assert!(chosen.exists());

    // ^Z: the built-in defaults, not CKPT_NAME or CKPT_CONTINUE (nor the periodic
    // checkpoints CKPT_MSPERIOD asked for, which would have replaced the victim by now).
    proc.signal(libc::SIGTSTP);
    let status = proc.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", proc.stderr());
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's file\n",
        "CKPT_NAME from the invoking user's environment was obeyed"
    );
    let checkpoint = dir.join("counter.ckpt");
    let meta = std::fs::metadata(&checkpoint).expect("the default checkpoint name");
    assert_eq!(meta.uid(), 0);
    assert_eq!(meta.mode() & 0o777, 0o700);
}

#[test]
fn a_requester_who_is_neither_the_real_user_nor_root_is_ignored() {
    if !running_as_root() {
        skip(
            Skip::CannotHere,
            "requests from another user: needs root to set up the users",
        );
        return;
    }
    let dir = TempDir::new("stranger");
    let counter = secure_counter(&dir);
    // Real user nobody, effective (and saved) user 65533: user 65533 may signal it.
    let mut proc = Proc::spawn(
        with_ids(direct_command(&dir, &counter, &["20"]), 65534, 65533),
        "counter of two users",
    );
    proc.wait_lines(3, TIMEOUT);
    let answer = request_as(&dir, 65533, proc.pid(), None);
    assert_eq!(answer, "closed", "no answer to a stranger");
    proc.wait_stderr(
        "it comes from user 65533, neither this program's user nor root",
        TIMEOUT,
    );
    assert!(!dir.join("counter.ckpt").exists());
    proc.kill();
}
