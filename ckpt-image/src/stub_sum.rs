//! The checksum of the restart stub: the bytes from the end of the ELF prefix through the
//! end of the stub's pages, which the entry check (`loader.S`) verifies in memory before it
//! jumps into the stub, and which `ckpt verify` checks in the file.
//!
//! Not CRC-32C like the rest of the image: the entry check has no library and cannot rely
//! on SSE4.2's `crc32` instruction (the x86-64 baseline lacks it), so it is a word hash that
//! a dozen instructions compute: `h = 0`, then for each little-endian 64-bit word `w`,
//! `h = rotl((h ^ w) * M, 32) * M` with `M` odd. Each step is a bijection in `h` (for a
//! fixed `w`) and in `w` (for a fixed `h`), so changing any single word always changes the
//! result; the rotation between the two multiplications keeps a flipped top bit (which a
//! multiplication alone carries through unchanged) from being cancelled by a flip in the
//! next word. Damage to more than one word goes unnoticed with a chance of about 2^-64.

/// The multiplier: the immediate `0x9e3779b1` of the entry check's `imul r64, r64, imm32`,
/// which the CPU sign-extends.
pub const MUL: u64 = 0x9e37_79b1_u32 as i32 as i64 as u64;

/// One step of the checksum.
pub const fn step(h: u64, word: u64) -> u64 {
    (h ^ word)
        .wrapping_mul(MUL)
        .rotate_left(32)
        .wrapping_mul(MUL)
}

/// The checksum of bytes fed in pieces of any length (the writer's stub sits between runs
/// of zeros). The checksummed range is whole words; a partial last word would count as if
/// padded with zeros.
#[derive(Clone, Copy, Debug, Default)]
pub struct StubSum {
    h: u64,
    pending: [u8; 8],
    filled: usize,
}

impl StubSum {
    pub const fn new() -> StubSum {
        StubSum {
            h: 0,
            pending: [0; 8],
            filled: 0,
        }
    }

    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut sum = StubSum::new();
        sum.update(bytes);
        sum.finish()
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        if self.filled > 0 {
            let n = bytes.len().min(8 - self.filled);
            self.pending[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled < 8 {
                return;
            }
            self.h = step(self.h, u64::from_le_bytes(self.pending));
            self.filled = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.h = step(self.h, u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// Feeds `n` zero bytes.
    pub fn update_zeros(&mut self, mut n: usize) {
        const ZEROS: [u8; 256] = [0; 256];
        while n > 0 {
            let k = n.min(ZEROS.len());
            self.update(&ZEROS[..k]);
            n -= k;
        }
    }

    pub fn finish(&self) -> u64 {
        if self.filled == 0 {
            return self.h;
        }
        let mut last = [0u8; 8];
        last[..self.filled].copy_from_slice(&self.pending[..self.filled]);
        step(self.h, u64::from_le_bytes(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // Computed independently (Python, with the formula above).
        assert_eq!(MUL, 0xffff_ffff_9e37_79b1);
        assert_eq!(StubSum::of(&[]), 0);
        assert_eq!(StubSum::of(&[0; 64]), 0);
        assert_eq!(StubSum::of(&1u64.to_le_bytes()), KNOWN_ONE);
        let bytes: Vec<u8> = (0u8..=255).collect();
        assert_eq!(StubSum::of(&bytes), KNOWN_COUNTING);
    }

    const KNOWN_ONE: u64 = 0x9e1e_4612_61c8_864f;
    const KNOWN_COUNTING: u64 = 0x119c_ad1a_b8cb_51f8;

    #[test]
    fn pieces_and_zeros_give_the_same_sum() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = StubSum::of(&bytes);
        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let mut sum = StubSum::new();
            sum.update(&bytes[..cut]);
            sum.update(&bytes[cut..]);
            assert_eq!(sum.finish(), whole, "cut at {cut}");
        }
        let mut zeros = StubSum::new();
        zeros.update(&[1, 2, 3]);
        zeros.update_zeros(1000);
        let mut padded = vec![1u8, 2, 3];
        padded.resize(1003, 0);
        assert_eq!(zeros.finish(), StubSum::of(&padded));
    }

    #[test]
    fn every_single_word_change_is_seen() {
        let bytes: Vec<u8> = (0..512u32).map(|i| (i * 13) as u8).collect();
        let good = StubSum::of(&bytes);
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                assert_ne!(StubSum::of(&bad), good, "bit {bit} of byte {at}");
            }
        }
        // Without the second multiplication, flipping the top bit of one word and bit 31
        // of the next would cancel out whatever the data.
        let mut pair = bytes.clone();
        pair[7] ^= 0x80;
        pair[8 + 3] ^= 0x80;
        assert_ne!(StubSum::of(&pair), good);
    }
}
