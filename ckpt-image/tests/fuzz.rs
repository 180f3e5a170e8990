//! Fuzz tests of everything in `ckpt-image` that reads bytes someone else wrote: seeded
//! mutations of valid inputs made by the real encoders (see `fuzzing/mod.rs` for the
//! strategies and how to replay a failure), each checked against an independent reference
//! written here from the documented format, or against another crate (`crc`, `lz4_flex`).
//!
//! | test                  | cases   | what must hold                                            |
//! |-----------------------|---------|-----------------------------------------------------------|
//! | `image_header`        | 50,000  | `read_from` + `validate` on mutated headers decide exactly as the format says, in its order |
//! | `tables`              | 100,000 | `Tables::parse` on mutated valid tables accepts exactly the consistent ones, and shows them as they are |
//! | `elf_prefix`          | 100,000 | `locate_header`, `read_placement` on mutated prefixes from `write_prefix`: exactly what the bytes say |
//! | `lz4_round_trips`     | 5,000   | `lz4_flex` (the writer's encoder) → our and `lz4_flex`'s decoder: the input back |
//! | `lz4_damaged_streams` | 100,000 | `lz4::decompress` on mutated streams succeeds exactly when `lz4_flex` fills the same output, with the same bytes; never writes past it |
//! | `lz4_frames`          | 20,000  | `frame_header`, `write_frame_header` and `frame_ok` as documented |
//! | `crc32c_against_crc`  | 20,000  | `crc32c`, `crc32c_portable`, `PayloadChecksum` equal the `crc` crate's CRC-32C on any bytes, lengths, alignments, pieces |
//! | `request_lines`       | 20,000  | `parse_request`, `request_line` and `socket_name` on random strings |
//! | `answers`             | 20,000  | `Answer::parse` on random lines; `Answer::write` → `parse` round trips |
//! | `signal_names`        | 20,000  | `parse_signal` on random strings equals a table of every accepted spelling |
//! | `procfs_text`         | 50,000  | `procfs::{maps_line, line_range, parse_hex, parse_dec, parse_oct, stat_field, stat_number, status_value, status_kib, status_mask}` on this process's own `/proc` files, damaged, equal a reference written from proc(5) |
//!
//! 505,000 cases, about 4 s in a release build (`tables` takes most of it), a tenth of them
//! in a debug build. No case is ever panicking or hanging: a panic fails its case, and a case
//! that runs for seconds fails the run (see `fuzzing/mod.rs`).
//!
//! "Exactly" means both ways: what the code accepts, the reference accepts, and the other
//! way round, so a check that went missing fails here as surely as one that became too
//! strict.

#[macro_use]
mod fuzzing;

use std::mem::size_of;

use ckpt_image::request::{self, Answer};
use ckpt_image::{
    crc32c, elf, signals, ExtentRecord, FdRecord, FormatError, ImageHeader, RegionRecord,
    SigactionRecord, StubScratch, Tables, ThreadRecord, EM_X86_64, EXTENT_GUARD, EXTENT_HAS_CRC,
    EXTENT_LZ4, EXTENT_SIZE, FORMAT_VERSION, HEADER_SPACE, MAGIC, NSIG, PAGE_SIZE, PT_CKPT,
    REGION_SIZE, SIGACTION_SIZE, STUB_FILE_OFFSET, THREAD_IN_VDSO, THREAD_LEADER, THREAD_MAIN,
    THREAD_PTRACED, THREAD_SIZE,
};
use ckpt_image::{lz4, procfs};
use ckpt_image::{FD_ACTION_CLOSED, FD_ACTION_REOPEN, FD_ACTION_STDIO, FD_SIZE};
use fuzzing::{mutate, run, Mutation, Rng, IN_PLACE, MUTATIONS};

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

// ---------------------------------------------------------------------------------------------
// Records as bytes

/// The image's table records: `#[repr(C)]`, integers only, padding explicit, so every byte is
/// initialised and every bit pattern is a valid value.
trait Record: Copy + Default {}
impl Record for RegionRecord {}
impl Record for ExtentRecord {}
impl Record for ThreadRecord {}
impl Record for SigactionRecord {}
impl Record for FdRecord {}
impl Record for ImageHeader {}
impl Record for ckpt_image::MmLayout {}

fn bytes_of<T: Record>(records: &[T]) -> &[u8] {
    // SAFETY: a Record has no uninitialised bytes (see the trait); the slice borrows `records`.
    unsafe { std::slice::from_raw_parts(records.as_ptr().cast(), std::mem::size_of_val(records)) }
}

fn bytes_of_mut<T: Record>(record: &mut T) -> &mut [u8] {
    // SAFETY: as in bytes_of, and any bytes written make a valid Record.
    unsafe { std::slice::from_raw_parts_mut((record as *mut T).cast(), size_of::<T>()) }
}

/// The record at byte `at` of `bytes`, which must hold it.
fn read_record<T: Record>(bytes: &[u8], at: usize) -> T {
    assert!(at + size_of::<T>() <= bytes.len());
    // SAFETY: in bounds (checked), unaligned read, and any bit pattern is a valid Record.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().add(at).cast()) }
}

fn random_record<T: Record>(rng: &mut Rng) -> T {
    let mut r = T::default();
    for b in bytes_of_mut(&mut r) {
        *b = rng.next_u64() as u8;
    }
    r
}

/// `len` bytes at an 8-byte aligned address (as the stub maps them and `ckpt` reads them),
/// or at an odd one when `skew` is set.
struct Buffer {
    words: Vec<u64>,
    skew: usize,
    len: usize,
}

impl Buffer {
    fn new(bytes: &[u8], skew: bool) -> Buffer {
        let skew = usize::from(skew);
        let mut words = vec![0u64; (bytes.len() + skew).div_ceil(8) + 1];
        // SAFETY: viewing a Vec<u64> as its bytes (u8 has no alignment or validity rules).
        let all = unsafe {
            std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8)
        };
        all[skew..skew + bytes.len()].copy_from_slice(bytes);
        Buffer {
            words,
            skew,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: as in new; skew + len is within the words (allocated for it).
        let all = unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.words.len() * 8)
        };
        &all[self.skew..self.skew + self.len]
    }
}

// ---------------------------------------------------------------------------------------------
// Valid images, as libckpt's write.rs lays them out

const PAGE: u64 = PAGE_SIZE;
const USER_TOP: u64 = 0x0000_8000_0000_0000;

/// An image's header and tables before they are laid out; `serialize` fills in the counts,
/// lengths and checksums as the writer does.
#[derive(Clone)]
struct Model {
    header: ImageHeader,
    regions: Vec<RegionRecord>,
    extents: Vec<ExtentRecord>,
    threads: Vec<ThreadRecord>,
    sigactions: Vec<SigactionRecord>,
    auxv: Vec<u64>,
    fds: Vec<FdRecord>,
    names: Vec<u8>,
}

const NAMES: [&[u8]; 6] = [
    b"/usr/lib/x86_64-linux-gnu/libc.so.6",
    b"[heap]",
    b"[stack]",
    b"/tmp/a file with blanks",
    b"/memfd:jit (deleted)",
    b"[vdso]",
];

/// A consistent image: regions sorted and disjoint, clear of the stub's reservation, each
/// with stored, compressed and guard extents where `write.rs` would put them.
fn valid_model(rng: &mut Rng) -> Model {
    let stub_base = 0x1000_0000_0000 + rng.below(256) as u64 * 0x10_0000;
    let stub_reserve = PAGE * rng.between(1, 4096) as u64;
    let stub_mem = stub_reserve - PAGE * rng.below((stub_reserve / PAGE) as usize) as u64;
    let stub_pages = rng.between(1, 8) as u64;
    let mut file_at = STUB_FILE_OFFSET + stub_pages * PAGE + HEADER_SPACE;

    let region_count = match rng.below(10) {
        0 => 0,
        1..=7 => rng.between(1, 8),
        _ => rng.between(9, 40),
    };
    let mut regions = Vec::new();
    let mut extents = Vec::new();
    let mut names = Vec::new();
    let mut addr = 0x40_0000 + PAGE * rng.below(1024) as u64;
    for i in 0..region_count {
        if i == region_count / 2 && rng.one_in(2) {
            // The rest above the stub's reservation.
            addr = stub_base + stub_reserve + PAGE * rng.below(64) as u64;
        }
        let start = addr + PAGE * rng.pick(&[0, 0, 1, 7]);
        let pages = if rng.one_in(8) {
            rng.between(1, 512)
        } else {
            rng.between(1, 32)
        } as u64;
        let first_extent = extents.len() as u32;
        let mut stored = 0;
        let mut page = 0;
        while page < pages && rng.below(5) != 0 {
            page += rng.below(3) as u64;
            if page >= pages {
                break;
            }
            let len = PAGE * rng.between(1, (pages - page).min(16) as usize) as u64;
            let mut e = ExtentRecord {
                addr: start + page * PAGE,
                len,
                ..Default::default()
            };
            match rng.below(3) {
                0 => {
                    file_at = file_at.next_multiple_of(PAGE);
                    e.file_offset = file_at;
                    file_at += len;
                    if rng.one_in(4) {
                        e.flags = EXTENT_HAS_CRC;
                        e.crc = rng.next_u64() as u32;
                    }
                    stored += len;
                }
                1 => {
                    e.file_offset = file_at;
                    file_at += (lz4::FRAME_HEADER + rng.between(1, len as usize)) as u64;
                    e.flags = EXTENT_LZ4;
                    if rng.one_in(2) {
                        e.flags |= EXTENT_HAS_CRC;
                        e.crc = rng.next_u64() as u32;
                    }
                    stored += len;
                }
                _ => e.flags = EXTENT_GUARD,
            }
            extents.push(e);
            page += len / PAGE;
        }
        let (name_offset, name_len) = if rng.one_in(2) {
            let name = rng.pick(&NAMES);
            names.extend_from_slice(name);
            ((names.len() - name.len()) as u32, name.len() as u32)
        } else {
            (0, 0)
        };
        regions.push(RegionRecord {
            start,
            len: pages * PAGE,
            prot: rng.below(8) as u32,
            flags: rng.next_u64() as u32 & ((1 << 23) - 1),
            first_extent,
            extent_count: extents.len() as u32 - first_extent,
            file_offset: PAGE * rng.below(100) as u64,
            inode: rng.interesting(),
            dev: rng.interesting(),
            name_offset,
            name_len,
            stored,
        });
        addr = start + pages * PAGE;
    }
    let mut threads: Vec<ThreadRecord> = (0..if rng.one_in(8) { rng.between(2, 3) } else { 1 })
        .map(|_| random_record(rng))
        .collect();
    for (i, t) in threads.iter_mut().enumerate() {
        t.flags &= THREAD_IN_VDSO | if i > 0 { THREAD_PTRACED } else { 0 };
    }
    let leader = rng.below(threads.len());
    threads[leader].flags &= !THREAD_PTRACED;
    threads[leader].flags |= THREAD_LEADER;
    if rng.one_in(2) {
        threads[0].flags |= THREAD_MAIN;
    }
    let sigaction_count = if rng.one_in(2) {
        NSIG
    } else {
        rng.below(NSIG + 1)
    };
    let sigactions = (0..sigaction_count).map(|_| random_record(rng)).collect();
    let auxv = (0..rng.below(48)).map(|_| rng.next_u64()).collect();
    // Descriptors: increasing numbers, reopened (kinds 1-3), standard (0-2) of any kind, or
    // left closed; some sharing a description with an earlier one of their kind.
    let mut fds: Vec<FdRecord> = Vec::new();
    let mut fd = rng.below(3) as u32;
    for i in 0..rng.below(12) {
        let mut f: FdRecord = random_record(rng);
        f.fd = fd;
        fd += rng.between(1, 4) as u32;
        (f.kind, f.action) = match rng.below(3) {
            _ if f.fd <= 2 => (rng.between(1, 11) as u32, FD_ACTION_STDIO),
            0 => (rng.between(4, 11) as u32, FD_ACTION_CLOSED),
            _ => (rng.between(1, 3) as u32, FD_ACTION_REOPEN),
        };
        f.fd_flags &= 7;
        let leaders: Vec<u32> = (0..fds.len() as u32)
            .filter(|&j| fds[j as usize].group == j)
            .collect();
        f.group = if !leaders.is_empty() && rng.one_in(3) {
            rng.pick(&leaders)
        } else {
            i as u32
        };
        let name = rng.pick(&NAMES);
        names.extend_from_slice(name);
        (f.name_offset, f.name_len) = ((names.len() - name.len()) as u32, name.len() as u32);
        (f.aux_offset, f.aux_len, f.data_offset, f.data_len) = (0, 0, 0, 0);
        fds.push(f);
    }

    let mut model = Model {
        header: ImageHeader {
            magic: MAGIC,
            version: FORMAT_VERSION,
            header_size: size_of::<ImageHeader>() as u32,
            arch: EM_X86_64,
            tables_offset: file_at.next_multiple_of(8),
            stub_base,
            stub_reserve,
            stub_mem,
            taken_at: rng.next_u64(),
            pid: rng.next_u64() as u32,
            stub_sum: rng.next_u64(),
            ..Default::default()
        },
        regions,
        extents,
        threads,
        sigactions,
        auxv,
        fds,
        names,
    };
    for field in bytes_of_mut(&mut model.header.mm).chunks_mut(8) {
        field.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let tables_len = model.tables().len() as u64;
    model.header.file_len = model.header.tables_offset + tables_len;
    model
}

impl Model {
    fn tables(&self) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(bytes_of(&self.regions));
        t.extend_from_slice(bytes_of(&self.extents));
        t.extend_from_slice(bytes_of(&self.threads));
        t.extend_from_slice(bytes_of(&self.sigactions));
        for w in &self.auxv {
            t.extend_from_slice(&w.to_le_bytes());
        }
        t.extend_from_slice(bytes_of(&self.fds));
        t.extend_from_slice(&self.names);
        t
    }

    /// Sets each region's `stored` to the length of the stored extents it names (where they
    /// are in the table).
    fn count_stored(&mut self) {
        for r in &mut self.regions {
            let first = (r.first_extent as usize).min(self.extents.len());
            let last = first
                .saturating_add(r.extent_count as usize)
                .min(self.extents.len());
            r.stored = self.extents[first..last]
                .iter()
                .filter(|e| e.flags & EXTENT_GUARD == 0)
                .fold(0u64, |sum, e| sum.wrapping_add(e.len));
        }
    }

    /// The header and tables as the writer finishes them: counts, lengths, checksums.
    fn serialize(&self) -> (ImageHeader, Vec<u8>) {
        let tables = self.tables();
        let mut h = self.header;
        h.region_count = self.regions.len() as u32;
        h.extent_count = self.extents.len() as u32;
        h.thread_count = self.threads.len() as u32;
        h.sigaction_count = self.sigactions.len() as u32;
        h.auxv_words = self.auxv.len() as u32;
        h.names_len = self.names.len() as u32;
        h.fd_count = self.fds.len() as u32;
        h.tables_len = tables.len() as u64;
        h.tables_crc = CASTAGNOLI.checksum(&tables);
        h.header_crc = header_crc(&h);
        (h, tables)
    }
}

/// The header checksum as the format defines it: CRC-32C of the header's bytes with the
/// checksum field zero.
fn header_crc(h: &ImageHeader) -> u32 {
    let mut copy = *h;
    copy.header_crc = 0;
    CASTAGNOLI.checksum(bytes_of(std::slice::from_ref(&copy)))
}

// ---------------------------------------------------------------------------------------------
// The reference checks, from the format's documentation

/// What `ImageHeader::validate` must decide: magic, version, architecture, header size and
/// checksum, file length, then the tables' place and counts.
fn reference_validate(h: &ImageHeader, actual_len: u64) -> Result<(), FormatError> {
    if h.magic != MAGIC {
        return Err(FormatError::BadMagic);
    }
    if h.version != FORMAT_VERSION {
        return Err(FormatError::NewerVersion);
    }
    if h.arch != EM_X86_64 {
        return Err(FormatError::OtherArch);
    }
    if h.header_size as usize != size_of::<ImageHeader>() || header_crc(h) != h.header_crc {
        return Err(FormatError::HeaderChecksum);
    }
    if actual_len < h.file_len {
        return Err(FormatError::Truncated);
    }
    let tables_end = h.tables_offset as u128 + h.tables_len as u128;
    if tables_len(h) != h.tables_len as u128
        || tables_end > h.file_len as u128
        || h.thread_count == 0
        || h.sigaction_count as usize > NSIG
        || h.stub_mem > h.stub_reserve
    {
        return Err(FormatError::BadTables);
    }
    Ok(())
}

/// The length of the tables the header's counts describe (never overflowing).
fn tables_len(h: &ImageHeader) -> u128 {
    h.region_count as u128 * REGION_SIZE as u128
        + h.extent_count as u128 * EXTENT_SIZE as u128
        + h.thread_count as u128 * THREAD_SIZE as u128
        + h.sigaction_count as u128 * SIGACTION_SIZE as u128
        + h.auxv_words as u128 * 8
        + h.fd_count as u128 * FD_SIZE as u128
        + h.names_len as u128
}

/// Tables decoded from their bytes, record by record.
#[derive(Debug, PartialEq)]
struct Decoded {
    regions: Vec<RegionRecord>,
    extents: Vec<ExtentRecord>,
    threads: Vec<ThreadRecord>,
    sigactions: Vec<SigactionRecord>,
    auxv: Vec<u64>,
    fds: Vec<FdRecord>,
    names: Vec<u8>,
}

fn decode(h: &ImageHeader, bytes: &[u8]) -> Decoded {
    let mut at = 0;
    fn take<T: Record>(bytes: &[u8], at: &mut usize, n: u32) -> Vec<T> {
        (0..n)
            .map(|_| {
                let r = read_record(bytes, *at);
                *at += size_of::<T>();
                r
            })
            .collect()
    }
    let regions = take(bytes, &mut at, h.region_count);
    let extents = take(bytes, &mut at, h.extent_count);
    let threads = take(bytes, &mut at, h.thread_count);
    let sigactions = take(bytes, &mut at, h.sigaction_count);
    let auxv = (0..h.auxv_words)
        .map(|i| u64::from_le_bytes(bytes[at + 8 * i as usize..][..8].try_into().unwrap()))
        .collect();
    at += 8 * h.auxv_words as usize;
    let fds = take(bytes, &mut at, h.fd_count);
    Decoded {
        regions,
        extents,
        threads,
        sigactions,
        auxv,
        fds,
        names: bytes[at..].to_vec(),
    }
}

/// What `Tables::parse` must decide, in u128 arithmetic so that nothing wraps:
/// - the tables are as long as the header's counts say, 8-byte aligned, and match their
///   checksum;
/// - regions are page aligned, not empty, sorted and disjoint, in user space (below
///   `USER_TOP`), their names inside the names table, their extents inside the extent table;
/// - each region's extents are page aligned, in order, disjoint, inside the region;
/// - a guard extent has the guard flag alone, no file offset or checksum, and is not empty;
/// - a stored extent lies after the stub in the file: page aligned and wholly inside the file
///   when plain, its first frame header inside the file when compressed (its frames are
///   checked as they are read); the region's `stored` is the sum of their lengths;
/// - thread records carry only defined flags, exactly one is the leader, only the first may
///   be the main thread, and neither the first nor the leader was stopped with ptrace;
/// - descriptor records have increasing numbers (at most `i32::MAX`), a kind 1 to 11 and an
///   action 1 to 3; action 1 (reopen) only for kinds 1 to 3 and action 2 (standard) only for
///   descriptors 0 to 2; only the close-on-exec and locked flags (1, 2); a group that is the index of
///   a record at or before it which leads its own group; the path inside the names; the
///   fields for later kinds zero;
/// - no region overlaps the stub's reservation, which does not wrap around.
fn reference_parse(h: &ImageHeader, bytes: &[u8], aligned: bool) -> Result<Decoded, FormatError> {
    let bad = Err(FormatError::BadTables);
    if bytes.len() as u128 != tables_len(h) || !aligned {
        return bad;
    }
    if CASTAGNOLI.checksum(bytes) != h.tables_crc {
        return Err(FormatError::TablesChecksum);
    }
    let t = decode(h, bytes);
    let page = PAGE as u128;
    let file_len = h.file_len as u128;
    let mut prev_end = 0u128;
    for r in &t.regions {
        let (start, end) = (r.start as u128, r.start as u128 + r.len as u128);
        if !start.is_multiple_of(page) || !(r.len as u128).is_multiple_of(page) || r.len == 0 {
            return bad;
        }
        if start < prev_end || end > USER_TOP as u128 {
            return bad;
        }
        prev_end = end;
        if r.name_offset as u128 + r.name_len as u128 > t.names.len() as u128 {
            return bad;
        }
        let first = r.first_extent as usize;
        if first as u128 + r.extent_count as u128 > t.extents.len() as u128 {
            return bad;
        }
        let mut cursor = start;
        let mut stored = 0u128;
        for e in &t.extents[first..first + r.extent_count as usize] {
            let (addr, len) = (e.addr as u128, e.len as u128);
            if addr % page != 0 || len % page != 0 || addr < cursor || addr + len > end {
                return bad;
            }
            cursor = addr + len;
            if e.flags & EXTENT_GUARD != 0 {
                if e.flags != EXTENT_GUARD || e.file_offset != 0 || e.crc != 0 || len == 0 {
                    return bad;
                }
                continue;
            }
            let offset = e.file_offset as u128;
            let in_file = if e.flags & EXTENT_LZ4 != 0 {
                // (The code also refuses a compressed extent whose offset plus its memory
                // length would pass 2^64, which only a file that long could hold: no loss.)
                offset + lz4::FRAME_HEADER as u128 <= file_len && offset + len <= u64::MAX as u128
            } else {
                offset.is_multiple_of(page) && offset + len <= file_len
            };
            if offset < STUB_FILE_OFFSET as u128 || !in_file {
                return bad;
            }
            stored += len;
        }
        if stored != r.stored as u128 {
            return bad;
        }
    }
    // Threads: only the flags the format defines; exactly one leader; a main thread only
    // in the first record.
    let known = THREAD_IN_VDSO | THREAD_MAIN | THREAD_LEADER | THREAD_PTRACED;
    let ptraced = |x: &ThreadRecord| x.flags & THREAD_PTRACED != 0;
    if t.threads.iter().any(|x| x.flags & !known != 0)
        || t.threads.iter().skip(1).any(|x| x.flags & THREAD_MAIN != 0)
        || t.threads.first().is_some_and(ptraced)
        || t.threads
            .iter()
            .any(|x| ptraced(x) && x.flags & THREAD_LEADER != 0)
        || t.threads
            .iter()
            .filter(|x| x.flags & THREAD_LEADER != 0)
            .count()
            != 1
    {
        return bad;
    }
    for (i, f) in t.fds.iter().enumerate() {
        let in_order = i == 0 || t.fds[i - 1].fd < f.fd;
        let g = f.group as usize;
        let fine = in_order
            && f.fd <= i32::MAX as u32
            && (1..=17).contains(&f.kind)
            && (1..=4).contains(&f.action)
            && (f.action != FD_ACTION_REOPEN || (1..=3).contains(&f.kind))
            && (f.action != FD_ACTION_STDIO || f.fd <= 2)
            && f.fd_flags <= 7
            && g <= i
            && t.fds[g].group as usize == g
            && f.name_offset as u128 + f.name_len as u128 <= t.names.len() as u128
            && f.aux_offset as u128 + f.aux_len as u128 <= t.names.len() as u128;
        if !fine {
            return bad;
        }
    }
    let stub_end = h.stub_base as u128 + h.stub_reserve as u128;
    if stub_end > u64::MAX as u128 {
        return bad;
    }
    for r in &t.regions {
        if (r.start as u128) < stub_end && (h.stub_base as u128) < r.start as u128 + r.len as u128 {
            return bad;
        }
    }
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// Header and tables

/// `read_from` then `validate` on mutated headers, half of them with the checksum made right
/// again so that the checks behind it are reached.
#[test]
fn image_header() {
    let mut accepted = 0;
    let cases = run("image_header", 50_000, |rng| {
        let (h, _) = valid_model(rng).serialize();
        let valid = bytes_of(std::slice::from_ref(&h)).to_vec();
        let mut bytes = valid.clone();
        let reseal = rng.one_in(2);
        mutate(rng, &mut bytes, &MUTATIONS, &[&valid]);
        let read = ImageHeader::read_from(&bytes);
        ensure!(
            read.is_some() == (bytes.len() >= size_of::<ImageHeader>()),
            "read_from on {} bytes: {read:?}",
            bytes.len()
        );
        let Some(mut header) = read else {
            return Ok(());
        };
        ensure!(
            bytes_of(std::slice::from_ref(&header)) == &bytes[..size_of::<ImageHeader>()],
            "read_from changed the bytes"
        );
        if reseal {
            header.header_crc = header_crc(&header);
        }
        let actual_len = match rng.below(3) {
            0 => header.file_len,
            1 => header
                .file_len
                .wrapping_add(rng.below(5) as u64)
                .wrapping_sub(2),
            _ => rng.interesting(),
        };
        let got = header.validate(actual_len);
        let want = reference_validate(&header, actual_len);
        ensure!(
            got == want,
            "validate({actual_len:#x}) = {got:?}, the format says {want:?} for {header:#x?}"
        );
        accepted += usize::from(got.is_ok());
        // The stub's scratch memory, in arithmetic that cannot overflow.
        let page = |x: u64| (x as u128).div_ceil(PAGE as u128) * PAGE as u128;
        let tables = header.stub_base as u128 + page(header.stub_mem);
        let park = tables + page(header.tables_len);
        let end = header.stub_base as u128 + header.stub_reserve as u128;
        let want = (park <= end && end <= u64::MAX as u128).then_some(StubScratch {
            tables: tables as u64,
            park: park as u64,
            end: end as u64,
        });
        let got = header.stub_scratch();
        ensure!(
            got == want,
            "stub_scratch() = {got:x?}, should be {want:x?}"
        );
        Ok(())
    });
    println!("image_header: {accepted} of {cases} mutated headers accepted");
    assert!(
        cases < 1000 || accepted * 50 > cases,
        "only {accepted} of {cases} mutated headers were accepted"
    );
}

/// A value near one the parser compares against (`anchors`): equal, a byte, a word or a
/// page off either way; or an [`Rng::interesting`] one.
fn edge(rng: &mut Rng, anchors: &[u64]) -> u64 {
    if rng.one_in(4) {
        return rng.interesting();
    }
    let anchor = rng.pick(anchors);
    let step = rng.pick(&[0, 0, 1, 8, PAGE]);
    if rng.one_in(2) {
        anchor.wrapping_add(step)
    } else {
        anchor.wrapping_sub(step)
    }
}

/// Makes one change to a model, at the level of its records: one to three fields of a region
/// or an extent set near a value the checks compare them with (the region's bounds, the
/// file's length, the names table's end …) or changed bit by bit, records swapped, removed
/// or duplicated, a table cut short, or a header field the tables are checked against
/// changed.
fn mutate_model(rng: &mut Rng, m: &mut Model) {
    fn bytes<T: Record>(rng: &mut Rng, record: &mut T) {
        let mut bytes = bytes_of_mut(record).to_vec();
        let how = rng.pick(&[Mutation::SetWord, Mutation::NudgeWord, Mutation::FlipBit]);
        fuzzing::apply(rng, how, &mut bytes, &[]);
        bytes_of_mut(record).copy_from_slice(&bytes);
    }
    fn shuffle<T: Record>(rng: &mut Rng, records: &mut Vec<T>) {
        if records.is_empty() {
            return;
        }
        let (i, j) = (rng.below(records.len()), rng.below(records.len()));
        match rng.below(3) {
            0 => records.swap(i, j),
            1 => {
                records.remove(i);
            }
            _ => records.insert(j, records[i]),
        }
    }
    let file_len = m.header.file_len;
    let (names, extents) = (m.names.len() as u64, m.extents.len() as u64);
    match rng.below(12) {
        0..=3 if !m.regions.is_empty() => {
            let i = rng.below(m.regions.len());
            let prev_end = i
                .checked_sub(1)
                .map_or(0, |p| m.regions[p].start.wrapping_add(m.regions[p].len));
            let r = &mut m.regions[i];
            for _ in 0..rng.between(1, 3) {
                let end = r.start.wrapping_add(r.len);
                match rng.below(8) {
                    0 => r.start = edge(rng, &[r.start, prev_end, end, USER_TOP]),
                    1 => r.len = edge(rng, &[0, r.len, USER_TOP.wrapping_sub(r.start)]),
                    2 => r.first_extent = edge(rng, &[r.first_extent as u64, extents]) as u32,
                    3 => r.extent_count = edge(rng, &[r.extent_count as u64, extents]) as u32,
                    4 => r.name_offset = edge(rng, &[r.name_offset as u64, names]) as u32,
                    5 => r.name_len = edge(rng, &[r.name_len as u64, names]) as u32,
                    6 => r.stored = edge(rng, &[0, r.stored, r.len]),
                    _ => bytes(rng, r),
                }
            }
        }
        4..=7 if !m.extents.is_empty() => {
            let i = rng.below(m.extents.len());
            let region = m
                .regions
                .iter()
                .find(|r| {
                    (r.first_extent as usize..r.first_extent as usize + r.extent_count as usize)
                        .contains(&i)
                })
                .copied()
                .unwrap_or_default();
            let e = &mut m.extents[i];
            for _ in 0..rng.between(1, 3) {
                let (end, region_end) = (
                    e.addr.wrapping_add(e.len),
                    region.start.wrapping_add(region.len),
                );
                match rng.below(6) {
                    0 => e.addr = edge(rng, &[e.addr, end, region.start, region_end]),
                    1 => e.len = edge(rng, &[0, e.len, region_end.wrapping_sub(e.addr)]),
                    2 => {
                        let anchors = [
                            e.file_offset,
                            0,
                            STUB_FILE_OFFSET,
                            file_len,
                            file_len.wrapping_sub(lz4::FRAME_HEADER as u64),
                            file_len.wrapping_sub(e.len),
                            u64::MAX,
                        ];
                        e.file_offset = edge(rng, &anchors);
                    }
                    3 => {
                        e.flags = if rng.one_in(4) {
                            rng.next_u64() as u32
                        } else {
                            rng.below(8) as u32
                        }
                    }
                    4 => {
                        e.crc = if rng.one_in(2) {
                            0
                        } else {
                            rng.next_u64() as u32
                        }
                    }
                    _ => bytes(rng, e),
                }
            }
        }
        8 => match rng.below(2) {
            0 => shuffle(rng, &mut m.regions),
            _ => shuffle(rng, &mut m.extents),
        },
        9 => match rng.below(4) {
            0 => m.names.truncate(rng.below(m.names.len() + 1)),
            1 => m.auxv.truncate(rng.below(m.auxv.len() + 1)),
            2 => m.fds.truncate(rng.below(m.fds.len() + 1)),
            _ => m.threads.truncate(rng.below(m.threads.len() + 1)),
        },
        10 if !m.fds.is_empty() && rng.one_in(2) => {
            let i = rng.below(m.fds.len());
            let f = &mut m.fds[i];
            match rng.below(8) {
                0 => f.fd = edge(rng, &[f.fd as u64, 2, 3, i32::MAX as u64]) as u32,
                1 => f.kind = rng.below(13) as u32,
                2 => f.action = rng.below(5) as u32,
                3 => f.group = edge(rng, &[f.group as u64, i as u64]) as u32,
                4 => f.name_offset = edge(rng, &[f.name_offset as u64, names]) as u32,
                5 => f.name_len = edge(rng, &[f.name_len as u64, names]) as u32,
                6 => f.fd_flags = rng.below(16) as u32,
                _ => bytes(rng, f),
            }
            if rng.one_in(4) {
                shuffle(rng, &mut m.fds);
            }
        }
        10 if !m.threads.is_empty() && rng.one_in(2) => {
            let i = rng.below(m.threads.len());
            let t = &mut m.threads[i];
            t.flags = match rng.below(3) {
                0 => t.flags ^ (1 << rng.below(32)),
                1 => rng.below(8) as u32,
                _ => rng.next_u64() as u32,
            };
            if rng.one_in(4) {
                shuffle(rng, &mut m.threads);
            }
        }
        _ => {
            let h = &mut m.header;
            let lowest = m.regions.first().map_or(0, |r| r.start);
            match rng.below(3) {
                0 => h.file_len = edge(rng, &[h.file_len]),
                1 => h.stub_base = edge(rng, &[h.stub_base, lowest]),
                _ => {
                    h.stub_reserve =
                        edge(rng, &[h.stub_reserve, u64::MAX.wrapping_sub(h.stub_base)])
                }
            }
        }
    }
}

/// `Tables::parse` on tables damaged at the level of records (then laid out and checksummed
/// again, so that the consistency checks are reached) and of bytes (checksummed again most
/// of the time); now and then unaligned, or with a length other than the header says.
#[test]
fn tables() {
    let mut accepted = 0;
    let cases = run("tables", 100_000, |rng| {
        let mut model = valid_model(rng);
        let (h, t) = model.serialize();
        // What the writer makes is accepted.
        let parsed = Tables::parse(&h, Buffer::new(&t, false).bytes()).map(|_| ());
        ensure!(parsed.is_ok(), "a valid image was refused: {parsed:?}");
        ensure!(
            reference_parse(&h, &t, true).is_ok(),
            "the reference refused a valid image"
        );

        for _ in 0..rng.between(1, 3) {
            mutate_model(rng, &mut model);
        }
        if rng.one_in(2) {
            // Keep the sums right, so that what a mutation broke is what is found.
            model.count_stored();
        }
        let (mut h, mut t) = model.serialize();
        if rng.one_in(3) {
            let valid = t.clone();
            let how: &[Mutation] = if rng.one_in(8) { &MUTATIONS } else { &IN_PLACE };
            mutate(rng, &mut t, how, &[&valid]);
            if !rng.one_in(8) {
                h.tables_crc = CASTAGNOLI.checksum(&t);
            }
        }
        let skew = rng.one_in(50);
        let buffer = Buffer::new(&t, skew);
        let got = Tables::parse(&h, buffer.bytes());
        let want = reference_parse(&h, &t, !skew);
        match (&got, &want) {
            (Ok(tables), Ok(decoded)) => {
                accepted += 1;
                let seen = Decoded {
                    regions: tables.regions.to_vec(),
                    extents: tables.extents.to_vec(),
                    threads: tables.threads.to_vec(),
                    sigactions: tables.sigactions.to_vec(),
                    auxv: tables.auxv.to_vec(),
                    fds: tables.fds.to_vec(),
                    names: tables.names.to_vec(),
                };
                ensure!(seen == *decoded, "parse shows other records than the bytes hold");
                for r in tables.regions {
                    // The accessors stay inside what was checked.
                    let _ = (tables.name(r), tables.extents_of(r));
                    let stored: u64 = tables.stored_extents_of(r).map(|e| e.len).sum();
                    ensure!(stored == r.stored, "stored_extents_of disagrees with stored");
                    ensure!(
                        tables.guards_of(r).all(|e| e.flags == EXTENT_GUARD),
                        "guards_of returned a stored extent"
                    );
                }
            }
            (Err(g), Err(w)) if g == w => {}
            _ => {
                return Err(format!(
                    "parse: {:?}, the format says {:?}\nheader: {h:#x?}\nregions: {:#x?}\nextents: {:#x?}",
                    got.as_ref().map(|_| "accepted"),
                    want.as_ref().map(|_| "accepted"),
                    model.regions,
                    model.extents
                ))
            }
        }
        Ok(())
    });
    // Mutations that leave the tables consistent (a name moved, a flag changed) are common
    // enough that the accepting side is exercised too.
    println!("tables: {accepted} of {cases} mutated tables accepted");
    assert!(
        cases < 1000 || accepted * 20 > cases,
        "only {accepted} of {cases} mutated tables were accepted"
    );
}

// ---------------------------------------------------------------------------------------------
// The ELF prefix

/// Fields of the entry check that `read_placement` reads (their offsets in `loader.S`, which
/// `elf.rs`'s own test checks against the assembly).
const LOADER_AT: usize = elf::EHDR_SIZE;
const ENTRY_REL32: usize = LOADER_AT + 0x5a;
const FILE_LEN: usize = LOADER_AT + 0xea;

fn u16_at(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as u64
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Where the image header is, by the ELF specification: an x86-64 ELF64 little-endian file
/// whose program header table (at most 64 entries of 56 bytes, all within `b`) has a
/// `PT_CKPT` entry before any entry that would not fit.
fn reference_locate(b: &[u8]) -> Option<u64> {
    if b.len() < 64 || b[..4] != *b"\x7fELF" || b[4] != 2 || b[5] != 1 || u16_at(b, 18) != 62 {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(b, 32) as u128, u16_at(b, 54), u16_at(b, 56));
    if phentsize != 56 || phnum > 64 {
        return None;
    }
    for i in 0..phnum as u128 {
        let at = phoff + i * 56;
        if at + 56 > b.len() as u128 {
            return None;
        }
        if u32_at(b, at as usize) == PT_CKPT as u64 {
            return Some(u64_at(b, at as usize + 8));
        }
    }
    None
}

/// What a prefix of three program headers says about the stub: the second one's address and
/// sizes, the entry from the check's jump, and the image length the check holds.
fn reference_placement(b: &[u8]) -> Option<(elf::StubPlacement, u64)> {
    if b.len() < elf::PREFIX_SIZE || u16_at(b, 56) != 3 {
        return None;
    }
    let stub_ph = elf::PHDRS_AT + elf::PHDR_SIZE;
    let rel32 = u32_at(b, ENTRY_REL32) as u32 as i32 as i64;
    // The jump lands `entry` bytes into the stub, which starts one page after the prefix.
    let entry = rel32 + (ENTRY_REL32 + 4) as i64 - PAGE as i64;
    Some((
        elf::StubPlacement {
            base: u64_at(b, stub_ph + 16),
            file_size: u64_at(b, stub_ph + 32),
            mem_size: u64_at(b, stub_ph + 40),
            entry: u64::try_from(entry).ok()?,
        },
        u64_at(b, FILE_LEN),
    ))
}

#[test]
fn elf_prefix() {
    let mut located = 0;
    let cases = run("elf_prefix", 100_000, |rng| {
        let file_size = rng.between(1, 0x20_0000) as u64;
        let stub = elf::StubPlacement {
            base: PAGE * rng.between(2, (USER_TOP / PAGE) as usize - 1) as u64,
            file_size,
            mem_size: if rng.one_in(2) {
                file_size
            } else {
                rng.interesting()
            },
            entry: rng.below((file_size as usize).min(0x7fff_0000)) as u64,
        };
        let header_offset = STUB_FILE_OFFSET + file_size.next_multiple_of(PAGE);
        let file_len = if rng.one_in(2) {
            header_offset + HEADER_SPACE
        } else {
            rng.interesting()
        };
        let mut prefix = vec![0u8; rng.between(elf::PREFIX_SIZE, PAGE as usize)];
        elf::write_prefix(
            &mut prefix,
            &stub,
            header_offset,
            size_of::<ImageHeader>() as u64,
            file_len,
            rng.next_u64(),
        );
        // What the writer makes reads back.
        let pages = file_size.next_multiple_of(PAGE);
        let placed = elf::StubPlacement {
            file_size: pages,
            mem_size: stub.mem_size.max(pages),
            ..stub
        };
        ensure!(
            elf::locate_header(&prefix) == Some(header_offset),
            "written prefix not located"
        );
        ensure!(
            elf::read_placement(&prefix) == Some((placed, file_len)),
            "written placement {:?} read back as {:?}",
            (placed, file_len),
            elf::read_placement(&prefix)
        );

        let valid = prefix.clone();
        if rng.one_in(4) {
            // A long program header table with the PT_CKPT entry last: the limit of 64.
            let count = rng.between(60, 68);
            let ckpt = elf::PHDRS_AT + 2 * elf::PHDR_SIZE;
            let ckpt_entry = prefix[ckpt..ckpt + elf::PHDR_SIZE].to_vec();
            let phoff = elf::EHDR_SIZE;
            prefix.resize(PAGE as usize, 0);
            prefix[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
            prefix[56..58].copy_from_slice(&(count as u16).to_le_bytes());
            for i in 0..count {
                let entry = &mut prefix[phoff + i * elf::PHDR_SIZE..][..elf::PHDR_SIZE];
                entry.fill(0);
                entry[0] = 1; // PT_LOAD
            }
            let last = phoff + (count - 1) * elf::PHDR_SIZE;
            prefix[last..last + elf::PHDR_SIZE].copy_from_slice(&ckpt_entry);
        }
        if rng.one_in(3) {
            // The header fields that steer the search.
            let (at, width) = rng.pick(&[(32, 8), (54, 2), (56, 2), (18, 2), (4, 1), (5, 1)]);
            let v = rng.interesting().to_le_bytes();
            prefix[at..at + width].copy_from_slice(&v[..width]);
        }
        mutate(rng, &mut prefix, &MUTATIONS, &[&valid]);
        let got = elf::locate_header(&prefix);
        let want = reference_locate(&prefix);
        ensure!(got == want, "locate_header: {got:?}, the ELF says {want:?}");
        located += usize::from(got.is_some());
        let got = elf::read_placement(&prefix);
        let want = reference_placement(&prefix);
        ensure!(
            got == want,
            "read_placement: {got:?}, the prefix says {want:?}"
        );
        Ok(())
    });
    println!("elf_prefix: the header located in {located} of {cases} mutated prefixes");
    assert!(
        cases < 1000 || located * 5 > cases,
        "the header was located in only {located} of {cases} mutated prefixes"
    );
}

// ---------------------------------------------------------------------------------------------
// LZ4

/// Data of the kinds a checkpoint holds: zero pages with a few words set, runs, repeating
/// patterns of every period, text, noise, and mixtures of these, of lengths at and around
/// the sizes where the encoder's and decoder's paths change.
fn lz4_input(rng: &mut Rng, max: usize) -> Vec<u8> {
    let len = rng.length(max);
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let n = rng.between(1, len - data.len());
        match rng.below(6) {
            0 => data.extend(rng.bytes(n)),
            1 => data.extend(std::iter::repeat_n(rng.next_u64() as u8, n)),
            2 => {
                let period = rng.between(1, 300);
                let pattern = rng.bytes(period);
                data.extend(pattern.iter().cycle().take(n));
            }
            3 => {
                const WORDS: [&[u8]; 8] = [
                    b"the ",
                    b"checkpoint ",
                    b"restart ",
                    b"0x7ffd1c9d6000 ",
                    b"\n",
                    b"\0\0\0\0",
                    b"lz4 ",
                    b"frame ",
                ];
                while data.len() < len && n > 0 {
                    let word = rng.pick(&WORDS);
                    data.extend_from_slice(word);
                }
                data.truncate(len);
            }
            _ => {
                // A mostly zero page with some words set.
                let start = data.len();
                data.resize(start + n, 0);
                for _ in 0..rng.below(8) {
                    let at = start + rng.below(n);
                    data[at] = rng.next_u64() as u8;
                }
            }
        }
    }
    data
}

fn flex_compress(data: &[u8]) -> Vec<u8> {
    let mut table = lz4_flex::block::CompressTable::large();
    let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(data.len())];
    let n = lz4_flex::block::compress_into_with_table(data, &mut out, &mut table)
        .expect("room for the maximum output");
    out.truncate(n);
    out
}

/// The writer's encoder (`lz4_flex`) into both decoders: the restart's and `lz4_flex`'s.
#[test]
fn lz4_round_trips() {
    run("lz4_round_trips", 5_000, |rng| {
        let data = if rng.one_in(300) {
            lz4_input(rng, lz4::FRAME_MAX)
        } else {
            lz4_input(rng, 70_000)
        };
        let packed = flex_compress(&data);
        ensure!(
            packed.len() <= lz4::bound(data.len()),
            "{} bytes compressed to {}, past the bound the restart reserves",
            data.len(),
            packed.len()
        );
        let mut back = vec![0u8; data.len()];
        ensure!(
            lz4::decompress(&packed, &mut back).is_ok() && back == data,
            "lz4_flex → ours: not the input"
        );
        let mut theirs_back = vec![0u8; data.len()];
        let n = lz4_flex::block::decompress_into(&packed, &mut theirs_back);
        ensure!(
            matches!(n, Ok(m) if m == data.len()) && theirs_back == data,
            "lz4_flex → lz4_flex: {n:?}"
        );
        Ok(())
    });
}

/// Damaged streams: our decoder succeeds exactly when `lz4_flex` decodes the stream into
/// exactly the output's length, with the same bytes, and never writes past the output.
#[test]
fn lz4_damaged_streams() {
    let mut decoded = 0;
    let cases = run("lz4_damaged_streams", 100_000, |rng| {
        let data = lz4_input(rng, 5_000);
        let valid = flex_compress(&data);
        let mut stream = valid.clone();
        if !rng.one_in(20) {
            mutate(rng, &mut stream, &MUTATIONS, &[&valid]);
        }
        let n = match rng.below(4) {
            0 => data.len().saturating_add(rng.below(5)).saturating_sub(2),
            1 => rng.length(6_000),
            _ => data.len(),
        };
        const CANARY: u8 = 0xa5;
        let mut ours = vec![CANARY; n + 64];
        let our_result = lz4::decompress(&stream, &mut ours[..n]);
        ensure!(
            ours[n..].iter().all(|&b| b == CANARY),
            "wrote past the output"
        );
        let mut theirs = vec![0u8; n];
        let their_result = lz4_flex::block::decompress_into(&stream, &mut theirs);
        ensure!(
            our_result.is_ok() == matches!(their_result, Ok(m) if m == n),
            "ours: {our_result:?}, lz4_flex: {their_result:?}, output {n} bytes"
        );
        if our_result.is_ok() {
            ensure!(ours[..n] == theirs[..], "decoded differently from lz4_flex");
            decoded += 1;
        }
        Ok(())
    });
    println!("lz4_damaged_streams: {decoded} of {cases} streams decoded");
    assert!(
        cases < 1000 || decoded * 10 > cases,
        "only {decoded} of {cases} streams decoded"
    );
}

/// Frame headers: two little-endian u32s; plausible exactly when the raw length is 1 to
/// `FRAME_MAX` and no more than what is left of the extent, and the stored length is 1 to
/// `bound(raw)`.
#[test]
fn lz4_frames() {
    run("lz4_frames", 20_000, |rng| {
        let bytes: [u8; lz4::FRAME_HEADER] = rng.bytes(8).try_into().unwrap();
        let (stored, raw) = lz4::frame_header(&bytes);
        ensure!(
            (stored as u64, raw as u64) == (u32_at(&bytes, 0), u32_at(&bytes, 4)),
            "frame_header({bytes:?}) = {:?}",
            (stored, raw)
        );
        ensure!(
            lz4::frame_header(&lz4::write_frame_header(stored, raw)) == (stored, raw),
            "round trip"
        );
        let near = |rng: &mut Rng, v: usize| (v + rng.below(5)).saturating_sub(2);
        let raw = match rng.below(4) {
            0 => near(rng, lz4::FRAME_MAX),
            1 => rng.interesting() as u32 as usize,
            _ => rng.between(0, lz4::FRAME_MAX + 2),
        };
        let stored = match rng.below(3) {
            0 => near(rng, lz4::bound(raw)),
            1 => near(rng, raw),
            _ => rng.interesting() as u32 as usize,
        };
        let remaining = if rng.one_in(2) {
            near(rng, raw)
        } else {
            rng.interesting() as usize
        };
        let want = (1..=lz4::FRAME_MAX).contains(&raw)
            && raw <= remaining
            && (1..=raw + raw / 255 + 16).contains(&stored);
        let got = lz4::frame_ok(stored, raw, remaining);
        ensure!(
            got == want,
            "frame_ok({stored}, {raw}, {remaining}) = {got}"
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// CRC-32C

/// The payload checksum from its definition: four CRC-32C lanes over the 8-byte words of each
/// 32-byte block in turn, the bytes after the last whole block on lane 0, and the lanes'
/// final registers (the complement of their CRCs) checksummed together.
fn reference_payload_checksum(data: &[u8]) -> u32 {
    let whole = data.len() / 32 * 32;
    let mut lanes = [
        CASTAGNOLI.digest(),
        CASTAGNOLI.digest(),
        CASTAGNOLI.digest(),
        CASTAGNOLI.digest(),
    ];
    for block in data[..whole].chunks_exact(32) {
        for (k, lane) in lanes.iter_mut().enumerate() {
            lane.update(&block[8 * k..8 * k + 8]);
        }
    }
    lanes[0].update(&data[whole..]);
    let folded: Vec<u8> = lanes
        .into_iter()
        .flat_map(|l| (!l.finalize()).to_le_bytes())
        .collect();
    CASTAGNOLI.checksum(&folded)
}

#[test]
fn crc32c_against_crc() {
    run("crc32c_against_crc", 20_000, |rng| {
        let max = if rng.one_in(50) { 1 << 17 } else { 5_000 };
        let len = rng.length(max);
        let skew = rng.below(16);
        let backing = rng.bytes(len + skew);
        let data = &backing[skew..];
        let want = CASTAGNOLI.checksum(data);
        ensure!(
            crc32c::crc32c(0, data) == want,
            "crc32c of {len} bytes at +{skew}"
        );
        ensure!(
            crc32c::crc32c_portable(0, data) == want,
            "crc32c_portable of {len} bytes at +{skew}"
        );
        let split = rng.below(len + 1);
        let continued = crc32c::crc32c(crc32c::crc32c(0, &data[..split]), &data[split..]);
        ensure!(continued == want, "crc32c continued at {split}");

        let mut payload = crc32c::PayloadChecksum::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = rng.length(rest.len()).max(1);
            payload.update(&rest[..n]);
            rest = &rest[n..];
        }
        let want = reference_payload_checksum(data);
        ensure!(
            payload.finish() == want,
            "PayloadChecksum of {len} bytes in pieces"
        );
        ensure!(
            crc32c::PayloadChecksum::of(data) == want,
            "PayloadChecksum::of {len} bytes"
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// The request protocol and signal names

/// Random text from pieces that matter to these parsers.
fn text(rng: &mut Rng, pieces: &[&[u8]], max_pieces: usize) -> Vec<u8> {
    let mut t = Vec::new();
    for _ in 0..rng.below(max_pieces + 1) {
        if rng.one_in(4) {
            t.push(rng.next_u64() as u8);
        } else {
            let piece = rng.pick(pieces);
            t.extend_from_slice(piece);
        }
    }
    t
}

#[test]
fn request_lines() {
    const PIECES: [&[u8]; 9] = [
        b"\n",
        b"\0",
        b"\r",
        b"a",
        b"/tmp/x.ckpt",
        b" ",
        b"\xff",
        b"ok ",
        b".",
    ];
    run("request_lines", 20_000, |rng| {
        let mut line = text(rng, &PIECES, 8);
        if rng.one_in(3) {
            line.push(b'\n');
        }
        if rng.one_in(200) {
            line = vec![b'x'; rng.between(request::MAX_REQUEST - 2, request::MAX_REQUEST + 2)];
        }
        // One complete line: a newline at the end and nowhere else, no NUL.
        let want = match line.iter().position(|&c| c == b'\n') {
            Some(end) if end + 1 == line.len() && !line.contains(&0) => {
                Some((end > 0).then(|| &line[..end]))
            }
            _ => None,
        };
        ensure!(
            request::parse_request(&line) == want,
            "parse_request({line:?})"
        );

        let name = &line[..line.len().min(request::MAX_REQUEST + 1)];
        let mut out = [0u8; request::MAX_REQUEST];
        let made = request::request_line(Some(name), &mut out);
        let want = if name.contains(&b'\n') || name.contains(&0) {
            Err(request::RequestError::BadName)
        } else if name.len() >= request::MAX_REQUEST {
            Err(request::RequestError::TooLong)
        } else {
            Ok(name.len() + 1)
        };
        ensure!(made == want, "request_line({name:?}) = {made:?}");
        if let Ok(n) = made {
            let back = request::parse_request(&out[..n]);
            ensure!(
                back == Some((!name.is_empty()).then_some(name)),
                "request line does not parse back"
            );
        }

        let (pid, nonce) = (rng.interesting() as u32, rng.next_u64() as u32);
        let mut socket = [0u8; request::SOCKET_NAME_MAX];
        let n = request::socket_name(pid, nonce, &mut socket);
        ensure!(
            socket[..n] == *format!("ckpt-request/{pid}/{nonce:08x}").as_bytes(),
            "socket_name({pid}, {nonce})"
        );
        Ok(())
    });
}

#[test]
fn answers() {
    const PIECES: [&[u8]; 14] = [
        b"ok",
        b"ok ",
        b"error",
        b"error ",
        b"busy",
        b" ",
        b"\r",
        b"\n",
        b"name.ckpt",
        b"\xff",
        b"progress ",
        b"7",
        b"18446744073709551615",
        b"0",
    ];
    run("answers", 20_000, |rng| {
        let line = text(rng, &PIECES, 5);
        let body = line.strip_suffix(b"\r").unwrap_or(&line);
        let want = if body == b"busy" {
            Some(Answer::Busy)
        } else if body == b"error" {
            Some(Answer::Error(b""))
        } else if let Some(name) = body.strip_prefix(b"ok ").filter(|n| !n.is_empty()) {
            Some(Answer::Ok(name))
        } else if let Some(numbers) = body.strip_prefix(b"progress ") {
            // Exactly two decimal numbers that fit in 64 bits, one space between.
            let numbers: Option<Vec<u64>> = std::str::from_utf8(numbers)
                .ok()
                .map(|t| {
                    t.split(' ')
                        .map(|n| n.parse::<u64>().ok().filter(|_| !n.starts_with('+')))
                        .collect()
                })
                .and_then(|v: Option<Vec<u64>>| v);
            match numbers.as_deref() {
                Some(&[done, total]) => Some(Answer::Progress { done, total }),
                _ => None,
            }
        } else {
            body.strip_prefix(b"error ").map(Answer::Error)
        };
        ensure!(Answer::parse(&line) == want, "Answer::parse({line:?})");

        // Written, an answer is one line that says the same, cut to fit.
        let payload = text(rng, &PIECES, 4);
        let answer = match rng.below(4) {
            0 => Answer::Ok(&payload),
            1 => Answer::Error(&payload),
            2 => Answer::Progress {
                done: rng.below(1 << 40) as u64,
                total: u64::MAX - rng.below(3) as u64,
            },
            _ => Answer::Busy,
        };
        let mut out = vec![0u8; rng.below(40)];
        let n = answer.write(&mut out);
        if out.is_empty() {
            ensure!(n == 0, "wrote {n} bytes into no room");
            return Ok(());
        }
        let written = &out[..n];
        ensure!(
            written.last() == Some(&b'\n') && !written[..n - 1].contains(&b'\n'),
            "not one line: {written:?}"
        );
        let numbers;
        let (head, payload): (&[u8], &[u8]) = match answer {
            Answer::Ok(p) => (b"ok ", p),
            Answer::Error(p) => (b"error ", p),
            Answer::Busy => (b"busy", b""),
            Answer::Progress { done, total } => {
                numbers = format!("{done} {total}");
                (b"progress ", numbers.as_bytes())
            }
        };
        let full: Vec<u8> = head
            .iter()
            .chain(payload)
            .map(|&b| if b == b'\n' { b' ' } else { b })
            .collect();
        let kept = full.len().min(out.len() - 1);
        ensure!(
            written[..n - 1] == full[..kept],
            "wrote {written:?} for {answer:?}"
        );
        Ok(())
    });
}

/// Every spelling `parse_signal` accepts, upper case: numbers 0 to 64 with any leading zeros
/// (checked by rule below), the names with or without `SIG`, `RTMIN`, `RTMAX`, and
/// `RTMIN+k`/`RTMAX-k` with `k` in range, in at most 16 characters.
fn signal_spellings() -> std::collections::HashMap<String, i32> {
    let mut all = std::collections::HashMap::new();
    let mut add = |name: String, n: i32| {
        for spelling in [name.clone(), format!("SIG{name}")] {
            if spelling.len() <= 16 {
                all.insert(spelling, n);
            }
        }
    };
    for &(name, n) in signals::SIGNAL_NAMES {
        add(name.to_string(), n);
    }
    add("RTMIN".into(), signals::SIGRTMIN);
    add("RTMAX".into(), signals::SIGRTMAX);
    for k in 0..=signals::SIGRTMAX - signals::SIGRTMIN {
        for zeros in 0..12 {
            let k_text = format!("{}{k}", "0".repeat(zeros));
            add(format!("RTMIN+{k_text}"), signals::SIGRTMIN + k);
            add(format!("RTMAX-{k_text}"), signals::SIGRTMAX - k);
        }
    }
    all
}

#[test]
fn signal_names() {
    let spellings = signal_spellings();
    let names: Vec<&str> = spellings.keys().map(String::as_str).collect();
    const PIECES: [&str; 16] = [
        "SIG", "sig", "RT", "MIN", "max", "+", "-", "0", "1", "6", "9", "3", " ", "ſ", "Ｓ", "\0",
    ];
    run("signal_names", 20_000, |rng| {
        let text = match rng.below(4) {
            0 => rng.pick(&names).to_string(),
            1 => {
                let mut t = rng.pick(&names).to_string();
                let mut bytes = t.into_bytes();
                let valid = bytes.clone();
                mutate(rng, &mut bytes, &MUTATIONS, &[&valid, b"SIG", b"+1"]);
                t = String::from_utf8_lossy(&bytes).into_owned();
                t
            }
            _ => (0..rng.below(6)).map(|_| rng.pick(&PIECES)).collect(),
        };
        // Any case.
        let text: String = text
            .chars()
            .map(|c| {
                if rng.one_in(2) {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect();
        let want = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let digits = text.trim_start_matches('0');
            if digits.len() <= 2 {
                Some(digits.parse().unwrap_or(0)).filter(|n| *n <= signals::SIGRTMAX)
            } else {
                None
            }
        } else {
            spellings.get(&text.to_ascii_uppercase()).copied()
        };
        let got = signals::parse_signal(&text);
        ensure!(
            got == want,
            "parse_signal({text:?}) = {got:?}, want {want:?}"
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// /proc text

/// A hexadecimal number of 1 to 16 digits, either case.
fn reference_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

/// An octal number of 1 to 22 digits that fits in 64 bits (`flags` of `fdinfo`).
fn reference_oct(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 22 || !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 8).ok()
}

/// A decimal number of at least one digit that fits in 64 bits.
fn reference_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `start-end` before the first blank.
fn reference_range(line: &[u8]) -> Option<(u64, u64)> {
    let range = &line[..line.iter().position(|&c| c == b' ')?];
    let dash = range.iter().position(|&c| c == b'-')?;
    Some((
        reference_hex(&range[..dash])?,
        reference_hex(&range[dash + 1..])?,
    ))
}

/// A maps line as proc(5) describes it: `start-end perms offset major:minor inode name`,
/// fields separated by runs of blanks, `perms` four characters, the numbers hexadecimal but
/// the inode decimal, and the name everything after the blanks that follow the inode (a
/// path may hold blanks; anonymous memory has none).
fn reference_maps_line(line: &[u8]) -> Option<procfs::MapsLine<'_>> {
    let (start, end) = reference_range(line)?;
    let blank = |c: &u8| *c == b' ';
    let mut at = 0;
    let mut fields = [&line[..0]; 5];
    for field in &mut fields {
        at += line[at..].iter().take_while(|c| blank(c)).count();
        let len = line[at..].iter().take_while(|c| !blank(c)).count();
        *field = &line[at..at + len];
        at += len;
    }
    at += line[at..].iter().take_while(|c| blank(c)).count();
    let [_, perms, offset, dev, inode] = fields;
    let colon = dev.iter().position(|&c| c == b':')?;
    Some(procfs::MapsLine {
        start,
        end,
        perms: perms.try_into().ok()?,
        offset: reference_hex(offset)?,
        dev: (
            reference_hex(&dev[..colon])?,
            reference_hex(&dev[colon + 1..])?,
        ),
        inode: reference_dec(inode)?,
        name: &line[at..],
    })
}

/// Field `n` (from 1) of `/proc/PID/stat`: the command name (2) is what lies between the
/// first `(` and the last `)`; the pid (1) the first word before that `)`; the others
/// (3 on) the words after it, split at blanks and newlines.
fn reference_stat_field(stat: &[u8], n: usize) -> Option<&[u8]> {
    let close = stat.iter().rposition(|&c| c == b')')?;
    let words = |b: &'_ [u8]| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, &c) in b.iter().chain([b' '].iter()).enumerate() {
            match (c == b' ' || c == b'\n', start) {
                (true, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        out
    };
    match n {
        0 => None,
        1 => {
            // Before the `)`, only blanks separate words.
            let before = &stat[..close];
            let s = before.iter().position(|&c| c != b' ')?;
            let e = before[s..]
                .iter()
                .position(|&c| c == b' ')
                .map_or(before.len(), |e| s + e);
            Some(&before[s..e])
        }
        2 => {
            let open = stat.iter().position(|&c| c == b'(')?;
            (open < close).then(|| &stat[open + 1..close])
        }
        _ => {
            let after = &stat[close + 1..];
            let (s, e) = *words(after).get(n - 3)?;
            Some(&after[s..e])
        }
    }
}

/// The value of `key:` on the first line of `/proc/PID/status` that starts with it, without
/// the blanks around it; none when it is all blanks.
fn reference_status_value<'a>(status: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let line = status
        .split(|&c| c == b'\n')
        .find(|l| l.len() > key.len() && l.starts_with(key) && l[key.len()] == b':')?;
    let value = &line[key.len() + 1..];
    let value = value.trim_ascii();
    (!value.is_empty()).then_some(value)
}

/// The /proc readers of `ckpt_image::procfs` on this process's own maps, stat and status,
/// damaged, and on lines the kernel writes for other processes (names with blanks and
/// parentheses, deleted files, the vDSO family).
#[test]
fn procfs_text() {
    let read = |name: &str| std::fs::read(format!("/proc/self/{name}")).expect("read /proc/self");
    let mut maps = read("maps");
    maps.extend_from_slice(
        b"7f0000000000-7f0000001000 rw-s 00000000 00:01 5        /memfd:jit cache (deleted)\n\
          7ffd1c9fa000-7ffd1c9fe000 r--p 00000000 00:00 0                          [vvar]\n\
          7fe27b5ed000-7fe27b5f0000 rw-p 00000000 00:00 0 \n\
          0-1000 ---p 00000000 fe:01 18446744073709551615 /a\n\
          ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n",
    );
    let maps_lines: Vec<&[u8]> = maps
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let stats = [
        read("stat"),
        b"42 (a) (b) c) S 1 42 42 0 -1 4194560 ...\n".to_vec(),
        b"7 ( ) R 1\n".to_vec(),
        b"9 () Z".to_vec(),
    ];
    let status = read("status");
    const KEYS: [&[u8]; 9] = [
        b"Name", b"VmLck", b"VmRSS", b"SigBlk", b"SigIgn", b"SigCgt", b"Uid", b"Vm", b"",
    ];
    const TOKENS: [&[u8]; 9] = [
        b" ",
        b"\n",
        b"(",
        b")",
        b":",
        b"-",
        b"\t",
        b" kB",
        b"ffffffffffffffff",
    ];
    let mut read_lines = 0;
    let cases = run("procfs_text", 50_000, |rng| {
        let mut line = rng.pick(&maps_lines).to_vec();
        if !rng.one_in(4) {
            mutate(rng, &mut line, &MUTATIONS, &TOKENS);
        }
        let got = procfs::maps_line(&line);
        let want = reference_maps_line(&line);
        ensure!(got == want, "maps_line({line:?}) = {got:?}, want {want:?}");
        read_lines += usize::from(got.is_some());
        ensure!(
            procfs::line_range(&line) == reference_range(&line),
            "line_range({line:?})"
        );
        let (s, e) = (rng.below(line.len() + 1), rng.below(line.len() + 1));
        let piece = &line[s.min(e)..s.max(e)];
        ensure!(
            procfs::parse_hex(piece) == reference_hex(piece),
            "parse_hex({piece:?})"
        );
        ensure!(
            procfs::parse_dec(piece) == reference_dec(piece),
            "parse_dec({piece:?})"
        );
        ensure!(
            procfs::parse_oct(piece) == reference_oct(piece),
            "parse_oct({piece:?})"
        );

        let mut stat = stats[rng.below(stats.len())].clone();
        if !rng.one_in(4) {
            mutate(rng, &mut stat, &MUTATIONS, &TOKENS);
        }
        for n in [0, 1, 2, 3, rng.below(60)] {
            let (got, want) = (procfs::stat_field(&stat, n), reference_stat_field(&stat, n));
            ensure!(
                got == want,
                "stat_field({stat:?}, {n}) = {got:?}, want {want:?}"
            );
            let want = want.and_then(reference_dec);
            ensure!(
                procfs::stat_number(&stat, n) == want,
                "stat_number({stat:?}, {n})"
            );
        }

        let mut status = status.clone();
        if !rng.one_in(4) {
            mutate(rng, &mut status, &MUTATIONS, &TOKENS);
        }
        let key = rng.pick(&KEYS);
        let want = reference_status_value(&status, key);
        let got = procfs::status_value(&status, key);
        ensure!(
            got == want,
            "status_value({key:?}) = {got:?}, want {want:?}"
        );
        let kib = want.and_then(|v| reference_dec(v.strip_suffix(b" kB").unwrap_or(v)));
        ensure!(
            procfs::status_kib(&status, key) == kib,
            "status_kib({key:?})"
        );
        let mask = want.and_then(reference_hex);
        ensure!(
            procfs::status_mask(&status, key) == mask,
            "status_mask({key:?})"
        );
        Ok(())
    });
    assert!(
        cases < 1000 || read_lines * 4 > cases,
        "only {read_lines} of {cases} maps lines were read"
    );
}
