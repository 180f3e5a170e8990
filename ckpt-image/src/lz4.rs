//! LZ4 block compression for checkpoint payloads (`CKPT_COMPRESS=lz4`), written for this
//! format: no allocation (the writer runs in a signal handler, the reader is the no_std
//! stub), and a decoder that checks every length and offset, so a damaged stream is an
//! error, never a fault.
//!
//! A compressed extent is a sequence of frames, one per chunk of at most [`FRAME_MAX`]
//! bytes of memory: `u32 stored_len`, `u32 raw_len` (little endian), then `stored_len`
//! bytes: an LZ4 block, or the raw bytes themselves when `stored_len == raw_len` (data that
//! does not compress). The block format is LZ4's: sequences of a token, literals, a 16-bit
//! offset and a match length; the last sequence has literals only.

/// Most memory bytes one frame holds.
pub const FRAME_MAX: usize = 1 << 20;
/// Bytes of a frame header.
pub const FRAME_HEADER: usize = 8;
/// Entries of the compressor's hash table.
pub const TABLE_SIZE: usize = 1 << 12;

const MIN_MATCH: usize = 4;
/// The compressor leaves the last bytes of a block as literals.
const TAIL: usize = 12;

/// Largest size a block of `n` bytes can compress to.
pub const fn bound(n: usize) -> usize {
    n + n / 255 + 16
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn hash(v: u32) -> usize {
    (v.wrapping_mul(2_654_435_761) >> 20) as usize & (TABLE_SIZE - 1)
}

/// Compresses `src` into `dst` (at least `bound(src.len())` bytes) using `table` as scratch;
/// returns the compressed length, or `None` when `dst` is too small.
pub fn compress(src: &[u8], dst: &mut [u8], table: &mut [u32; TABLE_SIZE]) -> Option<usize> {
    if dst.len() < bound(src.len()) {
        return None;
    }
    table.fill(0);
    let n = src.len();
    let mut out = 0;
    let mut anchor = 0;
    let mut i = 0;
    let limit = n.saturating_sub(TAIL);
    while i < limit {
        let seq = read_u32(src, i);
        let h = hash(seq);
        // Entries hold position + 1; 0 is empty.
        let cand = table[h] as usize;
        table[h] = (i + 1) as u32;
        if cand != 0 && i - (cand - 1) <= 0xffff && read_u32(src, cand - 1) == seq {
            let cand = cand - 1;
            let mut len = MIN_MATCH;
            while i + len < limit && src[cand + len] == src[i + len] {
                len += 1;
            }
            out = emit(dst, out, &src[anchor..i], Some(((i - cand) as u16, len)));
            i += len;
            anchor = i;
        } else {
            // Skip faster through data that does not match.
            i += 1 + ((i - anchor) >> 6);
        }
    }
    Some(emit(dst, out, &src[anchor..], None))
}

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

/// Decompresses the block `src` into exactly `dst`; any inconsistency is `Damaged`.
pub fn decompress(src: &[u8], dst: &mut [u8]) -> Result<(), Damaged> {
    let mut s: usize = 0;
    let mut d: usize = 0;
    loop {
        let token = *src.get(s).ok_or(Damaged)?;
        s += 1;
        let mut lit = (token >> 4) as usize;
        if lit == 15 {
            lit = read_len(src, &mut s, lit)?;
        }
        let lit_end = s.checked_add(lit).ok_or(Damaged)?;
        let out_end = d.checked_add(lit).ok_or(Damaged)?;
        dst.get_mut(d..out_end)
            .ok_or(Damaged)?
            .copy_from_slice(src.get(s..lit_end).ok_or(Damaged)?);
        s = lit_end;
        d = out_end;
        if s == src.len() {
            return if d == dst.len() { Ok(()) } else { Err(Damaged) };
        }
        let off = src.get(s..s + 2).ok_or(Damaged)?;
        let offset = u16::from_le_bytes([off[0], off[1]]) as usize;
        s += 2;
        let mut len = (token & 15) as usize;
        if len == 15 {
            len = read_len(src, &mut s, len)?;
        }
        len += MIN_MATCH;
        if offset == 0 || offset > d || d.checked_add(len).is_none_or(|e| e > dst.len()) {
            return Err(Damaged);
        }
        // The match may overlap what it produces (offset < len): it repeats the `offset`
        // bytes before it. Copying from there in steps that stay multiples of `offset`
        // doubles what can be copied each time (runs of one byte take log(len) copies).
        let from = d - offset;
        let mut done = 0;
        while done < len {
            let step = (len - done).min(done + offset);
            dst.copy_within(from..from + step, d + done);
            done += step;
        }
        d += len;
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

    fn round_trip(data: &[u8]) -> usize {
        let mut table = [0u32; TABLE_SIZE];
        let mut packed = vec![0u8; bound(data.len())];
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

    #[test]
    fn damaged_streams_are_errors_not_faults() {
        let mut data = noise(20_000, 3);
        data[5_000..15_000].fill(7);
        let mut table = [0u32; TABLE_SIZE];
        let mut packed = vec![0u8; bound(data.len())];
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
