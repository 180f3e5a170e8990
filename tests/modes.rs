//! Every way of taking and restoring a checkpoint brings back the same memory: the image
//! written in the signal handler or by a copy-on-write child (CKPT_FORK), raw or compressed
//! (CKPT_COMPRESS: 0, code by default, lz4), restored eagerly (read into anonymous memory, checksums checked) or
//! lazily (CKPT_LAZY=1, mapped from the file; compressed payloads are read). The program checks 64 MiB of a pattern, a sparse reservation, read-only and
//! PROT_NONE pages, and a journal it rewrites on every tick, then writes to the restored
//! memory.

use std::path::Path;
use std::process::Command;

use ckpt_tests::*;

const MODES_C: &str = include_str!("programs/modes.c");
const FORKADVICE_C: &str = include_str!("programs/forkadvice.c");

/// Starts the program with `env`, and checkpoints it with SIGTSTP once it has ticked a bit.
fn checkpoint(mut command: Command, env: &[(&str, &str)], label: &str) -> Proc {
    for (k, v) in env {
        command.env(k, v);
    }
    let mut proc = Proc::spawn(command, label);
    proc.wait_line("ready");
    proc.wait_line("tick 20");
    proc.signal(libc::SIGTSTP);
    proc
}

/// Restarts `image` (lazily or not) and expects the memory check to pass and the ticks to
/// go on from where the image was taken.
fn expect_restart(dir: &TempDir, image: &Path, lazy: bool, label: &str) {
    let mut command = restart_command(dir, image);
    if lazy {
        command.env("CKPT_LAZY", "1");
    }
    let mut proc = Proc::spawn(command, label);
    let line = proc.wait_line_matching("the memory check", TIMEOUT, |l| {
        l == "memory ok" || l.starts_with("BAD")
    });
    if line != "memory ok" {
        proc.fail(&format!("memory check failed after restart: {line}"));
    }
    let mut tick = || {
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        number_after(&line, "tick ")
    };
    let (next, after) = (tick(), tick());
    if next.is_none() || after != next.map(|n| n + 1) {
        proc.fail(&format!(
            "ticks do not go on after the check: {next:?} then {after:?}"
        ));
    }
    proc.kill();
}

fn image_of(dir: &TempDir) -> std::path::PathBuf {
    dir.join("modes.ckpt")
}

#[test]
fn handler_written_image_restores_eagerly_and_lazily() {
    let dir = TempDir::new("modes-handler");
    let program = compile_c(&dir, "modes", MODES_C, &[]);
    let mut proc = checkpoint(ckpt_command(&dir, &program, &[]), &[], "modes");
    proc.wait_success(TIMEOUT);
    let image = image_of(&dir);
    expect_checkpoint(&mut proc, &image);
    expect_restart(&dir, &image, false, "modes.ckpt (eager)");
    expect_restart(&dir, &image, true, "modes.ckpt (lazy)");
    // The same file, eagerly again after a lazy restart used it.
    expect_restart(&dir, &image, false, "modes.ckpt (eager again)");
}

#[test]
fn forked_image_restores_eagerly_and_lazily() {
    for fork in ["1", "0"] {
        let dir = TempDir::new(&format!("modes-fork-{fork}"));
        let program = compile_c(&dir, "modes", MODES_C, &[]);
        let image = image_of(&dir);
        let mut proc = checkpoint(
            ckpt_command(&dir, &program, &[]),
            &[("CKPT_CONTINUE", "1"), ("CKPT_FORK", fork)],
            &format!("modes (CKPT_FORK={fork})"),
        );
        // The program goes on ticking (and rewriting its journal) while, with
        // CKPT_FORK=1, a child writes the image of the moment of the checkpoint.
        proc.wait_for_file(&image);
        proc.wait_lines(5, TIMEOUT);
        proc.kill();
        expect_restart(
            &dir,
            &image,
            false,
            &format!("modes.ckpt (fork {fork}, eager)"),
        );
        expect_restart(
            &dir,
            &image,
            true,
            &format!("modes.ckpt (fork {fork}, lazy)"),
        );
    }
}

/// The regions of `image` as `ckpt info --json` lists them.
fn regions_of(image: &Path) -> Vec<serde_json::Value> {
    info_json(image)["regions"].as_array().unwrap().clone()
}

#[test]
fn compressed_images_restore_eagerly_and_lazily_and_are_smaller() {
    let dir = TempDir::new("modes-lz4");
    let program = compile_c(&dir, "modes", MODES_C, &[]);
    let image = image_of(&dir);
    let mut last_size = u64::MAX;
    // None, the default (program and library images: CKPT_COMPRESS unset), then all memory.
    for compress in ["0", "default", "lz4"] {
        let env: &[(&str, &str)] = match compress {
            "default" => &[],
            _ => &[("CKPT_COMPRESS", compress)],
        };
        let mut proc = checkpoint(
            ckpt_command(&dir, &program, &[]),
            env,
            &format!("modes (CKPT_COMPRESS={compress})"),
        );
        proc.wait_success(TIMEOUT);
        expect_checkpoint(&mut proc, &image);
        let size = std::fs::metadata(&image).unwrap().len();
        // 64 MiB of a mixed pattern does not compress, but program text and zero runs do.
        assert!(
            size < last_size,
            "CKPT_COMPRESS={compress}: image ({size} bytes) not smaller than the last ({last_size})"
        );
        last_size = size;
        let regions = regions_of(&image);
        let compressed = |r: &serde_json::Value| r["compressed"].as_bool().unwrap();
        let is = |r: &serde_json::Value, what: &str| {
            r["name"].as_str().unwrap().contains(what) && r["stored"].as_u64().unwrap() > 0
        };
        let libc_text = regions
            .iter()
            .find(|r| is(r, "libc.so") && r["prot"] == "r-xp")
            .expect("libc's text in the image");
        let heap = regions.iter().find(|r| is(r, "[heap]")).expect("a heap");
        assert_eq!(
            (compressed(libc_text), compressed(heap)),
            match compress {
                "0" => (false, false),
                "default" => (true, false),
                _ => (true, true),
            },
            "CKPT_COMPRESS={compress}: (libc text, heap) compressed"
        );
        if compress == "0" {
            continue;
        }
        let in_file = libc_text["in_file"].as_u64().unwrap();
        assert!(
            in_file < libc_text["stored"].as_u64().unwrap() * 3 / 4,
            "libc's text does not compress: {libc_text}"
        );
        let verify = Command::new(ckpt_bin())
            .arg("verify")
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "ckpt verify failed on the compressed image: {verify:?}"
        );
        expect_restart(
            &dir,
            &image,
            false,
            &format!("modes.ckpt ({compress}, eager)"),
        );
        expect_restart(
            &dir,
            &image,
            true,
            &format!("modes.ckpt ({compress}, lazy)"),
        );
    }
}

#[test]
fn lazily_restarted_process_checkpoints_and_restarts_again() {
    let dir = TempDir::new("modes-lazy-chain");
    let program = compile_c(&dir, "modes", MODES_C, &[]);
    let mut proc = checkpoint(ckpt_command(&dir, &program, &[]), &[], "modes");
    proc.wait_success(TIMEOUT);
    let image = image_of(&dir);
    expect_checkpoint(&mut proc, &image);
    // Restarted lazily, its memory is mapped from the file; the next checkpoint must store
    // that memory (the file it maps is replaced by the new checkpoint meanwhile).
    let mut command = restart_command(&dir, &image);
    command.env("CKPT_LAZY", "1");
    let mut lazy = Proc::spawn(command, "modes.ckpt (lazy)");
    lazy.wait_line("memory ok");
    lazy.wait_lines(3, TIMEOUT);
    lazy.signal(libc::SIGTSTP);
    lazy.wait_success(TIMEOUT);
    expect_restart(&dir, &image, false, "modes.ckpt (second image, eager)");
    expect_restart(&dir, &image, true, "modes.ckpt (second image, lazy)");
}

/// Checkpoints `forkadvice <advice>` with CKPT_CONTINUE (and `env`), restarts the image and
/// returns the state its memory is in ("intact" or "zero").
fn state_after_restart(advice: &str, env: &[(&str, &str)]) -> String {
    let dir = TempDir::new(&format!("modes-{advice}"));
    let program = compile_c(&dir, "forkadvice", FORKADVICE_C, &[]);
    let mut command = ckpt_command(&dir, &program, &[advice]);
    command.env("CKPT_CONTINUE", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    let label = format!("forkadvice {advice} {env:?}");
    let mut proc = Proc::spawn(command, &label);
    proc.wait_line("ready");
    proc.wait_line("tick 3 intact");
    proc.signal(libc::SIGTSTP);
    let image = dir.join("forkadvice.ckpt");
    proc.wait_for_file(&image);
    // The program goes on, its memory as it was.
    proc.wait_lines(3, TIMEOUT);
    proc.assert_no_bad_lines();
    proc.kill();
    let mut restarted = Proc::spawn(
        restart_command(&dir, &image),
        &format!("{label}, restarted"),
    );
    let line = restarted.wait_lines(1, TIMEOUT).remove(0);
    restarted.kill();
    line.rsplit(' ').next().unwrap_or_default().to_owned()
}

#[test]
fn memory_a_fork_does_not_copy_is_still_checkpointed() {
    // MADV_DONTFORK memory is not in a forked writer at all: the image is written by the
    // process itself, and the memory comes back.
    assert_eq!(state_after_restart("dontfork", &[]), "intact");
    assert_eq!(
        state_after_restart("dontfork", &[("CKPT_FORK", "0")]),
        "intact"
    );
    // MADV_WIPEONFORK memory is zero in any copy of the process, a forked writer's too (that
    // is what it is for: keys and random state that copies must not share); written by the
    // process itself, it is kept.
    assert_eq!(state_after_restart("wipeonfork", &[]), "zero");
    assert_eq!(
        state_after_restart("wipeonfork", &[("CKPT_FORK", "0")]),
        "intact"
    );
}
