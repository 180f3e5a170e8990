//! Real multithreaded programs through a checkpoint and a restart, each checked by the result
//! it prints (or writes) at the end, which only comes out right if no work was lost, repeated
//! or corrupted across the restart:
//!
//! - C++ `std::thread` producers and consumers on a `std::mutex` and two
//!   `std::condition_variable`s (tests/programs/prodcons.cpp);
//! - a Rust `std::sync::mpsc` worker pipeline (tests/programs/pipeline.rs);
//! - OpenMP parallel reductions on libgomp's thread pool, with the pool's idle threads
//!   spinning, waiting on their futex, or both (tests/programs/omp_reduce.c);
//! - Python 3 `threading`: counters under a `Lock` feeding a `queue.Queue` that consumers
//!   drain (tests/programs/pythreads.py);
//! - `xz -T2` and `zstd -T2` compressing a generated file from stdin to stdout. Descriptors
//!   other than 0–2 are not restored, but those three are the restart's own: the test gives
//!   the original process and the restart the same open file descriptions as stdin and
//!   stdout, so the restart reads on where the original stopped reading and writes on where
//!   it stopped writing, and decompressing the output must give back exactly the input.
//!
//! Every program is checkpointed in the middle of its work (the test waits for a progress
//! line or for output, and checks that the original did not finish), with more than one
//! thread alive at that moment (read from /proc/PID/status just before the signal). Each runs
//! once more as an ordinary user (nobody, when the tests run as root). The C++ and OpenMP
//! programs are also checkpointed a second time after their restart, with the threads the
//! restart made.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ckpt_tests::*;

const PRODCONS_CPP: &str = include_str!("programs/prodcons.cpp");
const PIPELINE_RS: &str = include_str!("programs/pipeline.rs");
const OMP_REDUCE_C: &str = include_str!("programs/omp_reduce.c");
const PYTHREADS_PY: &str = include_str!("programs/pythreads.py");

/// These programs work for seconds, and several run side by side on few CPUs: every wait on
/// them has this bound instead of `TIMEOUT`.
const LONG: Duration = Duration::from_secs(120);

/// Who runs the program and its restart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum User {
    /// The user running the tests.
    Same,
    /// nobody (through setpriv) when the tests run as root.
    Nobody,
}

/// A test directory and the `ckpt` to use in it: for `User::Nobody` the directory is world
/// writable and `ckpt` a copy every user can run.
fn setup(label: &str, user: User) -> (TempDir, PathBuf) {
    let dir = TempDir::new(label);
    let ckpt = match user {
        User::Same => ckpt_bin(),
        User::Nobody => {
            dir.make_world_writable();
            world_runnable_ckpt(&dir)
        }
    };
    (dir, ckpt)
}

fn as_user(command: Command, user: User) -> Command {
    match user {
        User::Same => command,
        User::Nobody => as_nobody(command),
    }
}

/// Checks that `proc` has at least `min` threads now, and returns how many.
#[track_caller]
fn expect_threads(proc: &mut Proc, min: u64) -> u64 {
    match thread_count(proc.pid()) {
        Some(n) if n >= min => n,
        other => proc.fail(&format!(
            "expected at least {min} threads before the checkpoint, /proc says {other:?}"
        )),
    }
}

/// `ckpt verify` on a checkpoint file, which must pass.
#[track_caller]
fn verify(dir: &TempDir, checkpoint: &Path) {
    let args = [Path::new("verify"), checkpoint];
    let finished = run_to_end(ckpt_tool(dir, &args), "ckpt verify", LONG);
    if !finished.status.success() {
        finished.fail("ckpt verify", "the checkpoint fails its own verification");
    }
}

/// What a program checkpointed in the middle of its work printed, process by process: the
/// original, then each restart (the last one ran to the end).
struct Runs {
    parts: Vec<Vec<String>>,
}

/// Waits in `proc` (whose ready line was read) for `checkpoint_after`, checks that it runs
/// with at least `min_threads` threads, checkpoints it with SIGTSTP and checks that it exited
/// with status 0 before printing `total`, leaving a checkpoint that verifies. Returns every
/// line it printed.
#[track_caller]
fn checkpoint_at(
    dir: &TempDir,
    mut proc: Proc,
    checkpoint: &Path,
    checkpoint_after: &str,
    min_threads: u64,
) -> Vec<String> {
    proc.wait_line_matching(&format!("line {checkpoint_after:?}"), LONG, |line| {
        line == checkpoint_after || line.starts_with("BAD")
    });
    proc.assert_no_bad_lines();
    expect_threads(&mut proc, min_threads);
    proc.signal(libc::SIGTSTP);
    proc.wait_success(LONG);
    proc.rest_of_output();
    proc.assert_no_bad_lines();
    if proc.seen().iter().any(|line| line.starts_with("total")) {
        proc.fail("finished its work before the checkpoint: the test proves nothing");
    }
    expect_checkpoint(&mut proc, checkpoint);
    verify(dir, checkpoint);
    proc.seen().to_vec()
}

/// Runs `command` (a program under ckpt that prints `ready…`, then progress lines, and at
/// last lines starting with `total`) and checkpoints it once it printed `checkpoint_after[0]`
/// (see `checkpoint_at`); restarts it (through `user`) and checkpoints the restarted process
/// at `checkpoint_after[1]`, and so on; runs the last restart until it exits with status 0.
#[track_caller]
fn checkpoint_midway(
    dir: &TempDir,
    command: Command,
    checkpoint: &Path,
    user: User,
    checkpoint_after: &[&str],
    min_threads: u64,
) -> Runs {
    let mut proc = Proc::spawn(command, "original");
    proc.wait_line_matching("the ready line", LONG, |line| line.starts_with("ready"));
    let mut parts = Vec::new();
    for (n, marker) in checkpoint_after.iter().enumerate() {
        parts.push(checkpoint_at(dir, proc, checkpoint, marker, min_threads));
        let label = format!("restart {}", n + 1);
        proc = Proc::spawn(as_user(restart_command(dir, checkpoint), user), &label);
    }
    proc.wait_success(LONG);
    proc.rest_of_output();
    proc.assert_no_bad_lines();
    parts.push(proc.seen().to_vec());
    Runs { parts }
}

impl Runs {
    /// Fails with every process's output.
    #[track_caller]
    fn fail(&self, message: &str) -> ! {
        let mut report = message.to_owned();
        for (n, part) in self.parts.iter().enumerate() {
            let who = match n {
                0 => "original".to_owned(),
                n => format!("restart {n}"),
            };
            report.push_str(&format!("\n  {who} printed:\n    {}", part.join("\n    ")));
        }
        panic!("{report}");
    }

    /// Every line, of every process in turn.
    fn lines(&self) -> impl Iterator<Item = &String> {
        self.parts.iter().flatten()
    }

    /// The last process's lines.
    fn last_part(&self) -> &[String] {
        self.parts.last().map_or(&[], Vec::as_slice)
    }

    /// The numbers after `prefix` in the lines of all processes, in order, must be exactly
    /// `expected`, and each process must have printed at least one of them (every checkpoint
    /// fell in the middle).
    #[track_caller]
    fn expect_numbered(&self, prefix: &str, expected: impl Iterator<Item = u64>) {
        let mut all = Vec::new();
        for part in &self.parts {
            let numbers: Vec<u64> = part
                .iter()
                .filter_map(|line| number_after(line, prefix))
                .collect();
            if numbers.is_empty() {
                self.fail(&format!("expected {prefix:?} lines from every process"));
            }
            all.extend(numbers);
        }
        let expected: Vec<u64> = expected.collect();
        if all != expected {
            self.fail(&format!(
                "expected the {prefix:?} lines to count {expected:?} across the restarts, \
                 without a gap or a repeat"
            ));
        }
    }

    /// The last restart's last lines, which must be `expected`.
    #[track_caller]
    fn expect_end(&self, expected: &[String]) {
        let last = self.last_part();
        if !last.ends_with(expected) {
            self.fail(&format!(
                "expected the last restart to end with {expected:?}"
            ));
        }
    }
}

/// splitmix64, as in tests/programs/common.h and pipeline.rs.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

// ---------------------------------------------------------------------------------------------
// C++ std::thread, std::mutex, std::condition_variable

/// Producers busy between items, three consumers mostly waiting on the condition variable;
/// about four seconds of work.
/// Checkpointed (and restarted) once after each line of `checkpoint_after`.
fn cxx_condvar(user: User, checkpoint_after: &[&str]) {
    const PRODUCERS: u64 = 2;
    const ITEMS: u64 = 150_000;
    let (dir, ckpt) = setup("threads-real-cxx", user);
    let program = compile_with_threads_cxx(&dir);
    let args = [
        PRODUCERS.to_string(),
        "3".into(),
        ITEMS.to_string(),
        "1500".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = as_user(ckpt_command_with(&ckpt, &dir, &program, &args), user);
    let image = checkpoint_path(&dir, &program);
    // 2 producers + 3 consumers + main.
    let runs = checkpoint_midway(&dir, command, &image, user, checkpoint_after, 6);

    let (mut sum, mut rotsum) = (0u64, 0u64);
    for n in 0..PRODUCERS * ITEMS {
        let value = mix64(n);
        sum = sum.wrapping_add(value);
        rotsum = rotsum.wrapping_add(value.rotate_left((value & 63) as u32));
    }
    runs.expect_numbered("progress ", 1..=8);
    runs.expect_end(&[format!("total {} {sum} {rotsum}", PRODUCERS * ITEMS)]);
}

fn compile_with_threads_cxx(dir: &TempDir) -> PathBuf {
    // compile_cxx takes no flags; glibc 2.34+ has pthreads in libc, and libstdc++'s
    // std::thread needs nothing more there.
    compile_cxx(dir, "prodcons", PRODCONS_CPP)
}

#[test]
fn cxx_mutex_and_condition_variable() {
    cxx_condvar(User::Same, &["progress 2"]);
}

/// The restarted process, its threads made by the restart, is checkpointed again.
#[test]
fn cxx_mutex_and_condition_variable_checkpointed_twice() {
    cxx_condvar(User::Same, &["progress 2", "progress 5"]);
}

#[test]
fn cxx_mutex_and_condition_variable_as_nobody() {
    cxx_condvar(User::Nobody, &["progress 2"]);
}

// ---------------------------------------------------------------------------------------------
// Rust std::thread and std::sync::mpsc

fn rust_pipeline(user: User) {
    const ITEMS: u64 = 6_000_000;
    const WORK: u64 = 50;
    let (dir, ckpt) = setup("threads-real-rust", user);
    let program = compile_rust(&dir, "pipeline", PIPELINE_RS);
    let args = [ITEMS.to_string(), "3".into(), WORK.to_string()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = as_user(ckpt_command_with(&ckpt, &dir, &program, &args), user);
    let image = checkpoint_path(&dir, &program);
    // generator + dispatcher + 3 workers + main.
    let runs = checkpoint_midway(&dir, command, &image, user, &["progress 2"], 6);

    let (mut sum, mut xor) = (0u64, 0u64);
    for i in 0..ITEMS {
        let mut value = i;
        for _ in 0..WORK {
            value = mix64(value);
        }
        sum = sum.wrapping_add(value);
        xor ^= value;
    }
    runs.expect_numbered("progress ", 1..=10);
    runs.expect_end(&[format!("total {ITEMS} {sum} {xor}")]);
}

#[test]
fn rust_mpsc_pipeline() {
    rust_pipeline(User::Same);
}

#[test]
fn rust_mpsc_pipeline_as_nobody() {
    rust_pipeline(User::Nobody);
}

// ---------------------------------------------------------------------------------------------
// OpenMP (libgomp)

/// What round `round` of omp_reduce sums to: x ↦ A·x + C is affine, so STEPS steps are one
/// affine map (a, c), and the sum over i of a·(i + round) + c has a closed form (mod 2^64).
fn omp_round_sum(round: u64, elements: u64, steps: u64) -> u64 {
    const A: u64 = 6_364_136_223_846_793_005;
    const C: u64 = 1_442_695_040_888_963_407;
    let (mut a, mut c) = (1u64, 0u64);
    for _ in 0..steps {
        a = a.wrapping_mul(A);
        c = c.wrapping_mul(A).wrapping_add(C);
    }
    let triangle = (u128::from(elements) * u128::from(elements.saturating_sub(1)) / 2) as u64;
    let inputs = triangle.wrapping_add(elements.wrapping_mul(round));
    a.wrapping_mul(inputs)
        .wrapping_add(elements.wrapping_mul(c))
}

/// OMP_NUM_THREADS=`threads`, OMP_WAIT_POLICY=`policy` (unset for `None`): 400 rounds of a
/// parallel reduction with 5 ms of serial work between them, checkpointed (and restarted)
/// after each round of `checkpoint_rounds`.
fn openmp(user: User, threads: u64, policy: Option<&str>, checkpoint_rounds: &[u64]) {
    const ROUNDS: u64 = 400;
    const ELEMENTS: u64 = 100_000;
    const STEPS: u64 = 100;
    let (dir, ckpt) = setup("threads-real-omp", user);
    let program = compile_c(&dir, "omp_reduce", OMP_REDUCE_C, &["-fopenmp"]);
    let args = [
        ROUNDS.to_string(),
        ELEMENTS.to_string(),
        STEPS.to_string(),
        "5".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = ckpt_command_with(&ckpt, &dir, &program, &args);
    command.env("OMP_NUM_THREADS", threads.to_string());
    match policy {
        Some(policy) => command.env("OMP_WAIT_POLICY", policy),
        None => command.env_remove("OMP_WAIT_POLICY"),
    };
    command.env_remove("GOMP_SPINCOUNT");
    let command = as_user(command, user);
    let image = checkpoint_path(&dir, &program);
    let marks: Vec<String> = checkpoint_rounds
        .iter()
        .map(|&r| format!("round {r} {}", omp_round_sum(r, ELEMENTS, STEPS)))
        .collect();
    let marks: Vec<&str> = marks.iter().map(String::as_str).collect();
    let runs = checkpoint_midway(&dir, command, &image, user, &marks, threads);

    if runs.parts[0].first() != Some(&format!("ready {threads}")) {
        runs.fail(&format!("expected a pool of {threads} threads"));
    }
    runs.expect_numbered("round ", 0..ROUNDS);
    let mut total = 0u64;
    for line in runs.lines() {
        if let Some(rest) = line.strip_prefix("round ") {
            let round = number_after(line, "round ").unwrap_or(u64::MAX);
            let expected = omp_round_sum(round, ELEMENTS, STEPS);
            if rest != format!("{round} {expected}") {
                runs.fail(&format!("round {round} should sum to {expected}: {line:?}"));
            }
            total = total.wrapping_add(expected);
        }
    }
    runs.expect_end(&[format!("total {total}")]);
}

/// The default wait policy, with more threads than CPUs: libgomp spins only briefly, so the
/// idle pool threads sit in futex waits during the serial parts.
#[test]
fn openmp_reductions() {
    openmp(User::Same, 4, None, &[100]);
}

/// The pool made by the restart is checkpointed again, and restarted again.
#[test]
fn openmp_reductions_checkpointed_twice() {
    openmp(User::Same, 4, None, &[100, 250]);
}

/// OMP_WAIT_POLICY=active: idle pool threads spin in user space and never sleep.
#[test]
fn openmp_reductions_with_spinning_pool() {
    openmp(User::Same, 2, Some("active"), &[100]);
}

/// OMP_WAIT_POLICY=passive: idle pool threads go straight to their futex.
#[test]
fn openmp_reductions_with_passive_pool_as_nobody() {
    openmp(User::Nobody, 4, Some("passive"), &[100]);
}

// ---------------------------------------------------------------------------------------------
// Python threading

fn python_threads(user: User) {
    const COUNTERS: u64 = 4;
    const INCREMENTS: u64 = 1_000_000;
    const EVERY: u64 = 10;
    let Some(mut python) = python3() else { return };
    let (dir, ckpt) = setup("threads-real-python", user);
    if user == User::Nobody && running_as_root() {
        // python3 on PATH may live where nobody cannot reach it (pyenv under /root): then
        // the system's, if nobody can run that.
        let reachable = |path: &Path| {
            let mut probe = Command::new("test");
            probe.arg("-x").arg(path);
            as_nobody(probe)
                .status()
                .is_ok_and(|status| status.success())
        };
        if !reachable(&python) {
            let system = PathBuf::from("/usr/bin/python3");
            if !reachable(&system) {
                let why = format!("nobody cannot run {}", python.display());
                skip(Skip::CannotHere, &why);
                return;
            }
            python = system;
        }
    }
    let script = dir.join("pythreads.py");
    std::fs::write(&script, PYTHREADS_PY).expect("write pythreads.py");
    let args = [
        script.to_str().expect("a UTF-8 path").to_owned(),
        COUNTERS.to_string(),
        INCREMENTS.to_string(),
        "3".into(),
        EVERY.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = as_user(ckpt_command_with(&ckpt, &dir, &python, &args), user);
    let image = checkpoint_path(&dir, &python);
    // 4 counters + 3 consumers + main, all busy until the counting ends.
    let runs = checkpoint_midway(&dir, command, &image, user, &["progress 2"], 8);

    let n = COUNTERS * INCREMENTS;
    let queued = n / EVERY;
    let expected = [
        format!("total counter {n} {INCREMENTS} {INCREMENTS}"),
        format!("total queue {queued} {}", EVERY * queued * (queued + 1) / 2),
    ];
    runs.expect_end(&expected);
    runs.expect_numbered("progress ", 1..=10);
}

#[test]
fn python_threading_lock_and_queue() {
    python_threads(User::Same);
}

#[test]
fn python_threading_lock_and_queue_as_nobody() {
    python_threads(User::Nobody);
}

// ---------------------------------------------------------------------------------------------
// xz -T2 and zstd -T2, stdin and stdout shared with the restart

/// Writes `mib` MiB of text to `path`: words and numbers drawn from an LCG, compressible
/// about threefold, so that compressing it takes seconds.
fn generate_input(path: &Path, mib: u64) {
    const WORDS: [&str; 16] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
        "lambda", "mu", "nu", "xi", "omicron", "pi",
    ];
    let size = mib << 20;
    let mut out = Vec::with_capacity(size as usize + 32);
    let mut x = 1u64;
    while (out.len() as u64) < size {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let y = x >> 33;
        if y & 7 == 0 {
            writeln!(out, "{}", y >> 3).expect("write to a Vec");
        } else {
            out.extend_from_slice(WORDS[((y >> 3) & 15) as usize].as_bytes());
            out.push(b' ');
        }
    }
    out.truncate(size as usize);
    std::fs::write(path, out).expect("write the input");
}

/// `command` with the open file descriptions `stdin` and `stdout` as its descriptors 0 and
/// 1 (not copies of the files: the same descriptions, sharing their offsets).
fn with_stdio(command: &mut Command, stdin: &File, stdout: &File) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (input, output) = (stdin.as_raw_fd(), stdout.as_raw_fd());
    // SAFETY: the closure runs in the child between fork and exec and calls only dup2, which
    // is async-signal-safe; it allocates nothing. Proc::spawn made 0 and 1 /dev/null and a
    // pipe; dup2 replaces them (and leaves the copies without close-on-exec). The two raw
    // descriptors are above 2 (the test harness holds 0–2), so the first dup2 cannot close
    // the second's source.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(input, 0) < 0 || libc::dup2(output, 1) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `tool ARGS` (a compressor reading stdin, writing stdout) under ckpt on a generated
/// input of `mib` MiB, checkpoints it once it has written some output and runs with at least
/// three threads (the main one and two workers), restarts it on the same open file
/// descriptions, and checks that `tool -dc` gives back exactly the input.
fn compress_across_restart(tool: &str, args: &[&str], mib: u64, user: User) {
    let Some(program) = find_program(tool) else {
        skip(Skip::MissingTool, &format!("{tool} is not installed"));
        return;
    };
    let (dir, ckpt) = setup(&format!("threads-real-{tool}"), user);
    let input_path = dir.join("input");
    let output_path = dir.join("output");
    generate_input(&input_path, mib);
    let input = File::open(&input_path).expect("open the input");
    let output = File::create(&output_path).expect("create the output");
    let image = checkpoint_path(&dir, &program);

    // (as_user makes a new command, which would not keep with_stdio's pre_exec hook.)
    let mut command = as_user(ckpt_command_with(&ckpt, &dir, &program, args), user);
    if tool == "xz" {
        // xz keeps a pipe to itself (to wake its main loop from a signal handler), which a
        // checkpoint cannot save yet: it is left closed, as the restart says, and xz does
        // without it.
        command.env("CKPT_FD_POLICY", "close");
    }
    with_stdio(&mut command, &input, &output);
    let mut proc = Proc::spawn(command, &format!("ckpt {tool}"));
    let deadline = Instant::now() + LONG;
    // The compressor prints nothing: the output file growing is the sign of work under way.
    while std::fs::metadata(&output_path).map_or(0, |m| m.len()) == 0 {
        if Instant::now() > deadline || process_state(proc.pid()).is_none_or(|s| s == 'Z') {
            proc.fail("wrote nothing (and exited, or did not within the time allowed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let threads = expect_threads(&mut proc, 3);
    proc.signal(libc::SIGTSTP);
    proc.wait_success(LONG);
    expect_checkpoint(&mut proc, &image);
    verify(&dir, &image);
    let input_len = input.metadata().expect("stat the input").len();
    let read_before = (&input).stream_position().expect("the input's offset");
    let written_before = (&output).stream_position().expect("the output's offset");
    if read_before >= input_len {
        proc.fail(&format!(
            "had read all of the input ({read_before} bytes) before the checkpoint: \
             the test proves nothing"
        ));
    }

    let mut command = as_user(restart_command(&dir, &image), user);
    with_stdio(&mut command, &input, &output);
    let mut restarted = Proc::spawn(command, &format!("{tool}.ckpt"));
    restarted.wait_success(LONG);
    let written = (&output).stream_position().expect("the output's offset");
    drop((input, output));

    let label = format!(
        "{tool} with {threads} threads, checkpointed after reading {read_before} of \
         {input_len} bytes and writing {written_before} of {written}"
    );
    expect_decompresses_to(&program, &output_path, &input_path, &label);
}

/// Checks that `tool -dc COMPRESSED` writes exactly the contents of `original`.
fn expect_decompresses_to(tool: &Path, compressed: &Path, original: &Path, label: &str) {
    let mut child = Command::new(tool)
        .arg("-dc")
        .arg(compressed)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the decompressor");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let original = original.to_owned();
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let mut expected = File::open(original).expect("open the input");
        let (mut got, mut want) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        let mut offset = 0u64;
        let verdict = loop {
            let (n, m) = match (fill(&mut stdout, &mut got), fill(&mut expected, &mut want)) {
                (Ok(n), Ok(m)) => (n, m),
                (Err(e), _) | (_, Err(e)) => break Err(format!("read failed: {e}")),
            };
            if let Some(i) = (0..n.min(m)).find(|&i| got[i] != want[i]) {
                break Err(format!("first difference at byte {}", offset + i as u64));
            }
            if n != m {
                break Err(format!(
                    "the decompressed data is {} than the input (at byte {})",
                    if n < m { "shorter" } else { "longer" },
                    offset + n.min(m) as u64
                ));
            }
            if n == 0 {
                break Ok(offset);
            }
            offset += n as u64;
        };
        // Closing the pipe ends a decompressor that still has output after a difference.
        drop(stdout);
        let mut errors = String::new();
        let _ = stderr.read_to_string(&mut errors);
        let _ = done.send((verdict, errors));
    });
    let (verdict, errors) = result.recv_timeout(LONG).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("{label}: decompressing took longer than {LONG:?}");
    });
    let status = child.wait().expect("wait for the decompressor");
    match verdict {
        Ok(_) if status.success() => {}
        Ok(_) => panic!("{label}: decompressing failed ({status}): {errors}"),
        Err(why) => {
            panic!("{label}: decompressing does not give the input: {why} ({status}; {errors})")
        }
    }
}

/// Reads until `buffer` is full or the end of `reader`; returns how much it read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The absolute path of `name` on PATH, if it is there.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[test]
fn xz_two_threads_from_stdin_to_stdout() {
    compress_across_restart("xz", &["-T2", "-1", "-c"], 96, User::Same);
}

#[test]
fn xz_two_threads_as_nobody() {
    compress_across_restart("xz", &["-T2", "-1", "-c"], 64, User::Nobody);
}

#[test]
fn zstd_two_threads_from_stdin_to_stdout() {
    compress_across_restart("zstd", &["-T2", "-9", "-c"], 192, User::Same);
}

#[test]
fn zstd_two_threads_as_nobody() {
    compress_across_restart("zstd", &["-T2", "-9", "-c"], 128, User::Nobody);
}
