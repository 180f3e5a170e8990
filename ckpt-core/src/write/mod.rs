//! Write: the captured process as a self-restarting ELF executable.
//!
//! The image goes to a file beside the target that has no name until it is complete
//! (`file`), payloads straight from memory in page-aligned runs (`payload`), then the
//! tables and the header, fsync, and a name and a rename over the target — so the target
//! name only ever holds a complete checkpoint. Everything here is signal-safe.

use ckpt_image::{
    elf, page_up, prot, region_flags as rf, ImageHeader, MmLayout, EM_X86_64, FORMAT_VERSION,
    HEADER_SPACE, MAGIC, STUB_FILE_OFFSET,
};

use crate::arena::Arena;
use crate::capture::{CaptureError, Captured};
use crate::sys;

mod file;
mod flush;
pub mod incremental;
mod payload;

use file::{create_error, create_temp, remove_if, swap, temp_name};
use payload::{write_region, RegionWrite};

#[derive(Clone, Copy, Debug)]
pub enum WriteError {
    Capture(CaptureError),
    NameTooLong,
    Create(i32),
    Write(i32),
    /// `/proc/self/stat` or `/proc/self/auxv` could not be read.
    ReadProc(i32),
    Fsync(i32),
    Rename(i32),
    NoRoomForStub,
    /// The other threads could not all be stopped.
    Threads(crate::threads::FreezeError),
    /// Reading the program's memory at this address faulted.
    Fault(u64),
    /// The name is relative and the working directory was deleted.
    CwdDeleted,
    /// The open descriptors could not all be recorded.
    Files(crate::files::FdError),
}

impl WriteError {
    pub fn describe(self) -> (&'static str, i32) {
        match self {
            WriteError::Capture(c) => c.describe(),
            WriteError::NameTooLong => ("checkpoint name too long", 0),
            WriteError::Create(e) => ("cannot create the checkpoint file", e),
            WriteError::Write(e) => ("cannot write the checkpoint file", e),
            WriteError::ReadProc(e) => ("cannot read the process's state in /proc/self", e),
            WriteError::Fsync(e) => ("cannot sync the checkpoint file to disk", e),
            WriteError::Rename(e) => ("cannot rename the checkpoint into place", e),
            WriteError::NoRoomForStub => ("no free address range for the restart stub", 0),
            WriteError::Threads(e) => e.describe(),
            WriteError::Files(e) => e.describe(),
            WriteError::Fault(_) => ("reading the program's memory faulted", 0),
            WriteError::CwdDeleted => (
                "the working directory has been deleted; give the checkpoint an absolute name \
                 (ckpt -n, CKPT_NAME, or ckpt checkpoint -n)",
                0,
            ),
        }
    }

    /// The address the error is about, if any.
    pub fn address(self) -> Option<u64> {
        match self {
            WriteError::Fault(addr) => Some(addr),
            WriteError::Capture(c) => c.address(),
            _ => None,
        }
    }

    /// The descriptor the error is about, if any (its message then follows "fd N (LINK)").
    pub fn descriptor(self) -> Option<u32> {
        match self {
            WriteError::Files(e) => e.descriptor(),
            _ => None,
        }
    }

    /// The thread the error is about, if any (its message then follows "thread TID").
    pub fn thread(self) -> Option<u32> {
        match self {
            WriteError::Threads(e) => e.thread(),
            _ => None,
        }
    }
}

/// The addresses where the restart stub may go, in order of preference: far from where
/// programs, libraries, stacks and the kernel's first mappings usually sit.
const STUB_CANDIDATES: [u64; 8] = [
    0x1000_0000_0000,
    0x2000_0000_0000,
    0x3000_0000_0000,
    0x0800_0000_0000,
    0x0100_0000_0000,
    0x0010_0000_0000,
    0x4000_0000_0000,
    0x5000_0000_0000,
];

use ckpt_image::STUB_GAP;

fn choose_stub_base(regions: &[ckpt_image::RegionRecord], reserve: u64) -> Option<u64> {
    STUB_CANDIDATES.iter().copied().find(|&base| {
        let lo = base - STUB_GAP;
        let hi = base + reserve + STUB_GAP;
        regions
            .iter()
            .all(|r| r.start + r.len <= lo || r.start >= hi)
    })
}

/// Parses the `mm` layout fields of `/proc/self/stat`.
pub fn parse_stat(stat: &[u8]) -> Option<(MmLayout, u64)> {
    let field = |n| ckpt_image::procfs::stat_number(stat, n).unwrap_or(0);
    ckpt_image::procfs::stat_field(stat, 3)?;
    let mm = MmLayout {
        start_code: field(26),
        end_code: field(27),
        start_stack: field(28),
        start_data: field(45),
        end_data: field(46),
        start_brk: field(47),
        brk: 0,
        arg_start: field(48),
        arg_end: field(49),
        env_start: field(50),
        env_end: field(51),
    };
    Some((mm, field(20)))
}

/// Where the restarted program needs the stub to have been (to unmap it).
#[derive(Clone, Copy, Default)]
pub struct StubPlace {
    pub base: u64,
    pub reserve: u64,
}

/// Which payloads are stored as LZ4 frames instead of page-aligned raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// None: every payload can be mapped by a lazy restart.
    Off,
    /// The program's and its libraries' images (private mappings of a file that is also
    /// mapped executable): text compresses about 2:1, is a few MiB however big the
    /// program's data, and is the bulk of a small program's checkpoint.
    Code,
    /// All memory but the vDSO.
    All,
}

impl Compression {
    /// Whether region `r` of `regions` is stored compressed.
    fn applies(self, r: &ckpt_image::RegionRecord, regions: &[ckpt_image::RegionRecord]) -> bool {
        match self {
            Compression::Off => false,
            Compression::All => r.flags & rf::VDSO == 0,
            Compression::Code => {
                r.flags & (rf::FILE | rf::SHARED) == rf::FILE
                    && regions.iter().any(|o| {
                        o.flags & rf::FILE != 0
                            && o.prot & prot::EXEC != 0
                            && (o.inode, o.dev) == (r.inode, r.dev)
                    })
            }
        }
    }
}

/// How an image is written.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    /// fsync before the rename.
    pub fsync: bool,
    pub compress: Compression,
}

#[allow(clippy::too_many_arguments)]
pub fn write_image(
    arena: &mut Arena,
    cap: &Captured,
    files: crate::files::Captured,
    name: &[u8],
    opts: WriteOptions,
    mm: MmLayout,
    stub_place: &mut StubPlace,
    inc: Option<&mut incremental::Incremental>,
) -> Result<(), WriteError> {
    // Paths.
    if name.len() + 1 > arena.target_path.len() {
        return Err(WriteError::NameTooLong);
    }
    arena.target_path[..name.len()].copy_from_slice(name);
    arena.target_path[name.len()] = 0;
    let target_len = name.len() + 1;
    let pid = sys::getpid();
    let temp_len = temp_name(name, &mut arena.temp_path, pid).ok_or(WriteError::NameTooLong)?;

    // Layout: tables size is known now; choose the stub's place in the saved layout.
    let regions = &mut arena.regions[..cap.regions];
    let auxv_words = cap.auxv_words;
    let threads = crate::threads::image_order().count();
    let tables_len = (regions.len() * ckpt_image::REGION_SIZE
        + cap.extents * ckpt_image::EXTENT_SIZE
        + threads * ckpt_image::THREAD_SIZE
        + ckpt_image::NSIG * ckpt_image::SIGACTION_SIZE
        + auxv_words * 8
        + files.fds * ckpt_image::FD_SIZE
        + cap.names
        + files.names) as u64;
    let family_span: u64 = regions
        .iter()
        .filter(|r| r.flags & rf::VDSO_FAMILY != 0)
        .map(|r| r.len)
        .sum();
    let reserve =
        page_up(crate::STUB_MEM_SIZE) + page_up(tables_len) + page_up(family_span) + (1 << 20);
    let base = choose_stub_base(regions, reserve).ok_or(WriteError::NoRoomForStub)?;
    *stub_place = StubPlace { base, reserve };

    // An incremental checkpoint writes into the spare (`NAME.prev`) where it can, else
    // into a new file that becomes the spare before the swap.
    let mut session = inc.and_then(|i| incremental::Session::open(i, name));
    let in_place = session.as_ref().and_then(|s| s.spare_fd());
    let created = match in_place {
        Some(fd) => Ok((fd, true)),
        None => create_temp(
            &arena.target_path[..target_len],
            &arena.temp_path[..temp_len],
        ),
    };
    let (fd, named) = match created {
        Ok(created) => created,
        // (Not in place: nothing of the spare was touched.)
        Err(e) => return Err(create_error(e, name)),
    };
    let plan = Plan {
        files,
        stub: StubPlace { base, reserve },
        tables_len,
        auxv_words,
        mm,
        opts,
        in_place: in_place.is_some(),
    };
    let mut result = write_to(fd, arena, cap, &plan, session.as_mut());
    let temp = &arena.temp_path[..temp_len];
    if result.is_ok() && !named {
        result = sys::link_fd(fd, temp).map_err(WriteError::Create);
    }
    let target = &arena.target_path[..target_len];
    if result.is_ok() {
        result = match (&session, in_place) {
            (Some(s), Some(_)) => swap(s.spare_path(), target),
            (Some(s), None) => {
                sys::rename(temp, s.spare_path()).and_then(|()| swap(s.spare_path(), target))
            }
            (None, _) => sys::rename(temp, target),
        }
        .map_err(WriteError::Rename);
    }
    if let Err(e) = result {
        if in_place.is_none() && named {
            remove_if(fd, temp);
        }
        // Whatever stands at `NAME.prev` as this file (the spare half written in place, or
        // the new file renamed there before a failed swap) is removed: the next ledger stays
        // incomplete, and nothing could restart from a half-written spare.
        if let Some(s) = session {
            remove_if(fd, s.spare_path());
        }
        sys::close(fd);
        return Err(e);
    }
    // Its identity now (the rename changed its ctime) is what the next checkpoint trusts.
    if let Some(s) = session {
        s.complete(fd, name);
    }
    sys::close(fd);
    Ok(())
}

/// What was decided before the file is written.
struct Plan {
    files: crate::files::Captured,
    stub: StubPlace,
    tables_len: u64,
    auxv_words: usize,
    mm: MmLayout,
    opts: WriteOptions,
    /// The file is the spare, written in place: what it held before is overwritten where
    /// needed, and it is cut to its new length.
    in_place: bool,
}

fn write_to(
    fd: i32,
    arena: &mut Arena,
    cap: &Captured,
    plan: &Plan,
    inc: Option<&mut incremental::Session>,
) -> Result<(), WriteError> {
    let w = WriteError::Write;
    // Compression reads memory through /proc/self/mem, which stops short (instead of
    // faulting) at pages that cannot be read.
    let mem = if plan.opts.compress != Compression::Off {
        Some(
            sys::open(
                b"/proc/thread-self/mem\0",
                libc::O_RDONLY | libc::O_CLOEXEC,
                0,
            )
            .map_err(w)?,
        )
    } else {
        None
    };
    let result = write_payloads_and_tables(fd, mem, arena, cap, plan, inc);
    if let Some(m) = mem {
        sys::close(m);
    }
    result
}

fn write_payloads_and_tables(
    fd: i32,
    mem: Option<i32>,
    arena: &mut Arena,
    cap: &Captured,
    plan: &Plan,
    mut inc: Option<&mut incremental::Session>,
) -> Result<(), WriteError> {
    let w = WriteError::Write;
    let Plan {
        files,
        stub: StubPlace { base, reserve },
        tables_len,
        auxv_words,
        mm,
        opts,
        in_place,
    } = *plan;
    // The umask may have narrowed the mode; the image must be executable by its owner only.
    sys::fchmod(fd, 0o700).map_err(w)?;
    let header_offset = STUB_FILE_OFFSET + page_up(crate::STUB.len() as u64);
    if in_place {
        // Not a checkpoint until its new header is written, last.
        sys::pwrite_all(fd, &[0; 8], header_offset).map_err(w)?;
    }

    // The stub, relocated for its base (the ELF prefix, which needs the final length,
    // comes last).
    arena.stub.copy_from_slice(crate::STUB);
    for &off in crate::STUB_RELOCS {
        let at = off as usize;
        let v = u64::from_le_bytes(arena.stub[at..at + 8].try_into().unwrap_or([0; 8])) + base;
        arena.stub[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    sys::pwrite_all(fd, arena.stub, STUB_FILE_OFFSET).map_err(w)?;
    // What the entry check verifies before it runs the stub: these relocated bytes.
    let stub_sum = elf::stub_checksum(arena.stub);

    // Payloads, straight from memory, one region at a time under the fault guard: memory
    // that faults when read fails the checkpoint instead of ending the program.
    crate::progress::start(arena.regions[..cap.regions].iter().map(|r| r.stored).sum());
    flush::start(fd, opts.fsync);
    // Regions an incremental checkpoint records first (into the spare where it has them,
    // else from `offset` on), then all others.
    let start = header_offset + HEADER_SPACE;
    let mut offset = match inc.as_deref_mut() {
        Some(s) => s.plan(
            &arena.regions[..cap.regions],
            &arena.extents[..cap.extents],
            start,
        ),
        None => start,
    };
    const MAX: usize = incremental::MAX_REGIONS;
    let mut recorded = [0u64; MAX / 64];
    let guard = sys::FaultGuard::install().map_err(w)?;
    for pass in [Pass::Recorded, Pass::Rest] {
        for ri in 0..cap.regions {
            let r = arena.regions[ri];
            if r.stored == 0 {
                continue;
            }
            let compress = opts.compress.applies(&r, &arena.regions[..cap.regions]);
            let records = match pass {
                Pass::Recorded => {
                    let takes =
                        ri < MAX && !compress && inc.as_deref().is_some_and(|s| s.takes(&r));
                    if takes {
                        recorded[ri / 64] |= 1 << (ri % 64);
                    }
                    takes
                }
                Pass::Rest => ri < MAX && recorded[ri / 64] & (1 << (ri % 64)) != 0,
            };
            if records != (pass == Pass::Recorded) {
                continue;
            }
            let unreadable = r.prot & prot::READ == 0;
            if unreadable {
                // SAFETY: a mapping from the maps, in a process frozen in this handler; its
                // protections are put back below, before anything else runs.
                unsafe { sys::mprotect(r.start, r.len, r.prot | prot::READ) }.map_err(w)?;
            }
            let mut job = RegionWrite {
                fd,
                inc: inc.as_deref_mut().filter(|_| records),
                mem: mem.filter(|_| compress),
                arena: &mut *arena,
                region: ri,
                offset,
                result: Ok(()),
            };
            // SAFETY: write_region takes the RegionWrite it is given, holds no lock and owns
            // nothing that needs dropping, so the guard may abandon it at a fault.
            let ran = unsafe { guard.run(write_region, (&mut job as *mut RegionWrite).cast()) };
            offset = job.offset;
            let result = job.result;
            if unreadable {
                // SAFETY: back to what the program had.
                unsafe { sys::mprotect(r.start, r.len, r.prot) }.map_err(w)?;
            }
            ran.map_err(WriteError::Fault)?;
            result?;
        }
    }
    drop(guard);
    crate::progress::finish();
    flush::finish();

    // Tables, then the header that points at them. The thread records, one per thread, the
    // one the restart resumes first first.
    let tables_offset = offset;
    let mut crc = 0;
    let mut at = tables_offset;
    let mut put = |p: &[u8]| -> Result<(), WriteError> {
        sys::pwrite_all(fd, p, at).map_err(w)?;
        crc = ckpt_image::crc32c::crc32c(crc, p);
        at += p.len() as u64;
        Ok(())
    };
    put(ckpt_image::record_bytes(&arena.regions[..cap.regions]))?;
    put(ckpt_image::record_bytes(&arena.extents[..cap.extents]))?;
    let mut thread_count = 0u32;
    for s in crate::threads::image_order() {
        put(ckpt_image::record_bytes(core::slice::from_ref(
            crate::threads::record(s),
        )))?;
        thread_count += 1;
    }
    put(ckpt_image::record_bytes(&arena.sigactions))?;
    put(ckpt_image::record_bytes(&arena.auxv[..auxv_words]))?;
    // The descriptors' paths and kind-specific values follow the regions' names.
    for f in &arena.fds[..files.fds] {
        let mut f = *f;
        f.name_offset += cap.names as u32;
        if f.aux_len > 0 {
            f.aux_offset += cap.names as u32;
        }
        put(ckpt_image::record_bytes(core::slice::from_ref(&f)))?;
    }
    put(&arena.names[..cap.names])?;
    put(&arena.fd_names[..files.names])?;
    debug_assert_eq!(at - tables_offset, tables_len);

    let mut header = ImageHeader {
        magic: MAGIC,
        version: FORMAT_VERSION,
        header_size: core::mem::size_of::<ImageHeader>() as u32,
        arch: EM_X86_64,
        file_len: at,
        tables_offset,
        tables_len,
        tables_crc: crc,
        region_count: cap.regions as u32,
        extent_count: cap.extents as u32,
        thread_count,
        sigaction_count: ckpt_image::NSIG as u32,
        auxv_words: auxv_words as u32,
        names_len: (cap.names + files.names) as u32,
        fd_count: files.fds as u32,
        restart_options: crate::restore::RESTART_OPTIONS.as_ptr() as u64,
        restart_relocate: crate::restore::RESTART_RELOCATE.as_ptr() as u64,
        stub_base: base,
        stub_reserve: reserve,
        stub_mem: crate::STUB_MEM_SIZE,
        mm,
        taken_at: now(),
        pid: sys::getpid(),
        stub_sum,
        kept: inc.as_ref().map_or(0, |s| s.kept),
        ..Default::default()
    };
    header.header_crc = header.compute_crc();
    sys::pwrite_all(fd, header.as_bytes(), header_offset).map_err(w)?;
    let mut prefix = [0u8; elf::PREFIX_SIZE];
    let placement = elf::StubPlacement {
        base,
        file_size: crate::STUB.len() as u64,
        mem_size: crate::STUB_MEM_SIZE,
        entry: crate::STUB_ENTRY,
    };
    elf::write_prefix(
        &mut prefix,
        &placement,
        header_offset,
        core::mem::size_of::<ImageHeader>() as u64,
        at,
        stub_sum,
    );
    sys::pwrite_all(fd, &prefix, 0).map_err(w)?;
    if in_place {
        sys::ftruncate(fd, at).map_err(w)?;
    }
    if opts.fsync {
        sys::fsync(fd).map_err(WriteError::Fsync)?;
    }
    Ok(())
}

/// The two passes over the regions: those an incremental checkpoint records, then the rest.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Recorded,
    Rest,
}

/// Seconds since the epoch (clock_gettime: signal-safe).
fn now() -> u64 {
    sys::realtime_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let mut stat = b"4711 (a b) S".to_vec();
        for i in 4..=52u64 {
            stat.extend_from_slice(format!(" {}", i * 1000).as_bytes());
        }
        let (mm, threads) = parse_stat(&stat).unwrap();
        assert_eq!(threads, 20_000);
        assert_eq!(mm.start_code, 26_000);
        assert_eq!(mm.env_end, 51_000);
    }

    #[test]
    fn stub_base_avoids_regions() {
        let r = ckpt_image::RegionRecord {
            start: 0x1000_0000_0000 - 4096,
            len: 8192,
            ..Default::default()
        };
        assert_eq!(choose_stub_base(&[r], 1 << 20), Some(0x2000_0000_0000));
        assert_eq!(choose_stub_base(&[], 1 << 20), Some(0x1000_0000_0000));
    }
}
