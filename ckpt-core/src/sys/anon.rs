//! eventfd, timerfd, signalfd, epoll and inotify descriptors.

use core::ffi::c_int;

use super::*;

/// A new eventfd with `count` and `flags` (`EFD_*`). Signal-safe.
pub fn eventfd(count: u32, flags: c_int) -> SysResult<c_int> {
    // SAFETY: plain syscall; touches no memory.
    check(unsafe { libc::syscall(libc::SYS_eventfd2, count, flags) }).map(|fd| fd as c_int)
}
