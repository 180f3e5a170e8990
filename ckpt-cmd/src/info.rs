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
use ckpt_image::{
    FdRecord, FD_ACTION_CLOSED, FD_ACTION_REBUILD, FD_ACTION_REOPEN, FD_ACTION_STDIO,
};
use ckpt_image::{FD_KIND_DIRECTORY, FD_KIND_REGULAR, FD_KIND_TERMINAL};
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
    /// Of those, bytes an incremental checkpoint kept from the file it was written over.
    pub kept: u64,
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
            kept: header.kept,
            threads: tables
                .threads
                .iter()
                .map(|t| ThreadInfo::gather(t, &regions))
                .collect(),
            fds: tables
                .fds
                .iter()
                .map(|f| FdInfo::gather(f, tables.fds, tables.fd_name(f), f.aux(tables.names)))
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
        if self.kept != 0 {
            let _ = writeln!(
                out,
                "incremental:   {} bytes ({}) kept from the checkpoint it was written over",
                self.kept,
                human_size(self.kept)
            );
        }
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
            kept_from_previous: self.kept,
            file_size: self.file_size,
        })
    }
}

mod fds;
pub(crate) mod format;
mod json;
mod threads;

pub use fds::*;
pub use format::*;
use json::*;
pub use threads::*;

#[cfg(test)]
mod tests;
