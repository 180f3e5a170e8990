//! Standard output that is a regular file, shared with the shell that runs the program and
//! then its restart: the restart writes after what is there, never back over it; a restart
//! given the same file at offset 0 (`1<>`) goes on at the saved offset instead of over the
//! start.

use ckpt_tests::*;

/// Prints `before`, checkpoints itself (SIGTSTP, with CKPT_CONTINUE=1 the program goes on),
/// prints `after`, exits.
const PROGRAM: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("before\n");
    raise(SIGTSTP);
    printf("after\n");
    return 0;
}
"#;

/// Runs `script` with `sh -c` in `dir`, CKPT_CONTINUE=1 and `$CKPT` the ckpt command;
/// returns what it left in `out`.
fn run_script(dir: &TempDir, script: &str) -> String {
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", script])
        .current_dir(dir.path())
        .env("CKPT", ckpt_bin());
    clear_ckpt_settings(&mut command);
    command.env("CKPT_CONTINUE", "1").env("CKPT_QUIET", "1");
    let done = run_to_end(command, script, TIMEOUT);
    if !done.status.success() {
        done.fail(script, "the script failed");
    }
    std::fs::read_to_string(dir.join("out")).expect("read out")
}

#[test]
fn a_restart_writes_after_what_the_shell_wrote_into_the_same_file() {
    let dir = TempDir::new("stdio-shared");
    compile_c(&dir, "prog", PROGRAM, &[]);
    let out = run_script(
        &dir,
        "{ \"$CKPT\" ./prog; echo A; env -u CKPT_CONTINUE ./prog.ckpt; echo B; } > out",
    );
    assert_eq!(out, "before\nafter\nA\nafter\nB\n");
}

#[test]
fn a_restart_given_the_file_at_its_start_goes_on_at_the_saved_offset() {
    let dir = TempDir::new("stdio-behind");
    compile_c(&dir, "prog", PROGRAM, &[]);
    let out = run_script(&dir, "\"$CKPT\" ./prog > out && ./prog.ckpt 1<> out");
    // The restart's "after" lands where the original's did, not over "before".
    assert_eq!(out, "before\nafter\n");
    // Truncated by `>`, the file is used as given.
    let out = run_script(&dir, "\"$CKPT\" ./prog > out && ./prog.ckpt > out");
    assert_eq!(out, "after\n");
}
