//! The `ckpt` command's own behaviour: options, the environment it hands to PROG, how it finds
//! libckpt.so and what it refuses. These tests do not need a working libckpt: they point the
//! command at a stand-in file (the loader prints a warning for it and runs PROG anyway).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const CKPT: &str = env!("CARGO_BIN_EXE_ckpt");

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ckpt-cli-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).expect("create scratch dir");
        Scratch(path.canonicalize().unwrap())
    }

    fn file(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ckpt` with a clean slate of the variables it reads or sets.
fn ckpt(library: Option<&Path>) -> Command {
    let mut command = Command::new(CKPT);
    for var in [
        "CKPT_LIBRARY",
        "CKPT_NAME",
        "CKPT_CONTINUE",
        "CKPT_ASYNCSIG",
        "CKPT_MSPERIOD",
        "LD_PRELOAD",
    ] {
        command.env_remove(var);
    }
    if let Some(library) = library {
        command.env("CKPT_LIBRARY", library);
    }
    command
}

/// Runs the command. A binary copied by one test thread can be "busy" for a moment while
/// another thread forks (the child holds the writable descriptor until it execs): retry.
fn run(command: &mut Command) -> Output {
    for _ in 0..50 {
        match command.output() {
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r.expect("spawn ckpt"),
        }
    }
    command.output().expect("spawn ckpt")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The value of `var` in the output of `env`.
fn env_value(output: &Output, var: &str) -> Option<String> {
    let prefix = format!("{var}=");
    stdout(output)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[test]
fn version() {
    let output = run(ckpt(None).arg("--version"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        format!("ckpt {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_documents_every_option_and_variable() {
    let output = run(ckpt(None).arg("--help"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for needle in [
        "-n NAME",
        "-c",
        "-a SIGNAL",
        "-z MS",
        "--help",
        "--version",
        "CKPT_NAME",
        "CKPT_CONTINUE",
        "CKPT_ASYNCSIG",
        "CKPT_MSPERIOD",
        "CKPT_LIBRARY",
        "LD_PRELOAD",
    ] {
        assert!(
            text.contains(needle),
            "--help does not mention {needle}:\n{text}"
        );
    }
}

#[test]
fn bad_option_values_exit_2_with_one_line() {
    for (option, value) in [
        ("-a", "SIGFOO"),
        ("-a", "65"),
        ("-a", "KILL"),
        ("-z", "-1"),
        ("-z", "1s"),
    ] {
        let output = run(ckpt(None).args([option, value, "true"]));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{option} {value}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            message.starts_with(&format!("ckpt: bad value for {option}: ")),
            "{option} {value}: {message}"
        );
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn unknown_option_and_no_program_exit_2() {
    let output = run(ckpt(None).args(["-x", "true"]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = run(&mut ckpt(None));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no program"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_program_exits_127_naming_it() {
    let scratch = Scratch::new("missing");
    let library = scratch.file("libckpt.so", 0o644);
    for program in ["no-such-program-ckpt-test", "./no/such/program"] {
        let output = run(ckpt(Some(&library)).arg(program));
        assert_eq!(output.status.code(), Some(127), "{}", stderr(&output));
        assert!(stderr(&output).contains(program), "{}", stderr(&output));
    }
}

#[test]
fn options_become_environment_variables() {
    let scratch = Scratch::new("env");
    let library = scratch.file("libckpt.so", 0o644);
    let output = run(ckpt(Some(&library))
        .env("LD_PRELOAD", "/nonexistent/other.so")
        .args([
            "-n",
            "saved.ckpt",
            "-c",
            "-a",
            "sigusr1",
            "-z",
            "250",
            "env",
        ]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        env_value(&output, "LD_PRELOAD").as_deref(),
        Some(format!("{}:/nonexistent/other.so", library.display()).as_str())
    );
    assert_eq!(
        env_value(&output, "CKPT_NAME").as_deref(),
        Some("saved.ckpt")
    );
    assert_eq!(env_value(&output, "CKPT_CONTINUE").as_deref(), Some("1"));
    assert_eq!(
        env_value(&output, "CKPT_ASYNCSIG").as_deref(),
        Some("sigusr1")
    );
    assert_eq!(env_value(&output, "CKPT_MSPERIOD").as_deref(), Some("250"));
}

#[test]
fn no_options_set_only_ld_preload() {
    let scratch = Scratch::new("plain");
    let library = scratch.file("libckpt.so", 0o644);
    let output = run(ckpt(Some(&library)).args(["env"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        env_value(&output, "LD_PRELOAD"),
        Some(library.display().to_string())
    );
    for var in [
        "CKPT_NAME",
        "CKPT_CONTINUE",
        "CKPT_ASYNCSIG",
        "CKPT_MSPERIOD",
    ] {
        assert_eq!(env_value(&output, var), None, "{var} should not be set");
    }
}

#[test]
fn program_arguments_pass_through() {
    let scratch = Scratch::new("args");
    let library = scratch.file("libckpt.so", 0o644);
    let output = run(ckpt(Some(&library)).args(["--", "echo", "-c", "two words", "--help"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "-c two words --help\n");
}

#[test]
fn library_found_beside_or_near_the_executable() {
    for layout in ["bin/libckpt.so", "lib/libckpt.so", "lib/ckpt/libckpt.so"] {
        let scratch = Scratch::new("layout");
        let command = scratch.0.join("bin/ckpt");
        std::fs::create_dir_all(command.parent().unwrap()).unwrap();
        std::fs::copy(CKPT, &command).unwrap();
        let library = scratch.file(layout, 0o644);
        let output = run(Command::new(&command)
            .env_remove("CKPT_LIBRARY")
            .env_remove("LD_PRELOAD")
            .arg("env"));
        assert!(output.status.success(), "{layout}: {}", stderr(&output));
        assert_eq!(
            env_value(&output, "LD_PRELOAD"),
            Some(library.display().to_string()),
            "{layout}"
        );
    }
}

#[test]
fn library_missing_exits_127_naming_places() {
    let scratch = Scratch::new("nolib");
    let command = scratch.0.join("bin/ckpt");
    std::fs::create_dir_all(command.parent().unwrap()).unwrap();
    std::fs::copy(CKPT, &command).unwrap();
    // Nothing beside it, and the cache for the copy it carries blocked by a file.
    let blocked = scratch.0.join("cache");
    std::fs::write(&blocked, b"").unwrap();
    let output = run(Command::new(&command)
        .env_remove("CKPT_LIBRARY")
        .env("XDG_CACHE_HOME", &blocked)
        .arg("true"));
    assert_eq!(output.status.code(), Some(127), "{}", stderr(&output));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("CKPT_LIBRARY"), "{message}");
    assert!(message.contains("lib/ckpt/libckpt.so"), "{message}");
    assert!(message.contains("cache/ckpt"), "{message}");

    let output = run(ckpt(Some(&scratch.0.join("absent.so"))).arg("true"));
    assert_eq!(output.status.code(), Some(127), "{}", stderr(&output));
    assert!(stderr(&output).contains("absent.so"), "{}", stderr(&output));
}

#[test]
fn set_id_programs_are_refused() {
    let scratch = Scratch::new("setid");
    let library = scratch.file("libckpt.so", 0o644);
    for (name, mode) in [("suid-true", 0o4755), ("sgid-true", 0o2755)] {
        let program = scratch.0.join(name);
        std::fs::copy("/bin/true", &program).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(mode)).unwrap();
        let output = run(ckpt(Some(&library)).arg(&program));
        assert_eq!(
            output.status.code(),
            Some(126),
            "{name}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("set-user-ID"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn non_executable_program_exits_126() {
    let scratch = Scratch::new("noexec");
    let library = scratch.file("libckpt.so", 0o644);
    let program = scratch.file("data", 0o644);
    let output = run(ckpt(Some(&library)).arg(&program));
    assert_eq!(output.status.code(), Some(126), "{}", stderr(&output));
}
