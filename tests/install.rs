//! Installing (issue 15): `make install PREFIX=DIR` puts the command, the library, the
//! header, the pkg-config file and the generated man pages under DIR, and what it installed
//! works on its own — with `PATH=DIR/bin:/usr/bin:/bin`, no `CKPT_LIBRARY`, no
//! `LD_LIBRARY_PATH` and nothing from `target/`: the installed `ckpt` checkpoints a program
//! on a real signal and the checkpoint restarts; an API client built with `pkg-config`
//! checkpoints and restarts through the API; `man` renders every page without a warning and
//! finds them by name. `make uninstall` leaves no file behind, and `DESTDIR` stages the
//! same layout. The make runs only copy what `cargo build --release --workspace` built
//! (the tests run under `cargo test`, which holds cargo's lock).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use ckpt_tests::*;

/// `make` runs one at a time: each may write the generated man pages in target/release/man.
static MAKE: Mutex<()> = Mutex::new(());

/// Generous: make only copies files (and at most runs the built ckpt-man).
const MAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The source tree, where the Makefile is.
fn source_tree() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the tools these tests drive are here; says which one is missing otherwise.
fn have_tools() -> bool {
    for (tool, package) in [
        ("make", "make"),
        ("pkg-config", "pkg-config"),
        ("man", "man-db"),
        ("groff", "groff-base"),
    ] {
        if !have_program(tool) {
            skip(
                Skip::MissingTool,
                &format!("{tool} is not installed (Debian package {package})"),
            );
            return false;
        }
    }
    true
}

/// Runs `make ARGS…` in the source tree, with none of the Makefile's variables or make's
/// own coming from this test's environment; fails unless it succeeds.
#[track_caller]
fn make(args: &[&str]) -> Finished {
    let _serial = MAKE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut command = Command::new("make");
    command.arg("-C").arg(source_tree()).args(args);
    for variable in [
        "PREFIX",
        "DESTDIR",
        "BINDIR",
        "LIBDIR",
        "INCLUDEDIR",
        "MANDIR",
        "PKGCONFIGDIR",
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
    ] {
        command.env_remove(variable);
    }
    let label = format!("make {}", args.join(" "));
    let finished = run_to_end(command, &label, MAKE_TIMEOUT);
    if !finished.status.success() {
        finished.fail(&label, "make failed");
    }
    finished
}

/// A prefix with ckpt installed in it (`make install PREFIX=…`), in a directory of its own.
struct Installed {
    dir: TempDir,
}

impl Installed {
    fn new(label: &str) -> Installed {
        let dir = TempDir::new(label);
        std::fs::create_dir(dir.join("prefix")).expect("create the prefix");
        let installed = Installed { dir };
        make(&[
            "install",
            &format!("PREFIX={}", installed.prefix().display()),
        ]);
        installed
    }

    fn prefix(&self) -> PathBuf {
        self.dir.join("prefix")
    }

    /// A directory to run programs in, outside the prefix.
    fn work(&self) -> PathBuf {
        let work = self.dir.join("work");
        std::fs::create_dir_all(&work).expect("create the work directory");
        work
    }

    /// `program` with an environment that has only what was installed: PATH with the
    /// prefix's bin first and the system's directories, and nothing else (no CKPT_*, no
    /// LD_LIBRARY_PATH, no LD_PRELOAD).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env(
                "PATH",
                format!("{}/bin:/usr/bin:/bin", self.prefix().display()),
            )
            .current_dir(dir);
        command
    }
}

/// Every file under `root` (not directories), relative to it, sorted.
fn files_under(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                walk(&path, root, found);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                found.push(relative.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(root, root, &mut found);
    found.sort();
    found
}

/// What an install puts in the prefix: one man3 page per function include/ckpt.h declares.
fn expected_files() -> Vec<String> {
    let header = std::fs::read_to_string(source_tree().join("include/ckpt.h")).expect("ckpt.h");
    let mut files: Vec<String> = [
        "bin/ckpt",
        "include/ckpt.h",
        "lib/libckpt.so",
        "lib/pkgconfig/ckpt.pc",
        "share/man/man1/ckpt.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for line in header.lines().filter(|line| line.ends_with(");")) {
        let Some(start) = line.find("ckpt_") else {
            continue;
        };
        let name: String = line[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        files.push(format!("share/man/man3/{name}.3"));
    }
    files.sort();
    files
}

/// Prints `ready`, then `ok N` every 20 ms, forever.
const COUNTER_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    for (unsigned long n = 1;; n++) {
        printf("ok %lu\n", n);
        usleep(20000);
    }
}
"#;

#[test]
fn the_installed_command_checkpoints_and_restarts_a_program() {
    if !have_tools() {
        return;
    }
    let installed = Installed::new("install-run");
    let programs = TempDir::new("install-run-programs");
    let counter = compile_c(&programs, "counter", COUNTER_C, &[]);
    let work = installed.work();
    std::fs::copy(&counter, work.join("counter")).expect("copy the counter");

    // `ckpt` by name: found in PATH, the prefix's bin; it finds the library in ../lib.
    let mut command = installed.command("ckpt", &work);
    command.arg("./counter");
    let (_, last) = rounds_then_checkpoint(command, "installed ckpt ./counter", 3);
    let checkpoint = work.join("counter.ckpt");
    assert!(checkpoint.is_file(), "no {}", checkpoint.display());

    let restart = installed.command(&checkpoint, &work);
    let mut proc = expect_rounds(restart, "./counter.ckpt", last, 3);
    proc.kill();
}

#[test]
fn a_client_built_with_pkg_config_checkpoints_through_the_api() {
    if !have_tools() {
        return;
    }
    let installed = Installed::new("install-api");
    let work = installed.work();
    // The example, away from the source tree's include/: only pkg-config's flags find ckpt.h.
    std::fs::copy(source_tree().join("examples/api.c"), work.join("api.c")).expect("copy api.c");

    let pkgconfig = installed.prefix().join("lib/pkgconfig");
    let mut command = installed.command("pkg-config", &work);
    command
        .args(["--cflags", "--libs", "ckpt"])
        .env("PKG_CONFIG_PATH", &pkgconfig);
    let flags = run_to_end(command, "pkg-config --cflags --libs ckpt", TIMEOUT);
    if !flags.status.success() {
        flags.fail("pkg-config", "expected success");
    }
    let lib = installed.prefix().join("lib");
    for expected in [
        format!("-I{}/include", installed.prefix().display()),
        format!("-L{}", lib.display()),
        format!("-Wl,-rpath,{}", lib.display()),
        "-lckpt".to_string(),
    ] {
        if !flags.stdout.split_whitespace().any(|flag| flag == expected) {
            flags.fail("pkg-config", &format!("expected the flag {expected}"));
        }
    }

    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut command = installed.command(&compiler, &work);
    command
        .args(["-o", "api", "api.c"])
        .args(flags.stdout.split_whitespace());
    let built = run_to_end(
        command,
        "cc api.c $(pkg-config ...)",
        Duration::from_secs(60),
    );
    if !built.status.success() {
        built.fail("cc", "building the API example failed");
    }

    // No LD_LIBRARY_PATH: the rpath pkg-config gave finds the installed library.
    let first = run_to_end(installed.command("./api", &work), "./api", TIMEOUT);
    first.expect_success_with(
        "./api",
        &[
            "checkpoint name api.ckpt, signal 20",
            "counter 1",
            "counter 2",
            "counter 3",
            "pre 1",
            "pre 2",
            "post 1",
            "post 2",
            "taken",
            "counter 4",
            "counter 5",
            "counter 6",
        ],
    );
    let restarted = run_to_end(
        installed.command("./api.ckpt", &work),
        "./api.ckpt",
        TIMEOUT,
    );
    restarted.expect_success_with(
        "./api.ckpt",
        &[
            "restart 2",
            "restart 1",
            "restarted",
            "counter 4",
            "counter 5",
            "counter 6",
        ],
    );
}

#[test]
fn every_installed_man_page_renders_and_man_finds_them() {
    if !have_tools() {
        return;
    }
    let installed = Installed::new("install-man");
    let work = installed.work();
    let man = installed.prefix().join("share/man");
    let pages: Vec<PathBuf> = files_under(&man).iter().map(|p| man.join(p)).collect();
    assert!(pages.len() >= 2, "pages installed: {pages:?}");

    for page in &pages {
        let label = format!("groff -ww -z {}", page.display());
        let mut command = installed.command("groff", &work);
        command.args(["-man", "-Tutf8", "-ww", "-z"]).arg(page);
        let checked = run_to_end(command, &label, TIMEOUT);
        if !checked.status.success() || !checked.stderr.is_empty() {
            checked.fail(&label, "expected no warnings");
        }

        let label = format!("man -l {}", page.display());
        let mut command = installed.command("man", &work);
        command.arg("-l").arg(page).env("MANWIDTH", "80");
        let rendered = run_to_end(command, &label, TIMEOUT);
        if !rendered.status.success() || !rendered.stdout.contains("NAME") {
            rendered.fail(&label, "expected a rendered page with a NAME section");
        }
    }

    // By name, with MANPATH: the command's page and a function's.
    for (name, file) in [("ckpt", "man1/ckpt.1"), ("ckpt_ckpt", "man3/ckpt_ckpt.3")] {
        let mut command = installed.command("man", &work);
        command.arg("-w").arg(name).env("MANPATH", &man);
        let found = run_to_end(command, &format!("man -w {name}"), TIMEOUT);
        if !found.status.success() || found.stdout.trim() != man.join(file).display().to_string() {
            found.fail(&format!("man -w {name}"), &format!("expected {file}"));
        }
    }
    let mut command = installed.command("man", &work);
    command
        .arg("ckpt_ckpt")
        .env("MANPATH", &man)
        .env("MANWIDTH", "80");
    let page = run_to_end(command, "man ckpt_ckpt", TIMEOUT);
    if !page.status.success()
        || !page.stdout.contains("int ckpt_ckpt(char *name);")
        || !page.stdout.contains("CKPT_CKPT_RESTARTED")
    {
        page.fail("man ckpt_ckpt", "expected the page of ckpt_ckpt");
    }
}

#[test]
fn uninstall_removes_every_installed_file() {
    if !have_tools() {
        return;
    }
    let installed = Installed::new("install-uninstall");
    let prefix = installed.prefix();
    assert_eq!(files_under(&prefix), expected_files(), "installed files");
    for file in expected_files() {
        let mode = std::fs::metadata(prefix.join(&file))
            .expect("installed file")
            .permissions()
            .mode();
        let expected = if file == "bin/ckpt" { 0o755 } else { 0o644 };
        assert_eq!(mode & 0o7777, expected, "mode of {file}: {mode:o}");
    }
    make(&["uninstall", &format!("PREFIX={}", prefix.display())]);
    assert_eq!(
        files_under(&prefix),
        Vec::<String>::new(),
        "left after uninstall"
    );
}

#[test]
fn destdir_stages_the_layout_under_it() {
    if !have_tools() {
        return;
    }
    let dir = TempDir::new("install-destdir");
    let destdir = format!("DESTDIR={}", dir.join("stage").display());
    make(&["install", &destdir, "PREFIX=/opt/ckpt"]);
    let expected: Vec<String> = expected_files()
        .iter()
        .map(|file| format!("opt/ckpt/{file}"))
        .collect();
    assert_eq!(files_under(&dir.join("stage")), expected, "staged files");
    // The pkg-config file names where the files will be, not the staging directory.
    let pc = std::fs::read_to_string(dir.join("stage/opt/ckpt/lib/pkgconfig/ckpt.pc"))
        .expect("read ckpt.pc");
    assert!(pc.contains("prefix=/opt/ckpt\n"), "{pc}");
    assert!(pc.contains("libdir=/opt/ckpt/lib\n"), "{pc}");
    assert!(!pc.contains("stage"), "{pc}");
    make(&["uninstall", &destdir, "PREFIX=/opt/ckpt"]);
    assert_eq!(files_under(&dir.join("stage")), Vec::<String>::new());
}

#[test]
fn install_without_a_build_says_to_run_make_first() {
    if !have_tools() {
        return;
    }
    let dir = TempDir::new("install-unbuilt");
    let _serial = MAKE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut command = Command::new("make");
    command
        .arg("-C")
        .arg(source_tree())
        .arg("install")
        .arg(format!("PREFIX={}", dir.join("prefix").display()))
        .arg(format!("BUILD={}", dir.join("no-build").display()))
        .env_remove("MAKEFLAGS")
        .env_remove("DESTDIR");
    let refused = run_to_end(command, "make install BUILD=<empty>", MAKE_TIMEOUT);
    if refused.status.success() || !refused.stderr.contains("run make") {
        refused.fail(
            "make install",
            "expected a refusal saying to run make first",
        );
    }
    assert!(
        !dir.join("prefix").exists(),
        "nothing is installed from a missing build"
    );
}
