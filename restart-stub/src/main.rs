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

mod regions;
mod sys;
mod vdso;

use ckpt_image::{
    elf, lz4, region_flags, ExitStatus, FormatError, ImageHeader, StubScratch, Tables,
    HEADER_SPACE, PAGE_SIZE,
};

use restart_stub::properties::{advice_after_fill, advice_before_fill, map_flags, MAP_NORESERVE};

use restart_stub::{
    env_flag, env_lookup, format_hex, huge_fill, jump_to, parse_maps, vdso_functions,
    writable_range, writable_word, Mapping, VdsoFamily,
};

use regions::{restore_region, HugeFill};
use sys::*;
use vdso::{forward_vdso, move_vdso_family, vdso_image_matches};

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
    die(
        "internal error in the restart stub",
        None,
        EXIT_RESTORE_FAILED,
    )
}

const MAPS_BUF: usize = 64 * 1024;

const MAX_MAPPINGS: usize = 512;

static MAPS: Static<[u8; MAPS_BUF]> = Static::new([0; MAPS_BUF]);

static MAPPINGS: Static<[Mapping; MAX_MAPPINGS]> = Static::new(
    [Mapping {
        start: 0,
        end: 0,
        vdso_kind: 0,
    }; MAX_MAPPINGS],
);

#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE as usize]);

static PAGE: Static<Page> = Static::new(Page([0; PAGE_SIZE as usize]));

/// The restart's `CKPT_RELOCATE`, NUL-terminated, copied before the kernel's stack (where
/// the environment is) goes away.
static RELOCATE: Static<Page> = Static::new(Page([0; PAGE_SIZE as usize]));

/// Whether the restart was given a `CKPT_RELOCATE` value.
fn relocate_given() -> bool {
    // SAFETY: single-threaded; RELOCATE was written before the restore began.
    unsafe { RELOCATE.get().0[0] != 0 }
}

const EXIT_BAD_OPTION: i32 = ExitStatus::BadOption.code();

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
    // SAFETY: opens a NUL-terminated path, which the kernel only reads.
    let fd = unsafe {
        syscall3(
            SYS_OPEN,
            c"/proc/self/maps".as_ptr() as usize,
            O_RDONLY | O_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        die("cannot read /proc/self/maps", None, EXIT_CANNOT_READ);
    }
    // SAFETY: single-threaded program; these statics are only used here.
    let (buf, out) = unsafe { (MAPS.get(), MAPPINGS.get()) };
    let mut len = 0;
    loop {
        // SAFETY: reads into the unfilled tail of the stub's own buffer, of the length given.
        let r = unsafe {
            syscall3(
                SYS_READ,
                fd as usize,
                buf[len..].as_mut_ptr() as usize,
                MAPS_BUF - len,
            )
        };
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
    // SAFETY: closes a descriptor the stub opened.
    unsafe { syscall3(SYS_CLOSE, fd as usize, 0, 0) };
    let n = parse_maps(&buf[..len], out)
        .unwrap_or_else(|| die("cannot parse /proc/self/maps", None, EXIT_LAYOUT));
    &out[..n]
}

/// Opens the checkpoint file this stub was loaded from.
fn open_self(initial_sp: *const usize) -> usize {
    // SAFETY: opens a NUL-terminated path, which the kernel only reads.
    let fd = unsafe {
        syscall3(
            SYS_OPEN,
            c"/proc/self/exe".as_ptr() as usize,
            O_RDONLY | O_CLOEXEC,
            0,
        )
    };
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
            if *p == AT_EXECFN {
                // (Inside the unsafe block above: AT_EXECFN is a NUL-terminated path, which
                // the kernel only reads.)
                let fd = syscall3(SYS_OPEN, *p.add(1), O_RDONLY | O_CLOEXEC, 0);
                if fd >= 0 {
                    return fd as usize;
                }
            }
            p = p.add(2);
        }
    }
    die(
        "cannot open the checkpoint file (no /proc/self/exe)",
        None,
        EXIT_CANNOT_READ,
    )
}

fn file_size(fd: usize) -> u64 {
    let mut st = [0u64; STAT_WORDS];
    // SAFETY: the kernel writes one struct stat into a buffer of its size.
    if unsafe { syscall3(SYS_FSTAT, fd, st.as_mut_ptr() as usize, 0) } < 0 {
        die("cannot stat the checkpoint file", None, EXIT_CANNOT_READ);
    }
    st[STAT_SIZE_WORD]
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
    let lazy = env_flag(environment(initial_sp), b"CKPT_LAZY");
    let huge_fill =
        huge_fill::Mode::from_env(env_lookup(environment(initial_sp), b"CKPT_HUGE_FILL"));
    let mut options = 0u64;
    if env_flag(environment(initial_sp), b"CKPT_STRICT_FILES") {
        options |= ckpt_image::RESTART_STRICT_FILES;
    }
    if env_flag(environment(initial_sp), b"CKPT_RESTORE_STDIO") {
        options |= ckpt_image::RESTART_RESTORE_STDIO;
    }
    let relocate = env_lookup(environment(initial_sp), b"CKPT_RELOCATE").unwrap_or(b"");
    if relocate.len() >= ckpt_image::relocate::RELOCATE_MAX {
        die(
            "CKPT_RELOCATE is longer than 4095 bytes; nothing was restored",
            None,
            EXIT_BAD_OPTION,
        );
    }
    if let Some(pair) = ckpt_image::relocate::malformed(relocate) {
        write_all(2, b"ckpt restart: CKPT_RELOCATE: '");
        write_all(2, pair);
        write_all(
            2,
            b"' is not OLD=NEW with two absolute paths (pairs separated by ':'); nothing was \
              restored\n",
        );
        exit(EXIT_BAD_OPTION);
    }
    // SAFETY: single-threaded; RELOCATE is written here and read once at the end.
    unsafe { RELOCATE.get().0[..relocate.len()].copy_from_slice(relocate) };
    // Nothing may interrupt the restore: signals stay pending until the program's handlers
    // are back.
    let all: u64 = !0;
    // SAFETY: sets the signal mask from an 8-byte value.
    unsafe {
        syscall6(
            SYS_RT_SIGPROCMASK,
            SIG_SETMASK,
            &all as *const u64 as usize,
            0,
            8,
            0,
            0,
        )
    };

    // 1. Validate, while the address space is still ours to report from.
    let fd = open_self(initial_sp);
    let size = file_size(fd);
    // SAFETY: single-threaded; PAGE is used for one purpose at a time.
    let page = unsafe { &mut PAGE.get().0 };
    if !pread_full(fd, page.as_mut_ptr() as usize, PAGE_SIZE as usize, 0) {
        fail(FormatError::Truncated);
    }
    let header_off = elf::locate_header(page).unwrap_or_else(|| fail(FormatError::BadMagic));
    if header_off
        .checked_add(HEADER_SPACE)
        .is_none_or(|e| e > size)
    {
        fail(FormatError::Truncated);
    }
    if !pread_full(
        fd,
        page.as_mut_ptr() as usize,
        PAGE_SIZE as usize,
        header_off,
    ) {
        fail(FormatError::Truncated);
    }
    let header = ImageHeader::read_from(page).unwrap_or_else(|| fail(FormatError::Truncated));
    header.validate(size).unwrap_or_else(|e| fail(e));

    let StubScratch {
        tables: scratch,
        park,
        end: reserve_end,
    } = header
        .stub_scratch()
        .unwrap_or_else(|| fail(FormatError::BadTables));
    let tables_space = park - scratch;
    if tables_space > 0 {
        // SAFETY: maps at an address of the saved layout, which the stub has cleared of everything but its own reservation.
        let r = unsafe {
            syscall6(
                SYS_MMAP,
                scratch as usize,
                tables_space as usize,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                usize::MAX,
                0,
            )
        };
        if r != scratch as isize {
            die("no room for the restart tables", Some(scratch), EXIT_LAYOUT);
        }
    }
    if !pread_full(
        fd,
        scratch as usize,
        header.tables_len as usize,
        header.tables_offset,
    ) {
        fail(FormatError::Truncated);
    }
    // SAFETY: the scratch mapping holds tables_len bytes just read from the file, is page
    // aligned, and stays mapped until libckpt unmaps the stub's reservation.
    let bytes =
        unsafe { core::slice::from_raw_parts(scratch as *const u8, header.tables_len as usize) };
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
    let same_vdso =
        cur_family.compatible_with(&saved_family) && vdso_image_matches(fd, &tables, &cur_family);
    let saved_vdso = tables
        .regions
        .iter()
        .find(|r| r.flags & region_flags::VDSO != 0);
    let vdso_home = if same_vdso {
        saved_family.span().map(|(lo, _)| lo)
    } else {
        if tables
            .threads
            .iter()
            .any(|t| t.flags & ckpt_image::THREAD_IN_VDSO != 0)
        {
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
        // SAFETY: unmaps what the kernel gave the new process, outside the stub's own reservation.
        unsafe { syscall3(SYS_MUNMAP, m.start as usize, (m.end - m.start) as usize, 0) };
    }
    move_vdso_family(&cur_family, vdso_home, park);

    // 3. Map and fill every saved region (the saved vDSO image too when this kernel's is
    //    another: it then forwards to this one).
    let mut huge = HugeFill::new(huge_fill);
    for r in tables.regions {
        let kernel_provided = r.flags & region_flags::VDSO_FAMILY != 0;
        if kernel_provided && (same_vdso || r.flags & region_flags::VDSO == 0) {
            continue;
        }
        restore_region(fd, r, &tables, lazy, &mut huge);
    }
    huge.give_up();
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
        // SAFETY: the kernel reads a struct prctl_mm_map of the size given.
        unsafe {
            syscall6(
                SYS_PRCTL,
                PR_SET_MM,
                PR_SET_MM_MAP,
                &map as *const PrctlMmMap as usize,
                core::mem::size_of::<PrctlMmMap>(),
                0,
                0,
            )
        };
    }

    // 5. Signal actions and the thread's own state, then jump.
    for (i, sa) in tables.sigactions.iter().enumerate() {
        let sig = i + 1;
        if sig == SIGKILL || sig == SIGSTOP {
            continue;
        }
        // SAFETY: installs the program's saved action, a record in the kernel's layout.
        unsafe { syscall6(SYS_RT_SIGACTION, sig, sa as *const _ as usize, 0, 8, 0, 0) };
    }
    // The restart's options, for libckpt, in the word the header names (always written, so
    // that a value saved with memory does not stand).
    if writable_word(tables.regions, header.restart_options) {
        // SAFETY: an aligned word inside a saved writable region, mapped and filled above.
        unsafe { core::ptr::write_volatile(header.restart_options as *mut u64, options) };
    }
    let relocate_max = ckpt_image::relocate::RELOCATE_MAX;
    if writable_range(tables.regions, header.restart_relocate, relocate_max as u64) {
        // SAFETY: RELOCATE holds the value and its NUL (checked shorter than the buffer);
        // the destination lies inside a saved writable region, mapped and filled above.
        unsafe {
            let value = &RELOCATE.get().0[..relocate_max];
            core::ptr::copy_nonoverlapping(
                value.as_ptr(),
                header.restart_relocate as *mut u8,
                relocate_max,
            );
        }
    } else if relocate_given() {
        // Never a restart that quietly ignores it: files would be opened at their old paths.
        die(
            "CKPT_RELOCATE cannot be handed to the program (the image names no writable place \
             for it)",
            Some(header.restart_relocate),
            EXIT_RESTORE_FAILED,
        );
    }
    let thread = &tables.threads[0];
    let ss = [
        thread.altstack_sp,
        thread.altstack_flags as u64,
        thread.altstack_size,
    ];
    // SAFETY: the kernel reads the saved stack_t (three words).
    unsafe { syscall3(SYS_SIGALTSTACK, ss.as_ptr() as usize, 0, 0) };
    // SAFETY: closes a descriptor the stub opened.
    unsafe { syscall3(SYS_CLOSE, fd, 0, 0) };
    // SAFETY: sets the thread pointer to the program's; the stub uses no thread-local storage.
    if unsafe { syscall3(SYS_ARCH_PRCTL, ARCH_SET_FS, thread.fs_base as usize, 0) } < 0 {
        die(
            "cannot set the thread pointer",
            Some(thread.fs_base),
            EXIT_RESTORE_FAILED,
        );
    }
    // Every signal blocked: the thread resumes inside a handler (or `ckpt_ckpt()`), which
    // puts its own mask back as it returns; the threads it makes again start so too.
    let all: u64 = !0;
    // SAFETY: sets the signal mask from an 8-byte value.
    unsafe {
        syscall6(
            SYS_RT_SIGPROCMASK,
            SIG_SETMASK,
            &all as *const u64 as usize,
            0,
            8,
            0,
            0,
        )
    };
    // SAFETY: the whole saved address space is back, including the stack and the code the
    // context points into; the context was captured by libckpt's capture point.
    unsafe { ckpt_image::resume_context(&thread.context, ckpt_image::RESUMED) }
}
