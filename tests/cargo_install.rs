//! `cargo install --path ckpt-cmd` installs the command alone, and that is enough: the
//! command carries libckpt.so and writes it to a private per-user cache directory when no
//! library is installed beside it. Checked with nothing but the installed command: no
//! CKPT_LIBRARY, no build tree on any path, as root and as an ordinary user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ckpt_tests::*;

const COUNTER: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    for (unsigned long i = 1;; i++) {
        printf("%lu\n", i);
        usleep(2000);
    }
}
"#;

/// Runs `cargo install --path ckpt-cmd --root ROOT` (offline and locked: the workspace build
/// before the tests fetched everything), in a target directory of its own beside the
/// workspace's so that a second run is quick and never waits for the outer build's lock.
/// Returns the installed command.
fn cargo_install(root: &Path) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = target_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .join("cargo-install");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["install", "--quiet", "--locked", "--offline", "--path"])
        .arg(workspace.join("ckpt-cmd"))
        .arg("--root")
        .arg(root)
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    let installed = run_to_end(command, "cargo install", Duration::from_secs(600));
    if !installed.status.success() {
        installed.fail("cargo install", "expected the command to be installed");
    }
    let installed = root.join("bin/ckpt");
    let entries: Vec<_> = std::fs::read_dir(root.join("bin"))
        .expect("read the installed bin directory")
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .collect();
    assert_eq!(
        entries,
        ["ckpt"],
        "cargo install put only the command in bin/"
    );
    installed
}

/// Runs the counter under `ckpt`, checkpoints it with SIGTSTP, restarts the checkpoint and
/// checks it counts on; `cache` is where the library copy must have been written.
fn checkpoint_and_restart(dir: &TempDir, ckpt: &Path, cache: &Path, nobody: bool) {
    let program = compile_c(dir, "counter", COUNTER, &[]);
    let mut command = ckpt_command_with(ckpt, dir, &program, &[]);
    command
        .env("PATH", "/usr/bin:/bin")
        .env(
            "XDG_CACHE_HOME",
            cache.parent().expect("cache has a parent"),
        )
        .env_remove("LD_LIBRARY_PATH");
    if nobody {
        command = as_nobody(command);
    }
    let mut proc = Proc::spawn(command, "installed ckpt counter");
    proc.wait_line("ready");
    let before = proc.next_number();
    proc.checkpoint_and_collect(TIMEOUT);

    let copies: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap_or_else(|e| panic!("no cache directory {}: {e}", cache.display()))
        .map(|entry| entry.expect("cache entry").path())
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "one library copy in {}: {copies:?}",
        cache.display()
    );
    let name = copies[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("libckpt-") && name.ends_with(".so"),
        "{name}"
    );
    let dir_meta = std::fs::metadata(cache).expect("stat the cache");
    assert_eq!(
        dir_meta.mode() & 0o777,
        0o700,
        "the cache directory is private"
    );
    let expected_uid = if nobody && running_as_root() {
        65534
    } else {
        dir_meta.uid()
    };
    assert_eq!(
        dir_meta.uid(),
        expected_uid,
        "the cache belongs to the user"
    );

    let checkpoint = checkpoint_path(dir, &program);
    let mut restart = restart_command(dir, &checkpoint);
    if nobody {
        restart = as_nobody(restart);
    }
    let mut resumed = Proc::spawn(restart, "restart of the counter");
    let after = resumed.next_number();
    if after <= before {
        resumed.fail(&format!(
            "resumed at {after}, but it had reached {before} before"
        ));
    }
    resumed.kill();
}

#[test]
fn cargo_install_alone_gives_a_working_ckpt() {
    let dir = TempDir::new("cargo-install");
    dir.make_world_writable();
    let root = dir.join("root");
    let ckpt = cargo_install(&root);
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let cache = dir.join("cache/ckpt");
    checkpoint_and_restart(&dir, &ckpt, &cache, false);

    // A copy that was changed is not preloaded: it is written again, byte for byte.
    let copy = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = std::fs::read(&copy).expect("read the copy");
    std::fs::write(&copy, b"not a library").expect("spoil the copy");
    let mut run = ckpt_command_with(&ckpt, &dir, Path::new("/bin/true"), &[]);
    run.env("XDG_CACHE_HOME", dir.join("cache"));
    let status = run
        .status()
        .expect("run /bin/true under the installed ckpt");
    assert!(
        status.success(),
        "ckpt /bin/true: {}",
        describe_status(status)
    );
    assert_eq!(
        std::fs::read(&copy).expect("read the copy"),
        good,
        "the copy is rewritten"
    );

    // An ordinary user gets a cache of their own.
    let other = TempDir::new("cargo-install-nobody");
    other.make_world_writable();
    std::fs::create_dir_all(other.join("cache")).expect("create the cache parent");
    std::fs::set_permissions(other.join("cache"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    checkpoint_and_restart(&other, &ckpt, &other.join("cache/ckpt"), true);
}
