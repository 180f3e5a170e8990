//! A sweep of single damages over one real checkpoint of the counter, everywhere after its
//! first `elf::PREFIX_SIZE` bytes (the ELF header, the entry check and the program headers,
//! which run before anything can check them): the rest of the first page and every page of
//! the restart stub at a small stride, the header, the tables, a deterministic pseudo-random
//! sample of the whole file, and whole pages zeroed.
//!
//! For each damaged file the restart must either refuse it — exit with a documented status
//! and one `ckpt restart:` line, with `ckpt verify` giving the same status — or, when the
//! damage hit bytes nobody reads, continue the count exactly where it stopped, with `verify`
//! saying ok. Never a signal, a hang, an exec failure or stray output.

use std::io::Read;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use ckpt_image::{elf, ImageHeader, PAGE_SIZE, STUB_FILE_OFFSET};
use ckpt_tests::*;

mod damaged;
use damaged::Base;

/// One damage, at a file offset.
#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipBit(usize, u8),
    Invert(usize),
    ZeroByte(usize),
    /// Zero the bytes from the first offset to the second (at most a page, within one).
    ZeroPage(usize, usize),
}

impl Damage {
    fn range(self) -> std::ops::Range<usize> {
        match self {
            Damage::FlipBit(at, _) | Damage::Invert(at) | Damage::ZeroByte(at) => at..at + 1,
            Damage::ZeroPage(start, end) => start..end,
        }
    }

    /// Damages `bytes`, the undamaged bytes of `self.range()`.
    fn apply(self, bytes: &mut [u8]) {
        match self {
            Damage::FlipBit(_, bit) => bytes[0] ^= 1 << bit,
            Damage::Invert(_) => bytes[0] ^= 0xff,
            Damage::ZeroByte(_) | Damage::ZeroPage(..) => bytes.fill(0),
        }
    }
}

/// The damages to try, in file order within each group.
fn damages(base: &Base) -> Vec<Damage> {
    let len = base.bytes.len();
    let header = base.header_offset;
    let tables = base.header.tables_offset as usize;
    let page = PAGE_SIZE as usize;
    let stub = STUB_FILE_OFFSET as usize;
    let mut out = Vec::new();
    let mut n = 0u8;
    let mut varied = |at: usize| {
        n = n.wrapping_add(1);
        if n.is_multiple_of(3) {
            Damage::Invert(at)
        } else {
            Damage::FlipBit(at, n % 8)
        }
    };

    // The rest of the first page (zeros nobody but the entry check reads) and the stub,
    // including its relocated words; the stride is odd so that every byte of a word is hit.
    for at in (elf::PREFIX_SIZE..stub).step_by(251).chain([stub - 1]) {
        out.push(varied(at));
    }
    for at in (stub..header).step_by(61).chain([header - 1]) {
        out.push(varied(at));
    }
    for at in base.relocated_words().into_iter().step_by(7) {
        out.push(varied(at + 3));
    }
    // The image header, a byte of each field or two, and the rest of its page.
    for at in (header..header + std::mem::size_of::<ImageHeader>()).step_by(5) {
        out.push(varied(at));
    }
    out.push(varied(header + page / 2));
    out.push(varied(header + page - 1));
    // The tables.
    for at in (tables..len).step_by(173).chain([len - 1]) {
        out.push(varied(at));
    }
    // Each extent's first byte (a compressed extent's first frame header) and a raw one's
    // last byte.
    for e in &base.extents {
        let at = e.file_offset as usize;
        out.push(varied(at));
        if e.flags & ckpt_image::EXTENT_LZ4 == 0 {
            out.push(varied(at + e.len as usize - 1));
        }
    }
    // Anywhere after the prefix: a fixed pseudo-random sample.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = elf::PREFIX_SIZE + (x % (len - elf::PREFIX_SIZE) as u64) as usize;
        out.push(match i % 3 {
            0 => Damage::ZeroByte(at),
            1 => Damage::FlipBit(at, (x >> 40) as u8 % 8),
            _ => Damage::Invert(at),
        });
    }
    // Whole pages zeroed: the first page after the prefix, every stub page, the header,
    // every sixteenth page of the payload and the tables' pages.
    let whole_page = |at: usize| Damage::ZeroPage(at, (at / page * page + page).min(len));
    out.push(whole_page(elf::PREFIX_SIZE));
    for at in (stub..header + page).step_by(page) {
        out.push(whole_page(at));
    }
    for at in (header + page..tables).step_by(16 * page) {
        out.push(whole_page(at));
    }
    for at in (tables / page * page..len).step_by(page) {
        out.push(whole_page(at.max(tables)));
    }
    out
}

/// What running a damaged checkpoint did.
enum Outcome {
    /// The kernel would not execute it.
    NotExecuted(std::io::Error),
    /// It printed a first line (and was then killed): the restart went through.
    Continued(String),
    Exited {
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
}

/// Runs the checkpoint at `path` until it exits or prints its first line, for at most
/// `TIMEOUT`.
fn run_checkpoint(base: &Base, path: &Path, label: &str) -> Outcome {
    let mut command = restart_command(&base.dir, path);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match try_spawn(&mut command) {
        Ok(child) => child,
        Err(e) => return Outcome::NotExecuted(e),
    };
    let (sender, chunks) = mpsc::channel::<Vec<u8>>();
    let mut stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if sender.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });

    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    let mut stdout_open = true;
    let outcome = loop {
        if stdout_open {
            match chunks.recv_timeout(Duration::from_millis(2)) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stdout_open = false,
            }
        } else {
            std::thread::sleep(Duration::from_millis(2));
        }
        if out.contains(&b'\n') {
            let _ = child.kill();
            let _ = child.wait();
            break Outcome::Continued(String::from_utf8_lossy(&out).into_owned());
        }
        if let Some(status) = child.try_wait().expect("waitpid") {
            // Whatever it wrote before it exited is in the pipe.
            while let Ok(chunk) = chunks.recv_timeout(TIMEOUT) {
                out.extend_from_slice(&chunk);
            }
            let stderr = stderr_reader.join().expect("stderr reader");
            break Outcome::Exited {
                status,
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{label}: neither exited nor printed within {TIMEOUT:?} (output {out:?})");
        }
    };
    outcome
}

/// Whether `stdout` is the counter going on from `last`: complete lines `last + 1`,
/// `last + 2`, …, and at most the start of the next one.
fn continues_count(stdout: &str, last: u64) -> bool {
    let mut lines: Vec<&str> = stdout.split('\n').collect();
    let partial = lines.pop().unwrap_or("");
    let mut next = last + 1;
    for line in lines {
        if line != next.to_string() {
            return false;
        }
        next += 1;
    }
    next.to_string().starts_with(partial)
}

/// Runs one damaged file and `ckpt verify` on it; returns what the restart did ("went
/// through" or its exit status), or what went wrong.
fn check(base: &Base, path: &Path, damage: Damage) -> Result<String, String> {
    let label = format!("[{damage:?}]");
    let verify = run_to_end(
        ckpt_tool(&base.dir, &[Path::new("verify"), path]),
        &format!("{label} ckpt verify"),
        TIMEOUT,
    );
    let verified = verify.status.code();
    match run_checkpoint(base, path, &label) {
        Outcome::NotExecuted(e) => Err(format!("{label}: the kernel did not execute it: {e}")),
        Outcome::Continued(stdout) => {
            if !continues_count(&stdout, base.last) {
                Err(format!(
                    "{label}: restart printed {stdout:?}, not the count from {}",
                    base.last + 1
                ))
            } else if verified != Some(0) {
                Err(format!(
                    "{label}: the restart went through, but ckpt verify said {}: {:?}",
                    describe_status(verify.status),
                    verify.stderr
                ))
            } else {
                Ok("went through".into())
            }
        }
        Outcome::Exited {
            status,
            stdout,
            stderr,
        } => {
            if status.signal().is_some() || status.code() == Some(0) {
                Err(format!(
                    "{label}: restart ended with {}; stdout {stdout:?} stderr {stderr:?}",
                    describe_status(status)
                ))
            } else if !stdout.is_empty() {
                Err(format!("{label}: refused restart printed {stdout:?}"))
            } else if stderr.lines().count() != 1 || !stderr.starts_with("ckpt restart: ") {
                Err(format!(
                    "{label}: restart ({}) did not print one `ckpt restart:` line: {stderr:?}",
                    describe_status(status)
                ))
            } else if verified != status.code() {
                Err(format!(
                    "{label}: restart exited {} ({:?}) but ckpt verify said {} ({:?})",
                    describe_status(status),
                    stderr.trim_end(),
                    describe_status(verify.status),
                    verify.stderr.trim_end()
                ))
            } else {
                Ok(format!("exit {}", status.code().unwrap_or(-1)))
            }
        }
    }
}

#[test]
fn no_damage_after_the_prefix_kills_hangs_or_garbles_a_restart() {
    let started = Instant::now();
    let base = Base::new("damage-sweep");
    let damages = damages(&base);
    // One file, damaged in place and mended after each case (writing a fresh copy of the
    // whole checkpoint per case would cost more than running it).
    let path = base.dir.join("damaged.ckpt");
    std::fs::write(&path, &base.bytes).expect("write the copy");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut problems = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for &damage in &damages {
        let range = damage.range();
        let mut bytes = base.bytes[range.clone()].to_vec();
        damage.apply(&mut bytes);
        {
            // Closed before the run: an executable open for writing cannot be executed.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open the copy");
            file.write_all_at(&bytes, range.start as u64)
                .expect("damage");
        }
        match check(&base, &path, damage) {
            Ok(outcome) => *outcomes.entry(outcome).or_default() += 1,
            Err(problem) => problems.push(problem),
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open the copy");
        file.write_all_at(&base.bytes[range.clone()], range.start as u64)
            .expect("mend");
    }
    eprintln!(
        "{} damages in {:.1} s: {outcomes:?}",
        damages.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} of {} damages misbehaved:\n{}",
        problems.len(),
        damages.len(),
        problems.join("\n")
    );
}
