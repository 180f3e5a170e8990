//! Command-line parsing for `ckpt [-n NAME] [-c] [-a SIGNAL] [-z MS] PROG ARGS…`.
//!
//! Parsing is getopt-like: short options may be clustered (`-cn NAME`) and take their value
//! either attached (`-nfoo`) or as the next argument (`-n foo`). Parsing stops at the first
//! argument that is not an option — that is PROG, and everything after it belongs to PROG —
//! or after `--`. Values are validated here, so that a typo is reported before PROG starts
//! rather than ignored by the library inside it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `--help`: print the usage text.
    Help,
    /// `--version`: print the version.
    Version,
    /// Run a program with checkpointing enabled.
    Run(RunOptions),
}

/// The options for running PROG, each one becoming an environment variable that libckpt
/// reads when it is loaded. `None` / `false` means "leave the variable as inherited".
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// `-n NAME` → `CKPT_NAME`.
    pub name: Option<OsString>,
    /// `-c` → `CKPT_CONTINUE=1`.
    pub continue_after_checkpoint: bool,
    /// `-a SIGNAL` → `CKPT_ASYNCSIG`, passed through exactly as the user wrote it.
    pub async_signal: Option<String>,
    /// `-z MS` → `CKPT_MSPERIOD`.
    pub period_ms: Option<u64>,
    /// PROG, as given (searched in `PATH` later if it has no slash).
    pub program: OsString,
    /// The arguments for PROG, not including PROG itself.
    pub program_args: Vec<OsString>,
}

/// A command line that cannot be used; each maps to exit status 2 except `MissingProgram`.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    /// An option that needs a value came last.
    MissingValue(char),
    /// An option value that does not parse; `expected` says what would.
    BadValue {
        option: char,
        value: String,
        expected: &'static str,
    },
    /// An option we do not know.
    UnknownOption(String),
    /// No PROG after the options.
    MissingProgram,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::MissingValue(option) => write!(f, "option -{option} needs a value"),
            ArgError::BadValue {
                option,
                value,
                expected,
            } => write!(f, "bad value for -{option}: {value:?} ({expected})"),
            ArgError::UnknownOption(option) => write!(f, "unknown option {option}"),
            ArgError::MissingProgram => write!(f, "no program given"),
        }
    }
}

impl std::error::Error for ArgError {}

/// The signals that may trigger a checkpoint, by name without the `SIG` prefix. SIGKILL and
/// SIGSTOP are absent on purpose: no handler can be installed for them.
const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The highest signal number on Linux x86-64 (SIGRTMAX as the kernel sees it).
const MAX_SIGNAL: u32 = 64;

/// Checks a `-a` value: a number 0..=64 (0 disables asynchronous checkpoints), or a signal
/// name with or without `SIG`, in any case. Returns the signal number.
pub fn parse_signal(value: &str) -> Option<u32> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u32>().ok().filter(|&n| n <= MAX_SIGNAL);
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNAL_NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .and_then(|&(_, number)| u32::try_from(number).ok())
}

/// Checks a `-z` value: a non-negative decimal integer of milliseconds.
pub fn parse_period_ms(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Parses the arguments after the command name.
pub fn parse<I>(args: I) -> Result<Request, ArgError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter();
    let mut options = RunOptions::default();

    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if arg == "--" {
            let program = args.next().ok_or(ArgError::MissingProgram)?;
            return Ok(Request::Run(finish(options, program, args)));
        }
        if arg == "--help" {
            return Ok(Request::Help);
        }
        if arg == "--version" {
            return Ok(Request::Version);
        }
        if bytes.starts_with(b"--") {
            return Err(ArgError::UnknownOption(arg.to_string_lossy().into_owned()));
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            return Ok(Request::Run(finish(options, arg, args)));
        }

        // A cluster of short options, e.g. `-c`, `-cn NAME`, `-nNAME`, `-h`. Option letters are
        // ASCII, so the cluster is walked byte by byte and a value keeps its exact bytes.
        let mut at = 1;
        while at < bytes.len() {
            let option = bytes[at];
            at += 1;
            match option {
                b'c' => options.continue_after_checkpoint = true,
                b'h' => return Ok(Request::Help),
                b'V' => return Ok(Request::Version),
                b'n' | b'a' | b'z' => {
                    let option = char::from(option);
                    let value = if at < bytes.len() {
                        OsStr::from_bytes(&bytes[at..]).to_os_string()
                    } else {
                        args.next().ok_or(ArgError::MissingValue(option))?
                    };
                    set_value(&mut options, option, value)?;
                    break;
                }
                _ => {
                    let rest = OsStr::from_bytes(&bytes[at - 1..]).to_string_lossy();
                    let shown: String = rest.chars().take(1).collect();
                    return Err(ArgError::UnknownOption(format!("-{shown}")));
                }
            }
        }
    }
    Err(ArgError::MissingProgram)
}

fn set_value(options: &mut RunOptions, option: char, value: OsString) -> Result<(), ArgError> {
    let bad = |expected| ArgError::BadValue {
        option,
        value: value.to_string_lossy().into_owned(),
        expected,
    };
    match option {
        'n' => {
            if value.is_empty() {
                return Err(bad("expected a file name"));
            }
            options.name = Some(value);
        }
        'a' => {
            const EXPECTED: &str =
                "expected a signal number 0..=64 or a name such as USR1 or SIGUSR1; \
                                    KILL and STOP cannot be caught";
            let text = value.to_str().ok_or_else(|| bad(EXPECTED))?;
            parse_signal(text).ok_or_else(|| bad(EXPECTED))?;
            options.async_signal = Some(text.to_owned());
        }
        'z' => {
            const EXPECTED: &str = "expected a non-negative integer of milliseconds";
            let text = value.to_str().ok_or_else(|| bad(EXPECTED))?;
            options.period_ms = Some(parse_period_ms(text).ok_or_else(|| bad(EXPECTED))?);
        }
        _ => unreachable!("set_value called for option -{option}"),
    }
    Ok(())
}

fn finish(
    mut options: RunOptions,
    program: OsString,
    rest: impl Iterator<Item = OsString>,
) -> RunOptions {
    options.program = program;
    options.program_args = rest.collect();
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Request, ArgError> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> RunOptions {
        match parse_strs(args) {
            Ok(Request::Run(options)) => options,
            other => panic!("expected Run for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn program_alone() {
        let options = run(&["foo"]);
        assert_eq!(options.program, "foo");
        assert!(options.program_args.is_empty());
        assert_eq!(options.name, None);
        assert!(!options.continue_after_checkpoint);
        assert_eq!(options.async_signal, None);
        assert_eq!(options.period_ms, None);
    }

    #[test]
    fn all_options_separate_values() {
        let options = run(&[
            "-n", "x.ckpt", "-c", "-a", "USR1", "-z", "250", "foo", "1", "2",
        ]);
        assert_eq!(options.name.as_deref(), Some(OsStr::new("x.ckpt")));
        assert!(options.continue_after_checkpoint);
        assert_eq!(options.async_signal.as_deref(), Some("USR1"));
        assert_eq!(options.period_ms, Some(250));
        assert_eq!(options.program, "foo");
        assert_eq!(options.program_args, vec!["1", "2"]);
    }

    #[test]
    fn attached_values_and_clusters() {
        let options = run(&["-nname", "-ca10", "-z0", "prog"]);
        assert_eq!(options.name.as_deref(), Some(OsStr::new("name")));
        assert!(options.continue_after_checkpoint);
        assert_eq!(options.async_signal.as_deref(), Some("10"));
        assert_eq!(options.period_ms, Some(0));

        let options = run(&["-cn", "other", "prog"]);
        assert!(options.continue_after_checkpoint);
        assert_eq!(options.name.as_deref(), Some(OsStr::new("other")));
    }

    #[test]
    fn options_stop_at_program() {
        let options = run(&["prog", "-c", "-n", "x", "--help"]);
        assert!(!options.continue_after_checkpoint);
        assert_eq!(options.program, "prog");
        assert_eq!(options.program_args, vec!["-c", "-n", "x", "--help"]);
    }

    #[test]
    fn double_dash_ends_options() {
        let options = run(&["-c", "--", "-weird-prog", "-a"]);
        assert!(options.continue_after_checkpoint);
        assert_eq!(options.program, "-weird-prog");
        assert_eq!(options.program_args, vec!["-a"]);
    }

    #[test]
    fn lone_dash_is_a_program() {
        assert_eq!(run(&["-"]).program, "-");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_strs(&["--help"]), Ok(Request::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Request::Help));
        assert_eq!(parse_strs(&["-c", "--help", "prog"]), Ok(Request::Help));
        assert_eq!(parse_strs(&["--version"]), Ok(Request::Version));
    }

    #[test]
    fn missing_program() {
        assert_eq!(parse_strs(&[]), Err(ArgError::MissingProgram));
        assert_eq!(parse_strs(&["-c"]), Err(ArgError::MissingProgram));
        assert_eq!(parse_strs(&["-c", "--"]), Err(ArgError::MissingProgram));
    }

    #[test]
    fn missing_value() {
        assert_eq!(parse_strs(&["-n"]), Err(ArgError::MissingValue('n')));
        assert_eq!(parse_strs(&["-c", "-a"]), Err(ArgError::MissingValue('a')));
        assert_eq!(parse_strs(&["-z"]), Err(ArgError::MissingValue('z')));
    }

    #[test]
    fn unknown_options() {
        assert_eq!(
            parse_strs(&["-x", "prog"]),
            Err(ArgError::UnknownOption("-x".into()))
        );
        assert_eq!(
            parse_strs(&["-cq", "prog"]),
            Err(ArgError::UnknownOption("-q".into()))
        );
        assert_eq!(
            parse_strs(&["--name=x", "prog"]),
            Err(ArgError::UnknownOption("--name=x".into()))
        );
    }

    #[test]
    fn signal_values() {
        for good in &[
            "0", "1", "10", "20", "64", "TSTP", "SIGTSTP", "sigusr1", "usr2", "SigHup",
        ] {
            assert!(parse_signal(good).is_some(), "{good} should be accepted");
            assert_eq!(run(&["-a", good, "p"]).async_signal.as_deref(), Some(*good));
        }
        assert_eq!(parse_signal("SIGUSR1"), Some(libc::SIGUSR1 as u32));
        assert_eq!(parse_signal("tstp"), Some(libc::SIGTSTP as u32));
        for bad in [
            "", "65", "-1", "+5", "1x", "SIG", "SIGFOO", "KILL", "SIGSTOP", "USR1 ", "９",
        ] {
            assert_eq!(parse_signal(bad), None, "{bad:?} should be rejected");
            match parse_strs(&["-a", bad, "p"]) {
                Err(ArgError::BadValue {
                    option: 'a', value, ..
                }) => assert_eq!(value, bad),
                other => panic!("-a {bad:?}: expected BadValue, got {other:?}"),
            }
        }
    }

    #[test]
    fn period_values() {
        assert_eq!(run(&["-z", "0", "p"]).period_ms, Some(0));
        assert_eq!(run(&["-z", "1500", "p"]).period_ms, Some(1500));
        for bad in ["", "-5", "+5", "1.5", "ten", "99999999999999999999999"] {
            match parse_strs(&["-z", bad, "p"]) {
                Err(ArgError::BadValue { option: 'z', .. }) => {}
                other => panic!("-z {bad:?}: expected BadValue, got {other:?}"),
            }
        }
    }

    #[test]
    fn empty_name_rejected() {
        assert!(matches!(
            parse_strs(&["-n", "", "p"]),
            Err(ArgError::BadValue { option: 'n', .. })
        ));
    }

    #[test]
    fn bad_value_message_is_one_line() {
        let err = parse_strs(&["-a", "FOO", "p"]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("bad value for -a: \"FOO\""),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }

    #[test]
    fn non_utf8_name_survives() {
        let raw = OsStr::from_bytes(b"-nna\xffme").to_os_string();
        let parsed = parse(vec![raw, OsString::from("p")]).unwrap();
        let Request::Run(options) = parsed else {
            panic!("expected Run");
        };
        assert_eq!(options.name.unwrap().as_bytes(), b"na\xffme");
    }
}
