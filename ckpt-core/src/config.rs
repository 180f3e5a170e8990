//! The configuration the checkpoint path reads: the parameters of the original ckpt. libckpt
//! reads it from the environment once, when it loads, and changes it only through the API.

use crate::write::Compression;

/// Longest checkpoint name, including the terminating NUL (`CKPT_MAXNAME` in ckpt.h).
pub const MAXNAME: usize = 1024;

/// The library's own signal: periodic checkpoints and `ckpt checkpoint` requests.
pub use ckpt_image::CONTROL_SIGNAL;

pub use ckpt_image::signals::signal_name;

#[derive(Clone, Copy)]
pub struct Config {
    /// NUL-terminated checkpoint file name.
    pub name: [u8; MAXNAME],
    /// Keep running after a checkpoint (`CKPT_CONTINUE`).
    pub continues: bool,
    /// Signal that triggers an asynchronous checkpoint; 0 = none (`CKPT_ASYNCSIG`).
    pub asyncsig: i32,
    /// Period of automatic checkpoints in milliseconds; 0 = none (`CKPT_MSPERIOD`).
    pub msperiod: u32,
    /// fsync the image before renaming it into place (`CKPT_FSYNC`, default on).
    pub fsync: bool,
    /// When the process continues, write the image from a forked child (`CKPT_FORK`,
    /// default on).
    pub fork: bool,
    /// Which payloads are stored as LZ4 frames (`CKPT_COMPRESS`: `code`, the default;
    /// `lz4` for all memory; `0` for none).
    pub compress: Compression,
    /// What a checkpoint does with a descriptor it cannot save yet (`CKPT_FD_POLICY`).
    pub fd_policy: FdPolicy,
    /// A restart refuses to go on when a file the program had open was replaced or
    /// truncated, instead of warning (`CKPT_STRICT_FILES`).
    pub strict_files: bool,
    /// Most bytes a deleted file or memfd the program has open may hold for a checkpoint to
    /// save it (`CKPT_MAX_DELETED`, default [`MAX_DELETED`]).
    pub max_deleted: u64,
    /// Children of the program that inherit the library (forked, or started with it
    /// preloaded) take signal and periodic checkpoints of their own too (`CKPT_CHILDREN=1`).
    /// Off by default: until process trees are restored, a ^Z to the process group
    /// checkpoints the program alone, and its children get the signal's ordinary action.
    pub children: bool,
    /// A checkpoint that ends the program does not say where it went (`CKPT_QUIET=1`).
    pub quiet: bool,
    /// Checkpoints are written into the one before the previous (`NAME.prev`), only the
    /// pages changed since (`CKPT_INCREMENTAL`): `None`, the default, for periodic
    /// checkpoints only; `Some(true)` for every checkpoint that continues; `Some(false)`
    /// never.
    pub incremental: Option<bool>,
}

/// The default `CKPT_MAX_DELETED`: 1 MiB, as CRIU's ghost file limit.
pub const MAX_DELETED: u64 = 1 << 20;

/// What a checkpoint does with a descriptor it cannot save yet (a pipe, a socket, …).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FdPolicy {
    /// The checkpoint fails, naming it (the default).
    Refuse,
    /// It is recorded as closed; the restart leaves it closed and says so.
    Close,
}

impl Config {
    /// The built-in defaults, with no name yet.
    pub const fn defaults() -> Config {
        Config {
            name: [0; MAXNAME],
            continues: false,
            asyncsig: libc::SIGTSTP,
            msperiod: 0,
            fsync: true,
            fork: true,
            compress: Compression::Code,
            fd_policy: FdPolicy::Refuse,
            strict_files: false,
            max_deleted: MAX_DELETED,
            children: false,
            quiet: false,
            incremental: None,
        }
    }

    pub fn name_bytes(&self) -> &[u8] {
        let n = self.name.iter().position(|&c| c == 0).unwrap_or(MAXNAME);
        &self.name[..n]
    }

    /// Sets the checkpoint name; false (and nothing changed) when it is empty, holds a NUL
    /// or does not fit in `MAXNAME` bytes with its NUL.
    pub fn set_name(&mut self, name: &[u8]) -> bool {
        if name.is_empty() || name.len() >= MAXNAME || name.contains(&0) {
            return false;
        }
        self.name = [0; MAXNAME];
        self.name[..name.len()].copy_from_slice(name);
        true
    }
}
