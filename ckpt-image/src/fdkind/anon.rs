//! eventfd, timerfd, signalfd and inotify: their saved values.

/// An eventfd (`FD_KIND_EVENTFD`): its counter and whether it counts as a semaphore.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFd {
    pub count: u64,
    /// 1 for `EFD_SEMAPHORE`.
    pub semaphore: u32,
    pub reserved: u32,
}

crate::record_layout!(EventFd {
    count: u64,
    semaphore: u32,
    reserved: u32,
});
