//! What a restart does with a descriptor it makes again (`FD_ACTION_REBUILD`), in words,
//! from its kind-specific values: one function per family of kinds, each in its own module.

use ckpt_image::FdRecord;
use ckpt_image::{FD_KIND_DELETED, FD_KIND_EPOLL, FD_KIND_EVENTFD, FD_KIND_FIFO};
use ckpt_image::{FD_KIND_INOTIFY, FD_KIND_MEMFD, FD_KIND_PIPE, FD_KIND_SIGNALFD};
use ckpt_image::{FD_KIND_SOCKET, FD_KIND_TERMINAL, FD_KIND_TIMERFD};

mod anon;
mod deleted;
mod epoll;
mod pipe;
mod socket;
mod tty;

pub use tty::settings as terminal_settings;

/// What a restart does with `f`, whose kind-specific values are `aux`; `all` is the table
/// (the other ends of a pipe).
pub fn restart(f: &FdRecord, all: &[FdRecord], aux: &[u8]) -> String {
    let said = match f.kind {
        FD_KIND_PIPE | FD_KIND_FIFO => pipe::restart(f, all, aux),
        FD_KIND_SOCKET => socket::restart(f, aux),
        FD_KIND_EVENTFD | FD_KIND_TIMERFD | FD_KIND_SIGNALFD | FD_KIND_INOTIFY => {
            anon::restart(f, aux)
        }
        FD_KIND_EPOLL => epoll::restart(f, aux),
        FD_KIND_DELETED | FD_KIND_MEMFD => deleted::restart(f, aux),
        FD_KIND_TERMINAL => tty::restart(f, aux),
        _ => None,
    };
    said.unwrap_or_else(|| "made again".to_owned())
}
