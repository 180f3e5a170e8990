//! Per-mapping properties through a restart: what a program set with `mmap` (MAP_NORESERVE,
//! MAP_GROWSDOWN), `madvise` (DONTFORK, WIPEONFORK, DONTDUMP, NOHUGEPAGE, HUGEPAGE,
//! MERGEABLE, RANDOM, SEQUENTIAL), `mlock`/`mlock2` and `mseal` must read the same in
//! `/proc/self/smaps` (`VmFlags`) after the restart, and act the same: a child of the
//! restarted program lacks the DONTFORK mapping and sees the WIPEONFORK one as zeros. A
//! mapping made without MAP_NORESERVE comes back without it.

use std::collections::BTreeMap;
use std::path::Path;

use ckpt_tests::*;

const VMFLAGS_C: &str = include_str!("programs/vmflags.c");

/// `VmFlags` mnemonics that differ between any two processes, whatever ckpt does: soft-dirty
/// tracking (kernels with CONFIG_MEM_SOFT_DIRTY) marks every new mapping `sd`.
const IGNORED: &[&str] = &["sd"];

/// The mnemonic each of the program's mappings must show (its setup worked), and those it
/// must not.
const EXPECTED: &[(&str, &[&str], &[&str])] = &[
    ("plain", &["ac"], &["nr"]),
    ("noreserve", &["nr"], &["ac"]),
    ("dontfork", &["dc"], &[]),
    ("wipeonfork", &["wf"], &[]),
    ("dontdump", &["dd"], &[]),
    ("nohugepage", &["nh"], &[]),
    ("hugepage", &["hg"], &[]),
    ("mergeable", &["mg"], &[]),
    ("random", &["rr"], &[]),
    ("sequential", &["sr"], &[]),
    ("locked", &["lo"], &["lf"]),
    ("lockonfault", &["lo", "lf"], &[]),
    ("growsdown", &["gd"], &[]),
    ("sealed", &["sl"], &[]),
    ("reserve", &[], &["nr", "ac"]),
];

/// What the program reports about itself (see vmflags.c).
#[derive(Debug, Default)]
struct Report {
    /// Mapping name → (start address, its VmFlags less `IGNORED`).
    flags: BTreeMap<String, (u64, Vec<String>)>,
    contents: BTreeMap<String, String>,
    fork: String,
}

impl Report {
    /// Reads the report lines up to `end` ("ready" or "resumed").
    #[track_caller]
    fn read(proc: &mut Proc, end: &str) -> Report {
        let mut report = Report::default();
        loop {
            let line = proc.wait_lines(1, TIMEOUT).remove(0);
            if line == end {
                break;
            }
            if line.starts_with("BAD") {
                proc.fail(&format!("the program reported: {line}"));
            } else if let Some(rest) = line.strip_prefix("flags ") {
                let (head, flags) = rest.split_once(": ").unwrap_or((rest, ""));
                let (name, range) = head.split_once(' ').unwrap_or((head, ""));
                let start = range
                    .split('-')
                    .next()
                    .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                    .unwrap_or_else(|| proc.fail(&format!("no address in {line:?}")));
                let flags = flags
                    .split_whitespace()
                    .filter(|f| !IGNORED.contains(f))
                    .map(str::to_owned)
                    .collect();
                report.flags.insert(name.to_owned(), (start, flags));
            } else if let Some(rest) = line.strip_prefix("contents ") {
                let (name, state) = rest.split_once(": ").unwrap_or((rest, ""));
                report.contents.insert(name.to_owned(), state.to_owned());
            } else if let Some(rest) = line.strip_prefix("fork: ") {
                rest.clone_into(&mut report.fork);
            } else if let Some(name) = line.strip_prefix("unsupported ") {
                skip(
                    Skip::CannotHere,
                    &format!("this kernel cannot set up the {name} mapping"),
                );
            }
        }
        report
    }

    fn has(&self, name: &str, flag: &str) -> bool {
        self.flags
            .get(name)
            .is_some_and(|(_, flags)| flags.iter().any(|f| f == flag))
    }

    /// Checks that each mapping got what its setup asked for, so that a comparison with it
    /// means something.
    #[track_caller]
    fn expect_set_up(&self, proc: &mut Proc) {
        for (name, present, absent) in EXPECTED {
            if !self.flags.contains_key(*name) {
                continue;
            }
            for flag in *present {
                if !self.has(name, flag) {
                    proc.fail(&format!(
                        "before the checkpoint, {name} lacks {flag}: {self:?}"
                    ));
                }
            }
            for flag in *absent {
                if self.has(name, flag) {
                    proc.fail(&format!(
                        "before the checkpoint, {name} has {flag}: {self:?}"
                    ));
                }
            }
        }
    }
}

/// Fails unless every mapping's flags after the restart are those it had before, less
/// `lost` (mapping name, mnemonic) pairs; names every mapping that differs.
#[track_caller]
fn expect_same_flags(before: &Report, after: &Report, lost: &[(&str, &str)], proc: &mut Proc) {
    let mut differences = String::new();
    for (name, (_, flags)) in &before.flags {
        let expected: Vec<&String> = flags
            .iter()
            .filter(|f| !lost.contains(&(name.as_str(), f.as_str())))
            .collect();
        let got: Option<Vec<&String>> = after.flags.get(name).map(|(_, f)| f.iter().collect());
        if got.as_ref() != Some(&expected) {
            differences.push_str(&format!("\n  {name}: expected {expected:?}, got {got:?}"));
        }
    }
    if after.fork != before.fork {
        differences.push_str(&format!(
            "\n  a forked child saw \"{}\" before the checkpoint, \"{}\" after the restart",
            before.fork, after.fork
        ));
    }
    if !differences.is_empty() {
        proc.fail(&format!("VmFlags differ after the restart:{differences}"));
    }
}

/// `ckpt info --json` names the properties it recorded for each of the program's mappings.
#[track_caller]
fn expect_info_flags(checkpoint: &Path, before: &Report) {
    let info = info_json(checkpoint);
    let regions = info["regions"].as_array().expect("regions");
    let words = [
        ("nr", "noreserve"),
        ("dc", "dontfork"),
        ("wf", "wipeonfork"),
        ("dd", "dontdump"),
        ("nh", "nohugepage"),
        ("hg", "hugepage"),
        ("mg", "mergeable"),
        ("rr", "random"),
        ("sr", "sequential"),
        ("lo", "locked"),
        ("lf", "lockonfault"),
        ("gd", "growsdown"),
        ("sl", "sealed"),
    ];
    for (name, (start, flags)) in &before.flags {
        let region = regions
            .iter()
            .find(|r| r["start"].as_u64() == Some(*start))
            .unwrap_or_else(|| panic!("no region at {start:#x} ({name}) in {info}"));
        let listed: Vec<&str> = region["flags"]
            .as_array()
            .unwrap_or_else(|| panic!("no flags for {name}: {region}"))
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        for (mnemonic, word) in words {
            let had = flags.iter().any(|f| f == mnemonic);
            assert_eq!(
                listed.contains(&word),
                had,
                "{name}: VmFlags {flags:?}, ckpt info lists {listed:?}"
            );
        }
    }
}

#[test]
fn mappings_keep_their_properties_through_a_restart() {
    let dir = TempDir::new("vmflags");
    let program = compile_c(&dir, "vmflags", VMFLAGS_C, &[]);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &[]), "ckpt vmflags");
    let before = Report::read(&mut proc, "ready");
    before.expect_set_up(&mut proc);
    assert_eq!(before.fork, "dontfork absent, wipeonfork zero");
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let checkpoint = checkpoint_path(&dir, &program);
    expect_checkpoint(&mut proc, &checkpoint);

    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "vmflags.ckpt");
    let after = Report::read(&mut restarted, "resumed");
    expect_same_flags(&before, &after, &[], &mut restarted);
    // Written by the process itself, every mapping's contents are stored (MADV_WIPEONFORK
    // memory too: see the forked writer below).
    for (name, state) in &after.contents {
        if state != "intact" {
            restarted.fail(&format!("the {name} mapping is {state} after the restart"));
        }
    }
    let stderr = restarted.stderr();
    if !stderr.is_empty() {
        restarted.fail("the restart said something on stderr");
    }
    restarted.kill();
    expect_info_flags(&checkpoint, &before);
}

#[test]
fn mappings_keep_their_properties_when_a_forked_writer_writes_the_image() {
    // Without a MADV_DONTFORK mapping a copy-on-write child writes the image. It inherits
    // no memory locks, yet the locks must be in the image.
    let dir = TempDir::new("vmflags-fork");
    let program = compile_c(&dir, "vmflags", VMFLAGS_C, &[]);
    let mut command = ckpt_command(&dir, &program, &["no-dontfork"]);
    command.env("CKPT_CONTINUE", "1");
    let mut proc = Proc::spawn(command, "ckpt vmflags no-dontfork");
    let before = Report::read(&mut proc, "ready");
    before.expect_set_up(&mut proc);
    assert_eq!(before.fork, "dontfork none, wipeonfork zero");
    proc.signal(libc::SIGTSTP);
    let checkpoint = checkpoint_path(&dir, &program);
    proc.wait_for_file(&checkpoint);
    proc.assert_no_bad_lines();
    proc.kill();

    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "vmflags.ckpt");
    let after = Report::read(&mut restarted, "resumed");
    expect_same_flags(&before, &after, &[], &mut restarted);
    // The writer child saw the MADV_WIPEONFORK memory as any child does: zero.
    for (name, state) in &after.contents {
        let expected = if name == "wipeonfork" {
            "zero"
        } else {
            "intact"
        };
        if state != expected {
            restarted.fail(&format!("the {name} mapping is {state} after the restart"));
        }
    }
    restarted.kill();
    expect_info_flags(&checkpoint, &before);
}

#[test]
fn locks_come_back_for_an_ordinary_user_and_a_refused_one_is_reported() {
    // Root may lock any amount; an ordinary user only up to RLIMIT_MEMLOCK (8 MiB by
    // default, the program locks 2 MiB).
    let dir = TempDir::new("vmflags-nobody");
    dir.make_world_writable();
    let ckpt = world_runnable_ckpt(&dir);
    if running_as_root() && !have_program("setpriv") {
        panic!("running as root but setpriv (util-linux) is missing: cannot test as nobody");
    }
    let program = compile_c(&dir, "vmflags", VMFLAGS_C, &[]);
    let mut proc = Proc::spawn(
        as_nobody(ckpt_command_with(&ckpt, &dir, &program, &[])),
        "ckpt vmflags (as nobody)",
    );
    let before = Report::read(&mut proc, "ready");
    before.expect_set_up(&mut proc);
    proc.signal(libc::SIGTSTP);
    proc.wait_success(TIMEOUT);
    let checkpoint = checkpoint_path(&dir, &program);
    expect_checkpoint(&mut proc, &checkpoint);

    let mut restarted = Proc::spawn(
        as_nobody(restart_command(&dir, &checkpoint)),
        "vmflags.ckpt (as nobody)",
    );
    let after = Report::read(&mut restarted, "resumed");
    expect_same_flags(&before, &after, &[], &mut restarted);
    restarted.kill();

    // Below the 2 MiB the program had locked, the locks are refused: the restart says which
    // mappings are no longer locked, one line each, and goes on.
    let mut limited = Proc::spawn(
        as_nobody(in_shell(restart_command(&dir, &checkpoint), "ulimit -l 64")),
        "vmflags.ckpt (as nobody, ulimit -l 64)",
    );
    let after = Report::read(&mut limited, "resumed");
    let lost = [
        ("locked", "lo"),
        ("lockonfault", "lo"),
        ("lockonfault", "lf"),
    ];
    expect_same_flags(&before, &after, &lost, &mut limited);
    let stderr = limited.stderr();
    for name in ["locked", "lockonfault"] {
        let start = format!("{:#x}", before.flags[name].0);
        let said = stderr
            .lines()
            .filter(|l| l.starts_with("ckpt restart:") && l.contains(&start))
            .collect::<Vec<_>>();
        if said.len() != 1 || !said[0].contains("locked") {
            limited.fail(&format!(
                "expected one line on stderr saying that the {name} mapping at {start} is no \
                 longer locked"
            ));
        }
    }
    limited.wait_lines(3, TIMEOUT);
    limited.kill();
}
