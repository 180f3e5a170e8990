//! Damaged checkpoint files: one real checkpoint of the counter, and many variants of it —
//! truncated, bit-flipped in the ELF header, the image header, each table and the payload,
//! garbage, empty, an ELF that is not a checkpoint. Each is run (it must exit with the
//! documented status and a one-line `ckpt restart:` reason, never be killed, never hang,
//! never print the counter's output) and checked with `ckpt verify` and `ckpt info`, which
//! must give the same status. `ckpt info` reads only the ELF prefix's `PT_CKPT`, the header
//! and the tables, so it accepts damage to the restart stub and to the payload (it describes
//! the file; `verify` checks it).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ckpt_image::{elf, ImageHeader, HEADER_SPACE, REGION_SIZE, STUB_FILE_OFFSET};
use ckpt_tests::*;

mod damaged;
use damaged::Base;

/// What running a damaged file must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// The restart stub runs and exits with this status and one `ckpt restart:` line.
    Status(i32),
    /// The stub is not intact (or the file is no ELF at all): the kernel refuses to execute
    /// it, or kills it while loading, before any of its code runs. Nothing is printed.
    KernelRefuses,
    /// Not run (a copy of /bin/true would just succeed).
    Skipped,
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// The status of `ckpt verify` (and of the restart, unless `run` says otherwise).
    verify: i32,
    /// The status of `ckpt info`.
    info: i32,
    run: Run,
    /// A string the verify and restart messages must contain (the damaged extent's address).
    names: Option<String>,
}

/// Deterministic pseudo-random bytes that are neither ELF nor a `#!` script.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    if let Some(first) = out.first_mut() {
        *first = b'G';
    }
    out
}

fn cases(base: &Base) -> Vec<Case> {
    let h = base.header_offset;
    let file_len = base.bytes.len();
    let payload_start = h + HEADER_SPACE as usize;
    let tables_start = base.header.tables_offset as usize;
    let mut cases = Vec::new();
    let mut add = |name: String, bytes: Vec<u8>, verify: i32, info: i32, run: Run| {
        cases.push(Case {
            name,
            bytes,
            verify,
            info,
            run,
            names: None,
        })
    };

    // Truncations. Cut before the end of the program headers (which follow the length
    // check at the entry point), the file cannot be executed at all; from there on the
    // length check refuses it, even when the stub itself is cut.
    for len in [0usize, 1, 63, 64, elf::PHDRS_AT, elf::PREFIX_SIZE - 1] {
        let expect = if len == 0 { 65 } else { 69 };
        add(
            format!("truncated to {len}"),
            base.bytes[..len].to_vec(),
            expect,
            expect,
            Run::KernelRefuses,
        );
    }
    for len in [elf::PREFIX_SIZE, 4095, 4096, 4096 + 100] {
        add(
            format!("truncated inside the stub ({len})"),
            base.bytes[..len].to_vec(),
            69,
            69,
            Run::Status(69),
        );
    }
    for (what, len) in [
        ("at the header", h),
        ("header offset + 10", h + 10),
        ("mid-payload", (payload_start + tables_start) / 2),
        ("inside the tables", tables_start + 8),
        ("file_len - 1", file_len - 1),
    ] {
        add(
            format!("truncated {what} ({len})"),
            base.bytes[..len].to_vec(),
            69,
            69,
            Run::Status(69),
        );
    }

    // The ELF header and the PT_CKPT program header.
    add(
        "ELF magic flipped".into(),
        base.flip(1, 0),
        65,
        65,
        Run::KernelRefuses,
    );
    let ckpt_phdr = elf::PHDRS_AT + (elf::PHDR_COUNT - 1) * elf::PHDR_SIZE;
    add(
        "PT_CKPT type flipped".into(),
        base.flip(ckpt_phdr, 2),
        65,
        65,
        Run::Status(65),
    );
    add(
        "PT_CKPT offset flipped".into(),
        base.flip(ckpt_phdr + 8, 3),
        65,
        65,
        Run::Status(65),
    );

    // The restart stub and the rest of the first page, which the entry check verifies
    // before it jumps into the stub (zeroing the page at 12288 used to end in SIGSEGV).
    let stub = STUB_FILE_OFFSET as usize;
    let relocated = *base
        .relocated_words()
        .last()
        .expect("the stub has relocated words");
    for (what, bytes) in [
        (
            "first byte after the prefix",
            base.flip(elf::PREFIX_SIZE, 0),
        ),
        ("last byte of the first page", base.flip(stub - 1, 7)),
        ("stub entry flipped", base.flip(stub, 3)),
        ("stub text flipped", base.flip(stub + 0x1234, 5)),
        (
            "stub page at 12288 zeroed",
            base.with(|b| b[12288..16384].fill(0)),
        ),
        ("stub relocated word flipped", base.flip(relocated + 1, 2)),
        ("last byte of the stub's page", base.flip(h - 1, 1)),
    ] {
        add(format!("stub: {what}"), bytes, 68, 0, Run::Status(68));
    }

    // The image header, field by field (a flip is caught before anything is used).
    use std::mem::offset_of;
    for (field, offset, expect) in [
        ("magic", offset_of!(ImageHeader, magic), 65),
        ("version", offset_of!(ImageHeader, version), 66),
        ("arch", offset_of!(ImageHeader, arch), 67),
        ("header_size", offset_of!(ImageHeader, header_size), 68),
        ("header_crc", offset_of!(ImageHeader, header_crc), 68),
        ("file_len", offset_of!(ImageHeader, file_len), 68),
        ("tables_offset", offset_of!(ImageHeader, tables_offset), 68),
        ("tables_crc", offset_of!(ImageHeader, tables_crc), 68),
        ("region_count", offset_of!(ImageHeader, region_count), 68),
        ("stub_base", offset_of!(ImageHeader, stub_base) + 5, 68),
        ("mm", offset_of!(ImageHeader, mm) + 8, 68),
        ("taken_at", offset_of!(ImageHeader, taken_at), 68),
        ("pid", offset_of!(ImageHeader, pid), 68),
        ("stub_sum", offset_of!(ImageHeader, stub_sum) + 3, 68),
    ] {
        add(
            format!("header {field} flipped"),
            base.flip(base.header_field(offset), 1),
            expect,
            expect,
            Run::Status(expect),
        );
    }
    for version in [
        ckpt_image::FORMAT_VERSION - 1,
        ckpt_image::FORMAT_VERSION + 1,
    ] {
        add(
            format!("header version {version}, checksum recomputed"),
            base.with_header(|hd| hd.version = version),
            66,
            66,
            Run::Status(66),
        );
    }
    add(
        "header arch 183, checksum recomputed".into(),
        base.with_header(|hd| hd.arch = 183),
        67,
        67,
        Run::Status(67),
    );
    add(
        "header file_len + 4096, checksum recomputed".into(),
        base.with_header(|hd| hd.file_len += 4096),
        69,
        69,
        Run::Status(69),
    );

    // Each table.
    let l = base.layout;
    let mut tables = vec![
        ("regions", l.regions, l.extents),
        ("extents", l.extents, l.threads),
        ("thread", l.threads, l.sigactions),
        ("sigactions", l.sigactions, l.auxv),
        ("auxv", l.auxv, l.names),
        ("names", l.names, l.total),
    ];
    tables.retain(|(_, start, end)| end > start);
    for (table, start, end) in tables {
        let middle = base.table((start + end) / 2);
        add(
            format!("{table} table flipped"),
            base.flip(middle, 4),
            70,
            70,
            Run::Status(70),
        );
    }
    // Consistent checksums, impossible contents: the second region starts inside the first.
    add(
        "regions overlap, checksums recomputed".into(),
        base.with_tables(|t| {
            let second = base.layout.regions + REGION_SIZE;
            let start = base.regions[0].start.to_le_bytes();
            t[second..second + 8].copy_from_slice(&start);
        }),
        71,
        71,
        Run::Status(71),
    );

    // Payload pages of the stack and of the heap.
    for (what, flag) in [
        ("stack", ckpt_image::region_flags::STACK),
        ("heap", ckpt_image::region_flags::HEAP),
    ] {
        let extent = base.extent_of(flag);
        let at = extent.file_offset as usize + 100;
        cases.push(Case {
            name: format!("{what} payload flipped"),
            bytes: base.flip(at, 6),
            verify: 75,
            info: 0,
            run: Run::Status(75),
            names: Some(format!("{:#x}", extent.addr)),
        });
    }

    // Not checkpoints at all.
    for (len, seed) in [
        (1usize, 1u64),
        (100, 2),
        (4096, 3),
        (10_000, 4),
        (300_000, 5),
    ] {
        cases.push(Case {
            name: format!("garbage of {len} bytes"),
            bytes: garbage(len, seed),
            verify: 65,
            info: 65,
            run: Run::KernelRefuses,
            names: None,
        });
    }
    cases.push(Case {
        name: "empty file".into(),
        bytes: Vec::new(),
        verify: 65,
        info: 65,
        run: Run::KernelRefuses,
        names: None,
    });
    let true_bin = ["/bin/true", "/usr/bin/true"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("/bin/true exists");
    cases.push(Case {
        name: "a copy of /bin/true".into(),
        bytes: std::fs::read(true_bin).expect("read /bin/true"),
        verify: 65,
        info: 65,
        run: Run::Skipped,
        names: None,
    });
    cases
}

/// What a run of a damaged file did.
enum Ran {
    Refused(std::io::Error),
    Finished(Finished),
}

/// Runs `path` with a timeout; an exec error (ENOEXEC) is an outcome, not a failure.
fn run_file(dir: &TempDir, path: &Path, label: &str) -> Ran {
    let mut command = restart_command(dir, path);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match try_spawn(&mut command) {
        Ok(child) => child,
        Err(e) => return Ran::Refused(e),
    };
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait().expect("waitpid") {
            Some(status) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{label}: did not exit within {TIMEOUT:?}");
            }
        }
    };
    let output = child.wait_with_output().expect("collect output");
    Ran::Finished(Finished {
        status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

fn check_case(base: &Base, index: usize, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let path: PathBuf = base.dir.join(format!("damaged-{index}.ckpt"));
    std::fs::write(&path, &case.bytes).expect("write damaged file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let label = format!("[{}]", case.name);
    let shown = path.display().to_string();

    // ckpt verify
    let verify = run_to_end(
        ckpt_tool(&base.dir, &[Path::new("verify"), &path]),
        &format!("{label} ckpt verify"),
        TIMEOUT,
    );
    let prefix = format!("ckpt verify: {shown}: ");
    if verify.status.code() != Some(case.verify) {
        problems.push(format!(
            "{label} ckpt verify: expected status {}, got {}; stderr {:?}",
            case.verify,
            describe_status(verify.status),
            verify.stderr
        ));
    } else if verify.stderr.lines().count() != 1 || !verify.stderr.starts_with(&prefix) {
        problems.push(format!(
            "{label} ckpt verify: expected one line starting {prefix:?}, got {:?}",
            verify.stderr
        ));
    } else if let Some(address) = &case.names {
        if !verify.stderr.contains(address.as_str()) {
            problems.push(format!(
                "{label} ckpt verify does not name {address}: {:?}",
                verify.stderr
            ));
        }
    }

    // ckpt info
    let info = run_to_end(
        ckpt_tool(&base.dir, &[Path::new("info"), &path]),
        &format!("{label} ckpt info"),
        TIMEOUT,
    );
    if info.status.code() != Some(case.info) {
        problems.push(format!(
            "{label} ckpt info: expected status {}, got {}; stderr {:?}",
            case.info,
            describe_status(info.status),
            info.stderr
        ));
    } else if case.info != 0 && !info.stderr.starts_with(&format!("ckpt info: {shown}: ")) {
        problems.push(format!("{label} ckpt info: bad message {:?}", info.stderr));
    }

    // Running it.
    match (case.run, run_file(&base.dir, &path, &label)) {
        (Run::Skipped, _) => {}
        (Run::KernelRefuses, Ran::Refused(e)) if e.raw_os_error() == Some(libc::ETXTBSY) => {
            problems.push(format!("{label}: still busy: {e}"))
        }
        (Run::KernelRefuses, Ran::Refused(_)) => {}
        (Run::KernelRefuses, Ran::Finished(f)) => {
            // The kernel may get as far as loading it and then kill it: no code of the file
            // ran, nothing is printed.
            let killed_by_loader = matches!(f.status.signal(), Some(libc::SIGSEGV | libc::SIGBUS));
            if !killed_by_loader || !f.stdout.is_empty() {
                problems.push(format!(
                    "{label}: expected the kernel to refuse it, got {} stdout {:?} stderr {:?}",
                    describe_status(f.status),
                    f.stdout,
                    f.stderr
                ));
            }
        }
        (Run::Status(code), Ran::Refused(e)) => problems.push(format!(
            "{label}: expected the stub to exit with {code}, but it could not run: {e}"
        )),
        (Run::Status(code), Ran::Finished(f)) => {
            if f.status.code() != Some(code) {
                problems.push(format!(
                    "{label}: restart: expected status {code}, got {}; stdout {:?} stderr {:?}",
                    describe_status(f.status),
                    f.stdout,
                    f.stderr
                ));
            } else if !f.stdout.is_empty() {
                problems.push(format!("{label}: restart printed {:?}", f.stdout));
            } else if f.stderr.lines().count() != 1 || !f.stderr.starts_with("ckpt restart: ") {
                problems.push(format!(
                    "{label}: restart: expected one `ckpt restart:` line, got {:?}",
                    f.stderr
                ));
            } else if let Some(address) = &case.names {
                if !f.stderr.contains(address.as_str()) {
                    problems.push(format!(
                        "{label}: restart does not name {address}: {:?}",
                        f.stderr
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_damaged_variant_is_refused_with_its_status() {
    let base = Base::new("integrity");
    let cases = cases(&base);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut problems = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        problems.extend(check_case(&base, index, case));
    }
    assert!(
        problems.is_empty(),
        "{} of {} damaged variants misbehaved:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

#[test]
fn verify_passes_the_undamaged_file_and_restart_works() {
    let dir = TempDir::new("integrity-ok");
    let (checkpoint, _, last) = counter_checkpoint(&dir, &["5"]);
    let verify = run_to_end(
        ckpt_tool(&dir, &[Path::new("verify"), &checkpoint]),
        "ckpt verify",
        TIMEOUT,
    );
    let expected_start = format!("{}: ok (", checkpoint.display());
    if verify.status.code() != Some(0) || !verify.stdout.starts_with(&expected_start) {
        verify.fail(
            "ckpt verify",
            "expected success on the undamaged checkpoint",
        );
    }
    assert!(
        verify.stdout.contains(" regions, ") && verify.stdout.contains(" bytes verified)"),
        "{}",
        verify.stdout
    );
    let mut proc = Proc::spawn(restart_command(&dir, &checkpoint), "restart");
    let next = proc.next_number();
    assert_eq!(next, last + 1, "the restart continues the count");
    proc.kill();
}

#[test]
fn payload_damage_is_found_by_verify_but_not_by_info() {
    let base = Base::new("integrity-payload");
    let extent = base.extent_of(ckpt_image::region_flags::STACK);
    let path = base.dir.join("payload.ckpt");
    std::fs::write(&path, base.flip(extent.file_offset as usize + 8, 0)).unwrap();
    let info = run_to_end(
        ckpt_tool(&base.dir, &[Path::new("info"), &path]),
        "ckpt info",
        TIMEOUT,
    );
    if info.status.code() != Some(0) || !info.stdout.contains("[stack]") {
        info.fail("ckpt info", "expected info to describe the file");
    }
    let verify = run_to_end(
        ckpt_tool(&base.dir, &[Path::new("verify"), &path]),
        "ckpt verify",
        TIMEOUT,
    );
    if verify.status.code() != Some(75)
        || !verify.stderr.contains(&format!("at {:#x}", extent.addr))
    {
        verify.fail("ckpt verify", "expected status 75 naming the stack extent");
    }
}

#[test]
fn info_and_verify_name_a_format_version_they_do_not_read() {
    let base = Base::new("integrity-version");
    let path = base.dir.join("older.ckpt");
    let older = ckpt_image::FORMAT_VERSION - 1;
    std::fs::write(&path, base.with_header(|hd| hd.version = older)).unwrap();
    let expected = format!(
        "unsupported format version (version {older}; this ckpt reads version {})",
        ckpt_image::FORMAT_VERSION
    );
    for command in ["info", "verify"] {
        let output = run_to_end(
            ckpt_tool(&base.dir, &[Path::new(command), &path]),
            command,
            TIMEOUT,
        );
        if output.status.code() != Some(66) || !output.stderr.contains(&expected) {
            output.fail(command, &format!("expected status 66 and {expected:?}"));
        }
    }
}

#[test]
fn unreadable_and_missing_files_are_64() {
    let dir = TempDir::new("integrity-missing");
    for path in [dir.join("no-such.ckpt"), dir.path().to_path_buf()] {
        for command in ["verify", "info"] {
            let output = run_to_end(
                ckpt_tool(&dir, &[Path::new(command), &path]),
                command,
                TIMEOUT,
            );
            if output.status.code() != Some(64)
                || !output
                    .stderr
                    .starts_with(&format!("ckpt {command}: {}: ", path.display()))
            {
                output.fail(command, "expected status 64 with one line");
            }
        }
    }
    // Without read permission (only meaningful for an ordinary user).
    if !running_as_root() {
        let (checkpoint, _, _) = counter_checkpoint(&dir, &["5"]);
        std::fs::set_permissions(&checkpoint, std::fs::Permissions::from_mode(0o100)).unwrap();
        let output = run_to_end(
            ckpt_tool(&dir, &[Path::new("verify"), &checkpoint]),
            "verify unreadable",
            TIMEOUT,
        );
        if output.status.code() != Some(64) {
            output.fail("verify unreadable", "expected status 64");
        }
    } else {
        skip(Skip::CannotHere, "unreadable file: root reads every file");
    }
}
