//! Incremental checkpoints: a checkpoint written into the one before the previous
//! (`NAME.prev`) in place, only the pages changed since, restores exactly the memory the
//! program had — from a chain of them, with a region that moved and grew in between, with
//! the latest file deleted in between, from a periodic chain and from requests, through a
//! forked writer and without one, as an ordinary user — and `NAME.prev` restores the one
//! before. A spare that was changed, has another name or is running is never written
//! into: the next checkpoint is written anew, and still right.
//!
//! The program (tests/programs/incremental.c) changes 1% of a 64 MiB mapping and a few
//! bytes elsewhere at each step and prints a checksum of all its data; after a restart it
//! prints the checksum again. `ckpt info` says how much a checkpoint kept from the file it
//! was written over, which proves that the in-place path ran (not only that memory came
//! back right).

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

/// Bytes the checkpoint kept from the file it was written over, as `ckpt info --json`
/// says.
fn kept(file: &Path) -> u64 {
    info_json(file)["kept_from_previous"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: no kept_from_previous in ckpt info", file.display()))
}

/// Most of the 64 MiB mapping was kept: the checkpoint went into the spare in place.
fn in_place(file: &Path) -> bool {
    kept(file) > 32 << 20
}

/// `NAME.prev`: the checkpoint before `NAME`.
fn spare_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".prev");
    PathBuf::from(name)
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

/// Requests under one name, each after a step (step 2 moves and grows a mapping): the
/// first starts the tracking, the second is written anew (keeping the first as the
/// spare), the others in place; the latest file deleted before the fifth does not keep it
/// from going in place (it needs only the spare), but leaves it nothing to swap with, so
/// the sixth is written anew. Then more changes and the program killed: the last file
/// restores the memory the program had at the last checkpoint, and the spare the one
/// before.
fn chain_of_requests(label: &str, env: &[(&str, &str)]) {
    let s = setup(label);
    let mut env = env.to_vec();
    env.push(("CKPT_INCREMENTAL", "1"));
    let mut proc = s.start(&[], "signals", &env);
    let file = s.dir.join("same.ckpt");
    let mut sums = Vec::new();
    for k in 1..=6u32 {
        sums.push(step(&mut proc, k));
        if k == 5 {
            std::fs::remove_file(&file).expect("remove the latest checkpoint");
        }
        s.request(proc.pid(), &file);
        verify_ok(&file);
        // About the program's 70 MiB: pages it never touched are not stored, although
        // the tracking marks them (a process writing its own checkpoint once stored them
        // all, 1.2 GiB).
        let size = std::fs::metadata(&file).expect("stat the checkpoint").len();
        assert!(size < 100 << 20, "checkpoint {k} is {size} bytes");
        // The fifth found no NAME to swap with: it was renamed, and left no spare.
        if k >= 2 && k != 5 {
            verify_ok(&spare_of(&file));
        }
        // The second has no spare to go into yet; the third comes after the mapping moved
        // (that region alone is written anew); the sixth has no spare again.
        assert_eq!(
            in_place(&file),
            k >= 3 && k != 6,
            "checkpoint {k}: {} bytes kept in place",
            kept(&file)
        );
    }
    step(&mut proc, 7);
    proc.kill();
    for (file, sum, next) in [(file.clone(), &sums[5], 7), (spare_of(&file), &sums[4], 6)] {
        let mut restarted = s.restart(&file);
        expect_restored(&mut restarted);
        assert_eq!(
            &sum_now(&mut restarted),
            sum,
            "memory after restarting {}",
            file.display()
        );
        // And it goes on from there.
        step(&mut restarted, next);
        restarted.kill();
    }
}

#[test]
fn chain_of_requested_incremental_checkpoints_restores_the_last_and_the_one_before() {
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

/// Waits for periodic checkpoints until one of them is written in place (the first two
/// of a process are not); fails after `n`.
fn until_incremental(proc: &mut Proc, file: &Path, n: usize) {
    for _ in 0..n {
        checkpoints(proc, 1);
        if in_place(file) {
            return;
        }
    }
    panic!("none of {n} periodic checkpoints was written in place");
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
    let mut proc = s.start(&["-z", "150", "-n", name], "periodic", &[]);
    until_incremental(&mut proc, &file, 8);
    checkpoints(&mut proc, 2);
    proc.kill();
    verify_ok(&file);
    let mut restarted = s.restart(&file);
    expect_restored(&mut restarted);
    // Its first checkpoints are written anew (nothing tracked yet in the new process, and
    // its own file is busy while it runs); then in place again.
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

/// Periodic checkpoints are incremental by default (the program's writes are tracked, and
/// checkpoints go into the spare in place); with CKPT_INCREMENTAL=0 nothing is tracked,
/// everything written anew and no spare kept.
#[test]
fn periodic_checkpoints_are_incremental_by_default_and_not_with_0() {
    let s = setup("incremental-default");
    for (setting, incremental) in [(None, true), (Some("1"), true), (Some("0"), false)] {
        let file = s
            .dir
            .join(format!("default-{}.ckpt", setting.unwrap_or("unset")));
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
        if incremental {
            until_incremental(&mut proc, &file, 8);
        }
        proc.kill();
        verify_ok(&file);
        if !incremental {
            assert_eq!(kept(&file), 0, "CKPT_INCREMENTAL={setting:?}");
            assert!(
                !spare_of(&file).exists(),
                "CKPT_INCREMENTAL=0 keeps no spare"
            );
        }
        let mut restarted = s.restart(&file);
        expect_restored(&mut restarted);
        restarted.kill();
    }
}

/// Three checkpoints under one name, each after a step: the third is written in place.
/// Returns the checksums at the second and third.
fn until_in_place(s: &Setup, proc: &mut Proc, file: &Path) -> (String, String) {
    let mut sums = Vec::new();
    for k in 1..=3 {
        sums.push(step(proc, k));
        s.request(proc.pid(), file);
    }
    assert!(in_place(file), "the third checkpoint should go in place");
    (sums[1].clone(), sums[2].clone())
}

/// The spare changed between two checkpoints (its payload damaged, as a careless copy or
/// a disk might): the next checkpoint notices by its identity, writes everything anew, and
/// is complete and right; the damaged spare is replaced by the previous checkpoint.
#[test]
fn a_changed_spare_makes_the_next_checkpoint_written_anew() {
    let s = setup("incremental-damaged");
    let mut proc = s.start(&[], "signals", &[("CKPT_INCREMENTAL", "1")]);
    let file = s.dir.join("same.ckpt");
    until_in_place(&s, &mut proc, &file);
    // Damage a page in the middle of the spare (payload of the 64 MiB mapping), which the
    // next checkpoint would otherwise keep.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(spare_of(&file))
            .expect("open the spare for writing");
        let len = f.metadata().expect("stat").len();
        f.write_all_at(&[0xa5; 4096], (len / 2) & !4095)
            .expect("damage the spare");
    }
    let sum = step(&mut proc, 4);
    s.request(proc.pid(), &file);
    verify_ok(&file);
    verify_ok(&spare_of(&file));
    assert_eq!(kept(&file), 0, "a changed spare must not be written into");
    proc.kill();
    let mut restarted = s.restart(&file);
    expect_restored(&mut restarted);
    assert_eq!(sum_now(&mut restarted), sum);
    restarted.kill();
}

/// A spare someone else uses is never written into: one with a second name (a hard link
/// made to keep it) and one that is running (restarted lazily, its memory mapped from the
/// file). Each keeps restoring what it held; the checkpoints meanwhile are written anew.
#[test]
fn a_spare_linked_or_running_is_not_written_into() {
    let s = setup("incremental-busy");
    let mut proc = s.start(&[], "signals", &[("CKPT_INCREMENTAL", "1")]);
    let file = s.dir.join("same.ckpt");
    let (second, third) = until_in_place(&s, &mut proc, &file);

    // The spare holds the second checkpoint: kept under another name too.
    let keep = s.dir.join("keep.ckpt");
    std::fs::hard_link(spare_of(&file), &keep).expect("link the spare");
    step(&mut proc, 4);
    s.request(proc.pid(), &file);
    assert_eq!(kept(&file), 0, "a linked spare must not be written into");
    verify_ok(&keep);
    let mut restarted = s.restart(&keep);
    expect_restored(&mut restarted);
    assert_eq!(
        sum_now(&mut restarted),
        second,
        "the kept link restores the second"
    );
    restarted.kill();

    // The spare now holds the third: restarted lazily, it reads its memory from the file
    // as it touches it, after the next checkpoint.
    let mut command = restart_command(&s.dir, &spare_of(&file));
    command
        .env("LD_LIBRARY_PATH", s.library_dir())
        .env("CKPT_LAZY", "1");
    let mut lazy = Proc::spawn(as_nobody(command), "lazy restart of the spare");
    expect_restored(&mut lazy);
    step(&mut proc, 5);
    s.request(proc.pid(), &file);
    assert_eq!(kept(&file), 0, "a running spare must not be written into");
    assert_eq!(
        sum_now(&mut lazy),
        third,
        "a program restarted lazily from the spare reads what it held"
    );
    lazy.kill();
    proc.kill();
}
