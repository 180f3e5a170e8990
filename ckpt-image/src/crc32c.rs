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
