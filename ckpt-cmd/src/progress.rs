//! The progress of `ckpt checkpoint` on stderr: bytes of memory written of the total, and
//! the rate. On a terminal it appears once a checkpoint has taken more than a second, as
//! one line redrawn in place and erased at the end; `CKPT_PROGRESS=1` shows every report
//! from the start, one line each, wherever stderr goes (a batch job's log); `0` never.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::info::format::human_size;

/// How long a checkpoint runs before a terminal shows its progress.
const QUIET_FOR: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Never,
    /// On a terminal, redrawn in place, after `QUIET_FOR`.
    Terminal,
    /// Every report, a line each.
    Lines,
}

pub struct Meter {
    mode: Mode,
    started: Instant,
    drawn: bool,
}

impl Meter {
    pub fn new() -> Meter {
        let mode = match std::env::var("CKPT_PROGRESS").as_deref() {
            Ok("1") => Mode::Lines,
            Ok("0") => Mode::Never,
            _ if std::io::stderr().is_terminal() => Mode::Terminal,
            _ => Mode::Never,
        };
        Meter {
            mode,
            started: Instant::now(),
            drawn: false,
        }
    }

    /// `done` of `total` bytes are written.
    pub fn report(&mut self, done: u64, total: u64) {
        let elapsed = self.started.elapsed();
        let text = describe(done, total, elapsed);
        let mut stderr = std::io::stderr().lock();
        let _ = match self.mode {
            Mode::Never => return,
            Mode::Terminal if elapsed < QUIET_FOR => return,
            Mode::Terminal => write!(stderr, "\r{text}\x1b[K"),
            Mode::Lines => writeln!(stderr, "{text}"),
        };
        let _ = stderr.flush();
        self.drawn = true;
    }

    /// The answer came: a line drawn in place is erased.
    pub fn finish(&mut self) {
        if self.mode == Mode::Terminal && self.drawn {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
            self.drawn = false;
        }
    }
}

/// "ckpt checkpoint: 1.2 GiB of 2 GiB written (60%), 812.4 MiB/s".
fn describe(done: u64, total: u64, elapsed: Duration) -> String {
    let percent = (done as u128 * 100)
        .checked_div(total as u128)
        .unwrap_or(100);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "ckpt checkpoint: {} of {} written ({percent}%), {}/s",
        human_size(done),
        human_size(total),
        human_size(rate as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_progress() {
        assert_eq!(
            describe(3 << 29, 2 << 30, Duration::from_secs(2)),
            "ckpt checkpoint: 1.5 GiB of 2 GiB written (75%), 768 MiB/s"
        );
        assert_eq!(
            describe(0, 0, Duration::ZERO),
            "ckpt checkpoint: 0 B of 0 B written (100%), 0 B/s"
        );
    }
}
