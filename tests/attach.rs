//! `ckpt attach PID` and `ckpt checkpoint PID` on processes that were NOT started under ckpt
//! (issue 14): libckpt is injected with ptrace and the target's own dlopen, then the usual
//! in-process checkpoint runs. The targets are plain spawns of tests/programs/attach_target.c
//! (and a Python loop); a checkpoint restarts and the count goes on where it stopped; the
//! target's signal dispositions and masks are unchanged apart from ckpt's control signal;
//! every refusal leaves the target running untouched; a busy malloc loop is checkpointed or
//! refused in bounded time, never hung and never killed. Also as user nobody (target and
//! ckpt both), which is how an ordinary user meets it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ckpt_tests::*;

const TARGET_C: &str = include_str!("programs/attach_target.c");

/// Bit of signal `n` in a /proc status mask.
const fn bit(n: i32) -> u64 {
    1 << (n - 1)
}

struct Setup {
    dir: TempDir,
    ckpt: PathBuf,
    program: PathBuf,
    nobody: bool,
}

fn setup(label: &str, nobody: bool, extra_flags: &[&str]) -> Setup {
    let dir = TempDir::new(label);
    let ckpt = if nobody {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    } else {
        ckpt_bin()
    };
    let mut flags = vec!["-pthread"];
    flags.extend_from_slice(extra_flags);
    let program = compile_c(&dir, "attach_target", TARGET_C, &flags);
    Setup {
        dir,
        ckpt,
        program,
        nobody,
    }
}

impl Setup {
    fn as_user(&self, command: Command) -> Command {
        if self.nobody {
            as_nobody(command)
        } else {
            command
        }
    }

    /// Starts the target without ckpt and waits for its "pid N" line.
    fn start(&self, mode: &str, env: &[(&str, &str)]) -> Proc {
        self.start_with(mode, env.iter().map(|&(k, v)| (k, OsStr::new(v))))
    }

    /// `start`, with values that need not be text.
    fn start_with<'a>(&self, mode: &str, env: impl Iterator<Item = (&'a str, &'a OsStr)>) -> Proc {
        let mut command = direct_command(&self.dir, &self.program, &[mode]);
        command.envs(env);
        let mut proc = Proc::spawn(self.as_user(command), &format!("target {mode}"));
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        if line != format!("pid {}", proc.pid()) {
            proc.fail(&format!(
                "expected 'pid {}' first, got {line:?}",
                proc.pid()
            ));
        }
        proc
    }

    /// Runs `ckpt ARGS...` (as nobody when set up so) to its end.
    fn ckpt(&self, args: &[&str]) -> Finished {
        let mut command = Command::new(&self.ckpt);
        command.args(args).current_dir(self.dir.path());
        clear_ckpt_settings(&mut command);
        run_to_end(
            self.as_user(command),
            &format!("ckpt {args:?}"),
            Duration::from_secs(40),
        )
    }

    fn image(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The SigCgt, SigIgn and SigBlk masks of a process.
fn masks(pid: i32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("{key} in {status}"))
    };
    (mask("SigCgt:"), mask("SigIgn:"), mask("SigBlk:"))
}

fn has_libckpt(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|maps| maps.contains("/libckpt.so"))
        .unwrap_or(false)
}

fn tracer_of(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("TracerPid")
}

/// The pause an attach reported ("paused 0.123 ms"), for the record.
fn note_pause(what: &str, output: &str) {
    if let Some(at) = output.find("paused ") {
        let rest = &output[at + 7..];
        let ms = rest.split(' ').next().unwrap_or("?");
        eprintln!("attach pause ({what}): {ms} ms");
    }
}

/// Reads a number line from the target, skipping `env` lines.
fn next_count(proc: &mut Proc) -> u64 {
    let line = proc.wait_line_matching("a number", TIMEOUT, |l| l.parse::<u64>().is_ok());
    line.parse().expect("number")
}

/// The last number the (ended) process printed.
fn last_count(proc: &mut Proc) -> u64 {
    proc.rest_of_output();
    let seen = proc.seen().to_vec();
    match seen.iter().rev().find_map(|l| l.parse::<u64>().ok()) {
        Some(n) => n,
        None => proc.fail("no number printed"),
    }
}

/// Asks `ckpt checkpoint PID --kill` and checks the answer; `injected` says whether the
/// command must have loaded libckpt first. Returns the last number the target printed.
fn checkpoint_and_kill(setup: &Setup, target: &mut Proc, name: &str, injected: bool) -> u64 {
    let pid = target.pid().to_string();
    let asked = setup.ckpt(&["checkpoint", &pid, "--kill", "--timeout", "20"]);
    let loaded = asked.stderr.contains("did not run with libckpt; loaded it");
    if asked.status.code() != Some(0)
        || !asked.stdout.contains(&format!("checkpointed to {name}"))
        || loaded != injected
    {
        asked.fail(
            "ckpt checkpoint",
            &format!("expected a checkpoint to {name} (injected first: {injected})"),
        );
    }
    note_pause("ckpt checkpoint", &asked.stderr);
    let status = target.wait_exit_only(TIMEOUT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "--kill ends the target"
    );
    last_count(target)
}

/// Restarts `image` and checks that the count goes on from the checkpoint: its first number
/// is after `before` (seen before the checkpoint was asked for) and at most one past `last`
/// (the original's last, which may have printed on between the checkpoint and the kill);
/// then it counts on by one. Returns the restarted process.
fn restart_continues(setup: &Setup, image: &Path, before: u64, last: u64) -> Proc {
    let mut restarted = Proc::spawn(setup.as_user(restart_command(&setup.dir, image)), "restart");
    let first = next_count(&mut restarted);
    if first <= before || first > last + 1 {
        restarted.fail(&format!(
            "the restart began at {first}; the checkpoint was asked for after {before} and \
             the original printed up to {last}"
        ));
    }
    for expected in first + 1..first + 3 {
        let n = next_count(&mut restarted);
        if n != expected {
            restarted.fail(&format!("expected {expected} after the restart, got {n}"));
        }
    }
    restarted
}

fn attach_then_checkpoint(nobody: bool) {
    let setup = setup(
        if nobody {
            "attach-loop-nobody"
        } else {
            "attach-loop"
        },
        nobody,
        &[],
    );
    let mut target = setup.start("count", &[]);
    let pid = target.pid();
    next_count(&mut target);
    let (caught, ignored, blocked) = masks(pid);

    let attached = setup.ckpt(&["attach", &pid.to_string()]);
    if attached.status.code() != Some(0)
        || !attached
            .stdout
            .contains(&format!("libckpt loaded into process {pid}"))
    {
        attached.fail("ckpt attach", "expected the library to be loaded");
    }
    note_pause("ckpt attach", &attached.stdout);
    assert!(has_libckpt(pid), "libckpt is mapped after the attach");
    assert_eq!(tracer_of(pid), 0, "detached after the attach");
    let control = bit(63);
    assert_eq!(
        masks(pid),
        (caught | control, ignored, blocked),
        "only ckpt's control signal is caught in addition"
    );

    let before = next_count(&mut target);
    let last = checkpoint_and_kill(&setup, &mut target, "attach_target.ckpt", false);
    let image = setup.image("attach_target.ckpt");
    let mut restarted = restart_continues(&setup, &image, before, last);

    // The restarted process carries libckpt: it can be checkpointed again, with no injection.
    let before = next_count(&mut restarted);
    let last = checkpoint_and_kill(&setup, &mut restarted, "attach_target.ckpt", false);
    let mut again = restart_continues(&setup, &image, before, last);
    again.kill();
}

/// A C loop started without ckpt: attach, checkpoint, restart, and the count goes on; the
/// restart can be checkpointed again.
#[test]
fn attached_loop_checkpoints_and_restarts() {
    attach_then_checkpoint(false);
}

#[test]
fn attached_loop_checkpoints_and_restarts_as_nobody() {
    attach_then_checkpoint(true);
}

fn checkpoint_injects(nobody: bool) {
    let setup = setup(
        if nobody {
            "attach-direct-nobody"
        } else {
            "attach-direct"
        },
        nobody,
        &[],
    );
    let mut target = setup.start("count", &[]);
    let before = next_count(&mut target);
    let last = checkpoint_and_kill(&setup, &mut target, "attach_target.ckpt", true);
    let mut restarted = restart_continues(&setup, &setup.image("attach_target.ckpt"), before, last);
    restarted.kill();
}

/// `ckpt checkpoint PID` on a process without libckpt loads it first, says so, and
/// checkpoints.
#[test]
fn checkpoint_loads_the_library_first() {
    checkpoint_injects(false);
}

#[test]
fn checkpoint_loads_the_library_first_as_nobody() {
    checkpoint_injects(true);
}

/// A multithreaded program whose main thread waits in a futex (pthread_join): the library
/// is loaded from the counting thread, and the checkpoint restarts counting on.
#[test]
fn multithreaded_program_is_loaded_from_a_thread_at_a_safe_point() {
    let setup = setup("attach-threads", true, &[]);
    let mut target = setup.start("threads", &[]);
    let pid = target.pid();
    let before = next_count(&mut target);
    let asked = setup.ckpt(&["checkpoint", &pid.to_string(), "--kill", "--timeout", "20"]);
    if asked.status.code() != Some(0)
        || !asked.stderr.contains("loaded it (thread ")
        || asked.stderr.contains(&format!("loaded it (thread {pid},"))
    {
        asked.fail(
            "ckpt checkpoint",
            "expected libckpt loaded from the counting thread, not the main one (in a futex)",
        );
    }
    note_pause("ckpt checkpoint, threads", &asked.stderr);
    target.wait_exit_only(TIMEOUT);
    let last = last_count(&mut target);
    let mut restarted = restart_continues(&setup, &setup.image("attach_target.ckpt"), before, last);
    restarted.kill();
}

/// `ckpt attach -c -a USR2 -n NAME`: the attached program checkpoints on SIGUSR2 and goes
/// on; `-z MS` makes it checkpoint periodically.
#[test]
fn attach_options_configure_the_library() {
    let setup = setup("attach-options", false, &[]);
    let mut target = setup.start("count", &[]);
    let pid = target.pid().to_string();
    next_count(&mut target);
    let attached = setup.ckpt(&["attach", &pid, "-c", "-a", "USR2", "-n", "on-usr2.ckpt"]);
    if attached.status.code() != Some(0) {
        attached.fail("ckpt attach", "expected the library to be loaded");
    }
    let (caught, _, _) = masks(target.pid());
    assert_ne!(caught & bit(libc::SIGUSR2), 0, "-a USR2 takes SIGUSR2");
    assert_eq!(caught & bit(libc::SIGTSTP), 0, "and not SIGTSTP");
    target.signal(libc::SIGUSR2);
    target.wait_for_file(&setup.image("on-usr2.ckpt"));
    let a = next_count(&mut target);
    assert_eq!(next_count(&mut target), a + 1, "-c: it goes on");
    // Attaching again is refused when options would be lost, accepted otherwise.
    let again = setup.ckpt(&["attach", &pid, "-z", "100"]);
    if again.status.code() != Some(3) || !again.stderr.contains("runs with libckpt already") {
        again.fail(
            "ckpt attach",
            "expected a refusal: configuration cannot change",
        );
    }
    let again = setup.ckpt(&["attach", &pid]);
    if again.status.code() != Some(0) || !again.stdout.contains("nothing to do") {
        again.fail("ckpt attach", "expected: already there, nothing to do");
    }
    target.kill();

    let mut target = setup.start("count", &[]);
    let pid = target.pid().to_string();
    next_count(&mut target);
    let attached = setup.ckpt(&["attach", &pid, "-c", "-z", "200", "-n", "periodic.ckpt"]);
    if attached.status.code() != Some(0) {
        attached.fail("ckpt attach", "expected the library to be loaded");
    }
    target.wait_for_file(&setup.image("periodic.ckpt"));
    target.kill();
}

/// A library the target's dlopen refuses: the attach fails with dlerror's message (status
/// 1), and the target goes on as before, registers put back.
#[test]
fn a_dlopen_failure_is_reported_and_the_target_goes_on() {
    let setup = setup("attach-dlerror", false, &[]);
    let bogus = setup.dir.join("libckpt.so");
    std::fs::write(&bogus, [b'x'; 4096]).expect("write bogus library");
    let mut target = setup.start("count", &[]);
    let pid = target.pid();
    next_count(&mut target);
    let mut command = Command::new(&setup.ckpt);
    command
        .args(["attach", &pid.to_string()])
        .current_dir(setup.dir.path());
    clear_ckpt_settings(&mut command);
    command.env("CKPT_LIBRARY", &bogus);
    let failed = run_to_end(command, "ckpt attach (bogus library)", TIMEOUT * 2);
    if failed.status.code() != Some(1)
        || !failed.stderr.contains("dlopen of")
        || !failed.stderr.contains("invalid ELF header")
        || !failed.stderr.contains("goes on without libckpt")
    {
        failed.fail(
            "ckpt attach",
            "expected dlopen's refusal, with dlerror's reason",
        );
    }
    assert!(!has_libckpt(pid));
    assert_eq!(tracer_of(pid), 0);
    let a = next_count(&mut target);
    assert_eq!(next_count(&mut target), a + 1, "the target counts on");
    target.kill();
}

/// Dispositions and masks after the attach equal those before, apart from signal 63; SIGTSTP
/// is not taken without -a; the CKPT_* variables the attach set are put back as they were
/// (CKPT_NAME the program's own, CKPT_ASYNCSIG unset), while the library got ours (-n). A
/// value the library's constructor would refuse (CKPT_CHILDREN not UTF-8), which would end
/// the program, is kept from it while it loads.
#[test]
fn attach_keeps_signal_state_and_environment() {
    use std::os::unix::ffi::OsStrExt;
    let setup = setup("attach-signals", false, &[]);
    let env = [
        ("CKPT_NAME", OsStr::new("mine.ckpt")),
        ("CKPT_CHILDREN", OsStr::from_bytes(b"\xff")),
    ];
    let mut target = setup.start_with("signals", env.into_iter());
    let pid = target.pid();
    next_count(&mut target);
    let (caught, ignored, blocked) = masks(pid);
    assert_ne!(caught & bit(libc::SIGUSR1), 0, "the program's own handler");
    assert_ne!(ignored & bit(libc::SIGUSR2), 0);
    assert_ne!(blocked & bit(libc::SIGHUP), 0);

    let attached = setup.ckpt(&["attach", &pid.to_string(), "-n", "other.ckpt"]);
    if attached.status.code() != Some(0) {
        attached.fail("ckpt attach", "expected the library to be loaded");
    }
    note_pause("ckpt attach, signals", &attached.stdout);
    let after = masks(pid);
    assert_eq!(
        after,
        (caught | bit(63), ignored, blocked),
        "before: {:#x} {:#x} {:#x}",
        caught,
        ignored,
        blocked
    );
    assert_eq!(after.0 & bit(libc::SIGTSTP), 0, "SIGTSTP is not taken");

    target.signal(libc::SIGUSR1);
    target.wait_line("env CKPT_NAME=mine.ckpt");
    target.wait_line("env CKPT_ASYNCSIG unset");
    next_count(&mut target);

    let asked = setup.ckpt(&["checkpoint", &pid.to_string(), "--kill"]);
    if asked.status.code() != Some(0) || !asked.stdout.contains("checkpointed to other.ckpt") {
        asked.fail("ckpt checkpoint", "expected the attach's name, other.ckpt");
    }
    target.wait_exit_only(TIMEOUT);
}

/// A program that never blocks, busy with malloc and free: the attach finds no safe point
/// and refuses within its bound, or (if it ever caught the thread blocked) loads the
/// library; never hangs, never kills the program.
#[test]
fn busy_malloc_loop_is_refused_or_checkpointed_in_bounded_time() {
    let setup = setup("attach-malloc", false, &[]);
    let mut target = setup.start("malloc", &[]);
    let pid = target.pid();
    next_count(&mut target);
    let started = std::time::Instant::now();
    let asked = setup.ckpt(&["checkpoint", &pid.to_string(), "--timeout", "20"]);
    eprintln!(
        "malloc loop: ckpt checkpoint took {:?}, status {:?}",
        started.elapsed(),
        asked.status.code()
    );
    match asked.status.code() {
        Some(0) => assert!(has_libckpt(pid)),
        Some(3) if asked.stderr.contains("no thread was at a safe point") => {
            assert!(!has_libckpt(pid), "refused: not loaded");
        }
        _ => asked.fail("ckpt checkpoint", "expected a checkpoint or a refusal"),
    }
    assert_eq!(tracer_of(pid), 0, "detached");
    let a = next_count(&mut target);
    let b = next_count(&mut target);
    assert!(b > a, "the loop goes on");
    target.kill();
}

/// Runs `ckpt attach` on a target that must be refused with status 3 and `why` in the
/// message, and checks that the target goes on without libckpt.
fn expect_refusal(setup: &Setup, target: &mut Proc, why: &str) {
    let pid = target.pid();
    next_count(target);
    let refused = setup.ckpt(&["attach", &pid.to_string()]);
    if refused.status.code() != Some(3) || !refused.stderr.contains(why) {
        refused.fail("ckpt attach", &format!("expected a refusal saying {why:?}"));
    }
    // And `ckpt checkpoint` refuses it the same way, without signalling it.
    let asked = setup.ckpt(&["checkpoint", &pid.to_string(), "--kill"]);
    if asked.status.code() != Some(3)
        || !asked.stderr.contains(why)
        || !asked.stderr.contains("not signalling it")
    {
        asked.fail(
            "ckpt checkpoint",
            &format!("expected a refusal saying {why:?}"),
        );
    }
    assert!(!has_libckpt(pid), "nothing was loaded");
    let a = next_count(target);
    assert!(next_count(target) == a + 1, "the target counts on");
}

#[test]
fn non_dumpable_process_is_refused() {
    // As nobody (an ordinary user is refused in the same way): root may trace a
    // non-dumpable process, and is not refused.
    let setup = setup("attach-nodump", true, &[]);
    let mut target = setup.start("nodump", &[]);
    expect_refusal(&setup, &mut target, "is not dumpable");
    target.kill();
}

/// A seccomp filter might kill the program for a system call loading the library makes
/// (and which it forbids cannot be read): refused, never risked.
#[test]
fn process_under_a_seccomp_filter_is_refused() {
    let setup = setup("attach-seccomp", false, &[]);
    let mut target = setup.start("seccomp", &[]);
    expect_refusal(&setup, &mut target, "runs under a seccomp filter");
    target.kill();
}

#[test]
fn traced_process_is_refused() {
    if !have_program("strace") {
        skip(Skip::MissingTool, "strace is not installed");
        return;
    }
    let setup = setup("attach-traced", false, &[]);
    let mut command = Command::new("strace");
    command
        .args(["-o", "/dev/null", "-e", "trace=none"])
        .arg(&setup.program)
        .arg("count")
        .current_dir(setup.dir.path());
    clear_ckpt_settings(&mut command);
    let mut strace = Proc::spawn(command, "strace target");
    let line = strace.wait_lines(1, TIMEOUT).remove(0);
    let pid: i32 = line
        .strip_prefix("pid ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| strace.fail(&format!("expected 'pid N', got {line:?}")));
    next_count(&mut strace);
    assert_ne!(tracer_of(pid), 0, "strace traces it");
    for args in [
        &["attach", &pid.to_string()][..],
        &["checkpoint", &pid.to_string(), "--kill"],
    ] {
        let refused = setup.ckpt(args);
        if refused.status.code() != Some(3) || !refused.stderr.contains("is already traced") {
            refused.fail("ckpt", "expected a refusal: already traced");
        }
    }
    assert!(!has_libckpt(pid));
    next_count(&mut strace);
    strace.kill();
    // SAFETY: kill has no memory-safety preconditions; the traced program is strace's child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn static_program_is_refused() {
    if !Path::new("/usr/lib/x86_64-linux-gnu/libc.a").is_file() {
        skip(
            Skip::MissingTool,
            "NO STATIC LIBC: /usr/lib/x86_64-linux-gnu/libc.a is missing (install libc6-dev); \
             the refusal of a static program is not tested",
        );
        return;
    }
    let setup = setup("attach-static", false, &["-static"]);
    let mut target = setup.start("count", &[]);
    expect_refusal(&setup, &mut target, "has no libc.so.6 mapped");
    target.kill();
}

/// ckpt as nobody on root's process: another user's, refused.
#[test]
fn another_users_process_is_refused() {
    if !running_as_root() {
        skip(
            Skip::CannotHere,
            "another user's process: needs root to start one",
        );
        return;
    }
    // ckpt runs as nobody; the target as root, the test's own user.
    let setup = setup("attach-other-user", true, &[]);
    let mut target = Proc::spawn(
        direct_command(&setup.dir, &setup.program, &["count"]),
        "root's target",
    );
    target.wait_lines(1, TIMEOUT);
    expect_refusal(&setup, &mut target, "belongs to another user");
    target.kill();
}

/// A Python loop (an interpreter, started without ckpt): attached and checkpointed, the
/// restart counts on.
#[test]
fn python_loop_attaches_and_restarts() {
    let Some(python) = python3() else { return };
    // As an ordinary user (nobody when the tests run as root), like the C loop's.
    let setup = setup("attach-python", true, &[]);
    let mut command = direct_command(
        &setup.dir,
        &python,
        &[
            "-c",
            "import os, time\nprint('pid', os.getpid(), flush=True)\ni = 0\n\
             while True:\n    print(i, flush=True)\n    i += 1\n    time.sleep(0.1)\n",
        ],
    );
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    let mut target = Proc::spawn(setup.as_user(command), "python loop");
    target.wait_lines(1, TIMEOUT);
    let pid = target.pid();
    next_count(&mut target);
    let attached = setup.ckpt(&["attach", &pid.to_string()]);
    if attached.status.code() != Some(0) {
        attached.fail("ckpt attach", "expected the library to be loaded");
    }
    note_pause("ckpt attach, python", &attached.stdout);
    let before = next_count(&mut target);
    let name = format!("{}.ckpt", python.file_name().unwrap().to_string_lossy());
    let last = checkpoint_and_kill(&setup, &mut target, &name, false);
    let mut restarted = restart_continues(&setup, &setup.image(&name), before, last);
    restarted.kill();
}

/// Signals that arrive while the library is being loaded are held and delivered after, not
/// lost: a stream of queued real-time signals (which the kernel never merges) is sent
/// during the attach, and the program counts every one, with its value.
#[test]
fn signals_sent_during_the_attach_are_all_delivered() {
    let setup = setup("attach-rt", false, &[]);
    let mut held_any = false;
    // Until the attach held at least one signal (it is stopped for well under a
    // millisecond, so a try may miss the stream's window), at most 4 tries.
    for attempt in 0..4 {
        let mut target = setup.start("rt", &[]);
        let pid = target.pid();
        next_count(&mut target);
        let rt = libc::SIGRTMIN() + 1;
        const SENT: i32 = 20_000;
        let sender = std::thread::spawn(move || {
            for value in 1..=SENT {
                loop {
                    let sigval = libc::sigval {
                        sival_ptr: value as usize as *mut libc::c_void,
                    };
                    // SAFETY: sigqueue takes integers and a union by value; the target is
                    // our child, alive until the test kills it.
                    if unsafe { libc::sigqueue(pid, rt, sigval) } == 0 {
                        break;
                    }
                    // EAGAIN: the target's queue is full; it drains it.
                    std::thread::yield_now();
                }
            }
        });
        let attached = setup.ckpt(&["attach", &pid.to_string()]);
        sender.join().expect("sender");
        if attached.status.code() != Some(0) {
            attached.fail("ckpt attach", "expected the library to be loaded");
        }
        note_pause("ckpt attach under a signal stream", &attached.stdout);
        target.signal(libc::SIGUSR1);
        let sum = i64::from(SENT) * (i64::from(SENT) + 1) / 2;
        let expected = format!("got {SENT} sum {sum}");
        let got = target.wait_line_matching("the count", TIMEOUT, |l| l.starts_with("got "));
        if got != expected {
            target.fail(&format!(
                "signals lost or changed: {got:?}, expected {expected:?}; attach said {:?}",
                attached.stdout
            ));
        }
        target.kill();
        if attached.stdout.contains("held and delivered after") {
            eprintln!("attempt {attempt}: {}", attached.stdout.trim());
            held_any = true;
            break;
        }
    }
    if !held_any {
        skip(
            Skip::CannotHere,
            "no signal arrived during the injected calls in 4 tries: the holding path was \
             not exercised (no signal was lost either)",
        );
    }
}
