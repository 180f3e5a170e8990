//! Pipes and FIFOs across a checkpoint (tests/programs/fd_pipe.c does the work and says
//! what it found).

use std::path::PathBuf;

use ckpt_tests::*;

const FD_PIPE_C: &str = include_str!("programs/fd_pipe.c");

fn build(dir: &TempDir) -> PathBuf {
    compile_c(dir, "fd_pipe", FD_PIPE_C, &[])
}

/// 13 queued bytes come back, then more written after the restart come through; the image
/// verifies, and `ckpt info` shows the bytes, the other end and the size.
#[test]
fn queued_bytes_come_back_then_more() {
    let dir = TempDir::new("fd-pipe-queued");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["queued"], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let verify = run_to_end(
        ckpt_tool(&dir, &["verify", run.image().to_str().unwrap()]),
        "ckpt verify",
        TIMEOUT,
    );
    assert!(verify.status.success(), "ckpt verify: {}", verify.stderr);
    let info = ckpt_info(&dir, &run.image());
    for expected in [
        "made again as a read end, its write end is fd 4; 13 queued bytes; pipe size 65536",
        "made again as a write end, its read end is fd 3; 13 queued bytes; pipe size 65536",
    ] {
        assert!(info.contains(expected), "no {expected:?} in {info}");
    }
    run.restart_silently(
        &["got 13: hello, pipe!|", "then 5: more|", "done"],
        "after the restart",
    );
}

/// A pipe filled to its capacity keeps that capacity and every byte (`size` other than
/// 65536 is set with F_SETPIPE_SZ).
fn full_pipe_keeps_size_and_bytes(size: usize, nobody: bool) {
    let dir = TempDir::new(&format!(
        "fd-pipe-full-{size}{}",
        if nobody { "-nobody" } else { "" }
    ));
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let program = build(&dir);
    let run = FdRun {
        ckpt: ckpt.as_deref(),
        ..FdRun::new(&dir, &program)
    };
    let size_arg = size.to_string();
    let before = run.checkpoint(&["full", &size_arg], &[]);
    let filled = format!("filled {size}");
    expect_lines(&before, &[&filled, "ready"], "before the checkpoint");
    assert!(
        ckpt_info(&dir, &run.image()).contains(&format!("{size} queued bytes; pipe size {size}")),
        "ckpt info does not show the full pipe"
    );
    run.restart_silently(
        &[
            &format!("size {size}"),
            &format!("read {size}, 0 wrong"),
            &format!("holds {size} again"),
            "done",
        ],
        "after the restart",
    );
}

#[test]
fn full_64k_pipe_keeps_its_bytes() {
    full_pipe_keeps_size_and_bytes(65536, false);
}

#[test]
fn full_1m_pipe_keeps_its_size_and_bytes() {
    full_pipe_keeps_size_and_bytes(1 << 20, false);
}

/// As nobody: 1 MiB is the most an unprivileged process may ask for
/// (/proc/sys/fs/pipe-max-size), at the checkpoint's private copy and at the restart.
#[test]
fn full_1m_pipe_as_nobody() {
    full_pipe_keeps_size_and_bytes(1 << 20, true);
}

/// O_NONBLOCK set on the read end only stays on that end only.
#[test]
fn nonblock_on_one_end_only() {
    let dir = TempDir::new("fd-pipe-nonblock");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["nonblock"], &[]);
    run.restart_silently(
        &[
            "read end nonblock 1",
            "write end nonblock 0",
            "empty read: EAGAIN",
            "done",
        ],
        "after the restart",
    );
}

/// Signal-driven I/O to the process itself comes back (to the restarted process); one
/// with another signal cannot, and the restart says so in one line naming it.
#[test]
fn signal_driven_io_to_the_process_comes_back() {
    let dir = TempDir::new("fd-pipe-async");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["async"], &[]);
    let q = value_after(&before, "q is fd ");
    let (lines, stderr) = run.restart_ok();
    expect_lines(
        &lines,
        &["sigio yes", "owner self", "q async 0", "done"],
        "after the restart",
    );
    assert!(
        stderr.starts_with("ckpt restart: signal-driven I/O (O_ASYNC) was not set up again")
            && stderr.contains(&format!(": fd {q} ('pipe:["))
            && stderr.lines().count() == 1,
        "the restart said {stderr:?}"
    );
}

/// A dup'ed write end: both copies write into the one pipe, and still share their flags.
#[test]
fn dup_of_the_write_end_still_writes() {
    let dir = TempDir::new("fd-pipe-dup");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["dup"], &[]);
    assert!(ckpt_info(&dir, &run.image()).contains("dup of 4"));
    run.restart_silently(
        &["got 3: abc", "copy nonblock 1", "done"],
        "after the restart",
    );
}

/// Only the read end in the process: the queued bytes, then end of file (the writer was
/// another process's); `ckpt info` says so.
#[test]
fn read_end_only_gives_the_bytes_then_end_of_file() {
    let dir = TempDir::new("fd-pipe-readend");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["readend"], &[]);
    let info = ckpt_info(&dir, &run.image());
    let expected = "made again as a read end; the writer is not in the process: 13 queued \
                    bytes, then end of file";
    assert!(info.contains(expected), "no {expected:?} in {info}");
    run.restart_silently(
        &["got 13: hello, pipe!|", "then end of file", "done"],
        "after the restart",
    );
}

/// Only the write end in the process: a write fails with EPIPE (the reader was another
/// process's); `ckpt info` says so.
#[test]
fn write_end_only_gives_epipe() {
    let dir = TempDir::new("fd-pipe-writeend");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["writeend"], &[]);
    let info = ckpt_info(&dir, &run.image());
    let expected = "made again as a write end; the reader is not in the process: writes fail \
                    with EPIPE (SIGPIPE) and its 7 queued bytes are dropped";
    assert!(info.contains(expected), "no {expected:?} in {info}");
    run.restart_silently(&["write: EPIPE", "done"], "after the restart");
}

/// Two read ends of one pipe with their own open file descriptions (one opened from
/// /proc/self/fd) and their own flags: both read the one pipe after the restart.
#[test]
fn two_read_ends_keep_their_own_flags() {
    let dir = TempDir::new("fd-pipe-reopened");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["reopened"], &[]);
    run.restart_silently(
        &[
            "first x, second y",
            "first nonblock 0, second nonblock 1",
            "done",
        ],
        "after the restart",
    );
}

/// A FIFO opened for reading and for writing in one process, with bytes queued.
#[test]
fn fifo_reader_and_writer_with_queued_bytes() {
    let dir = TempDir::new("fd-pipe-fifo");
    let program = build(&dir);
    let fifo = dir.join("fifo");
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["fifo", fifo.to_str().unwrap()], &[]);
    let info = ckpt_info(&dir, &run.image());
    assert!(
        info.contains("reopened at its path as a read end, its write end is fd 4; 11 queued bytes"),
        "{info}"
    );
    run.restart_silently(
        &[
            "got 11: fifo bytes|",
            "then 5: more|",
            "reader nonblock 1, writer nonblock 0",
            "done",
        ],
        "after the restart",
    );
}

/// A FIFO removed (or replaced by a regular file) before the restart: the restart refuses,
/// naming it, before the program goes on.
fn fifo_gone_refuses_the_restart(replace_with_file: bool) {
    let dir = TempDir::new(if replace_with_file {
        "fd-pipe-fifo-file"
    } else {
        "fd-pipe-fifo-gone"
    });
    let program = build(&dir);
    let fifo = dir.join("fifo");
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["fifo", fifo.to_str().unwrap()], &[]);
    std::fs::remove_file(&fifo).expect("remove the FIFO");
    if replace_with_file {
        shared_file(&fifo, b"not a fifo\n");
    }
    let (status, lines, stderr) = run.restart();
    assert!(!status.success(), "the restart succeeded: {lines:?}");
    assert!(lines.is_empty(), "the program went on: {lines:?}");
    let why = if replace_with_file {
        "its path is no longer a FIFO"
    } else {
        "its FIFO is gone"
    };
    let expected = format!("fd 3 ('{}') cannot be made again: {why}", fifo.display());
    assert!(stderr.contains(&expected), "no {expected:?} in {stderr}");
}

#[test]
fn fifo_removed_refuses_the_restart() {
    fifo_gone_refuses_the_restart(false);
}

#[test]
fn fifo_replaced_by_a_file_refuses_the_restart() {
    fifo_gone_refuses_the_restart(true);
}
