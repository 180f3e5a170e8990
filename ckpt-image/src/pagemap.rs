//! The kernel's `PAGEMAP_SCAN` ioctl on `/proc/self/pagemap` (linux/fs.h): which pages of a
//! range are present, written, huge, … Shared by the checkpoint path (the pages to store,
//! the pages written since the last checkpoint) and the restart stub (whether a window came
//! in huge pages); the layouts are checked against the kernel's in restart-stub's
//! `tests/constants.rs`.

/// `PAGEMAP_SCAN`: `_IOWR('f', 16, struct pm_scan_arg)`.
pub const PAGEMAP_SCAN: u64 = 0xc060_6610;

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PmScanArg {
    pub size: u64,
    pub flags: u64,
    pub start: u64,
    pub end: u64,
    pub walk_end: u64,
    pub vec: u64,
    pub vec_len: u64,
    pub max_pages: u64,
    pub category_inverted: u64,
    pub category_mask: u64,
    pub category_anyof_mask: u64,
    pub return_mask: u64,
}

/// `struct page_region`: one run of pages the scan found, with their categories.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

crate::record_layout!(PageRegion {
    start: u64,
    end: u64,
    categories: u64,
});
