//! The open descriptors of an image, as `ckpt info` shows them, and what a restart does
//! with each.

use super::*;

mod kinds;

/// `text` with control characters escaped (thread and file names are the program's choice).
pub(super) fn printable(text: &str) -> String {
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
    /// `aux` is the record's kind-specific values (`FdRecord::aux`).
    pub fn gather(f: &FdRecord, all: &[FdRecord], path: &[u8], aux: &[u8]) -> FdInfo {
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
                    FD_KIND_TERMINAL => match ckpt_image::read_record(aux) {
                        Some(t) => format!(
                            "the restart's own (given the saved settings when it is a \
                             terminal: {})",
                            kinds::terminal_settings(&t)
                        ),
                        None => "the restart's own".to_owned(),
                    },
                    _ => "the restart's own".to_owned(),
                },
            ),
            FD_ACTION_CLOSED => ("closed", "left closed (not saved)".to_owned()),
            FD_ACTION_REBUILD => match shares_with {
                Some(g) => ("dup", format!("dup of {g} (shares its state)")),
                None => ("rebuild", kinds::restart(f, all, aux)),
            },
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
