//! The extent writer against real files and memory: where each page comes from.

use super::*;
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

/// Writes the extent of `mem` with `written` and the previous file `prev` (which holds
/// the pages of `prev_extents` as they were); returns the new file's bytes, the
/// checksum, the lanes and the bytes copied.
fn write(
    mem: &[u8],
    written: Option<&[PageRegion]>,
    prev: &std::fs::File,
    prev_extents: &[LedgerExtent],
    prev_lanes: &[[u32; 4]],
    copy_anyway: bool,
) -> (Vec<u8>, u32, Vec<[u32; 4]>, u64) {
    let out = temp_file("new");
    let mut lanes = vec![[0u32; 4]; PAGES as usize];
    let mut sharing = Sharing::Unknown;
    let mut job = ExtentJob {
        fd: out.as_raw_fd(),
        prev_fd: prev.as_raw_fd(),
        addr: mem.as_ptr() as u64,
        len: PAGES * PAGE,
        offset: PAGE,
        sum: PayloadChecksum::new(),
        out: &mut lanes,
        copied: 0,
        runs: 0,
        sharing: &mut sharing,
        copy_anyway,
    };
    let mut staging = vec![0u8; 1 << 16];
    job.run(written, (prev_extents, prev_lanes), &mut staging)
        .unwrap();
    let (crc, copied) = (job.sum.finish(), job.copied);
    let mut bytes = vec![0u8; (PAGES * PAGE) as usize];
    out.read_exact_at(&mut bytes, PAGE).unwrap();
    (bytes, crc, lanes, copied)
}

#[test]
fn unchanged_pages_come_from_the_previous_file_and_the_checksum_covers_them() {
    let mem = memory();
    let base = mem.as_ptr() as u64;
    // The previous file: pages 0..12 of the extent at offset 3 pages, as they are now.
    let prev = temp_file("prev");
    prev.write_all_at(&mem[..(12 * PAGE) as usize], 3 * PAGE)
        .unwrap();
    let prev_lanes: Vec<[u32; 4]> = mem[..(12 * PAGE) as usize]
        .chunks(PAGE as usize)
        .map(page_lanes)
        .collect();
    let prev_extents = [LedgerExtent {
        addr: base,
        len: 12 * PAGE,
        file_offset: 3 * PAGE,
        first_page: 0,
    }];
    let old = mem.to_vec();
    // The program writes pages 2, 7 and 13; page 5 changes too but is not reported as
    // written, which shows where each page came from.
    for p in [2, 5, 7, 13] {
        mem[(p * PAGE) as usize] ^= 0xff;
    }
    let page = |p: u64| base + p * PAGE;
    let written = [
        PageRegion {
            start: page(2),
            end: page(3),
            categories: 0,
        },
        PageRegion {
            start: page(7),
            end: page(8),
            categories: 0,
        },
        PageRegion {
            start: page(13),
            end: page(14),
            categories: 0,
        },
    ];
    let mut expected = mem.to_vec();
    let p5 = (5 * PAGE) as usize..(6 * PAGE) as usize;
    expected[p5.clone()].copy_from_slice(&old[p5]);

    for copy_anyway in [true, false] {
        let (bytes, crc, lanes, copied) = write(
            mem,
            Some(&written),
            &prev,
            &prev_extents,
            &prev_lanes,
            copy_anyway,
        );
        // The checksum, built from recorded lanes for copied pages, is the bytes'.
        assert_eq!(crc, PayloadChecksum::of(&bytes));
        let by_page: Vec<[u32; 4]> = bytes.chunks(PAGE as usize).map(page_lanes).collect();
        assert_eq!(lanes, by_page, "the lanes recorded for the next checkpoint");
        if copied > 0 {
            // Pages 0..12 but the two written ones, from the previous file.
            assert_eq!(copied, 10 * PAGE);
            assert!(
                bytes == expected,
                "page 5 from the previous file, the rest as now"
            );
        } else {
            // This file system neither shares nor (copy_anyway false) copies: all from
            // memory.
            assert!(!copy_anyway);
            assert!(bytes == mem, "written from memory");
        }
    }
    // Nothing known: all from memory, whatever the previous file holds.
    let (bytes, crc, _, copied) = write(mem, None, &prev, &prev_extents, &prev_lanes, true);
    assert_eq!(copied, 0);
    assert!(bytes == mem);
    assert_eq!(crc, PayloadChecksum::of(&bytes));
}
