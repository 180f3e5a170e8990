//! What `ckpt attach` learns about its target before it touches it: who owns it, whether it
//! is traced, stopped or non-dumpable, and where its C library's `dlopen`, `dlerror`,
//! `getenv`, `setenv` and `unsetenv` are. Everything here only reads `/proc` and files.
//!
//! The functions are found in the C library the *target* has mapped, from that file's
//! dynamic symbol table: the command's own libc may be another file (a container, a
//! program started before an upgrade).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use ckpt_image::procfs;
use object::{Object, ObjectSegment, ObjectSymbol};

/// The functions of the target's C library the injection calls, at their addresses in the
/// target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibcFunctions {
    pub dlopen: u64,
    pub dlerror: u64,
    pub getenv: u64,
    pub setenv: u64,
    pub unsetenv: u64,
    /// glibc's `__environ` variable (not a function): where the environment is, unless the
    /// program has its own copy of it (a copy relocation), when it reads as NULL here.
    pub environ: u64,
}

/// The C library mapped in the target: its file and load bias.
#[derive(Debug, PartialEq, Eq)]
pub struct MappedLibc {
    pub path: Vec<u8>,
    /// Address of its mapping at file offset 0.
    pub base: u64,
    pub dev: (u64, u64),
    pub inode: u64,
}

/// Whether a maps path names glibc's shared C library.
fn is_glibc(path: &[u8]) -> bool {
    path.rsplit(|&b| b == b'/').next() == Some(b"libc.so.6")
}

/// Finds glibc's mapping at file offset 0 in the text of `/proc/PID/maps`.
pub fn find_libc(maps: &[u8]) -> Option<MappedLibc> {
    maps.split(|&b| b == b'\n')
        .filter_map(procfs::maps_line)
        .find(|m| m.offset == 0 && is_glibc(m.name))
        .map(|m| MappedLibc {
            path: m.name.to_vec(),
            base: m.start,
            dev: m.dev,
            inode: m.inode,
        })
}

/// Why the target's libc functions could not be found.
pub type LookupError = String;

/// Reads the target's libc file (through `/proc/PID/root`, so that a target in another mount
/// namespace is read right) and finds the functions. Checks that the file is the one mapped
/// (device and inode), since a library replaced on disk since would give wrong addresses.
pub fn libc_functions(pid: i32, libc: &MappedLibc) -> Result<LibcFunctions, LookupError> {
    use std::os::unix::ffi::OsStrExt;
    let shown = String::from_utf8_lossy(&libc.path).into_owned();
    let mut through_root = PathBuf::from(format!("/proc/{pid}/root"));
    through_root.push(std::ffi::OsStr::from_bytes(
        libc.path.strip_prefix(b"/").unwrap_or(&libc.path),
    ));
    let direct = PathBuf::from(std::ffi::OsStr::from_bytes(&libc.path));
    let path = [through_root, direct]
        .into_iter()
        .find(|p| p.metadata().is_ok())
        .ok_or_else(|| format!("cannot read its C library {shown}"))?;
    let meta = path
        .metadata()
        .map_err(|e| format!("cannot read its C library {shown}: {e}"))?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    if (u64::from(major), u64::from(minor)) != libc.dev || meta.ino() != libc.inode {
        return Err(format!(
            "its C library {shown} was replaced on disk since it was loaded"
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    functions_in(&bytes, libc.base).map_err(|e| format!("{shown}: {e}"))
}

/// The functions' addresses in an ELF shared object `bytes` loaded at `base` (the address of
/// its mapping at file offset 0).
pub fn functions_in(bytes: &[u8], base: u64) -> Result<LibcFunctions, String> {
    let file = object::File::parse(bytes).map_err(|e| format!("not an ELF file: {e}"))?;
    // The load bias: base minus the page-aligned address of the segment at offset 0.
    let first = file
        .segments()
        .find(|s| s.file_range().0 == 0)
        .map(|s| s.address() & !0xfff)
        .unwrap_or(0);
    let bias = base.wrapping_sub(first);
    let find = |name: &str| -> Result<u64, String> {
        file.dynamic_symbols()
            .find(|s| s.name() == Ok(name) && s.is_definition() && s.address() != 0)
            .map(|s| bias.wrapping_add(s.address()))
            .ok_or_else(|| {
                if name == "dlopen" {
                    "it does not export dlopen (glibc older than 2.34 keeps it in libdl, \
                     which ckpt attach does not use yet)"
                        .to_owned()
                } else {
                    format!("it does not export {name}")
                }
            })
    };
    Ok(LibcFunctions {
        dlopen: find("dlopen")?,
        dlerror: find("dlerror")?,
        getenv: find("getenv")?,
        setenv: find("setenv")?,
        unsetenv: find("unsetenv")?,
        environ: find("__environ")?,
    })
}

/// The facts of `/proc/PID/status` the checks use.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Real, effective, saved and filesystem uids.
    pub uids: [u32; 4],
    pub tracer: i32,
    /// The first letter of `State:`.
    pub state: u8,
    pub ignored: u64,
    pub caught: u64,
    pub blocked: u64,
    /// `Seccomp:` 0 none, 1 strict, 2 filter.
    pub seccomp: u32,
}

pub fn parse_status(status: &[u8]) -> Option<Status> {
    let uids: Vec<u32> = std::str::from_utf8(procfs::status_value(status, b"Uid")?)
        .ok()?
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    Some(Status {
        uids: uids.try_into().ok()?,
        tracer: procfs::parse_dec(procfs::status_value(status, b"TracerPid")?)? as i32,
        state: *procfs::status_value(status, b"State")?.first()?,
        ignored: procfs::status_mask(status, b"SigIgn")?,
        caught: procfs::status_mask(status, b"SigCgt")?,
        blocked: procfs::status_mask(status, b"SigBlk")?,
        // (Absent where the kernel has no seccomp: then there is none.)
        seccomp: procfs::status_value(status, b"Seccomp")
            .and_then(procfs::parse_dec)
            .unwrap_or(0) as u32,
    })
}

/// Whether the executable of process `pid` asks for a dynamic loader (`PT_INTERP`).
pub fn executable_is_dynamic(pid: i32) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/exe"))
        .and_then(|file| file.take(64 * 1024).read_to_end(&mut head))
        .is_ok_and(|_| !crate::elf_reader::is_static_elf(&head))
}

/// The system call number a thread is blocked in, from `/proc/PID/task/TID/syscall`.
pub fn blocked_in(pid: i32, tid: i32) -> Option<u64> {
    let text = std::fs::read(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    procfs::blocked_syscall(&text).map(|(nr, _)| nr)
}

/// The thread ids of process `pid`, the main thread first.
pub fn threads(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_by_key(|&tid| (tid != pid, tid));
    tids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_glibc_at_offset_zero() {
        let maps = b"55d0-55d1 r--p 00000000 fd:01 1 /usr/bin/sleep\n\
            7f00a000-7f00b000 r--p 00000000 fd:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
            7f00b000-7f00c000 r-xp 00026000 fd:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6\n";
        let libc = find_libc(maps).expect("libc");
        assert_eq!(libc.base, 0x7f00a000);
        assert_eq!(libc.inode, 77);
        assert_eq!(libc.dev, (0xfd, 1));
        assert!(find_libc(b"55d0-55d1 r--p 00000000 fd:01 1 /usr/bin/static\n").is_none());
        assert!(find_libc(b"7f-80 r--p 00000000 fd:01 1 /lib/ld-musl-x86_64.so.1\n").is_none());
    }

    #[test]
    #[allow(unsafe_code)]
    fn own_libc_functions_match_dlsym() {
        // This test process's own libc, found the way a target's is: the addresses must be
        // the ones its dynamic loader resolved.
        let maps = std::fs::read("/proc/self/maps").unwrap();
        let libc = find_libc(&maps).expect("the test runs with glibc");
        let found = libc_functions(std::process::id() as i32, &libc).expect("functions");
        // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names.
        let (dlopen, setenv) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, c"dlopen".as_ptr()) as u64,
                libc::dlsym(libc::RTLD_DEFAULT, c"setenv".as_ptr()) as u64,
            )
        };
        assert_eq!(found.dlopen, dlopen);
        assert_eq!(found.setenv, setenv);
    }

    #[test]
    fn status_fields() {
        let status = b"Name:\tx\nState:\tS (sleeping)\nTracerPid:\t0\n\
            Uid:\t1000\t1000\t1000\t1000\nSigBlk:\t0000000000000000\n\
            SigIgn:\t0000000000001000\nSigCgt:\t4000000000080002\n";
        let s = parse_status(status).expect("parses");
        assert_eq!(s.uids, [1000; 4]);
        assert_eq!(s.state, b'S');
        assert_eq!(s.tracer, 0);
        assert_eq!(s.ignored, 0x1000);
        assert_eq!(s.caught, 0x4000_0000_0008_0002);
    }
}
