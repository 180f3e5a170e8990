//! Numbers written as text into a caller's buffer, for the code that may not allocate or
//! format (signal handlers, the restart stub). Their readers are in [`crate::procfs`].

/// `v` in decimal: the used tail of `buf`.
pub fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[k..];
        }
    }
}

/// `v` in lower-case hexadecimal without leading zeros (`0` for zero): the used tail of
/// `buf`.
pub fn hex(mut v: u64, buf: &mut [u8; 16]) -> &[u8] {
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = hex_digit((v & 0xf) as u8);
        v >>= 4;
        if v == 0 {
            return &buf[k..];
        }
    }
}

/// The lower-case hexadecimal digit for `d` (below 16).
pub const fn hex_digit(d: u8) -> u8 {
    if d < 10 {
        b'0' + d
    } else {
        b'a' + d - 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_std_formats_them() {
        let mut values = vec![0, 1, 9, 10, 15, 16, 255, 1 << 32, u64::MAX - 1, u64::MAX];
        values.extend((0..64).map(|s| 1u64 << s));
        values.extend((0..64).map(|s| (1u64 << s) - 1));
        values.extend((1..20).map(|e| 10u64.pow(e) - 1));
        for v in values {
            assert_eq!(decimal(v, &mut [0; 20]), v.to_string().as_bytes(), "{v}");
            assert_eq!(hex(v, &mut [0; 16]), format!("{v:x}").as_bytes(), "{v:#x}");
        }
    }
}
