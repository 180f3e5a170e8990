//! Checkpoints that cannot be written: the disk is full (RLIMIT_FSIZE, a small tmpfs), the
//! directory is not writable, the directory does not exist. Each time the program keeps
//! running (CKPT_CONTINUE unset, so a successful checkpoint would have ended it), says so in
//! one `ckpt: checkpoint to … failed` line on stderr, leaves an older checkpoint under that
//! name as it was, and leaves no temp file behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ckpt_tests::*;

/// Waits until stderr has a line saying the checkpoint failed; returns all such lines.
fn wait_for_failure_line(proc: &mut Proc) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines: Vec<String> = proc
            .stderr()
            .lines()
            .filter(|l| l.starts_with("ckpt: checkpoint to ") && l.contains(" failed"))
            .map(str::to_owned)
            .collect();
        if !lines.is_empty() {
            // A moment for a (wrong) second line to show up.
            std::thread::sleep(Duration::from_millis(50));
            return proc
                .stderr()
                .lines()
                .filter(|l| l.starts_with("ckpt: checkpoint to ") && l.contains(" failed"))
                .map(str::to_owned)
                .collect();
        }
        if Instant::now() >= deadline {
            proc.fail("no `ckpt: checkpoint to ... failed` line on stderr");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Temp files (`<name>.tmp.<pid>`) left in `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains(".tmp."))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Starts `command` (a counter under ckpt), sends SIGTSTP after a few lines, and checks the
/// failed checkpoint: one failure line, the counter goes on, `old` (if any) is unchanged at
/// `name`, and no temp file is left in `name`'s directory.
#[track_caller]
fn expect_failed_checkpoint(command: Command, label: &str, name: &Path, old: Option<&[u8]>) {
    let mut proc = Proc::spawn(command, label);
    proc.wait_lines(3, TIMEOUT);
    proc.signal(libc::SIGTSTP);
    let failures = wait_for_failure_line(&mut proc);
    if failures.len() != 1 {
        proc.fail(&format!("expected one failure line, got {failures:?}"));
    }
    // Still running and counting.
    let more = proc.wait_lines(5, TIMEOUT);
    if more.iter().any(|l| l.trim().parse::<u64>().is_err()) {
        proc.fail(&format!("expected numbers after the failure, got {more:?}"));
    }
    match old {
        Some(old) => {
            let now = std::fs::read(name).unwrap_or_else(|e| {
                proc.fail(&format!(
                    "the older checkpoint {} is gone: {e}",
                    name.display()
                ))
            });
            if now != old {
                proc.fail(&format!("the older checkpoint {} changed", name.display()));
            }
        }
        None => {
            if name.exists() {
                proc.fail(&format!(
                    "{} exists after a failed checkpoint",
                    name.display()
                ));
            }
        }
    }
    if let Some(dir) = name.parent() {
        let left = temp_files(dir);
        if !left.is_empty() {
            proc.fail(&format!("temp files left behind: {left:?}"));
        }
    }
    proc.kill();
}

#[test]
fn disk_full_by_rlimit_fsize() {
    let dir = TempDir::new("fail-fsize");
    // A valid older checkpoint under the name the limited run will use.
    let (checkpoint, counter, _) = counter_checkpoint(&dir, &["5"]);
    let old = std::fs::read(&checkpoint).unwrap();
    assert!(
        old.len() > 1 << 20,
        "the checkpoint is larger than the limit"
    );
    // 1024 blocks: 512 KiB (sh counts 512-byte blocks) or 1 MiB — either is too small.
    let command = in_shell(ckpt_command(&dir, &counter, &["5"]), "ulimit -f 1024");
    expect_failed_checkpoint(
        command,
        "counter with ulimit -f 1024",
        &checkpoint,
        Some(&old),
    );
    // The older checkpoint still restarts.
    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "restart old");
    restarted.next_number();
    restarted.kill();
}

#[test]
fn directory_that_does_not_exist() {
    let dir = TempDir::new("fail-nodir");
    let counter = compile_c(&dir, "counter", COUNTER_SOURCE, &[]);
    let name = dir.join("no/such/dir/counter.ckpt");
    let mut command = ckpt_command(&dir, &counter, &["5"]);
    command.env("CKPT_NAME", "no/such/dir/counter.ckpt");
    expect_failed_checkpoint(command, "counter into a missing dir", &name, None);
    assert!(!dir.join("no").exists());
}

#[test]
fn directory_without_write_permission() {
    let dir = TempDir::new("fail-readonly");
    let (checkpoint, counter, _) = counter_checkpoint(&dir, &["5"]);
    let readonly = dir.join("ro");
    std::fs::create_dir(&readonly).unwrap();
    let name = readonly.join("counter.ckpt");
    std::fs::copy(&checkpoint, &name).unwrap();
    let old = std::fs::read(&name).unwrap();
    let command = if running_as_root() {
        // Owned by root, mode 0755: nobody cannot write there. Everything nobody needs must
        // be reachable: the temp dir, the counter, a copy of ckpt and the library.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ckpt = world_runnable_ckpt(&dir);
        let mut command = ckpt_command_with(&ckpt, &dir, &counter, &["5"]);
        command.env("CKPT_NAME", &name);
        as_nobody(command)
    } else {
        std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o555)).unwrap();
        let mut command = ckpt_command(&dir, &counter, &["5"]);
        command.env("CKPT_NAME", &name);
        command
    };
    expect_failed_checkpoint(command, "counter into a read-only dir", &name, Some(&old));
    // Let the temp dir be removed.
    std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn disk_full_on_a_small_tmpfs() {
    if !running_as_root() {
        skip(Skip::CannotHere, "small tmpfs: mounting needs root");
        return;
    }
    let dir = TempDir::new("fail-tmpfs");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs"])
        .arg(&mnt)
        .output();
    match mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            skip(
                Skip::CannotHere,
                &format!(
                    "small tmpfs: mount failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            );
            return;
        }
        Err(e) => {
            // No mount program is a tool missing; anything else, the sandbox.
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                Skip::MissingTool
            } else {
                Skip::CannotHere
            };
            skip(why, &format!("small tmpfs: cannot run mount: {e}"));
            return;
        }
    }
    let _mount = Mount(mnt.clone());
    let counter = compile_c(&dir, "counter", COUNTER_SOURCE, &[]);
    // An older "checkpoint" that fits: its bytes must survive.
    let name = mnt.join("counter.ckpt");
    let old: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&name, &old).unwrap();
    let mut command = ckpt_command(&dir, &counter, &["5"]);
    command.env("CKPT_NAME", &name);
    expect_failed_checkpoint(command, "counter onto a 1 MiB tmpfs", &name, Some(&old));
}
