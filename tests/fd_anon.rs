//! eventfd, timerfd, signalfd and inotify across a checkpoint (tests/programs/fd_anon.c does
//! the work and says what it found).

use std::path::PathBuf;

use ckpt_tests::*;

const FD_ANON_C: &str = include_str!("programs/fd_anon.c");

fn build(dir: &TempDir) -> PathBuf {
    compile_c(dir, "fd_anon", FD_ANON_C, &[])
}

/// An eventfd keeps its count (and a dup of it shares it); `ckpt info` shows the count.
#[test]
fn eventfd_keeps_its_count() {
    let dir = TempDir::new("fd-eventfd");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["eventfd"], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let info = run_to_end(
        ckpt_tool(&dir, &["info", run.image().to_str().unwrap()]),
        "ckpt info",
        TIMEOUT,
    );
    assert!(
        info.stdout.contains("made again with count 12") && info.stdout.contains("dup of 3"),
        "{}",
        info.stdout
    );
    run.restart_silently(
        &["eventfd 12", "eventfd empty", "done"],
        "after the restart",
    );
}
