//! Terminals: their saved settings and window size.

/// A terminal (`FD_KIND_TERMINAL`, or a standard descriptor that was one): the kernel's
/// `struct termios` as `TCGETS` gives it, and the window size (`TIOCGWINSZ`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Terminal {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    /// The line discipline.
    pub line: u8,
    /// The control characters (`VINTR` …), as many as the kernel's `NCCS` (19).
    pub cc: [u8; 19],
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
    /// [`TERMINAL_HAS_SIZE`] when the window size could be read.
    pub flags: u32,
}

crate::record_layout!(Terminal {
    iflag: u32,
    oflag: u32,
    cflag: u32,
    lflag: u32,
    line: u8,
    cc: [u8; 19],
    rows: u16,
    cols: u16,
    xpixel: u16,
    ypixel: u16,
    flags: u32,
});

/// `Terminal::flags`: the window size was read.
pub const TERMINAL_HAS_SIZE: u32 = 1;

/// `Terminal::lflag` bits `ckpt info` names.
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
