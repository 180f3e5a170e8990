//! Multithreaded programs: every thread stopped for the checkpoint and made again by the
//! restart, with its own state (tests/programs/threads.c checks it from inside); a thread
//! that cannot be stopped fails the checkpoint, named, and the program goes on.

use std::io::Write;
use std::path::{Path, PathBuf};

use ckpt_tests::*;

const THREADS_C: &str = include_str!("programs/threads.c");
const WORKERS: usize = 6;

fn build(dir: &TempDir) -> PathBuf {
    compile_c(dir, "threads", THREADS_C, &["-pthread", "-ldl"])
}

/// What the program prints after "check", in some order: every worker's verdict, each
/// blocked thread woken, and the end.
fn expected_end() -> Vec<String> {
    let mut lines: Vec<String> = (0..WORKERS).map(|i| format!("worker {i} ok")).collect();
    lines.extend(
        [
            "cond woke",
            "sigwait woke: 12",
            "sleeper woke",
            "altstack woke: on it",
            "done: counted",
        ]
        .map(String::from),
    );
    lines.sort();
    lines
}

/// Sends "check" to a running `threads` program and expects its verdicts and exit 0.
fn check_and_finish(mut proc: Proc, mut stdin: std::fs::File, label: &str) {
    writeln!(stdin, "check").unwrap_or_else(|e| proc.fail(&format!("{label}: write: {e}")));
    proc.wait_success(TIMEOUT);
    proc.rest_of_output();
    let mut lines: Vec<String> = proc
        .seen()
        .iter()
        .filter(|l| {
            *l != "ready" && !l.starts_with("ckpt_ckpt returned") && !l.starts_with("echo ")
        })
        .cloned()
        .collect();
    lines.sort();
    if lines != expected_end() {
        proc.fail(&format!(
            "{label}: expected, in any order, {:?}",
            expected_end()
        ));
    }
    proc.assert_no_bad_lines();
}

/// Starts `threads MODE` under ckpt (stdin a pipe), waits until it is ready.
fn start(dir: &TempDir, ckpt: Option<&Path>, program: &Path, mode: &str) -> (Proc, std::fs::File) {
    let workers = WORKERS.to_string();
    let command = match ckpt {
        Some(ckpt) => ckpt_command_with(ckpt, dir, program, &[mode, &workers]),
        None => ckpt_command(dir, program, &[mode, &workers]),
    };
    let (mut proc, stdin) = Proc::spawn_with_stdin(command, &format!("threads {mode}"));
    if mode != "api" {
        proc.wait_line("ready");
    }
    (proc, stdin)
}

/// Checkpoints a running `threads` program with the checkpoint signal and expects the file,
/// which must pass its own verification (memory that changed while it was written would
/// not).
fn checkpoint(mut proc: Proc, checkpoint: &Path) {
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    expect_checkpoint(&mut proc, checkpoint);
    verify(checkpoint);
}

fn verify(checkpoint: &Path) {
    let dir = checkpoint.parent().expect("a checkpoint in a directory");
    let mut command = std::process::Command::new(ckpt_bin());
    command.arg("verify").arg(checkpoint).current_dir(dir);
    let finished = run_to_end(command, "ckpt verify", TIMEOUT);
    if !finished.status.success() {
        finished.fail("ckpt verify", "the checkpoint fails its own verification");
    }
}

fn restart(dir: &TempDir, checkpoint: &Path, label: &str) -> (Proc, std::fs::File) {
    Proc::spawn_with_stdin(restart_command(dir, checkpoint), label)
}

/// The test of the test: without a checkpoint the program says what `expected_end` says.
#[test]
fn uninterrupted_run_passes_its_own_checks() {
    let dir = TempDir::new("threads-plain");
    let program = build(&dir);
    let (proc, stdin) = start(&dir, None, &program, "main");
    check_and_finish(proc, stdin, "uninterrupted");
}

#[test]
fn every_thread_comes_back_with_its_state() {
    let dir = TempDir::new("threads-main");
    let program = build(&dir);
    let image = checkpoint_path(&dir, &program);
    let (proc, _stdin) = start(&dir, None, &program, "main");
    checkpoint(proc, &image);
    let (proc, stdin) = restart(&dir, &image, "threads.ckpt");
    check_and_finish(proc, stdin, "restarted");
}

#[test]
fn every_thread_comes_back_as_nobody() {
    let dir = TempDir::new("threads-nobody");
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    let program = build(&dir);
    let image = checkpoint_path(&dir, &program);
    let workers = WORKERS.to_string();
    let (mut proc, _stdin) = Proc::spawn_with_stdin(
        as_nobody(ckpt_command_with(
            &ckpt,
            &dir,
            &program,
            &["main", &workers],
        )),
        "threads as nobody",
    );
    proc.wait_line("ready");
    checkpoint(proc, &image);
    let (proc, stdin) = Proc::spawn_with_stdin(
        as_nobody(restart_command(&dir, &image)),
        "threads.ckpt as nobody",
    );
    check_and_finish(proc, stdin, "restarted as nobody");
}

/// The main thread has called pthread_exit: the process lives on in its other threads, and
/// so does the restarted one.
#[test]
fn main_thread_gone_before_the_checkpoint() {
    let dir = TempDir::new("threads-exit");
    let program = build(&dir);
    let image = checkpoint_path(&dir, &program);
    let (proc, _stdin) = start(&dir, None, &program, "exit");
    checkpoint(proc, &image);
    let (proc, stdin) = restart(&dir, &image, "threads.ckpt (main gone)");
    check_and_finish(proc, stdin, "restarted, main gone");
}

/// A worker takes the checkpoint itself with ckpt_ckpt(); the restarted worker's call
/// returns 1, and every other thread comes back too.
#[test]
fn worker_takes_the_checkpoint_with_the_api() {
    let dir = TempDir::new("threads-api");
    let program = build(&dir);
    let image = checkpoint_path(&dir, &program);
    let (mut proc, _stdin) = start(&dir, None, &program, "api");
    proc.wait_line("ready");
    proc.wait_success(TIMEOUT);
    expect_checkpoint(&mut proc, &image);
    verify(&image);
    let (mut proc, stdin) = restart(&dir, &image, "threads.ckpt (api)");
    proc.wait_line("ckpt_ckpt returned 1");
    check_and_finish(proc, stdin, "restarted after ckpt_ckpt in a worker");
}

/// A restarted process is checkpointed and restarted again: the threads made by the first
/// restart are stopped and made again like any others.
#[test]
fn restarted_threads_checkpoint_again() {
    let dir = TempDir::new("threads-twice");
    let program = build(&dir);
    let image = checkpoint_path(&dir, &program);
    let (proc, _stdin) = start(&dir, None, &program, "main");
    checkpoint(proc, &image);
    let (mut proc, stdin) = restart(&dir, &image, "threads.ckpt (1)");
    writeln!(&stdin, "echo1").unwrap();
    proc.wait_line("echo echo1");
    checkpoint(proc, &image);
    let (proc, stdin) = restart(&dir, &image, "threads.ckpt (2)");
    check_and_finish(proc, stdin, "restarted twice");
}

/// With `-c` a forked child writes the image and the program goes on at once, every thread
/// with it; the image restarts every thread too.
#[test]
fn continue_with_a_forked_writer() {
    let dir = TempDir::new("threads-continue");
    let program = build(&dir);
    let image = checkpoint_path(&dir, &program);
    let workers = WORKERS.to_string();
    let mut command = ckpt_command(&dir, &program, &["main", &workers]);
    command.env("CKPT_CONTINUE", "1");
    let (mut proc, stdin) = Proc::spawn_with_stdin(command, "threads (CKPT_CONTINUE=1)");
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    if !wait_for_file(&image, TIMEOUT) {
        proc.fail("no checkpoint file appeared");
    }
    check_and_finish(proc, stdin, "original, after the checkpoint");
    verify(&image);
    let (proc, stdin) = restart(&dir, &image, "threads.ckpt (from -c)");
    check_and_finish(proc, stdin, "restarted from -c");
}

const BLOCKERS_C: &str = include_str!("programs/blockers.c");

/// What `blockers` prints after "check".
const BLOCKERS_END: [&str; 5] = [
    "spinner ok",
    "fp ok",
    "timer ok",
    "sigwait woke: 12",
    "done",
];

fn blockers_check(mut proc: Proc, mut stdin: std::fs::File, label: &str) {
    writeln!(stdin, "check").unwrap_or_else(|e| proc.fail(&format!("{label}: write: {e}")));
    // (Not wait_success: it gives up at a reported checkpoint failure, which one test
    // expects.)
    let status = proc.wait_exit_only(TIMEOUT);
    if !status.success() {
        proc.fail(&format!("{label}: exited with {}", describe_status(status)));
    }
    let mut lines: Vec<String> = proc.rest_of_output();
    lines.sort();
    let mut want = BLOCKERS_END.map(String::from).to_vec();
    want.sort();
    if lines != want {
        proc.fail(&format!("{label}: expected, in any order, {want:?}"));
    }
}

/// Threads that block every signal, ckpt's too (a raw rt_sigprocmask; glibc's helper thread
/// of a SIGEV_THREAD timer does it itself), cannot park: they are stopped with ptrace, and
/// come back with their registers (a floating-point loop checks its sums), in their system
/// call (sigwaitinfo), and the timer's callbacks go on.
fn threads_blocking_every_signal(nobody: bool) {
    let dir = TempDir::new(if nobody {
        "threads-blockers-nobody"
    } else {
        "threads-blockers"
    });
    let ckpt = if nobody {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    } else {
        ckpt_bin()
    };
    let wrap = |c| if nobody { as_nobody(c) } else { c };
    let program = compile_c(&dir, "blockers", BLOCKERS_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let (mut proc, _stdin) = Proc::spawn_with_stdin(
        wrap(ckpt_command_with(&ckpt, &dir, &program, &[])),
        "blockers",
    );
    proc.wait_line("ready");
    checkpoint(proc, &image);
    // The spinner and glibc's timer helper block every signal: stopped with ptrace, and
    // `ckpt info` says so.
    let info = info_json(&image);
    let ptraced = info["threads"]["list"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|t| {
                    t["roles"]
                        .as_array()
                        .is_some_and(|r| r.contains(&"ptraced".into()))
                })
                .count()
        })
        .unwrap_or(0);
    if ptraced < 2 {
        panic!("ckpt info shows {ptraced} threads stopped with ptrace, not at least 2: {info}");
    }
    let (proc, stdin) =
        Proc::spawn_with_stdin(wrap(restart_command(&dir, &image)), "blockers.ckpt");
    blockers_check(proc, stdin, "restarted");
}

#[test]
fn threads_blocking_every_signal_are_stopped_with_ptrace() {
    threads_blocking_every_signal(false);
}

#[test]
fn threads_blocking_every_signal_are_stopped_with_ptrace_as_nobody() {
    threads_blocking_every_signal(true);
}

/// Where ptrace is refused (here by the program's own seccomp filter), a thread that
/// blocks every signal cannot be stopped: the checkpoint fails in one line that names it,
/// no file is left, and every thread of the program goes on.
#[test]
fn unstoppable_thread_fails_the_checkpoint_and_the_program_goes_on() {
    let dir = TempDir::new("threads-noptrace");
    let program = compile_c(&dir, "blockers", BLOCKERS_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let (mut proc, stdin) = Proc::spawn_with_stdin(
        ckpt_command(&dir, &program, &["noptrace"]),
        "blockers noptrace",
    );
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !proc.stderr().contains("failed") {
        if std::time::Instant::now() > deadline {
            proc.fail("no failure was reported");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stderr = proc.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("failed"))
        .unwrap_or_default()
        .to_owned();
    let named = line.contains("' failed: thread ")
        && line.contains("blocks ckpt's control signal")
        && line.contains("operation not permitted")
        && line.ends_with("the program continues");
    if !named {
        proc.fail(&format!(
            "the failure should name the thread and why: {line:?}"
        ));
    }
    if image.exists() {
        proc.fail("a failed checkpoint left a file");
    }
    blockers_check(proc, stdin, "after the failed checkpoint");
}

/// A thread holds the loader's lock at the checkpoint (it is inside `dlopen`, in a
/// library's constructor). glibc locks and unlocks it with its internal mutex code, which
/// compares the owner's thread id with the caller's: after the restart the lock must be
/// handed to the thread's new id, or its unlock fails unseen and the next `dlopen`, or
/// `exit` itself, waits forever.
#[test]
fn loader_lock_held_at_the_checkpoint_is_released_after_the_restart() {
    let dir = TempDir::new("threads-loaderlock");
    let library = compile_c(
        &dir,
        "libslowinit.so",
        include_str!("programs/libslowinit.c"),
        &["-shared", "-fPIC"],
    );
    let program = compile_c(
        &dir,
        "loaderlock",
        include_str!("programs/loaderlock.c"),
        &["-rdynamic", "-pthread", "-ldl"],
    );
    let image = checkpoint_path(&dir, &program);
    let library = library.to_str().expect("a UTF-8 path");
    let (mut proc, _stdin) =
        Proc::spawn_with_stdin(ckpt_command(&dir, &program, &[library]), "loaderlock");
    proc.wait_line("ready");
    checkpoint(proc, &image);
    let (mut proc, mut stdin) = restart(&dir, &image, "loaderlock.ckpt");
    writeln!(stdin, "check").unwrap();
    proc.wait_success(TIMEOUT);
    let lines = proc.rest_of_output();
    if lines != ["dlopen returned", "second dlopen ok", "done"] {
        proc.fail("expected the dlopen to return, a second one to work, and exit()");
    }
}

/// The image of a multithreaded program restarts the same, compressed (CKPT_COMPRESS=lz4)
/// and restored lazily (CKPT_LAZY=1, memory mapped from the file).
#[test]
fn compressed_image_restarts_lazily() {
    let dir = TempDir::new("threads-lz4-lazy");
    let program = build(&dir);
    let image = checkpoint_path(&dir, &program);
    let workers = WORKERS.to_string();
    let mut command = ckpt_command(&dir, &program, &["main", &workers]);
    command.env("CKPT_COMPRESS", "lz4");
    let (mut proc, _stdin) = Proc::spawn_with_stdin(command, "threads (CKPT_COMPRESS=lz4)");
    proc.wait_line("ready");
    checkpoint(proc, &image);
    for lazy in [true, false] {
        let mut command = restart_command(&dir, &image);
        if lazy {
            command.env("CKPT_LAZY", "1");
        }
        let label = format!("threads.ckpt (lz4, lazy: {lazy})");
        let (proc, stdin) = Proc::spawn_with_stdin(command, &label);
        check_and_finish(proc, stdin, &label);
    }
}

const CHURN_C: &str = include_str!("programs/churn.c");

/// A thousand threads, each blocked in pthread_cond_wait, come back, each with its own
/// thread id in glibc and its stack; restored eagerly and lazily from one image.
#[test]
fn a_thousand_threads_come_back() {
    const N: u64 = 1000;
    let dir = TempDir::new("threads-1000");
    let program = compile_c(&dir, "churn", CHURN_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let n = N.to_string();
    let (mut proc, _stdin) =
        Proc::spawn_with_stdin(ckpt_command(&dir, &program, &["many", &n]), "churn many");
    proc.wait_line("ready");
    let before = thread_count(proc.pid());
    if before != Some(N + 1) {
        proc.fail(&format!(
            "expected {} threads before the checkpoint, saw {before:?}",
            N + 1
        ));
    }
    checkpoint(proc, &image);
    let count = &info_json(&image)["threads"]["count"];
    if count.as_u64() != Some(N + 1) {
        panic!(
            "ckpt info counts {count} threads in the image, not {}",
            N + 1
        );
    }
    for lazy in [false, true] {
        let mut command = restart_command(&dir, &image);
        if lazy {
            command.env("CKPT_LAZY", "1");
        }
        let label = format!("churn.ckpt (1000 threads, lazy: {lazy})");
        let (mut proc, mut stdin) = Proc::spawn_with_stdin(command, &label);
        writeln!(stdin, "check").unwrap();
        proc.wait_success(TIMEOUT);
        let want = format!("joined {N} sum {} bad 0", N * (N + 1) / 2);
        if proc.rest_of_output() != [want.clone()] {
            proc.fail(&format!("expected {want:?}"));
        }
    }
}

/// (inode, modification time) of a file, to see a new one renamed into place.
fn identity(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.modified().ok()?))
}

/// Starts `churn MODE` under `ckpt -c -z MS` (periodic checkpoints, the program going on)
/// and waits for its "ready".
fn periodic_churn(dir: &TempDir, program: &Path, mode: &str, ms: &str) -> (Proc, std::fs::File) {
    let mut command = std::process::Command::new(ckpt_bin());
    command
        .args(["-c", "-z", ms])
        .arg(program)
        .arg(mode)
        .current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    let (mut proc, stdin) =
        Proc::spawn_with_stdin(command, &format!("ckpt -c -z {ms} churn {mode}"));
    proc.wait_line("ready");
    (proc, stdin)
}

/// Keeps each of the next `count` periodic checkpoints written to `image` as
/// `kept0.ckpt`, `kept1.ckpt`, … (a hard link holds each file while later ones replace the
/// name).
fn keep_periodic_images(
    proc: &mut Proc,
    dir: &TempDir,
    image: &Path,
    count: usize,
) -> Vec<PathBuf> {
    let mut last = None;
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut kept = Vec::new();
    while kept.len() < count {
        let now = identity(image);
        if now.is_some() && now != last {
            last = now;
            let copy = dir.join(format!("kept{}.ckpt", kept.len()));
            std::fs::hard_link(image, &copy).unwrap();
            kept.push(copy);
        } else if std::time::Instant::now() > deadline {
            proc.fail(&format!(
                "only {} periodic checkpoints appeared",
                kept.len()
            ));
        } else {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    kept
}

/// Periodic checkpoints (`-c -z`) of a program that never stops making and joining threads,
/// some detached: every image passes its own verification (no memory changes while it is
/// written: every thread is frozen), the program's own checks pass throughout, and the last
/// image restarts and goes on making threads.
#[test]
fn periodic_checkpoints_of_a_thread_churn_all_verify() {
    const IMAGES: usize = 12;
    let dir = TempDir::new("threads-churn");
    let program = compile_c(&dir, "churn", CHURN_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let (mut proc, mut stdin) = periodic_churn(&dir, &program, "churn", "50");
    let kept = keep_periodic_images(&mut proc, &dir, &image, IMAGES);
    for copy in &kept {
        verify(copy);
    }
    writeln!(stdin, "check").unwrap();
    proc.wait_success(TIMEOUT);
    if !proc.rest_of_output().iter().any(|l| l == "rounds ok") {
        proc.fail("the churning program's own checks failed");
    }
    let last = kept.last().expect("images were kept");
    let (mut proc, mut stdin) = restart(&dir, last, "the last periodic image (churn)");
    writeln!(stdin, "check").unwrap();
    proc.wait_success(TIMEOUT);
    if proc.rest_of_output() != ["rounds ok"] {
        proc.fail("the restarted churn's own checks failed");
    }
}

/// More threads than the thread table holds (4096): the checkpoint fails in one line that
/// says so, leaves no file, and every thread goes on.
#[test]
fn too_many_threads_fail_the_checkpoint_and_the_program_goes_on() {
    const N: u64 = 4100;
    let dir = TempDir::new("threads-too-many");
    let program = compile_c(&dir, "churn", CHURN_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let n = N.to_string();
    let (mut proc, mut stdin) =
        Proc::spawn_with_stdin(ckpt_command(&dir, &program, &["many", &n]), "churn many");
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    proc.wait_stderr("more threads than ckpt can stop (4096)", TIMEOUT);
    if image.exists() {
        proc.fail("a failed checkpoint left a file");
    }
    writeln!(stdin, "check").unwrap();
    let status = proc.wait_exit_only(TIMEOUT);
    let want = format!("joined {N} sum {} bad 0", N * (N + 1) / 2);
    if !status.success() || proc.rest_of_output() != [want.clone()] {
        proc.fail(&format!("expected {want:?} and exit 0"));
    }
}

/// A timer on CLOCK_THREAD_CPUTIME_ID cannot be given back to the thread that made it (the
/// kernel does not say which did): the restart says so in one line, never silently.
#[test]
fn timer_on_a_thread_clock_is_reported_at_the_restart() {
    let dir = TempDir::new("threads-threadclock");
    let program = compile_c(&dir, "churn", CHURN_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let (mut proc, _stdin) = Proc::spawn_with_stdin(
        ckpt_command(&dir, &program, &["threadclock"]),
        "churn threadclock",
    );
    proc.wait_line("ready");
    checkpoint(proc, &image);
    let (mut proc, mut stdin) = restart(&dir, &image, "churn.ckpt (threadclock)");
    proc.wait_stderr(
        "(CLOCK_THREAD_CPUTIME_ID) now counts the CPU time of the thread that took the checkpoint",
        TIMEOUT,
    );
    writeln!(stdin, "check").unwrap();
    proc.wait_success(TIMEOUT);
}

/// `ckpt checkpoint PID` of a multithreaded program: the request's signal may reach any
/// thread, which stops the others; the program goes on, and the image restarts every
/// thread.
#[test]
fn ckpt_checkpoint_of_a_running_multithreaded_program() {
    let dir = TempDir::new("threads-request");
    let program = build(&dir);
    let image = dir.join("requested.ckpt");
    let (mut proc, stdin) = start(&dir, None, &program, "main");
    let pid = proc.pid().to_string();
    let image_arg = image.to_str().expect("a UTF-8 path");
    let finished = run_to_end(
        ckpt_tool(
            &dir,
            &["checkpoint", &pid, "-n", image_arg, "--timeout", "20"],
        ),
        "ckpt checkpoint",
        TIMEOUT,
    );
    if !finished.status.success() {
        finished.fail("ckpt checkpoint", "the request should succeed");
    }
    verify(&image);
    writeln!(&stdin, "still").unwrap();
    proc.wait_line("echo still");
    check_and_finish(proc, stdin, "after ckpt checkpoint");
    let (proc, stdin) = restart(&dir, &image, "requested.ckpt");
    check_and_finish(proc, stdin, "restarted from ckpt checkpoint");
}

/// Threads that never stop locking shared error-checking and recursive mutexes, checkpointed
/// periodically: wherever a checkpoint lands (inside the lock functions or ckpt's wrappers
/// too), every image restarts with every lock call still succeeding and the counts right.
#[test]
fn threads_hammering_mutexes_restart_from_any_checkpoint() {
    const IMAGES: usize = 6;
    let dir = TempDir::new("threads-locks");
    let program = compile_c(&dir, "churn", CHURN_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let (mut proc, mut stdin) = periodic_churn(&dir, &program, "locks", "40");
    let kept = keep_periodic_images(&mut proc, &dir, &image, IMAGES);
    writeln!(stdin, "check").unwrap();
    proc.wait_success(TIMEOUT);
    if proc.rest_of_output() != ["locks ok"] {
        proc.fail("the original's lock checks failed");
    }
    for copy in &kept {
        let label = copy.file_name().unwrap().to_string_lossy().into_owned();
        let (mut proc, mut stdin) = restart(&dir, copy, &label);
        std::thread::sleep(std::time::Duration::from_millis(30));
        if let Err(e) = writeln!(stdin, "check") {
            let status = proc.wait_exit_only(TIMEOUT);
            proc.fail(&format!(
                "the restart ended before it read 'check' ({e}): {}",
                describe_status(status)
            ));
        }
        proc.wait_success(TIMEOUT);
        // (An image taken before the original printed "ready" prints it.)
        let lines = proc.rest_of_output();
        if lines
            .iter()
            .filter(|l| *l != "ready")
            .ne(["locks ok"].iter())
        {
            proc.fail("the restarted program's lock checks failed");
        }
    }
}

/// Threads working in phases separated by a pthread barrier, with thread-local totals,
/// checkpointed mid-work: the restart finishes with the same checksum as an uninterrupted
/// run, and every thread's thread-local total matches its work.
#[test]
fn barrier_phases_finish_as_if_uninterrupted() {
    const ROUNDS: &str = "20000";
    let dir = TempDir::new("threads-barrier");
    let program = compile_c(&dir, "churn", CHURN_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let plain = run_to_end(
        direct_command(&dir, &program, &["barrier", ROUNDS]),
        "churn barrier",
        TIMEOUT,
    );
    let want = plain
        .lines()
        .into_iter()
        .find(|l| l.starts_with("barrier "))
        .unwrap_or_else(|| plain.fail("churn barrier", "no checksum"))
        .to_owned();
    let mut proc = Proc::spawn(
        ckpt_command(&dir, &program, &["barrier", ROUNDS]),
        "churn barrier",
    );
    proc.wait_line("round 5000");
    if thread_count(proc.pid()) != Some(5) {
        proc.fail("expected 5 threads at the checkpoint");
    }
    checkpoint(proc, &image);
    let mut proc = Proc::spawn(restart_command(&dir, &image), "churn.ckpt (barrier)");
    proc.wait_success(TIMEOUT);
    let lines = proc.rest_of_output();
    if lines.last() != Some(&want) || lines.iter().any(|l| l.starts_with("BAD")) {
        proc.fail(&format!("expected to end with {want:?} and nothing BAD"));
    }
}

/// More threads block every signal than ptrace stops in one checkpoint (64): the checkpoint
/// fails in one line that says so, leaves no file, and every thread goes on.
#[test]
fn too_many_threads_blocking_every_signal_fail_the_checkpoint() {
    let dir = TempDir::new("threads-too-many-masked");
    let program = compile_c(&dir, "churn", CHURN_C, &["-pthread"]);
    let image = checkpoint_path(&dir, &program);
    let (mut proc, mut stdin) = Proc::spawn_with_stdin(
        ckpt_command(&dir, &program, &["masked", "70"]),
        "churn masked 70",
    );
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    proc.wait_stderr(
        "more threads block ckpt's control signal (63) past ckpt's wrappers than ckpt can stop \
         with ptrace (64); the program continues",
        TIMEOUT,
    );
    if image.exists() {
        proc.fail("a failed checkpoint left a file");
    }
    writeln!(stdin, "check").unwrap();
    let status = proc.wait_exit_only(TIMEOUT);
    if !status.success() || proc.rest_of_output() != ["masked done"] {
        proc.fail("expected \"masked done\" and exit 0");
    }
}
