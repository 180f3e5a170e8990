//! Process-wide kernel state that a new process does not inherit from the checkpoint file,
//! captured with each checkpoint and put back by the restarted process: working directory,
//! umask, interval timers, pending signals, dumpability, resource limits, transparent huge
//! page policy, OOM score adjustment and membarrier registrations.
//!
//! What cannot be put back (a hard limit above the new process's, a lower OOM score without
//! the privilege) is said in one line on stderr, naming it; the program goes on.
//!
//! Everything here runs in the checkpoint signal's handler: signal-safe, no allocation.

use crate::line::Line;
use crate::sys;

/// Resource limits `RLIMIT_CPU` (0) to `RLIMIT_RTTIME` (15).
pub const RLIMITS: usize = 16;

const RLIMIT_NAMES: [&str; RLIMITS] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// What a new process does not inherit and libckpt puts back itself.
pub struct ProcessState {
    /// Working directory (NUL-terminated), or empty when it could not be read.
    pub cwd: [u8; crate::arena::PATH_MAX],
    pub umask: u32,
    /// ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: (interval, remaining) in microseconds.
    pub itimers: [(u64, u64); 3],
    /// Signals pending at the checkpoint for the process or the checkpointing thread, raised
    /// again after a restart.
    pub pending: u64,
    /// Those of them pending for the whole process (`ShdPnd`).
    pub shared_pending: u64,
    /// Whether the program had made itself not dumpable (`PR_SET_DUMPABLE` 0: ssh-agent,
    /// gpg-agent, programs holding keys); a restarted one is made so again.
    pub undumpable: bool,
    /// (soft, hard) of every resource limit; `None` where it could not be read.
    pub rlimits: [Option<(u64, u64)>; RLIMITS],
    /// `PR_GET_THP_DISABLE`: bit 0 disabled, the other bits its flags; `None`: unknown.
    pub thp_disable: Option<u64>,
    /// `/proc/self/oom_score_adj`; `None`: unknown.
    pub oom_score_adj: Option<i64>,
    /// `MEMBARRIER_CMD_GET_REGISTRATIONS`: the registration commands the process issued.
    pub membarrier: Option<u64>,
    /// The descriptor table the last checkpoint recorded (`files`, in the arena).
    pub files: crate::files::Captured,
}

impl Default for ProcessState {
    fn default() -> Self {
        ProcessState {
            cwd: [0; crate::arena::PATH_MAX],
            umask: 0o022,
            itimers: [(0, 0); 3],
            pending: 0,
            shared_pending: 0,
            undumpable: false,
            rlimits: [None; RLIMITS],
            thp_disable: None,
            oom_score_adj: None,
            membarrier: None,
            files: crate::files::Captured {
                fds: 0,
                names: 0,
                data: 0,
            },
        }
    }
}

/// The suffix the kernel gives the link of a deleted working directory.
const DELETED: &[u8] = b" (deleted)";

impl ProcessState {
    /// Records the state of the calling process. `scratch` is reserved memory for small
    /// reads. Signal-safe.
    pub fn capture(&mut self, scratch: &mut [u8]) {
        self.cwd[0] = 0;
        if let Ok(n) = sys::readlink(
            b"/proc/thread-self/cwd\0",
            &mut self.cwd[..crate::arena::PATH_MAX - 1],
        ) {
            self.cwd[n] = 0;
        }
        self.umask = sys::get_umask();
        self.itimers = sys::get_itimers();
        self.pending = sys::sigpending();
        self.shared_pending = sys::read_file(b"/proc/thread-self/status\0", scratch)
            .ok()
            .and_then(|n| ckpt_image::procfs::status_mask(&scratch[..n], b"ShdPnd"))
            .unwrap_or(0);
        for (res, slot) in self.rlimits.iter_mut().enumerate() {
            *slot = sys::get_rlimit(res as u32).ok();
        }
        self.thp_disable = sys::thp_disable().ok();
        self.oom_score_adj = sys::read_file(b"/proc/thread-self/oom_score_adj\0", scratch)
            .ok()
            .and_then(|n| parse_i64(&scratch[..n]));
        self.membarrier = sys::membarrier_registrations().ok();
    }

    /// The working directory, without the kernel's " (deleted)" when it was deleted, and
    /// whether it was.
    pub fn working_directory(&self) -> (&[u8], bool) {
        let len = self.cwd.iter().position(|&c| c == 0).unwrap_or(0);
        let cwd = &self.cwd[..len];
        match cwd.strip_suffix(DELETED) {
            Some(path) => (path, true),
            None => (cwd, false),
        }
    }

    /// Puts the recorded state back in a restarted process, except the pending signals
    /// (`pending_to_raise`) and the interval timers (`arm_itimers`), which go last.
    /// Signal-safe.
    pub fn restore(&self, scratch: &mut [u8]) {
        let (cwd, deleted) = self.working_directory();
        if deleted {
            report3(
                b"ckpt: the working directory '",
                cwd,
                b"' had been deleted at the checkpoint; the program continues where it was \
                  restarted\n",
            );
        } else if !cwd.is_empty() {
            let mut path = [0u8; crate::arena::PATH_MAX];
            path[..cwd.len()].copy_from_slice(cwd);
            if sys::chdir(&path[..cwd.len() + 1]).is_err() {
                report3(
                    b"ckpt: cannot return to the working directory '",
                    cwd,
                    b"'; the program continues where it was restarted\n",
                );
            }
        }
        sys::set_umask(self.umask);
        if self.undumpable {
            sys::set_dumpable(false);
        }
        self.restore_rlimits();
        if let Some(thp) = self.thp_disable {
            if sys::thp_disable().ok() != Some(thp) && sys::set_thp_disable(thp).is_err() {
                report3(
                    b"ckpt: cannot disable transparent huge pages again (PR_SET_THP_DISABLE)",
                    b"",
                    b"\n",
                );
            }
        }
        if let Some(adj) = self.oom_score_adj {
            self.restore_oom_score_adj(adj, scratch);
        }
        if let Some(registered) = self.membarrier {
            for bit in 0..64 {
                let cmd = 1u64 << bit;
                if registered & cmd != 0 && sys::membarrier_register(cmd).is_err() {
                    let mut line = Line::<128>::new();
                    line.push(b"ckpt: cannot register for membarrier command ")
                        .push_hex(cmd)
                        .push(b" again\n");
                    sys::write_stderr(line.as_bytes());
                }
            }
        }
    }

    fn restore_rlimits(&self) {
        for (res, saved) in self.rlimits.iter().enumerate() {
            let Some((soft, hard)) = *saved else { continue };
            let res32 = res as u32;
            let Ok((now_soft, now_hard)) = sys::get_rlimit(res32) else {
                continue;
            };
            if (now_soft, now_hard) == (soft, hard) || sys::set_rlimit(res32, soft, hard).is_ok() {
                continue;
            }
            // Raising a hard limit takes a privilege: keep this process's hard limit.
            let _ = sys::set_rlimit(res32, soft.min(now_hard), now_hard);
            let mut line = Line::<256>::new();
            line.push(b"ckpt: cannot restore ")
                .push(RLIMIT_NAMES[res].as_bytes())
                .push(b" (soft ");
            push_limit(&mut line, soft);
            line.push(b", hard ");
            push_limit(&mut line, hard);
            line.push(b"): raising the hard limit above ");
            push_limit(&mut line, now_hard);
            line.push(b" is not permitted\n");
            sys::write_stderr(line.as_bytes());
        }
    }

    fn restore_oom_score_adj(&self, adj: i64, scratch: &mut [u8]) {
        let now = sys::read_file(b"/proc/thread-self/oom_score_adj\0", scratch)
            .ok()
            .and_then(|n| parse_i64(&scratch[..n]));
        if now == Some(adj) {
            return;
        }
        let mut value = Line::<24>::new();
        if adj < 0 {
            value.push(b"-");
        }
        value.push_decimal(adj.unsigned_abs());
        if sys::write_file(b"/proc/thread-self/oom_score_adj\0", value.as_bytes()).is_err() {
            report3(
                b"ckpt: cannot set the OOM score adjustment back to ",
                value.as_bytes(),
                b" (lowering it takes a privilege)\n",
            );
        }
    }
}

fn push_limit(line: &mut Line<256>, v: u64) {
    if v == u64::MAX {
        line.push(b"unlimited");
    } else {
        line.push_decimal(v);
    }
}

fn report3(a: &[u8], b: &[u8], c: &[u8]) {
    sys::write_stderr(Line::<1024>::new().push(a).push(b).push(c).as_bytes());
}

/// A decimal integer with an optional sign, blanks around it allowed.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let s = core::str::from_utf8(text).ok()?.trim();
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_directories() {
        assert_eq!(parse_i64(b"-500\n"), Some(-500));
        assert_eq!(parse_i64(b"0\n"), Some(0));
        assert_eq!(parse_i64(b"x"), None);
        let mut p = ProcessState::default();
        p.cwd[..14].copy_from_slice(b"/tmp/x (deleted)"[..14].as_ref());
        assert_eq!(p.working_directory(), (&b"/tmp/x (delete"[..], false));
        let gone = b"/tmp/x (deleted)";
        p.cwd[..gone.len()].copy_from_slice(gone);
        assert_eq!(p.working_directory(), (&b"/tmp/x"[..], true));
    }
}
