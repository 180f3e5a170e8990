//! The program's POSIX timers (`timer_create`), saved at a checkpoint and made again after a
//! restart with the ids the program holds.
//!
//! At a checkpoint (`capture`) the kernel's list, `/proc/self/timers`, gives each timer's id,
//! clock, signal, value and whom it notifies; `timer_gettime` gives its interval and the time
//! left. The library's own timers (the periodic checkpoint timer, the retry timer and a
//! restart's window-change timer, which it makes again itself) are left out. Pending instances of the signals these timers
//! deliver are taken with their information and queued again at once, so that a restarted
//! process can get them back as they were (a tick still pending carries its timer's id and
//! value, not those of a plain `kill`); the caller leaves them out of the signals it raises
//! again itself.
//!
//! After a restart (`restore`), before the library makes its own timers (which could take a
//! program's id), each timer is created again with its id preset (`PR_TIMER_CREATE_RESTORE_IDS`,
//! Linux 6.16; measured to work for an ordinary user), on its clock (a CPU-time clock of the
//! old process or thread is translated to the new one, see `clocks`), notifying as it did (a
//! timer aimed at the checkpointing thread is aimed at its new thread id), and armed relative
//! with the time it had left and its interval — so an absolute `CLOCK_REALTIME` timer keeps
//! the time it had left, not its date. The overrun count (`timer_getoverrun`) is the kernel's
//! per expiry and starts again at 0. A timer that cannot be made again is named on stderr in
//! one line and the program goes on; timers a checkpoint could not save (more than
//! `MAX_TIMERS`) are counted on stderr at the checkpoint and again at the restart.
//!
//! Threads: a `SIGEV_THREAD_ID` timer is aimed at its thread's new id (`threads::tids`); one
//! aimed at a thread that had ended comes back without notification. glibc's `SIGEV_THREAD`
//! timers are kernel timers aimed at glibc's helper thread, which comes back like any other
//! (when it can be stopped: it blocks every signal, see `threads`). A
//! timer on `CLOCK_THREAD_CPUTIME_ID` is listed as clock -2 whichever thread made it (the
//! kernel keeps that thread to itself): it must be made again by its own thread, which only
//! a record kept by a `timer_create` wrapper could tell. It is made again by the restart's
//! leader, and in a process with other threads the restart says so in one line.
//!
//! The records live in a static of this module (saved with the library's memory), used only
//! by the checkpoint path while it holds the in-progress flag.

use ckpt_image::procfs::{parse_dec, parse_hex};

use crate::line::Line;
use crate::sys::{self, Global, SigInfo, TimerEvent};

/// Most timers a checkpoint saves; more are counted on stderr, never dropped silently.
pub const MAX_TIMERS: usize = 1024;
/// Most pending signals saved with their information (each timer has at most one pending).
const MAX_PENDING: usize = 64;
/// Timer ids tried one by one when the kernel's list cannot be read (the kernel hands out
/// ids counting up from 0, so a program's timers are found there unless it made thousands).
const PROBED_IDS: i32 = 1024;

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
/// How `/proc/self/timers` lists a timer on `CLOCK_THREAD_CPUTIME_ID` (the calling thread's
/// CPU-time clock, whichever thread that was).
const THREAD_CPUTIME_SELF: i32 = -2;
const SI_TIMER: i32 = -2;

/// A timer as saved: what `/proc/self/timers` lists, with `timer_gettime`'s times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerRecord {
    pub id: i32,
    pub clock: i32,
    pub event: TimerEvent,
    pub interval_ns: u64,
    pub value_ns: u64,
}

const NO_TIMER: TimerRecord = TimerRecord {
    id: 0,
    clock: 0,
    event: TimerEvent {
        value: 0,
        signo: 0,
        notify: 0,
        tid: 0,
    },
    interval_ns: 0,
    value_ns: 0,
};

struct Saved {
    timers: [TimerRecord; MAX_TIMERS],
    count: usize,
    /// Timers of the program the checkpoint could not save.
    unsaved: usize,
    /// The checkpointing thread, at which `SIGEV_THREAD_ID` timers may be aimed.
    thread: u32,
    /// The program's own `PR_TIMER_CREATE_RESTORE_IDS` mode, put back after the restore.
    restore_ids: u64,
    pending: [SigInfo; MAX_PENDING],
    pending_count: usize,
}

static SAVED: Global<Saved> = Global::new(Saved {
    timers: [NO_TIMER; MAX_TIMERS],
    count: 0,
    unsaved: 0,
    thread: 0,
    restore_ids: sys::TIMER_IDS_OFF,
    pending: [SigInfo::zeroed(); MAX_PENDING],
    pending_count: 0,
});

/// Saves the program's timers — every timer but `library`'s own (ids, -1: none) — and the
/// pending instances of the signals they deliver, except `ours` (ckpt's own signals; bit
/// `sig - 1`). Returns `pending` without the signals saved with their information.
/// `scratch` holds the kernel's list while it is read. Signal-safe; runs in the checkpoint
/// handler with the in-progress flag held.
pub fn capture(scratch: &mut [u8], library: [i32; 3], pending: u64, ours: u64) -> u64 {
    // SAFETY: the checkpoint path holds the in-progress flag (the caller's contract), the
    // only user of SAVED.
    let saved = unsafe { SAVED.get() };
    saved.count = 0;
    saved.unsaved = 0;
    saved.pending_count = 0;
    saved.thread = sys::gettid();
    saved.restore_ids =
        sys::timer_restore_ids(sys::TIMER_IDS_GET).map_or(sys::TIMER_IDS_OFF, |mode| mode as u64);

    let listed = match sys::read_file(b"/proc/self/timers\0", scratch) {
        Ok(n) if n < scratch.len() => Ok(n),
        Ok(_) => Err(libc::EFBIG),
        Err(e) => Err(e),
    };
    let mut signals = 0u64;
    let parsed = listed.map(|n| {
        parse_timers(&scratch[..n], |t| {
            if library.contains(&t.id) {
                return;
            }
            if saved.count == MAX_TIMERS {
                saved.unsaved += 1;
                return;
            }
            saved.timers[saved.count] = TimerRecord {
                id: t.id,
                clock: t.clock,
                event: t.event,
                interval_ns: 0,
                value_ns: 0,
            };
            saved.count += 1;
            if t.event.notify != SIGEV_NONE && (1..=64).contains(&t.event.signo) {
                signals |= 1 << (t.event.signo - 1);
            }
        })
    });
    match parsed {
        Ok(Ok(())) => {}
        Ok(Err(line)) => {
            saved.count = 0;
            saved.unsaved = count_by_probing(library);
            let mut msg = Line::<256>::new();
            msg.push(b"ckpt: cannot parse line ")
                .push_decimal(line as u64)
                .push(b" of /proc/self/timers");
            report_unlisted(&mut msg, saved.unsaved);
        }
        Err(e) => {
            saved.unsaved = count_by_probing(library);
            let mut msg = Line::<256>::new();
            msg.push(b"ckpt: cannot read /proc/self/timers (")
                .push(crate::report::errno_name(e).as_bytes())
                .push(b")");
            report_unlisted(&mut msg, saved.unsaved);
        }
    }

    // The kernel lists the newest first; in order of id, messages read better.
    saved.timers[..saved.count].sort_unstable_by_key(|t| t.id);
    // Taken before the times are read: taking a periodic timer's signal rearms the timer,
    // as its delivery to the program would have.
    let taken = save_pending(saved, signals & pending & !ours);
    for t in &mut saved.timers[..saved.count] {
        // Only this thread runs: a listed timer cannot have gone meanwhile.
        if let Ok((interval, value)) = sys::timer_gettime(t.id) {
            (t.interval_ns, t.value_ns) = (interval, value);
        }
    }
    if saved.unsaved > 0 && parsed.is_ok_and(|p| p.is_ok()) {
        let mut msg = Line::<256>::new();
        msg.push(b"ckpt: this checkpoint saves ")
            .push_decimal(MAX_TIMERS as u64)
            .push(b" POSIX timers, no more: ")
            .push_decimal(saved.unsaved as u64)
            .push(b" are left out, and the restarted program will not have them\n");
        sys::write_stderr(msg.as_bytes());
    }
    pending & !taken
}

/// Ends the line `msg` for a checkpoint that could not list the program's timers and found
/// `found` of them by trying ids; silent when it found none. Signal-safe.
fn report_unlisted(msg: &mut Line<256>, found: usize) {
    if found == 0 {
        return;
    }
    msg.push(b": ")
        .push_decimal(found as u64)
        .push(b" POSIX timers are not saved, and the restarted program will not have them\n");
    sys::write_stderr(msg.as_bytes());
}

/// The program's timers among ids 0..PROBED_IDS, for a kernel that does not list them.
fn count_by_probing(library: [i32; 3]) -> usize {
    (0..PROBED_IDS)
        .filter(|id| !library.contains(id) && sys::timer_gettime(*id).is_ok())
        .count()
}

/// Takes every pending instance of the signals in `signals` with its information into
/// `saved`, and queues them again at once: this process goes on (or its writer copies it)
/// with them pending as before. Returns the signals taken completely; one that did not fit
/// keeps its bit, and the caller raises it again as it does other signals (an instance too
/// many, never one too few). Signal-safe.
fn save_pending(saved: &mut Saved, signals: u64) -> u64 {
    let mut taken = 0u64;
    for sig in 1..=64 {
        let bit = 1u64 << (sig - 1);
        if signals & bit == 0 {
            continue;
        }
        while saved.pending_count < MAX_PENDING {
            let Some(mut info) = sys::take_pending(bit) else {
                taken |= bit;
                break;
            };
            forget_kernel_word(&mut info);
            saved.pending[saved.pending_count] = info;
            saved.pending_count += 1;
        }
    }
    for info in &saved.pending[..saved.pending_count] {
        queue_again(info);
    }
    taken
}

/// Clears the kernel's private word of a timer signal (`_sys_private`, after the id, overrun
/// and value): kernels before 6.13 rearm the timer it names when they see it set on a
/// queued signal.
fn forget_kernel_word(info: &mut SigInfo) {
    let code = i32::from_ne_bytes([info.0[8], info.0[9], info.0[10], info.0[11]]);
    if code == SI_TIMER {
        info.0[32..36].fill(0);
    }
}

/// Queues a saved signal to this thread; should the kernel refuse (a full signal queue), it
/// is raised without its information rather than lost. Signal-safe.
fn queue_again(info: &SigInfo) {
    if sys::queue_to_self(info).is_err() {
        sys::raise_in_thread(info.signo());
    }
}

/// In a restarted process: makes the saved timers again and queues the saved pending
/// signals. Must run before the library makes timers of its own. Signal-safe; runs in the
/// restart path with the in-progress flag held.
pub fn restore() {
    // SAFETY: the restart path holds the in-progress flag (the caller's contract), the only
    // user of SAVED.
    let saved = unsafe { SAVED.get() };
    let timers = &saved.timers[..saved.count];
    if !timers.is_empty() {
        match sys::timer_restore_ids(sys::TIMER_IDS_ON) {
            Ok(_) => {
                let threads = crate::threads::frozen_count();
                for t in timers {
                    if let Err((what, e)) = restore_timer(t, saved.thread) {
                        report_unrestored(t, what, e);
                    } else if t.clock == THREAD_CPUTIME_SELF && threads > 1 {
                        report_thread_clock(t);
                    }
                }
                let _ = sys::timer_restore_ids(saved.restore_ids);
            }
            Err(e) => report_no_restore_ids(timers, e),
        }
    }
    for info in &saved.pending[..saved.pending_count] {
        queue_again(info);
    }
    if saved.unsaved > 0 {
        let mut msg = Line::<256>::new();
        msg.push(b"ckpt: ")
            .push_decimal(saved.unsaved as u64)
            .push(b" POSIX timers of the program were not saved by the checkpoint; it goes on without them\n");
        sys::write_stderr(msg.as_bytes());
    }
}

/// Makes timer `t` again with its id, with ids preset; `thread` is the thread the
/// checkpoint ran in. On failure, which call failed and its errno.
fn restore_timer(t: &TimerRecord, thread: u32) -> Result<(), (&'static str, i32)> {
    let mut event = t.event;
    if event.notify & SIGEV_THREAD_ID != 0 {
        match crate::threads::tids::current(event.tid as u32) {
            Some(now) => event.tid = now as i32,
            None if event.tid as u32 == thread => event.tid = sys::gettid() as i32,
            None => {
                // A thread that had ended (see the module documentation).
                event.notify = SIGEV_NONE;
                event.tid = 0;
            }
        }
    }
    let clock = crate::clocks::translate(t.clock);
    match sys::timer_create(clock, &event, t.id) {
        Ok(id) if id == t.id => {}
        Ok(id) => {
            // Not with ids preset; never seen, but a timer under another id would be a
            // stranger to the program.
            sys::timer_delete(id);
            return Err(("timer_create", libc::EEXIST));
        }
        Err(e) => return Err(("timer_create", e)),
    }
    if t.interval_ns != 0 || t.value_ns != 0 {
        sys::timer_settime(t.id, t.interval_ns, t.value_ns).map_err(|e| ("timer_settime", e))?;
    }
    Ok(())
}

/// One line about a timer on a thread's own CPU-time clock, made again by the thread that
/// took the checkpoint (see the module documentation). Signal-safe.
fn report_thread_clock(t: &TimerRecord) {
    let mut msg = Line::<256>::new();
    msg.push(b"ckpt: POSIX timer ")
        .push_decimal(t.id as u64)
        .push(b" (CLOCK_THREAD_CPUTIME_ID) now counts the CPU time of the thread that took the checkpoint, which may not be the thread that made it\n");
    sys::write_stderr(msg.as_bytes());
}

/// One line naming a timer that could not be made again. Signal-safe.
fn report_unrestored(t: &TimerRecord, what: &str, e: i32) {
    let mut msg = Line::<256>::new();
    msg.push(b"ckpt: POSIX timer ")
        .push_decimal(t.id as u64)
        .push(b" (");
    match crate::clocks::cpu_clock_owner(t.clock) {
        Some((id, thread)) => msg
            .push(if thread {
                b"CPU-time clock of thread "
            } else {
                b"CPU-time clock of process "
            })
            .push_decimal(id.into()),
        None => msg.push(b"clock ").push_signed(t.clock.into()),
    };
    msg.push(b") is not restored: ")
        .push(what.as_bytes())
        .push(b": ");
    match e {
        libc::EBUSY => msg.push(b"its id is taken"),
        _ => msg.push(crate::report::errno_name(e).as_bytes()),
    };
    msg.push(b" (errno ")
        .push_decimal(e as u64)
        .push(b"); the program goes on without it\n");
    sys::write_stderr(msg.as_bytes());
}

/// One line for a kernel that cannot make timers with the ids the program holds (`e`: why
/// `PR_TIMER_CREATE_RESTORE_IDS` was refused): a timer under another id would answer to
/// the wrong `timer_t`, so none is made. Signal-safe.
fn report_no_restore_ids(timers: &[TimerRecord], e: i32) {
    let mut msg = Line::<512>::new();
    msg.push(b"ckpt: POSIX timers cannot be made again with their ids here (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.16 or later: ")
        .push(crate::report::errno_name(e).as_bytes())
        .push(b"): ")
        .push_decimal(timers.len() as u64)
        .push(b" timers (ids");
    for t in timers.iter().take(16) {
        msg.push(b" ").push_decimal(t.id as u64);
    }
    if timers.len() > 16 {
        msg.push(b" ...");
    }
    msg.push(b") are not restored; the program goes on without them\n");
    sys::write_stderr(msg.as_bytes());
}

// ---------------------------------------------------------------------------------------
// The kernel's list

/// One timer as `/proc/self/timers` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: i32,
    pub clock: i32,
    pub event: TimerEvent,
}

/// Calls `each` for every timer in the text of `/proc/self/timers` (fs/proc/base.c,
/// `show_timer`), four lines per timer:
///
/// ```text
/// ID: 3
/// signal: 12/00000000fffffffb     the signal, and the value (all 64 bits, in hex)
/// notify: signal/tid.8368         signal|none|thread, then pid.N or (SIGEV_THREAD_ID) tid.N
/// ClockID: -66950
/// ```
///
/// `Err(n)`: line `n` (from 1) cannot be read, or the timer ending there lacks a line.
pub fn parse_timers(text: &[u8], mut each: impl FnMut(Listed)) -> Result<(), usize> {
    let mut current: Option<(i32, [bool; 3], Listed)> = None;
    let mut number = 0;
    for line in text.split(|&c| c == b'\n') {
        number += 1;
        if line.is_empty() {
            continue;
        }
        if let Some(id) = line.strip_prefix(b"ID: ") {
            finish(current.take(), number - 1, &mut each)?;
            let id = parse_decimal(id).ok_or(number)?;
            let blank = Listed {
                id,
                clock: 0,
                event: TimerEvent::default(),
            };
            current = Some((id, [false; 3], blank));
            continue;
        }
        let Some((_, seen, t)) = current.as_mut() else {
            return Err(number);
        };
        if let Some(rest) = line.strip_prefix(b"signal: ") {
            let (signo, value) = split_once(rest, b'/').ok_or(number)?;
            t.event.signo = parse_decimal(signo).ok_or(number)?;
            t.event.value = parse_hex(value).ok_or(number)?;
            seen[0] = true;
        } else if let Some(rest) = line.strip_prefix(b"notify: ") {
            let (how, whom) = split_once(rest, b'/').ok_or(number)?;
            let (kind, who) = split_once(whom, b'.').ok_or(number)?;
            let how = match how {
                b"signal" => SIGEV_SIGNAL,
                b"none" => SIGEV_NONE,
                b"thread" => SIGEV_THREAD,
                _ => return Err(number),
            };
            let who = parse_decimal(who).ok_or(number)?;
            (t.event.notify, t.event.tid) = match kind {
                b"pid" => (how, 0),
                b"tid" => (how | SIGEV_THREAD_ID, who),
                _ => return Err(number),
            };
            seen[1] = true;
        } else if let Some(rest) = line.strip_prefix(b"ClockID: ") {
            t.clock = parse_decimal(rest).ok_or(number)?;
            seen[2] = true;
        }
        // Lines a later kernel may add are skipped.
    }
    finish(current, number, &mut each)
}

fn finish(
    timer: Option<(i32, [bool; 3], Listed)>,
    line: usize,
    each: &mut impl FnMut(Listed),
) -> Result<(), usize> {
    match timer {
        None => Ok(()),
        Some((_, [true, true, true], t)) => {
            each(t);
            Ok(())
        }
        Some(_) => Err(line),
    }
}

fn split_once(s: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&c| c == at)?;
    Some((&s[..i], &s[i + 1..]))
}

fn parse_decimal(s: &[u8]) -> Option<i32> {
    let (negative, digits) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = i64::try_from(parse_dec(digits)?).ok()?;
    i32::try_from(if negative { -v } else { v }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this kernel (6.18) listed for four timers: SIGEV_THREAD_ID on a process CPU
    /// clock, NULL sigevent on CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, SIGEV_SIGNAL.
    const MEASURED: &[u8] =
        b"ID: 3\nsignal: 12/00000000fffffffb\nnotify: signal/tid.8368\nClockID: -66950\n\
ID: 2\nsignal: 14/0000000000000000\nnotify: signal/pid.8368\nClockID: -6\n\
ID: 1\nsignal: 10/0000000000001234\nnotify: none/pid.8368\nClockID: 0\n\
ID: 0\nsignal: 10/0000000000001234\nnotify: signal/pid.8368\nClockID: 1\n";

    fn listed(text: &[u8]) -> Result<Vec<Listed>, usize> {
        let mut all = Vec::new();
        parse_timers(text, |t| all.push(t)).map(|()| all)
    }

    fn event(value: u64, signo: i32, notify: i32, tid: i32) -> TimerEvent {
        TimerEvent {
            value,
            signo,
            notify,
            tid,
        }
    }

    #[test]
    fn parses_what_the_kernel_lists() {
        let all = listed(MEASURED).unwrap();
        assert_eq!(
            all,
            [
                Listed {
                    id: 3,
                    clock: -66950,
                    event: event(0xffff_fffb, 12, SIGEV_SIGNAL | SIGEV_THREAD_ID, 8368),
                },
                Listed {
                    id: 2,
                    clock: -6,
                    event: event(0, 14, SIGEV_SIGNAL, 0),
                },
                Listed {
                    id: 1,
                    clock: 0,
                    event: event(0x1234, 10, SIGEV_NONE, 0),
                },
                Listed {
                    id: 0,
                    clock: 1,
                    event: event(0x1234, 10, SIGEV_SIGNAL, 0),
                },
            ]
        );
        assert_eq!(listed(b""), Ok(Vec::new()));
        // A pointer value, all 64 bits.
        let one = b"ID: 7\nsignal: 34/00007fff86e452a8\nnotify: thread/pid.1\nClockID: 0\n";
        assert_eq!(
            listed(one).unwrap()[0].event,
            event(0x7fff_86e4_52a8, 34, SIGEV_THREAD, 0)
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_where() {
        // A timer without its clock line: the error names the line where it ended.
        let short = b"ID: 1\nsignal: 10/0\nnotify: none/pid.5\nID: 2\n";
        assert_eq!(listed(short), Err(3));
        assert_eq!(listed(b"signal: 10/0\n"), Err(1));
        assert_eq!(
            listed(b"ID: 1\nsignal: 10/(____ptrval____)\nnotify: none/pid.5\nClockID: 0\n"),
            Err(2)
        );
        assert_eq!(
            listed(b"ID: 1\nsignal: 10/0\nnotify: carrier-pigeon/pid.5\nClockID: 0\n"),
            Err(3)
        );
        assert_eq!(listed(b"ID: x\n"), Err(1));
        // Lines a later kernel may add are skipped.
        let more = b"ID: 1\nsignal: 10/0\nnotify: none/pid.5\nClockID: 0\nOverrun: 0\n";
        assert_eq!(listed(more).unwrap().len(), 1);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_decimal(b"-2147483648"), Some(i32::MIN));
        assert_eq!(parse_decimal(b"2147483648"), None);
        assert_eq!(parse_decimal(b"-"), None);
        assert_eq!(parse_hex(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_hex(b"1ffffffffffffffff"), None);
    }
}
