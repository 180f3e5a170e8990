//! Configuration: the parameters of the original ckpt, read once from the environment when
//! the library loads, and changed later only through the API.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::sys;
use crate::write::Compression;

/// Longest checkpoint name, including the terminating NUL (`CKPT_MAXNAME` in ckpt.h).
pub const MAXNAME: usize = 1024;

#[derive(Clone, Copy)]
pub struct Config {
    /// NUL-terminated checkpoint file name.
    pub name: [u8; MAXNAME],
    /// Keep running after a checkpoint (`CKPT_CONTINUE`).
    pub continues: bool,
    /// Signal that triggers an asynchronous checkpoint; 0 = none (`CKPT_ASYNCSIG`).
    pub asyncsig: i32,
    /// Period of automatic checkpoints in milliseconds; 0 = none (`CKPT_MSPERIOD`).
    pub msperiod: u32,
    /// fsync the image before renaming it into place (`CKPT_FSYNC`, default on).
    pub fsync: bool,
    /// When the process continues, write the image from a forked child (`CKPT_FORK`,
    /// default on).
    pub fork: bool,
    /// Which payloads are stored as LZ4 frames (`CKPT_COMPRESS`: `code`, the default;
    /// `lz4` for all memory; `0` for none).
    pub compress: Compression,
}

impl Config {
    pub fn name_bytes(&self) -> &[u8] {
        let n = self.name.iter().position(|&c| c == 0).unwrap_or(MAXNAME);
        &self.name[..n]
    }

    pub fn set_name(&mut self, name: &[u8]) -> Result<(), String> {
        if name.is_empty() || name.len() >= MAXNAME || name.contains(&0) {
            return Err(format!(
                "name must be 1 to {} bytes without NUL",
                MAXNAME - 1
            ));
        }
        self.name = [0; MAXNAME];
        self.name[..name.len()].copy_from_slice(name);
        Ok(())
    }
}

/// The library's own signal: periodic checkpoints and `ckpt checkpoint` requests.
pub use ckpt_image::CONTROL_SIGNAL;

pub use ckpt_image::signals::{parse_signal, signal_name};

/// Whether `sig` may be the asynchronous checkpoint signal (the rule `ckpt -a` applies too).
pub fn check_asyncsig(sig: i32) -> Result<(), String> {
    ckpt_image::signals::check_asyncsig(sig).map_err(|e| {
        format!(
            "signal {sig} cannot be the checkpoint signal: {}",
            e.message()
        )
    })
}

/// The program's name for its default checkpoint name: the basename of `argv[0]`, or of
/// the executable when `trust_argv0` is false (in secure-execution mode `argv[0]` is
/// whatever the invoking user chose).
fn program_basename(trust_argv0: bool) -> Vec<u8> {
    if trust_argv0 {
        let cmdline = sys::read_whole_file(b"/proc/self/cmdline\0").unwrap_or_default();
        let argv0 = cmdline.split(|&c| c == 0).next().unwrap_or(&[]);
        let base = argv0.rsplit(|&c| c == b'/').next().unwrap_or(&[]);
        if !base.is_empty() {
            return base.to_vec();
        }
    }
    let mut exe = [0u8; 4096];
    match sys::readlink(b"/proc/self/exe\0", &mut exe) {
        Ok(n) if n > 0 => exe[..n]
            .rsplit(|&c| c == b'/')
            .next()
            .unwrap_or(&[])
            .to_vec(),
        _ => b"a.out".to_vec(),
    }
}

/// The configuration a program gets with nothing set.
fn defaults(secure: bool) -> Result<Config, String> {
    let mut cfg = Config {
        name: [0; MAXNAME],
        continues: false,
        asyncsig: libc::SIGTSTP,
        msperiod: 0,
        fsync: true,
        fork: true,
        compress: Compression::Code,
    };
    let mut name = program_basename(!secure);
    name.extend_from_slice(b".ckpt");
    cfg.set_name(&name)
        .map_err(|e| format!("default checkpoint name: {e}"))?;
    Ok(cfg)
}

/// Reads the configuration from the environment. An empty or malformed value is an error
/// naming the variable.
///
/// In secure-execution mode (`AT_SECURE`: a set-user-ID or set-group-ID program, or one
/// that gained capabilities at exec) the environment belongs to the invoking user, not to
/// the program's owner: it is not read at all, and the program gets the built-in defaults
/// (its checkpoint named after its executable, in its working directory, on SIGTSTP).
pub fn from_env() -> Result<Config, String> {
    if sys::secure_execution() {
        return defaults(true);
    }
    let mut cfg = defaults(false)?;
    let var = |k: &core::ffi::CStr| sys::getenv(k);
    let text = |k: &str, v: &[u8]| -> Result<String, String> {
        let s = core::str::from_utf8(v)
            .map_err(|_| format!("{k} is not valid UTF-8"))?
            .trim()
            .to_string();
        if s.is_empty() {
            return Err(format!("{k} is set but empty"));
        }
        Ok(s)
    };
    match var(c"CKPT_NAME") {
        Some([]) => return Err("CKPT_NAME is set but empty".into()),
        Some(v) => cfg.set_name(v).map_err(|e| format!("CKPT_NAME: {e}"))?,
        None => {}
    }
    if let Some(v) = var(c"CKPT_CONTINUE") {
        cfg.continues = text("CKPT_CONTINUE", v)? != "0";
    }
    if let Some(v) = var(c"CKPT_ASYNCSIG") {
        let s = text("CKPT_ASYNCSIG", v)?;
        cfg.asyncsig = parse_signal(&s).ok_or_else(|| {
            format!(
                "CKPT_ASYNCSIG: '{s}' is not a signal (a number 0-64 or a name such as SIGUSR1)"
            )
        })?;
        check_asyncsig(cfg.asyncsig).map_err(|e| format!("CKPT_ASYNCSIG: {e}"))?;
    }
    if let Some(v) = var(c"CKPT_MSPERIOD") {
        let s = text("CKPT_MSPERIOD", v)?;
        cfg.msperiod = s.parse::<u32>().map_err(|_| {
            format!(
                "CKPT_MSPERIOD: '{s}' is not a period in milliseconds (a whole number, 0 for none)"
            )
        })?;
    }
    if let Some(v) = var(c"CKPT_FSYNC") {
        cfg.fsync = text("CKPT_FSYNC", v)? != "0";
    }
    if let Some(v) = var(c"CKPT_FORK") {
        cfg.fork = text("CKPT_FORK", v)? != "0";
    }
    if let Some(v) = var(c"CKPT_COMPRESS") {
        cfg.compress = match text("CKPT_COMPRESS", v)?.to_ascii_lowercase().as_str() {
            "lz4" | "1" | "all" => Compression::All,
            "code" => Compression::Code,
            "0" | "none" | "off" => Compression::Off,
            other => {
                return Err(format!(
                    "CKPT_COMPRESS: '{other}' is not a compression \
                     (code, the default; lz4 for all memory; 0 for none)"
                ))
            }
        };
    }
    Ok(cfg)
}
