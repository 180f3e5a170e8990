//! The threads of an image, as `ckpt info` shows them: role, name, where each stopped,
//! its pending signals and CPUs.

use super::*;

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
