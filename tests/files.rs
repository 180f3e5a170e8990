//! Open descriptors across a checkpoint (tests/programs/files.c does the work and says what
//! it found): files go on at their offsets, appends after other writers, shared and
//! independent offsets stay so, close-on-exec is kept, directory streams go on, null-like
//! devices work; a changed file warns (or refuses under CKPT_STRICT_FILES) and a deleted
//! one refuses the restart, naming it; deleted-but-open files and memfds come back with
//! their contents (up to CKPT_MAX_DELETED); file locks are held again; standard input that is the same file goes on where it
//! was; a descriptor a checkpoint cannot save fails it, named, and the program goes on, or
//! with CKPT_FD_POLICY=close is left closed and the restart says so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ckpt_tests::*;

const FILES_C: &str = include_str!("programs/files.c");

fn build(dir: &TempDir) -> PathBuf {
    compile_c(dir, "files", FILES_C, &[])
}

fn read_resumes_at_its_offset(nobody: bool) {
    let dir = TempDir::new(if nobody {
        "files-read-nobody"
    } else {
        "files-read"
    });
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world, again\n");
    let run = FdRun {
        ckpt: ckpt.as_deref(),
        ..FdRun::new(&dir, &program)
    };
    let before = run.checkpoint(&["read", data.to_str().unwrap()], &[]);
    expect_lines(
        &before,
        &["before: hello ", "ready"],
        "before the checkpoint",
    );
    run.restart_silently(&["after: world,", "done"], "after the restart");
}

/// A file read up to offset 6 gives the bytes from offset 6 on after the restart.
#[test]
fn file_read_at_an_offset_continues_with_the_next_bytes() {
    read_resumes_at_its_offset(false);
}

#[test]
fn file_read_at_an_offset_continues_as_nobody() {
    read_resumes_at_its_offset(true);
}

/// With `CKPT_CONTINUE=1` a forked child writes the image while the program goes on: the descriptors it
/// records were taken before the fork, and both the program and its restart read on from
/// offset 6.
#[test]
fn file_offset_with_a_forked_writer() {
    let dir = TempDir::new("files-fork");
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world, again\n");
    let run = FdRun::new(&dir, &program);
    let (mut proc, mut stdin) =
        run.start(&["read", data.to_str().unwrap()], &[("CKPT_CONTINUE", "1")]);
    proc.signal(libc::SIGTSTP);
    if !wait_for_file(&run.image(), TIMEOUT) {
        proc.fail("the forked writer wrote no image");
    }
    // The image is complete once it has its name; the offsets in it were recorded before
    // the fork, so the program may read on at once.
    writeln!(stdin, "go").expect("write go");
    proc.wait_success(TIMEOUT);
    proc.rest_of_output();
    expect_lines(
        proc.seen(),
        &["before: hello ", "ready", "after: world,", "done"],
        "the program",
    );
    let (after, _) = run.restart_ok();
    expect_lines(&after, &["after: world,", "done"], "after the restart");
}

/// A restarted program checkpointed again records its descriptors again: the second
/// restart still reads on from offset 6.
#[test]
fn restarted_program_checkpointed_again_keeps_its_files() {
    let dir = TempDir::new("files-twice");
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world, again\n");
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["read", data.to_str().unwrap()], &[]);
    let (mut first, _stdin) =
        Proc::spawn_with_stdin(restart_command(&dir, &run.image()), "files.ckpt (first)");
    // Blocked in its read of stdin again, then checkpointed again.
    first.wait_blocked_in(&[0], TIMEOUT);
    std::fs::remove_file(run.image()).expect("remove the first image");
    first.signal(libc::SIGTSTP);
    first.wait_success(TIMEOUT);
    expect_checkpoint(&mut first, &run.image());
    run.restart_silently(&["after: world,", "done"], "after the second restart");
}

/// An O_APPEND log keeps appending at its end after another writer grew it meanwhile, and
/// the restart does not complain about the growth.
#[test]
fn append_log_keeps_appending_after_another_writer_grew_it() {
    let dir = TempDir::new("files-append");
    let program = build(&dir);
    let log = dir.join("log.txt");
    shared_file(&log, b"");
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["append", log.to_str().unwrap()], &[]);
    let mut other = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open the log");
    other.write_all(b"other\n").expect("append");
    drop(other);
    run.restart_silently(&["appended", "done"], "after the restart");
    let text = std::fs::read_to_string(&log).expect("read the log");
    assert_eq!(text, "one\nother\ntwo\n");
}

/// Dup'ed descriptors share their offset after the restart, an independent open of the same
/// file does not, every descriptor keeps its number, and close-on-exec is kept.
#[test]
fn dup_shares_the_offset_an_independent_open_does_not_and_close_on_exec_is_kept() {
    let dir = TempDir::new("files-dup");
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"abcdefgh");
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["dup", data.to_str().unwrap()], &[]);
    expect_lines(&before, &["a: ab", "ready"], "before the checkpoint");
    let (after, _) = run.restart_ok();
    expect_lines(
        &after,
        &[
            "b: cd",
            "c: ab",
            "fds: 3 4 5 6",
            "cloexec: a=0 b=0 c=0 d=1",
            "done",
        ],
        "after the restart",
    );
    // ckpt info says what each descriptor is and what a restart does with it.
    let info = run_to_end(
        ckpt_tool(&dir, &["info", run.image().to_str().unwrap()]),
        "ckpt info",
        TIMEOUT,
    );
    assert!(info.status.success(), "ckpt info: {}", info.stderr);
    let fd_lines: Vec<&str> = info
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("descriptor list:"))
        .collect();
    let text = fd_lines.join("\n");
    for (fd, what) in [
        ("3", "reopen"),
        ("4", "dup of 3"),
        ("5", "reopen"),
        ("6", "reopen"),
    ] {
        let line = fd_lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(fd))
            .unwrap_or_else(|| panic!("no line for fd {fd} in {text}"));
        assert!(line.contains(what), "fd {fd}: {line:?} should say {what:?}");
        assert!(line.contains(data.to_str().unwrap()), "fd {fd}: {line:?}");
    }
    let json = info_json(&run.image());
    let list = json["descriptors"]["list"]
        .as_array()
        .expect("descriptors.list");
    let d = list.iter().find(|d| d["fd"] == 6).expect("fd 6 in JSON");
    assert_eq!(d["kind"], "file");
    assert_eq!(d["cloexec"], true);
    assert_eq!(d["path"], data.to_str().unwrap());
    assert_eq!(list.iter().find(|d| d["fd"] == 3).unwrap()["pos"], 2);
    assert_eq!(
        list.iter().find(|d| d["fd"] == 4).unwrap()["shares_with"],
        3
    );
}

/// Two hundred opens of one file, each at its own offset, and dups of half of them: every
/// offset comes back, and only dups share one (the grouping sorts descriptions with kcmp).
#[test]
fn many_opens_of_one_file_keep_their_own_offsets() {
    let dir = TempDir::new("files-many");
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, &[b'x'; 400]);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["many", data.to_str().unwrap()], &[]);
    let (after, _) = run.restart_ok();
    expect_lines(&after, &["many ok", "done"], "after the restart");
}

/// A directory read part of the way with getdents64 goes on from where it was: every entry
/// once, none twice.
#[test]
fn directory_stream_continues() {
    let dir = TempDir::new("files-dir");
    let program = build(&dir);
    let listed = dir.join("listed");
    std::fs::create_dir(&listed).expect("mkdir");
    let mut expected: Vec<String> = (0..40).map(|i| format!("entry-number-{i:02}")).collect();
    for name in &expected {
        std::fs::write(listed.join(name), b"").expect("create an entry");
    }
    expected.extend([".".to_string(), "..".to_string()]);
    expected.sort();
    let run = FdRun::new(&dir, &program);
    let before = run.checkpoint(&["dir", listed.to_str().unwrap()], &[]);
    let (after, _) = run.restart_ok();
    let mut seen: Vec<String> = before
        .iter()
        .chain(&after)
        .filter_map(|l| l.strip_prefix("entry: ").map(String::from))
        .collect();
    let first_part = before.iter().filter(|l| l.starts_with("entry: ")).count();
    assert!(
        (6..expected.len()).contains(&first_part),
        "the checkpoint should come mid-way: {before:?}"
    );
    seen.sort();
    assert_eq!(seen, expected, "before {before:?}, after {after:?}");
    assert!(after.ends_with(&["end of directory".to_string(), "done".to_string()]));
}

/// /dev/null, /dev/zero and /dev/urandom work after the restart.
#[test]
fn null_zero_and_urandom_work_after_the_restart() {
    let dir = TempDir::new("files-devices");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["devices"], &[]);
    run.restart_silently(&["devices ok", "done"], "after the restart");
}

/// The program's own /proc files (`/proc/PID/…` of its pid) are the restarted process's
/// after the restart, never those of whichever process has the old pid, and are not taken
/// for replaced files.
#[test]
fn own_proc_file_is_the_restarted_process_s() {
    let dir = TempDir::new("files-proc");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["proc"], &[]);
    run.restart_silently(&["own status", "done"], "after the restart");
}

/// The three locks of `files trylock` (flock, fcntl of bytes 0-4, OFD of bytes 10-19), as
/// a second process finds them now: "flock busy" or "flock free", and so on.
fn try_locks(run: &FdRun, data: &Path) -> Vec<String> {
    let mut command = Command::new(run.program);
    command.args(["trylock", data.to_str().unwrap()]);
    let done = run_to_end(run.wrap(command), "files trylock", TIMEOUT);
    assert!(done.status.success(), "{}", done.stderr);
    done.stdout.lines().map(str::to_owned).collect()
}

/// flock, fcntl and OFD locks are held again after the restart: a second process cannot
/// take them while the restarted program runs, and can once it has exited. `ckpt info`
/// marks the descriptors that held them, and the restart says nothing.
fn locks_are_taken_again(nobody: bool) {
    let dir = TempDir::new(if nobody {
        "files-lock-nobody"
    } else {
        "files-lock"
    });
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world, and locks");
    let run = FdRun {
        ckpt: ckpt.as_deref(),
        ..FdRun::new(&dir, &program)
    };
    run.checkpoint(&["lock", data.to_str().unwrap()], &[]);
    let json = info_json(&run.image());
    let list = json["descriptors"]["list"]
        .as_array()
        .expect("descriptors.list");
    let locked: Vec<u64> = list
        .iter()
        .filter(|d| d["locked"] == true)
        .map(|d| d["fd"].as_u64().unwrap())
        .collect();
    assert_eq!(locked, [3, 4, 5], "{json}");
    let all_free = ["flock free", "fcntl free", "ofd free", "done"];
    expect_lines(&try_locks(&run, &data), &all_free, "nobody holds them");

    let (mut restarted, mut stdin) =
        Proc::spawn_with_stdin(run.wrap(restart_command(&dir, &run.image())), "files.ckpt");
    writeln!(stdin, "go").expect("write go");
    restarted.wait_line("went on");
    let all_busy = ["flock busy", "fcntl busy", "ofd busy", "done"];
    expect_lines(
        &try_locks(&run, &data),
        &all_busy,
        "while the restarted program runs",
    );
    writeln!(stdin, "go").expect("write go");
    restarted.wait_success(TIMEOUT);
    restarted.rest_of_output();
    expect_lines(
        restarted.seen(),
        &["went on", "ready", "done"],
        "after the restart",
    );
    assert_eq!(restarted.stderr(), "", "the restart said something");
    expect_lines(&try_locks(&run, &data), &all_free, "after it exited");
}

#[test]
fn flock_fcntl_and_ofd_locks_are_held_again_after_the_restart() {
    locks_are_taken_again(false);
}

#[test]
fn locks_are_held_again_as_nobody() {
    locks_are_taken_again(true);
}

/// A lock another process holds at the restart: one line naming the descriptor, its file,
/// the lock and the holder, status 77, and the program does not run.
#[test]
fn lock_held_by_another_process_refuses_the_restart() {
    let dir = TempDir::new("files-lock-held");
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world, and locks");
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["lock", data.to_str().unwrap()], &[]);
    let mut hold = Command::new(&program);
    hold.args(["hold", data.to_str().unwrap()]);
    let (mut holder, mut hold_stdin) = Proc::spawn_with_stdin(hold, "files hold");
    holder.wait_line("ready");
    let (status, lines, stderr) = run.restart();
    writeln!(hold_stdin, "go").expect("write go");
    holder.wait_success(TIMEOUT);
    assert_eq!(
        status.code(),
        Some(77),
        "{} {stderr:?}",
        describe_status(status)
    );
    assert!(lines.is_empty(), "the program ran: {lines:?}");
    assert_eq!(
        stderr,
        format!(
            "ckpt restart: fd 4 ('{}') cannot take its fcntl write lock on bytes 0-4 again: \
             process {} holds it now; nothing was restored\n",
            data.display(),
            holder.pid()
        )
    );
    // Given back, the same checkpoint restarts.
    let (mut restarted, mut stdin) =
        Proc::spawn_with_stdin(restart_command(&dir, &run.image()), "files.ckpt");
    writeln!(stdin, "go\ngo").expect("write go");
    restarted.wait_success(TIMEOUT);
    restarted.rest_of_output();
    expect_lines(
        restarted.seen(),
        &["went on", "ready", "done"],
        "after the lock was given back",
    );
}

/// A file replaced (renamed over) since the checkpoint: one warning line naming the
/// descriptor and the path, and the program goes on with the new file; with
/// CKPT_STRICT_FILES=1, in the restart's environment or the program's, the restart refuses
/// with status 78 and restores nothing.
#[test]
fn replaced_file_warns_and_strict_files_refuses() {
    let dir = TempDir::new("files-replaced");
    let program = build(&dir);
    let data = dir.join("data.txt");
    let run = FdRun::new(&dir, &program);
    let strict_env: &[(&str, &str)] = &[("CKPT_STRICT_FILES", "1")];
    for (program_env, restart_env) in [(&[][..], &[][..]), (strict_env, &[]), (&[], strict_env)] {
        let strict = !program_env.is_empty() || !restart_env.is_empty();
        shared_file(&data, b"hello world, again\n");
        run.checkpoint(&["read", data.to_str().unwrap()], program_env);
        let new = dir.join("new.txt");
        shared_file(&new, b"HELLO WORLD, AGAIN\n");
        std::fs::rename(&new, &data).expect("replace the file");
        let (status, lines, stderr) = run.restart_with(restart_env);
        let warning = format!("ckpt restart: fd 3 ('{}') was replaced", data.display());
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with(&warning)).count(),
            1,
            "one warning expected: {stderr:?}"
        );
        if strict {
            assert_eq!(status.code(), Some(78), "stderr {stderr:?}");
            assert!(lines.is_empty(), "nothing should run: {lines:?}");
            assert!(stderr.contains("CKPT_STRICT_FILES"), "{stderr:?}");
        } else {
            assert!(status.success(), "{}: {stderr:?}", describe_status(status));
            expect_lines(&lines, &["after: WORLD,", "done"], "with the new file");
        }
    }
}

/// A file truncated below the offset the program had read to: a warning naming it.
#[test]
fn truncated_file_warns() {
    let dir = TempDir::new("files-truncated");
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world, again\n");
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["read", data.to_str().unwrap()], &[]);
    std::fs::write(&data, b"hel").expect("truncate");
    let (status, _, stderr) = run.restart();
    assert!(
        stderr.contains(&format!("fd 3 ('{}') was truncated", data.display())),
        "{stderr:?}"
    );
    // The program then finds too few bytes and says so itself.
    assert_eq!(status.code(), Some(2), "{stderr:?}");
}

/// A file deleted since the checkpoint: the restart says which, exits 77 and runs nothing.
#[test]
fn deleted_path_refuses_the_restart_naming_it() {
    let dir = TempDir::new("files-deleted");
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world, again\n");
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["read", data.to_str().unwrap()], &[]);
    std::fs::remove_file(&data).expect("delete");
    let (status, lines, stderr) = run.restart();
    assert_eq!(status.code(), Some(77), "stderr {stderr:?}");
    assert!(lines.is_empty(), "nothing should run: {lines:?}");
    let expected = format!(
        "ckpt restart: fd 3 ('{}') cannot be opened again: no such file or directory",
        data.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
}

/// A descriptor above what the restart may open (its hard RLIMIT_NOFILE lower than the
/// descriptor's number) refuses the restart before anything changes, naming it; a restart
/// under the program's own limit puts it back.
#[test]
fn descriptor_above_the_restarts_limit_refuses_the_restart() {
    let dir = TempDir::new("files-high");
    // As nobody when the tests run as root: root may raise its hard limit again.
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    let program = build(&dir);
    let data = dir.join("data.txt");
    shared_file(&data, b"hello world");
    let run = FdRun {
        ckpt: Some(&ckpt),
        ..FdRun::new(&dir, &program)
    };
    run.checkpoint(&["high", data.to_str().unwrap()], &[]);
    let (after, _) = run.restart_ok();
    expect_lines(&after, &["fd 1500: hello", "done"], "after the restart");

    // (After as_nobody, which makes a new command without the closures.)
    let mut command = run.wrap(restart_command(&dir, &run.image()));
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and allocates nothing.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 1024,
                    rlim_max: 1024,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let finished = run_to_end(command, "files.ckpt under a lower limit", TIMEOUT);
    assert_eq!(finished.status.code(), Some(77), "{}", finished.stderr);
    assert!(
        finished.stderr.contains(&format!(
            "fd 1500 ('{}') cannot be opened again: too many open files",
            data.display()
        )),
        "{}",
        finished.stderr
    );
    assert!(finished.stdout.is_empty(), "{}", finished.stdout);
}

/// Lines of a file big enough that stdio reads it in several pieces.
fn numbered_lines(prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{prefix} {i:04} {}", "x".repeat(60)))
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write lines");
}

/// Starts `files lines` with stdin from `input`, checkpoints it after a few lines; the lines
/// it printed.
fn lines_checkpointed(run: &FdRun, input: &Path) -> Vec<String> {
    let _ = std::fs::remove_file(run.image());
    let stdin = std::fs::File::open(input).expect("open input");
    let mut proc = Proc::spawn_reading(
        ckpt_command(run.dir, run.program, &["lines"]),
        "files lines",
        Stdio::from(stdin),
    );
    proc.wait_lines(5, TIMEOUT);
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    proc.rest_of_output();
    expect_checkpoint(&mut proc, &run.image());
    proc.seen().to_vec()
}

/// Restarts `files lines` with stdin from `input`, or closed when `None`.
fn lines_restarted(run: &FdRun, input: Option<&Path>) -> Vec<String> {
    lines_restarted_with(run, input, &[])
}

/// As `lines_restarted`, with `env` in the restart's environment.
fn lines_restarted_with(run: &FdRun, input: Option<&Path>, env: &[(&str, &str)]) -> Vec<String> {
    let mut command = restart_command(run.dir, &run.image());
    for (k, v) in env {
        command.env(k, v);
    }
    let stdin = match input {
        Some(input) => Stdio::from(std::fs::File::open(input).expect("open input")),
        None => {
            use std::os::unix::process::CommandExt;
            // SAFETY: close is async-signal-safe and allocates nothing.
            unsafe {
                command.pre_exec(|| {
                    libc::close(0);
                    Ok(())
                });
            }
            Stdio::null()
        }
    };
    let mut proc = Proc::spawn_reading(command, "files.ckpt lines", stdin);
    proc.wait_success(TIMEOUT);
    proc.rest_of_output();
    proc.seen().to_vec()
}

/// The `bc -l < file` case: standard input redirected from a file, checkpointed mid-file and
/// restarted with the same file as standard input, goes on where it stopped: no line twice,
/// none skipped (today's bug printed the file again).
#[test]
fn stdin_from_the_same_file_continues_at_its_offset() {
    let dir = TempDir::new("files-stdin");
    let program = build(&dir);
    let input = dir.join("input.txt");
    let all = numbered_lines("line", 300);
    write_lines(&input, &all);
    let run = FdRun::new(&dir, &program);
    let before = lines_checkpointed(&run, &input);
    assert!(
        before.len() < all.len(),
        "the checkpoint came after the whole input"
    );
    let after = lines_restarted(&run, Some(&input));
    let mut expected = all.clone();
    expected.extend(["end of input".to_string(), "done".to_string()]);
    let got: Vec<String> = before.into_iter().chain(after).collect();
    assert!(
        got == expected,
        "lines repeated or missing: got {} lines, expected {}; first difference at {:?}",
        got.len(),
        expected.len(),
        got.iter().zip(&expected).position(|(a, b)| a != b)
    );
}

/// Standard input closed at the restart: the saved one is opened again, at its offset.
#[test]
fn stdin_closed_at_the_restart_is_reopened_at_its_offset() {
    let dir = TempDir::new("files-stdin-closed");
    let program = build(&dir);
    let input = dir.join("input.txt");
    let all = numbered_lines("line", 300);
    write_lines(&input, &all);
    let run = FdRun::new(&dir, &program);
    let before = lines_checkpointed(&run, &input);
    let after = lines_restarted(&run, None);
    let mut expected = all.clone();
    expected.extend(["end of input".to_string(), "done".to_string()]);
    let got: Vec<String> = before.into_iter().chain(after).collect();
    assert!(got == expected, "lines repeated or missing: {got:?}");
}

/// With CKPT_RESTORE_STDIO=1 in the restart's environment the saved standard input is
/// opened again at its offset, whatever the restart was given (its output, a pipe that
/// cannot be opened again, stays the restart's).
#[test]
fn restore_stdio_reopens_the_saved_stdin_instead_of_the_given_one() {
    let dir = TempDir::new("files-restore-stdio");
    let program = build(&dir);
    let input = dir.join("input.txt");
    let all = numbered_lines("line", 300);
    write_lines(&input, &all);
    let other = dir.join("other.txt");
    write_lines(&other, &numbered_lines("other", 3));
    let run = FdRun::new(&dir, &program);
    let before = lines_checkpointed(&run, &input);
    let after = lines_restarted_with(&run, Some(&other), &[("CKPT_RESTORE_STDIO", "1")]);
    let mut expected = all.clone();
    expected.extend(["end of input".to_string(), "done".to_string()]);
    let got: Vec<String> = before.into_iter().chain(after).collect();
    assert!(
        got == expected,
        "lines repeated, missing or from the other file: {got:?}"
    );
}

/// Another file as standard input at the restart is used as it is given: from its start.
#[test]
fn stdin_from_another_file_is_used_as_given() {
    let dir = TempDir::new("files-stdin-other");
    let program = build(&dir);
    let input = dir.join("input.txt");
    write_lines(&input, &numbered_lines("line", 300));
    let other = dir.join("other.txt");
    write_lines(&other, &numbered_lines("other", 3));
    let run = FdRun::new(&dir, &program);
    lines_checkpointed(&run, &input);
    let after = lines_restarted(&run, Some(&other));
    // What stdio had read ahead of the first file comes first (its last line cut where
    // the read-ahead ended), then the other from its first line.
    let other_lines = numbered_lines("other", 3);
    let Some(i) = after.iter().position(|l| l.contains("other 0001")) else {
        panic!("the other file was not read from its start: {after:?}")
    };
    assert!(after[i].ends_with(&other_lines[0]), "{after:?}");
    let mut rest = other_lines[1..].to_vec();
    rest.extend(["end of input".to_string(), "done".to_string()]);
    assert_eq!(after[i + 1..].to_vec(), rest);
}

/// A pidfd cannot be checkpointed: the checkpoint fails in one line naming the descriptor
/// and what it is, leaves no file, and the program goes on.
#[test]
fn pidfd_fails_the_checkpoint_naming_it_and_the_program_goes_on() {
    let dir = TempDir::new("files-pidfd");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let (mut proc, mut stdin) = run.start(&["pidfd"], &[]);
    proc.signal(libc::SIGTSTP);
    proc.wait_stderr("failed", TIMEOUT);
    let stderr = proc.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("failed"))
        .unwrap_or_default();
    assert!(
        line.contains("' failed: fd 3 (anon_inode:[pidfd])")
            && line.contains("cannot be checkpointed yet")
            && line.ends_with("the program continues"),
        "{line:?}"
    );
    assert!(!run.image().exists(), "a failed checkpoint left a file");
    writeln!(stdin, "go").expect("write go");
    let status = proc.wait_exit_only(TIMEOUT);
    assert!(status.success(), "{}", describe_status(status));
    proc.rest_of_output();
    expect_lines(proc.seen(), &["ready", "pidfd open", "done"], "the program");
}

/// `ckpt checkpoint PID` of a program with a pidfd gets the same refusal as its answer, and
/// the program goes on.
#[test]
fn ckpt_checkpoint_of_a_program_with_a_pidfd_is_answered_with_the_refusal() {
    let dir = TempDir::new("files-pidfd-request");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let (mut proc, mut stdin) = run.start(&["pidfd"], &[]);
    let pid = proc.pid().to_string();
    let answer = run_to_end(
        ckpt_tool(&dir, &["checkpoint", &pid]),
        "ckpt checkpoint",
        TIMEOUT,
    );
    assert_eq!(answer.status.code(), Some(1), "{}", answer.stderr);
    assert!(
        answer.stderr.contains("fd 3 (anon_inode:[pidfd])")
            && answer.stderr.contains("cannot be checkpointed yet"),
        "{}",
        answer.stderr
    );
    assert!(!run.image().exists(), "a failed checkpoint left a file");
    writeln!(stdin, "go").expect("write go");
    let status = proc.wait_exit_only(TIMEOUT);
    assert!(status.success(), "{}", describe_status(status));
    proc.rest_of_output();
    expect_lines(proc.seen(), &["ready", "pidfd open", "done"], "the program");
}

/// The names in `dir`, sorted.
fn listing(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read the test directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A deleted file, opened twice, and a sealed memfd: after the restart the file keeps its
/// contents, offsets, mode and its having no name (nothing new appears in its directory),
/// its two descriptors are on one file, and the memfd keeps its name, contents, offset
/// and seals.
fn deleted_file_and_memfd_come_back(nobody: bool) {
    let dir = TempDir::new(if nobody {
        "files-gone-nobody"
    } else {
        "files-gone"
    });
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let program = build(&dir);
    let data = dir.join("data.txt");
    let run = FdRun {
        ckpt: ckpt.as_deref(),
        ..FdRun::new(&dir, &program)
    };
    run.checkpoint(&["gone", data.to_str().unwrap()], &[]);
    let before = listing(&dir);
    run.restart_silently(
        &[
            "deleted: link says deleted, no name",
            "mode: 640",
            "read on: llo",
            "other: ell, first byte J",
            "memfd: /memfd:scratch (deleted)",
            "memfd read on: bytes",
            "seals: 0x6",
            "grow: refused",
            "done",
        ],
        "after the restart",
    );
    assert_eq!(listing(&dir), before, "the restart left a file behind");
}

#[test]
fn deleted_file_and_memfd_keep_contents_offsets_and_seals() {
    deleted_file_and_memfd_come_back(false);
}

#[test]
fn deleted_file_and_memfd_come_back_as_nobody() {
    deleted_file_and_memfd_come_back(true);
}

/// A deleted file larger than CKPT_MAX_DELETED (1 MiB by default): the checkpoint fails
/// naming it, its size and the limit, and the program goes on; with the limit raised it is
/// saved, and comes back whole, written only and appending; with CKPT_FD_POLICY=close it
/// is left closed and the restart says so.
#[test]
fn deleted_file_over_the_limit_is_refused_or_saved_with_a_higher_one() {
    let dir = TempDir::new("files-gone-big");
    let program = build(&dir);
    let data = dir.join("data.txt");
    let run = FdRun::new(&dir, &program);
    let size = "2097152";
    shared_file(&data, b"");
    let (mut proc, mut stdin) = run.start(&["big", data.to_str().unwrap(), size], &[]);
    proc.signal(libc::SIGTSTP);
    proc.wait_stderr("failed", TIMEOUT);
    let expected = format!(
        "' failed: fd 3 ({} (deleted)) is a deleted file of 2 MiB, more than CKPT_MAX_DELETED \
         (1 MiB); the program continues",
        data.display()
    );
    assert!(proc.stderr().contains(&expected), "{}", proc.stderr());
    writeln!(stdin, "go").expect("write go");
    let status = proc.wait_exit_only(TIMEOUT);
    assert!(status.success(), "{}", describe_status(status));
    proc.rest_of_output();
    expect_lines(
        proc.seen(),
        &[
            "ready",
            "big: 2097156 bytes, 0 wrong, write-only appending",
            "done",
        ],
        "the program",
    );

    shared_file(&data, b"");
    run.checkpoint(
        &["big", data.to_str().unwrap(), size],
        &[("CKPT_MAX_DELETED", "3M")],
    );
    run.restart_silently(
        &["big: 2097156 bytes, 0 wrong, write-only appending", "done"],
        "after the restart",
    );

    shared_file(&data, b"");
    run.checkpoint(
        &["big", data.to_str().unwrap(), size],
        &[("CKPT_FD_POLICY", "close")],
    );
    let (after, stderr) = run.restart_ok();
    expect_lines(&after, &["closed", "done"], "after the restart");
    assert_eq!(
        stderr,
        format!(
            "ckpt restart: left closed, as CKPT_FD_POLICY=close had the checkpoint record \
             them: fd 3 ({} (deleted))\n",
            data.display()
        )
    );
}

/// A deleted directory cannot be made again: the checkpoint says so, naming it, and the
/// program goes on.
#[test]
fn deleted_directory_is_refused_by_name() {
    let dir = TempDir::new("files-gonedir");
    let program = build(&dir);
    let gone = dir.join("gone");
    let run = FdRun::new(&dir, &program);
    let (mut proc, mut stdin) = run.start(&["gonedir", gone.to_str().unwrap()], &[]);
    proc.signal(libc::SIGTSTP);
    proc.wait_stderr("failed", TIMEOUT);
    let expected = format!(
        "' failed: fd 3 ({} (deleted)) is a deleted directory, which a restart cannot make \
         again (CKPT_FD_POLICY=close leaves it closed at the restart); the program continues",
        gone.display()
    );
    assert!(proc.stderr().contains(&expected), "{}", proc.stderr());
    writeln!(stdin, "go").expect("write go");
    let status = proc.wait_exit_only(TIMEOUT);
    assert!(status.success(), "{}", describe_status(status));
    proc.rest_of_output();
    expect_lines(proc.seen(), &["ready", "still open", "done"], "the program");
}

/// With CKPT_FD_POLICY=close the pidfds are recorded as closed: the checkpoint is written,
/// and the restart says in one line which descriptors it left closed.
#[test]
fn fd_policy_close_leaves_the_pidfds_closed_and_the_restart_says_so() {
    let dir = TempDir::new("files-pidfd-close");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["pidfd"], &[("CKPT_FD_POLICY", "close")]);
    let (after, stderr) = run.restart_ok();
    expect_lines(&after, &["pidfd closed", "done"], "after the restart");
    let said: Vec<&str> = stderr.lines().collect();
    assert_eq!(said.len(), 1, "{stderr:?}");
    assert!(
        said[0].starts_with("ckpt restart: left closed")
            && said[0].contains("fd 3 (anon_inode:[pidfd])")
            && said[0].contains("fd 4 (anon_inode:[pidfd])"),
        "{stderr:?}"
    );
}

/// The test harness hands the tested programs no descriptor beyond 0-2 (cargo's jobserver,
/// a CI runner's): a checkpoint would rightly refuse the pipes among them.
#[test]
fn the_harness_leaks_no_descriptor_into_tested_programs() {
    let dir = TempDir::new("files-leaks");
    let program = build(&dir);
    let finished = run_to_end(
        direct_command(&dir, &program, &["fds"]),
        "files fds",
        TIMEOUT,
    );
    finished.expect_success_with("files fds", &["listed", "done"]);
}

/// md5sum of a large file given as an argument, checkpointed mid-way and restarted, prints
/// the sum of the whole file.
#[test]
fn md5sum_of_a_large_file_resumes_mid_way() {
    if !have_program("md5sum") {
        return skip(Skip::MissingTool, "md5sum is not installed");
    }
    let dir = TempDir::new("files-md5sum");
    let big = dir.join("big");
    // Sparse: quick to make, and md5sum reads its holes as fast as the page cache.
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(2 << 30).expect("set_len");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .and_then(|mut f| f.write_all(b"not only zeros"))
        .expect("write");
    let md5sum = PathBuf::from("md5sum");
    let expected = run_to_end(
        {
            let mut c = Command::new("md5sum");
            c.arg(&big).current_dir(dir.path());
            c
        },
        "md5sum",
        Duration::from_secs(60),
    );
    assert!(expected.status.success());
    let mut proc = Proc::spawn(
        ckpt_command(&dir, &md5sum, &[big.to_str().unwrap()]),
        "ckpt md5sum",
    );
    std::thread::sleep(Duration::from_millis(300));
    proc.signal(libc::SIGTSTP);
    proc.wait_success(Duration::from_secs(60));
    let image = dir.join("md5sum.ckpt");
    if proc.rest_of_output().iter().any(|l| l.contains("big")) {
        proc.fail("md5sum finished before the checkpoint: give it a bigger file");
    }
    expect_checkpoint(&mut proc, &image);
    let restarted = run_to_end(
        restart_command(&dir, &image),
        "md5sum.ckpt",
        Duration::from_secs(60),
    );
    assert!(restarted.status.success(), "{}", restarted.stderr);
    assert_eq!(restarted.stdout, expected.stdout);
}

/// `ckpt bc -l < script`, checkpointed after its first answer and restarted with the same
/// script on stdin, prints the rest of the answers once (it printed the whole script's
/// answers again before descriptors were restored, and exited 0).
#[test]
fn bc_reading_a_script_on_stdin_goes_on_where_it_stopped() {
    if !have_program("bc") {
        return skip(Skip::MissingTool, "bc is not installed");
    }
    let dir = TempDir::new("files-bc");
    let script = dir.join("pi.bc");
    let lines: String = (1..=6)
        .map(|i| format!("scale=1000; x=4*a(1); {i}\n"))
        .collect();
    std::fs::write(&script, lines).expect("write the script");
    let bc = PathBuf::from("bc");
    let image = dir.join("bc.ckpt");
    let stdin = std::fs::File::open(&script).expect("open the script");
    let mut proc = Proc::spawn_reading(
        ckpt_command(&dir, &bc, &["-l"]),
        "ckpt bc -l < pi.bc",
        Stdio::from(stdin),
    );
    proc.wait_line("1");
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let before: Vec<String> = proc
        .rest_of_output()
        .into_iter()
        .chain(std::iter::once("1".to_string()))
        .collect();
    expect_checkpoint(&mut proc, &image);
    let last: u32 = before
        .iter()
        .filter_map(|l| l.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(last < 6, "bc finished before the checkpoint: {before:?}");
    let stdin = std::fs::File::open(&script).expect("open the script");
    let mut restarted = Proc::spawn_reading(
        restart_command(&dir, &image),
        "./bc.ckpt < pi.bc",
        Stdio::from(stdin),
    );
    restarted.wait_success(Duration::from_secs(30));
    restarted.rest_of_output();
    let expected: Vec<String> = (last + 1..=6).map(|i| i.to_string()).collect();
    assert_eq!(restarted.seen(), expected, "printed before: {before:?}");
}

/// `ckpt openssl genrsa -out key.pem 4096`, checkpointed while it looks for primes and
/// restarted, writes a valid key (it left an empty file before descriptors were restored).
#[test]
fn openssl_genrsa_writes_its_key_after_a_restart() {
    if !have_program("openssl") {
        return skip(Skip::MissingTool, "openssl is not installed");
    }
    let dir = TempDir::new("files-openssl");
    let openssl = PathBuf::from("openssl");
    let image = dir.join("openssl.ckpt");
    let key = dir.join("key.pem");
    // Finding the primes takes a random while: try again if it was done before the signal.
    let checkpointed = (0..5).any(|_| {
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(&image);
        let mut proc = Proc::spawn(
            ckpt_command(&dir, &openssl, &["genrsa", "-out", "key.pem", "4096"]),
            "ckpt openssl genrsa",
        );
        std::thread::sleep(Duration::from_millis(150));
        proc.signal(libc::SIGTSTP);
        proc.wait_success(Duration::from_secs(60));
        image.exists() && std::fs::metadata(&key).is_ok_and(|m| m.len() == 0)
    });
    assert!(checkpointed, "openssl finished before every checkpoint");
    let restarted = run_to_end(
        restart_command(&dir, &image),
        "openssl.ckpt",
        Duration::from_secs(120),
    );
    assert!(restarted.status.success(), "{}", restarted.stderr);
    let check = run_to_end(
        {
            let mut c = Command::new("openssl");
            c.args(["rsa", "-check", "-noout", "-in"]).arg(&key);
            c
        },
        "openssl rsa -check",
        TIMEOUT,
    );
    assert!(
        check.status.success() && check.stdout.contains("RSA key ok"),
        "{} {}",
        check.stdout,
        check.stderr
    );
}

/// `sqlite3 t.db` under ckpt in `dir`, given `statements`, checkpointed once it has run them
/// (and waits for more); the checkpoint file.
fn sqlite3_checkpointed(dir: &TempDir, statements: &str) -> PathBuf {
    let image = dir.join("sqlite3.ckpt");
    let sqlite3 = PathBuf::from("sqlite3");
    let (mut proc, mut stdin) =
        Proc::spawn_with_stdin(ckpt_command(dir, &sqlite3, &["t.db"]), "ckpt sqlite3 t.db");
    writeln!(stdin, "{statements}\n.print ready").expect("write statements");
    proc.wait_line("ready");
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    expect_checkpoint(&mut proc, &image);
    image
}

/// Checks that table t of `dir`'s t.db holds `rows` (comma-separated), read by another
/// sqlite3.
#[track_caller]
fn expect_rows(dir: &TempDir, rows: &str) {
    let mut c = Command::new("sqlite3");
    c.args(["t.db", "select group_concat(x) from t;"])
        .current_dir(dir.path());
    let check = run_to_end(c, "sqlite3 t.db", TIMEOUT);
    assert_eq!(check.stdout.trim(), rows, "{}", check.stderr);
}

/// sqlite3 with an on-disk database, checkpointed while it waits for statements and
/// restarted with new ones: they land in the same database file.
#[test]
fn sqlite3_on_disk_database_takes_statements_after_a_restart() {
    if !have_program("sqlite3") {
        return skip(Skip::MissingTool, "sqlite3 is not installed");
    }
    let dir = TempDir::new("files-sqlite3");
    let image = sqlite3_checkpointed(&dir, "create table t(x); insert into t values (1);");
    let (mut restarted, mut stdin) =
        Proc::spawn_with_stdin(restart_command(&dir, &image), "sqlite3.ckpt");
    writeln!(stdin, "insert into t values (2); select count(*) from t;").expect("write");
    drop(stdin);
    restarted.wait_success(TIMEOUT);
    restarted.rest_of_output();
    expect_lines(restarted.seen(), &["2"], "the restarted sqlite3");
    expect_rows(&dir, "1,2");
}

/// sqlite3 checkpointed in a write transaction (`begin immediate`: its POSIX locks on the
/// database file) holds them again after the restart: another sqlite3 finds the database
/// locked until the restarted one commits, and both rows are in it.
#[test]
fn sqlite3_in_a_write_transaction_holds_its_locks_after_a_restart() {
    if !have_program("sqlite3") {
        return skip(Skip::MissingTool, "sqlite3 is not installed");
    }
    let dir = TempDir::new("files-sqlite3-locked");
    let image = sqlite3_checkpointed(
        &dir,
        "create table t(x); begin immediate; insert into t values (1);",
    );
    let other_writer = || {
        let mut c = Command::new("sqlite3");
        c.args(["t.db", "begin immediate; insert into t values (3); commit;"])
            .current_dir(dir.path());
        run_to_end(c, "sqlite3 t.db begin immediate", TIMEOUT)
    };
    let (mut restarted, mut stdin) =
        Proc::spawn_with_stdin(restart_command(&dir, &image), "sqlite3.ckpt");
    writeln!(stdin, ".print back").expect("write");
    restarted.wait_line("back");
    let refused = other_writer();
    assert!(
        !refused.status.success() && refused.stderr.contains("locked"),
        "another writer got in while the restarted sqlite3 held its transaction: {} {:?}",
        describe_status(refused.status),
        refused.stderr
    );
    writeln!(
        stdin,
        "insert into t values (2); commit; select count(*) from t;"
    )
    .expect("write");
    drop(stdin);
    restarted.wait_success(TIMEOUT);
    restarted.rest_of_output();
    expect_lines(restarted.seen(), &["back", "2"], "the restarted sqlite3");
    assert_eq!(restarted.stderr(), "", "the restart said something");
    expect_rows(&dir, "1,2");
}

/// `gzip -k FILE`, checkpointed mid-way and restarted, writes the whole compressed file:
/// it reads on from its input's offset and writes on at its output's.
#[test]
fn gzip_of_a_file_to_a_file_resumes_mid_way() {
    if !have_program("gzip") {
        return skip(Skip::MissingTool, "gzip is not installed");
    }
    let dir = TempDir::new("files-gzip");
    let input = dir.join("big.txt");
    // About 60 MB of text that compresses like text: gzip takes a second or two.
    let mut text = Vec::with_capacity(64 << 20);
    let mut x: u64 = 1;
    while text.len() < 60 << 20 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
        let _ = writeln!(
            text,
            "{} {} {}",
            x >> 40,
            words[(x >> 20) as usize % 6],
            words[(x >> 30) as usize % 6]
        );
    }
    std::fs::write(&input, &text).expect("write the input");
    let gzip = PathBuf::from("gzip");
    let image = dir.join("gzip.ckpt");
    let mut proc = Proc::spawn(ckpt_command(&dir, &gzip, &["-k", "big.txt"]), "ckpt gzip");
    std::thread::sleep(Duration::from_millis(300));
    proc.signal(libc::SIGTSTP);
    proc.wait_success(Duration::from_secs(60));
    if !image.exists() {
        proc.fail("gzip finished before the checkpoint: give it a bigger file");
    }
    let restarted = run_to_end(
        restart_command(&dir, &image),
        "gzip.ckpt",
        Duration::from_secs(60),
    );
    assert!(restarted.status.success(), "{}", restarted.stderr);
    let check = run_to_end(
        {
            let mut c = Command::new("sh");
            c.args(["-c", "gzip -dc big.txt.gz | cmp - big.txt && echo same"])
                .current_dir(dir.path());
            c
        },
        "gzip -dc | cmp",
        Duration::from_secs(60),
    );
    assert_eq!(check.stdout.trim(), "same", "{}", check.stderr);
}

/// Periodic checkpoints of a program that keeps a pidfd open fail every period alike: the
/// failure is said once, not every period, and the program goes on.
#[test]
fn a_periodic_failure_that_repeats_is_said_once() {
    let dir = TempDir::new("files-periodic-refusal");
    let program = build(&dir);
    let run = FdRun::new(&dir, &program);
    let (mut proc, mut stdin) = run.start(&["pidfd"], &[("CKPT_MSPERIOD", "20")]);
    proc.wait_stderr("cannot be checkpointed yet", TIMEOUT);
    // Some twenty more periods, each failing alike.
    std::thread::sleep(std::time::Duration::from_millis(400));
    writeln!(stdin, "go").expect("write go");
    let status = proc.wait_exit_only(TIMEOUT);
    assert!(status.success(), "{}", describe_status(status));
    let said = proc.stderr().matches("cannot be checkpointed yet").count();
    assert_eq!(
        said,
        1,
        "the refusal was said {said} times: {}",
        proc.stderr()
    );
}
