//! `ckpt info FILE [--json]`: what a checkpoint holds, from its header and tables (and the
//! few payload bytes of the command line). Payload checksums are `ckpt verify`'s business.
//!
//! `--json` is written by serde_json. What stays hand-written is display of this command's
//! own choosing, not a format another program parses: sizes (`1.5 KiB`), shell quoting of
//! the command line, and the UTC date, whose dozen lines of calendar arithmetic (tested
//! against every day of 600 years) spare a date crate with time zones for one fixed format.

use std::fmt::Write as _;
use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

use ckpt_image::{prot, region_flags as rf, RegionRecord, ThreadRecord, EXTENT_LZ4};
use ckpt_image::{FdRecord, FD_ACTION_CLOSED, FD_ACTION_REOPEN, FD_ACTION_STDIO};
use ckpt_image::{FD_KIND_DIRECTORY, FD_KIND_REGULAR};
use ckpt_image::{THREAD_IN_VDSO, THREAD_LEADER, THREAD_MAIN, THREAD_PTRACED};

use crate::image::Image;

/// How a region's memory is backed, as `ckpt info` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    Anonymous,
    File,
    Heap,
    Stack,
    Vvar,
    VvarVclock,
    Vdso,
    DeletedFile,
    Memfd,
}

impl Backing {
    pub fn of(r: &RegionRecord) -> Backing {
        if r.flags & rf::VVAR != 0 {
            Backing::Vvar
        } else if r.flags & rf::VVAR_VCLOCK != 0 {
            Backing::VvarVclock
        } else if r.flags & rf::VDSO != 0 {
            Backing::Vdso
        } else if r.flags & rf::HEAP != 0 {
            Backing::Heap
        } else if r.flags & rf::STACK != 0 {
            Backing::Stack
        } else if r.flags & rf::MEMFD != 0 {
            Backing::Memfd
        } else if r.flags & rf::DELETED != 0 {
            Backing::DeletedFile
        } else if r.flags & rf::FILE != 0 {
            Backing::File
        } else {
            Backing::Anonymous
        }
    }

    /// The word used in both outputs.
    pub fn word(self) -> &'static str {
        match self {
            Backing::Anonymous => "anonymous",
            Backing::File => "file",
            Backing::Heap => "heap",
            Backing::Stack => "stack",
            Backing::Vvar => "vvar",
            Backing::VvarVclock => "vvar_vclock",
            Backing::Vdso => "vdso",
            Backing::DeletedFile => "deleted file",
            Backing::Memfd => "memfd",
        }
    }

    fn is_file(self) -> bool {
        matches!(self, Backing::File | Backing::DeletedFile | Backing::Memfd)
    }
}

/// How much of a file-backed mapping's contents the checkpoint holds.
fn contents_word(r: &RegionRecord) -> &'static str {
    if r.stored == 0 {
        "none"
    } else if r.stored >= r.len {
        "all"
    } else {
        "part"
    }
}

/// `r-xp`, `rw-s`, `---p` as in /proc/PID/maps.
pub fn prot_string(r: &RegionRecord) -> String {
    let mut s = String::with_capacity(4);
    s.push(if r.prot & prot::READ != 0 { 'r' } else { '-' });
    s.push(if r.prot & prot::WRITE != 0 { 'w' } else { '-' });
    s.push(if r.prot & prot::EXEC != 0 { 'x' } else { '-' });
    s.push(if r.flags & rf::SHARED != 0 { 's' } else { 'p' });
    s
}

/// One region, ready to print.
pub struct RegionInfo {
    pub start: u64,
    pub end: u64,
    pub prot: String,
    pub backing: Backing,
    pub name: String,
    pub stored: u64,
    pub extents: u32,
    /// Whether its payloads are LZ4 frames, and the bytes they take in the file (`None`
    /// when a frame header is damaged).
    pub compressed: bool,
    pub in_file: Option<u64>,
    /// It had transparent huge pages (restored with `MADV_HUGEPAGE`).
    pub huge: bool,
    /// Bytes of guard pages (`MADV_GUARD_INSTALL`), installed again at restart.
    pub guard: u64,
    /// What the program had set on it with `mmap`, `madvise`, `mlock` and `mseal`, restored
    /// at restart: `noreserve`, `dontfork`, `locked` … (`region_flags::VM_FLAGS`).
    pub flags: Vec<&'static str>,
    /// Offset in the backing file of the region's first byte.
    pub file_offset: u64,
}

/// The words for the `VM_FLAGS` in `flags`, in their table's order.
pub fn vm_flag_words(flags: u32) -> Vec<&'static str> {
    rf::VM_FLAGS
        .iter()
        .filter(|(flag, _, _)| flags & flag != 0)
        .map(|(_, _, word)| *word)
        .collect()
}

/// One thread of the thread table, ready to print.
pub struct ThreadInfo {
    pub tid: u32,
    /// Its name (`comm`), as the program set it with `pthread_setname_np` or `PR_SET_NAME`.
    pub name: String,
    /// `main` (its tid was the process id), `leader` (it took the checkpoint), `ptraced`
    /// (it blocked ckpt's signal and was stopped from outside), in that order.
    pub roles: Vec<&'static str>,
    /// Where the checkpoint stopped it (0: not known, as for the leader of `ckpt_ckpt()`).
    pub pc: u64,
    pub sp: u64,
    /// The mapping `pc` lies in; `None` when `pc` is not known.
    pub stopped_at: Option<Location>,
    pub in_vdso: bool,
    /// Signals pending for this thread alone, by name.
    pub pending: Vec<String>,
    /// The CPUs it may run on, as a list such as `0-3,8`; `None` when not recorded.
    pub cpus: Option<String>,
}

/// An address as the mapping it lies in and an offset.
#[derive(Debug, PartialEq, Eq)]
pub struct Location {
    /// The file's base name, or `[vdso]`, `[heap]`, `[stack]`, `[anon]`; `[unmapped]` when
    /// no saved region holds the address.
    pub mapping: String,
    /// The file's full path (file-backed mappings only).
    pub path: Option<String>,
    /// For a file: the offset in the file (for a shared library or a position-independent
    /// executable usually its ELF address, as `addr2line` takes it); otherwise the offset
    /// from the start of the region; for `[unmapped]` the address itself.
    pub offset: u64,
}

impl Location {
    /// Where `addr` lies among `regions` (sorted and disjoint, as the tables guarantee).
    pub fn of(regions: &[RegionInfo], addr: u64) -> Location {
        let at = regions.partition_point(|r| r.end <= addr);
        let Some(r) = regions.get(at).filter(|r| r.start <= addr) else {
            return Location {
                mapping: "[unmapped]".to_owned(),
                path: None,
                offset: addr,
            };
        };
        let within = addr - r.start;
        if r.backing.is_file() {
            let base = r.name.rsplit('/').next().unwrap_or(&r.name);
            Location {
                mapping: if base.is_empty() { "[file]" } else { base }.to_owned(),
                path: Some(r.name.clone()),
                offset: r.file_offset.saturating_add(within),
            }
        } else {
            let mapping = match r.backing {
                Backing::Anonymous => "[anon]".to_owned(),
                _ if r.name.is_empty() => format!("[{}]", r.backing.word()),
                _ => r.name.clone(),
            };
            Location {
                mapping,
                path: None,
                offset: within,
            }
        }
    }

    /// `libc.so.6+0x1234`.
    pub fn text(&self) -> String {
        format!("{}+{:#x}", printable(&self.mapping), self.offset)
    }
}

impl ThreadInfo {
    pub fn gather(t: &ThreadRecord, regions: &[RegionInfo]) -> ThreadInfo {
        let roles = [
            (THREAD_MAIN, "main"),
            (THREAD_LEADER, "leader"),
            (THREAD_PTRACED, "ptraced"),
        ]
        .iter()
        .filter(|(flag, _)| t.flags & flag != 0)
        .map(|(_, word)| *word)
        .collect();
        ThreadInfo {
            tid: t.tid,
            name: String::from_utf8_lossy(t.name()).into_owned(),
            roles,
            pc: t.pc,
            sp: t.sp,
            stopped_at: (t.pc != 0).then(|| Location::of(regions, t.pc)),
            in_vdso: t.flags & THREAD_IN_VDSO != 0,
            pending: (1..=64)
                .filter(|sig| t.pending & (1u64 << (sig - 1)) != 0)
                .map(signal_word)
                .collect(),
            cpus: cpu_list(&t.affinity),
        }
    }
}

/// `SIGWINCH`, `SIGRTMIN+2`, `signal 32` (glibc's own).
pub fn signal_word(sig: i32) -> String {
    match ckpt_image::signals::signal_name(sig) {
        Some(name) => format!("SIG{name}"),
        None if sig >= ckpt_image::signals::SIGRTMIN => {
            format!("SIGRTMIN+{}", sig - ckpt_image::signals::SIGRTMIN)
        }
        None => format!("signal {sig}"),
    }
}

/// A CPU mask (bit per CPU) as a list of CPUs and ranges, `0-3,8,10-11` (the format of
/// `taskset -c` and `/sys/devices/system/cpu/online`); `None` for an empty mask, which
/// means "not recorded".
pub fn cpu_list(mask: &[u64]) -> Option<String> {
    let set = |cpu: usize| mask[cpu / 64] & (1 << (cpu % 64)) != 0;
    let n = mask.len() * 64;
    let mut parts = Vec::new();
    let mut cpu = 0;
    while cpu < n {
        if !set(cpu) {
            cpu += 1;
            continue;
        }
        let first = cpu;
        while cpu + 1 < n && set(cpu + 1) {
            cpu += 1;
        }
        parts.push(if first == cpu {
            first.to_string()
        } else {
            format!("{first}-{cpu}")
        });
        cpu += 1;
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// `text` with control characters escaped (thread and file names are the program's choice).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One open descriptor, ready to print.
pub struct FdInfo {
    pub fd: u32,
    pub kind: &'static str,
    pub path: String,
    /// `r`, `w` or `rw`.
    pub access: &'static str,
    /// `append`, `nonblock`, `sync`, … as the program opened it.
    pub flags: Vec<&'static str>,
    pub pos: u64,
    pub cloexec: bool,
    /// The first descriptor that shares this one's open file description, when another.
    pub shares_with: Option<u32>,
    /// `reopen`, `dup`, `stdio` or `closed`.
    pub action: &'static str,
    /// What a restart does with it, in words.
    pub restart: String,
    pub record: FdRecord,
}

impl FdInfo {
    pub fn gather(f: &FdRecord, all: &[FdRecord], path: &[u8]) -> FdInfo {
        let shares_with = all
            .get(f.group as usize)
            .map(|g| g.fd)
            .filter(|&g| g != f.fd);
        let access = match f.flags as i32 & libc::O_ACCMODE {
            libc::O_RDONLY => "r",
            libc::O_WRONLY => "w",
            _ => "rw",
        };
        let flags = [
            (libc::O_APPEND, "append"),
            (libc::O_NONBLOCK, "nonblock"),
            (libc::O_SYNC, "sync"),
            (libc::O_DSYNC, "dsync"),
            (libc::O_DIRECT, "direct"),
            (libc::O_NOATIME, "noatime"),
            (libc::O_PATH, "path"),
        ]
        .iter()
        .filter(|(bit, _)| f.flags as i32 & bit == *bit)
        .map(|(_, w)| *w)
        .collect();
        let reopens = ckpt_image::kind_reopens(f.kind);
        let (action, restart) = match f.action {
            FD_ACTION_REOPEN => match shares_with {
                Some(g) => ("dup", format!("dup of {g} (shares its offset)")),
                None => (
                    "reopen",
                    match f.kind {
                        FD_KIND_REGULAR => format!("reopen at offset {}", f.pos),
                        FD_KIND_DIRECTORY => format!("reopen at position {}", f.pos),
                        _ => "reopen".to_owned(),
                    },
                ),
            },
            FD_ACTION_STDIO => (
                "stdio",
                match f.kind {
                    FD_KIND_REGULAR => format!(
                        "the restart's own (the same file goes on at offset {}; reopened if \
                         closed)",
                        f.pos
                    ),
                    _ if reopens => "the restart's own (reopened if closed)".to_owned(),
                    _ => "the restart's own".to_owned(),
                },
            ),
            FD_ACTION_CLOSED => ("closed", "left closed (not saved)".to_owned()),
            _ => ("unknown", "unknown".to_owned()),
        };
        FdInfo {
            fd: f.fd,
            kind: ckpt_image::kind_name(f.kind),
            path: String::from_utf8_lossy(path).into_owned(),
            access,
            flags,
            pos: f.pos,
            cloexec: f.cloexec(),
            shares_with,
            action,
            restart,
            record: *f,
        }
    }
}

/// Everything `ckpt info` prints.
pub struct Info {
    pub file: String,
    pub program: Option<String>,
    /// The command line, `None` when its bytes are not in the checkpoint.
    pub args: Option<Vec<String>>,
    pub taken_at: u64,
    pub pid: u32,
    pub version: u32,
    pub stub_base: u64,
    pub regions: Vec<RegionInfo>,
    pub tids: Vec<u32>,
    /// Every thread, in the table's order (the one the restart resumes first, first).
    pub threads: Vec<ThreadInfo>,
    /// Every open descriptor, in increasing order.
    pub fds: Vec<FdInfo>,
    /// The checkpoint signal found the thread inside the vDSO (such a checkpoint restarts
    /// only under a kernel with the same vDSO).
    pub in_vdso: bool,
    /// The register state the CPU had enabled (XCR0, low half; 0: not recorded).
    pub xcr0: u32,
    pub extents: usize,
    pub total_stored: u64,
    pub file_size: u64,
}

impl Info {
    pub fn gather(file: &str, image: &Image) -> Info {
        let tables = image.tables();
        let header = &image.header;
        let regions: Vec<RegionInfo> = tables
            .regions
            .iter()
            .map(|r| {
                let extents: Vec<_> = tables.stored_extents_of(r).collect();
                RegionInfo {
                    start: r.start,
                    end: r.start + r.len,
                    prot: prot_string(r),
                    backing: Backing::of(r),
                    name: String::from_utf8_lossy(tables.name(r)).into_owned(),
                    stored: r.stored,
                    extents: r.extent_count,
                    compressed: extents.iter().any(|e| e.flags & EXTENT_LZ4 != 0),
                    in_file: extents.iter().map(|e| image.bytes_in_file(e)).sum(),
                    huge: r.flags & rf::HUGE != 0,
                    guard: tables.guards_of(r).map(|e| e.len).sum(),
                    flags: vm_flag_words(r.flags),
                    file_offset: r.file_offset,
                }
            })
            .collect();
        let code = header.mm.start_code;
        let program = regions
            .iter()
            .find(|r| r.start <= code && code < r.end)
            .map(|r| r.name.clone())
            .filter(|name| !name.is_empty());
        let args = if header.mm.arg_end > header.mm.arg_start
            && header.mm.arg_end - header.mm.arg_start <= 16 << 20
        {
            image
                .read_memory(header.mm.arg_start, header.mm.arg_end - header.mm.arg_start)
                .map(|bytes| split_args(&bytes))
        } else {
            None
        };
        Info {
            file: file.to_owned(),
            program,
            args,
            taken_at: header.taken_at,
            pid: header.pid,
            version: header.version,
            stub_base: header.stub_base,
            total_stored: tables.regions.iter().map(|r| r.stored).sum(),
            threads: tables
                .threads
                .iter()
                .map(|t| ThreadInfo::gather(t, &regions))
                .collect(),
            fds: tables
                .fds
                .iter()
                .map(|f| FdInfo::gather(f, tables.fds, tables.fd_name(f)))
                .collect(),
            regions,
            tids: tables.threads.iter().map(|t| t.tid).collect(),
            in_vdso: tables
                .threads
                .iter()
                .any(|t| t.flags & ckpt_image::THREAD_IN_VDSO != 0),
            xcr0: tables.threads.first().map_or(0, |t| t.xcr0),
            extents: tables.extents.len(),
            file_size: image.size,
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let unknown = "(unknown)".to_owned();
        let _ = writeln!(out, "checkpoint:    {}", self.file);
        let _ = writeln!(
            out,
            "program:       {}",
            self.program.as_ref().unwrap_or(&unknown)
        );
        let command = match &self.args {
            Some(args) => args
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            None => "(not stored)".to_owned(),
        };
        let _ = writeln!(out, "command line:  {command}");
        let _ = writeln!(out, "taken:         {}", format_utc(self.taken_at));
        let _ = writeln!(out, "pid:           {}", self.pid);
        let _ = writeln!(out, "format:        version {}", self.version);
        let _ = writeln!(out, "stub base:     {:#x}", self.stub_base);
        let tids: Vec<String> = self.tids.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "threads:       {} (tid {}){}",
            self.tids.len(),
            tids.join(", "),
            if self.in_vdso {
                "; taken inside the vDSO: restarts only under a kernel with the same vDSO"
            } else {
                ""
            }
        );
        let _ = match self.xcr0 {
            0 => writeln!(out, "cpu state:     not recorded"),
            x => writeln!(
                out,
                "cpu state:     XCR0 {x:#x} (a restart needs a CPU with at least these)"
            ),
        };
        let _ = writeln!(out, "regions:       {}", self.regions.len());
        for r in &self.regions {
            let mut what = match r.backing {
                Backing::Anonymous if r.name.is_empty() => "anonymous".to_owned(),
                Backing::Anonymous => format!("anonymous {}", r.name),
                Backing::File => r.name.clone(),
                Backing::DeletedFile => format!("deleted file {}", r.name),
                Backing::Memfd => format!("memfd {}", r.name),
                _ => r.name.clone(),
            };
            if r.backing.is_file() {
                let contents = match contents_word_of(r) {
                    "all" => "contents stored",
                    "part" => "contents partly stored",
                    _ => "contents not stored",
                };
                let _ = write!(what, " ({contents})");
            }
            if r.huge {
                what.push_str(" [huge pages]");
            }
            if !r.flags.is_empty() {
                let _ = write!(what, " [{}]", r.flags.join(", "));
            }
            if r.guard > 0 {
                let _ = write!(what, " [guard pages: {}]", human_size(r.guard));
            }
            if r.compressed {
                let _ = match r.in_file {
                    Some(n) => write!(what, " [lz4: {}]", human_size(n)),
                    None => write!(what, " [lz4: damaged]"),
                };
            }
            let _ = writeln!(
                out,
                "  {:#014x}-{:#014x} {:>10} {}  {:>10} stored  {}",
                r.start,
                r.end,
                human_size(r.end - r.start),
                r.prot,
                r.stored,
                what
            );
        }
        let _ = writeln!(
            out,
            "stored:        {} bytes ({}) in {} extents",
            self.total_stored,
            human_size(self.total_stored),
            self.extents
        );
        let _ = writeln!(
            out,
            "file size:     {} bytes ({})",
            self.file_size,
            human_size(self.file_size)
        );
        self.thread_table(&mut out);
        self.fd_table(&mut out);
        out
    }

    /// One line per descriptor, in columns as wide as their widest entry.
    fn fd_table(&self, out: &mut String) {
        let _ = writeln!(out, "descriptors:   {}", self.fds.len());
        let rows: Vec<[String; 6]> = self
            .fds
            .iter()
            .map(|f| {
                let mut access = f.access.to_owned();
                for w in &f.flags {
                    let _ = write!(access, ",{w}");
                }
                if f.cloexec {
                    access.push_str(",cloexec");
                }
                if f.record.locked() {
                    access.push_str(",locked");
                }
                [
                    f.fd.to_string(),
                    f.kind.to_owned(),
                    access,
                    f.pos.to_string(),
                    f.restart.clone(),
                    printable(&f.path),
                ]
            })
            .collect();
        let header = ["fd", "kind", "flags", "offset", "restart", "path"].map(String::from);
        let mut widths = [0usize; 6];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let _ = writeln!(out, "descriptor list:");
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::from(" ");
            for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
                let _ = match i {
                    0 | 3 => write!(line, " {cell:>w$}"),
                    _ => write!(line, "  {cell:<w$}"),
                };
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }

    /// One line per thread, in columns as wide as their widest entry.
    fn thread_table(&self, out: &mut String) {
        let rows: Vec<[String; 6]> = self
            .threads
            .iter()
            .map(|t| {
                let dash = || "-".to_owned();
                [
                    t.tid.to_string(),
                    if t.roles.is_empty() {
                        dash()
                    } else {
                        t.roles.join(",")
                    },
                    if t.name.is_empty() {
                        dash()
                    } else {
                        printable(&t.name)
                    },
                    t.stopped_at.as_ref().map_or_else(dash, Location::text),
                    if t.pending.is_empty() {
                        dash()
                    } else {
                        t.pending.join(",")
                    },
                    t.cpus.clone().unwrap_or_else(dash),
                ]
            })
            .collect();
        let header = ["tid", "role", "name", "stopped at", "pending", "cpus"].map(String::from);
        let mut widths = [0usize; 6];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let _ = writeln!(out, "thread list:");
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::from(" ");
            for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
                let _ = match i {
                    0 => write!(line, " {cell:>w$}"),
                    _ => write!(line, "  {cell:<w$}"),
                };
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }

    /// The `--json` object: one line, keys in a fixed order (tests and scripts parse it).
    pub fn json(&self) -> String {
        let regions = self
            .regions
            .iter()
            .map(|r| RegionJson {
                start: r.start,
                end: r.end,
                size: r.end - r.start,
                prot: &r.prot,
                backing: r.backing.word(),
                name: &r.name,
                stored: r.stored,
                extents: r.extents,
                contents: r.backing.is_file().then(|| contents_word_of(r)),
                compressed: r.compressed,
                in_file: r.in_file,
                huge_pages: r.huge,
                guard_bytes: r.guard,
                flags: &r.flags,
            })
            .collect();
        to_json(&InfoJson {
            file: &self.file,
            program: self.program.as_deref(),
            args: self.args.as_deref(),
            taken_at: self.taken_at,
            taken: format_utc(self.taken_at),
            pid: self.pid,
            format_version: self.version,
            stub_base: self.stub_base,
            regions,
            threads: ThreadsJson {
                count: self.tids.len(),
                tids: &self.tids,
                in_vdso: self.in_vdso,
                list: self
                    .threads
                    .iter()
                    .map(|t| ThreadJson {
                        tid: t.tid,
                        name: &t.name,
                        roles: &t.roles,
                        pc: t.pc,
                        sp: t.sp,
                        stopped_at: t.stopped_at.as_ref().map(|l| LocationJson {
                            mapping: &l.mapping,
                            path: l.path.as_deref(),
                            offset: l.offset,
                        }),
                        in_vdso: t.in_vdso,
                        pending: &t.pending,
                        cpus: t.cpus.as_deref(),
                    })
                    .collect(),
            },
            descriptors: DescriptorsJson {
                count: self.fds.len(),
                list: self
                    .fds
                    .iter()
                    .map(|f| FdJson {
                        fd: f.fd,
                        kind: f.kind,
                        path: &f.path,
                        access: f.access,
                        flags: &f.flags,
                        pos: f.pos,
                        cloexec: f.cloexec,
                        locked: f.record.locked(),
                        shares_with: f.shares_with,
                        action: f.action,
                        restart: &f.restart,
                        dev: f.record.dev,
                        ino: f.record.ino,
                        size: f.record.size,
                        mtime_ns: f.record.mtime_ns,
                        mode: f.record.mode,
                    })
                    .collect(),
            },
            xcr0: self.xcr0,
            extents: self.extents,
            total_stored: self.total_stored,
            file_size: self.file_size,
        })
    }
}

#[derive(Serialize)]
struct DescriptorsJson<'a> {
    count: usize,
    list: Vec<FdJson<'a>>,
}

#[derive(Serialize)]
struct FdJson<'a> {
    fd: u32,
    kind: &'static str,
    path: &'a str,
    access: &'static str,
    flags: &'a [&'static str],
    pos: u64,
    cloexec: bool,
    /// Its file had locks of the program's (not taken again by a restart).
    locked: bool,
    /// `null` unless another descriptor shares its open file description (the first one).
    shares_with: Option<u32>,
    action: &'static str,
    restart: &'a str,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: u64,
    mode: u32,
}

/// `ckpt info --json`, field by field in the order it prints them.
#[derive(Serialize)]
struct InfoJson<'a> {
    file: &'a str,
    program: Option<&'a str>,
    args: Option<&'a [String]>,
    taken_at: u64,
    taken: String,
    pid: u32,
    format_version: u32,
    stub_base: u64,
    regions: Vec<RegionJson<'a>>,
    threads: ThreadsJson<'a>,
    descriptors: DescriptorsJson<'a>,
    xcr0: u32,
    extents: usize,
    total_stored: u64,
    file_size: u64,
}

#[derive(Serialize)]
struct RegionJson<'a> {
    start: u64,
    end: u64,
    size: u64,
    prot: &'a str,
    backing: &'static str,
    name: &'a str,
    stored: u64,
    extents: u32,
    /// Only for file-backed regions: how much of the file's contents is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    contents: Option<&'static str>,
    compressed: bool,
    in_file: Option<u64>,
    huge_pages: bool,
    guard_bytes: u64,
    flags: &'a [&'static str],
}

#[derive(Serialize)]
struct ThreadsJson<'a> {
    count: usize,
    tids: &'a [u32],
    in_vdso: bool,
    list: Vec<ThreadJson<'a>>,
}

#[derive(Serialize)]
struct ThreadJson<'a> {
    tid: u32,
    name: &'a str,
    roles: &'a [&'static str],
    pc: u64,
    sp: u64,
    /// `null` when the pc is not known.
    stopped_at: Option<LocationJson<'a>>,
    in_vdso: bool,
    pending: &'a [String],
    /// `null` when not recorded.
    cpus: Option<&'a str>,
}

#[derive(Serialize)]
struct LocationJson<'a> {
    mapping: &'a str,
    path: Option<&'a str>,
    offset: u64,
}

/// `value` as compact JSON that is also safe to paste into JavaScript or show on a terminal:
/// serde_json's escapes, plus DEL, U+2028 and U+2029 as `\u` escapes (names and arguments
/// come from the checkpointed program and may hold anything).
pub fn to_json(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, ScriptSafe);
    value
        .serialize(&mut serializer)
        .expect("serializing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's compact format, with the three extra escapes of [`to_json`].
struct ScriptSafe;

impl Formatter for ScriptSafe {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let mut rest = fragment;
        while let Some(at) = rest.find(['\u{7f}', '\u{2028}', '\u{2029}']) {
            let c = rest[at..].chars().next().unwrap_or_default();
            writer.write_all(&rest.as_bytes()[..at])?;
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

fn contents_word_of(r: &RegionInfo) -> &'static str {
    contents_word(&RegionRecord {
        len: r.end - r.start,
        stored: r.stored,
        ..Default::default()
    })
}

/// The NUL-separated arguments of `/proc/PID/cmdline`-style bytes.
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Quotes an argument for display the way a shell would need it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// 1536 → "1.5 KiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month (1–12) and day (1–31) of a count of days since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
