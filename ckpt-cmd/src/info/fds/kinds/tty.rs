//! Terminals.

use ckpt_image::fdkind::tty::{Terminal, ECHO, ICANON, TERMINAL_HAS_SIZE};
use ckpt_image::FdRecord;

pub fn restart(_f: &FdRecord, aux: &[u8]) -> Option<String> {
    let t: Terminal = ckpt_image::read_record(aux)?;
    Some(format!(
        "opened on the restart's terminal, with the saved settings ({})",
        settings(&t)
    ))
}

/// The settings that matter to a reader: line editing and echo, and the size it had.
pub fn settings(t: &Terminal) -> String {
    let mode = match (t.lflag & ICANON != 0, t.lflag & ECHO != 0) {
        (true, true) => "line editing, echo",
        (true, false) => "line editing, no echo",
        (false, true) => "raw, echo",
        (false, false) => "raw, no echo",
    };
    if t.flags & TERMINAL_HAS_SIZE != 0 {
        format!("{mode}; was {}x{}", t.cols, t.rows)
    } else {
        mode.to_owned()
    }
}
