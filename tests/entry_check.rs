//! The checkpoint file as the kernel loads it, stopped before its first instruction (the
//! entry check): the first page and the stub are mapped contiguously, and the stack is not
//! executable although the file has no `PT_GNU_STACK` program header (its bytes went to the
//! entry check; on x86-64 only 32-bit programs get an executable stack without one).

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Instant;

use ckpt_image::{elf, stub_sum::StubSum, ImageHeader};
use ckpt_tests::*;

/// Waits (polling, with a timeout) until the traced child `pid` stops; fails if it exits.
fn wait_for_stop(pid: i32) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid pointer to an int; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            assert!(
                libc::WIFSTOPPED(status),
                "the checkpoint ended (wait status {status:#x}) instead of stopping at exec"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no stop at exec within {TIMEOUT:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn the_kernel_maps_the_checkpoint_with_a_stack_that_is_not_executable() {
    let dir = TempDir::new("entry-check");
    let (checkpoint, _, _) = counter_checkpoint(&dir, &["5"]);
    let bytes = std::fs::read(&checkpoint).expect("read checkpoint");
    let header_at = elf::locate_header(&bytes).expect("PT_CKPT") as usize;
    let header = ImageHeader::read_from(&bytes[header_at..]).expect("header");

    let mut command = restart_command(&dir, &checkpoint);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and makes one system call,
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            skip(
                Skip::CannotHere,
                &format!("ptrace is not permitted here ({e}): cannot stop at exec"),
            );
            return;
        }
        Err(e) => panic!("cannot run the checkpoint under ptrace: {e}"),
    };
    let pid = child.id() as i32;
    wait_for_stop(pid);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let personality =
        std::fs::read_to_string(format!("/proc/{pid}/personality")).expect("read personality");
    child.kill().expect("kill the stopped checkpoint");
    child.wait().expect("reap it");

    let line_of = |start: u64| {
        maps.lines()
            .find(|line| line.starts_with(&format!("{start:x}-")))
            .unwrap_or_else(|| panic!("nothing mapped at {start:#x}:\n{maps}"))
    };
    let first_page = line_of(elf::prefix_address(header.stub_base));
    assert!(
        first_page.starts_with(&format!(
            "{:x}-{:x} r-xp 00000000 ",
            elf::prefix_address(header.stub_base),
            header.stub_base
        )),
        "the first page: {first_page}"
    );
    let stub = line_of(header.stub_base);
    assert!(
        stub.split_whitespace().nth(1) == Some("rwxp"),
        "the stub: {stub}"
    );
    let stack = maps
        .lines()
        .find(|line| line.ends_with("[stack]"))
        .unwrap_or_else(|| panic!("no [stack]:\n{maps}"));
    assert_eq!(
        stack.split_whitespace().nth(1),
        Some("rw-p"),
        "the stack: {stack}"
    );
    // No READ_IMPLIES_EXEC (0x0400000), which the restarted program would inherit.
    assert_eq!(personality.trim(), "00000000", "personality");
}

#[test]
fn the_header_and_the_entry_check_hold_the_checksum_of_the_stub_as_stored() {
    let dir = TempDir::new("entry-check-sum");
    let (checkpoint, _, _) = counter_checkpoint(&dir, &["5"]);
    let bytes = std::fs::read(&checkpoint).expect("read checkpoint");
    let header_at = elf::locate_header(&bytes).expect("PT_CKPT") as usize;
    let header = ImageHeader::read_from(&bytes[header_at..]).expect("header");
    let (placement, _) = elf::read_placement(&bytes).expect("a placement");
    let range = elf::checked_range(placement.file_size);
    assert_eq!(range, elf::PREFIX_SIZE as u64..header_at as u64);
    let sum = StubSum::of(&bytes[range.start as usize..range.end as usize]);
    assert_eq!(header.stub_sum, sum, "the header's stub checksum");
    let in_loader = bytes[..elf::PREFIX_SIZE]
        .windows(8)
        .filter(|w| *w == sum.to_le_bytes())
        .count();
    assert_eq!(in_loader, 1, "the entry check holds the checksum once");
    // The rest of the first page is zero, as the writer's checksum assumes.
    assert!(bytes[elf::PREFIX_SIZE..4096].iter().all(|&b| b == 0));
}
