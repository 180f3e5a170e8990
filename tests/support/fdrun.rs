//! Running a test program that opens descriptors, checkpointing it and restarting it
//! (tests/files.rs and the tests of each kind of descriptor). The program prints "ready"
//! once its descriptors are set up, then waits for a line on stdin ("go"), which the test
//! sends after the restart (or after a failed checkpoint).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::*;

/// A file everyone may read and write (tests run some programs as nobody).
pub fn shared_file(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).expect("write a test file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
}

/// How a program is run: as whoever runs the tests, or as nobody (when they run as root).
#[derive(Clone, Copy)]
pub struct FdRun<'a> {
    pub dir: &'a TempDir,
    pub program: &'a Path,
    /// A `ckpt` every user can run: the program and its restart run as nobody.
    pub ckpt: Option<&'a Path>,
}

impl<'a> FdRun<'a> {
    pub fn new(dir: &'a TempDir, program: &'a Path) -> FdRun<'a> {
        FdRun {
            dir,
            program,
            ckpt: None,
        }
    }

    pub fn image(&self) -> PathBuf {
        checkpoint_path(self.dir, self.program)
    }

    pub fn wrap(&self, command: Command) -> Command {
        match self.ckpt {
            Some(_) => as_nobody(command),
            None => command,
        }
    }

    /// Starts `files ARGS…` under ckpt with stdin a pipe, and waits for its "ready".
    pub fn start(&self, args: &[&str], env: &[(&str, &str)]) -> (Proc, std::fs::File) {
        let mut command = match self.ckpt {
            Some(ckpt) => ckpt_command_with(ckpt, self.dir, self.program, args),
            None => ckpt_command(self.dir, self.program, args),
        };
        for (k, v) in env {
            command.env(k, v);
        }
        let (mut proc, stdin) =
            Proc::spawn_with_stdin(self.wrap(command), &format!("files {}", args.join(" ")));
        proc.wait_line("ready");
        (proc, stdin)
    }

    /// Runs `files ARGS…` to its "ready" and checkpoints it; the lines it printed.
    pub fn checkpoint(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let _ = std::fs::remove_file(self.image());
        let (mut proc, _stdin) = self.start(args, env);
        proc.signal(libc::SIGTSTP);
        proc.wait_success(TIMEOUT);
        expect_checkpoint(&mut proc, &self.image());
        proc.seen().to_vec()
    }

    /// Restarts the checkpoint, says "go", and waits for its exit: (status, lines, stderr).
    pub fn restart(&self) -> (std::process::ExitStatus, Vec<String>, String) {
        self.restart_with(&[])
    }

    /// As `restart`, with `env` in the restart's environment.
    pub fn restart_with(
        &self,
        env: &[(&str, &str)],
    ) -> (std::process::ExitStatus, Vec<String>, String) {
        let mut command = restart_command(self.dir, &self.image());
        for (k, v) in env {
            command.env(k, v);
        }
        let (mut proc, mut stdin) = Proc::spawn_with_stdin(self.wrap(command), "files.ckpt");
        let _ = writeln!(stdin, "go");
        let status = proc.wait_exit(TIMEOUT);
        proc.rest_of_output();
        (status, proc.seen().to_vec(), proc.stderr())
    }

    /// Restarts, expecting exit 0: (lines, stderr).
    #[track_caller]
    pub fn restart_ok(&self) -> (Vec<String>, String) {
        let (status, lines, stderr) = self.restart();
        if !status.success() {
            panic!(
                "the restart exited with {}; it printed {lines:?}, stderr {stderr:?}",
                describe_status(status)
            );
        }
        (lines, stderr)
    }

    /// Restarts, expecting exit 0, exactly `expected` on stdout (`what` names the run) and
    /// nothing on stderr: every descriptor came back, with nothing to say.
    #[track_caller]
    pub fn restart_silently(&self, expected: &[&str], what: &str) {
        let (after, stderr) = self.restart_ok();
        expect_lines(&after, expected, what);
        assert!(stderr.is_empty(), "the restart said {stderr:?}");
    }
}

/// What follows `prefix` in the first of `lines` that starts with it (a value the program
/// printed: a port, a descriptor number); fails the test when none does.
#[track_caller]
pub fn value_after(lines: &[String], prefix: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?}… in {lines:?}"))
        .to_owned()
}

#[track_caller]
pub fn expect_lines(lines: &[String], expected: &[&str], what: &str) {
    if lines != expected {
        panic!("{what}: expected {expected:?}, got {lines:?}");
    }
}

/// What `ckpt info` prints about checkpoint `image` (run in `dir`), which must succeed.
#[track_caller]
pub fn ckpt_info(dir: &TempDir, image: &Path) -> String {
    let info = run_to_end(
        ckpt_tool(dir, &["info", image.to_str().expect("a UTF-8 path")]),
        "ckpt info",
        TIMEOUT,
    );
    if !info.status.success() {
        info.fail("ckpt info", "ckpt info failed");
    }
    info.stdout
}
