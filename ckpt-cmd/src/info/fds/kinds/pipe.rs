//! Pipes and FIFOs: which end, whether the other end is in the process (and so what the
//! program sees after the restart), the queued bytes and the pipe's size.

use ckpt_image::fdkind::pipe::Pipe;
use ckpt_image::{FdRecord, FD_ACTION_REBUILD, FD_KIND_FIFO};

pub fn restart(f: &FdRecord, all: &[FdRecord], aux: &[u8]) -> Option<String> {
    let p: Pipe = ckpt_image::read_record(aux)?;
    // The records of this pipe that a restart makes again (dups copy them).
    let members: Vec<&FdRecord> = all
        .iter()
        .enumerate()
        .filter(|(j, g)| {
            g.action == FD_ACTION_REBUILD
                && g.group as usize == *j
                && g.kind == f.kind
                && (g.dev, g.ino) == (f.dev, f.ino)
        })
        .map(|(_, g)| g)
        .collect();
    let queued: u64 = members.iter().map(|g| g.data_len as u64).sum();
    let access = |g: &FdRecord| g.flags as i32 & libc::O_ACCMODE;
    let (reads, writes) = (access(f) != libc::O_WRONLY, access(f) != libc::O_RDONLY);
    let end = match (reads, writes) {
        (true, false) => "read end",
        (false, true) => "write end",
        _ => "read and write end",
    };
    let others = |want_write: bool| -> Vec<String> {
        members
            .iter()
            .filter(|g| g.fd != f.fd)
            .filter(|g| {
                let a = access(g);
                if want_write {
                    a != libc::O_RDONLY
                } else {
                    a != libc::O_WRONLY
                }
            })
            .map(|g| g.fd.to_string())
            .collect()
    };
    let (writers, readers) = (others(true), others(false));
    let any_writer = writes || !writers.is_empty();
    let any_reader = reads || !readers.is_empty();
    let bytes = format!("{queued} queued byte{}", if queued == 1 { "" } else { "s" });
    let fifo = f.kind == FD_KIND_FIFO;
    let head = if fifo {
        format!("reopened at its path as a {end}")
    } else {
        format!("made again as a {end}")
    };
    let partner = |list: &[String], what: &str| match list.len() {
        0 => String::new(),
        1 => format!(", its {what} is fd {}", list[0]),
        _ => format!(", its {what}s are fds {}", list.join(", ")),
    };
    let story = match (any_reader, any_writer) {
        (true, true) => format!(
            "{}{}; {bytes}",
            if reads {
                partner(&writers, "write end")
            } else {
                String::new()
            },
            if writes && !reads {
                partner(&readers, "read end")
            } else {
                String::new()
            },
        ),
        (true, false) if fifo => format!(
            "; no writer in the process: {bytes}, then end of file unless another process \
             opens it for writing"
        ),
        (true, false) => {
            format!("; the writer is not in the process: {bytes}, then end of file")
        }
        (false, _) if fifo => format!(
            "; no reader in the process: writes fail with EPIPE until another process opens \
             it for reading ({bytes} kept for it)"
        ),
        (false, _) => {
            "; the reader is not in the process: writes fail with EPIPE (SIGPIPE)".to_owned()
                + &if queued > 0 {
                    format!(" and its {bytes} are dropped")
                } else {
                    String::new()
                }
        }
    };
    Some(format!("{head}{story}; pipe size {}", p.size))
}
