//! Command-line parsing for `ckpt [-n NAME] [-c] [-a SIGNAL] [-z MS] PROG ARGS…` and for the
//! subcommands `ckpt info`, `ckpt verify` and `ckpt checkpoint`, which are recognised only as
//! the first argument (a program with such a name runs as `ckpt -- info`).
//!
//! lexopt splits the arguments getopt-style: short options may be clustered (`-cn NAME`) and
//! take their value either attached (`-nfoo`) or as the next argument (`-n foo`), long ones
//! as `--opt=value` or `--opt value`. Parsing stops at the first argument that is not an
//! option — that is PROG, and everything after it belongs to PROG, untouched — or after
//! `--`. This module keeps the grammar (which options exist, what each refuses and how it
//! says so) and the validation of values, so that a typo is reported before PROG starts
//! rather than ignored by the library inside it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;

use lexopt::{Arg, Parser};

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// `--help`: print the usage text.
    Help,
    /// `--version`: print the version.
    Version,
    /// Run a program with checkpointing enabled.
    Run(RunOptions),
    /// `ckpt info FILE [--json]`: describe a checkpoint file.
    Info { file: OsString, json: bool },
    /// `ckpt verify FILE`: check every checksum of a checkpoint file.
    Verify { file: OsString },
    /// `ckpt checkpoint PID …`: ask a running program to checkpoint itself.
    Checkpoint(CheckpointOptions),
    /// `ckpt attach PID …`: load libckpt into a running program.
    Attach(AttachOptions),
}

pub use crate::attach::AttachOptions;

/// How long `ckpt checkpoint` waits for the answer unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT_SECS: f64 = 60.0;

/// The options of `ckpt checkpoint PID [-n NAME] [--term | --kill | --signal N] [--timeout S]`.
#[derive(Debug, PartialEq)]
pub struct CheckpointOptions {
    pub pid: i32,
    /// `-n NAME`: the checkpoint name for this request; `None` means the target's own.
    pub name: Option<OsString>,
    /// The signal to send once the checkpoint is complete (`--term`, `--kill`, `--signal N`).
    pub end_signal: Option<i32>,
    /// Seconds to wait for the answer.
    pub timeout_secs: f64,
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
    /// `--resume[=fresh-if-damaged]`: run the checkpoint when it exists and verifies,
    /// else start PROG writing it.
    pub resume: Option<Resume>,
    /// PROG, as given (searched in `PATH` later if it has no slash).
    pub program: OsString,
    /// The arguments for PROG, not including PROG itself.
    pub program_args: Vec<OsString>,
}

/// What `--resume` does with a checkpoint file that exists but does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// `--resume`: refuse, with the verify status.
    RefuseDamaged,
    /// `--resume=fresh-if-damaged`: move it aside to NAME.damaged and start afresh.
    FreshIfDamaged,
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
    /// `--resume=VALUE` with a value other than `fresh-if-damaged`.
    BadResume(String),
    /// No PROG after the options.
    MissingProgram,
    /// A subcommand's command line that cannot be used: which subcommand, and why.
    Subcommand {
        command: &'static str,
        message: String,
    },
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
            ArgError::BadResume(value) => write!(
                f,
                "bad value for --resume: {value:?} (expected fresh-if-damaged, or no value)"
            ),
            ArgError::MissingProgram => write!(f, "no program given"),
            ArgError::Subcommand { command, message } => write!(f, "{command}: {message}"),
        }
    }
}

impl std::error::Error for ArgError {}

pub use ckpt_image::signals::parse_signal;

/// Checks a `--signal` value of `ckpt checkpoint`: a number 1..64 or a name (KILL and STOP
/// too: sent, not caught).
pub fn parse_end_signal(value: &str) -> Option<i32> {
    parse_signal(value).filter(|&n| n != 0)
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
    let mut parser = Parser::from_args(args);
    // `-n=x` names the file "=x", as getopt has it.
    parser.set_short_equals(false);
    let subcommand = parser.try_raw_args().and_then(|mut raw| {
        raw.next_if(|first| {
            matches!(
                first.to_str(),
                Some("info" | "verify" | "checkpoint" | "attach")
            )
        })
    });
    match subcommand.as_ref().and_then(|name| name.to_str()) {
        Some("info") => return parse_info(&mut parser),
        Some("verify") => return parse_verify(&mut parser),
        Some("checkpoint") => return parse_checkpoint(&mut parser),
        Some("attach") => return parse_attach(&mut parser),
        _ => {}
    }

    let mut options = RunOptions::default();
    while let Some(token) = next_token(&mut parser) {
        match token {
            // PROG: everything after it is PROG's, options or not.
            Token::Value(program) => {
                options.program = program;
                options.program_args = parser
                    .raw_args()
                    .expect("no option value is pending at a positional argument")
                    .collect();
                return Ok(Request::Run(options));
            }
            _ if token.is_flag("help") => return Ok(Request::Help),
            _ if token.is_flag("version") => return Ok(Request::Version),
            Token::Long { name, value } if name == "resume" => {
                options.resume = Some(match value {
                    None => Resume::RefuseDamaged,
                    Some(value) if value == "fresh-if-damaged" => Resume::FreshIfDamaged,
                    Some(value) => {
                        return Err(ArgError::BadResume(value.to_string_lossy().into_owned()))
                    }
                });
            }
            Token::Long { .. } => return Err(ArgError::UnknownOption(token.spelled(None))),
            Token::Short('c') => options.continue_after_checkpoint = true,
            Token::Short('h') => return Ok(Request::Help),
            Token::Short('V') => return Ok(Request::Version),
            Token::Short(option @ ('n' | 'a' | 'z')) => {
                let value = parser.value().map_err(|_| ArgError::MissingValue(option))?;
                set_value(&mut options, option, value)?;
            }
            Token::Short(option) => return Err(ArgError::UnknownOption(format!("-{option}"))),
        }
    }
    Err(ArgError::MissingProgram)
}

/// One argument as lexopt splits it, owned so that the parser can be asked for values.
enum Token {
    /// One letter of `-abc`; the letters after it are still in the parser.
    Short(char),
    /// `--name` or `--name=value`; the value is taken with the option, so that lexopt never
    /// finds one left over.
    Long {
        name: String,
        value: Option<OsString>,
    },
    Value(OsString),
}

impl Token {
    /// Whether this is the long option `--{long}`, without a value.
    fn is_flag(&self, long: &str) -> bool {
        matches!(self, Token::Long { name, value: None } if name == long)
    }

    /// The argument as the user wrote it, for "unknown option" messages; `rest` is what
    /// followed a short option's letter in the same argument.
    fn spelled(&self, rest: Option<OsString>) -> String {
        let tail = |prefix: &str, rest: &Option<OsString>| match rest {
            Some(rest) => format!("{prefix}{}", rest.to_string_lossy()),
            None => String::new(),
        };
        match self {
            Token::Short(letter) => format!("-{letter}{}", tail("", &rest)),
            Token::Long { name, value } => format!("--{name}{}", tail("=", value)),
            Token::Value(value) => value.to_string_lossy().into_owned(),
        }
    }
}

fn next_token(parser: &mut Parser) -> Option<Token> {
    // lexopt fails only on a value left attached to an option (`--opt=value`, `-o=value`):
    // a long option's value is taken here, and short_equals is off.
    Some(
        match parser.next().expect("no option value is left over")? {
            Arg::Short(letter) => Token::Short(letter),
            Arg::Long(name) => {
                let name = name.to_owned();
                Token::Long {
                    name,
                    value: parser.optional_value(),
                }
            }
            Arg::Value(value) => Token::Value(value),
        },
    )
}

/// The rest of a short option's argument must be empty for an option that stands alone
/// (`-h`); otherwise the whole argument is one unknown option, as `-hx` is.
fn alone(parser: &mut Parser, letter: char) -> Result<(), String> {
    match parser.optional_value() {
        None => Ok(()),
        rest => Err(Token::Short(letter).spelled(rest)),
    }
}

fn subcommand_error(command: &'static str, message: impl Into<String>) -> ArgError {
    ArgError::Subcommand {
        command,
        message: message.into(),
    }
}

/// `info FILE [--json]`; `--json` may come before or after FILE, `--` ends the options.
fn parse_info(parser: &mut Parser) -> Result<Request, ArgError> {
    Ok(match parse_one_file("info", parser, true)? {
        Some((file, json)) => Request::Info { file, json },
        None => Request::Help,
    })
}

/// `verify FILE`.
fn parse_verify(parser: &mut Parser) -> Result<Request, ArgError> {
    Ok(match parse_one_file("verify", parser, false)? {
        Some((file, _)) => Request::Verify { file },
        None => Request::Help,
    })
}

/// The arguments of a subcommand that takes one FILE (and `--json` where `json_ok`): the
/// file and whether `--json` was given, or `None` for `-h`/`--help`.
fn parse_one_file(
    sub: &'static str,
    parser: &mut Parser,
    json_ok: bool,
) -> Result<Option<(OsString, bool)>, ArgError> {
    let unknown = |spelled: String| subcommand_error(sub, format!("unknown option {spelled}"));
    let mut json = false;
    let mut file = None;
    while let Some(token) = next_token(parser) {
        match token {
            Token::Value(arg) if file.is_none() => file = Some(arg),
            Token::Value(_) => return Err(subcommand_error(sub, "more than one FILE given")),
            _ if json_ok && token.is_flag("json") => json = true,
            _ if token.is_flag("help") => return Ok(None),
            Token::Long { .. } => return Err(unknown(token.spelled(None))),
            Token::Short(letter) => {
                alone(parser, letter).map_err(unknown)?;
                if letter != 'h' {
                    return Err(unknown(token.spelled(None)));
                }
                return Ok(None);
            }
        }
    }
    let file = file.ok_or_else(|| subcommand_error(sub, "no checkpoint FILE given"))?;
    Ok(Some((file, json)))
}

/// Parses `--timeout` seconds: a non-negative decimal number, fractions allowed.
pub fn parse_timeout(value: &str) -> Option<f64> {
    let ok_chars = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
        && value != ".";
    if !ok_chars {
        return None;
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs <= 1e9)
}

/// Whether a checkpoint argument is a PID however it looks: a negative number such as `-5`
/// is refused as a bad PID, not as an unknown option.
fn looks_like_number(arg: &OsStr) -> bool {
    let bytes = arg.as_bytes();
    bytes.len() > 1 && bytes[0] == b'-' && bytes[1].is_ascii_digit()
}

/// `checkpoint PID [-n NAME] [--term | --kill | --signal N] [--timeout S]`, options before or
/// after PID; option values attached (`-nNAME`, `--signal=10`) or as the next argument.
/// `--` makes only the argument after it the PID; options may follow.
fn parse_checkpoint(parser: &mut Parser) -> Result<Request, ArgError> {
    const CMD: &str = "checkpoint";
    let error = |message: String| subcommand_error(CMD, message);
    let mut pid = None;
    let mut name = None;
    let mut end_signal: Option<(i32, String)> = None;
    let mut timeout_secs = None;
    let mut set_pid = |arg: &OsStr| -> Result<(), ArgError> {
        if pid.is_some() {
            return Err(subcommand_error(CMD, "more than one PID given"));
        }
        pid = Some(parse_pid(CMD, arg)?);
        Ok(())
    };
    let mut set_end = |signal: i32, how: String| -> Result<(), ArgError> {
        if let Some((_, earlier)) = &end_signal {
            return Err(error(format!(
                "{how} conflicts with {earlier}: give at most one of --term, --kill, --signal"
            )));
        }
        end_signal = Some((signal, how));
        Ok(())
    };
    loop {
        // What lexopt would read otherwise: `--` and negative numbers (see above). Between
        // arguments, the raw ones are always there to look at.
        if let Some(mut raw) = parser.try_raw_args() {
            if raw.next_if(|arg| arg == "--").is_some() {
                if let Some(arg) = raw.next() {
                    set_pid(&arg)?;
                }
                continue;
            }
            if let Some(arg) = raw.next_if(looks_like_number) {
                set_pid(&arg)?;
                continue;
            }
        }
        let Some(token) = next_token(parser) else {
            break;
        };
        let option = match &token {
            Token::Value(arg) => {
                set_pid(arg)?;
                continue;
            }
            Token::Short('n') => "-n".to_owned(),
            Token::Short(letter) => {
                let letter = *letter;
                alone(parser, letter)
                    .map_err(|spelled| error(format!("unknown option {spelled}")))?;
                if letter == 'h' {
                    return Ok(Request::Help);
                }
                return Err(error(format!("unknown option {}", token.spelled(None))));
            }
            Token::Long { name, .. } => format!("--{name}"),
        };
        let takes_value = matches!(option.as_str(), "-n" | "--name" | "--signal" | "--timeout");
        let attached = match token {
            Token::Long { value, .. } => value,
            _ => None,
        };
        if !takes_value && attached.is_some() {
            return Err(error(format!("option {option} takes no value")));
        }
        let mut value = || match attached.clone() {
            Some(value) => Ok(value),
            // The next argument, whatever it looks like.
            None => parser
                .value()
                .map_err(|_| error(format!("option {option} needs a value"))),
        };
        match option.as_str() {
            "--help" => return Ok(Request::Help),
            "-n" | "--name" => {
                let value = value()?;
                if value.is_empty() || value.as_bytes().contains(&b'\n') {
                    return Err(error(
                        "bad value for -n: expected a file name without a newline".to_owned(),
                    ));
                }
                name = Some(value);
            }
            "--term" => set_end(libc::SIGTERM, option.clone())?,
            "--kill" => set_end(libc::SIGKILL, option.clone())?,
            "--signal" => {
                let value = value()?;
                let text = value.to_string_lossy().into_owned();
                let signal = parse_end_signal(&text).ok_or_else(|| {
                    error(format!(
                        "bad value for --signal: {text:?} (expected a signal number \
                         1..64 or a name such as TERM or SIGUSR1)"
                    ))
                })?;
                set_end(signal, format!("--signal {text}"))?;
            }
            "--timeout" => {
                let value = value()?;
                let text = value.to_string_lossy().into_owned();
                timeout_secs = Some(parse_timeout(&text).ok_or_else(|| {
                    error(format!(
                        "bad value for --timeout: {text:?} (expected a number of seconds)"
                    ))
                })?);
            }
            _ => return Err(error(format!("unknown option {option}"))),
        }
    }
    let pid = pid.ok_or_else(|| subcommand_error(CMD, "no PID given"))?;
    Ok(Request::Checkpoint(CheckpointOptions {
        pid,
        name,
        end_signal: end_signal.map(|(signal, _)| signal),
        timeout_secs: timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
    }))
}

fn parse_pid(command: &'static str, arg: &OsStr) -> Result<i32, ArgError> {
    let text = arg.to_string_lossy();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(pid) = text.parse::<i32>() {
            if pid > 0 {
                return Ok(pid);
            }
        }
    }
    Err(subcommand_error(
        command,
        format!("bad PID {text:?} (expected a process id, a positive number)"),
    ))
}

/// `attach PID [-c] [-z MS] [-a SIGNAL] [-n NAME]`, options before or after PID, with the
/// values and checks of the same options of `ckpt PROG`.
fn parse_attach(parser: &mut Parser) -> Result<Request, ArgError> {
    const CMD: &str = "attach";
    let mut run = RunOptions::default();
    let mut pid = None;
    while let Some(token) = next_token(parser) {
        match token {
            Token::Value(arg) => {
                if pid.is_some() {
                    return Err(subcommand_error(CMD, "more than one PID given"));
                }
                pid = Some(parse_pid(CMD, &arg)?);
            }
            _ if token.is_flag("help") => return Ok(Request::Help),
            Token::Long { .. } => {
                return Err(subcommand_error(
                    CMD,
                    format!("unknown option {}", token.spelled(None)),
                ))
            }
            Token::Short('c') => run.continue_after_checkpoint = true,
            Token::Short('h') => return Ok(Request::Help),
            Token::Short(option @ ('n' | 'a' | 'z')) => {
                let value = parser.value().map_err(|_| ArgError::MissingValue(option))?;
                set_value(&mut run, option, value)?;
            }
            Token::Short(option) => {
                return Err(subcommand_error(CMD, format!("unknown option -{option}")))
            }
        }
    }
    let pid = pid.ok_or_else(|| subcommand_error(CMD, "no PID given"))?;
    Ok(Request::Attach(AttachOptions {
        pid,
        name: run.name,
        continue_after_checkpoint: run.continue_after_checkpoint,
        async_signal: run.async_signal,
        period_ms: run.period_ms,
    }))
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
                "expected a signal number 1..64, a name such as USR1, SIGUSR1 or RTMIN+2, \
                 or 0 to disable signal checkpoints";
            let text = value.to_str().ok_or_else(|| bad(EXPECTED))?;
            let sig = parse_signal(text).ok_or_else(|| bad(EXPECTED))?;
            // Refused here exactly as the library would refuse it, before PROG starts.
            ckpt_image::signals::check_asyncsig(sig).map_err(|e| bad(e.message()))?;
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

#[cfg(test)]
mod tests;
