//! Pipes and FIFOs: their saved values (the queued bytes are `FdRecord::data_*`, saved once
//! per pipe, on the first record of it in the table; the others of that pipe have none).

/// A pipe or FIFO end (`FD_KIND_PIPE`, `FD_KIND_FIFO`): the pipe's capacity.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pipe {
    /// Its capacity in bytes (`F_GETPIPE_SZ`).
    pub size: u32,
    pub reserved: u32,
}

crate::record_layout!(Pipe {
    size: u32,
    reserved: u32,
});
