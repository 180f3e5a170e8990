//! The `ckpt` options that reach the library: `-a SIGNAL` picks the checkpoint signal and
//! `-n NAME` the checkpoint file.

use ckpt_tests::*;

const COUNTER_C: &str = include_str!("programs/counter.c");

#[test]
fn other_signal_and_name() {
    let dir = TempDir::new("options");
    let counter = compile_c(&dir, "counter", COUNTER_C, &[]);
    let mut command = std::process::Command::new(ckpt_bin());
    command
        .args(["-a", "SIGUSR1", "-n", "named.ckpt"])
        .arg(&counter)
        .arg("10")
        .current_dir(dir.path())
        .env_remove("CKPT_NAME")
        .env_remove("CKPT_ASYNCSIG")
        .env_remove("CKPT_CONTINUE");
    let mut proc = Proc::spawn(command, "ckpt -a SIGUSR1 -n named.ckpt counter");
    proc.wait_lines(5, TIMEOUT);
    proc.signal(libc::SIGUSR1);
    proc.wait_success(TIMEOUT);
    let last: u64 = proc
        .rest_of_output()
        .last()
        .cloned()
        .unwrap_or_else(|| proc.seen().last().unwrap().clone())
        .parse()
        .unwrap();
    let named = dir.join("named.ckpt");
    expect_checkpoint(&mut proc, &named);
    assert!(
        !checkpoint_path(&dir, &counter).exists(),
        "counter.ckpt was written although -n named.ckpt was given"
    );
    let mut restarted = Proc::spawn(restart_command(&dir, &named), "named.ckpt");
    let first = restarted.next_number();
    if first != last + 1 {
        restarted.fail(&format!("expected {} after restart, got {first}", last + 1));
    }
}

/// Prints "started" and exits.
const STARTS_C: &str = r#"
#include <stdio.h>
int main(void) { printf("started\n"); return 0; }
"#;

#[test]
fn the_command_and_the_library_accept_the_same_checkpoint_signals() {
    let dir = TempDir::new("asyncsig-agree");
    let program = compile_c(&dir, "starts", STARTS_C, &[]);
    for (spelling, accepted) in [
        ("USR1", true),
        ("IOT", true),
        ("CLD", true),
        ("POLL", true),
        ("RTMIN+2", true),
        ("SIGRTMAX-2", true),
        ("0", true),
        ("9", false),
        ("KILL", false),
        ("19", false),
        ("63", false),
        ("RTMAX-1", false),
        ("32", false),
        ("65", false),
        ("+5", false),
        ("FOO", false),
    ] {
        let mut with_option = std::process::Command::new(ckpt_bin());
        with_option
            .args(["-a", spelling])
            .arg(&program)
            .current_dir(dir.path());
        clear_ckpt_settings(&mut with_option);
        let by_command = run_to_end(with_option, &format!("ckpt -a {spelling}"), TIMEOUT);
        let mut preloaded = direct_command(&dir, &program, &[]);
        preloaded
            .env("LD_PRELOAD", libckpt())
            .env("CKPT_ASYNCSIG", spelling);
        let by_library = run_to_end(preloaded, &format!("CKPT_ASYNCSIG={spelling}"), TIMEOUT);
        for (how, out, names) in [
            ("ckpt -a", &by_command, "-a"),
            ("CKPT_ASYNCSIG", &by_library, "CKPT_ASYNCSIG"),
        ] {
            if accepted {
                if out.status.code() != Some(0) || out.stdout.trim() != "started" {
                    out.fail(how, &format!("{spelling} should be accepted"));
                }
            } else if out.status.code() != Some(2)
                || !out.stdout.is_empty()
                || !out.stderr.contains(names)
            {
                out.fail(
                    how,
                    &format!(
                        "{spelling} should be refused, naming {names}, before the program runs"
                    ),
                );
            }
        }
    }
}
