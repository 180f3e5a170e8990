//! State a restart used to lose or change, each found by a peer checkpointer's test program:
//! mutexes locked and unlocked in a tight loop, resource limits, an rseq area the program
//! registered itself, disabled transparent huge pages, the OOM score adjustment, membarrier
//! registrations, and a working directory that was deleted.

use std::os::unix::process::CommandExt;

use ckpt_tests::*;

const MUTEXLOOP_C: &str = include_str!("programs/mutexloop.c");
const RSEQOWN_C: &str = include_str!("programs/rseqown.c");
const PROCSTATE_C: &str = include_str!("programs/procstate.c");

/// Waits for a line that starts with `prefix` and fails on a "FAIL" line before it.
fn wait_for(proc: &mut Proc, prefix: &str) -> String {
    let line = proc.wait_line_matching(prefix, TIMEOUT, |l| {
        l.starts_with(prefix) || l.starts_with("FAIL")
    });
    if line.starts_with("FAIL") {
        proc.fail(&format!("the program failed: {line}"));
    }
    line
}

#[test]
fn mutexes_in_a_tight_loop_survive_many_restarts() {
    let dir = TempDir::new("mutexloop");
    let program = compile_c(&dir, "mutexloop", MUTEXLOOP_C, &["-pthread"]);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &[]), "ckpt mutexloop");
    proc.wait_line("ready");
    wait_for(&mut proc, "round");
    // Each cycle: checkpoint in the middle of the loop, restart, and see it go on. Most
    // checkpoint signals land inside the locking code.
    for cycle in 0..10 {
        proc.signal(libc::SIGTSTP);
        proc.wait_success(TIMEOUT);
        expect_checkpoint(&mut proc, &checkpoint);
        proc = Proc::spawn(
            restart_command(&dir, &checkpoint),
            &format!("restart {cycle}"),
        );
        wait_for(&mut proc, "round");
        wait_for(&mut proc, "round");
    }
    proc.kill();
}

#[test]
fn an_rseq_area_the_program_registered_itself_is_registered_again() {
    let dir = TempDir::new("rseqown");
    let program = compile_c(&dir, "rseqown", RSEQOWN_C, &[]);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &[]), "ckpt rseqown");
    let first = proc.wait_line_matching("an rseq report", TIMEOUT, |l| l.starts_with("rseq"));
    assert_eq!(first, "rseq alive registered", "before the checkpoint");
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let checkpoint = checkpoint_path(&dir, &program);
    expect_checkpoint(&mut proc, &checkpoint);
    // (The line saying where the checkpoint went names the directory, "rseqown-…".)
    let stderr = proc.stderr();
    assert!(
        !stderr
            .lines()
            .any(|line| line.contains("rseq") && !line.starts_with("ckpt: wrote ")),
        "no warning for a registration made through syscall(): {stderr}"
    );
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "restart");
    restarted.wait_blocked_in(&[libc::SYS_pause], TIMEOUT);
    restarted.signal(libc::SIGUSR1);
    let line = restarted.wait_line_matching("an rseq report", TIMEOUT, |l| l.starts_with("rseq"));
    assert_eq!(line, "rseq alive registered", "after the restart");
    restarted.kill();
}

/// The state line the program prints when asked.
fn state_line(proc: &mut Proc) -> String {
    proc.signal(libc::SIGUSR1);
    wait_for(proc, "state ")
}

#[test]
fn limits_huge_page_policy_oom_score_and_membarrier_come_back() {
    // As an ordinary user (root could raise a hard limit back, which is tested below).
    let dir = TempDir::new("procstate");
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    let program = compile_c(&dir, "procstate", PROCSTATE_C, &[]);
    let mut proc = Proc::spawn(
        as_nobody(ckpt_command_with(&ckpt, &dir, &program, &[])),
        "ckpt procstate",
    );
    proc.wait_line("ready");
    let before = state_line(&mut proc);
    assert!(
        before.contains("nofile=100/200")
            && before.contains("thp_disable=1")
            && before.contains("oom_score_adj=500")
            && before.contains("membarrier=0x10"),
        "the program set its state: {before}"
    );
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let checkpoint = checkpoint_path(&dir, &program);
    expect_checkpoint(&mut proc, &checkpoint);

    let mut restarted = Proc::spawn(as_nobody(restart_command(&dir, &checkpoint)), "restart");
    restarted.wait_blocked_in(&[libc::SYS_pause], TIMEOUT);
    let after = state_line(&mut restarted);
    assert_eq!(after, before, "{}", restarted.stderr());
    assert!(restarted.stderr().is_empty(), "{}", restarted.stderr());
    restarted.kill();

    // Where the restart may not raise a hard limit back, it says so and keeps its own.
    let mut command = as_nobody(restart_command(&dir, &checkpoint));
    // SAFETY: setrlimit is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 100,
                rlim_max: 150,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut lowered = Proc::spawn(command, "restart with a lower hard limit");
    lowered.wait_blocked_in(&[libc::SYS_pause], TIMEOUT);
    let state = state_line(&mut lowered);
    assert!(state.contains("nofile=100/150"), "{state}");
    // (Said before the program went on, but read by a thread of the test's own: waited for.)
    lowered.wait_stderr(
        "ckpt: cannot restore RLIMIT_NOFILE (soft 100, hard 200): raising the hard limit \
         above 150 is not permitted",
        TIMEOUT,
    );
    lowered.kill();
}

#[test]
fn a_deleted_working_directory_is_named_as_the_reason() {
    let dir = TempDir::new("deleted-cwd");
    let program = compile_c(&dir, "counter", COUNTER_SOURCE, &[]);
    let gone = dir.join("gone");
    std::fs::create_dir(&gone).unwrap();
    let mut command = ckpt_command(&dir, &program, &["20"]);
    command.current_dir(&gone);
    let mut proc = Proc::spawn(command, "ckpt counter in a deleted directory");
    proc.wait_lines(2, TIMEOUT);
    std::fs::remove_dir(&gone).unwrap();

    // Under its default (relative) name it cannot be written, and the message says why.
    proc.signal(libc::SIGTSTP);
    proc.wait_stderr("failed", TIMEOUT);
    let stderr = proc.stderr();
    assert!(
        stderr.contains(
            "the working directory has been deleted; give the checkpoint an absolute name"
        ),
        "{stderr}"
    );
    let last = proc.next_number();
    assert!(proc.next_number() > last, "the program goes on");

    // Under an absolute name it can, and the restart says where it cannot return.
    let checkpoint = dir.join("counter.ckpt");
    let asked = run_to_end(
        ckpt_tool(
            &dir,
            &[
                "checkpoint",
                &proc.pid().to_string(),
                "-n",
                checkpoint.to_str().unwrap(),
            ],
        ),
        "ckpt checkpoint -n ABSOLUTE",
        TIMEOUT,
    );
    if asked.status.code() != Some(0) {
        asked.fail("ckpt checkpoint", "an absolute name works");
    }
    proc.kill();
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "restart");
    restarted.next_number();
    restarted.wait_stderr(
        &format!(
            "ckpt: the working directory '{}' had been deleted at the checkpoint",
            gone.display()
        ),
        TIMEOUT,
    );
    restarted.kill();
}
