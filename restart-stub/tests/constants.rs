//! The stub's hand-typed kernel numbers, checked against `linux-raw-sys`.
//!
//! The stub is compiled by libckpt's build script with `rustc` alone, without cargo and so
//! without crates: its system call numbers, flags and structure layouts are typed in by hand
//! (`src/sys.rs`, the `properties` module of `src/lib.rs`, and the image records it hands
//! to the kernel). This test, where crates are at hand, holds each of them against the
//! kernel's own headers as `linux-raw-sys` carries them:
//!
//! - every `pub const` of `src/sys.rs`, read from its source text, so that a constant added
//!   there without an entry here fails the test until it is checked too;
//! - the `mmap` and `madvise` numbers of `restart_stub::properties`;
//! - the `PAGEMAP_SCAN` records of `restart_stub::huge_fill`;
//! - the image constants the stub passes to the kernel unchanged (protections, the number of
//!   signals, the control signal) and the layouts it passes by pointer (`SigactionRecord` as
//!   the kernel's `struct sigaction`, `MmLayout` as the head of `struct prctl_mm_map`).
//!
//! The layouts `src/main.rs` and `src/sys.rs` build inline (the `sigaltstack` argument, the
//! `clock_gettime` result) are stated in the last test.

use std::mem::{offset_of, size_of};

use ckpt_image::{MmLayout, SigactionRecord};
use linux_raw_sys::{auxvec, elf_uapi, errno, general as g, ioctl, prctl};
use restart_stub::properties;

/// Every constant `src/sys.rs` defines, with the kernel's value for it.
const KERNEL: &[(&str, i128)] = &[
    ("SYS_READ", g::__NR_read as i128),
    ("SYS_WRITE", g::__NR_write as i128),
    ("SYS_OPEN", g::__NR_open as i128),
    ("SYS_CLOSE", g::__NR_close as i128),
    ("SYS_FSTAT", g::__NR_fstat as i128),
    ("SYS_MMAP", g::__NR_mmap as i128),
    ("SYS_MPROTECT", g::__NR_mprotect as i128),
    ("SYS_MUNMAP", g::__NR_munmap as i128),
    ("SYS_RT_SIGACTION", g::__NR_rt_sigaction as i128),
    ("SYS_RT_SIGPROCMASK", g::__NR_rt_sigprocmask as i128),
    ("SYS_IOCTL", g::__NR_ioctl as i128),
    ("SYS_PREAD64", g::__NR_pread64 as i128),
    ("SYS_MREMAP", g::__NR_mremap as i128),
    ("SYS_MADVISE", g::__NR_madvise as i128),
    ("SYS_SIGALTSTACK", g::__NR_sigaltstack as i128),
    ("SYS_PRCTL", g::__NR_prctl as i128),
    ("SYS_ARCH_PRCTL", g::__NR_arch_prctl as i128),
    ("SYS_EXIT_GROUP", g::__NR_exit_group as i128),
    ("SYS_USERFAULTFD", g::__NR_userfaultfd as i128),
    ("SYS_MLOCK2", g::__NR_mlock2 as i128),
    ("SYS_MSEAL", g::__NR_mseal as i128),
    ("O_RDONLY", g::O_RDONLY as i128),
    ("O_CLOEXEC", g::O_CLOEXEC as i128),
    ("PROT_READ", g::PROT_READ as i128),
    ("PROT_WRITE", g::PROT_WRITE as i128),
    ("MAP_SHARED", g::MAP_SHARED as i128),
    ("MAP_PRIVATE", g::MAP_PRIVATE as i128),
    ("MAP_FIXED", g::MAP_FIXED as i128),
    ("MAP_ANONYMOUS", g::MAP_ANONYMOUS as i128),
    ("MAP_FIXED_NOREPLACE", g::MAP_FIXED_NOREPLACE as i128),
    ("MREMAP_MAYMOVE", g::MREMAP_MAYMOVE as i128),
    ("MREMAP_FIXED", g::MREMAP_FIXED as i128),
    ("SIG_SETMASK", g::SIG_SETMASK as i128),
    ("ARCH_SET_FS", g::ARCH_SET_FS as i128),
    ("PR_SET_MM", prctl::PR_SET_MM as i128),
    ("PR_SET_MM_MAP", prctl::PR_SET_MM_MAP as i128),
    // The stub compares raw results with the negated errno.
    ("EINTR", errno::EINTR as i128),
    ("EAGAIN", errno::EAGAIN as i128),
    ("ENOMEM", errno::ENOMEM as i128),
    ("MADV_POPULATE_WRITE", g::MADV_POPULATE_WRITE as i128),
    ("MADV_GUARD_INSTALL", g::MADV_GUARD_INSTALL as i128),
    ("MLOCK_ONFAULT", g::MLOCK_ONFAULT as i128),
    ("UFFD_USER_MODE_ONLY", g::UFFD_USER_MODE_ONLY as i128),
    ("UFFD_API", g::UFFD_API as i128),
    ("UFFD_FEATURE_MOVE", g::UFFD_FEATURE_MOVE as i128),
    (
        "UFFDIO_REGISTER_MODE_MISSING",
        g::UFFDIO_REGISTER_MODE_MISSING as i128,
    ),
    ("UFFDIO_API", ioctl::UFFDIO_API as i128),
    ("UFFDIO_REGISTER", ioctl::UFFDIO_REGISTER as i128),
    ("UFFDIO_UNREGISTER", ioctl::UFFDIO_UNREGISTER as i128),
    // linux-raw-sys has no UFFDIO_MOVE yet: _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move).
    (
        "UFFDIO_MOVE",
        (3 << 30
            | (size_of::<g::uffdio_move>() << 16)
            | ((g::UFFDIO as usize) << 8)
            | g::_UFFDIO_MOVE as usize) as i128,
    ),
    // vdso.rs's forward_vdso answers a function this kernel lacks with -ENOSYS.
    ("ENOSYS", errno::ENOSYS as i128),
    ("PAGE_IS_HUGE", g::PAGE_IS_HUGE as i128),
    // Actions the stub does not restore: the kernel refuses to change them.
    ("SIGKILL", g::SIGKILL as i128),
    ("SIGSTOP", g::SIGSTOP as i128),
    ("AT_EXECFN", auxvec::AT_EXECFN as i128),
    ("STAT_WORDS", (size_of::<g::stat>() / 8) as i128),
    ("STAT_SIZE_WORD", (offset_of!(g::stat, st_size) / 8) as i128),
];

/// Constants of `src/sys.rs` that are the stub's own, not the kernel's (none yet).
const OWN: &[&str] = &[];

/// `pub const NAME: TYPE = VALUE;` lines of `src/sys.rs`, with their values (decimal, `0x`
/// or `0o`, `_` separators, an optional minus); not `pub const fn`.
fn sys_constants() -> Vec<(String, i128)> {
    let source = include_str!("../src/sys.rs");
    let is_name =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .filter(|decl| {
            decl.split_once(':')
                .is_some_and(|(name, _)| is_name(name.trim()))
        })
        .map(|decl| {
            let (name, rest) = decl
                .split_once(':')
                .unwrap_or_else(|| panic!("cannot read `{decl}`"));
            let value = rest
                .split_once('=')
                .and_then(|(_, v)| v.trim().strip_suffix(';'))
                .unwrap_or_else(|| panic!("cannot read the value of `{decl}`"));
            (
                name.trim().to_owned(),
                literal(value).unwrap_or_else(|| panic!("`{value}` is not a number")),
            )
        })
        .collect()
}

fn literal(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let digits = digits.replace('_', "");
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16)
    } else if let Some(octal) = digits.strip_prefix("0o") {
        i128::from_str_radix(octal, 8)
    } else {
        digits.parse()
    }
    .ok()?;
    Some(if negative { -value } else { value })
}

#[test]
fn sys_rs_constants_are_the_kernels() {
    let constants = sys_constants();
    assert!(
        constants.len() >= KERNEL.len(),
        "read only {} constants from src/sys.rs",
        constants.len()
    );
    let mut problems = Vec::new();
    for (name, value) in &constants {
        match KERNEL.iter().find(|(known, _)| known == name) {
            Some((_, kernel)) if kernel == value => {}
            Some((_, kernel)) => problems.push(format!("{name} is {value:#x} in src/sys.rs, the kernel's is {kernel:#x}")),
            None if OWN.contains(&name.as_str()) => {}
            None => problems.push(format!(
                "{name} (src/sys.rs) is not checked here: add it to KERNEL (or to OWN if it is not the kernel's)"
            )),
        }
    }
    for (name, _) in KERNEL {
        if !constants.iter().any(|(n, _)| n == name) {
            problems.push(format!(
                "{name} is no longer in src/sys.rs: remove it from KERNEL"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn literals_read_as_rust_reads_them() {
    assert_eq!(literal("0o2000000"), Some(0o2000000));
    assert_eq!(literal("0x10_0000"), Some(0x10_0000));
    assert_eq!(literal("462"), Some(462));
    assert_eq!(literal("-4"), Some(-4));
    assert_eq!(literal("SOMETHING"), None);
}

#[test]
fn properties_are_the_kernels() {
    let pairs = [
        ("MAP_GROWSDOWN", properties::MAP_GROWSDOWN, g::MAP_GROWSDOWN),
        ("MAP_NORESERVE", properties::MAP_NORESERVE, g::MAP_NORESERVE),
        ("MADV_RANDOM", properties::MADV_RANDOM, g::MADV_RANDOM),
        (
            "MADV_SEQUENTIAL",
            properties::MADV_SEQUENTIAL,
            g::MADV_SEQUENTIAL,
        ),
        ("MADV_DONTFORK", properties::MADV_DONTFORK, g::MADV_DONTFORK),
        (
            "MADV_MERGEABLE",
            properties::MADV_MERGEABLE,
            g::MADV_MERGEABLE,
        ),
        ("MADV_HUGEPAGE", properties::MADV_HUGEPAGE, g::MADV_HUGEPAGE),
        (
            "MADV_NOHUGEPAGE",
            properties::MADV_NOHUGEPAGE,
            g::MADV_NOHUGEPAGE,
        ),
        ("MADV_DONTDUMP", properties::MADV_DONTDUMP, g::MADV_DONTDUMP),
        (
            "MADV_WIPEONFORK",
            properties::MADV_WIPEONFORK,
            g::MADV_WIPEONFORK,
        ),
        ("MADV_COLLAPSE", properties::MADV_COLLAPSE, g::MADV_COLLAPSE),
    ];
    for (name, ours, kernel) in pairs {
        assert_eq!(ours, kernel as usize, "restart_stub::properties::{name}");
    }
}

/// What the stub hands the kernel straight from the image.
#[test]
fn image_constants_and_layouts_are_the_kernels() {
    use ckpt_image::prot;
    assert_eq!(prot::READ, g::PROT_READ, "prot::READ");
    assert_eq!(prot::WRITE, g::PROT_WRITE, "prot::WRITE");
    assert_eq!(prot::EXEC, g::PROT_EXEC, "prot::EXEC");
    assert_eq!(ckpt_image::EM_X86_64, elf_uapi::EM_X86_64, "EM_X86_64");
    assert_eq!(ckpt_image::NSIG, g::_NSIG as usize, "NSIG");
    // SIGRTMAX - 1: the kernel's last signal is _NSIG.
    assert_eq!(
        ckpt_image::CONTROL_SIGNAL,
        g::_NSIG as i32 - 1,
        "CONTROL_SIGNAL"
    );

    // rt_sigaction(sig, record, NULL, 8): the record is the kernel's struct sigaction and
    // 8 is the size of its mask.
    assert_eq!(
        size_of::<SigactionRecord>(),
        size_of::<g::kernel_sigaction>()
    );
    assert_eq!(
        offset_of!(SigactionRecord, handler),
        offset_of!(g::kernel_sigaction, sa_handler_kernel)
    );
    assert_eq!(
        offset_of!(SigactionRecord, flags),
        offset_of!(g::kernel_sigaction, sa_flags)
    );
    assert_eq!(
        offset_of!(SigactionRecord, restorer),
        offset_of!(g::kernel_sigaction, sa_restorer)
    );
    assert_eq!(
        offset_of!(SigactionRecord, mask),
        offset_of!(g::kernel_sigaction, sa_mask)
    );
    assert_eq!(size_of::<g::kernel_sigset_t>(), 8);

    // PR_SET_MM_MAP takes MmLayout as the head of struct prctl_mm_map, followed by the
    // auxv pointer, its size and the exe fd (main.rs's PrctlMmMap).
    type Map = prctl::prctl_mm_map;
    let fields = [
        (
            offset_of!(MmLayout, start_code),
            offset_of!(Map, start_code),
        ),
        (offset_of!(MmLayout, end_code), offset_of!(Map, end_code)),
        (
            offset_of!(MmLayout, start_data),
            offset_of!(Map, start_data),
        ),
        (offset_of!(MmLayout, end_data), offset_of!(Map, end_data)),
        (offset_of!(MmLayout, start_brk), offset_of!(Map, start_brk)),
        (offset_of!(MmLayout, brk), offset_of!(Map, brk)),
        (
            offset_of!(MmLayout, start_stack),
            offset_of!(Map, start_stack),
        ),
        (offset_of!(MmLayout, arg_start), offset_of!(Map, arg_start)),
        (offset_of!(MmLayout, arg_end), offset_of!(Map, arg_end)),
        (offset_of!(MmLayout, env_start), offset_of!(Map, env_start)),
        (offset_of!(MmLayout, env_end), offset_of!(Map, env_end)),
    ];
    for (ours, kernel) in fields {
        assert_eq!(ours, kernel, "MmLayout field at {ours}");
    }
    assert_eq!(offset_of!(Map, auxv), size_of::<MmLayout>());
    assert_eq!(offset_of!(Map, auxv_size), size_of::<MmLayout>() + 8);
    assert_eq!(offset_of!(Map, exe_fd), size_of::<MmLayout>() + 12);
    assert_eq!(size_of::<Map>(), size_of::<MmLayout>() + 16);
}

/// `PAGEMAP_SCAN`'s argument and result records, as `restart_stub::huge_fill` types them.
#[test]
fn pagemap_scan_layouts_are_the_kernels() {
    use restart_stub::huge_fill::{PageRegion, PmScanArg};
    // linux-raw-sys has no PAGEMAP_SCAN: _IOWR('f', 16, struct pm_scan_arg).
    assert_eq!(
        ckpt_image::pagemap::PAGEMAP_SCAN as usize,
        3 << 30 | (size_of::<g::pm_scan_arg>() << 16) | ((b'f' as usize) << 8) | 16
    );
    assert_eq!(size_of::<PmScanArg>(), size_of::<g::pm_scan_arg>());
    let fields = [
        (
            offset_of!(PmScanArg, size),
            offset_of!(g::pm_scan_arg, size),
        ),
        (
            offset_of!(PmScanArg, flags),
            offset_of!(g::pm_scan_arg, flags),
        ),
        (
            offset_of!(PmScanArg, start),
            offset_of!(g::pm_scan_arg, start),
        ),
        (offset_of!(PmScanArg, end), offset_of!(g::pm_scan_arg, end)),
        (
            offset_of!(PmScanArg, walk_end),
            offset_of!(g::pm_scan_arg, walk_end),
        ),
        (offset_of!(PmScanArg, vec), offset_of!(g::pm_scan_arg, vec)),
        (
            offset_of!(PmScanArg, vec_len),
            offset_of!(g::pm_scan_arg, vec_len),
        ),
        (
            offset_of!(PmScanArg, max_pages),
            offset_of!(g::pm_scan_arg, max_pages),
        ),
        (
            offset_of!(PmScanArg, category_inverted),
            offset_of!(g::pm_scan_arg, category_inverted),
        ),
        (
            offset_of!(PmScanArg, category_mask),
            offset_of!(g::pm_scan_arg, category_mask),
        ),
        (
            offset_of!(PmScanArg, category_anyof_mask),
            offset_of!(g::pm_scan_arg, category_anyof_mask),
        ),
        (
            offset_of!(PmScanArg, return_mask),
            offset_of!(g::pm_scan_arg, return_mask),
        ),
    ];
    for (ours, kernel) in fields {
        assert_eq!(ours, kernel, "PmScanArg field at {ours}");
    }
    assert_eq!(size_of::<PageRegion>(), size_of::<g::page_region>());
    assert_eq!(
        offset_of!(PageRegion, start),
        offset_of!(g::page_region, start)
    );
    assert_eq!(offset_of!(PageRegion, end), offset_of!(g::page_region, end));
    assert_eq!(
        offset_of!(PageRegion, categories),
        offset_of!(g::page_region, categories)
    );
}

/// The layouts `src/main.rs` and `src/sys.rs` build inline: `sigaltstack` from `[sp, flags,
/// size]`, `clock_gettime` into `[seconds, nanoseconds]`.
#[test]
fn what_main_rs_assumes() {
    assert_eq!(size_of::<g::stack_t>(), 3 * 8);
    assert_eq!(offset_of!(g::stack_t, ss_sp), 0);
    assert_eq!(offset_of!(g::stack_t, ss_flags), 8);
    assert_eq!(offset_of!(g::stack_t, ss_size), 16);
    assert_eq!(size_of::<g::stat>() % 8, 0, "struct stat is whole words");
}
