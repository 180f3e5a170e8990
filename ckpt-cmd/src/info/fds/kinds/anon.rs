//! eventfd, timerfd, signalfd, inotify.

use ckpt_image::fdkind::anon::EventFd;
use ckpt_image::{FdRecord, FD_KIND_EVENTFD};

pub fn restart(f: &FdRecord, aux: &[u8]) -> Option<String> {
    match f.kind {
        FD_KIND_EVENTFD => {
            let e: EventFd = ckpt_image::read_record(aux)?;
            let mode = if e.semaphore != 0 { " (semaphore)" } else { "" };
            Some(format!("made again with count {}{mode}", e.count))
        }
        _ => None,
    }
}
