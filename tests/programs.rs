//! The test programs themselves, run without ckpt: each must pass its own checks, so that a
//! failure in the other tests points at checkpointing and not at a broken test program.

use ckpt_tests::*;

fn plain_rounds(name: &str, source: &str, rounds: u64) {
    let dir = TempDir::new(name);
    let program = compile_c(&dir, name, source, &[]);
    let mut command = std::process::Command::new(&program);
    command.current_dir(dir.path());
    let mut proc = Proc::spawn(command, name);
    proc.wait_line_matching("the ready line", TIMEOUT, |line| line.starts_with("ready"));
    for expected in 1..=rounds {
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        if number_after(&line, "ok ") != Some(expected) {
            proc.fail(&format!("expected \"ok {expected}\", got {line:?}"));
        }
    }
    proc.kill();
}

#[test]
fn registers_program_checks_pass() {
    plain_rounds("registers", include_str!("programs/registers.c"), 5);
}

#[test]
fn signals_program_checks_pass() {
    plain_rounds("signals", include_str!("programs/signals.c"), 21);
}

#[test]
fn heap_program_checks_pass() {
    plain_rounds("heap", include_str!("programs/heap.c"), 5);
}

#[test]
fn mappings_program_checks_pass() {
    plain_rounds("mappings", include_str!("programs/mappings.c"), 5);
}

#[test]
fn sparse_program_checks_pass() {
    plain_rounds("sparse", include_str!("programs/sparse.c"), 3);
}

#[test]
fn clocks_program_checks_pass() {
    plain_rounds("clocks", include_str!("programs/clocks.c"), 5);
}

#[test]
fn counters_count_and_run_as_nobody() {
    let dir = TempDir::new("counters");
    dir.make_world_writable();
    let c = compile_c(&dir, "counter", include_str!("programs/counter.c"), &[]);
    let rust = compile_rust(&dir, "rcounter", include_str!("programs/counter.rs"));
    for program in [c, rust] {
        let mut command = std::process::Command::new(&program);
        command.arg("1").current_dir(dir.path());
        let mut proc = Proc::spawn(as_nobody(command), "counter as nobody");
        let lines = proc.wait_lines(5, TIMEOUT);
        assert_eq!(lines, ["1", "2", "3", "4", "5"]);
        proc.kill();
    }
    if running_as_root() {
        let mut id = std::process::Command::new("id");
        id.arg("-u");
        let output = as_nobody(id).output().expect("run id -u as nobody");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "65534");
    }
}
