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
