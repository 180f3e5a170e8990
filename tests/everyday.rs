//! Everyday use: the checkpoint of `ckpt PROG` is named after PROG as the user gave it (a
//! script run through its `#!` line included), and children that inherit the library do not
//! take signal checkpoints of their own unless CKPT_CHILDREN=1 asks them to.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ckpt_tests::*;

/// Writes an executable script `name` in `dir` with `text` as its contents.
fn script(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A shell script that prints `ready`, then `TAG N` now and then, forever, with no child
/// process (a busy loop of builtins).
fn counting_shell_script(tag: &str) -> String {
    format!(
        "#!/bin/sh\necho ready\ni=0\nwhile :; do\n  i=$((i+1))\n  \
         if [ $((i % 2000)) -eq 0 ]; then echo {tag} $i; fi\ndone\n"
    )
}

/// The names of the `*.ckpt` files in `dir`, sorted.
fn checkpoints_in(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read the directory")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".ckpt"))
        .collect();
    names.sort();
    names
}

/// Runs `./NAME` under ckpt in `dir`, waits for `ready`, checkpoints it with SIGTSTP, and
/// checks it exited 0 having written `NAME.ckpt` and no other checkpoint (none named after
/// its interpreter): the checkpoints in `dir` are then `before` and `NAME.ckpt`.
fn checkpoint_script(dir: &TempDir, name: &str, before: &[&str]) -> PathBuf {
    let mut command = ckpt_command(dir, Path::new(&format!("./{name}")), &[]);
    command.env_remove("BASH_ENV").env_remove("ENV");
    let mut proc = Proc::spawn(command, &format!("ckpt ./{name}"));
    proc.wait_line("ready");
    proc.checkpoint_and_collect(TIMEOUT);
    let own = format!("{name}.ckpt");
    let mut expected: Vec<String> = before.iter().map(|s| s.to_string()).collect();
    expected.push(own.clone());
    expected.sort();
    let found = checkpoints_in(dir);
    if found != expected {
        proc.fail(&format!(
            "checkpoints written: {found:?}; expected {expected:?}"
        ));
    }
    dir.join(own)
}

/// Restarts `checkpoint` and checks that it goes on printing `TAG N` lines.
fn restart_prints(dir: &TempDir, checkpoint: &Path, tag: &str) {
    let mut proc = Proc::spawn(
        restart_command(dir, checkpoint),
        &format!("restart {}", checkpoint.display()),
    );
    let line = proc.wait_line_matching("a counter line", TIMEOUT, |_| true);
    if !line.starts_with(&format!("{tag} ")) {
        proc.fail(&format!("expected a line from {tag}, got {line:?}"));
    }
    proc.kill();
}

#[test]
fn a_script_checkpoint_is_named_after_the_script() {
    let dir = TempDir::new("script-name");
    script(&dir, "job.sh", &counting_shell_script("job"));
    let checkpoint = checkpoint_script(&dir, "job.sh", &[]);
    restart_prints(&dir, &checkpoint, "job");
}

#[test]
fn a_python_script_checkpoint_is_named_after_the_script() {
    let Some(python) = python3() else {
        return;
    };
    let dir = TempDir::new("python-name");
    let text = format!(
        "#!{}\nimport sys\nprint('ready', flush=True)\ni = 0\nwhile True:\n    i += 1\n    \
         if i % 100000 == 0:\n        print('job', i, flush=True)\n",
        python.display()
    );
    script(&dir, "job.py", &text);
    let checkpoint = checkpoint_script(&dir, "job.py", &[]);
    restart_prints(&dir, &checkpoint, "job");
}

#[test]
fn two_scripts_in_one_directory_keep_their_own_checkpoints() {
    let dir = TempDir::new("two-scripts");
    script(&dir, "first.sh", &counting_shell_script("first"));
    script(&dir, "second.sh", &counting_shell_script("second"));
    let first = checkpoint_script(&dir, "first.sh", &[]);
    let second = checkpoint_script(&dir, "second.sh", &["first.sh.ckpt"]);
    restart_prints(&dir, &first, "first");
    restart_prints(&dir, &second, "second");
}

#[test]
fn a_name_given_with_n_still_wins() {
    let dir = TempDir::new("script-n");
    script(&dir, "job.sh", &counting_shell_script("job"));
    let mut command = ckpt_command(&dir, Path::new("-n"), &["given.ckpt", "./job.sh"]);
    command.env_remove("BASH_ENV").env_remove("ENV");
    let mut proc = Proc::spawn(command, "ckpt -n given.ckpt ./job.sh");
    proc.wait_line("ready");
    proc.checkpoint_and_collect(TIMEOUT);
    if !dir.join("given.ckpt").is_file() || dir.join("job.sh.ckpt").exists() {
        proc.fail("expected given.ckpt and no job.sh.ckpt");
    }
}
