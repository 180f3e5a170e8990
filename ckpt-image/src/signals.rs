//! Signal names and the rule for the checkpoint signal, one definition for the `ckpt`
//! command (`-a`, `--signal`) and the library (`CKPT_ASYNCSIG`, `ckpt_config`): a spelling
//! one accepts, the other accepts, and a signal one refuses, the other refuses.

use crate::CONTROL_SIGNAL;

/// Signal names without `SIG` and their numbers on Linux x86-64; the first name of a number
/// is its own, the later ones aliases (IOT, CLD, POLL).
pub const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// The real-time signals a program may use: glibc keeps 32 and 33 for itself.
pub const SIGRTMIN: i32 = 34;
pub const SIGRTMAX: i32 = 64;

/// A signal given as a number (decimal digits, 0 to 64) or a name, in any case, with or
/// without `SIG`: `USR1`, `SIGTSTP`, `RTMIN`, `RTMIN+2`, `RTMAX-1`.
pub fn parse_signal(text: &str) -> Option<i32> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i32>()
            .ok()
            .filter(|n| (0..=SIGRTMAX).contains(n));
    }
    let mut upper = [0u8; 16];
    if text.len() > upper.len() {
        return None;
    }
    for (d, s) in upper.iter_mut().zip(text.bytes()) {
        *d = s.to_ascii_uppercase();
    }
    let upper = core::str::from_utf8(&upper[..text.len()]).ok()?;
    let name = upper.strip_prefix("SIG").unwrap_or(upper);
    if let Some(&(_, n)) = SIGNAL_NAMES.iter().find(|(known, _)| *known == name) {
        return Some(n);
    }
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse::<i32>().ok()
    };
    let n = match name {
        "RTMIN" => SIGRTMIN,
        "RTMAX" => SIGRTMAX,
        _ => match (name.strip_prefix("RTMIN+"), name.strip_prefix("RTMAX-")) {
            (Some(k), _) => SIGRTMIN.checked_add(offset(k)?)?,
            (_, Some(k)) => SIGRTMAX.checked_sub(offset(k)?)?,
            _ => return None,
        },
    };
    (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
}

/// The own name of `sig` without `SIG` (`TSTP`), for the classic signals.
pub fn signal_name(sig: i32) -> Option<&'static str> {
    SIGNAL_NAMES
        .iter()
        .find(|(_, n)| *n == sig)
        .map(|(name, _)| *name)
}

/// Why a signal cannot be the checkpoint signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsyncSigError {
    /// SIGKILL and SIGSTOP: no handler can be installed.
    CannotBeCaught,
    /// The library's control signal (periodic and requested checkpoints).
    Reserved,
    /// 32 and 33: glibc's own (thread cancellation and set*id).
    CLibrary,
    /// Not a signal number.
    NotASignal,
}

impl AsyncSigError {
    pub const fn message(self) -> &'static str {
        match self {
            AsyncSigError::CannotBeCaught => "it cannot be caught",
            AsyncSigError::Reserved => {
                "it is ckpt's control signal (periodic and requested checkpoints)"
            }
            AsyncSigError::CLibrary => "the C library keeps it for itself",
            AsyncSigError::NotASignal => "it is not a signal number (1-64, or 0 for none)",
        }
    }
}

/// Whether `sig` may be the checkpoint signal (0: none).
pub fn check_asyncsig(sig: i32) -> Result<(), AsyncSigError> {
    match sig {
        0 => Ok(()),
        9 | 19 => Err(AsyncSigError::CannotBeCaught),
        CONTROL_SIGNAL => Err(AsyncSigError::Reserved),
        32 | 33 => Err(AsyncSigError::CLibrary),
        1..=SIGRTMAX => Ok(()),
        _ => Err(AsyncSigError::NotASignal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        for (text, n) in [
            ("0", 0),
            ("10", 10),
            ("64", 64),
            ("SIGUSR1", 10),
            ("usr2", 12),
            ("SigHup", 1),
            ("tstp", 20),
            ("IOT", 6),
            ("SIGCLD", 17),
            ("poll", 29),
            ("KILL", 9),
            ("RTMIN", 34),
            ("RTMIN+2", 36),
            ("SIGRTMAX-1", 63),
            ("rtmax", 64),
        ] {
            assert_eq!(parse_signal(text), Some(n), "{text}");
        }
        for bad in [
            "",
            "65",
            "-1",
            "+5",
            "1x",
            "SIG",
            "SIGFOO",
            "USR1 ",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN+",
            "RTMIN+-1",
            "RTMAX+1",
            "９",
            "SIGSIGUSR1",
        ] {
            assert_eq!(parse_signal(bad), None, "{bad:?}");
        }
        assert_eq!(signal_name(6), Some("ABRT"));
        assert_eq!(signal_name(17), Some("CHLD"));
        assert_eq!(signal_name(40), None);
    }

    #[test]
    fn the_checkpoint_signal() {
        assert_eq!(check_asyncsig(0), Ok(()));
        assert_eq!(check_asyncsig(20), Ok(()));
        assert_eq!(check_asyncsig(36), Ok(()));
        assert_eq!(check_asyncsig(9), Err(AsyncSigError::CannotBeCaught));
        assert_eq!(check_asyncsig(19), Err(AsyncSigError::CannotBeCaught));
        assert_eq!(check_asyncsig(63), Err(AsyncSigError::Reserved));
        assert_eq!(check_asyncsig(32), Err(AsyncSigError::CLibrary));
        assert_eq!(check_asyncsig(65), Err(AsyncSigError::NotASignal));
        assert_eq!(check_asyncsig(-1), Err(AsyncSigError::NotASignal));
    }
}
