//! Dense memory comes back in huge pages (issue 16), and nothing else changes: the restart
//! fills every whole 2 MiB range of stored pages in huge pages, whether or not the program
//! had them, and moves them into its mappings without the `MADV_HUGEPAGE` mark. The program
//! (`programs/hugefill.c`) checks every byte of a dense, a sparse, a `MADV_NOHUGEPAGE`, a
//! `MADV_HUGEPAGE` and a malloc'd region; this test compares what it reports of each from
//! `/proc/self/smaps` before the checkpoint and after the restart: the same VmFlags, a
//! sparse region no larger, and (where the kernel gives huge pages at all) huge pages in
//! the dense region. Also when the restart gives the fast path up (small pages, a refused
//! or partial move, `CKPT_HUGE_FILL=0`), which is seen by counting its `UFFDIO_MOVE` calls
//! under strace.

use std::collections::BTreeMap;

use ckpt_tests::*;

const HUGEFILL_C: &str = include_str!("programs/hugefill.c");
const REFUSE_C: &str = include_str!("programs/refuse.c");

/// How the restart is run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Restart {
    AsRoot,
    AsNobody,
    /// With a system call refused (`programs/refuse.c`): `userfaultfd` or `move`
    /// (`ioctl(UFFDIO_MOVE)`), as on a kernel without them; `eagain`, a move that did
    /// nothing; or `thp`, transparent huge pages disabled. The restart reads in place.
    Refusing(&'static str),
}

/// One round trip: how the restart is run and its `CKPT_HUGE_FILL`.
#[derive(Clone, Copy)]
struct Case {
    how: Restart,
    huge_fill: Option<&'static str>,
    /// How many `UFFDIO_MOVE` calls the restart makes, counted under strace (`None`: not
    /// counted).
    moves: Option<usize>,
}

/// One `region NAME rss KB huge KB flags F…` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Region {
    rss_kb: i64,
    huge_kb: i64,
    flags: String,
}

/// Reads report lines up to the next `ok N`, failing on a `BAD` line.
#[track_caller]
fn read_round(proc: &mut Proc) -> BTreeMap<String, Region> {
    let mut round = BTreeMap::new();
    loop {
        let line = proc.wait_lines(1, TIMEOUT).remove(0);
        if line.starts_with("ok ") {
            return round;
        }
        if line.starts_with("BAD") {
            proc.fail(&format!("the program reported: {line}"));
        }
        let parsed = (|| {
            let rest = line.strip_prefix("region ")?;
            let (name, rest) = rest.split_once(" rss ")?;
            let (rss, rest) = rest.split_once(" huge ")?;
            let (huge, flags) = rest.split_once(" flags")?;
            let region = Region {
                rss_kb: rss.parse().ok()?,
                huge_kb: huge.parse().ok()?,
                flags: flags.trim().to_owned(),
            };
            Some((name.to_owned(), region))
        })();
        match parsed {
            Some((name, region)) => round.insert(name, region),
            None => proc.fail(&format!("unexpected line {line:?}")),
        };
    }
}

/// The system's transparent huge page mode: the bracketed word of
/// `/sys/kernel/mm/transparent_hugepage/enabled`.
fn thp_mode() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let (_, rest) = text.split_once('[')?;
    Some(rest.split_once(']')?.0.to_owned())
}

/// Whether the kernel is Linux 6.8 or later (it has `UFFDIO_MOVE`).
fn kernel_moves_pages() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 8)
}

/// Counts the `UFFDIO_MOVE` calls in strace's output (`_IOC(…, 0xaa, 0x5, 0x28)`, or
/// by name where strace knows it).
fn count_moves(trace: &str) -> usize {
    trace
        .lines()
        .filter(|l| l.contains("ioctl(") && (l.contains("UFFDIO_MOVE") || l.contains("0xaa, 0x5,")))
        .count()
}

fn dense_memory_round_trip(case: Case) {
    let how = case.how;
    let nobody = how == Restart::AsNobody;
    let label = match (how, case.huge_fill) {
        (Restart::AsRoot, None) => "hugefill",
        (Restart::AsRoot, Some("0")) => "hugefill-off",
        (Restart::AsRoot, Some(_)) => "hugefill-always",
        (Restart::AsNobody, _) => "hugefill-nobody",
        (Restart::Refusing("move"), _) => "hugefill-no-move",
        (Restart::Refusing("eagain"), _) => "hugefill-eagain",
        (Restart::Refusing("thp"), _) => "hugefill-no-thp",
        (Restart::Refusing(_), _) => "hugefill-no-uffd",
    };
    let dir = TempDir::new(label);
    let ckpt = nobody.then(|| {
        dir.make_world_writable();
        world_runnable_ckpt(&dir)
    });
    let program = compile_c(&dir, "hugefill", HUGEFILL_C, &[]);
    let who = |command| if nobody { as_nobody(command) } else { command };
    let command = match &ckpt {
        Some(ckpt) => ckpt_command_with(ckpt, &dir, &program, &[]),
        None => ckpt_command(&dir, &program, &[]),
    };
    let mut proc = Proc::spawn(who(command), label);
    let before = read_round(&mut proc);
    proc.checkpoint_and_collect(TIMEOUT);
    proc.assert_no_bad_lines();
    let checkpoint = checkpoint_path(&dir, &program);

    // The restart, behind strace when its moves are counted, behind refuse when something
    // is refused.
    let trace = dir.join("restart.strace");
    let counted = case.moves.is_some() && {
        let here = have_program("strace");
        if !here {
            skip(
                Skip::MissingTool,
                "strace is missing: the restart's moves are not counted",
            );
        }
        here
    };
    let mut line: Vec<std::ffi::OsString> = Vec::new();
    if let Restart::Refusing(what) = how {
        line.push(compile_c(&dir, "refuse", REFUSE_C, &[]).into());
        line.push(what.into());
    }
    if counted {
        line.extend(["strace", "-f", "-qq", "-e", "trace=ioctl", "-o"].map(Into::into));
        line.push(trace.clone().into());
    }
    line.push(checkpoint.clone().into());
    let mut restart = std::process::Command::new(&line[0]);
    restart.args(&line[1..]).current_dir(dir.path());
    clear_ckpt_settings(&mut restart);
    if let Some(value) = case.huge_fill {
        restart.env("CKPT_HUGE_FILL", value);
    }
    let mut restarted = Proc::spawn(who(restart), "hugefill.ckpt");
    // The restart resumes in the middle of a round: the whole round after it counts.
    read_round(&mut restarted);
    let after = read_round(&mut restarted);
    restarted.assert_no_bad_lines();
    let names = ["dense", "sparse", "nohuge", "hugepage", "malloc"];
    for name in names {
        let (Some(was), Some(is)) = (before.get(name), after.get(name)) else {
            restarted.fail(&format!("no report of {name}: {before:?} then {after:?}"));
        };
        eprintln!("{label}: {name}: {was:?} -> {is:?}");
        if is.flags != was.flags {
            restarted.fail(&format!(
                "{name}'s VmFlags changed from {:?} to {:?}",
                was.flags, is.flags
            ));
        }
        // Every region but the sparse one is written whole, so its size is its Rss.
        if is.rss_kb > was.rss_kb {
            restarted.fail(&format!(
                "{name} grew from {} kB to {} kB resident",
                was.rss_kb, is.rss_kb
            ));
        }
    }
    for (name, not) in [("nohuge", "nh"), ("hugepage", "hg")] {
        if !before[name].flags.split(' ').any(|f| f == not) {
            restarted.fail(&format!("{name} was set up without {not}: {before:?}"));
        }
    }
    if after["nohuge"].huge_kb != 0 || after["sparse"].huge_kb != 0 {
        restarted.fail(&format!(
            "huge pages where the program forbade them or memory is sparse: {after:?}"
        ));
    }

    let dense = after["dense"].huge_kb;
    if let (true, Some(want)) = (counted, case.moves) {
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        let moves = count_moves(&text);
        eprintln!("{label}: {moves} UFFDIO_MOVE calls");
        if moves != want {
            restarted.fail(&format!(
                "the restart moved {moves} times, not {want}: the fast path was not given up \
                 as it should be"
            ));
        }
    }
    // Filled in small pages, the dense region has none; unless the system's setting gives
    // them to memory that did not ask (`always`), faulting it in in place.
    let small_pages = case.huge_fill == Some("0") || how == Restart::Refusing("thp");
    if small_pages && thp_mode().as_deref() != Some("always") && dense != 0 {
        restarted.fail(&format!(
            "the dense region has {dense} kB in huge pages though filled in small pages"
        ));
    }
    // Whether the dense region got huge pages depends on the kernel having any to give:
    // asserted only with CKPT_HUGE_FILL=1 (a restart left to judge gives up after a window
    // of small pages) and where the restart got them for the region that asked for them.
    if case.huge_fill != Some("1") {
        eprintln!("{label}: the dense region has {dense} kB in huge pages");
        restarted.kill();
        return;
    }
    match thp_mode().as_deref() {
        None | Some("never") => skip(
            Skip::CannotHere,
            &format!("transparent huge pages are off here; the dense region has {dense} kB"),
        ),
        Some(_) if after["hugepage"].huge_kb == 0 => skip(
            Skip::CannotHere,
            &format!(
                "the kernel gave the restart no huge pages even where the program asked for \
                 them; the dense region has {dense} kB"
            ),
        ),
        Some(_) if !kernel_moves_pages() => skip(
            Skip::CannotHere,
            &format!("the kernel predates UFFDIO_MOVE (6.8); the dense region has {dense} kB"),
        ),
        Some(_) => {
            if dense <= 0 {
                restarted.fail(&format!(
                    "the dense region came back in small pages: {after:?}"
                ));
            }
        }
    }
    restarted.kill();
}

/// The fast path kept whatever the kernel gives: the dense region comes back in huge pages.
#[test]
fn dense_memory_comes_back_in_huge_pages_with_its_own_flags() {
    dense_memory_round_trip(Case {
        how: Restart::AsRoot,
        huge_fill: Some("1"),
        moves: None,
    });
}

/// Left to judge the pages the kernel gives, as by default: the same memory, whichever way
/// it went.
#[test]
fn dense_memory_comes_back_whole_when_the_restart_judges() {
    dense_memory_round_trip(Case {
        how: Restart::AsRoot,
        huge_fill: None,
        moves: None,
    });
}

/// `CKPT_HUGE_FILL=0`: nothing is moved, all is read in place.
#[test]
fn dense_memory_comes_back_whole_with_the_huge_fill_off() {
    dense_memory_round_trip(Case {
        how: Restart::AsRoot,
        huge_fill: Some("0"),
        moves: Some(0),
    });
}

/// Without userfaultfd, or without `UFFDIO_MOVE` once the window is filled and the region
/// registered, the restart still brings back the same memory, the same flags.
#[test]
fn dense_memory_comes_back_whole_without_userfaultfd() {
    dense_memory_round_trip(Case {
        how: Restart::Refusing("userfaultfd"),
        huge_fill: None,
        moves: None,
    });
}

#[test]
fn dense_memory_comes_back_whole_when_moving_is_refused() {
    dense_memory_round_trip(Case {
        how: Restart::Refusing("move"),
        huge_fill: None,
        moves: Some(1),
    });
}

/// A move that answers EAGAIN having moved nothing is not tried again and again: the
/// window is copied and the fast path given up after the first.
#[test]
fn dense_memory_comes_back_whole_when_a_move_does_nothing() {
    dense_memory_round_trip(Case {
        how: Restart::Refusing("eagain"),
        huge_fill: None,
        moves: Some(1),
    });
}

/// No huge pages to be had: the first window, filled in small pages, is moved, and the rest
/// of the restart reads in place.
#[test]
fn dense_memory_comes_back_whole_in_small_pages_after_one_window() {
    dense_memory_round_trip(Case {
        how: Restart::Refusing("thp"),
        huge_fill: None,
        moves: Some(1),
    });
}

#[test]
fn dense_memory_comes_back_in_huge_pages_as_nobody() {
    if running_as_root() && !have_program("setpriv") {
        return skip(
            Skip::MissingTool,
            "setpriv is missing: cannot run as nobody",
        );
    }
    dense_memory_round_trip(Case {
        how: Restart::AsNobody,
        huge_fill: Some("1"),
        moves: None,
    });
}
