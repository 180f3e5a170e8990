//! Helpers for the end-to-end tests in `tests/`: find the built `ckpt` and `libckpt.so`,
//! compile small test programs into a per-test directory, and drive real processes —
//! spawn, read their output line by line, signal them, wait for them — always with a timeout,
//! and with failure messages that carry everything the process printed.
//!
//! Synchronisation is by marker lines the test programs print (`ready`, counters), never by
//! sleeping: a test waits for a line, then acts.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod fdrun;
pub use fdrun::*;

/// How long any single wait may take unless a test says otherwise. Generous, so that a slow
/// machine or a large restart does not fail a test; a hang still fails it.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The checkpoint configuration variables (the library's, the restart's and the command's,
/// and `LD_PRELOAD`); they are removed from every process a test starts, so the developer's
/// own environment cannot change what a test sees.
fn ckpt_variables() -> impl Iterator<Item = &'static str> {
    use ckpt_image::settings::{COMMAND_VARIABLES, LIBRARY_VARIABLES, RESTART_VARIABLES};
    LIBRARY_VARIABLES
        .iter()
        .chain(RESTART_VARIABLES)
        .chain(COMMAND_VARIABLES)
        .copied()
        .chain(["LD_PRELOAD"])
}

/// Removes the checkpoint configuration variables (and `LD_PRELOAD`) from `command`'s
/// environment, so that only what a test sets reaches the process.
pub fn clear_ckpt_settings(command: &mut Command) -> &mut Command {
    for var in ckpt_variables() {
        command.env_remove(var);
    }
    command
}

// ---------------------------------------------------------------------------------------------
// Artifacts

/// The cargo profile directory the test binary was built into (`target/<profile>`): tests run
/// as `target/<profile>/deps/<test>-<hash>`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    let profile = if deps.file_name() == Some(OsStr::new("deps")) {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    profile.to_path_buf()
}

fn artifact(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} is missing — build first: cargo build --release --workspace",
            path.display()
        );
    }
    path
}

/// The `ckpt` command under test.
pub fn ckpt_bin() -> PathBuf {
    artifact("ckpt")
}

/// The checkpoint library under test.
pub fn libckpt() -> PathBuf {
    artifact("libckpt.so")
}

/// Whether this test process runs as root (then `as_nobody` really changes user).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether a program is on PATH (for tests that need `file`, `setpriv`, …).
pub fn have_program(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
}

/// python3's real executable (the one on PATH may be a wrapper script, pyenv's shim say,
/// and ckpt should start Python itself), or `None` after saying that the test is skipped.
pub fn python3() -> Option<PathBuf> {
    if !have_program("python3") {
        skip(Skip::MissingTool, "python3 is not installed");
        return None;
    }
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if output.status.success() && path.is_absolute() && path.is_file() {
        Some(path)
    } else {
        skip(
            Skip::MissingTool,
            "python3 does not say where its executable is",
        );
        None
    }
}

/// Why a test skips something: which decides whether CI may skip it (see [`skip`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// A program CI has is missing or does not work: one `.ci/run` installs (`file`,
    /// `setpriv`, python3, perl, gawk, sqlite3, xz, zstd, the compilers), or one of the
    /// Debian system CI starts from (bash, mawk, mount). Installing it makes the test run.
    MissingTool,
    /// Something no package changes: the tests run as an ordinary user and the check needs
    /// root, or run as root and the check is about an ordinary user; the kernel lacks a
    /// feature (guard pages before Linux 6.13, KSM, `mseal`); the CPU lacks one (XSAVE); the
    /// system gives no transparent huge pages, or one CPU; the sandbox refuses `ptrace` or
    /// `mount`.
    CannotHere,
}

/// Skips a test, or one of its checks, saying why on stderr (straight to the terminal: the
/// test harness would only show a captured line for a failing test) with a count of the
/// skips in this test binary so far:
/// `SKIPPED (2 in this test binary) test_name: reason`.
///
/// Under `CI=true` a [`Skip::MissingTool`] fails the test instead: CI installs what the
/// tests need (`.ci/run`), so a green CI must have run them all, and a tool that went
/// missing from the machine or from `.ci/run` says so rather than passing silently. A
/// [`Skip::CannotHere`] is never a failure, in CI or out: CI runs as root, so a check that
/// needs root runs there and one that needs an ordinary user (root reads every file) skips
/// there every time; and a kernel, CPU or sandbox is not something `.ci/run` can install —
/// failing on one would fail every run on that machine for a reason no change to the
/// project can remove. Those are counted and printed, so that a run that skipped much shows
/// it.
pub fn skip(why: Skip, reason: &str) {
    static SKIPS: AtomicUsize = AtomicUsize::new(0);
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let test = std::thread::current()
        .name()
        .filter(|&name| name != "main")
        .map(|name| format!(" {name}"))
        .unwrap_or_default();
    if in_ci && why == Skip::MissingTool {
        panic!("{reason}: under CI=true a missing tool fails the test (.ci/run installs it)");
    }
    let count = SKIPS.fetch_add(1, Ordering::Relaxed) + 1;
    // One write, so that lines of tests running side by side do not interleave.
    let line = format!("SKIPPED ({count} in this test binary){test}: {reason}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// Marks every descriptor this test process inherited (beyond 0-2) close-on-exec, once,
/// before it starts anything: cargo's jobserver pipes and whatever the harness or CI left
/// open are not the tested programs' own, and a checkpoint would rightly refuse the pipes
/// among them. Everything the test process opens itself is close-on-exec already.
pub fn seal_inherited_descriptors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors of
        // this process; it touches no memory.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
    });
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// A uniquely named directory under the system temp dir, removed with its contents on drop.
/// Set `CKPT_TEST_KEEP=1` to keep it for a post-mortem.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        seal_inherited_descriptors();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ckpt-test-{label}-{}-{}-{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let path = path.canonicalize().expect("canonicalize temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Lets any user create and run files here (for `as_nobody`).
    pub fn make_world_writable(&self) {
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o777))
            .expect("chmod 0777 temp dir");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("CKPT_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// Building test programs

fn run_compiler(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} to build {what}: {e}"));
    if !output.status.success() {
        panic!(
            "building {what} failed ({}):\n{command:?}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The header the programs in `tests/programs/` include; written beside every C source.
const COMMON_HEADER: &str = include_str!("../programs/common.h");

/// Writes `source` as `<dir>/<name>.<ext>` beside `common.h` and compiles it into
/// `<dir>/<name>` with `$<compiler_var>` (default `default`) `-O1 -g -Wall`, plus `extra_flags`
/// after the source file.
fn compile_with_common_header(
    dir: &TempDir,
    name: &str,
    ext: &str,
    source: &str,
    (compiler_var, default): (&str, &str),
    extra_flags: &[&str],
) -> PathBuf {
    std::fs::write(dir.join("common.h"), COMMON_HEADER).expect("write common.h");
    let source_path = dir.join(format!("{name}.{ext}"));
    std::fs::write(&source_path, source).expect("write source");
    let output = dir.join(name);
    let compiler = std::env::var_os(compiler_var).unwrap_or_else(|| OsString::from(default));
    let mut command = Command::new(compiler);
    command
        .args(["-O1", "-g", "-Wall", "-o"])
        .arg(&output)
        .arg(&source_path)
        .args(extra_flags);
    run_compiler(command, name);
    output
}

/// Compiles C `source` into `<dir>/<name>` with `$CC` (default `cc`) `-O1 -g`, plus
/// `extra_flags` (after the source file, so `-l…` works). `#include "common.h"` finds
/// `tests/programs/common.h`. Returns the executable's path.
pub fn compile_c(dir: &TempDir, name: &str, source: &str, extra_flags: &[&str]) -> PathBuf {
    compile_with_common_header(dir, name, "c", source, ("CC", "cc"), extra_flags)
}

/// Compiles C++ `source` into `<dir>/<name>` with `$CXX` (default `c++`) `-O1 -g`; like
/// `compile_c`, `#include "common.h"` works.
pub fn compile_cxx(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    compile_with_common_header(dir, name, "cpp", source, ("CXX", "c++"), &[])
}

/// As `compile_c`, as a position-dependent executable (`-no-pie`).
pub fn compile_c_no_pie(dir: &TempDir, name: &str, source: &str, extra_flags: &[&str]) -> PathBuf {
    let mut flags = vec!["-no-pie", "-fno-pie"];
    flags.extend_from_slice(extra_flags);
    compile_c(dir, name, source, &flags)
}

/// Compiles a single-file Rust program with `$RUSTC` (default `rustc`) `-O`.
pub fn compile_rust(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let source_path = dir.join(format!("{name}.rs"));
    std::fs::write(&source_path, source).expect("write Rust source");
    let output = dir.join(name);
    let compiler = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let mut command = Command::new(compiler);
    command
        .args(["-O", "--edition", "2021", "-o"])
        .arg(&output)
        .arg(&source_path);
    run_compiler(command, name);
    output
}

// ---------------------------------------------------------------------------------------------
// Commands

/// `ckpt PROG ARGS…` with its working directory set to `dir` and no inherited ckpt settings.
pub fn ckpt_command(dir: &TempDir, program: &Path, args: &[&str]) -> Command {
    ckpt_command_with(&ckpt_bin(), dir, program, args)
}

/// Like `ckpt_command`, with a particular copy of the `ckpt` command.
pub fn ckpt_command_with(ckpt: &Path, dir: &TempDir, program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(ckpt);
    command.arg(program).args(args).current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    command
}

/// Runs a checkpoint file, with its working directory set to `dir` (a restarted program may
/// checkpoint again, and must then find the directory it expects).
pub fn restart_command(dir: &TempDir, checkpoint: &Path) -> Command {
    let mut command = Command::new(checkpoint);
    command.current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    command
}

/// The checkpoint file a program writes by default: `<basename>.ckpt` in its directory.
pub fn checkpoint_path(dir: &TempDir, program: &Path) -> PathBuf {
    let mut name = program
        .file_name()
        .expect("program has a name")
        .to_os_string();
    name.push(".ckpt");
    dir.join(name)
}

/// Copies `ckpt` and `libckpt.so` into `<dir>/bin`, readable and runnable by every user,
/// and returns the copy of `ckpt` (the build tree may sit in a directory other users cannot
/// enter; the command finds the library beside itself).
pub fn world_runnable_ckpt(dir: &TempDir) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("create bin dir");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod bin");
    for src in [ckpt_bin(), libckpt()] {
        let dst = bin.join(src.file_name().expect("artifact name"));
        std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    bin.join("ckpt")
}

/// Wraps `command` to run as user and group 65534 (nobody) with no supplementary groups, when
/// the tests run as root; otherwise returns it as it is (already an ordinary user). The
/// directories involved must be accessible to that user (see `TempDir::make_world_writable`).
/// Carries over program, arguments, working directory and environment changes (not
/// `env_clear`).
pub fn as_nobody(command: Command) -> Command {
    if !running_as_root() {
        return command;
    }
    wrap(
        &command,
        "setpriv",
        &["--reuid=65534", "--regid=65534", "--clear-groups", "--"],
    )
}

/// `program LEADING… PROG ARGS…` for `command` = `PROG ARGS…`, with the command's working
/// directory and environment changes carried over (not `env_clear`).
fn wrap(command: &Command, program: &str, leading: &[&str]) -> Command {
    let mut wrapped = Command::new(program);
    wrapped
        .args(leading)
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

// ---------------------------------------------------------------------------------------------
// Running processes

/// Spawns `command`, retrying while the executable is "busy": a file this test process just
/// wrote can be busy for a moment while another test thread forks (the child holds the
/// descriptor until it execs).
fn spawn_retrying(command: &mut Command, label: &str) -> Child {
    try_spawn(command).unwrap_or_else(|e| panic!("{label}: cannot start {command:?}: {e}"))
}

/// Spawns `command` as `spawn_retrying` does, returning any other error (an executable the
/// kernel refuses is an outcome for some tests).
pub fn try_spawn(command: &mut Command) -> std::io::Result<Child> {
    seal_inherited_descriptors();
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// A running process with piped stdout and stderr. Stdout is read line by line by a thread;
/// every line received is kept so that a failure can show the whole story.
pub struct Proc {
    label: String,
    child: Child,
    lines: Receiver<String>,
    /// Every stdout line received so far, in order.
    seen: Vec<String>,
    stdout_closed: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `command` with stdin from /dev/null and stdout/stderr piped to the test.
    pub fn spawn(command: Command, label: &str) -> Proc {
        Proc::spawn_reading(command, label, Stdio::null())
    }

    /// Starts `command` with stdin from `stdin` (a file, say) and stdout/stderr piped to
    /// the test.
    pub fn spawn_reading(mut command: Command, label: &str, stdin: Stdio) -> Proc {
        command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_retrying(&mut command, label);

        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });

        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });

        Proc {
            label: label.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            stdout_closed: false,
            stderr,
            stderr_reader: Some(stderr_reader),
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Every stdout line received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Panics with `message` and everything known about the process.
    #[track_caller]
    pub fn fail(&mut self, message: &str) -> ! {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        let mut report = format!("{}: {message}\n", self.label);
        if let Some(status) = self.status {
            let _ = writeln!(report, "  status: {}", describe_status(status));
        }
        let shown = self.seen.len().saturating_sub(40);
        let _ = writeln!(
            report,
            "  stdout ({} lines{}):",
            self.seen.len(),
            if shown > 0 { ", last 40 shown" } else { "" }
        );
        for line in &self.seen[shown..] {
            let _ = writeln!(report, "    {line}");
        }
        let _ = writeln!(report, "  stderr:");
        for line in self.stderr().lines() {
            let _ = writeln!(report, "    {line}");
        }
        panic!("{report}");
    }

    /// The next stdout line, or `None` once stdout is closed; fails on timeout.
    fn next_line(&mut self, deadline: Instant, waiting_for: &str) -> Option<String> {
        if self.stdout_closed {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.stdout_closed = true;
                None
            }
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("timed out waiting for {waiting_for}"))
            }
        }
    }

    /// Reads lines until one satisfies `predicate` and returns it; the lines before it are
    /// consumed. Fails if stdout closes first or `timeout` passes.
    #[track_caller]
    pub fn wait_line_matching(
        &mut self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_line(deadline, what) {
                Some(line) if predicate(&line) => return line,
                Some(_) => {}
                None => self.fail(&format!("output ended while waiting for {what}")),
            }
        }
    }

    /// Reads lines until one equals `expected`.
    #[track_caller]
    pub fn wait_line(&mut self, expected: &str) -> String {
        self.wait_line_matching(&format!("line {expected:?}"), TIMEOUT, |line| {
            line == expected
        })
    }

    /// Reads the process's lines (so that it never blocks on a full pipe) until `path`
    /// exists; fails after `TIMEOUT`.
    #[track_caller]
    pub fn wait_for_file(&mut self, path: &Path) {
        let deadline = Instant::now() + TIMEOUT;
        while !path.is_file() {
            if Instant::now() > deadline {
                self.fail(&format!("{} never appeared", path.display()));
            }
            self.wait_lines(1, TIMEOUT);
        }
    }

    /// The next `n` lines.
    #[track_caller]
    pub fn wait_lines(&mut self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::with_capacity(n);
        while lines.len() < n {
            let what = format!("line {} of {n}", lines.len() + 1);
            match self.next_line(deadline, &what) {
                Some(line) => lines.push(line),
                None => self.fail(&format!("output ended while waiting for {what}")),
            }
        }
        lines
    }

    /// The next line, which must be a number (the counters' output).
    #[track_caller]
    pub fn next_number(&mut self) -> u64 {
        let line = self.wait_lines(1, TIMEOUT).remove(0);
        match line.trim().parse() {
            Ok(n) => n,
            Err(_) => self.fail(&format!("expected a number, got {line:?}")),
        }
    }

    /// Sends signal `signal` to the process.
    #[track_caller]
    pub fn signal(&mut self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child, which
        // stays a zombie (so the pid cannot be reused) until we wait for it.
        let result = unsafe { libc::kill(self.pid(), signal) };
        if result != 0 {
            let error = std::io::Error::last_os_error();
            self.fail(&format!("kill({}, {signal}) failed: {error}", self.pid()));
        }
    }

    /// Waits for the process to exit; on timeout kills it and fails.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.wait_exit_watching(timeout, true)
    }

    /// Waits for the process to exit, whatever it printed on stderr; on timeout kills it and
    /// fails. (`wait_exit` gives up early on a stopped process or a reported checkpoint
    /// failure; use this where stderr is expected to hold other messages from the library.)
    #[track_caller]
    pub fn wait_exit_only(&mut self, timeout: Duration) -> ExitStatus {
        self.wait_exit_watching(timeout, false)
    }

    /// The exit wait; with `give_up_early`, a stopped process or a reported checkpoint
    /// failure ends it at once instead of at the timeout.
    #[track_caller]
    fn wait_exit_watching(&mut self, timeout: Duration, give_up_early: bool) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    self.settle_stderr();
                    return status;
                }
                Ok(None) if give_up_early && self.stopped() => self.fail(
                    "was stopped by a signal instead of exiting: no checkpoint handler \
                     (is libckpt.so preloaded and working?)",
                ),
                Ok(None) if give_up_early && self.reported_checkpoint_failure() => self.fail(
                    "the library reported a failed checkpoint (see stderr) and the program \
                     kept running",
                ),
                Ok(None) if Instant::now() < deadline => {
                    // Polling the exit status is not synchronisation with the program's
                    // output; it only bounds how long we look.
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => self.fail(&format!("did not exit within {timeout:?}")),
                Err(e) => self.fail(&format!("waitpid failed: {e}")),
            }
        }
    }

    /// Whether stderr has a line from the library saying a checkpoint failed (after which
    /// the program keeps running, so waiting for its exit is pointless).
    fn reported_checkpoint_failure(&self) -> bool {
        self.stderr().lines().any(|line| {
            line.starts_with("ckpt") && !line.starts_with("ckpt: wrote ") && line.contains("fail")
        })
    }

    /// Whether the process is in the stopped state (SIGTSTP's default action when nothing
    /// handles it).
    fn stopped(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return false;
        };
        // The state follows the parenthesised command name, which may itself hold ") ".
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state == 'T')
    }

    /// Waits for a successful exit (status 0), failing otherwise.
    #[track_caller]
    pub fn wait_success(&mut self, timeout: Duration) {
        let status = self.wait_exit(timeout);
        if !status.success() {
            self.fail(&format!(
                "expected exit status 0, got {}",
                describe_status(status)
            ));
        }
    }

    /// After exit: every remaining stdout line until the pipe closes.
    #[track_caller]
    pub fn rest_of_output(&mut self) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut rest = Vec::new();
        while let Some(line) = self.next_line(deadline, "the end of output") {
            rest.push(line);
        }
        rest
    }

    /// Once the process has exited, lets the stderr reader take in what is left in the pipe,
    /// so that `stderr()` holds all of it. A bounded wait: a child the process left behind
    /// may hold the pipe open.
    fn settle_stderr(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(reader) = &self.stderr_reader {
            if reader.is_finished() {
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
            } else if Instant::now() > deadline {
                return;
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Sends SIGTSTP (the default checkpoint signal), waits for exit status 0 and returns
    /// every stdout line that arrived after the ones already read.
    #[track_caller]
    pub fn checkpoint_and_collect(&mut self, timeout: Duration) -> Vec<String> {
        self.signal(libc::SIGTSTP);
        self.wait_success(timeout);
        self.rest_of_output()
    }

    /// The number after `prefix` in the last line seen that has one.
    #[track_caller]
    pub fn last_number_after(&mut self, prefix: &str) -> u64 {
        match self.seen.iter().rev().find_map(|l| number_after(l, prefix)) {
            Some(n) => n,
            None => self.fail(&format!("no line starting with {prefix:?} was seen")),
        }
    }

    /// Fails if any line seen so far starts with `BAD`: the test programs report a broken
    /// invariant that way.
    #[track_caller]
    pub fn assert_no_bad_lines(&mut self) {
        if let Some(bad) = self
            .seen
            .iter()
            .find(|line| line.starts_with("BAD"))
            .cloned()
        {
            self.fail(&format!("the program reported: {bad}"));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reader) = self.stderr_reader.take() {
            // The pipe may be held open by a grandchild; do not wait for it.
            drop(reader);
        }
    }
}

/// "exit status 3", "killed by signal 11 (core dumped)", …
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!(
            "killed by signal {signal}{}",
            if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => format!("{status:?}"),
    }
}

/// Parses a line of the form `<prefix> <number>` (e.g. `ok 17`) and returns the number.
pub fn number_after(line: &str, prefix: &str) -> Option<u64> {
    line.strip_prefix(prefix)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Checks that the checkpoint file exists after the program exited, failing with its stderr.
#[track_caller]
pub fn expect_checkpoint(proc: &mut Proc, path: &Path) {
    if !path.is_file() {
        proc.fail(&format!(
            "exited but left no checkpoint file at {}",
            path.display()
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Programs that print "ready" and then "ok N" per round (tests/programs/*.c)

/// Starts `command` (a program under ckpt), waits for its `ready` line and for `ok {rounds}`,
/// checkpoints it with SIGTSTP, waits for exit status 0, and returns the number of the last
/// `ok` line it printed before exiting. Fails on any `BAD` line.
#[track_caller]
pub fn rounds_then_checkpoint(command: Command, label: &str, rounds: u64) -> (Proc, u64) {
    let mut proc = Proc::spawn(command, label);
    proc.wait_line_matching("the ready line", TIMEOUT, |line| {
        line.starts_with("ready") || line.starts_with("BAD")
    });
    proc.assert_no_bad_lines();
    proc.wait_line_matching(&format!("ok {rounds}"), TIMEOUT, |line| {
        number_after(line, "ok ") == Some(rounds) || line.starts_with("BAD")
    });
    proc.assert_no_bad_lines();
    proc.checkpoint_and_collect(TIMEOUT);
    proc.assert_no_bad_lines();
    let last = proc.last_number_after("ok ");
    (proc, last)
}

/// What `ckpt info --json` says of `checkpoint`.
#[track_caller]
pub fn info_json(checkpoint: &Path) -> serde_json::Value {
    let mut command = Command::new(ckpt_bin());
    command.args(["info", "--json"]).arg(checkpoint);
    let info = run_to_end(command, "ckpt info --json", TIMEOUT);
    if info.status.code() != Some(0) {
        info.fail("ckpt info --json", "expected success");
    }
    serde_json::from_str(info.stdout.trim())
        .unwrap_or_else(|e| info.fail("ckpt info --json", &format!("not JSON: {e}")))
}

/// Runs `command` (usually a restart) and expects exactly `ok {last + 1}` … `ok {last + rounds}`
/// as its first lines (more fields may follow the number). Returns the process, still running.
#[track_caller]
pub fn expect_rounds(command: Command, label: &str, last: u64, rounds: u64) -> Proc {
    let mut proc = Proc::spawn(command, label);
    for expected in last + 1..=last + rounds {
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        if number_after(&line, "ok ") != Some(expected) {
            proc.fail(&format!("expected \"ok {expected}\", got {line:?}"));
        }
    }
    proc
}

// ---------------------------------------------------------------------------------------------
// The C API and the other ways of loading the library

/// The directory holding `ckpt.h`, for `-I`.
pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// Compiles a C program that uses the API (`#include <ckpt.h>`) and links it with
/// `-L <target dir> -lckpt`. Run it with `with_library_path` so that it finds `libckpt.so`.
pub fn compile_c_with_api(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    libckpt(); // a clear message when the library has not been built
    let include = format!("-I{}", include_dir().display());
    let lib_dir = format!("-L{}", target_dir().display());
    compile_c(dir, name, source, &[&include, &lib_dir, "-lckpt"])
}

/// Runs `program` itself (no `ckpt`, no `LD_PRELOAD`), with its working directory set to
/// `dir` and no inherited ckpt settings.
pub fn direct_command(dir: &TempDir, program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    command
}

/// As `direct_command`, with `LD_PRELOAD` set to the library under test (and nothing else).
pub fn preload_command(dir: &TempDir, program: &Path, args: &[&str]) -> Command {
    let mut command = direct_command(dir, program, args);
    command.env("LD_PRELOAD", libckpt());
    command
}

/// Puts the target directory first in `LD_LIBRARY_PATH`, for programs linked with `-lckpt`.
pub fn with_library_path(command: &mut Command) -> &mut Command {
    let mut value = target_dir().into_os_string();
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|old| !old.is_empty()) {
        value.push(":");
        value.push(old);
    }
    command.env("LD_LIBRARY_PATH", value)
}

/// What a process that ran to its end left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Panics with `message`, the status and everything the process printed.
    #[track_caller]
    pub fn fail(&self, label: &str, message: &str) -> ! {
        let mut report = format!("{label}: {message}\n");
        let _ = writeln!(report, "  status: {}", describe_status(self.status));
        let _ = writeln!(report, "  stdout:");
        for line in self.stdout.lines() {
            let _ = writeln!(report, "    {line}");
        }
        let _ = writeln!(report, "  stderr:");
        for line in self.stderr.lines() {
            let _ = writeln!(report, "    {line}");
        }
        panic!("{report}");
    }

    /// Fails unless the process exited with status 0 and printed exactly `expected`.
    #[track_caller]
    pub fn expect_success_with(&self, label: &str, expected: &[&str]) {
        if self.status.code() != Some(0) {
            self.fail(label, "expected exit status 0");
        }
        if self.lines() != expected {
            self.fail(
                label,
                &format!("expected exactly these lines: {expected:#?}"),
            );
        }
    }
}

/// Runs `command` (stdin from /dev/null) until it exits by itself and collects its whole
/// output; kills it and fails if it takes longer than `timeout`. For programs that end on
/// their own, when the test needs all of their output and stderr at once.
#[track_caller]
pub fn run_to_end(mut command: Command, label: &str, timeout: Duration) -> Finished {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_retrying(&mut command, label);
    let (sender, received) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for (index, mut pipe) in pipes.into_iter().enumerate() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = sender.send((index, bytes));
        });
    }
    drop(sender);

    let deadline = Instant::now() + timeout;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                break (child.wait().expect("wait after kill"), true);
            }
            Err(e) => panic!("{label}: waitpid failed: {e}"),
        }
    };
    let mut outputs = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        // The pipes close when the process is gone, unless it left children holding them.
        match received.recv_timeout(TIMEOUT) {
            Ok((index, bytes)) => outputs[index] = bytes,
            Err(_) => break,
        }
    }
    let [stdout, stderr] = outputs.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let finished = Finished {
        status,
        stdout,
        stderr,
    };
    if timed_out {
        finished.fail(label, &format!("did not exit within {timeout:?}"));
    }
    finished
}

// ---------------------------------------------------------------------------------------------
// Watching files and process states (where a program has no line to print)

/// Polls until `path` exists or `timeout` passes; returns whether it exists.
pub fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if path.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The number of threads of process `pid` (`Threads:` in /proc/PID/status).
pub fn thread_count(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The state letter of process `pid` in `/proc/PID/stat` (`R`, `S`, `T` for stopped, …).
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself hold ") ".
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Polls until process `pid` is in state `state` or `timeout` passes; returns whether it is.
pub fn wait_for_state(pid: i32, state: char, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if process_state(pid) == Some(state) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// `ckpt info`/`verify`/`checkpoint`, checkpoint files to damage, and shell wrappers

/// Wraps `command` to run as `sh -c '<prelude>; exec "$0" "$@"' PROGRAM ARGS…`, so that the
/// prelude (`umask 077`, `ulimit -f 1024`, …) applies to the program. Carries over working
/// directory and environment changes, like `as_nobody`.
pub fn in_shell(command: Command, prelude: &str) -> Command {
    let script = format!("{prelude}; exec \"$0\" \"$@\"");
    wrap(&command, "sh", &["-c", &script])
}

/// `ckpt ARGS…` (a subcommand such as `verify FILE`), working directory `dir`, no inherited
/// ckpt settings.
pub fn ckpt_tool<S: AsRef<OsStr>>(dir: &TempDir, args: &[S]) -> Command {
    let mut command = Command::new(ckpt_bin());
    command.args(args).current_dir(dir.path());
    clear_ckpt_settings(&mut command);
    command
}

/// The counter of `tests/programs/counter.c`.
pub const COUNTER_SOURCE: &str = include_str!("../programs/counter.c");

/// Compiles the counter into `dir`, runs it under `ckpt` with `args` (the first is the
/// interval in ms), reads 5 numbers, checkpoints it with SIGTSTP and returns the checkpoint
/// file, the counter executable and the last number the counter printed.
#[track_caller]
pub fn counter_checkpoint(dir: &TempDir, args: &[&str]) -> (PathBuf, PathBuf, u64) {
    let counter = compile_c(dir, "counter", COUNTER_SOURCE, &[]);
    let mut proc = Proc::spawn(ckpt_command(dir, &counter, args), "ckpt counter");
    proc.wait_lines(5, TIMEOUT);
    let rest = proc.checkpoint_and_collect(TIMEOUT);
    let last = rest
        .iter()
        .chain(proc.seen().iter())
        .filter_map(|line| line.trim().parse::<u64>().ok())
        .max()
        .expect("the counter printed numbers");
    let checkpoint = checkpoint_path(dir, &counter);
    expect_checkpoint(&mut proc, &checkpoint);
    (checkpoint, counter, last)
}

// ---------------------------------------------------------------------------------------------
// Feeding a process's standard input, and seeing it block in a system call

/// A new pseudo-terminal: its master side and its slave, neither anyone's controlling
/// terminal. Both are close-on-exec from the moment they are opened (`openpty` would leave
/// a window): a slave leaked into a child another test thread starts meanwhile would keep
/// the terminal open after the process the test gave it to has ended.
pub fn pseudo_terminal(label: &str) -> (std::fs::File, std::fs::File) {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;

    let open = |path: &Path| {
        // std opens every file close-on-exec.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap_or_else(|e| panic!("{label}: cannot open {}: {e}", path.display()))
    };
    let master = open(Path::new("/dev/ptmx"));
    // SAFETY: unlockpt only changes the state of the terminal behind the descriptor.
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        panic!("{label}: unlockpt: {}", std::io::Error::last_os_error());
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes at most name.len() bytes, its NUL included, into name.
    let error = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if error != 0 {
        panic!(
            "{label}: ptsname_r: {}",
            std::io::Error::from_raw_os_error(error)
        );
    }
    // SAFETY: ptsname_r succeeded, so name holds a NUL-terminated string.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let slave = open(Path::new(OsStr::from_bytes(name.to_bytes())));
    (master, slave)
}

/// Sizes the pseudo-terminal behind `terminal` (either side) as a window `columns` wide and
/// `rows` high, as a terminal emulator does when its window is resized; a new one says 0 by 0.
pub fn size_terminal(terminal: &std::fs::File, columns: u16, rows: u16) {
    use std::os::fd::AsRawFd;

    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize, which `size` is, and keeps no pointer to it.
    if unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        panic!("TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }
}

impl Proc {
    /// As `spawn`, but with stdin from a pipe whose write end is returned: the test feeds the
    /// process through it and closes its input by dropping it.
    pub fn spawn_with_stdin(mut command: Command, label: &str) -> (Proc, std::fs::File) {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;

        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array of two it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            panic!("{label}: pipe2: {}", std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 just created both descriptors; nothing else owns them.
        let (read_end, write_end) = unsafe {
            (
                OwnedFd::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        };
        let raw = read_end.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec and calls only dup2 and
        // fcntl, which are async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                // Proc::spawn set stdin to /dev/null; replace it with the pipe (dup2 leaves
                // the copy without close-on-exec, but does nothing when raw is already 0).
                let result = if raw == 0 {
                    libc::fcntl(0, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 0)
                };
                if result < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let proc = Proc::spawn(command, label);
        drop(read_end);
        (proc, write_end)
    }

    /// Like `spawn`, with stdin a new pseudo-terminal (not the controlling terminal);
    /// returns the process and the terminal's master side, to type into.
    pub fn spawn_with_terminal(mut command: Command, label: &str) -> (Proc, std::fs::File) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;

        let (master, slave) = pseudo_terminal(label);
        let raw = slave.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec and calls only dup2,
        // which is async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(raw, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let proc = Proc::spawn(command, label);
        drop(slave);
        (proc, master)
    }

    /// Waits until the process's stderr contains `text`; fails after `timeout`.
    #[track_caller]
    pub fn wait_stderr(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(text) {
            if Instant::now() >= deadline {
                self.fail(&format!("stderr never said {text:?} within {timeout:?}"));
            }
            // The stderr reader is a thread of its own; this only bounds how long we look.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The system call the process is blocked in (`/proc/PID/syscall`), or `None` while it
    /// runs or when that file cannot be read.
    pub fn blocked_syscall(&self) -> Option<i64> {
        let text = std::fs::read_to_string(format!("/proc/{}/syscall", self.pid())).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// Polls until the process is blocked in one of `syscalls` (x86-64 numbers: 0 for read,
    /// 35 nanosleep, 230 clock_nanosleep, …), so that a signal interrupts exactly that call.
    /// Fails after `timeout`.
    #[track_caller]
    pub fn wait_blocked_in(&mut self, syscalls: &[i64], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .blocked_syscall()
                .is_some_and(|nr| syscalls.contains(&nr))
            {
                return;
            }
            if Instant::now() >= deadline {
                let now = std::fs::read_to_string(format!("/proc/{}/syscall", self.pid()))
                    .unwrap_or_else(|e| format!("unreadable: {e}"));
                self.fail(&format!(
                    "not blocked in system call {syscalls:?} within {timeout:?} \
                     (/proc/PID/syscall: {})",
                    now.trim()
                ));
            }
            // Polling the process state only bounds how long we look.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
