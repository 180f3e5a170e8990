//! LZ4 for checkpoint payloads: the frame format, and the decoder the restart stub runs.
//!
//! The writer compresses with the `lz4_flex` crate (no allocation with a table it keeps in
//! reserved memory). The decoder is written here because the stub is built without cargo
//! and cannot use a crate; it checks every length and offset, so a damaged stream is an
//! error, never a fault, and it is tested against `lz4_flex` as an oracle
//! (`tests/fuzz.rs`), as `ckpt verify` uses it too so that its verdict is the restart's.
//!
//! A compressed extent is a sequence of frames, one per chunk of at most [`FRAME_MAX`]
//! bytes of memory: `u32 stored_len`, `u32 raw_len` (little endian), then `stored_len`
//! bytes: an LZ4 block, or the raw bytes themselves when `stored_len == raw_len` (data that
//! does not compress). The block format is LZ4's: sequences of a token, literals, a 16-bit
//! offset and a match length; the last sequence has literals only.

use crate::le::u32_at as read_u32;

/// Most memory bytes one frame holds.
pub const FRAME_MAX: usize = 1 << 20;
/// Bytes of a frame header.
pub const FRAME_HEADER: usize = 8;
/// The shortest match LZ4 encodes (a match length of 0 in the stream).
const MIN_MATCH: usize = 4;

/// Largest size a block of `n` bytes can compress to.
pub const fn bound(n: usize) -> usize {
    n + n / 255 + 16
}

/// Why a stream could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damaged;

fn read_len(src: &[u8], s: &mut usize, mut len: usize) -> Result<usize, Damaged> {
    loop {
        let b = *src.get(*s).ok_or(Damaged)?;
        *s += 1;
        len = len.checked_add(b as usize).ok_or(Damaged)?;
        if b != 255 {
            return Ok(len);
        }
    }
}

/// Copies 16 bytes from `from` to `to` in `b` (the ranges must not overlap).
fn copy16(b: &mut [u8], from: usize, to: usize) {
    let mut w = [0u8; 16];
    w.copy_from_slice(&b[from..from + 16]);
    b[to..to + 16].copy_from_slice(&w);
}

/// Decompresses the block `src` into exactly `dst`; any inconsistency is `Damaged`.
///
/// Where there is room, short literal runs and matches are copied 16 bytes at a time,
/// past their end: what lands beyond is overwritten by the bytes that follow, and a block
/// is only good once it has filled `dst` exactly.
pub fn decompress(src: &[u8], dst: &mut [u8]) -> Result<(), Damaged> {
    let mut s: usize = 0;
    let mut d: usize = 0;
    loop {
        let token = *src.get(s).ok_or(Damaged)?;
        s += 1;
        let mut lit = (token >> 4) as usize;
        if lit < 15 && s + 16 <= src.len() && d + 16 <= dst.len() {
            dst[d..d + 16].copy_from_slice(&src[s..s + 16]);
        } else {
            if lit == 15 {
                lit = read_len(src, &mut s, lit)?;
            }
            let lit_end = s.checked_add(lit).ok_or(Damaged)?;
            let out_end = d.checked_add(lit).ok_or(Damaged)?;
            dst.get_mut(d..out_end)
                .ok_or(Damaged)?
                .copy_from_slice(src.get(s..lit_end).ok_or(Damaged)?);
        }
        s += lit;
        d += lit;
        if s >= src.len() {
            return if s == src.len() && d == dst.len() {
                Ok(())
            } else {
                Err(Damaged)
            };
        }
        let off = src.get(s..s + 2).ok_or(Damaged)?;
        let offset = u16::from_le_bytes([off[0], off[1]]) as usize;
        s += 2;
        let mut len = (token & 15) as usize;
        if len == 15 {
            len = read_len(src, &mut s, len)?;
        }
        len += MIN_MATCH;
        let end = d.checked_add(len).ok_or(Damaged)?;
        if offset == 0 || offset > d || end > dst.len() {
            return Err(Damaged);
        }
        let from = d - offset;
        if offset >= 16 && end + 16 <= dst.len() {
            let mut k = 0;
            while k < len {
                copy16(dst, from + k, d + k);
                k += 16;
            }
        } else {
            // The match may overlap what it produces (offset < len): it repeats the
            // `offset` bytes before it. Copying from there in steps that stay multiples
            // of `offset` doubles what can be copied each time (runs of one byte take
            // log(len) copies).
            let mut done = 0;
            while done < len {
                let step = (len - done).min(done + offset);
                dst.copy_within(from..from + step, d + done);
                done += step;
            }
        }
        d = end;
    }
}

/// Reads a frame header: (stored_len, raw_len).
pub fn frame_header(b: &[u8; FRAME_HEADER]) -> (usize, usize) {
    (read_u32(b, 0) as usize, read_u32(b, 4) as usize)
}

/// Writes a frame header.
pub fn write_frame_header(stored: usize, raw: usize) -> [u8; FRAME_HEADER] {
    let mut h = [0u8; FRAME_HEADER];
    h[..4].copy_from_slice(&(stored as u32).to_le_bytes());
    h[4..].copy_from_slice(&(raw as u32).to_le_bytes());
    h
}

/// Whether a frame header is plausible for an extent with `remaining` memory bytes left.
pub fn frame_ok(stored: usize, raw: usize, remaining: usize) -> bool {
    raw > 0 && raw <= FRAME_MAX && raw <= remaining && stored <= bound(raw) && stored > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the writer does: `lz4_flex` with a table of its own.
    fn compress(
        src: &[u8],
        dst: &mut [u8],
        table: &mut lz4_flex::block::CompressTable,
    ) -> Option<usize> {
        lz4_flex::block::compress_into_with_table(src, dst, table).ok()
    }

    const MAX_OUTPUT: fn(usize) -> usize = lz4_flex::block::get_maximum_output_size;

    // A hand encoder of sequences, to make streams with every offset and length.
    fn emit_len(dst: &mut [u8], mut out: usize, mut extra: usize) -> usize {
        while extra >= 255 {
            dst[out] = 255;
            out += 1;
            extra -= 255;
        }
        dst[out] = extra as u8;
        out + 1
    }

    /// Writes one sequence: literals, then the match (offset, length) if any.
    fn emit(dst: &mut [u8], mut out: usize, literals: &[u8], m: Option<(u16, usize)>) -> usize {
        let lit = literals.len();
        let match_code = m.map_or(0, |(_, len)| len - MIN_MATCH);
        let token = ((lit.min(15) as u8) << 4) | (match_code.min(15) as u8);
        dst[out] = token;
        out += 1;
        if lit >= 15 {
            out = emit_len(dst, out, lit - 15);
        }
        dst[out..out + lit].copy_from_slice(literals);
        out += lit;
        if let Some((offset, _)) = m {
            dst[out..out + 2].copy_from_slice(&offset.to_le_bytes());
            out += 2;
            if match_code >= 15 {
                out = emit_len(dst, out, match_code - 15);
            }
        }
        out
    }

    fn round_trip(data: &[u8]) -> usize {
        let mut table = lz4_flex::block::CompressTable::large();
        let mut packed = vec![0u8; MAX_OUTPUT(data.len())];
        let n = compress(data, &mut packed, &mut table).unwrap();
        let mut back = vec![0u8; data.len()];
        decompress(&packed[..n], &mut back).unwrap();
        assert_eq!(back, data);
        n
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn round_trips() {
        assert_eq!(round_trip(&[]), 1);
        round_trip(b"a");
        round_trip(b"hello hello hello hello hello hello");
        let zeros = vec![0u8; FRAME_MAX];
        assert!(round_trip(&zeros) < 5000);
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog. "
            .iter()
            .cycle()
            .take(300_000)
            .copied()
            .collect();
        assert!(round_trip(&text) < 30_000);
        let random = noise(100_000, 7);
        assert!(round_trip(&random) <= bound(random.len()));
        let mut mixed = noise(200_000, 9);
        mixed[50_000..120_000].fill(0);
        round_trip(&mixed);
    }

    /// Decodes a valid stream one byte at a time: the reference for `decompress`.
    fn plain_decode(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = 0;
        loop {
            let token = src[s];
            s += 1;
            let lit = read_len_plain(src, &mut s, (token >> 4) as usize);
            out.extend_from_slice(&src[s..s + lit]);
            s += lit;
            if s == src.len() {
                return out;
            }
            let offset = u16::from_le_bytes([src[s], src[s + 1]]) as usize;
            s += 2;
            let len = read_len_plain(src, &mut s, (token & 15) as usize) + MIN_MATCH;
            for _ in 0..len {
                out.push(out[out.len() - offset]);
            }
        }
    }

    fn read_len_plain(src: &[u8], s: &mut usize, len: usize) -> usize {
        if len < 15 {
            return len;
        }
        read_len(src, s, len).unwrap()
    }

    #[test]
    fn matches_of_every_offset_and_length_decode_like_the_reference() {
        // Streams made of sequences with every short offset (overlapping copies) and
        // lengths around the 16-byte steps, with literal runs of every length, ending
        // close to and far from the end of the output.
        let mut x = 0x1234_5678u64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..3000 {
            let mut stream = vec![0u8; 1 << 16];
            let mut out = 0;
            let mut produced = 0usize;
            for _ in 0..1 + next(12) {
                let lits: Vec<u8> = (0..next(40) + if produced == 0 { 1 } else { 0 })
                    .map(|_| next(256) as u8)
                    .collect();
                produced += lits.len();
                let offset = if round % 2 == 0 {
                    1 + next(40)
                } else {
                    1 + next(300)
                } as usize;
                let offset = offset.min(produced);
                let len = MIN_MATCH + next(70) as usize;
                out = emit(&mut stream, out, &lits, Some((offset as u16, len)));
                produced += len;
            }
            let tail: Vec<u8> = (0..next(30)).map(|_| next(256) as u8).collect();
            out = emit(&mut stream, out, &tail, None);
            let stream = &stream[..out];
            let want = plain_decode(stream);
            let mut got = vec![0u8; want.len()];
            decompress(stream, &mut got).unwrap();
            assert_eq!(got, want, "round {round}");
        }
    }

    #[test]
    fn inputs_of_every_small_length_round_trip() {
        for n in 0..400 {
            let mut data = noise(n, n as u64 + 1);
            for (i, b) in data.iter_mut().enumerate() {
                if i % 7 < 4 {
                    *b = (i % 5) as u8;
                }
            }
            round_trip(&data);
            round_trip(&vec![9u8; n]);
        }
    }

    #[test]
    fn damaged_streams_are_errors_not_faults() {
        let mut data = noise(20_000, 3);
        data[5_000..15_000].fill(7);
        let mut table = lz4_flex::block::CompressTable::large();
        let mut packed = vec![0u8; MAX_OUTPUT(data.len())];
        let n = compress(&data, &mut packed, &mut table).unwrap();
        let packed = &packed[..n];
        let mut out = vec![0u8; data.len()];
        for i in 0..n {
            for bit in [0u8, 3, 7] {
                let mut bad = packed.to_vec();
                bad[i] ^= 1 << bit;
                // Either an error, or some output of exactly the right length: never a panic.
                let _ = decompress(&bad, &mut out);
            }
        }
        for cut in [0, 1, n / 2, n - 1] {
            assert!(decompress(&packed[..cut], &mut out).is_err());
        }
        let mut short = vec![0u8; data.len() - 1];
        assert!(decompress(packed, &mut short).is_err());
    }
}
