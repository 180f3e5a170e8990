//! A fixed-size line builder for messages and paths made in a signal handler (no
//! allocation, no formatting machinery). Text past the capacity is cut off.

pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    pub const fn new() -> Self {
        Line {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        let k = bytes.len().min(N - self.len);
        self.buf[self.len..self.len + k].copy_from_slice(&bytes[..k]);
        self.len += k;
        self
    }

    pub fn push_decimal(&mut self, mut v: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut k = digits.len();
        loop {
            k -= 1;
            digits[k] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[k..])
    }

    /// `v` in decimal, with a minus sign when negative.
    pub fn push_signed(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.push(b"-");
        }
        self.push_decimal(v.unsigned_abs())
    }

    /// `0x` and `v` in lower-case hexadecimal.
    pub fn push_hex(&mut self, v: u64) -> &mut Self {
        let mut digits = [0u8; 16];
        let mut k = digits.len();
        let mut v = v;
        loop {
            k -= 1;
            let d = (v & 0xf) as u8;
            digits[k] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        self.push(b"0x").push(&digits[k..])
    }

    /// Whether everything pushed fitted.
    pub fn fits(&self) -> bool {
        self.len < N
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn builds_and_cuts() {
        let mut l = Line::<16>::new();
        l.push(b"pid ")
            .push_decimal(4711)
            .push(b"/")
            .push_decimal(0);
        assert_eq!(l.as_bytes(), b"pid 4711/0");
        let mut c = Line::<32>::new();
        c.push_signed(-66950).push(b" ").push_signed(7);
        assert_eq!(c.as_bytes(), b"-66950 7");
        let mut h = Line::<32>::new();
        h.push_hex(0x7f00_dead_0000).push(b" ").push_hex(0);
        assert_eq!(h.as_bytes(), b"0x7f00dead0000 0x0");
        assert!(l.fits());
        l.push(b"0123456789");
        assert_eq!(l.as_bytes().len(), 16);
        assert!(!l.fits());
    }
}
