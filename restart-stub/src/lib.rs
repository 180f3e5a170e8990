//! The logic of the restart stub, kept free of system calls so that it is tested on the host.
//!
//! The stub (`main.rs`, built by libckpt's build script as a freestanding executable) reads
//! `/proc/self/maps` of the freshly exec'd process, decides what to unmap and how to move the
//! kernel's vDSO family onto the saved addresses, and then restores the saved regions. The
//! parsing and planning live here, by step: `maps.rs` (the process's mappings and the vDSO
//! family), `vdso_image.rs` (the saved vDSO's functions and the jumps to the new one),
//! `properties.rs` (a region's flags and advice), `huge_fill.rs` (which memory is filled in
//! huge pages); this file has the restart's options and where they may be written.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

use ckpt_image::RegionRecord;

pub mod huge_fill;
mod maps;
pub mod properties;
mod vdso_image;

pub use maps::{parse_maps, parse_maps_line, Mapping, VdsoFamily};
pub use vdso_image::{jump_to, vdso_functions};

/// Formats `v` as `0x` and lowercase hex digits into `buf`, returning the used part.
pub fn format_hex(v: u64, buf: &mut [u8; 18]) -> &[u8] {
    buf[0] = b'0';
    buf[1] = b'x';
    let digits = if v == 0 {
        1
    } else {
        (64 - v.leading_zeros() as usize).div_ceil(4)
    };
    for i in 0..digits {
        let d = ((v >> (4 * (digits - 1 - i))) & 0xf) as u8;
        buf[2 + i] = ckpt_image::digits::hex_digit(d);
    }
    &buf[..2 + digits]
}

/// Looks up `name` in a `NAME=value` environment list given as C strings.
pub fn env_lookup<'a>(env: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> Option<&'a [u8]> {
    for e in env {
        if e.len() > name.len() && e.starts_with(name) && e[name.len()] == b'=' {
            return Some(&e[name.len() + 1..]);
        }
    }
    None
}

/// Whether a flag variable of the restart's environment is set: present, not empty and not
/// `0` (as `CKPT_LAZY=1`).
pub fn env_flag<'a>(env: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> bool {
    matches!(env_lookup(env, name), Some(v) if v != b"0" && !v.is_empty())
}

/// Whether the 8 bytes at `addr` (8-byte aligned) lie in one saved writable region: the
/// only place the stub writes the restart's options into the program's memory.
pub fn writable_word(regions: &[RegionRecord], addr: u64) -> bool {
    addr.is_multiple_of(8) && writable_range(regions, addr, 8)
}

/// Whether the `len` bytes at `addr` (not 0) lie in saved writable regions, one or several
/// adjacent ones: a library's static that begins in the file-backed page of its data
/// segment and ends in the anonymous `.bss` after it spans two.
pub fn writable_range(regions: &[RegionRecord], addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    let mut at = addr;
    while at < end {
        let holder = regions.iter().find(|r| {
            r.prot & ckpt_image::prot::WRITE != 0
                && r.start <= at
                && at < r.start.saturating_add(r.len)
        });
        match holder {
            Some(r) => at = r.start.saturating_add(r.len),
            None => return false,
        }
    }
    addr != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_options() {
        let env: [&[u8]; 4] = [b"A=1", b"CKPT_STRICT_FILES=0", b"CKPT_LAZY=1", b"CKPT_X="];
        assert!(env_flag(env.iter().copied(), b"CKPT_LAZY"));
        assert!(!env_flag(env.iter().copied(), b"CKPT_STRICT_FILES"));
        assert!(!env_flag(env.iter().copied(), b"CKPT_X"));
        assert!(!env_flag(env.iter().copied(), b"CKPT_NONE"));
        let rw = RegionRecord {
            start: 0x1000,
            len: 0x1000,
            prot: ckpt_image::prot::READ | ckpt_image::prot::WRITE,
            ..Default::default()
        };
        let ro = RegionRecord {
            start: 0x2000,
            len: 0x1000,
            prot: ckpt_image::prot::READ,
            ..Default::default()
        };
        let next = RegionRecord {
            start: 0x3000,
            len: 0x1000,
            ..rw
        };
        let after = RegionRecord {
            start: 0x4000,
            len: 0x2000,
            ..rw
        };
        let regions = [rw, ro, next, after];
        // Across adjacent writable regions, not across a read-only one or past the last.
        assert!(writable_range(&regions, 0x3ff0, 0x1000));
        assert!(writable_range(&regions, 0x3000, 0x3000));
        assert!(!writable_range(&regions, 0x3000, 0x3001));
        assert!(!writable_range(&regions, 0x1ff0, 0x20));
        assert!(writable_word(&regions, 0x1000));
        assert!(writable_word(&regions, 0x1ff8));
        assert!(!writable_word(&regions, 0x1ffc));
        assert!(!writable_word(&regions, 0x2000));
        assert!(!writable_word(&regions, 0));
        assert!(!writable_word(&regions, u64::MAX - 7));
    }

    #[test]
    fn hex_and_env() {
        let mut b = [0u8; 18];
        assert_eq!(format_hex(0, &mut b), b"0x0");
        assert_eq!(format_hex(0x7ffd1ca00000, &mut b), b"0x7ffd1ca00000");
        assert_eq!(format_hex(u64::MAX, &mut b), b"0xffffffffffffffff");
        use huge_fill::Mode;
        for (value, mode) in [
            (None, Mode::Auto),
            (Some(&b""[..]), Mode::Auto),
            (Some(b"0"), Mode::Off),
            (Some(b"1"), Mode::Always),
            (Some(b"yes"), Mode::Auto),
        ] {
            assert_eq!(Mode::from_env(value), mode, "{value:?}");
        }
        let env: [&[u8]; 3] = [b"A=1", b"CKPT_LAZY=1", b"CKPT_LAZ=2"];
        assert_eq!(
            env_lookup(env.iter().copied(), b"CKPT_LAZY"),
            Some(&b"1"[..])
        );
        assert_eq!(env_lookup(env.iter().copied(), b"B"), None);
    }
}
