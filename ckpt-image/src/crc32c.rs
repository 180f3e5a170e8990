//! CRC-32C (Castagnoli), the checksum of headers, tables and payloads.
//!
//! Uses the SSE4.2 `crc32` instruction when the CPU has it (checked once with `cpuid`), and
//! a portable slicing-by-8 table otherwise; both give the same value.

const POLY: u32 = 0x82f6_3b78;

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

use core::sync::atomic::{AtomicU8, Ordering};

/// 0 = not checked yet, 1 = no SSE4.2, 2 = SSE4.2.
static HW: AtomicU8 = AtomicU8::new(0);

/// Whether the `crc32` instruction is used (checked once, then cached; call it early where
/// the first use must not write memory, as in a checkpoint).
pub fn have_sse42() -> bool {
    match HW.load(Ordering::Relaxed) {
        0 => {
            let ecx = core::arch::x86_64::__cpuid(1).ecx;
            let yes = ecx & (1 << 20) != 0;
            HW.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// Continues a CRC-32C over `data`; start with `crc = 0`.
pub fn crc32c(crc: u32, data: &[u8]) -> u32 {
    if have_sse42() {
        // SAFETY: the CPU supports SSE4.2 (checked above).
        unsafe { crc32c_sse42(crc, data) }
    } else {
        crc32c_portable(crc, data)
    }
}

/// The `crc32` instruction, eight bytes at a time.
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_sse42(crc: u32, data: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut c = !crc as u64;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let w = u64::from_le_bytes([ch[0], ch[1], ch[2], ch[3], ch[4], ch[5], ch[6], ch[7]]);
        c = _mm_crc32_u64(c, w);
    }
    let mut c = c as u32;
    for &b in chunks.remainder() {
        c = _mm_crc32_u8(c, b);
    }
    !c
}

/// The table-driven CRC-32C, for CPUs without SSE4.2.
pub fn crc32c_portable(crc: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = (c >> 8) ^ t[0][((c ^ b as u32) & 0xff) as usize];
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(0, b""), 0);
        assert_eq!(crc32c(0, b"123456789"), 0xe306_9283);
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let whole = crc32c(0, &data);
        let split = crc32c(crc32c(0, &data[..333]), &data[333..]);
        assert_eq!(whole, split);
        assert_eq!(whole, super::crc32c_portable(0, &data));
        assert_eq!(super::crc32c_portable(0, b"123456789"), 0xe306_9283);
    }
}

/// The payload checksum of an extent: CRC-32C run as four interleaved lanes (lane `k`
/// takes the `k`-th 8-byte word of every 32-byte block), the lanes' values then folded with
/// CRC-32C into one. Independent lanes let the CPU overlap the `crc32` instruction's
/// latency, about three times the speed of one chain; any damage to a word changes its
/// lane, so it is caught like a plain CRC-32C would catch it. Bytes may be fed in pieces of
/// any size.
#[derive(Clone, Copy, Debug)]
pub struct PayloadChecksum {
    lanes: [u32; 4],
    carry: [u8; 32],
    carried: usize,
}

impl Default for PayloadChecksum {
    fn default() -> Self {
        Self::new()
    }
}

impl PayloadChecksum {
    pub const fn new() -> Self {
        PayloadChecksum {
            lanes: [!0; 4],
            carry: [0; 32],
            carried: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.carried > 0 {
            let take = (32 - self.carried).min(data.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&data[..take]);
            self.carried += take;
            data = &data[take..];
            if self.carried < 32 {
                return;
            }
            let block = self.carry;
            self.blocks(&block);
            self.carried = 0;
        }
        let whole = data.len() & !31;
        self.blocks(&data[..whole]);
        let rest = &data[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    fn blocks(&mut self, data: &[u8]) {
        if have_sse42() {
            // SAFETY: the CPU supports SSE4.2 (checked).
            unsafe { lanes_sse42(&mut self.lanes, data) }
        } else {
            for block in data.chunks_exact(32) {
                for (k, lane) in self.lanes.iter_mut().enumerate() {
                    *lane = !crc32c_portable(!*lane, &block[8 * k..8 * k + 8]);
                }
            }
        }
    }

    pub fn finish(mut self) -> u32 {
        let tail = self.carry;
        for &b in &tail[..self.carried] {
            self.lanes[0] = !crc32c_portable(!self.lanes[0], &[b]);
        }
        let mut folded = [0u8; 16];
        for (k, lane) in self.lanes.iter().enumerate() {
            folded[4 * k..4 * k + 4].copy_from_slice(&lane.to_le_bytes());
        }
        crc32c(0, &folded)
    }

    /// Appends one whole page (`PAGE_BYTES` bytes) given by its [`page_lanes`] instead of
    /// its bytes: the same value as [`update`](Self::update) with the page. CRC is linear,
    /// so a lane after a page is its value before, moved on by the page's length of zeros
    /// ([`SHIFT_PAGE`]), plus the page's lanes from a zero start. Lets an incremental
    /// checkpoint checksum pages it copies file to file without reading them. Only at a
    /// 32-byte boundary (after whole pages).
    pub fn update_page_lanes(&mut self, page: [u32; 4]) {
        debug_assert_eq!(self.carried, 0);
        for (lane, p) in self.lanes.iter_mut().zip(page) {
            *lane = shift_page(*lane) ^ p;
        }
    }

    /// The checksum of `data` in one go.
    pub fn of(data: &[u8]) -> u32 {
        let mut c = Self::new();
        c.update(data);
        c.finish()
    }
}

/// Bytes of a page, the unit of [`page_lanes`].
pub const PAGE_BYTES: usize = 4096;

/// The four lanes of one page's payload checksum, each started from zero (a page is 128
/// whole blocks, so every lane sees exactly 1024 of its bytes).
pub fn page_lanes(page: &[u8]) -> [u32; 4] {
    debug_assert_eq!(page.len(), PAGE_BYTES);
    let mut c = PayloadChecksum {
        lanes: [0; 4],
        carry: [0; 32],
        carried: 0,
    };
    c.blocks(page);
    c.lanes
}

/// The CRC-32C register (reflected, no inversion) after `zeros` zero bytes from `c`.
const fn advance_zeros(mut c: u32, zeros: usize) -> u32 {
    let mut i = 0;
    while i < zeros * 8 {
        c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
        i += 1;
    }
    c
}

/// `shift_page` as four byte-indexed tables: the register moved on by the 1024 zero bytes
/// a lane sees in one page, per byte of the register (the map is linear: built from the
/// images of the 32 single bits).
const fn make_shift_page() -> [[u32; 256]; 4] {
    let mut basis = [0u32; 32];
    let mut b = 0;
    while b < 32 {
        basis[b] = advance_zeros(1 << b, PAGE_BYTES / 4);
        b += 1;
    }
    let mut t = [[0u32; 256]; 4];
    let mut k = 0;
    while k < 4 {
        let mut v = 0;
        while v < 256 {
            let mut x = 0;
            let mut bit = 0;
            while bit < 8 {
                if v & (1 << bit) != 0 {
                    x ^= basis[8 * k + bit];
                }
                bit += 1;
            }
            t[k][v] = x;
            v += 1;
        }
        k += 1;
    }
    t
}

static SHIFT_PAGE: [[u32; 256]; 4] = make_shift_page();

fn shift_page(c: u32) -> u32 {
    let t = &SHIFT_PAGE;
    t[0][(c & 0xff) as usize]
        ^ t[1][((c >> 8) & 0xff) as usize]
        ^ t[2][((c >> 16) & 0xff) as usize]
        ^ t[3][(c >> 24) as usize]
}

#[target_feature(enable = "sse4.2")]
unsafe fn lanes_sse42(lanes: &mut [u32; 4], data: &[u8]) {
    use core::arch::x86_64::_mm_crc32_u64;
    let [mut a, mut b, mut c, mut d] = lanes.map(u64::from);
    for block in data.chunks_exact(32) {
        let w = |k: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&block[8 * k..8 * k + 8]);
            u64::from_le_bytes(x)
        };
        a = _mm_crc32_u64(a, w(0));
        b = _mm_crc32_u64(b, w(1));
        c = _mm_crc32_u64(c, w(2));
        d = _mm_crc32_u64(d, w(3));
    }
    *lanes = [a as u32, b as u32, c as u32, d as u32];
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    #[test]
    fn pieces_and_paths_agree_and_damage_is_seen() {
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 31 + 7) as u8).collect();
        let whole = PayloadChecksum::of(&data);
        for split in [1usize, 7, 31, 32, 33, 4096, 50_000] {
            let mut c = PayloadChecksum::new();
            for piece in data.chunks(split) {
                c.update(piece);
            }
            assert_eq!(c.finish(), whole, "split {split}");
        }
        // The portable path gives the same value.
        let mut portable = PayloadChecksum::new();
        for block in data[..data.len() & !31].chunks_exact(32) {
            for (k, lane) in portable.lanes.iter_mut().enumerate() {
                *lane = !crc32c_portable(!*lane, &block[8 * k..8 * k + 8]);
            }
        }
        let rest = &data[data.len() & !31..];
        portable.carry[..rest.len()].copy_from_slice(rest);
        portable.carried = rest.len();
        assert_eq!(portable.finish(), whole);
        for i in [0usize, 8, 16, 24, 31, 99_999, 100_002] {
            let mut d = data.clone();
            d[i] ^= 1;
            assert_ne!(PayloadChecksum::of(&d), whole, "flip at {i}");
        }
    }

    #[test]
    fn pages_combine_by_their_lanes() {
        let data: Vec<u8> = (0..5 * PAGE_BYTES as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let whole = PayloadChecksum::of(&data);
        // All pages by their lanes, and mixed with bytes.
        let mut c = PayloadChecksum::new();
        for page in data.chunks(PAGE_BYTES) {
            c.update_page_lanes(page_lanes(page));
        }
        assert_eq!(c.finish(), whole);
        let mut c = PayloadChecksum::new();
        for (i, page) in data.chunks(PAGE_BYTES).enumerate() {
            if i % 2 == 0 {
                c.update(page);
            } else {
                c.update_page_lanes(page_lanes(page));
            }
        }
        assert_eq!(c.finish(), whole);
        // The tables agree with the bit-by-bit definition.
        for x in [1u32, 0x8000_0000, 0xdead_beef, !0] {
            assert_eq!(shift_page(x), advance_zeros(x, PAGE_BYTES / 4));
        }
        // A changed page's old lanes do not pass for the new page.
        let mut d = data.clone();
        d[3 * PAGE_BYTES + 100] ^= 4;
        let mut c = PayloadChecksum::new();
        for page in data.chunks(PAGE_BYTES) {
            c.update_page_lanes(page_lanes(page));
        }
        assert_ne!(c.finish(), PayloadChecksum::of(&d));
    }
}
