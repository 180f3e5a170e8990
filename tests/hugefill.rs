//! Dense memory comes back in huge pages (issue 16), and nothing else changes: the restart
//! fills every whole 2 MiB range of stored pages in huge pages, whether or not the program
//! had them, and moves them into its mappings without the `MADV_HUGEPAGE` mark. The program
//! (`programs/hugefill.c`) checks every byte of a dense, a sparse, a `MADV_NOHUGEPAGE`, a
//! `MADV_HUGEPAGE` and a malloc'd region; this test compares what it reports of each from
//! `/proc/self/smaps` before the checkpoint and after the restart: the same VmFlags, a
//! sparse region no larger, and (where the kernel gives huge pages at all) huge pages in
//! the dense region.

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
    /// (`ioctl(UFFDIO_MOVE)`), as on a kernel without them; the restart reads in place.
    Refusing(&'static str),
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

fn dense_memory_round_trip(how: Restart) {
    let nobody = how == Restart::AsNobody;
    let label = match how {
        Restart::AsRoot => "hugefill",
        Restart::AsNobody => "hugefill-nobody",
        Restart::Refusing("move") => "hugefill-no-move",
        Restart::Refusing(_) => "hugefill-no-uffd",
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

    let mut restart = restart_command(&dir, &checkpoint);
    if let Restart::Refusing(what) = how {
        let refuse = compile_c(&dir, "refuse", REFUSE_C, &[]);
        let mut wrapped = std::process::Command::new(refuse);
        wrapped.arg(what).arg(&checkpoint).current_dir(dir.path());
        clear_ckpt_settings(&mut wrapped);
        restart = wrapped;
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

    // Whether the dense region got huge pages depends on the kernel having any to give:
    // asserted only where the restart got them for the region that asked for them.
    let dense = after["dense"].huge_kb;
    if let Restart::Refusing(what) = how {
        eprintln!("{label}: with {what} refused the dense region has {dense} kB in huge pages");
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

#[test]
fn dense_memory_comes_back_in_huge_pages_with_its_own_flags() {
    dense_memory_round_trip(Restart::AsRoot);
}

/// Without userfaultfd, or without `UFFDIO_MOVE` once the window is filled and the region
/// registered, the restart still brings back the same memory, the same flags.
#[test]
fn dense_memory_comes_back_whole_without_userfaultfd() {
    dense_memory_round_trip(Restart::Refusing("userfaultfd"));
}

#[test]
fn dense_memory_comes_back_whole_when_moving_is_refused() {
    dense_memory_round_trip(Restart::Refusing("move"));
}

#[test]
fn dense_memory_comes_back_in_huge_pages_as_nobody() {
    if running_as_root() && !have_program("setpriv") {
        return skip(
            Skip::MissingTool,
            "setpriv is missing: cannot run as nobody",
        );
    }
    dense_memory_round_trip(Restart::AsNobody);
}
