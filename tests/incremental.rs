//! Incremental checkpoints: a checkpoint that copies the unchanged pages from the previous
//! file restores exactly the memory the program had, after a chain of them whose earlier
//! files are gone, with a region that moved and grew in between, from a periodic chain
//! and from requests, through a forked writer and without one, as an ordinary user; a
//! previous file changed in between makes the next checkpoint full, and still right.
//!
//! The program (tests/programs/incremental.c) changes 1% of a 64 MiB mapping and a few
//! bytes elsewhere at each step and prints a checksum of all its data; after a restart it
//! prints the checksum again. `ckpt info` says how much a checkpoint copied, which proves
//! that the copy path ran (not only that memory came back right). The unchanged pages are
//! shared with the previous file only where the file system can (XFS, Btrfs); the tests
//! use `CKPT_INCREMENTAL=copy`, which copies them elsewhere too (`copy_file_range`), so
//! that the path runs on any file system (`TMPDIR` on XFS runs the block-sharing one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ckpt_tests::*;

const INCREMENTAL_C: &str = include_str!("programs/incremental.c");

/// Longest wait for a line: a 64 MiB checkpoint on a busy machine.
const WAIT: Duration = Duration::from_secs(60);

/// What the tests run: a world-runnable copy of ckpt and its library, and the program.
struct Setup {
    dir: TempDir,
    ckpt: PathBuf,
    program: PathBuf,
}

fn setup(label: &str) -> Setup {
    let dir = TempDir::new(label);
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    if running_as_root() && !have_program("setpriv") {
        panic!("running as root but setpriv (util-linux) is missing: cannot test as nobody");
    }
    let program = compile_c_with_api(&dir, "incremental", INCREMENTAL_C);
    Setup { dir, ckpt, program }
}

impl Setup {
    /// The library beside the world-runnable ckpt, for the program linked with it.
    fn library_dir(&self) -> PathBuf {
        self.ckpt.with_file_name("")
    }

    /// `ckpt [ckpt_args] PROG mode`, as nobody, with `env` set.
    fn start(&self, ckpt_args: &[&str], mode: &str, env: &[(&str, &str)]) -> Proc {
        let mut command = Command::new(&self.ckpt);
        command
            .args(ckpt_args)
            .arg(&self.program)
            .arg(mode)
            .current_dir(self.dir.path());
        clear_ckpt_settings(&mut command);
        command.env("LD_LIBRARY_PATH", self.library_dir());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut proc = Proc::spawn(as_nobody(command), &format!("ckpt incremental {mode}"));
        proc.wait_line_matching("ready", WAIT, |l| l.starts_with("ready"));
        proc
    }

    /// Runs a checkpoint file, as nobody.
    fn restart(&self, checkpoint: &Path) -> Proc {
        let mut command = restart_command(&self.dir, checkpoint);
        command.env("LD_LIBRARY_PATH", self.library_dir());
        Proc::spawn(as_nobody(command), &format!("{}", checkpoint.display()))
    }

    /// `ckpt checkpoint PID -n NAME`, as nobody, expecting success.
    fn request(&self, pid: i32, name: &Path) {
        let mut command = Command::new(&self.ckpt);
        command
            .args(["checkpoint", &pid.to_string(), "-n"])
            .arg(name)
            .args(["--timeout", "30"])
            .current_dir(self.dir.path());
        clear_ckpt_settings(&mut command);
        let done = run_to_end(
            as_nobody(command),
            "ckpt checkpoint",
            Duration::from_secs(40),
        );
        if !done.status.success() {
            done.fail("ckpt checkpoint", "expected success");
        }
    }
}

fn verify_ok(file: &Path) {
    let mut command = Command::new(ckpt_bin());
    command.arg("verify").arg(file);
    let verify = run_to_end(command, "ckpt verify", TIMEOUT);
    if verify.status.code() != Some(0) {
        verify.fail("ckpt verify", &format!("{} should verify", file.display()));
    }
}

/// Bytes the checkpoint copied from the previous file, as `ckpt info --json` says.
fn copied(file: &Path) -> u64 {
    info_json(file)["copied_from_previous"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: no copied_from_previous in ckpt info", file.display()))
}

/// The checksum in a line `step K sum S` or `sum S`.
fn sum_in(line: &str) -> String {
    line.split_whitespace()
        .skip_while(|w| *w != "sum")
        .nth(1)
        .unwrap_or_else(|| panic!("no checksum in {line:?}"))
        .to_owned()
}

/// The next step, and the checksum the program printed after it.
fn step(proc: &mut Proc, k: u32) -> String {
    proc.signal(libc::SIGUSR1);
    let line = proc.wait_line_matching(&format!("step {k}"), WAIT, |l| {
        l.starts_with(&format!("step {k} "))
    });
    sum_in(&line)
}

/// The checksum a (restarted) program computes now.
fn sum_now(proc: &mut Proc) -> String {
    proc.signal(libc::SIGUSR2);
    let line = proc.wait_line_matching("sum", WAIT, |l| l.starts_with("sum "));
    sum_in(&line)
}

/// Requests A, B, C under different names, each after a step (step 2 moves and grows a
/// mapping); each earlier file deleted once the next is complete; then more changes and
/// the program killed. C alone restores the memory the program had at C.
fn chain_of_requests(label: &str, env: &[(&str, &str)]) {
    let s = setup(label);
    let mut env = env.to_vec();
    env.push(("CKPT_INCREMENTAL", "copy"));
    let mut proc = s.start(&[], "signals", &env);
    let names = ["a.ckpt", "b.ckpt", "c.ckpt"].map(|n| s.dir.join(n));
    let mut last_sum = String::new();
    for (k, name) in names.iter().enumerate() {
        last_sum = step(&mut proc, k as u32 + 1);
        s.request(proc.pid(), name);
        verify_ok(name);
        let copied = copied(name);
        if k == 0 {
            assert_eq!(copied, 0, "the first checkpoint has nothing to copy from");
        } else {
            // Most of the 64 MiB mapping did not change.
            assert!(
                copied > 32 << 20,
                "{}: only {copied} bytes copied from the previous checkpoint",
                name.display()
            );
            std::fs::remove_file(&names[k - 1]).expect("remove the previous checkpoint");
        }
    }
    step(&mut proc, 4);
    proc.kill();
    let mut restarted = s.restart(&names[2]);
    expect_restored(&mut restarted);
    assert_eq!(
        sum_now(&mut restarted),
        last_sum,
        "memory after restarting the last of a chain of incremental checkpoints"
    );
    // And it goes on from there.
    step(&mut restarted, 4);
    restarted.kill();
}

#[test]
fn chain_of_requested_incremental_checkpoints_restores_the_last() {
    chain_of_requests("incremental-requests", &[]);
}

#[test]
fn chain_of_incremental_checkpoints_without_a_forked_writer() {
    chain_of_requests("incremental-direct", &[("CKPT_FORK", "0")]);
}

/// Waits for `n` more `checkpoint step` lines.
fn checkpoints(proc: &mut Proc, n: usize) {
    for _ in 0..n {
        proc.wait_line_matching("checkpoint step", WAIT, |l| {
            l.starts_with("checkpoint step ")
        });
    }
}

/// Waits for periodic checkpoints until one of them shares or copies most of its memory
/// from the previous file (not every one does: after a few, the previous file is in too
/// many pieces, and the next is full); fails after `n`.
fn until_incremental(proc: &mut Proc, file: &Path, n: usize) {
    for _ in 0..n {
        checkpoints(proc, 1);
        if copied(file) > 32 << 20 {
            return;
        }
    }
    panic!("none of {n} periodic checkpoints was incremental");
}

/// The `restored step K saved S now N` line of a restarted program: N must be S.
fn expect_restored(proc: &mut Proc) {
    let line = proc.wait_line_matching("restored", WAIT, |l| l.starts_with("restored "));
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["restored", "step", _, "saved", saved, "now", now] => assert_eq!(
            saved, now,
            "memory after a restart differs from the memory at the checkpoint: {line}"
        ),
        _ => panic!("unexpected line {line:?}"),
    }
}

/// Periodic checkpoints (incremental by default) while the program changes its memory,
/// each replacing the previous file; the last restores the memory it was taken of. The
/// restarted program's first checkpoint is full, the next ones incremental again.
#[test]
fn periodic_incremental_checkpoints_restore_the_memory_they_were_taken_of() {
    let s = setup("incremental-periodic");
    let file = s.dir.join("periodic.ckpt");
    let name = file.to_str().expect("utf-8 path");
    let mut proc = s.start(
        &["-z", "150", "-n", name],
        "periodic",
        &[("CKPT_INCREMENTAL", "copy")],
    );
    until_incremental(&mut proc, &file, 8);
    checkpoints(&mut proc, 2);
    proc.kill();
    verify_ok(&file);
    let mut restarted = s.restart(&file);
    expect_restored(&mut restarted);
    // Its first checkpoint is full (nothing tracked yet in the new process); then
    // incremental again.
    until_incremental(&mut restarted, &file, 8);
    restarted.kill();
    verify_ok(&file);
    let mut again = s.restart(&file);
    expect_restored(&mut again);
    again.kill();
}

/// Whether the process tracks written pages: `uw` (userfaultfd write protection) in the
/// `VmFlags` of its mappings.
fn tracks_writes(pid: i32) -> bool {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read smaps");
    smaps
        .lines()
        .filter_map(|l| l.strip_prefix("VmFlags:"))
        .any(|flags| flags.split_whitespace().any(|f| f == "uw"))
}

/// Whether files in `dir` can share blocks (`cp --reflink=always` works there).
fn shares_blocks(dir: &TempDir) -> bool {
    let (a, b) = (dir.join("reflink-a"), dir.join("reflink-b"));
    std::fs::write(&a, [7u8; 8192]).expect("write a probe file");
    let ok = Command::new("cp")
        .arg("--reflink=always")
        .arg(&a)
        .arg(&b)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    ok
}

/// Periodic checkpoints are incremental by default where the file system shares blocks
/// (the program's writes are tracked, and the unchanged pages shared with the previous
/// file); where it cannot (ext4), tracking would only cost the program its write faults,
/// and nothing is tracked unless CKPT_INCREMENTAL=1 asks; with CKPT_INCREMENTAL=0 nothing is
/// tracked and everything written.
#[test]
fn periodic_checkpoints_are_incremental_by_default_and_not_with_0() {
    let s = setup("incremental-default");
    let sharing = shares_blocks(&s.dir);
    for (setting, incremental) in [(None, sharing), (Some("1"), true), (Some("0"), false)] {
        let file = s.dir.join(format!("default-{incremental}.ckpt"));
        let name = file.to_str().expect("utf-8 path");
        let env: Vec<(&str, &str)> = setting
            .map(|v| ("CKPT_INCREMENTAL", v))
            .into_iter()
            .collect();
        let mut proc = s.start(&["-z", "150", "-n", name], "periodic", &env);
        checkpoints(&mut proc, 3);
        assert_eq!(
            tracks_writes(proc.pid()),
            incremental,
            "CKPT_INCREMENTAL={setting:?}: written pages tracked"
        );
        if incremental && sharing {
            until_incremental(&mut proc, &file, 8);
        }
        proc.kill();
        verify_ok(&file);
        if !(incremental && sharing) {
            assert_eq!(
                copied(&file),
                0,
                "CKPT_INCREMENTAL={setting:?}, sharing {sharing}"
            );
        }
        let mut restarted = s.restart(&file);
        expect_restored(&mut restarted);
        restarted.kill();
    }
}

/// The previous file changed between two checkpoints (its payload damaged, as a careless
/// copy or a disk might): the next checkpoint notices by its identity, copies nothing, and
/// is complete and right.
#[test]
fn a_changed_previous_file_makes_the_next_checkpoint_full() {
    let s = setup("incremental-damaged");
    let mut proc = s.start(&[], "signals", &[("CKPT_INCREMENTAL", "copy")]);
    let file = s.dir.join("same.ckpt");
    step(&mut proc, 1);
    s.request(proc.pid(), &file);
    step(&mut proc, 2);
    s.request(proc.pid(), &file);
    assert!(
        copied(&file) > 32 << 20,
        "the second checkpoint should copy"
    );
    // Damage a page in the middle of the file (payload of the 64 MiB mapping), which an
    // incremental checkpoint would otherwise copy.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open the checkpoint for writing");
        let len = f.metadata().expect("stat").len();
        f.write_all_at(&[0xa5; 4096], (len / 2) & !4095)
            .expect("damage the checkpoint");
    }
    let sum = step(&mut proc, 3);
    s.request(proc.pid(), &file);
    verify_ok(&file);
    assert_eq!(
        copied(&file),
        0,
        "a changed previous file must not be copied from"
    );
    proc.kill();
    let mut restarted = s.restart(&file);
    expect_restored(&mut restarted);
    assert_eq!(sum_now(&mut restarted), sum);
    restarted.kill();
}
