//! `ckpt verify FILE`: everything `ckpt info` checks, the ELF prefix, the checksum of the
//! restart stub, and the CRC-32C of every payload extent, reading the file in large chunks.

use std::io;

use ckpt_image::{crc32c::PayloadChecksum, EXTENT_HAS_CRC, EXTENT_LZ4};

use crate::image::{Image, Refusal, EXIT_PAYLOAD_DAMAGED};

/// Bytes read per system call.
const WINDOW: usize = 8 << 20;

/// What a successful verification covered.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub regions: usize,
    pub extents: usize,
    pub bytes: u64,
}

/// A read-ahead window over the file: extents are mostly stored one after another, so one
/// large read serves many small extents.
struct Window<'a> {
    image: &'a Image,
    buf: Vec<u8>,
    start: u64,
    len: usize,
}

impl<'a> Window<'a> {
    fn new(image: &'a Image) -> Window<'a> {
        Window {
            image,
            buf: Vec::new(),
            start: 0,
            len: 0,
        }
    }

    /// Up to `want` bytes at `offset` (at least one), reading a new window when needed.
    fn get(&mut self, offset: u64, want: u64) -> io::Result<&[u8]> {
        let inside = offset >= self.start && offset < self.start + self.len as u64;
        if !inside {
            if self.buf.is_empty() {
                self.buf = vec![0u8; WINDOW];
            }
            let n = (self.image.size.saturating_sub(offset)).min(WINDOW as u64) as usize;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.image.read_at(&mut self.buf[..n], offset)?;
            self.start = offset;
            self.len = n;
        }
        let at = (offset - self.start) as usize;
        let n = (self.len - at).min(want.min(usize::MAX as u64) as usize);
        Ok(&self.buf[at..at + n])
    }
}

/// Verifies the ELF prefix, the restart stub and every extent's checksum of an opened
/// (header- and table-validated) image; stops at the first damaged extent, in address order.
pub fn verify(image: &Image) -> Result<Verified, Refusal> {
    image.check_prefix()?;
    image.check_stub()?;
    let tables = image.tables();
    let mut window = Window::new(image);
    let mut bytes = 0u64;
    for r in tables.regions {
        for e in tables.stored_extents_of(r) {
            if e.flags & EXTENT_HAS_CRC == 0 {
                continue;
            }
            let damaged = || Refusal {
                status: EXIT_PAYLOAD_DAMAGED,
                message: format!(
                    "checkpoint payload is damaged (checksum mismatch) at {:#x}",
                    e.addr
                ),
            };
            if e.flags & EXTENT_LZ4 != 0 {
                let memory = image
                    .decode_lz4(e)
                    .map_err(|error| Refusal::io("cannot read", &error))?
                    .ok_or_else(damaged)?;
                if PayloadChecksum::of(&memory) != e.crc {
                    return Err(damaged());
                }
                bytes += e.len;
                continue;
            }
            let mut sum = PayloadChecksum::new();
            let mut done = 0u64;
            while done < e.len {
                let chunk = window
                    .get(e.file_offset + done, e.len - done)
                    .map_err(|error| Refusal::io("cannot read", &error))?;
                sum.update(chunk);
                done += chunk.len() as u64;
            }
            if sum.finish() != e.crc {
                return Err(damaged());
            }
            bytes += e.len;
        }
    }
    Ok(Verified {
        regions: tables.regions.len(),
        extents: tables.extents.len(),
        bytes,
    })
}
