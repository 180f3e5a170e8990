//! Reading a checkpoint file as the restart stub does: the ELF prefix, the image header and
//! the tables, with the same checks in the same order and the same exit statuses, so that
//! `ckpt info` and `ckpt verify` refuse exactly what a restart would refuse.
//!
//! So the decoders are the restart's own, from `ckpt_image` (header and tables, LZ4 frames,
//! CRC-32C, the stub checksum), not crates that might accept or refuse other bytes. Only
//! the ELF headers are read with `object` ([`crate::elf_reader`], which keeps the stub's
//! rules).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ckpt_image::{
    elf, lz4, stub_sum::StubSum, ExitStatus, ExtentRecord, FormatError, ImageHeader, Tables,
    EXTENT_LZ4, FORMAT_VERSION, HEADER_SPACE, PAGE_SIZE,
};

use crate::elf_reader;

/// The file cannot be read at all (missing, permission, I/O error).
pub const EXIT_CANNOT_READ: u8 = ExitStatus::CannotRead as u8;
/// A payload extent's checksum does not match its bytes.
pub const EXIT_PAYLOAD_DAMAGED: u8 = ExitStatus::PayloadDamaged as u8;

/// Why a file was refused: the exit status and the one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u8,
    pub message: String,
}

impl Refusal {
    pub fn format(error: FormatError) -> Refusal {
        Refusal {
            status: error.exit_code() as u8,
            message: error.message().to_owned(),
        }
    }

    pub fn io(what: &str, error: &io::Error) -> Refusal {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            return Refusal::format(FormatError::Truncated);
        }
        Refusal {
            status: EXIT_CANNOT_READ,
            message: format!("{what}: {}", io_message(error)),
        }
    }
}

/// An I/O error as a short phrase ("No such file or directory"), without std's
/// "(os error 2)" suffix.
pub fn io_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A checkpoint file whose header and tables passed every check.
pub struct Image {
    file: File,
    /// Length of the file.
    pub size: u64,
    /// Where the image header is (from the `PT_CKPT` program header).
    pub header_offset: u64,
    pub header: ImageHeader,
    /// The tables, 8-byte aligned.
    tables: Vec<u64>,
}

impl Image {
    /// Opens `path` and validates it: the ELF prefix, the header (magic, version,
    /// architecture, checksum, length) and the tables (checksum, consistency).
    pub fn open(path: &Path) -> Result<Image, Refusal> {
        let file = File::open(path).map_err(|e| Refusal::io("cannot open", &e))?;
        let metadata = file
            .metadata()
            .map_err(|e| Refusal::io("cannot stat", &e))?;
        if metadata.is_dir() {
            return Err(Refusal {
                status: EXIT_CANNOT_READ,
                message: "cannot read: Is a directory".to_owned(),
            });
        }
        let size = metadata.len();

        // The ELF prefix: where is the header?
        let mut first = vec![0u8; size.min(PAGE_SIZE) as usize];
        file.read_exact_at(&mut first, 0)
            .map_err(|e| Refusal::io("cannot read", &e))?;
        let header_offset = match elf_reader::ckpt_header_offset(&first) {
            Some(offset) => offset,
            None if looks_like_cut_elf(&first) => {
                return Err(Refusal::format(FormatError::Truncated))
            }
            None => return Err(Refusal::format(FormatError::BadMagic)),
        };
        if header_offset
            .checked_add(HEADER_SPACE)
            .is_none_or(|end| end > size)
        {
            return Err(Refusal::format(FormatError::Truncated));
        }

        // The header.
        let mut page = vec![0u8; HEADER_SPACE as usize];
        file.read_exact_at(&mut page, header_offset)
            .map_err(|e| Refusal::io("cannot read", &e))?;
        let header =
            ImageHeader::read_from(&page).ok_or(Refusal::format(FormatError::Truncated))?;
        header.validate(size).map_err(|error| match error {
            // Say which: an image of an older ckpt still restarts by itself (it carries its
            // own stub), but this ckpt cannot read it.
            FormatError::NewerVersion => Refusal {
                status: error.exit_code() as u8,
                message: format!(
                    "{} (version {}; this ckpt reads version {FORMAT_VERSION})",
                    error.message(),
                    header.version
                ),
            },
            _ => Refusal::format(error),
        })?;
        // As the stub: its scratch memory (tables, vDSO parking) must fit its reservation.
        if header.stub_scratch().is_none() {
            return Err(Refusal::format(FormatError::BadTables));
        }

        // The tables.
        let len = header.tables_len as usize;
        let mut tables = vec![0u64; len.div_ceil(8)];
        file.read_exact_at(
            &mut bytemuck::cast_slice_mut::<u64, u8>(&mut tables)[..len],
            header.tables_offset,
        )
        .map_err(|e| Refusal::io("cannot read", &e))?;
        Tables::parse(&header, &bytemuck::cast_slice(&tables)[..len]).map_err(Refusal::format)?;

        Ok(Image {
            file,
            size,
            header_offset,
            header,
            tables,
        })
    }

    /// The parsed tables (validated by `open`).
    pub fn tables(&self) -> Tables<'_> {
        let bytes = &bytemuck::cast_slice(&self.tables)[..self.header.tables_len as usize];
        Tables::parse(&self.header, bytes).expect("tables were validated when opened")
    }

    /// Checks that the ELF prefix (ELF header, entry check, program headers) is what the
    /// writer makes of this header. Nothing checks these bytes before they run, but a flipped
    /// bit in them is damage all the same: the kernel may refuse the file or misload it.
    pub fn check_prefix(&self) -> Result<(), Refusal> {
        let mut first = vec![0u8; elf::PREFIX_SIZE];
        self.read_at(&mut first, 0)
            .map_err(|e| Refusal::io("cannot read", &e))?;
        let damaged = || Refusal {
            status: FormatError::HeaderChecksum.exit_code() as u8,
            message: "the ELF header of the checkpoint is damaged (it does not match the image \
                      header)"
                .to_owned(),
        };
        // The stub's segment from the program headers; its entry and the image's length from
        // the entry check's patched fields, which are code, not ELF structures.
        let (Some((base, file_size, mem_size)), Some((loader, file_len))) = (
            elf_reader::stub_segment(&first),
            elf::read_placement(&first),
        ) else {
            return Err(damaged());
        };
        let placement = elf::StubPlacement {
            base,
            file_size,
            mem_size,
            ..loader
        };
        if placement.base != self.header.stub_base
            || placement.mem_size < self.header.stub_mem
            || file_len != self.header.file_len
            || self.header_offset != elf::checked_range(placement.file_size).end
        {
            return Err(damaged());
        }
        let mut expected = vec![0u8; elf::PREFIX_SIZE];
        elf::write_prefix(
            &mut expected,
            &placement,
            self.header_offset,
            std::mem::size_of::<ImageHeader>() as u64,
            file_len,
            self.header.stub_sum,
        );
        if expected != first {
            return Err(damaged());
        }
        Ok(())
    }

    /// Checks the bytes the entry check verifies before it runs the stub (the rest of the
    /// first page and the stub's pages, up to the image header) against the header's
    /// checksum of them, with the status a restart would exit with.
    pub fn check_stub(&self) -> Result<(), Refusal> {
        let range = elf::PREFIX_SIZE as u64..self.header_offset;
        let mut bytes = vec![0u8; range.end.saturating_sub(range.start) as usize];
        self.read_at(&mut bytes, range.start)
            .map_err(|e| Refusal::io("cannot read", &e))?;
        if StubSum::of(&bytes) != self.header.stub_sum {
            return Err(Refusal {
                status: FormatError::HeaderChecksum.exit_code() as u8,
                message: format!(
                    "{} (checksum mismatch in bytes {}-{})",
                    elf::STUB_DAMAGED,
                    range.start,
                    range.end.saturating_sub(1)
                ),
            });
        }
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// The stored bytes of memory `[addr, addr + len)`, when every byte of it is in some
    /// extent; `None` otherwise (or when the file cannot be read).
    pub fn read_memory(&self, addr: u64, len: u64) -> Option<Vec<u8>> {
        let tables = self.tables();
        let mut out = Vec::with_capacity(len.min(1 << 20) as usize);
        let end = addr.checked_add(len)?;
        let mut at = addr;
        while at < end {
            let e: &ExtentRecord = tables
                .extents
                .iter()
                .filter(|e| e.flags & ckpt_image::EXTENT_GUARD == 0)
                .find(|e| e.addr <= at && at < e.addr + e.len)?;
            let n = (e.addr + e.len).min(end) - at;
            if e.flags & EXTENT_LZ4 != 0 {
                let whole = self.decode_lz4(e).ok()??;
                let from = (at - e.addr) as usize;
                out.extend_from_slice(&whole[from..from + n as usize]);
            } else {
                let mut chunk = vec![0u8; n as usize];
                self.read_at(&mut chunk, e.file_offset + (at - e.addr))
                    .ok()?;
                out.extend_from_slice(&chunk);
            }
            at += n;
        }
        Some(out)
    }

    /// The bytes extent `e` takes in the file: its memory bytes, or for a compressed extent
    /// the sum of its frames (`None` when a frame header is damaged or cannot be read).
    pub fn bytes_in_file(&self, e: &ExtentRecord) -> Option<u64> {
        if e.flags & EXTENT_LZ4 == 0 {
            return Some(e.len);
        }
        let mut at = e.file_offset;
        let mut done = 0u64;
        while done < e.len {
            let mut header = [0u8; lz4::FRAME_HEADER];
            self.read_at(&mut header, at).ok()?;
            let (stored, raw) = lz4::frame_header(&header);
            if !lz4::frame_ok(stored, raw, (e.len - done) as usize) {
                return None;
            }
            at += (lz4::FRAME_HEADER + stored) as u64;
            done += raw as u64;
        }
        Some(at - e.file_offset)
    }

    /// The memory bytes of a compressed extent: `Ok(None)` when its frames are damaged.
    pub fn decode_lz4(&self, e: &ExtentRecord) -> io::Result<Option<Vec<u8>>> {
        let mut out = vec![0u8; e.len as usize];
        let mut at = e.file_offset;
        let mut done = 0usize;
        let mut packed = Vec::new();
        while done < out.len() {
            let mut header = [0u8; lz4::FRAME_HEADER];
            self.read_at(&mut header, at)?;
            let (stored, raw) = lz4::frame_header(&header);
            if !lz4::frame_ok(stored, raw, out.len() - done) {
                return Ok(None);
            }
            let body = at + lz4::FRAME_HEADER as u64;
            let dst = &mut out[done..done + raw];
            if stored == raw {
                self.read_at(dst, body)?;
            } else {
                packed.resize(stored, 0);
                self.read_at(&mut packed, body)?;
                if lz4::decompress(&packed, dst).is_err() {
                    return Ok(None);
                }
            }
            at = body + stored as u64;
            done += raw;
        }
        Ok(Some(out))
    }
}

/// Whether `first` (all of a file shorter than a page) is the start of an ELF file cut short:
/// the ELF magic, or a piece of it, and too short to hold the program headers.
fn looks_like_cut_elf(first: &[u8]) -> bool {
    const ELF_MAGIC: &[u8] = b"\x7fELF";
    if first.is_empty() || first.len() >= elf::PREFIX_SIZE {
        return false;
    }
    let n = first.len().min(ELF_MAGIC.len());
    first[..n] == ELF_MAGIC[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_elf() {
        assert!(!looks_like_cut_elf(b""));
        assert!(looks_like_cut_elf(b"\x7f"));
        assert!(looks_like_cut_elf(b"\x7fEL"));
        assert!(looks_like_cut_elf(b"\x7fELF\x02\x01"));
        assert!(!looks_like_cut_elf(b"#!/bin/sh\n"));
        assert!(!looks_like_cut_elf(&[0x7f, b'X']));
        assert!(!looks_like_cut_elf(&[0u8; 300]));
    }

    #[test]
    fn io_messages_are_short() {
        let error = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_message(&error), "No such file or directory");
        let refusal = Refusal::io("cannot open", &error);
        assert_eq!(refusal.status, EXIT_CANNOT_READ);
        assert_eq!(refusal.message, "cannot open: No such file or directory");
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(Refusal::io("cannot read", &eof).status, 69);
    }
}
