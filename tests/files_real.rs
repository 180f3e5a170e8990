//! Real programs that read and write files, checkpointed in the middle of their work and
//! restarted: what they leave behind is byte for byte what an uninterrupted run leaves. xz,
//! zstd (with one thread and with its worker and I/O threads) and bzip2 compressing a file to
//! a file; sort spilling to temporary files; md5sum between files; tar writing an archive;
//! find writing what it finds; a ruby loop copying a file line by line; and python3's
//! http.server answering after a restart.
//!
//! Each test first runs the program without ckpt for the expected result, then runs it under
//! ckpt and checkpoints it once its progress shows (its output file passed a size, its temporary
//! files appeared, it opened its third input, it printed a marker), and fails — "finished
//! before the checkpoint: proves nothing" — if the program was done by then. Where a program
//! has no line to print, the test polls what it can see (a file's size, /proc/PID/fd) every
//! few milliseconds, always within a bounded time.
//!
//! A test whose program is not installed says so and passes, except under `CI=true`, where it
//! fails (`.ci/run` installs them).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ckpt_tests::*;

const FILES_LOOP_RB: &str = include_str!("programs/files_loop.rb");

/// How long a whole run of one of these programs may take: they work for a second or two
/// here, and a loaded machine may take many times that.
const LONG: Duration = Duration::from_secs(120);

/// The program `name`, or `None` after saying that the test is skipped.
fn tool(name: &str) -> Option<PathBuf> {
    if have_program(name) {
        Some(PathBuf::from(name))
    } else {
        skip(Skip::MissingTool, &format!("{name} is not installed"));
        None
    }
}

/// `len` bytes of text lines that compress like text (numbers and words), the same every time.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut x = seed;
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let _ = writeln!(
            out,
            "{} {} {}",
            x >> 44,
            WORDS[(x >> 20) as usize % 8],
            WORDS[(x >> 30) as usize % 8]
        );
    }
    out
}

/// `program args…` run to its end without ckpt, in `dir`.
fn plain(dir: &TempDir, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = direct_command(dir, program, args);
    command.envs(env.iter().copied());
    run_to_end(
        command,
        &format!("{} (uninterrupted)", program.display()),
        LONG,
    )
}

/// The size of `path`, 0 while it does not exist.
fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Whether `proc` has ended (a zombie its parent has not reaped yet, or gone).
fn ended(proc: &Proc) -> bool {
    matches!(process_state(proc.pid()), None | Some('Z') | Some('X'))
}

/// Polls every 2 ms, for at most `LONG`, until `progress()` holds while `proc` works. A program
/// that ends first fails the test: a checkpoint after its work is done proves nothing.
#[track_caller]
fn wait_for_progress(proc: &mut Proc, what: &str, progress: impl Fn() -> bool) {
    let deadline = Instant::now() + LONG;
    loop {
        if progress() {
            return;
        }
        if ended(proc) {
            proc.fail(&format!(
                "finished before the checkpoint (waiting for {what}): proves nothing"
            ));
        }
        if Instant::now() > deadline {
            proc.fail(&format!("no progress within {LONG:?}: waited for {what}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Checkpoints `proc` with SIGTSTP and waits for it to exit 0 having written `image`; a
/// program that finished before the signal (no image) fails the test.
#[track_caller]
fn checkpoint_mid_way(proc: &mut Proc, image: &Path) {
    proc.signal(libc::SIGTSTP);
    proc.wait_success(LONG);
    if !image.is_file() {
        proc.fail("finished before the checkpoint (no checkpoint file): proves nothing");
    }
}

/// Runs the checkpoint `image` to its end in `dir`; it must exit 0 and print nothing on
/// stderr: no warning about a changed file, nothing left closed.
#[track_caller]
fn restart_to_end(dir: &TempDir, image: &Path) -> Finished {
    let label = format!("{} (the restart)", image.display());
    let restarted = run_to_end(restart_command(dir, image), &label, LONG);
    if !restarted.status.success() {
        restarted.fail(&label, "expected exit status 0");
    }
    if !restarted.stderr.is_empty() {
        restarted.fail(&label, "expected nothing on stderr");
    }
    restarted
}

/// Fails unless `got` and `expected` hold the same bytes, saying where they first differ.
#[track_caller]
fn same_bytes(got: &Path, expected: &Path) {
    let a = std::fs::read(got).unwrap_or_else(|e| panic!("read {}: {e}", got.display()));
    let b = std::fs::read(expected).unwrap_or_else(|e| panic!("read {}: {e}", expected.display()));
    if a != b {
        let at = a.iter().zip(&b).position(|(x, y)| x != y);
        panic!(
            "{} ({} bytes) differs from the uninterrupted run's {} ({} bytes), first at byte {}",
            got.display(),
            a.len(),
            expected.display(),
            b.len(),
            at.map_or("(one is a prefix of the other)".to_string(), |i| i
                .to_string())
        );
    }
}

/// `compressor args… big.txt` keeping its input and writing `big.txt.<suffix>`: once without
/// ckpt (the expected bytes), then under ckpt, checkpointed once 64 KiB of output are
/// written, and restarted; the two outputs must be the same bytes, and `decompress` of the
/// restarted one must give the input back.
/// With `nobody`, ckpt and the restart run as an ordinary user (nobody, when the tests run as
/// root).
fn compress_resumes_mid_way(
    compressor: &str,
    args: &[&str],
    suffix: &str,
    decompress: &str,
    nobody: bool,
) {
    let Some(program) = tool(compressor) else {
        return;
    };
    if nobody && running_as_root() && tool("setpriv").is_none() {
        return;
    }
    let dir = TempDir::new(&format!("files-real-{compressor}"));
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let as_user = |command: Command| if nobody { as_nobody(command) } else { command };
    std::fs::write(dir.join("big.txt"), text(16 << 20, 7)).expect("write the input");
    let output = dir.join(format!("big.txt.{suffix}"));
    let expected = dir.join(format!("expected.{suffix}"));
    let mut all: Vec<&str> = args.to_vec();
    all.push("big.txt");

    let first = plain(&dir, &program, &all, &[]);
    if !first.status.success() {
        first.fail(compressor, "the uninterrupted run failed");
    }
    std::fs::rename(&output, &expected).expect("keep the uninterrupted output");
    let full = size(&expected);

    let image = dir.join(format!("{compressor}.ckpt"));
    let command = ckpt_command_with(ckpt.as_deref().unwrap_or(&ckpt_bin()), &dir, &program, &all);
    let mut proc = Proc::spawn(as_user(command), &format!("ckpt {compressor}"));
    wait_for_progress(&mut proc, "64 KiB of output", || size(&output) >= 64 << 10);
    checkpoint_mid_way(&mut proc, &image);
    let at_checkpoint = size(&output);
    assert!(
        at_checkpoint < full,
        "{compressor} had written all {full} bytes by the checkpoint: proves nothing"
    );
    let label = format!("{compressor}.ckpt (the restart)");
    let restarted = run_to_end(as_user(restart_command(&dir, &image)), &label, LONG);
    if !restarted.status.success() || !restarted.stderr.is_empty() {
        restarted.fail(&label, "expected exit status 0 and nothing on stderr");
    }
    same_bytes(&output, &expected);

    let mut check = Command::new("sh");
    check
        .arg("-c")
        .arg(format!(
            "{decompress} < big.txt.{suffix} | cmp - big.txt && echo same"
        ))
        .current_dir(dir.path());
    let check = run_to_end(check, "decompress and compare", LONG);
    assert_eq!(check.stdout.trim(), "same", "{}", check.stderr);
}

/// `xz -T1 -1 -k big.txt`, checkpointed with part of big.txt.xz written and restarted,
/// writes the same bytes as an uninterrupted run.
#[test]
fn xz_single_threaded_file_to_file_resumes_mid_way() {
    compress_resumes_mid_way("xz", &["-T1", "-1", "-k", "-q"], "xz", "xz -dc", false);
}

/// `zstd --single-thread -12 big.txt` (one thread for compression and I/O), checkpointed
/// with part of big.txt.zst written and restarted, writes the same bytes as an
/// uninterrupted run.
#[test]
fn zstd_single_threaded_file_to_file_resumes_mid_way() {
    compress_resumes_mid_way(
        "zstd",
        &["--single-thread", "-12", "-q"],
        "zst",
        "zstd -dc",
        false,
    );
}

/// `zstd -T1 -12 big.txt`: one compression worker, and threads that read and write the
/// files (four threads in all with zstd 1.5.4); likewise.
#[test]
fn zstd_t1_file_to_file_resumes_mid_way() {
    compress_resumes_mid_way("zstd", &["-T1", "-12", "-q"], "zst", "zstd -dc", false);
}

/// `bzip2 -k big.txt` (in place, keeping the input), checkpointed with part of big.txt.bz2
/// written and restarted, writes the same bytes as an uninterrupted run, which decompress
/// to the original.
#[test]
fn bzip2_in_place_resumes_mid_way() {
    compress_resumes_mid_way("bzip2", &["-k", "-q"], "bz2", "bzip2 -dc", false);
}

/// As `bzip2_in_place_resumes_mid_way`, checkpointed and restarted as an ordinary user.
#[test]
fn bzip2_in_place_resumes_mid_way_as_nobody() {
    compress_resumes_mid_way("bzip2", &["-k", "-q"], "bz2", "bzip2 -dc", true);
}

/// `sort -S 1M -o sorted.txt` of a 16 MB file, with TMPDIR in the test's directory,
/// checkpointed while it spills sorted runs to temporary files and restarted (with
/// `CKPT_RESTORE_STDIO=1` when `restore_stdio`): it merges them into the output an
/// uninterrupted sort writes, and removes them. sort opens sorted.txt at its start and moves
/// it onto its standard output.
fn sort_resumes_while_spilling(restore_stdio: bool) {
    let Some(sort) = tool("sort") else { return };
    let dir = TempDir::new("files-real-sort");
    std::fs::write(dir.join("big.txt"), text(16 << 20, 11)).expect("write the input");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).expect("create tmp");
    let tmp_str = tmp.to_str().expect("a UTF-8 path");
    let env = [("LC_ALL", "C"), ("TMPDIR", tmp_str)];

    let first = plain(
        &dir,
        &sort,
        &["-S", "1M", "-o", "expected.txt", "big.txt"],
        &env,
    );
    if !first.status.success() {
        first.fail("sort", "the uninterrupted run failed");
    }

    let image = dir.join("sort.ckpt");
    let mut command = ckpt_command(&dir, &sort, &["-S", "1M", "-o", "sorted.txt", "big.txt"]);
    command.envs(env);
    let mut proc = Proc::spawn(command, "ckpt sort -S 1M");
    let spilled = || std::fs::read_dir(&tmp).map_or(0, |d| d.count());
    wait_for_progress(&mut proc, "three temporary files", || spilled() >= 3);
    checkpoint_mid_way(&mut proc, &image);
    assert_eq!(
        size(&dir.join("sorted.txt")),
        0,
        "sort had begun its output by the checkpoint: it was not spilling any more"
    );
    let left = spilled();
    assert!(
        left >= 3,
        "the checkpoint left {left} temporary files of the 3 or more seen"
    );
    let label = "sort.ckpt (the restart)";
    let mut command = restart_command(&dir, &image);
    if restore_stdio {
        command.env("CKPT_RESTORE_STDIO", "1");
    }
    let restarted = run_to_end(command, label, LONG);
    // Not `Finished::fail`, which would show megabytes of sorted lines.
    assert!(
        restarted.status.success() && restarted.stderr.is_empty() && restarted.stdout.is_empty(),
        "{label}: {}, sorted.txt has {} bytes, {} bytes went to the restart's standard output \
         (expected none), stderr: {:?}",
        describe_status(restarted.status),
        size(&dir.join("sorted.txt")),
        restarted.stdout.len(),
        restarted.stderr
    );
    same_bytes(&dir.join("sorted.txt"), &dir.join("expected.txt"));
    assert_eq!(spilled(), 0, "sort left temporary files in {tmp_str}");
}

/// With `CKPT_RESTORE_STDIO=1` the restart puts sorted.txt back on sort's standard output.
#[test]
fn sort_spilling_to_temporary_files_resumes_mid_way() {
    sort_resumes_while_spilling(true);
}

/// Without `CKPT_RESTORE_STDIO` too: sort put sorted.txt on its standard output itself, so
/// that descriptor is saved like any other, not replaced by the restart's own (which once
/// sent the sorted lines to the restart's output and left sorted.txt empty, exit status 0).
#[test]
fn sort_dash_o_writes_its_file_after_a_plain_restart() {
    sort_resumes_while_spilling(false);
}

/// The paths the open descriptors of process `pid` name.
fn fd_paths(pid: i32) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect()
}

/// `md5sum f1 … f5` (64 MB each, sparse), checkpointed while it reads the third file and
/// restarted, prints the sums of the other three after the two it printed before: the five
/// an uninterrupted run prints.
#[test]
fn md5sum_of_several_files_resumes_between_files() {
    let Some(md5sum) = tool("md5sum") else {
        return;
    };
    let dir = TempDir::new("files-real-md5sum");
    let names: Vec<String> = (1..=5).map(|i| format!("f{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let f = std::fs::File::create(dir.join(name)).expect("create");
        f.set_len(64 << 20).expect("set_len");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(name))
            .expect("open");
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start((i as u64 + 1) << 20)).expect("seek");
        f.write_all(format!("file {i}").as_bytes()).expect("write");
    }
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let expected = plain(&dir, &md5sum, &args, &[]);
    if !expected.status.success() {
        expected.fail("md5sum", "the uninterrupted run failed");
    }

    let image = dir.join("md5sum.ckpt");
    let mut proc = Proc::spawn(ckpt_command(&dir, &md5sum, &args), "ckpt md5sum f1 … f5");
    let pid = proc.pid();
    let third = dir.join("f3");
    wait_for_progress(&mut proc, "f3 open", || fd_paths(pid).contains(&third));
    checkpoint_mid_way(&mut proc, &image);
    // What md5sum printed before the checkpoint, then what its restart printed: together
    // the five sums, once each.
    proc.rest_of_output();
    let before: String = proc.seen().iter().map(|l| format!("{l}\n")).collect();
    assert!(
        !before.contains("  f3\n"),
        "md5sum was done with f3 by the checkpoint: {before:?}"
    );
    let restarted = restart_to_end(&dir, &image);
    assert_eq!(before + &restarted.stdout, expected.stdout);
}

/// `tar cf out.tar` of a 5 MB tree, with fixed owners, times and order, checkpointed while
/// it sleeps at its own progress checkpoint (`--checkpoint=300`: 3 MB in) and restarted,
/// writes the archive an uninterrupted run writes.
#[test]
fn tar_of_a_tree_resumes_mid_archive() {
    let Some(tar) = tool("tar") else { return };
    let dir = TempDir::new("files-real-tar");
    let mut seed = 3;
    for d in 0..8 {
        let sub = dir.join(format!("tree/d{d}/sub"));
        std::fs::create_dir_all(&sub).expect("create the tree");
        for f in 0..5 {
            seed += 1;
            let path = if f % 2 == 0 {
                dir.join(format!("tree/d{d}/f{f}.txt"))
            } else {
                sub.join(format!("f{f}.txt"))
            };
            std::fs::write(path, text(128 << 10, seed)).expect("write a file");
        }
    }
    let fixed = [
        "--sort=name",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--format=gnu",
    ];
    let mut uninterrupted = vec!["cf", "expected.tar"];
    uninterrupted.extend(fixed);
    uninterrupted.push("tree");
    let first = plain(&dir, &tar, &uninterrupted, &[]);
    if !first.status.success() {
        first.fail("tar", "the uninterrupted run failed");
    }

    // tar's own progress checkpoint: after 300 records it says so on stderr and sleeps a
    // second (a second after the restart too), which is when ckpt checkpoints it.
    let mut args = vec![
        "cf",
        "out.tar",
        "--checkpoint=300",
        "--checkpoint-action=echo=at %u",
        "--checkpoint-action=sleep=1",
    ];
    args.extend(fixed);
    args.push("tree");
    let image = dir.join("tar.ckpt");
    let mut proc = Proc::spawn(ckpt_command(&dir, &tar, &args), "ckpt tar cf out.tar");
    proc.wait_stderr("tar: at 300", LONG);
    checkpoint_mid_way(&mut proc, &image);
    let at_checkpoint = size(&dir.join("out.tar"));
    let full = size(&dir.join("expected.tar"));
    assert!(
        at_checkpoint > 0 && at_checkpoint < full,
        "out.tar had {at_checkpoint} of {full} bytes at the checkpoint: not mid-way"
    );
    let label = "tar.ckpt (the restart)";
    let restarted = run_to_end(restart_command(&dir, &image), label, LONG);
    if !restarted.status.success() {
        restarted.fail(label, "expected exit status 0");
    }
    // Only tar's own progress lines may follow.
    if restarted.stderr.lines().any(|l| !l.starts_with("tar: at ")) {
        restarted.fail(label, "expected only tar's progress lines on stderr");
    }
    same_bytes(&dir.join("out.tar"), &dir.join("expected.tar"));
}

/// `find /usr -fprint out.txt`, checkpointed once 64 KiB of its list are written (it is then
/// deep in the walk, directories open) and restarted, writes the list an uninterrupted run
/// writes. (/usr is not written while the tests run; the list is some megabytes.)
#[test]
fn find_usr_to_a_file_resumes_mid_walk() {
    let Some(find) = tool("find") else { return };
    let dir = TempDir::new("files-real-find");
    let first = plain(&dir, &find, &["/usr", "-fprint", "expected.txt"], &[]);
    let out = dir.join("out.txt");
    let image = dir.join("find.ckpt");
    let mut proc = Proc::spawn(
        ckpt_command(&dir, &find, &["/usr", "-fprint", "out.txt"]),
        "ckpt find /usr",
    );
    wait_for_progress(&mut proc, "64 KiB of output", || size(&out) >= 64 << 10);
    checkpoint_mid_way(&mut proc, &image);
    let at_checkpoint = size(&out);
    let full = size(&dir.join("expected.txt"));
    assert!(
        at_checkpoint < full,
        "find had written all {full} bytes by the checkpoint: proves nothing"
    );
    // As the uninterrupted run: the same status, the same complaints (none but unreadable
    // directories, for an ordinary user) and no more.
    let label = "find.ckpt (the restart)";
    let restarted = run_to_end(restart_command(&dir, &image), label, LONG);
    if restarted.status.code() != first.status.code() || restarted.stderr != first.stderr {
        restarted.fail(
            label,
            &format!(
                "expected {} and stderr {:?}",
                describe_status(first.status),
                first.stderr
            ),
        );
    }
    same_bytes(&out, &dir.join("expected.txt"));
}

/// A ruby loop reading a file a line per round and appending each to another, checkpointed
/// after 20 rounds and restarted, goes on at the next line and writes after the last: the
/// copy holds every line once, in order. (Ruby keeps a descriptor for its timer thread: an
/// eventfd where the system has them, else a pipe.)
#[test]
fn ruby_loop_copying_a_file_resumes_at_its_line() {
    let Some(ruby) = tool("ruby") else { return };
    let dir = TempDir::new("files-real-ruby");
    std::fs::write(dir.join("loop.rb"), FILES_LOOP_RB).expect("write loop.rb");
    let lines: Vec<String> = (1..=120).map(|i| format!("line {}", i * 7)).collect();
    std::fs::write(dir.join("words.txt"), lines.join("\n") + "\n").expect("write words.txt");
    let image = dir.join("ruby.ckpt");
    let mut proc = Proc::spawn(
        ckpt_command(&dir, &ruby, &["loop.rb", "words.txt", "copy.txt"]),
        "ckpt ruby loop.rb",
    );
    proc.wait_line("ready");
    proc.wait_line("ok 20");
    checkpoint_mid_way(&mut proc, &image);
    proc.rest_of_output();
    let last = proc.last_number_after("ok ");
    if proc.seen().iter().any(|l| l == "done") {
        proc.fail("finished before the checkpoint: proves nothing");
    }
    let mut restarted = Proc::spawn(restart_command(&dir, &image), "ruby.ckpt");
    restarted.wait_success(LONG);
    restarted.rest_of_output();
    let expected: Vec<String> = (last + 1..=120)
        .map(|n| format!("ok {n}"))
        .chain(std::iter::once("done".to_string()))
        .collect();
    if restarted.seen() != expected {
        let seen = restarted.seen().len();
        restarted.fail(&format!(
            "expected ok {} … ok 120 and done, {} lines, got {seen}",
            last + 1,
            expected.len()
        ));
    }
    if !restarted.stderr().is_empty() {
        restarted.fail("expected nothing on stderr");
    }
    let copy = std::fs::read_to_string(dir.join("copy.txt")).expect("read copy.txt");
    let want: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{} {l}\n", i + 1))
        .collect();
    assert_eq!(copy, want, "copy.txt is not every line once, in order");
}

/// `GET path` from 127.0.0.1:`port`, HTTP/1.0: the whole answer, or the error.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Fails unless `answer` is a 200 with `body`.
#[track_caller]
fn expect_served(answer: &str, body: &str, when: &str) {
    assert!(
        answer.starts_with("HTTP/1.0 200") && answer.ends_with(body),
        "{when}: {answer:?}"
    );
}

/// `python3 -m http.server` on an ephemeral port, checkpointed after answering a request
/// and restarted, answers the next request on the same port with the same file. Needs its
/// listening socket saved and made again.
#[test]
fn python_http_server_answers_after_a_restart() {
    let Some(python) = python3() else { return };
    let dir = TempDir::new("files-real-http");
    let body = "hello from before the checkpoint\n";
    std::fs::write(dir.join("hello.txt"), body).expect("write hello.txt");
    let image = dir.join(format!(
        "{}.ckpt",
        python.file_name().expect("a name").to_string_lossy()
    ));
    let mut proc = Proc::spawn(
        ckpt_command(
            &dir,
            &python,
            &["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        ),
        "ckpt python3 -m http.server",
    );
    let serving = proc.wait_line_matching("the Serving line", LONG, |l| {
        l.starts_with("Serving HTTP on")
    });
    let port: u16 = serving
        .split_whitespace()
        .skip_while(|&w| w != "port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| proc.fail(&format!("no port in {serving:?}")));
    match http_get(port, "/hello.txt") {
        Ok(answer) => expect_served(&answer, body, "before the checkpoint"),
        Err(e) => proc.fail(&format!("GET before the checkpoint: {e}")),
    }
    checkpoint_mid_way(&mut proc, &image);

    let mut restarted = Proc::spawn(restart_command(&dir, &image), "the restarted http.server");
    // No line says when the socket listens again: try to connect, within a bounded time.
    let deadline = Instant::now() + LONG;
    let answer = loop {
        match http_get(port, "/hello.txt") {
            Ok(answer) => break answer,
            Err(e) if Instant::now() > deadline || ended(&restarted) => {
                restarted.fail(&format!("GET after the restart: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    expect_served(&answer, body, "after the restart");
    restarted.kill();
}
