//! The progress of `ckpt checkpoint` on stderr: bytes of memory written of the total, and
//! the rate of writing. On a terminal it appears once a checkpoint has taken more than a
//! second since it was asked for, as one line redrawn in place, cut to the terminal's width,
//! and erased at the end; `CKPT_PROGRESS=1` shows every report from the start, one line
//! each, wherever stderr goes (a batch job's log); `0` never.
//!
//! The rate is of writing alone: it counts from the first report of a request, which the
//! program sends as it starts writing (`ckpt_core::progress::start`), so that the time
//! before — delivering the signal, pre-checkpoint hooks, asking again while the program is
//! busy — does not dilute it. The reports carry no time, so each is timed as it is read;
//! until one is read later than the first, there is no rate to show, and none is shown.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::info::format::human_size;
use crate::sys;

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
    /// When the checkpoint was asked for: a terminal stays quiet for `QUIET_FOR` from here.
    asked: Instant,
    rate: WritingRate,
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
            asked: Instant::now(),
            rate: WritingRate::default(),
            drawn: false,
        }
    }

    /// `done` of `total` bytes are written, as a report read `at` says.
    pub fn report(&mut self, done: u64, total: u64, at: Instant) {
        if self.mode == Mode::Never {
            return;
        }
        let rate = self.rate.observe(done, at);
        if self.mode == Mode::Terminal && at.saturating_duration_since(self.asked) < QUIET_FOR {
            return;
        }
        let text = describe(done, total, rate);
        let mut stderr = std::io::stderr().lock();
        let _ = if self.mode == Mode::Terminal {
            // Read at every redraw, which comes at most every 0.2 s: a window resized
            // meanwhile is followed without a SIGWINCH handler.
            let columns = sys::terminal_columns(stderr.as_fd());
            write!(stderr, "\r{}\x1b[K", fit(&text, columns))
        } else {
            writeln!(stderr, "{text}")
        };
        let _ = stderr.flush();
        self.drawn = true;
    }

    /// The answer came: a line drawn in place is erased, and the rate of a request asked
    /// again (the program was busy) counts anew.
    pub fn finish(&mut self) {
        self.rate = WritingRate::default();
        if self.mode == Mode::Terminal && self.drawn {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
            self.drawn = false;
        }
    }
}

/// The rate of writing over the reports of one request: the bytes written since the first
/// report over the time since it was read.
#[derive(Default)]
struct WritingRate {
    /// When the first report was read, and how many bytes it said were written (none, as
    /// the program sends it, but a first report lost on a full connection would say some).
    first: Option<(Instant, u64)>,
}

impl WritingRate {
    /// Bytes a second up to a report of `done` bytes read `at`; `None` for the first
    /// report and any read with it, which say nothing of how long the writing took.
    fn observe(&mut self, done: u64, at: Instant) -> Option<u64> {
        let (since, from) = *self.first.get_or_insert((at, done));
        let span = at.saturating_duration_since(since);
        (!span.is_zero()).then(|| (done.saturating_sub(from) as f64 / span.as_secs_f64()) as u64)
    }
}

/// "ckpt checkpoint: 1.2 GiB of 2 GiB written (60%), 812.4 MiB/s", or without the rate
/// when there is none yet.
fn describe(done: u64, total: u64, rate: Option<u64>) -> String {
    let percent = (done as u128 * 100)
        .checked_div(total as u128)
        .unwrap_or(100);
    let mut text = format!(
        "ckpt checkpoint: {} of {} written ({percent}%)",
        human_size(done),
        human_size(total)
    );
    if let Some(rate) = rate {
        text += &format!(", {}/s", human_size(rate));
    }
    text
}

/// `text` cut to a terminal `columns` wide, less its last column: a longer line wraps, and
/// one that reaches the right edge does on some terminals; a `\r` redraw then leaves the
/// wrapped part behind, a line more each time. Of unknown width (or 0, as a pseudo-terminal
/// nobody sized says), it is left whole.
fn fit(text: &str, columns: Option<u16>) -> &str {
    let Some(columns) = columns.filter(|&columns| columns > 0) else {
        return text;
    };
    match text.char_indices().nth(usize::from(columns) - 1) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_progress() {
        assert_eq!(
            describe(3 << 29, 2 << 30, Some(768 << 20)),
            "ckpt checkpoint: 1.5 GiB of 2 GiB written (75%), 768 MiB/s"
        );
        assert_eq!(
            describe(0, 0, Some(0)),
            "ckpt checkpoint: 0 B of 0 B written (100%), 0 B/s"
        );
        assert_eq!(
            describe(0, 2 << 30, None),
            "ckpt checkpoint: 0 B of 2 GiB written (0%)"
        );
    }

    /// With a 1.2 s hook, 66.8 MiB written in 0.1 s showed as 52 MiB/s, the hook's time
    /// counted; the rate counts from the first report.
    #[test]
    fn the_rate_counts_from_the_first_report() {
        let asked = Instant::now();
        let first = asked + Duration::from_millis(1200);
        let mut rate = WritingRate::default();
        assert_eq!(rate.observe(0, first), None, "one report: no rate yet");
        assert_eq!(
            rate.observe(0, first),
            None,
            "read with the first: no time between"
        );
        let mib = 1 << 20;
        assert_eq!(
            rate.observe(32 * mib, first + Duration::from_millis(250)),
            Some(128 * mib)
        );
        assert_eq!(
            rate.observe(64 * mib, first + Duration::from_millis(500)),
            Some(128 * mib)
        );
    }

    #[test]
    fn the_rate_counts_what_the_first_report_had_not_said() {
        let first = Instant::now();
        let mut rate = WritingRate::default();
        assert_eq!(rate.observe(1000, first), None);
        assert_eq!(
            rate.observe(3000, first + Duration::from_secs(2)),
            Some(1000)
        );
    }

    #[test]
    fn a_line_is_cut_to_the_terminal_less_a_column() {
        let text = "ckpt checkpoint: 0 B of 2 GiB written (0%)";
        assert_eq!(fit(text, Some(20)), "ckpt checkpoint: 0 ");
        assert_eq!(fit(text, Some(20)).len(), 19);
        assert_eq!(fit(text, Some(text.len() as u16)), &text[..text.len() - 1]);
        assert_eq!(fit(text, Some(text.len() as u16 + 1)), text);
        assert_eq!(fit(text, Some(200)), text);
        assert_eq!(fit(text, Some(1)), "");
    }

    #[test]
    fn a_line_of_unknown_width_is_left_whole() {
        let text = "ckpt checkpoint: 0 B of 2 GiB written (0%)";
        assert_eq!(fit(text, None), text);
        assert_eq!(fit(text, Some(0)), text);
    }
}
