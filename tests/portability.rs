//! A checkpoint restarts under a kernel whose vDSO differs from the one it was taken under
//! (another machine, a kernel update): this kernel's vDSO stays where the restart puts it,
//! and the saved image comes back at its old address with each function forwarded to this
//! kernel's. There is one kernel here, so the test makes the checkpoint's vDSO image differ
//! (a byte past the end of its ELF contents, which no code reads) and seals the file again.
//! A thread interrupted inside the old vDSO could not resume under another, so checkpoints
//! wait until the program is out of it; one marked as taken inside anyway is refused (exit
//! 72) under another vDSO. A checkpoint from a CPU with register state this one lacks
//! (AVX-512, AMX …) is refused with exit 76.

use std::mem::offset_of;
use std::path::{Path, PathBuf};

use ckpt_image::crc32c::{crc32c, PayloadChecksum};
use ckpt_image::{
    elf, region_flags, ExtentRecord, ImageHeader, RegionRecord, Tables, ThreadRecord, EXTENT_SIZE,
    REGION_SIZE,
};
use ckpt_tests::*;

const CLOCKS_C: &str = include_str!("programs/clocks.c");
const VDSOLOOP_C: &str = include_str!("programs/vdsoloop.c");
const FORKTIMER_C: &str = include_str!("programs/forktimer.c");

/// A checkpoint file's bytes and where its tables are, to change and seal again.
struct Image {
    bytes: Vec<u8>,
    header_at: usize,
    header: ImageHeader,
    regions: Vec<RegionRecord>,
    extents: Vec<ExtentRecord>,
}

impl Image {
    fn read(checkpoint: &Path) -> Image {
        let bytes = std::fs::read(checkpoint).unwrap();
        let header_at = elf::locate_header(&bytes[..4096]).expect("a header") as usize;
        let header = ImageHeader::read_from(&bytes[header_at..]).expect("a header");
        let t0 = header.tables_offset as usize;
        let tables =
            Tables::parse(&header, &bytes[t0..t0 + header.tables_len as usize]).expect("tables");
        let (regions, extents) = (tables.regions.to_vec(), tables.extents.to_vec());
        Image {
            bytes,
            header_at,
            header,
            regions,
            extents,
        }
    }

    /// Where in the file the thread record's field at `field` (its offset) is.
    fn thread_field(&self, field: usize) -> usize {
        self.header.tables_offset as usize
            + self.regions.len() * REGION_SIZE
            + self.extents.len() * EXTENT_SIZE
            + field
    }

    fn put_u32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// The bytes with the tables' and header's checksums made right again.
    fn seal(mut self) -> Vec<u8> {
        let t0 = self.header.tables_offset as usize;
        let t1 = t0 + self.header.tables_len as usize;
        self.header.tables_crc = crc32c(0, &self.bytes[t0..t1]);
        self.header.header_crc = self.header.compute_crc();
        let hb = self.header.as_bytes().to_vec();
        self.bytes[self.header_at..self.header_at + hb.len()].copy_from_slice(&hb);
        self.bytes
    }
}

/// Where the saved vDSO region starts, and a copy of the file with that image changed past
/// the end of its ELF contents (which no code reads), sealed again: only the comparison
/// with this kernel's vDSO tells the difference.
fn with_other_vdso(checkpoint: &Path) -> (u64, Vec<u8>) {
    let (start, image) = other_vdso(Image::read(checkpoint));
    (start, image.seal())
}

/// `image` with its saved vDSO image changed as `with_other_vdso` says, and where that
/// region starts.
fn other_vdso(mut image: Image) -> (u64, Image) {
    let vdso = *image
        .regions
        .iter()
        .find(|r| r.flags & region_flags::VDSO != 0)
        .expect("a vDSO region");
    assert_eq!(vdso.extent_count, 1, "{vdso:?}");
    let ei = vdso.first_extent as usize;
    let e = image.extents[ei];
    let payload = &mut image.bytes[e.file_offset as usize..(e.file_offset + e.len) as usize];
    // The ELF file ends with its section headers; past them is padding to the page.
    let shoff = u64::from_le_bytes(payload[0x28..0x30].try_into().unwrap()) as usize;
    let shnum = u16::from_le_bytes(payload[0x3c..0x3e].try_into().unwrap()) as usize;
    assert!(
        shoff + shnum * 64 < payload.len(),
        "no padding after the vDSO's ELF contents"
    );
    payload[payload.len() - 1] ^= 0x5a;
    let crc = PayloadChecksum::of(payload);
    let extent_at = image.header.tables_offset as usize
        + image.regions.len() * REGION_SIZE
        + ei * EXTENT_SIZE
        + offset_of!(ExtentRecord, crc);
    image.put_u32(extent_at, crc);
    (vdso.start, image)
}

/// Runs `clocks` under ckpt for three rounds and checkpoints it: the checkpoint's path and
/// the last round before it.
fn clocks_checkpoint(dir: &TempDir) -> (PathBuf, u64) {
    let program = compile_c(dir, "clocks", CLOCKS_C, &[]);
    let (_, last) = rounds_then_checkpoint(ckpt_command(dir, &program, &[]), "clocks", 3);
    (checkpoint_path(dir, &program), last)
}

/// Writes `bytes` as an executable checkpoint file.
fn write_image(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// The line of `/proc/<pid>/maps` that starts at `addr`, and the `[vdso]` line.
fn maps_of(pid: i32, addr: u64) -> (Option<String>, Option<String>) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let at = maps
        .lines()
        .find(|l| l.starts_with(&format!("{addr:x}-")))
        .map(str::to_owned);
    let vdso = maps
        .lines()
        .find(|l| l.ends_with("[vdso]"))
        .map(str::to_owned);
    (at, vdso)
}

#[test]
fn checkpoint_restarts_under_another_vdso_through_forwarded_functions() {
    let dir = TempDir::new("other-vdso");
    let (checkpoint, last) = clocks_checkpoint(&dir);
    let (old_vdso, bytes) = with_other_vdso(&checkpoint);
    let other = dir.join("other.ckpt");
    write_image(&other, &bytes);

    let mut proc = expect_rounds(restart_command(&dir, &other), "other.ckpt", last, 3);
    proc.assert_no_bad_lines();
    // The clocks work and tell the time (clocks.c checks monotonic order and that the wall
    // clocks agree; the last field is CLOCK_REALTIME's seconds).
    let line = proc.seen().last().unwrap().clone();
    let secs: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) <= 2, "{line:?} at {now}");
    // The forwarding image is at the old address, this kernel's vDSO elsewhere.
    let (at, vdso) = maps_of(proc.pid(), old_vdso);
    let at = at.unwrap_or_else(|| proc.fail(&format!("nothing at the old vDSO {old_vdso:#x}")));
    assert!(at.contains(" r-xp ") && !at.contains("[vdso]"), "{at}");
    let vdso = vdso.unwrap_or_else(|| proc.fail("no [vdso]"));
    assert!(!vdso.starts_with(&format!("{old_vdso:x}-")), "{vdso}");
    proc.kill();

    // Lazily restarted (the old image is then a private mapping of the file, patched).
    let mut lazy = restart_command(&dir, &other);
    lazy.env("CKPT_LAZY", "1");
    let mut proc = expect_rounds(lazy, "other.ckpt (lazy)", last, 3);
    proc.assert_no_bad_lines();
    proc.kill();

    // The forwarded process is checkpointed again (its vDSO now where this restart put it)
    // and that checkpoint restarts too.
    let mut proc = Proc::spawn(restart_command(&dir, &other), "other.ckpt (again)");
    proc.wait_lines(3, TIMEOUT);
    proc.checkpoint_and_collect(TIMEOUT);
    proc.assert_no_bad_lines();
    let again = proc.last_number_after("ok ");
    let mut proc = expect_rounds(
        restart_command(&dir, &checkpoint),
        "clocks.ckpt (2)",
        again,
        3,
    );
    proc.assert_no_bad_lines();
    proc.kill();
}

/// Whether `checkpoint` is marked as taken inside the vDSO.
fn in_vdso(checkpoint: &Path) -> bool {
    info_json(checkpoint)["threads"]["in_vdso"] == true
}

#[test]
fn checkpoints_of_a_program_living_in_the_vdso_wait_until_it_is_out() {
    let dir = TempDir::new("in-vdso");
    let program = compile_c(&dir, "vdsoloop", VDSOLOOP_C, &[]);
    let checkpoint = checkpoint_path(&dir, &program);
    // The loop spends nearly all its time in clock_gettime; without waiting, most of these
    // checkpoints would catch it inside the vDSO.
    for attempt in 0..4 {
        let mut proc = Proc::spawn(
            ckpt_command(&dir, &program, &[]),
            &format!("vdsoloop (SIGTSTP {attempt})"),
        );
        proc.wait_line("ok 2");
        proc.checkpoint_and_collect(TIMEOUT);
        proc.assert_no_bad_lines();
        assert!(
            !in_vdso(&checkpoint),
            "SIGTSTP checkpoint {attempt} was taken inside the vDSO"
        );
    }
    let mut proc = Proc::spawn(ckpt_command(&dir, &program, &[]), "vdsoloop (requests)");
    proc.wait_line("ok 2");
    for attempt in 0..4 {
        let request = run_to_end(
            ckpt_tool(&dir, &["checkpoint", &proc.pid().to_string()]),
            "ckpt checkpoint",
            TIMEOUT,
        );
        if request.status.code() != Some(0) {
            request.fail("ckpt checkpoint", "expected success");
        }
        assert!(
            !in_vdso(&checkpoint),
            "requested checkpoint {attempt} was taken inside the vDSO"
        );
    }
    proc.kill();
    // So it restarts under another vDSO too.
    runs_under_another_vdso(&dir, &checkpoint);
}

/// A copy of `checkpoint` as taken under another vDSO restarts and runs on (two lines, none
/// bad).
fn runs_under_another_vdso(dir: &TempDir, checkpoint: &Path) {
    let (_, bytes) = with_other_vdso(checkpoint);
    let other = dir.join("other.ckpt");
    write_image(&other, &bytes);
    let mut proc = Proc::spawn(restart_command(dir, &other), "other.ckpt");
    proc.wait_lines(2, TIMEOUT);
    proc.assert_no_bad_lines();
    proc.kill();
}

/// Many threads on the clock at once: each one the checkpoint finds inside the vDSO comes
/// back by a timer of its own until it is out. (When the checkpointing thread signalled them
/// again instead, 128 threads on 2 CPUs took seconds to stop, and past 64 of them put off at
/// once the rest parked inside the vDSO: the file was marked, and refused under another
/// kernel.)
#[test]
fn many_threads_living_in_the_vdso_all_stop_outside_it() {
    let dir = TempDir::new("in-vdso-threads");
    let program = compile_c(&dir, "vdsoloop", VDSOLOOP_C, &["-pthread"]);
    let checkpoint = checkpoint_path(&dir, &program);
    for attempt in 0..3 {
        let mut proc = Proc::spawn(
            ckpt_command(&dir, &program, &["128"]),
            &format!("vdsoloop 128 (SIGTSTP {attempt})"),
        );
        proc.wait_line("ok 2");
        proc.checkpoint_and_collect(TIMEOUT);
        proc.assert_no_bad_lines();
        assert!(
            !in_vdso(&checkpoint),
            "checkpoint {attempt} of 128 threads was taken inside the vDSO"
        );
    }
    assert_eq!(info_json(&checkpoint)["threads"]["count"], 128);
    runs_under_another_vdso(&dir, &checkpoint);
}

#[test]
fn checkpoint_marked_as_taken_inside_the_vdso_is_refused_under_another() {
    let dir = TempDir::new("marked-in-vdso");
    let (checkpoint, last) = clocks_checkpoint(&dir);
    for under_other in [false, true] {
        let mut image = Image::read(&checkpoint);
        let at = image.thread_field(offset_of!(ThreadRecord, flags));
        let flags = u32::from_le_bytes(image.bytes[at..at + 4].try_into().unwrap());
        image.put_u32(at, flags | ckpt_image::THREAD_IN_VDSO);
        if under_other {
            image = other_vdso(image).1;
        }
        let marked = dir.join("marked.ckpt");
        write_image(&marked, &image.seal());
        assert!(in_vdso(&marked));
        if under_other {
            let finished = run_to_end(restart_command(&dir, &marked), "marked.ckpt", TIMEOUT);
            if finished.status.code() != Some(72) || !finished.stderr.contains("inside the old one")
            {
                finished.fail("marked.ckpt", "expected exit status 72, naming the vDSO");
            }
        } else {
            // Under the same vDSO the mark does not matter.
            let mut proc = expect_rounds(restart_command(&dir, &marked), "marked.ckpt", last, 2);
            proc.kill();
        }
    }
}

#[test]
fn checkpoint_from_a_cpu_with_more_register_state_is_refused() {
    let here = ckpt_image::xcr0();
    if here == 0 {
        return skip(Skip::CannotHere, "this CPU has no XSAVE");
    }
    let dir = TempDir::new("other-cpu");
    let (checkpoint, last) = clocks_checkpoint(&dir);
    let mut image = Image::read(&checkpoint);
    let at = image.thread_field(offset_of!(ThreadRecord, xcr0));
    let saved = u32::from_le_bytes(image.bytes[at..at + 4].try_into().unwrap());
    assert_eq!(saved, here, "the checkpoint records this CPU's XCR0");
    // A state component this CPU does not have (AMX tile data, or the lowest one missing).
    let missing = (0..32).map(|b| 1u32 << b).find(|b| here & b == 0).unwrap();
    image.put_u32(at, here | missing);
    let other = dir.join("other.ckpt");
    write_image(&other, &image.seal());
    let finished = run_to_end(restart_command(&dir, &other), "other.ckpt", TIMEOUT);
    if finished.status.code() != Some(76) || !finished.stderr.contains(&format!("{missing:#x}")) {
        finished.fail(
            "other.ckpt",
            "expected exit status 76 naming the missing XCR0 bits",
        );
    }
    // The untouched checkpoint restarts.
    let mut proc = expect_rounds(restart_command(&dir, &checkpoint), "clocks.ckpt", last, 2);
    proc.kill();
}

#[test]
fn a_child_timer_is_never_taken_for_the_parents_retry_timer() {
    let dir = TempDir::new("fork-timer");
    let program = compile_c(&dir, "forktimer", FORKTIMER_C, &[]);
    let checkpoint = checkpoint_path(&dir, &program);
    let mut command = ckpt_command(&dir, &program, &[]);
    command.env("CKPT_CONTINUE", "1");
    // The forked child takes signal checkpoints of its own (by default only the program
    // does: tests/everyday.rs).
    command.env("CKPT_CHILDREN", "1");
    let mut proc = Proc::spawn(command, "forktimer");
    proc.wait_line("ready");
    // A checkpoint of the parent, in its clock loop: put off at least once, which makes the
    // retry timer.
    proc.signal(libc::SIGTSTP);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !checkpoint.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of the parent"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_file(&checkpoint).unwrap();
    proc.signal(libc::SIGUSR2);
    let ready = proc.wait_line_matching("the child", TIMEOUT, |l| {
        l.starts_with("child ready") || l.starts_with("BAD")
    });
    proc.assert_no_bad_lines();
    let child: i32 = number_after(&ready, "child ready ").unwrap() as i32;
    // A checkpoint of the child, in its clock loop, is put off too: with its own retry timer,
    // not with the id inherited from the parent, which names the child's own timer.
    // SAFETY: kill(2) of the child process the program just reported.
    unsafe { libc::kill(child, libc::SIGTSTP) };
    proc.wait_for_file(&checkpoint);
    proc.wait_line_matching("the child going on", TIMEOUT, |l| {
        l.starts_with("child ok") || l.starts_with("BAD")
    });
    proc.wait_lines(1, TIMEOUT);
    proc.assert_no_bad_lines();
    // SAFETY: as above.
    unsafe { libc::kill(child, libc::SIGKILL) };
    proc.kill();
}
