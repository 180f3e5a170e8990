//! epoll sets.

use ckpt_image::fdkind::anon::EpollSet;
use ckpt_image::FdRecord;

pub fn restart(_f: &FdRecord, aux: &[u8]) -> Option<String> {
    let set: EpollSet = ckpt_image::read_record(aux)?;
    let mut said = format!(
        "made again after the other descriptors, with {} watch{}",
        set.watches,
        if set.watches == 1 { "" } else { "es" }
    );
    if set.unheld != 0 {
        said += &format!(
            "; {} of them on a file no descriptor held, which cannot be watched again",
            set.unheld
        );
    }
    Some(said)
}
