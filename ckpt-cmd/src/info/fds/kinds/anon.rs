//! eventfd, timerfd, signalfd, inotify.

use ckpt_image::fdkind::anon::{EventFd, Inotify, SignalFd, TimerFd, TFD_TIMER_ABSTIME};
use ckpt_image::{FdRecord, FD_KIND_EVENTFD, FD_KIND_INOTIFY, FD_KIND_SIGNALFD, FD_KIND_TIMERFD};

pub fn restart(f: &FdRecord, aux: &[u8]) -> Option<String> {
    match f.kind {
        FD_KIND_EVENTFD => {
            let e: EventFd = ckpt_image::read_record(aux)?;
            let mode = if e.semaphore != 0 { " (semaphore)" } else { "" };
            Some(format!("made again with count {}{mode}", e.count))
        }
        FD_KIND_TIMERFD => Some(timerfd(&ckpt_image::read_record(aux)?)),
        FD_KIND_SIGNALFD => {
            let s: SignalFd = ckpt_image::read_record(aux)?;
            Some(format!("made again for {}", signals(s.mask)))
        }
        FD_KIND_INOTIFY => {
            let set: Inotify = ckpt_image::read_record(aux)?;
            let mut said = format!(
                "made again with {} watch{} by path",
                set.watches,
                if set.watches == 1 { "" } else { "es" }
            );
            if set.unknown != 0 {
                said += &format!(
                    "; {} of them without a known path, which cannot be watched again",
                    set.unknown
                );
            }
            if set.queued != 0 {
                said += &format!("; {} bytes of unread events are lost", set.queued);
            }
            Some(said)
        }
        _ => None,
    }
}

fn clock_name(clockid: u32) -> String {
    match clockid as i32 {
        libc::CLOCK_REALTIME => "CLOCK_REALTIME".to_owned(),
        libc::CLOCK_MONOTONIC => "CLOCK_MONOTONIC".to_owned(),
        libc::CLOCK_BOOTTIME => "CLOCK_BOOTTIME".to_owned(),
        libc::CLOCK_REALTIME_ALARM => "CLOCK_REALTIME_ALARM".to_owned(),
        libc::CLOCK_BOOTTIME_ALARM => "CLOCK_BOOTTIME_ALARM".to_owned(),
        n => format!("clock {n}"),
    }
}

fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn timerfd(t: &TimerFd) -> String {
    let clock = clock_name(t.clockid);
    let mut said = if t.value_ns == 0 {
        format!("made again disarmed ({clock})")
    } else if t.absolute_ns != 0 {
        format!(
            "made again on {clock}, to fire at the time it was set for (absolute: {} after \
             the checkpoint)",
            seconds(t.value_ns)
        )
    } else {
        let abs = if t.settime_flags & TFD_TIMER_ABSTIME != 0 {
            " (set absolute; made relative, as this clock starts anew)"
        } else {
            ""
        };
        format!(
            "made again on {clock}, to fire {} after the restart{abs}",
            seconds(t.value_ns)
        )
    };
    if t.interval_ns != 0 {
        said += &format!(", then every {}", seconds(t.interval_ns));
    }
    if t.ticks != 0 {
        said += &format!("; {} expiration(s) not read yet", t.ticks);
    }
    said
}

/// The signals of a signalfd mask, by name.
fn signals(mask: u64) -> String {
    let names: Vec<String> = (1..=64)
        .filter(|n| mask & (1u64 << (n - 1)) != 0)
        .map(|n| match ckpt_image::signals::signal_name(n) {
            Some(name) => format!("SIG{name}"),
            None if n >= libc::SIGRTMIN() => format!("SIGRTMIN+{}", n - libc::SIGRTMIN()),
            None => format!("signal {n}"),
        })
        .collect();
    match names.len() {
        0 => "no signals".to_owned(),
        1 => format!("signal {}", names[0]),
        _ => format!("signals {}", names.join(", ")),
    }
}
