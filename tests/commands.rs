//! `ckpt info`, `ckpt info --json` and `ckpt checkpoint` on real processes and real
//! checkpoints; the mode of checkpoint files whatever the umask; symlinks planted at the
//! final and at the temp name; a closed stdout.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ckpt_tests::*;

/// A program that prints `ready`, then exits 0 with `got usr1` on SIGUSR1.
const USR1_EXIT_C: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_usr1(int sig) { (void)sig; got = 1; }

int main(void)
{
    signal(SIGUSR1, on_usr1);
    printf("ready\n");
    fflush(stdout);
    for (unsigned long n = 1;; n++) {
        if (got) {
            printf("got usr1\n");
            fflush(stdout);
            exit(0);
        }
        usleep(5000);
    }
}
"#;

fn ckpt_checkpoint(dir: &TempDir, pid: i32, extra: &[&str]) -> Finished {
    let mut args = vec!["checkpoint".to_owned(), pid.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--timeout".to_owned(), "20".to_owned()]);
    run_to_end(
        ckpt_tool(dir, &args),
        &format!("ckpt checkpoint {pid} {extra:?}"),
        Duration::from_secs(30),
    )
}

fn verify_ok(dir: &TempDir, file: &Path) {
    let verify = run_to_end(
        ckpt_tool(dir, &[Path::new("verify"), file]),
        "ckpt verify",
        TIMEOUT,
    );
    if verify.status.code() != Some(0) {
        verify.fail("ckpt verify", &format!("{} should verify", file.display()));
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// A counter under ckpt (no -c), printing every 5 ms, with 3 lines read.
fn running_counter(dir: &TempDir) -> (Proc, PathBuf) {
    let counter = compile_c(dir, "counter", COUNTER_SOURCE, &[]);
    let mut proc = Proc::spawn(ckpt_command(dir, &counter, &["5"]), "ckpt counter");
    proc.wait_lines(3, TIMEOUT);
    (proc, counter)
}

/// The last number the process printed so far, after reading `more` new lines.
fn read_numbers(proc: &mut Proc, more: usize) -> u64 {
    let lines = proc.wait_lines(more, TIMEOUT);
    lines
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| proc.fail("expected numbers"))
}

#[test]
fn info_describes_a_real_checkpoint() {
    let dir = TempDir::new("info");
    let counter = compile_c(&dir, "counter", COUNTER_SOURCE, &[]);
    let mut proc = Proc::spawn(
        ckpt_command(&dir, &counter, &["5", "two words", "x\"y"]),
        "ckpt counter",
    );
    let pid = proc.pid();
    proc.wait_lines(3, TIMEOUT);
    proc.checkpoint_and_collect(TIMEOUT);
    let checkpoint = checkpoint_path(&dir, &counter);
    expect_checkpoint(&mut proc, &checkpoint);
    let file_size = std::fs::metadata(&checkpoint).unwrap().len();

    let text = run_to_end(
        ckpt_tool(&dir, &[Path::new("info"), &checkpoint]),
        "ckpt info",
        TIMEOUT,
    );
    if text.status.code() != Some(0) {
        text.fail("ckpt info", "expected success");
    }
    let out = &text.stdout;
    let counter_str = counter.display().to_string();
    let line_with = |prefix: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| text.fail("ckpt info", &format!("no {prefix:?} line")))
            .to_owned()
    };
    assert!(line_with("program:").ends_with(&counter_str), "{out}");
    assert!(
        line_with("command line:").ends_with(&format!("{counter_str} 5 'two words' 'x\"y'")),
        "{out}"
    );
    assert!(line_with("pid:").ends_with(&pid.to_string()), "{out}");
    assert!(
        line_with("format:").contains(&format!("version {}", ckpt_image::FORMAT_VERSION)),
        "{out}"
    );
    let taken = line_with("taken:");
    assert!(taken.ends_with(" UTC") && taken.contains('-'), "{taken}");
    assert!(
        line_with("threads:").contains(&format!("1 (tid {pid})")),
        "{out}"
    );
    for needle in ["[heap]", "[stack]", "[vdso]", "libc.so", "libckpt.so"] {
        assert!(out.contains(needle), "info does not show {needle}:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains(&format!("{counter_str} (contents stored) [lz4: "))),
        "the executable's mappings:\n{out}"
    );
    assert!(
        line_with("file size:").contains(&format!("{file_size} bytes")),
        "{out}"
    );

    // --json: the same facts, parsed.
    let json = run_to_end(
        ckpt_tool(&dir, &[Path::new("info"), Path::new("--json"), &checkpoint]),
        "ckpt info --json",
        TIMEOUT,
    );
    if json.status.code() != Some(0) {
        json.fail("ckpt info --json", "expected success");
    }
    let value: serde_json::Value = serde_json::from_str(json.stdout.trim())
        .unwrap_or_else(|e| json.fail("ckpt info --json", &format!("not JSON: {e}")));
    assert_eq!(value["program"], counter_str.as_str());
    assert_eq!(
        value["args"],
        serde_json::json!([counter_str, "5", "two words", "x\"y"])
    );
    assert_eq!(value["pid"], pid);
    assert_eq!(value["format_version"], ckpt_image::FORMAT_VERSION);
    assert_eq!(value["threads"]["count"], 1);
    assert_eq!(value["threads"]["tids"], serde_json::json!([pid]));
    assert_eq!(value["file_size"], file_size);
    let regions = value["regions"].as_array().expect("regions array");
    let stored: u64 = regions.iter().map(|r| r["stored"].as_u64().unwrap()).sum();
    assert_eq!(value["total_stored"], stored);
    // Program and library images are compressed by default; the rest is stored raw.
    let in_file: u64 = regions.iter().map(|r| r["in_file"].as_u64().unwrap()).sum();
    assert!(stored > 0 && in_file < file_size && in_file < stored);
    for r in regions {
        let (stored, in_file) = (r["stored"].as_u64(), r["in_file"].as_u64());
        match r["compressed"].as_bool().unwrap() {
            true => assert!(in_file < stored, "{r}"),
            false => assert_eq!(in_file, stored, "{r}"),
        }
    }
    assert!(line_with("stored:").starts_with(&format!("stored:        {stored} bytes")));
    for backing in ["heap", "stack", "file", "anonymous", "vdso"] {
        assert!(
            regions.iter().any(|r| r["backing"] == backing),
            "no {backing} region in {regions:?}"
        );
    }
    let exe = regions
        .iter()
        .find(|r| r["name"] == counter_str.as_str())
        .expect("a region of the executable");
    assert_eq!(exe["backing"], "file");
    assert_eq!(exe["contents"], "all");
    for r in regions {
        let (start, end, size) = (
            r["start"].as_u64().unwrap(),
            r["end"].as_u64().unwrap(),
            r["size"].as_u64().unwrap(),
        );
        assert_eq!(end - start, size);
        let prot = r["prot"].as_str().unwrap();
        assert_eq!(prot.len(), 4, "{prot}");
        // Every region of the text output shows the same range.
        assert!(
            out.contains(&format!("{start:#014x}-{end:#014x}")),
            "{start:#x}-{end:#x} missing from text:\n{out}"
        );
    }
    assert_eq!(
        regions.len(),
        line_with("regions:")
            .trim_start_matches("regions:")
            .trim()
            .parse::<usize>()
            .unwrap()
    );
}

/// The thread list of `ckpt info` and `ckpt info --json` for tests/programs/threads.c:
/// one line and one object per thread, with the workers' names (`w0` …), the roles, where
/// each was stopped, worker 2's private pending SIGWINCH and worker 0's single CPU; once
/// checkpointed by the signal (the main thread, in read(), takes it), once by worker 1 with
/// ckpt_ckpt() (where it stopped is not recorded then).
#[test]
fn info_lists_the_threads() {
    let dir = TempDir::new("info-threads");
    let program = compile_c(
        &dir,
        "threads",
        include_str!("programs/threads.c"),
        &["-pthread", "-ldl"],
    );
    check_thread_list(&dir, &program, "main");
    check_thread_list(&dir, &program, "api");
}

fn check_thread_list(dir: &TempDir, program: &Path, mode: &str) {
    const WORKERS: usize = 6;
    const OTHERS: usize = 4; // threads.c's blocked threads beside main and the workers
    let workers = WORKERS.to_string();
    let (mut proc, _stdin) = Proc::spawn_with_stdin(
        ckpt_command(dir, program, &[mode, &workers]),
        &format!("threads {mode}"),
    );
    let pid = proc.pid();
    proc.wait_line("ready");
    match mode {
        "api" => proc.wait_success(TIMEOUT),
        _ => drop(proc.checkpoint_and_collect(TIMEOUT)),
    }
    let checkpoint = checkpoint_path(dir, program);
    expect_checkpoint(&mut proc, &checkpoint);

    let json = run_to_end(
        ckpt_tool(dir, &[Path::new("info"), Path::new("--json"), &checkpoint]),
        "ckpt info --json",
        TIMEOUT,
    );
    if json.status.code() != Some(0) {
        json.fail("ckpt info --json", "expected success");
    }
    let value: serde_json::Value = serde_json::from_str(json.stdout.trim())
        .unwrap_or_else(|e| json.fail("ckpt info --json", &format!("not JSON: {e}")));
    let threads = &value["threads"];
    let list = threads["list"].as_array().expect("threads.list array");
    let count = 1 + WORKERS + OTHERS;
    assert_eq!(threads["count"], count, "{threads}");
    assert_eq!(list.len(), count, "{threads}");
    let tids: Vec<serde_json::Value> = list.iter().map(|t| t["tid"].clone()).collect();
    assert_eq!(serde_json::Value::from(tids), threads["tids"]);
    let with_role = |role: &str| -> Vec<&serde_json::Value> {
        list.iter()
            .filter(|t| t["roles"].as_array().unwrap().iter().any(|r| r == role))
            .collect()
    };
    let named = |name: &str| -> &serde_json::Value {
        let found: Vec<_> = list.iter().filter(|t| t["name"] == name).collect();
        assert_eq!(found.len(), 1, "one thread named {name}: {threads}");
        found[0]
    };
    let main = with_role("main");
    assert_eq!(main.len(), 1, "one main thread: {threads}");
    let main = main[0];
    assert_eq!(main["tid"], pid, "{main}");
    assert_eq!(main["name"], "threads", "{main}");
    let leader = with_role("leader");
    assert_eq!(leader.len(), 1, "one leader: {threads}");
    let leader = leader[0];
    assert!(with_role("ptraced").is_empty(), "{threads}");
    // The main thread was stopped in read(), inside libc.
    let at = &main["stopped_at"];
    let mapping = at["mapping"].as_str().unwrap_or_default();
    assert!(mapping.starts_with("libc.so"), "main stopped at {at}");
    assert!(
        at["path"].as_str().unwrap_or_default().ends_with(mapping),
        "{at}"
    );
    if mode == "api" {
        assert_eq!(leader, named("w1"), "{threads}");
        assert!(leader["stopped_at"].is_null(), "{leader}");
    }
    for i in 0..WORKERS {
        let worker = named(&format!("w{i}"));
        if worker != leader {
            assert!(worker["stopped_at"]["mapping"].is_string(), "{worker}");
        }
        let pending = worker["pending"].as_array().unwrap();
        match i {
            2 => assert_eq!(pending, &["SIGWINCH"], "{worker}"),
            _ => assert!(pending.is_empty(), "{worker}"),
        }
    }
    let pinned = named("w0")["cpus"].as_str().expect("w0's cpus").to_owned();
    assert!(
        pinned.parse::<u32>().is_ok(),
        "w0 runs on one CPU: {pinned}"
    );

    // The text: a header and one line per thread, columns as in JSON.
    let text = run_to_end(
        ckpt_tool(dir, &[Path::new("info"), &checkpoint]),
        "ckpt info",
        TIMEOUT,
    );
    if text.status.code() != Some(0) {
        text.fail("ckpt info", "expected success");
    }
    let out = &text.stdout;
    let table: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| *l != "thread list:")
        .skip(1)
        .take_while(|l| !l.starts_with("descriptors:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        table.first().map(|h| h.join(" ")),
        Some("tid role name stopped at pending cpus".to_owned()),
        "{out}"
    );
    assert_eq!(table.len(), 1 + count, "{out}");
    for (row, t) in table[1..].iter().zip(list) {
        assert_eq!(row.len(), 6, "{row:?}");
        assert_eq!(row[0], t["tid"].to_string(), "{out}");
        let roles: Vec<&str> = t["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let roles = if roles.is_empty() {
            "-".to_owned()
        } else {
            roles.join(",")
        };
        assert_eq!(row[1], roles, "{out}");
        assert_eq!(row[2], t["name"], "{out}");
        let at = &t["stopped_at"];
        let at = match at["mapping"].as_str() {
            Some(m) => format!("{m}+{:#x}", at["offset"].as_u64().unwrap()),
            None => "-".to_owned(),
        };
        assert_eq!(row[3], at, "{out}");
        assert_eq!(row[5], t["cpus"], "{out}");
    }
}

/// A process without libckpt gets it loaded by `ckpt checkpoint` (tests/attach.rs); one it
/// cannot be loaded into (a static program) is refused and never signalled.
#[test]
fn checkpoint_refuses_a_target_libckpt_cannot_be_loaded_into() {
    if !Path::new("/usr/lib/x86_64-linux-gnu/libc.a").is_file() {
        skip(
            Skip::MissingTool,
            "NO STATIC LIBC: /usr/lib/x86_64-linux-gnu/libc.a is missing (install libc6-dev)",
        );
        return;
    }
    let dir = TempDir::new("cmd-nolib");
    let program = compile_c(
        &dir,
        "static_pause",
        "#include <stdio.h>\n#include <unistd.h>\n\
         int main(void) { puts(\"ready\"); fflush(stdout); for (;;) pause(); }\n",
        &["-static"],
    );
    let mut sleeper = Proc::spawn(direct_command(&dir, &program, &[]), "static pause");
    sleeper.wait_line("ready");
    let pid = sleeper.pid();
    for extra in [&[][..], &["--kill"], &["--signal", "STOP"]] {
        let result = ckpt_checkpoint(&dir, pid, extra);
        if result.status.code() != Some(3)
            || !result.stderr.contains("does not run with libckpt")
            || !result.stderr.contains("statically linked")
            || !result.stderr.contains("not signalling it")
        {
            result.fail("ckpt checkpoint", "expected status 3 and a refusal");
        }
        let state = process_state(pid);
        assert!(
            matches!(state, Some('S') | Some('R')),
            "the program must still run, not stopped: state {state:?}"
        );
    }
    // Queued signal 63 would have killed it (default action: terminate).
    std::thread::sleep(Duration::from_millis(50));
    assert!(matches!(process_state(pid), Some('S') | Some('R')));
    sleeper.kill();
}

#[test]
fn checkpoint_of_a_missing_process_exits_3() {
    let dir = TempDir::new("cmd-missing");
    // Above any pid_max: never a process.
    let result = ckpt_checkpoint(&dir, 2_147_483_000, &[]);
    if result.status.code() != Some(3) || !result.stderr.contains("no process") {
        result.fail("ckpt checkpoint", "expected status 3");
    }
}

#[test]
fn checkpoint_default_keeps_running_and_restarts() {
    let dir = TempDir::new("cmd-default");
    let (mut proc, counter) = running_counter(&dir);
    let pid = proc.pid();
    let result = ckpt_checkpoint(&dir, pid, &[]);
    let checkpoint = checkpoint_path(&dir, &counter);
    if result.status.code() != Some(0)
        || !result
            .stdout
            .contains(&format!("{pid} checkpointed to counter.ckpt"))
        || !result.stdout.contains(&checkpoint.display().to_string())
    {
        result.fail("ckpt checkpoint", "expected success naming counter.ckpt");
    }
    // The target keeps running, counting on.
    let after = read_numbers(&mut proc, 5);
    assert!(checkpoint.is_file());
    assert_eq!(mode_of(&checkpoint), 0o700);
    verify_ok(&dir, &checkpoint);
    proc.kill();

    // The restart continues from where the request caught it (before `after`).
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "restart");
    let first = restarted.next_number();
    assert!(
        first > 3 && first <= after,
        "restart began at {first}; the original was at {after} after the request"
    );
    let second = restarted.next_number();
    assert_eq!(second, first + 1);
    restarted.kill();
}

#[test]
fn checkpoint_to_another_name() {
    let dir = TempDir::new("cmd-name");
    let (mut proc, counter) = running_counter(&dir);
    let pid = proc.pid();
    let result = ckpt_checkpoint(&dir, pid, &["-n", "other.ckpt"]);
    if result.status.code() != Some(0) || !result.stdout.contains("checkpointed to other.ckpt") {
        result.fail("ckpt checkpoint -n", "expected success naming other.ckpt");
    }
    read_numbers(&mut proc, 3);
    assert!(dir.join("other.ckpt").is_file());
    assert!(!checkpoint_path(&dir, &counter).exists());
    assert_eq!(mode_of(&dir.join("other.ckpt")), 0o700);
    verify_ok(&dir, &dir.join("other.ckpt"));
    proc.kill();
}

/// Checkpoints a running counter with an ending option; returns how the counter ended.
fn checkpoint_and_end(label: &str, option: &[&str]) -> i32 {
    let dir = TempDir::new(label);
    let (mut proc, counter) = running_counter(&dir);
    let pid = proc.pid();
    let result = ckpt_checkpoint(&dir, pid, option);
    if result.status.code() != Some(0) {
        result.fail("ckpt checkpoint", "expected success");
    }
    let status = proc.wait_exit_only(TIMEOUT);
    let checkpoint = checkpoint_path(&dir, &counter);
    verify_ok(&dir, &checkpoint);
    status
        .signal()
        .unwrap_or_else(|| proc.fail("expected death by a signal"))
}

#[test]
fn checkpoint_then_term() {
    assert_eq!(checkpoint_and_end("cmd-term", &["--term"]), libc::SIGTERM);
}

#[test]
fn checkpoint_then_kill() {
    assert_eq!(checkpoint_and_end("cmd-kill", &["--kill"]), libc::SIGKILL);
}

#[test]
fn checkpoint_then_signal_n() {
    let dir = TempDir::new("cmd-signal");
    let program = compile_c(&dir, "usr1", USR1_EXIT_C, &[]);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &[]), "ckpt usr1");
    proc.wait_line("ready");
    let result = ckpt_checkpoint(&dir, proc.pid(), &["--signal", "10"]);
    if result.status.code() != Some(0) {
        result.fail("ckpt checkpoint --signal 10", "expected success");
    }
    proc.wait_line("got usr1");
    let status = proc.wait_exit_only(TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", describe_status(status));
    verify_ok(&dir, &checkpoint_path(&dir, &program));
}

#[test]
fn failed_checkpoint_sends_no_ending_signal() {
    let dir = TempDir::new("cmd-fail");
    let (mut proc, _) = running_counter(&dir);
    let pid = proc.pid();
    let result = ckpt_checkpoint(&dir, pid, &["-n", "/nonexistent/dir/x.ckpt", "--kill"]);
    if result.status.code() != Some(1) || !result.stderr.contains(&format!("{pid}: ")) {
        result.fail("ckpt checkpoint", "expected status 1 with the reason");
    }
    // Still alive and counting: no SIGKILL.
    read_numbers(&mut proc, 5);
    assert!(process_state(pid).is_some_and(|s| s != 'Z'));
    proc.kill();
}

#[test]
fn checkpoint_files_are_0700_whatever_the_umask() {
    for umask in ["0", "077", "022"] {
        let dir = TempDir::new(&format!("cmd-umask-{umask}"));
        let counter = compile_c(&dir, "counter", COUNTER_SOURCE, &[]);
        let command = in_shell(
            ckpt_command(&dir, &counter, &["5"]),
            &format!("umask {umask}"),
        );
        let mut proc = Proc::spawn(command, &format!("counter with umask {umask}"));
        proc.wait_lines(3, TIMEOUT);
        // By request, and by signal.
        let result = ckpt_checkpoint(&dir, proc.pid(), &["-n", "requested.ckpt"]);
        if result.status.code() != Some(0) {
            result.fail("ckpt checkpoint", "expected success");
        }
        assert_eq!(mode_of(&dir.join("requested.ckpt")), 0o700, "umask {umask}");
        proc.checkpoint_and_collect(TIMEOUT);
        let checkpoint = checkpoint_path(&dir, &counter);
        expect_checkpoint(&mut proc, &checkpoint);
        assert_eq!(mode_of(&checkpoint), 0o700, "umask {umask}");
    }
}

#[test]
fn symlink_at_the_final_name_is_replaced_not_followed() {
    let dir = TempDir::new("cmd-symlink-final");
    let (mut proc, counter) = running_counter(&dir);
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let checkpoint = checkpoint_path(&dir, &counter);
    std::os::unix::fs::symlink(&victim, &checkpoint).unwrap();

    let result = ckpt_checkpoint(&dir, proc.pid(), &[]);
    if result.status.code() != Some(0) {
        result.fail("ckpt checkpoint", "expected success");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let meta = std::fs::symlink_metadata(&checkpoint).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the symlink was replaced by the checkpoint"
    );
    verify_ok(&dir, &checkpoint);
    proc.kill();
}

#[test]
fn symlink_at_the_temp_name_is_not_followed() {
    let dir = TempDir::new("cmd-symlink-temp");
    let (mut proc, counter) = running_counter(&dir);
    let pid = proc.pid();
    let checkpoint = checkpoint_path(&dir, &counter);
    let temp = dir.join(format!("counter.ckpt.tmp.{pid}"));
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, &temp).unwrap();
    // And a dangling one for a second name: following it would create the file.
    let dangling_target = dir.join("must-not-exist");
    let temp2 = dir.join(format!("second.ckpt.tmp.{pid}"));
    std::os::unix::fs::symlink(&dangling_target, &temp2).unwrap();

    for (name, path) in [
        ("counter.ckpt", &checkpoint),
        ("second.ckpt", &dir.join("second.ckpt")),
    ] {
        let result = ckpt_checkpoint(&dir, pid, &["-n", name]);
        match result.status.code() {
            Some(0) => verify_ok(&dir, path),
            Some(1) => assert!(
                !path.exists(),
                "a failed checkpoint left {}",
                path.display()
            ),
            _ => result.fail("ckpt checkpoint", "expected success or a clean failure"),
        }
        read_numbers(&mut proc, 2);
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        !dangling_target.exists(),
        "the dangling temp symlink was followed"
    );
    proc.kill();
}

/// `ckpt -- info` runs a program named info (found in PATH).
#[test]
fn subcommand_names_run_as_programs_after_double_dash() {
    let dir = TempDir::new("cmd-dashdash");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = bin.join("info");
    std::fs::write(&script, "#!/bin/sh\necho ran info \"$@\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = ckpt_tool(&dir, &["--", "info", "x"]);
    let path = std::env::var("PATH").unwrap_or_default();
    command.env("PATH", format!("{}:{path}", bin.display()));
    command.env("CKPT_LIBRARY", libckpt());
    let output = run_to_end(command, "ckpt -- info", TIMEOUT);
    if output.status.code() != Some(0) || output.stdout.trim() != "ran info x" {
        output.fail("ckpt -- info", "expected the program to run");
    }
}

/// A program that waits; the tests stop it (SIGSTOP), so that a request stays unanswered.
const WAITS_C: &str = r#"
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
"#;

/// A program that blocks libckpt's control signal (63) with a raw system call, past the
/// library's wrappers: a request could never be served.
const BLOCKS_63_RAW_C: &str = r#"
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    uint64_t set = 1ULL << (63 - 1);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, sizeof set);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
"#;

/// Whether signal `signal` is pending for process `pid` (`ShdPnd` or `SigPnd`).
fn signal_pending(pid: i32, signal: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status.lines().any(|line| {
        let Some(mask) = line
            .strip_prefix("ShdPnd:")
            .or_else(|| line.strip_prefix("SigPnd:"))
        else {
            return false;
        };
        u64::from_str_radix(mask.trim(), 16).is_ok_and(|m| m & (1 << (signal - 1)) != 0)
    })
}

/// A program under ckpt, stopped with SIGSTOP once it is ready: it cannot answer.
fn stopped_target(dir: &TempDir) -> Proc {
    let program = compile_c(dir, "waits", WAITS_C, &[]);
    let mut proc = Proc::spawn(ckpt_command(dir, &program, &[]), "ckpt waits");
    proc.wait_line("ready");
    proc.signal(libc::SIGSTOP);
    assert!(
        wait_for_state(proc.pid(), 'T', TIMEOUT),
        "the target did not stop"
    );
    proc
}

#[test]
fn no_answer_times_out_without_ending_signal() {
    let dir = TempDir::new("cmd-timeout");
    let mut proc = stopped_target(&dir);
    let pid = proc.pid();
    let started = std::time::Instant::now();
    let result = run_to_end(
        ckpt_tool(
            &dir,
            &["checkpoint", &pid.to_string(), "--kill", "--timeout", "0.5"],
        ),
        "ckpt checkpoint --timeout 0.5",
        TIMEOUT,
    );
    if result.status.code() != Some(124) || !result.stderr.contains("no answer") {
        result.fail("ckpt checkpoint", "expected status 124");
    }
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(signal_pending(pid, 63), "the request is still pending");
    assert_eq!(process_state(pid), Some('T'), "no SIGKILL after a timeout");
    proc.kill();
}

#[test]
fn target_that_ends_before_answering() {
    let dir = TempDir::new("cmd-dies");
    let mut target = stopped_target(&dir);
    let pid = target.pid();
    let mut request = Proc::spawn(
        ckpt_tool(&dir, &["checkpoint", &pid.to_string(), "--timeout", "30"]),
        "ckpt checkpoint",
    );
    // Once the request is pending, the command is waiting for the answer: end the target.
    assert!(
        wait_until(|| signal_pending(pid, 63), TIMEOUT),
        "the request never arrived"
    );
    target.kill();
    let started = std::time::Instant::now();
    let status = request.wait_exit_only(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", request.stderr());
    assert!(
        request.stderr().contains("ended before it answered"),
        "{}",
        request.stderr()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "noticed quickly"
    );
}

#[test]
fn a_control_signal_blocked_past_the_library_is_refused_at_once() {
    let dir = TempDir::new("cmd-blocked");
    let program = compile_c(&dir, "blocks63", BLOCKS_63_RAW_C, &[]);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &[]), "ckpt blocks63");
    proc.wait_line("ready");
    let pid = proc.pid();
    let started = std::time::Instant::now();
    let result = run_to_end(
        ckpt_tool(&dir, &["checkpoint", &pid.to_string(), "--kill"]),
        "ckpt checkpoint",
        TIMEOUT,
    );
    if result.status.code() != Some(3)
        || result.stderr.lines().count() != 1
        || !result.stderr.contains("blocks signal 63")
    {
        result.fail("ckpt checkpoint", "expected a refusal naming signal 63");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    assert!(!signal_pending(pid, 63), "never signalled");
    assert!(matches!(process_state(pid), Some('S') | Some('R')));
    proc.kill();
}

fn wait_until(mut condition: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// A reader that has gone (`ckpt info FILE | head`) ends the command by SIGPIPE, as it ends
/// any Unix filter, with no panic message: the Rust runtime ignores SIGPIPE, and `println!`
/// into a closed pipe panics.
#[test]
fn closed_stdout_ends_the_command_quietly() {
    let dir = TempDir::new("cmd-sigpipe");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut command = ckpt_tool(&dir, &["--help"]);
    command
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn ckpt --help");
    drop(command);
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ckpt --help into a closed pipe did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.signal() == Some(libc::SIGPIPE) && stderr.is_empty(),
        "ckpt --help into a closed pipe: {}, stderr {stderr:?}",
        describe_status(status)
    );
}
