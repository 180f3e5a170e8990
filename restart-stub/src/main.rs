//! The restart stub: the freestanding program at the head of every checkpoint file.
//!
//! The kernel loads it at an address the checkpoint writer chose in a hole of the saved
//! layout. It validates the image while its address space is still intact, then clears the
//! kernel's stack and mappings away, moves the kernel's vDSO family to the saved addresses,
//! maps and fills every saved region, restores signal actions and the alternate stack, and
//! jumps to the resume point inside libckpt, which finishes the restart with full libc.
//!
//! It cannot format much: a failure prints a fixed line (plus an address where useful) and
//! exits with a status documented in the README.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod sys;

use ckpt_image::{
    elf, lz4, ExitStatus, page_up, region_flags, FormatError, ImageHeader, Tables, HEADER_SPACE, PAGE_SIZE,
};
use restart_stub::properties::{advice_after_fill, advice_before_fill, map_flags, MAP_NORESERVE};
use restart_stub::{
    env_lookup, format_hex, jump_to, parse_maps, vdso_functions, Mapping, VdsoFamily,
};
use sys::*;

/// Exit statuses besides the `FormatError` ones (65–71).
const EXIT_CANNOT_READ: i32 = ExitStatus::CannotRead.code();
const EXIT_OTHER_KERNEL: i32 = ExitStatus::OtherKernel.code();
const EXIT_LAYOUT: i32 = ExitStatus::Layout.code();
const EXIT_RESTORE_FAILED: i32 = ExitStatus::RestoreFailed.code();
const EXIT_PAYLOAD_DAMAGED: i32 = ExitStatus::PayloadDamaged.code();
const EXIT_OTHER_CPU: i32 = ExitStatus::OtherCpu.code();

fn die(what: &str, addr: Option<u64>, code: i32) -> ! {
    write_all(2, b"ckpt restart: ");
    write_all(2, what.as_bytes());
    if let Some(a) = addr {
        let mut b = [0u8; 18];
        write_all(2, b" at ");
        write_all(2, format_hex(a, &mut b));
    }
    write_all(2, b"\n");
    exit(code)
}

/// Says in one line what the restarted program has lost of the region at `addr` (`what`);
/// the restart goes on.
fn warn_region(addr: u64, what: &str) {
    let mut b = [0u8; 18];
    write_all(2, b"ckpt restart: region ");
    write_all(2, format_hex(addr, &mut b));
    write_all(2, b": ");
    write_all(2, what.as_bytes());
    write_all(2, b"\n");
}

fn fail(e: FormatError) -> ! {
    die(e.message(), None, e.exit_code())
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    die("internal error in the restart stub", None, EXIT_RESTORE_FAILED)
}

const MAPS_BUF: usize = 64 * 1024;
const MAX_MAPPINGS: usize = 512;
static mut MAPS: [u8; MAPS_BUF] = [0; MAPS_BUF];
static mut MAPPINGS: [Mapping; MAX_MAPPINGS] =
    [Mapping { start: 0, end: 0, vdso_kind: 0 }; MAX_MAPPINGS];
#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE as usize]);
static mut PAGE: Page = Page([0; PAGE_SIZE as usize]);

/// The kernel's `struct prctl_mm_map`.
#[repr(C)]
struct PrctlMmMap {
    layout: ckpt_image::MmLayout,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Reads `/proc/self/maps` in one go into the static buffer and parses it.
fn current_mappings() -> &'static [Mapping] {
    let fd = syscall3(SYS_OPEN, c"/proc/self/maps".as_ptr() as usize, O_RDONLY | O_CLOEXEC, 0);
    if fd < 0 {
        die("cannot read /proc/self/maps", None, EXIT_CANNOT_READ);
    }
    // SAFETY: single-threaded program; these statics are only used here.
    let (buf, out) = unsafe { (&mut *(&raw mut MAPS), &mut *(&raw mut MAPPINGS)) };
    let mut len = 0;
    loop {
        let r = syscall3(SYS_READ, fd as usize, buf[len..].as_mut_ptr() as usize, MAPS_BUF - len);
        if r == -EINTR {
            continue;
        }
        if r < 0 {
            die("cannot read /proc/self/maps", None, EXIT_CANNOT_READ);
        }
        if r == 0 {
            break;
        }
        len += r as usize;
        if len == MAPS_BUF {
            die("too many mappings in the new process", None, EXIT_LAYOUT);
        }
    }
    syscall3(SYS_CLOSE, fd as usize, 0, 0);
    let n = parse_maps(&buf[..len], out)
        .unwrap_or_else(|| die("cannot parse /proc/self/maps", None, EXIT_LAYOUT));
    &out[..n]
}

/// Opens the checkpoint file this stub was loaded from.
fn open_self(initial_sp: *const usize) -> usize {
    let fd = syscall3(SYS_OPEN, c"/proc/self/exe".as_ptr() as usize, O_RDONLY | O_CLOEXEC, 0);
    if fd >= 0 {
        return fd as usize;
    }
    // No /proc: fall back to the name the kernel executed (AT_EXECFN in the auxiliary vector).
    // SAFETY: the kernel lays out argc, argv[], NULL, envp[], NULL, auxv pairs at the initial
    // stack pointer; we walk them without going past the terminators.
    unsafe {
        let argc = *initial_sp;
        let mut p = initial_sp.add(1 + argc + 1);
        while *p != 0 {
            p = p.add(1);
        }
        p = p.add(1);
        while *p != 0 {
            if *p == 31 {
                let fd = syscall3(SYS_OPEN, *p.add(1), O_RDONLY | O_CLOEXEC, 0);
                if fd >= 0 {
                    return fd as usize;
                }
            }
            p = p.add(2);
        }
    }
    die("cannot open the checkpoint file (no /proc/self/exe)", None, EXIT_CANNOT_READ)
}

fn file_size(fd: usize) -> u64 {
    // struct stat on x86-64 is 144 bytes; st_size is at offset 48.
    let mut st = [0u64; 18];
    if syscall3(SYS_FSTAT, fd, st.as_mut_ptr() as usize, 0) < 0 {
        die("cannot stat the checkpoint file", None, EXIT_CANNOT_READ);
    }
    st[6]
}

/// Iterates over the environment the checkpoint file was started with (the restart's own
/// options live there; the program gets its saved environment back).
fn environment(initial_sp: *const usize) -> impl Iterator<Item = &'static [u8]> {
    // SAFETY: the kernel lays out argc, argv[], NULL, envp[], NULL at the initial stack
    // pointer; the strings are NUL-terminated and stay mapped until the stub unmaps the
    // kernel's stack, after the options have been read.
    let mut p = unsafe {
        let argc = *initial_sp;
        initial_sp.add(1 + argc + 1)
    };
    core::iter::from_fn(move || {
        // SAFETY: p walks the envp array up to its NULL terminator.
        let s = unsafe { *p } as *const u8;
        if s.is_null() {
            return None;
        }
        // SAFETY: as above; each entry is a NUL-terminated string.
        unsafe {
            p = p.add(1);
            let mut n = 0;
            while *s.add(n) != 0 {
                n += 1;
            }
            Some(core::slice::from_raw_parts(s, n))
        }
    })
}

/// Called from `_start` on the stub's own stack.
#[no_mangle]
pub extern "C" fn stub_main(initial_sp: *const usize) -> ! {
    // Restart options, from the restarting environment.
    let lazy = matches!(env_lookup(environment(initial_sp), b"CKPT_LAZY"), Some(v) if v != b"0" && !v.is_empty());
    // Nothing may interrupt the restore: signals stay pending until the program's handlers
    // are back.
    let all: u64 = !0;
    syscall6(SYS_RT_SIGPROCMASK, SIG_SETMASK, &all as *const u64 as usize, 0, 8, 0, 0);

    // 1. Validate, while the address space is still ours to report from.
    let fd = open_self(initial_sp);
    let size = file_size(fd);
    // SAFETY: single-threaded; PAGE is used for one purpose at a time.
    let page = unsafe { &mut (*(&raw mut PAGE)).0 };
    if !pread_full(fd, page.as_mut_ptr() as usize, PAGE_SIZE as usize, 0) {
        fail(FormatError::Truncated);
    }
    let header_off = elf::locate_header(page).unwrap_or_else(|| fail(FormatError::BadMagic));
    if header_off.checked_add(HEADER_SPACE).is_none_or(|e| e > size) {
        fail(FormatError::Truncated);
    }
    if !pread_full(fd, page.as_mut_ptr() as usize, PAGE_SIZE as usize, header_off) {
        fail(FormatError::Truncated);
    }
    let header = ImageHeader::read_from(page).unwrap_or_else(|| fail(FormatError::Truncated));
    header.validate(size).unwrap_or_else(|e| fail(e));

    let scratch = header.stub_base + page_up(header.stub_mem);
    let tables_space = page_up(header.tables_len);
    let park = scratch + tables_space;
    let reserve_end = header.stub_base + header.stub_reserve;
    if park > reserve_end {
        fail(FormatError::BadTables);
    }
    if tables_space > 0 {
        let r = syscall6(
            SYS_MMAP,
            scratch as usize,
            tables_space as usize,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            usize::MAX,
            0,
        );
        if r != scratch as isize {
            die("no room for the restart tables", Some(scratch), EXIT_LAYOUT);
        }
    }
    if !pread_full(fd, scratch as usize, header.tables_len as usize, header.tables_offset) {
        fail(FormatError::Truncated);
    }
    // SAFETY: the scratch mapping holds tables_len bytes just read from the file, is page
    // aligned, and stays mapped until libckpt unmaps the stub's reservation.
    let bytes = unsafe {
        core::slice::from_raw_parts(scratch as *const u8, header.tables_len as usize)
    };
    let tables = Tables::parse(&header, bytes).unwrap_or_else(|e| fail(e));

    // The program may use, and its saved signal frame holds, the register state its CPU
    // had enabled (AVX, AVX-512, AMX …): a CPU without some of it would stop it with SIGILL
    // or SIGSEGV later. Said now instead, naming the missing XCR0 bits.
    let missing = tables.threads[0].xcr0 & !ckpt_image::xcr0();
    if tables.threads[0].xcr0 != 0 && missing != 0 {
        let mut b = [0u8; 18];
        write_all(2, b"ckpt restart: this CPU lacks register state the checkpointed program used (XCR0 bits ");
        write_all(2, format_hex(missing as u64, &mut b));
        write_all(2, b" missing; AVX-512 is bits 0xe0, AMX 0x60000)\n");
        exit(EXIT_OTHER_CPU);
    }

    let current = current_mappings();
    let cur_family = VdsoFamily::from_mappings(current);
    let saved_family = VdsoFamily::from_regions(tables.regions);
    // The same vDSO as at the checkpoint: it moves to the saved addresses. Another one (a
    // checkpoint from another kernel): it stays, just past the stub's reservation, and the
    // saved image comes back at its old address with every function forwarded to it.
    let same_vdso = cur_family.compatible_with(&saved_family)
        && vdso_image_matches(fd, &tables, &cur_family);
    let saved_vdso = tables
        .regions
        .iter()
        .find(|r| r.flags & region_flags::VDSO != 0);
    let vdso_home = if same_vdso {
        saved_family.span().map(|(lo, _)| lo)
    } else {
        if tables.threads[0].flags & ckpt_image::THREAD_IN_VDSO != 0 {
            die(
                "this kernel's vDSO differs, and the checkpoint was taken inside the old one",
                None,
                EXIT_OTHER_KERNEL,
            );
        }
        match (cur_family.span(), cur_family.parts[2], saved_vdso) {
            (Some((lo, hi)), Some(_), Some(saved))
                if hi - lo <= ckpt_image::STUB_GAP && saved.stored == saved.len =>
            {
                Some(reserve_end)
            }
            _ => die(
                "this kernel's vDSO differs from the checkpointed one and cannot stand in for it",
                None,
                EXIT_OTHER_KERNEL,
            ),
        }
    };
    if let Some((lo, hi)) = cur_family.span() {
        if park + (hi - lo) > reserve_end {
            fail(FormatError::BadTables);
        }
    }

    // 2. Point of no return: clear away everything the kernel gave this process except the
    //    stub's own reservation and the vDSO family.
    for m in current {
        let ours = m.start >= header.stub_base && m.end <= reserve_end;
        if ours || m.vdso_kind != 0 || m.start >= 0x0000_8000_0000_0000 {
            continue;
        }
        syscall3(SYS_MUNMAP, m.start as usize, (m.end - m.start) as usize, 0);
    }
    move_vdso_family(&cur_family, vdso_home, park);

    // 3. Map and fill every saved region (the saved vDSO image too when this kernel's is
    //    another: it then forwards to this one).
    for r in tables.regions {
        let kernel_provided = r.flags & region_flags::VDSO_FAMILY != 0;
        if kernel_provided && (same_vdso || r.flags & region_flags::VDSO == 0) {
            continue;
        }
        restore_region(fd, r, &tables, lazy);
    }
    if let (false, Some(saved), Some(home), Some((cur_lo, _)), Some((vdso_at, vdso_len))) = (
        same_vdso,
        saved_vdso,
        vdso_home,
        cur_family.span(),
        cur_family.parts[2],
    ) {
        forward_vdso(saved, home + (vdso_at - cur_lo), vdso_len);
    }

    // 4. The kernel's view of the layout (brk, stack, arguments, auxv); best effort.
    let map = PrctlMmMap {
        layout: header.mm,
        auxv: tables.auxv.as_ptr() as u64,
        auxv_size: (tables.auxv.len() * 8) as u32,
        exe_fd: u32::MAX,
    };
    if header.mm.start_code != 0 {
        syscall6(
            SYS_PRCTL,
            PR_SET_MM,
            PR_SET_MM_MAP,
            &map as *const PrctlMmMap as usize,
            core::mem::size_of::<PrctlMmMap>(),
            0,
            0,
        );
    }

    // 5. Signal actions and the thread's own state, then jump.
    for (i, sa) in tables.sigactions.iter().enumerate() {
        let sig = i + 1;
        if sig == 9 || sig == 19 {
            continue;
        }
        syscall6(SYS_RT_SIGACTION, sig, sa as *const _ as usize, 0, 8, 0, 0);
    }
    let thread = &tables.threads[0];
    let ss = [thread.altstack_sp, thread.altstack_flags as u64, thread.altstack_size];
    syscall3(SYS_SIGALTSTACK, ss.as_ptr() as usize, 0, 0);
    syscall3(SYS_CLOSE, fd, 0, 0);
    if syscall3(SYS_ARCH_PRCTL, ARCH_SET_FS, thread.fs_base as usize, 0) < 0 {
        die("cannot set the thread pointer", Some(thread.fs_base), EXIT_RESTORE_FAILED);
    }
    syscall6(SYS_RT_SIGPROCMASK, SIG_SETMASK, &thread.sigmask as *const u64 as usize, 0, 8, 0, 0);
    // SAFETY: the whole saved address space is back, including the stack and the code the
    // context points into; the context was captured by libckpt's capture point.
    unsafe { ckpt_image::resume_context(&thread.context, ckpt_image::RESUMED) }
}

/// Whether the saved vDSO image is the one this kernel provides (a program's cached vDSO
/// function pointers then still point at the same code).
fn vdso_image_matches(fd: usize, tables: &Tables, cur: &VdsoFamily) -> bool {
    let Some(saved) = tables.regions.iter().find(|r| r.flags & region_flags::VDSO != 0) else {
        return true;
    };
    let Some((cur_start, cur_len)) = cur.parts[2] else { return false };
    if cur_len != saved.len {
        return false;
    }
    // SAFETY: single-threaded; PAGE is free again once the header was copied out.
    let page = unsafe { &mut (*(&raw mut PAGE)).0 };
    for e in tables.extents_of(saved) {
        let mut off = 0;
        while off < e.len {
            if !pread_full(fd, page.as_mut_ptr() as usize, PAGE_SIZE as usize, e.file_offset + off) {
                fail(FormatError::Truncated);
            }
            let at = cur_start + (e.addr - saved.start) + off;
            // SAFETY: `at` lies inside the current [vdso] mapping (same size as the saved one,
            // checked above), which is readable.
            let live = unsafe { core::slice::from_raw_parts(at as *const u8, PAGE_SIZE as usize) };
            if live != &page[..] {
                return false;
            }
            off += PAGE_SIZE;
        }
    }
    true
}

/// Patches the saved vDSO image, restored at its old address, so that each of its functions
/// jumps to the function of the same name in this kernel's vDSO (`len` bytes at `new`); a
/// function this kernel lacks returns -ENOSYS. The program's cached pointers into the old
/// image then reach this kernel's code, which finds its data where this kernel put it.
fn forward_vdso(old: &ckpt_image::RegionRecord, new: u64, len: u64) {
    const MAX: usize = 64;
    let mut patches = [(0u64, [0u8; 12]); MAX];
    let mut count = 0;
    // SAFETY: the old image was just restored at old.start (old.len bytes, readable); this
    // kernel's [vdso] is mapped readable at new (len bytes). Both views end before the
    // patching below.
    let (old_image, new_image) = unsafe {
        (
            core::slice::from_raw_parts(old.start as *const u8, old.len as usize),
            core::slice::from_raw_parts(new as *const u8, len as usize),
        )
    };
    let parsed = vdso_functions(old_image, |name, off| {
        let mut target = None;
        let _ = vdso_functions(new_image, |n, o| {
            if n == name {
                target = Some(new + o);
            }
        });
        let code = match target {
            Some(t) => jump_to(t),
            // mov rax, -ENOSYS; ret
            None => [0x48, 0xc7, 0xc0, 0xda, 0xff, 0xff, 0xff, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc],
        };
        if count < MAX && off + 12 <= old.len {
            patches[count] = (off, code);
            count += 1;
        }
    });
    // Two functions closer than a jump's length (aliases share one address) cannot both be
    // forwarded.
    let crowded = patches[..count].iter().any(|(a, _)| {
        patches[..count]
            .iter()
            .any(|(b, _)| a < b && b - a < 12)
    });
    if parsed.is_none() || count == MAX || crowded {
        die("cannot forward the checkpointed vDSO's functions", Some(old.start), EXIT_OTHER_KERNEL);
    }
    if syscall3(SYS_MPROTECT, old.start as usize, old.len as usize, PROT_READ | PROT_WRITE) < 0 {
        die("cannot protect region", Some(old.start), EXIT_RESTORE_FAILED);
    }
    for (off, code) in &patches[..count] {
        // SAFETY: off + 12 <= old.len: inside the old image, writable now.
        let dst = unsafe { core::slice::from_raw_parts_mut((old.start + off) as *mut u8, 12) };
        dst.copy_from_slice(code);
    }
    if syscall3(SYS_MPROTECT, old.start as usize, old.len as usize, old.prot as usize) < 0 {
        die("cannot protect region", Some(old.start), EXIT_RESTORE_FAILED);
    }
}

/// Moves the kernel's vvar/vvar_vclock/vdso to `home` (the lowest of them lands there),
/// keeping their spacing, through a parking spot in the stub's reservation so that old and
/// new never overlap; with no home, unmaps them.
fn move_vdso_family(cur: &VdsoFamily, home: Option<u64>, park: u64) {
    let Some((cur_lo, _)) = cur.span() else { return };
    let Some(home) = home else {
        for (s, l) in cur.parts.iter().flatten() {
            syscall3(SYS_MUNMAP, *s as usize, *l as usize, 0);
        }
        return;
    };
    if cur_lo == home {
        return;
    }
    for dest_lo in [park, home] {
        for (s, l) in cur.parts.iter().flatten() {
            let from = if dest_lo == park { *s } else { park + (s - cur_lo) };
            let to = dest_lo + (s - cur_lo);
            let r = syscall6(
                SYS_MREMAP,
                from as usize,
                *l as usize,
                *l as usize,
                MREMAP_MAYMOVE | MREMAP_FIXED,
                to as usize,
                0,
            );
            if r != to as isize {
                die("cannot move the vDSO", Some(to), EXIT_RESTORE_FAILED);
            }
        }
    }
}

/// Maps region `r` at its address and fills it (lazy: maps its payload from the checkpoint
/// file), then gives it back its protection, its guard pages and what the program had set
/// on it: advice, lock and seal. Losing one of those the program relies on is said on
/// stderr; the restart goes on.
fn restore_region(fd: usize, r: &ckpt_image::RegionRecord, tables: &Tables, lazy: bool) {
    let shared = r.flags & region_flags::SHARED != 0;
    // What the program set on the mapping; not on the saved vDSO image, which is patched below
    // and was the kernel's.
    let own = if r.flags & region_flags::VDSO_FAMILY == 0 { r.flags } else { 0 };
    let mut flags = MAP_FIXED | MAP_ANONYMOUS | map_flags(own);
    flags |= if shared { MAP_SHARED } else { MAP_PRIVATE };
    let prot = r.prot as usize;
    let fills = tables.stored_extents_of(r).next().is_some();
    let initial = if fills { PROT_READ | PROT_WRITE } else { prot };
    let map = |flags| {
        syscall6(SYS_MMAP, r.start as usize, r.len as usize, initial, flags, usize::MAX, 0)
    };
    let mut got = map(flags);
    // Without MAP_NORESERVE the whole mapping is charged against the commit limit, which the
    // kernel may refuse now: memory is shorter than when the program mapped it, or the
    // original was never charged (read-only or PROT_NONE memory, filled here through a
    // writable mapping; a shared file mapping, restored as shared memory). Uncharged, it
    // still restarts; only writable private memory, which was charged, has lost something.
    if got == -ENOMEM && flags & MAP_NORESERVE == 0 {
        got = map(flags | MAP_NORESERVE);
        if got == r.start as isize && !shared && prot & PROT_WRITE != 0 {
            warn_region(r.start, "mapped MAP_NORESERVE: the kernel refused to charge it against the commit limit");
        }
    }
    if got != r.start as isize {
        die("cannot map region", Some(r.start), EXIT_RESTORE_FAILED);
    }
    for advice in advice_before_fill(own) {
        syscall3(SYS_MADVISE, r.start as usize, r.len as usize, advice);
    }
    // Lazy: private memory is mapped from the checkpoint file and read on first touch.
    // Shared memory must stay shared anonymous memory, a stack must keep growing down, and
    // MADV_WIPEONFORK needs anonymous memory, so those are always read.
    let keep_anonymous = region_flags::STACK | region_flags::GROWSDOWN | region_flags::WIPEONFORK;
    let eager = !lazy || shared || own & keep_anonymous != 0;
    if !eager {
        for e in tables.stored_extents_of(r) {
            if e.flags & ckpt_image::EXTENT_LZ4 != 0 {
                // Compressed payloads cannot be mapped; they are read.
                read_extent(fd, e);
                continue;
            }
            let got = syscall6(
                SYS_MMAP,
                e.addr as usize,
                e.len as usize,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_FIXED | (flags & MAP_NORESERVE),
                fd,
                e.file_offset as usize,
            );
            if got != e.addr as isize {
                die("cannot map region contents from the checkpoint", Some(e.addr), EXIT_RESTORE_FAILED);
            }
        }
    } else {
        for e in tables.stored_extents_of(r) {
            // Fault the pages in with one call instead of one trap per page: the fill below
            // then copies into memory that is already there.
            syscall3(SYS_MADVISE, e.addr as usize, e.len as usize, MADV_POPULATE_WRITE);
            read_extent(fd, e);
        }
    }
    if initial != prot && syscall3(SYS_MPROTECT, r.start as usize, r.len as usize, prot) < 0 {
        die("cannot protect region", Some(r.start), EXIT_RESTORE_FAILED);
    }
    // Guard pages fault on any access, as they did. A kernel without them (before Linux
    // 6.13) gets inaccessible pages instead, which fault all the same.
    for g in tables.guards_of(r) {
        if syscall3(SYS_MADVISE, g.addr as usize, g.len as usize, MADV_GUARD_INSTALL) < 0
            && syscall3(SYS_MPROTECT, g.addr as usize, g.len as usize, 0) < 0
        {
            die("cannot install guard pages", Some(g.addr), EXIT_RESTORE_FAILED);
        }
    }
    for (advice, lost) in advice_after_fill(own, eager) {
        if syscall3(SYS_MADVISE, r.start as usize, r.len as usize, advice) < 0 {
            if let Some(what) = lost {
                warn_region(r.start, what);
            }
        }
    }
    // Locked last: after the guards (which a locked mapping refuses), and once filled, so
    // that locking does not fault in pages only to have them overwritten.
    if own & region_flags::LOCKED != 0 {
        let how = if own & region_flags::LOCKONFAULT != 0 { MLOCK_ONFAULT } else { 0 };
        if syscall3(SYS_MLOCK2, r.start as usize, r.len as usize, how) < 0 {
            warn_region(r.start, "no longer locked: mlock refused (is RLIMIT_MEMLOCK too low?)");
        }
    }
    // Sealed very last: nothing may change the mapping after that.
    if own & region_flags::SEALED != 0 && syscall3(SYS_MSEAL, r.start as usize, r.len as usize, 0) < 0 {
        warn_region(r.start, "no longer sealed: mseal refused (it needs Linux 6.10 or later)");
    }
}

/// Reads an extent into place in chunks, checking its payload checksum as it goes (the chunk is
/// still in cache).
fn read_extent(fd: usize, e: &ckpt_image::ExtentRecord) {
    if e.flags & ckpt_image::EXTENT_LZ4 != 0 {
        return read_extent_lz4(fd, e);
    }
    const CHUNK: u64 = 1 << 20;
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    let mut done = 0;
    while done < e.len {
        let n = (e.len - done).min(CHUNK);
        let at = e.addr + done;
        if !pread_full(fd, at as usize, n as usize, e.file_offset + done) {
            die("cannot read the contents of region", Some(e.addr), EXIT_RESTORE_FAILED);
        }
        if e.flags & ckpt_image::EXTENT_HAS_CRC != 0 {
            // SAFETY: the chunk was just mapped read-write and filled by pread.
            let bytes = unsafe { core::slice::from_raw_parts(at as *const u8, n as usize) };
            sum.update(bytes);
        }
        done += n;
    }
    if e.flags & ckpt_image::EXTENT_HAS_CRC != 0 && sum.finish() != e.crc {
        die("checkpoint payload is damaged (checksum mismatch)", Some(e.addr), EXIT_PAYLOAD_DAMAGED);
    }
}

/// Compressed frames on their way into place.
static mut PACKED: [u8; lz4::bound(lz4::FRAME_MAX)] = [0; lz4::bound(lz4::FRAME_MAX)];

/// Reads a compressed extent frame by frame, each decoded straight into place and checked
/// as a whole against the extent's checksum; a damaged frame is reported like a damaged
/// payload.
fn read_extent_lz4(fd: usize, e: &ckpt_image::ExtentRecord) {
    let damaged = || -> ! { die("checkpoint payload is damaged (bad compressed data)", Some(e.addr), EXIT_PAYLOAD_DAMAGED) };
    let mut sum = ckpt_image::crc32c::PayloadChecksum::new();
    let mut at = e.file_offset;
    let mut done = 0u64;
    // SAFETY: single-threaded; PACKED is only used here.
    let packed = unsafe { &mut *(&raw mut PACKED) };
    while done < e.len {
        let mut header = [0u8; lz4::FRAME_HEADER];
        if !pread_full(fd, header.as_mut_ptr() as usize, header.len(), at) {
            fail(FormatError::Truncated);
        }
        let (stored, raw) = lz4::frame_header(&header);
        if !lz4::frame_ok(stored, raw, (e.len - done) as usize) {
            damaged();
        }
        let dst_addr = e.addr + done;
        // SAFETY: [dst_addr, +raw) lies inside the extent (raw <= len - done), which the
        // caller mapped read-write.
        let dst = unsafe { core::slice::from_raw_parts_mut(dst_addr as *mut u8, raw) };
        let body = at + lz4::FRAME_HEADER as u64;
        if stored == raw {
            if !pread_full(fd, dst.as_mut_ptr() as usize, raw, body) {
                fail(FormatError::Truncated);
            }
        } else {
            if !pread_full(fd, packed.as_mut_ptr() as usize, stored, body) {
                fail(FormatError::Truncated);
            }
            if lz4::decompress(&packed[..stored], dst).is_err() {
                damaged();
            }
        }
        sum.update(dst);
        at = body + stored as u64;
        done += raw as u64;
    }
    if e.flags & ckpt_image::EXTENT_HAS_CRC != 0 && sum.finish() != e.crc {
        die("checkpoint payload is damaged (checksum mismatch)", Some(e.addr), EXIT_PAYLOAD_DAMAGED);
    }
}
