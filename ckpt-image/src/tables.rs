//! Typed views of the tables of a validated image, checked for consistency before anything
//! is restored.

use crate::{crc32c, lz4, records, ExtentRecord, FormatError, ImageHeader, RegionRecord};
use crate::{FdRecord, FD_ACTION_MAX, FD_ACTION_REOPEN, FD_ACTION_STDIO, FD_KIND_MAX};
use crate::{SigactionRecord, ThreadRecord, EXTENT_GUARD, EXTENT_LZ4, PAGE_SIZE, STUB_FILE_OFFSET};
use crate::{THREAD_FLAGS, THREAD_LEADER, THREAD_MAIN, THREAD_PTRACED};

/// Typed views of the tables of a validated image.
pub struct Tables<'a> {
    pub regions: &'a [RegionRecord],
    pub extents: &'a [ExtentRecord],
    pub threads: &'a [ThreadRecord],
    pub sigactions: &'a [SigactionRecord],
    pub auxv: &'a [u64],
    pub fds: &'a [FdRecord],
    pub names: &'a [u8],
}

impl<'a> Tables<'a> {
    /// Interprets `bytes` (the tables, 8-byte aligned, length checked by the caller against
    /// the header) as tables, after checking their checksum and their internal consistency:
    /// regions sorted and disjoint, page-aligned, each extent inside its region and inside
    /// the file at a page-aligned offset; thread records with known flags, exactly one the
    /// leader, the main thread (when recorded) first, the first not stopped with ptrace;
    /// descriptor records in increasing order, of known kinds and actions (reopened only
    /// when their kind can be, "standard" only for 0–2), each in a group led by the first of
    /// its members, their paths inside the names, nothing in the fields for later kinds.
    pub fn parse(header: &ImageHeader, bytes: &'a [u8]) -> Result<Tables<'a>, FormatError> {
        let layout = header.table_layout().ok_or(FormatError::BadTables)?;
        if bytes.len() != layout.total || !(bytes.as_ptr() as usize).is_multiple_of(8) {
            return Err(FormatError::BadTables);
        }
        if crc32c::crc32c(0, bytes) != header.tables_crc {
            return Err(FormatError::TablesChecksum);
        }
        // Each table starts at a multiple of 8 (all record sizes are), in an 8-byte aligned
        // buffer whose length matches the layout: every view is whole and aligned.
        let table = |from: usize, to: usize| &bytes[from..to];
        let bad = FormatError::BadTables;
        let tables = Tables {
            regions: records(table(layout.regions, layout.extents)).ok_or(bad)?,
            extents: records(table(layout.extents, layout.threads)).ok_or(bad)?,
            threads: records(table(layout.threads, layout.sigactions)).ok_or(bad)?,
            sigactions: records(table(layout.sigactions, layout.auxv)).ok_or(bad)?,
            auxv: records(table(layout.auxv, layout.fds)).ok_or(bad)?,
            fds: records(table(layout.fds, layout.names)).ok_or(bad)?,
            names: &bytes[layout.names..],
        };
        tables.check(header)?;
        Ok(tables)
    }

    fn check(&self, header: &ImageHeader) -> Result<(), FormatError> {
        let bad = Err(FormatError::BadTables);
        let mut prev_end = 0u64;
        let payload_start = STUB_FILE_OFFSET;
        for r in self.regions {
            let end = match r.start.checked_add(r.len) {
                Some(e) => e,
                None => return bad,
            };
            if r.start % PAGE_SIZE != 0 || r.len % PAGE_SIZE != 0 || r.len == 0 {
                return bad;
            }
            if r.start < prev_end || end > 0x0000_8000_0000_0000 {
                return bad;
            }
            prev_end = end;
            if (r.name_offset as usize).saturating_add(r.name_len as usize) > self.names.len() {
                return bad;
            }
            let first = r.first_extent as usize;
            let last = match first.checked_add(r.extent_count as usize) {
                Some(l) if l <= self.extents.len() => l,
                _ => return bad,
            };
            let mut stored = 0u64;
            let mut prev_ext_end = r.start;
            for e in &self.extents[first..last] {
                let e_end = match e.addr.checked_add(e.len) {
                    Some(x) => x,
                    None => return bad,
                };
                if e.flags & EXTENT_GUARD != 0 {
                    if e.flags != EXTENT_GUARD
                        || e.file_offset != 0
                        || e.crc != 0
                        || e.addr < prev_ext_end
                        || e_end > end
                        || e.addr % PAGE_SIZE != 0
                        || e.len % PAGE_SIZE != 0
                        || e.len == 0
                    {
                        return bad;
                    }
                    prev_ext_end = e_end;
                    continue;
                }
                let f_end = match e.file_offset.checked_add(e.len) {
                    Some(x) => x,
                    None => return bad,
                };
                let compressed = e.flags & EXTENT_LZ4 != 0;
                // A compressed extent's frames are checked as they are read.
                let in_file = if compressed {
                    e.file_offset
                        .checked_add(lz4::FRAME_HEADER as u64)
                        .is_some_and(|frame_end| frame_end <= header.file_len)
                } else {
                    e.file_offset % PAGE_SIZE == 0 && f_end <= header.file_len
                };
                if e.addr < prev_ext_end
                    || e_end > end
                    || e.addr % PAGE_SIZE != 0
                    || e.len % PAGE_SIZE != 0
                    || e.file_offset < payload_start
                    || !in_file
                {
                    return bad;
                }
                prev_ext_end = e_end;
                stored += e.len;
            }
            if stored != r.stored {
                return bad;
            }
        }
        // Threads: known flags, one leader, the main thread (if any) first, and a first one
        // that saved its own context.
        let mut leaders = 0;
        for (i, t) in self.threads.iter().enumerate() {
            if t.flags & !THREAD_FLAGS != 0
                || (t.flags & THREAD_MAIN != 0 && i != 0)
                || (t.flags & THREAD_PTRACED != 0 && (i == 0 || t.flags & THREAD_LEADER != 0))
            {
                return bad;
            }
            leaders += usize::from(t.flags & THREAD_LEADER != 0);
        }
        if leaders != 1 {
            return bad;
        }
        let mut next_fd = 0u64;
        for (i, f) in self.fds.iter().enumerate() {
            let group = f.group as usize;
            let reopens = crate::kind_reopens(f.kind);
            if (f.fd as u64) < next_fd
                || f.fd > i32::MAX as u32
                || f.kind == 0
                || f.kind > FD_KIND_MAX
                || f.action == 0
                || f.action > FD_ACTION_MAX
                || (f.action == FD_ACTION_REOPEN && !reopens)
                || (f.action == FD_ACTION_STDIO && f.fd > 2)
                || f.fd_flags & !crate::FD_FLAGS != 0
                || group > i
                || self.fds[group].group as usize != group
                || (f.name_offset as usize).saturating_add(f.name_len as usize) > self.names.len()
                || (f.aux_offset as usize).saturating_add(f.aux_len as usize) > self.names.len()
            {
                return bad;
            }
            next_fd = f.fd as u64 + 1;
        }
        // The stub's reservation must not overlap the saved layout.
        let stub_end = match header.stub_base.checked_add(header.stub_reserve) {
            Some(e) => e,
            None => return bad,
        };
        for r in self.regions {
            if r.start < stub_end && header.stub_base < r.start + r.len {
                return bad;
            }
        }
        Ok(())
    }

    pub fn name(&self, r: &RegionRecord) -> &'a [u8] {
        let s = r.name_offset as usize;
        &self.names[s..s + r.name_len as usize]
    }

    /// The path of descriptor record `f`.
    pub fn fd_name(&self, f: &FdRecord) -> &'a [u8] {
        f.name(self.names)
    }

    pub fn extents_of(&self, r: &RegionRecord) -> &'a [ExtentRecord] {
        let s = r.first_extent as usize;
        &self.extents[s..s + r.extent_count as usize]
    }

    /// The extents of `r` that hold stored bytes (not its guard pages).
    pub fn stored_extents_of(
        &self,
        r: &RegionRecord,
    ) -> impl Iterator<Item = &'a ExtentRecord> + use<'a> {
        self.extents_of(r)
            .iter()
            .filter(|e| e.flags & EXTENT_GUARD == 0)
    }

    /// The guard-page extents of `r`.
    pub fn guards_of(&self, r: &RegionRecord) -> impl Iterator<Item = &'a ExtentRecord> + use<'a> {
        self.extents_of(r)
            .iter()
            .filter(|e| e.flags & EXTENT_GUARD != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::header;
    use crate::*;

    #[test]
    fn tables_checks() {
        let mut h = header();
        let region = RegionRecord {
            start: 0x40_0000,
            len: 0x2000,
            prot: prot::READ,
            first_extent: 0,
            extent_count: 1,
            stored: 0x1000,
            ..Default::default()
        };
        let extent = ExtentRecord {
            addr: 0x40_1000,
            len: 0x1000,
            file_offset: 0x2000,
            ..Default::default()
        };
        let thread = ThreadRecord {
            flags: THREAD_LEADER,
            ..Default::default()
        };
        let mut buf: Vec<u64> = Vec::new();
        let push = |buf: &mut Vec<u64>, bytes: &[u8]| {
            for c in bytes.chunks(8) {
                buf.push(u64::from_le_bytes(c.try_into().unwrap()));
            }
        };
        // SAFETY: test-only views of repr(C) integer records.
        let as_bytes = |p: *const u8, n: usize| unsafe { core::slice::from_raw_parts(p, n) };
        push(
            &mut buf,
            as_bytes(&region as *const _ as *const u8, REGION_SIZE),
        );
        push(
            &mut buf,
            as_bytes(&extent as *const _ as *const u8, EXTENT_SIZE),
        );
        push(
            &mut buf,
            as_bytes(&thread as *const _ as *const u8, THREAD_SIZE),
        );
        h.region_count = 1;
        h.extent_count = 1;
        h.tables_len = (buf.len() * 8) as u64;
        // SAFETY: viewing a Vec<u64> as bytes.
        let bytes =
            unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 8) };
        h.tables_crc = crc32c::crc32c(0, bytes);
        h.header_crc = h.compute_crc();
        h.validate(0x10000).unwrap();
        let t = Tables::parse(&h, bytes).unwrap();
        assert_eq!(t.regions[0], region);
        assert_eq!(t.extents_of(&t.regions[0])[0], extent);

        let mut damaged = buf.clone();
        damaged[1] ^= 0x1000;
        // SAFETY: as above.
        let d = unsafe {
            core::slice::from_raw_parts(damaged.as_ptr() as *const u8, damaged.len() * 8)
        };
        assert_eq!(
            Tables::parse(&h, d).err(),
            Some(FormatError::TablesChecksum)
        );

        // An extent outside its region is refused even with a valid checksum.
        let mut bad = buf.clone();
        bad[REGION_SIZE / 8] = 0x50_0000;
        // SAFETY: as above.
        let b = unsafe { core::slice::from_raw_parts(bad.as_ptr() as *const u8, bad.len() * 8) };
        let mut h2 = h;
        h2.tables_crc = crc32c::crc32c(0, b);
        assert_eq!(Tables::parse(&h2, b).err(), Some(FormatError::BadTables));

        // A compressed extent's first frame header lies inside the file, even at an offset
        // so large that adding the header's length would wrap around. The extent is empty
        // (and so is the region's `stored`, its ninth word), so that its offset plus its
        // length does not wrap; its checksum is 0 and its flags EXTENT_LZ4.
        let mut wrap = buf.clone();
        let ext = REGION_SIZE / 8;
        wrap[8] = 0;
        wrap[ext + 1] = 0;
        wrap[ext + 2] = u64::MAX - 3;
        wrap[ext + 3] = (EXTENT_LZ4 as u64) << 32;
        let parse_wrap = |wrap: &[u64]| {
            // SAFETY: as above.
            let w =
                unsafe { core::slice::from_raw_parts(wrap.as_ptr() as *const u8, wrap.len() * 8) };
            let mut h3 = h;
            h3.tables_crc = crc32c::crc32c(0, w);
            Tables::parse(&h3, w).err()
        };
        assert_eq!(parse_wrap(&wrap), Some(FormatError::BadTables));
        // Inside the file, the same extent is accepted.
        wrap[ext + 2] = 0x2000;
        assert_eq!(parse_wrap(&wrap), None);
    }
}
