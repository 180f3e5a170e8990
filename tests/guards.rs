//! Guard pages (`MADV_GUARD_INSTALL`): a checkpoint must never read them (the program died
//! of SIGSEGV on the checkpoint signal), and the restart installs them again, in anonymous
//! memory and in file mappings, eagerly, lazily and compressed.

use std::path::Path;

use ckpt_tests::*;

const GUARDS_C: &str = include_str!("programs/guards.c");

/// Checkpoints the guard program with `settings`, restarts it with `restart_env`, and checks
/// its guards and data after the restart.
fn round_trip(label: &str, settings: &[(&str, &str)], restart_env: &[(&str, &str)]) {
    let dir = TempDir::new(label);
    let program = compile_c(&dir, "guards", GUARDS_C, &[]);
    let mut command = ckpt_command(&dir, &program, &[]);
    command.envs(settings.iter().copied());
    let mut proc = Proc::spawn(command, "ckpt guards");
    let first =
        proc.wait_line_matching("ready", TIMEOUT, |l| l == "ready" || l == "no guard pages");
    if first == "no guard pages" {
        skip(Skip::CannotHere, "this kernel has no MADV_GUARD_INSTALL");
        return;
    }
    // It checks itself before the checkpoint too.
    proc.signal(libc::SIGUSR1);
    proc.wait_line("guards ok");
    let checkpoint = checkpoint_path(&dir, &program);
    if settings.contains(&("CKPT_CONTINUE", "1")) {
        proc.signal(libc::SIGTSTP);
        assert!(wait_for_file(&checkpoint, TIMEOUT), "no checkpoint");
        proc.signal(libc::SIGUSR1);
        proc.wait_line("guards ok");
        proc.kill();
    } else {
        proc.signal(libc::SIGTSTP);
        proc.wait_success(TIMEOUT);
        expect_checkpoint(&mut proc, &checkpoint);
    }

    let info = info_json(&checkpoint);
    let guarded: u64 = info["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["guard_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        guarded,
        5 * 4096,
        "the five guard pages are recorded: {info}"
    );
    let verify = run_to_end(
        ckpt_tool(&dir, &[Path::new("verify"), &checkpoint]),
        "ckpt verify",
        TIMEOUT,
    );
    if verify.status.code() != Some(0) {
        verify.fail("ckpt verify", "the checkpoint verifies");
    }

    let mut command = restart_command(&dir, &checkpoint);
    command.envs(restart_env.iter().copied());
    let mut restarted = Proc::spawn(command, "restart");
    // Restarted, it pauses again (a checkpoint signal may have come just before the pause,
    // so it need not say "woke" first): then its handlers are back.
    restarted.wait_blocked_in(&[libc::SYS_pause], TIMEOUT);
    restarted.signal(libc::SIGUSR1);
    restarted.wait_line("guards ok");
    restarted.kill();
}

#[test]
fn guard_pages_are_never_read_and_come_back() {
    round_trip("guards", &[], &[]);
}

#[test]
fn guard_pages_come_back_in_a_lazy_restart() {
    round_trip(
        "guards-lazy",
        &[("CKPT_COMPRESS", "0")],
        &[("CKPT_LAZY", "1")],
    );
}

#[test]
fn guard_pages_come_back_from_compressed_memory() {
    round_trip("guards-lz4", &[("CKPT_COMPRESS", "lz4")], &[]);
}

#[test]
fn guard_pages_survive_a_forked_writer() {
    round_trip("guards-fork", &[("CKPT_CONTINUE", "1")], &[]);
}
