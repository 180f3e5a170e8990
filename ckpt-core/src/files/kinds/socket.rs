//! TODO(issue 13): saving and making again this family of descriptors.

use super::{Failure, Restoring, Saving};
use crate::files::FdError;

pub(super) fn save(_s: &mut Saving) -> Result<bool, FdError> {
    Ok(false)
}

pub(super) fn check(_r: &Restoring, _i: usize) -> Result<(), Failure> {
    Ok(())
}

pub(super) fn rebuild(_r: &mut Restoring, _i: usize) -> Result<(), Failure> {
    Err(Failure::new(b"cannot be made again yet", libc::ENOSYS))
}
