//! Memory beyond plain private read-write pages: protections (read-only, PROT_NONE with
//! contents, untouched guard reservations), shared anonymous memory, memfd and deleted-file
//! mappings, huge sparse reservations (stored by their touched pages only), transparent huge
//! pages, and the vDSO.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ckpt_tests::*;

const MAPPINGS_C: &str = include_str!("programs/mappings.c");
const SPARSE_C: &str = include_str!("programs/sparse.c");
const CLOCKS_C: &str = include_str!("programs/clocks.c");
const OCCUPIED_C: &str = include_str!("programs/occupied.c");
const HUGE_C: &str = include_str!("programs/huge.c");

/// A checkpoint of a few touched pages in 64 GiB of reservations must stay below this.
const SPARSE_LIMIT: u64 = 64 << 20;

#[test]
fn mappings_keep_contents_and_protections() {
    let dir = TempDir::new("mappings");
    let program = compile_c(&dir, "mappings", MAPPINGS_C, &[]);
    let (_, last) = rounds_then_checkpoint(ckpt_command(&dir, &program, &[]), "ckpt mappings", 3);
    let checkpoint = checkpoint_path(&dir, &program);
    assert!(
        checkpoint.is_file(),
        "no checkpoint file {}",
        checkpoint.display()
    );
    // The deleted file must stay deleted: the restart may not depend on it.
    assert!(!dir.join("deleted-file.bin").exists());
    let mut proc = expect_rounds(restart_command(&dir, &checkpoint), "mappings.ckpt", last, 5);
    proc.kill();
}

#[test]
fn sparse_reservation_is_stored_by_touched_pages() {
    let dir = TempDir::new("sparse");
    let program = compile_c(&dir, "sparse", SPARSE_C, &[]);
    let (mut original, last) =
        rounds_then_checkpoint(ckpt_command(&dir, &program, &[]), "ckpt sparse", 2);
    let checkpoint = checkpoint_path(&dir, &program);
    if !checkpoint.is_file() {
        original.fail(&format!("no checkpoint file {}", checkpoint.display()));
    }
    let size = std::fs::metadata(&checkpoint).unwrap().len();
    if size >= SPARSE_LIMIT {
        original.fail(&format!(
            "the checkpoint of two 32 GiB reservations with 7 touched pages is {size} bytes \
             (limit {SPARSE_LIMIT}): untouched pages were stored"
        ));
    }
    let mut proc = expect_rounds(restart_command(&dir, &checkpoint), "sparse.ckpt", last, 3);
    proc.kill();
}

#[test]
fn transparent_huge_pages_come_back_as_huge_pages() {
    huge_pages_round_trip(&[], 1);
}

#[test]
fn huge_pages_the_program_did_not_ask_for_come_back_without_the_advice() {
    // Collapsed (MADV_COLLAPSE) without MADV_HUGEPAGE: the restart collapses them again
    // rather than advising the region, whose VmFlags stay as they were.
    huge_pages_round_trip(&["collapse"], 0);
}

/// Checkpoints `huge ARGS` once its memory is in huge pages and expects them back after the
/// restart, with the region advised MADV_HUGEPAGE (`hg` in VmFlags) as `hg` says.
fn huge_pages_round_trip(args: &[&str], hg: u64) {
    let dir = TempDir::new("thp");
    let program = compile_c(&dir, "huge", HUGE_C, &[]);
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, args), "huge");
    let ready = proc.wait_line_matching("the ready line", TIMEOUT, |l| {
        l.starts_with("ready") || l.starts_with("BAD")
    });
    proc.assert_no_bad_lines();
    if number_after(&ready, "ready huge ").unwrap_or(0) == 0 {
        proc.kill();
        return skip(
            Skip::CannotHere,
            &format!(
                "this system gives no transparent huge pages to huge {args:?} (see \
             /sys/kernel/mm/transparent_hugepage; MADV_COLLAPSE needs Linux 6.1)",
            ),
        );
    }
    assert!(ready.ends_with(&format!(" hg {hg}")), "{ready:?}");
    proc.wait_line_matching("ok 3", TIMEOUT, |l| {
        l.starts_with("ok 3 ") || l.starts_with("BAD")
    });
    proc.checkpoint_and_collect(TIMEOUT);
    proc.assert_no_bad_lines();
    let checkpoint = checkpoint_path(&dir, &program);
    let value = info_json(&checkpoint);
    let huge = value["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["huge_pages"] == true)
        .count();
    assert_eq!(huge, 1, "regions marked as huge pages: {value}");

    let mut restarted = Proc::spawn(restart_command(&dir, &checkpoint), "huge.ckpt");
    let line = restarted.wait_lines(1, TIMEOUT).remove(0);
    restarted.assert_no_bad_lines();
    let kb = line
        .split_once(" huge ")
        .and_then(|(_, k)| k.split_whitespace().next()?.parse::<i64>().ok())
        .unwrap_or_else(|| restarted.fail(&format!("unexpected line {line:?}")));
    if kb <= 0 {
        restarted.fail(&format!("no huge pages after the restart: {line:?}"));
    }
    if !line.ends_with(&format!(" hg {hg}")) {
        restarted.fail(&format!(
            "the region's MADV_HUGEPAGE advice changed (expected hg {hg}): {line:?}"
        ));
    }
    restarted.kill();
}

#[test]
fn vdso_clocks_work_after_restart() {
    let dir = TempDir::new("clocks");
    let program = compile_c(&dir, "clocks", CLOCKS_C, &[]);
    let (_, last) = rounds_then_checkpoint(ckpt_command(&dir, &program, &[]), "ckpt clocks", 3);
    let checkpoint = checkpoint_path(&dir, &program);
    assert!(
        checkpoint.is_file(),
        "no checkpoint file {}",
        checkpoint.display()
    );

    let mut proc = expect_rounds(restart_command(&dir, &checkpoint), "clocks.ckpt", last, 10);
    // The program checks its clocks against each other; check its wall clock against ours.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let lines = proc.seen().to_vec();
    for line in lines {
        let seconds: Option<u64> = line
            .split_whitespace()
            .nth(2)
            .and_then(|field| field.parse().ok());
        match seconds {
            Some(seconds) if seconds.abs_diff(now) <= 5 => {}
            _ => proc.fail(&format!(
                "expected CLOCK_REALTIME within 5 s of {now} in {line:?}"
            )),
        }
    }
    proc.kill();
}

#[test]
fn stub_finds_room_when_its_usual_places_are_taken() {
    let dir = TempDir::new("occupied");
    let program = compile_c(&dir, "occupied", OCCUPIED_C, &[]);
    let (_, last) = rounds_then_checkpoint(ckpt_command(&dir, &program, &[]), "ckpt occupied", 3);
    let checkpoint = checkpoint_path(&dir, &program);
    assert!(
        checkpoint.is_file(),
        "no checkpoint file {}",
        checkpoint.display()
    );
    // Twice: the kernel places the new process differently each time.
    for run in 0..2 {
        let mut proc = expect_rounds(
            restart_command(&dir, &checkpoint),
            &format!("occupied.ckpt (run {run})"),
            last,
            3,
        );
        proc.kill();
    }
}
