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
    let info = ckpt_info(&dir, &run.image());
    assert!(
        info.contains("made again with count 12") && info.contains("dup of 3"),
        "{}",
        info
    );
    run.restart_silently(
        &["eventfd 12", "eventfd empty", "done"],
        "after the restart",
    );
}

/// Timerfds keep their state: a disarmed one stays disarmed, unread expirations are read
/// after the restart, absolute timers stay ahead by their time (on the wall clock and the
/// boot clock), an interval timer that fired unread is armed again, and a 3 s timer with a
/// 1.5 s interval fires after the restart, then again within its interval.
#[test]
fn timerfd_keeps_its_time_interval_and_ticks() {
    let dir = TempDir::new("fd-timerfd");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["timerfd"], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let info = ckpt_info(&dir, &run.image());
    for said in [
        "made again disarmed (CLOCK_MONOTONIC)",
        "then every 1.500 s",
        "1 expiration(s) not read yet",
        "made again on CLOCK_REALTIME, to fire at the time it was set for",
        "(set absolute; made relative, as this clock starts anew)",
    ] {
        assert!(info.contains(said), "{said:?} in {}", info);
    }
    run.restart_silently(
        &[
            "t2 disarmed, nothing to read",
            "t3 ticks 1",
            "t4 ahead",
            "t5 ahead",
            "t6 ticks 1",
            "t6 rearmed",
            "t1 interval 1500 ms, pending",
            "t1 not yet",
            "t1 fired",
            "t1 next within its interval",
            "t1 fired again",
            "done",
        ],
        "after the restart",
    );
}

/// A signalfd reads the signal that was pending at the checkpoint and one sent after the
/// restart; `ckpt info` names its signals.
#[test]
fn signalfd_reads_pending_and_new_signals() {
    let dir = TempDir::new("fd-signalfd");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["signalfd"], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let info = ckpt_info(&dir, &run.image());
    assert!(
        info.contains("made again for signals SIGUSR1, SIGUSR2"),
        "{}",
        info
    );
    run.restart_silently(
        &[
            "signalfd got SIGUSR1",
            "signalfd got SIGUSR2",
            "signalfd empty",
            "done",
        ],
        "after the restart",
    );
}

fn epoll_sets_report_readiness(nobody: bool) {
    let dir = TempDir::new(if nobody {
        "fd-epoll-nobody"
    } else {
        "fd-epoll"
    });
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let program = build(&dir);
    let run = FdRun {
        ckpt: ckpt.as_deref(),
        ..FdRun::new(&dir, &program)
    };
    let before = run.checkpoint(&["epoll"], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let info = ckpt_info(&dir, &run.image());
    for said in [
        "made again after the other descriptors, with 5 watches",
        "made again after the other descriptors, with 1 watch",
    ] {
        assert!(info.contains(said), "{said:?} in {}", info);
    }
    run.restart_silently(
        &[
            "outer ready 9999",
            "set ready 2222",
            "set ready none",
            "set ready 1111",
            "set ready 3333",
            "set ready 4444",
            "set ready 5555",
            "set ready none",
            "done",
        ],
        "after the restart",
    );
}

/// An epoll set reports readiness on restored eventfds and a timerfd with its watches'
/// data and modes (level, edge, one-shot); a watch whose number was closed and reused
/// while a dup kept its file watches that file, not the new one (which has a watch of its
/// own); a set watched by another set with a lower number is made first.
#[test]
fn epoll_reports_readiness_of_restored_descriptors() {
    epoll_sets_report_readiness(false);
}

/// The same, run by an ordinary user (kcmp on itself needs no privilege).
#[test]
fn epoll_reports_readiness_as_an_ordinary_user() {
    epoll_sets_report_readiness(true);
}

/// An epoll set still reports readiness on the restored pipes: the one whose queued bytes
/// came back at once, the empty one once it is written to.
#[test]
fn epoll_reports_readiness_on_restored_pipes() {
    let dir = TempDir::new("fd-epoll-pipe");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["epoll-pipe"], &[]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    run.restart_silently(
        &[
            "pipes ready 7777",
            "pipes ready 7777 8888",
            "pipes ready 8888",
            "done",
        ],
        "after the restart",
    );
}

/// A watch on a descriptor that CKPT_FD_POLICY=close leaves closed (a pidfd) is dropped and
/// the restart says so; the other watch still reports.
#[test]
fn epoll_watch_on_a_descriptor_left_closed_is_named() {
    let dir = TempDir::new("fd-epoll-closed");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["epoll-closed"], &[("CKPT_FD_POLICY", "close")]);
    expect_lines(&before, &["ready"], "before the checkpoint");
    let (after, stderr) = run.restart_ok();
    expect_lines(&after, &["set ready 1111", "done"], "after the restart");
    assert!(
        stderr.contains("('anon_inode:[eventpoll]') no longer watches: fd 5 (the file it watched was left closed")
            && stderr.lines().count() == 2,
        "{stderr}"
    );
}

fn inotify_watches_come_back(nobody: bool) {
    let dir = TempDir::new(if nobody {
        "fd-inotify-nobody"
    } else {
        "fd-inotify"
    });
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let program = build(&dir);
    let run = FdRun {
        ckpt: ckpt.as_deref(),
        ..FdRun::new(&dir, &program)
    };
    let before = run.checkpoint(&["inotify", dir.path().to_str().unwrap()], &[]);
    expect_lines(
        &before,
        &["wds 1 2 3 4 5", "ready"],
        "before the checkpoint",
    );
    let info = ckpt_info(&dir, &run.image());
    assert!(
        info.contains(
            "made again with 4 watches by path; 1 of them without a known path, which cannot \
             be watched again; 32 bytes of unread events are lost"
        ),
        "{}",
        info
    );
    let (after, stderr) = run.restart_ok();
    expect_lines(
        &after,
        &[
            "event wd 1 create new",
            "event wd 3 create new",
            "event wd 4 modify -",
            "done",
        ],
        "after the restart",
    );
    assert_eq!(
        stderr,
        "ckpt restart: fd 3 ('anon_inode:inotify'): no longer watches wd 5 (its path is not \
         known); 32 bytes of events not read at the checkpoint are lost\n"
    );
}

/// An inotify instance watches the same paths with the same wds after the restart (one
/// added by a relative path, one after the gap a removed watch left), and reports their
/// events and no others; the watch whose directory was renamed, and the event left unread,
/// are named as lost, by the restart and by `ckpt info`.
#[test]
fn inotify_watches_come_back_by_path_with_their_wds() {
    inotify_watches_come_back(false);
}

/// The same, run by an ordinary user (who cannot open the kernel's file handles).
#[test]
fn inotify_watches_come_back_as_an_ordinary_user() {
    inotify_watches_come_back(true);
}
