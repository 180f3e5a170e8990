//! One real checkpoint of the counter, parsed, to be damaged in copies: shared by the
//! damaged-file tests (`integrity.rs`, `damage_sweep.rs`). Each test file uses part of it.
#![allow(dead_code)]

use ckpt_image::{crc32c::crc32c, elf, ExtentRecord, ImageHeader, RegionRecord, Tables};
use ckpt_tests::*;

/// The undamaged checkpoint, and what the tests need to know of its layout.
pub struct Base {
    pub dir: TempDir,
    pub bytes: Vec<u8>,
    pub header_offset: usize,
    pub header: ImageHeader,
    pub regions: Vec<RegionRecord>,
    pub extents: Vec<ExtentRecord>,
    /// Offsets of the tables, relative to the file.
    pub layout: ckpt_image::TableLayout,
    /// The last number the counter printed before the checkpoint.
    pub last: u64,
}

impl Base {
    pub fn new(label: &str) -> Base {
        let dir = TempDir::new(label);
        let (checkpoint, _, last) = counter_checkpoint(&dir, &["5"]);
        let bytes = std::fs::read(&checkpoint).expect("read checkpoint");
        let header_offset = elf::locate_header(&bytes).expect("PT_CKPT") as usize;
        let header = ImageHeader::read_from(&bytes[header_offset..]).expect("header");
        header.validate(bytes.len() as u64).expect("valid header");
        // Tables::parse wants an 8-byte aligned buffer: copy the tables into one.
        let start = header.tables_offset as usize;
        let len = header.tables_len as usize;
        let words: Vec<u64> = bytes[start..start + len]
            .chunks(8)
            .map(|chunk| {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                u64::from_le_bytes(word)
            })
            .collect();
        let view = words_as_bytes(&words, len);
        let tables = Tables::parse(&header, view).expect("valid tables");
        let regions = tables.regions.to_vec();
        let extents = tables.extents.to_vec();
        let layout = header.table_layout().expect("layout");
        Base {
            dir,
            bytes,
            header_offset,
            header,
            regions,
            extents,
            layout,
            last,
        }
    }

    pub fn with(&self, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        edit(&mut bytes);
        bytes
    }

    pub fn flip(&self, at: usize, bit: u8) -> Vec<u8> {
        self.with(|b| b[at] ^= 1 << bit)
    }

    /// A header field's file offset.
    pub fn header_field(&self, offset_in_header: usize) -> usize {
        self.header_offset + offset_in_header
    }

    /// The file offset of a table (relative offset from the layout).
    pub fn table(&self, relative: usize) -> usize {
        self.header.tables_offset as usize + relative
    }

    /// The first extent of the region with `flag`, and its file offset.
    pub fn extent_of(&self, flag: u32) -> ExtentRecord {
        let region = self
            .regions
            .iter()
            .find(|r| r.flags & flag != 0 && r.extent_count > 0)
            .unwrap_or_else(|| panic!("no stored region with flag {flag:#x}"));
        let extent = self.extents[region.first_extent as usize];
        assert_ne!(
            extent.flags & ckpt_image::EXTENT_HAS_CRC,
            0,
            "extent has a CRC"
        );
        extent
    }

    /// A copy with the header rewritten by `edit` and its checksum recomputed.
    pub fn with_header(&self, edit: impl FnOnce(&mut ImageHeader)) -> Vec<u8> {
        let mut header = self.header;
        edit(&mut header);
        header.header_crc = header.compute_crc();
        let at = self.header_offset;
        self.with(|b| b[at..at + header.as_bytes().len()].copy_from_slice(header.as_bytes()))
    }

    /// A copy with the tables rewritten by `edit` and both checksums recomputed.
    pub fn with_tables(&self, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let start = self.header.tables_offset as usize;
        let len = self.header.tables_len as usize;
        let mut tables = self.bytes[start..start + len].to_vec();
        edit(&mut tables);
        let mut header = self.header;
        header.tables_crc = crc32c(0, &tables);
        header.header_crc = header.compute_crc();
        let at = self.header_offset;
        self.with(|b| {
            b[start..start + len].copy_from_slice(&tables);
            b[at..at + header.as_bytes().len()].copy_from_slice(header.as_bytes());
        })
    }

    /// The file offsets of the stub's words that hold absolute addresses inside the stub:
    /// the writer relocated them for this checkpoint's stub base, so their bytes depend on
    /// where the stub was placed.
    pub fn relocated_words(&self) -> Vec<usize> {
        let (base, end) = (
            self.header.stub_base,
            self.header.stub_base + self.header.stub_mem,
        );
        (ckpt_image::STUB_FILE_OFFSET as usize..self.header_offset)
            .step_by(8)
            .filter(|&at| {
                let word = u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap());
                (base..end).contains(&word)
            })
            .collect()
    }
}

pub fn words_as_bytes(words: &[u64], len: usize) -> &[u8] {
    // SAFETY: the bytes of initialised u64s; the view borrows `words` and stays within it.
    let all = unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 8) };
    &all[..len]
}
