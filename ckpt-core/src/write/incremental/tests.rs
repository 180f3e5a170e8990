//! The extent writer against real files and memory: where each page comes from.

use super::*;
use ckpt_image::crc32c::{page_lanes, PayloadChecksum};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

const PAGES: u64 = 16;

/// A private anonymous mapping of `PAGES` pages, page `i` filled with `i + 1`.
fn memory() -> &'static mut [u8] {
    let len = (PAGES * PAGE) as usize;
    // SAFETY: a fresh private anonymous mapping, used only by this test (and leaked).
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    // SAFETY: the mapping just made, `len` bytes, referenced by nothing else.
    let m = unsafe { core::slice::from_raw_parts_mut(p as *mut u8, len) };
    for (i, page) in m.chunks_mut(PAGE as usize).enumerate() {
        page.fill(i as u8 + 1);
    }
    m
}

fn temp_file(name: &str) -> std::fs::File {
    let path = std::env::temp_dir().join(format!("ckpt-incr-{}-{name}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

fn run(start: u64, end: u64) -> PageRegion {
    PageRegion {
        start,
        end,
        categories: 0,
    }
}

/// The extent of `PAGES` pages at `base`, going to offset 3 pages of `spare`.
fn job_over<'a>(
    spare: &std::fs::File,
    base: u64,
    lanes: &'a mut [[u32; 4]],
) -> extent::ExtentJob<'a> {
    extent::ExtentJob {
        fd: spare.as_raw_fd(),
        addr: base,
        len: PAGES * PAGE,
        offset: 3 * PAGE,
        out: lanes,
    }
}

#[test]
fn union_merges_overlapping_and_touching_runs_in_order() {
    let a = [run(0, 2), run(5, 6), run(9, 12)];
    let b = [run(1, 3), run(3, 4), run(7, 8), run(11, 15), run(20, 21)];
    let got: Vec<_> = extent::Union::new(&a, &b).collect();
    assert_eq!(got, [(0, 4), (5, 6), (7, 8), (9, 15), (20, 21)]);
    assert_eq!(
        extent::Union::new(&[], &b[..1]).collect::<Vec<_>>(),
        [(1, 3)]
    );
    assert_eq!(extent::Union::new(&[], &[]).count(), 0);
}

#[test]
fn pages_not_written_stay_as_the_spare_holds_them_and_the_checksum_covers_them() {
    let mem = memory();
    let base = mem.as_ptr() as u64;
    // The spare: the extent at offset 3 pages, as memory was when it was taken.
    let spare = temp_file("spare");
    spare.write_all_at(mem, 3 * PAGE).unwrap();
    let old = mem.to_vec();
    let mut lanes: Vec<[u32; 4]> = mem.chunks(PAGE as usize).map(page_lanes).collect();
    // The program writes pages 2, 7 and 13 (2 in the interval before, 7 and 13 in this
    // one); page 5 changes too but is not reported as written, which shows where each
    // page came from.
    for p in [2, 5, 7, 13] {
        mem[(p * PAGE) as usize] ^= 0xff;
    }
    let page = |p: u64| base + p * PAGE;
    let before = [run(page(2), page(3))];
    let now = [run(page(7), page(8)), run(page(13), page(14))];
    let mut job = job_over(&spare, base, &mut lanes);
    let written = job.write_runs(extent::Union::new(&before, &now)).unwrap();
    assert_eq!(written, 3 * PAGE);
    let crc = job.checksum();
    let mut bytes = vec![0u8; (PAGES * PAGE) as usize];
    spare.read_exact_at(&mut bytes, 3 * PAGE).unwrap();
    let mut expected = mem.to_vec();
    let p5 = (5 * PAGE) as usize..(6 * PAGE) as usize;
    expected[p5.clone()].copy_from_slice(&old[p5]);
    assert!(
        bytes == expected,
        "page 5 as the spare held it, the rest as now"
    );
    // The checksum, built from lanes recorded for kept pages, is the bytes'.
    assert_eq!(crc, PayloadChecksum::of(&bytes));
    let by_page: Vec<[u32; 4]> = bytes.chunks(PAGE as usize).map(page_lanes).collect();
    assert_eq!(lanes, by_page, "the lanes recorded for the next checkpoint");

    // Everything: all from memory.
    let mut job = job_over(&spare, base, &mut lanes);
    job.write_runs(core::iter::once((base, base + PAGES * PAGE)))
        .unwrap();
    let crc = job.checksum();
    spare.read_exact_at(&mut bytes, 3 * PAGE).unwrap();
    assert!(bytes == mem);
    assert_eq!(crc, PayloadChecksum::of(&bytes));
}
