//! Deleted files and memfds: a restart makes a new unnamed file (`O_TMPFILE` in the old
//! directory, `$TMPDIR` or `/tmp`; `memfd_create` for a memfd) with the saved contents,
//! size, mode and seals, and opens the descriptor on it with its flags and offset; locks
//! the descriptor's file held are taken again.

use ckpt_image::fdkind::deleted::{locks, DeletedFile};
use ckpt_image::{FdRecord, FD_KIND_MEMFD};

use crate::info::format::human_size;

pub fn restart(f: &FdRecord, aux: &[u8]) -> Option<String> {
    let d: DeletedFile = ckpt_image::read_record(aux)?;
    let memfd = f.kind == FD_KIND_MEMFD;
    let mut said = if d.shared != 0 {
        "opened on the file made for the first descriptor of the same file".to_owned()
    } else if memfd {
        format!(
            "made again as a memfd with its {} of contents",
            human_size(d.size)
        )
    } else {
        format!(
            "made again as an unnamed file with its {} of contents",
            human_size(d.size)
        )
    };
    said += &format!(", at offset {}", f.pos);
    if d.seals != 0 {
        said += &format!(", seals {:#x}", d.seals);
    }
    let n = locks(f, aux).count();
    if n > 0 {
        said += &format!(", {n} lock(s) taken again");
    }
    Some(said)
}
