//! The kind-specific values of descriptor records (`FdRecord::aux`), one module per family
//! of kinds: what the checkpoint saves and the restart and `ckpt info` read. Each layout is
//! a `#[repr(C)]` record read and written with [`crate::record_layout`], so that a damaged
//! or short `aux` is refused, never misread.

pub mod anon;
pub mod deleted;
pub mod pipe;
pub mod socket;
pub mod tty;
