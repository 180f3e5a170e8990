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

    pub fn push_decimal(&mut self, v: u64) -> &mut Self {
        self.push(ckpt_image::digits::decimal(v, &mut [0; 20]))
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
        self.push(b"0x")
            .push(ckpt_image::digits::hex(v, &mut [0; 16]))
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
