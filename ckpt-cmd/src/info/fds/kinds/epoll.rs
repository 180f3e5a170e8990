//! TODO(issue 13): what a restart does with this family of descriptors, in words.

use ckpt_image::FdRecord;

pub fn restart(_f: &FdRecord, _aux: &[u8]) -> Option<String> {
    None
}
