//! Reading the configuration ([`ckpt_core::config::Config`]) from the environment, once,
//! when the library loads: the variables of the original ckpt and ckpt's own.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ckpt_core::sys;
use ckpt_core::write::Compression;

pub use ckpt_core::config::{Config, FdPolicy, CONTROL_SIGNAL, MAXNAME};

/// Sets the checkpoint name, or says why it cannot be.
pub fn set_name(cfg: &mut Config, name: &[u8]) -> Result<(), String> {
    if cfg.set_name(name) {
        Ok(())
    } else {
        Err(format!(
            "name must be 1 to {} bytes without NUL",
            MAXNAME - 1
        ))
    }
}

pub use ckpt_image::signals::parse_signal;

/// Whether `sig` may be the asynchronous checkpoint signal (the rule `ckpt -a` applies too).
pub fn check_asyncsig(sig: i32) -> Result<(), String> {
    ckpt_image::signals::check_asyncsig(sig).map_err(|e| {
        format!(
            "signal {sig} cannot be the checkpoint signal: {}",
            e.message()
        )
    })
}

/// The whole of a file of unknown size (`/proc` files), read at library load.
fn read_whole_file(path: &[u8]) -> sys::SysResult<Vec<u8>> {
    let fd = sys::open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let r = loop {
        match sys::read_full(fd, &mut chunk) {
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    break Ok(out);
                }
            }
            Err(e) => break Err(e),
        }
    };
    sys::close(fd);
    r
}

/// The program's name for its default checkpoint name: the basename of `argv[0]`, or of
/// the executable when `trust_argv0` is false (in secure-execution mode `argv[0]` is
/// whatever the invoking user chose).
fn program_basename(trust_argv0: bool) -> Vec<u8> {
    if trust_argv0 {
        let cmdline = read_whole_file(b"/proc/self/cmdline\0").unwrap_or_default();
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
    let mut cfg = Config::defaults();
    let mut name = program_basename(!secure);
    name.extend_from_slice(b".ckpt");
    set_name(&mut cfg, &name).map_err(|e| format!("default checkpoint name: {e}"))?;
    Ok(cfg)
}

/// Whether this process is the one `ckpt PROG` started (`CKPT_PID` is its pid: `ckpt`
/// execs PROG in its own process) — `Some(false)` for a descendant that inherited the
/// variable, `None` when there is no `CKPT_PID` (not run by `ckpt`, e.g. with
/// `LD_PRELOAD=libckpt.so` alone).
pub fn started_by_ckpt() -> Option<bool> {
    if sys::secure_execution() {
        return None;
    }
    let pid = core::str::from_utf8(sys::getenv(c"CKPT_PID")?).ok()?;
    let pid: u32 = pid.trim().parse().ok()?;
    Some(pid == sys::getpid())
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
    // The process `ckpt PROG` started (its pid in CKPT_PID) is named after PROG as the user
    // gave it (CKPT_PROGRAM, its basename), not after its executable: `ckpt ./job.py`
    // writes job.py.ckpt, not python3.ckpt. Its descendants that load the library too are
    // named after their own argv[0], as a program under `LD_PRELOAD=libckpt.so` is.
    if started_by_ckpt() == Some(true) {
        if let Some(program) = var(c"CKPT_PROGRAM").filter(|p| !p.is_empty()) {
            let mut name = program.to_vec();
            name.extend_from_slice(b".ckpt");
            set_name(&mut cfg, &name).map_err(|e| format!("CKPT_PROGRAM: {e}"))?;
        }
    }
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
        Some(v) => set_name(&mut cfg, v).map_err(|e| format!("CKPT_NAME: {e}"))?,
        None => {}
    }
    if let Some(v) = var(c"CKPT_CONTINUE") {
        cfg.continues = text("CKPT_CONTINUE", v)? != "0";
    }
    if let Some(v) = var(c"CKPT_ASYNCSIG") {
        let s = text("CKPT_ASYNCSIG", v)?;
        cfg.asyncsig = parse_signal(&s).ok_or_else(|| {
            format!(
                "CKPT_ASYNCSIG: '{s}' is not a signal (a number 1..64, a name such as SIGUSR1, or 0 for none)"
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
    if let Some(v) = var(c"CKPT_FD_POLICY") {
        cfg.fd_policy = match text("CKPT_FD_POLICY", v)?.to_ascii_lowercase().as_str() {
            "refuse" | "fail" => FdPolicy::Refuse,
            "close" => FdPolicy::Close,
            other => {
                return Err(format!(
                    "CKPT_FD_POLICY: '{other}' is not a policy (refuse, the default: a \
                     descriptor a checkpoint cannot save fails it; close: it is left closed)"
                ))
            }
        };
    }
    if let Some(v) = var(c"CKPT_STRICT_FILES") {
        cfg.strict_files = text("CKPT_STRICT_FILES", v)? != "0";
    }
    if let Some(v) = var(c"CKPT_MAX_DELETED") {
        let s = text("CKPT_MAX_DELETED", v)?;
        cfg.max_deleted = parse_size(&s).ok_or_else(|| {
            format!(
                "CKPT_MAX_DELETED: '{s}' is not a size (bytes, or with K, M or G: 4M; \
                 default 1M)"
            )
        })?;
    }
    if let Some(v) = var(c"CKPT_QUIET") {
        cfg.quiet = text("CKPT_QUIET", v)? != "0";
    }
    if let Some(v) = var(c"CKPT_INCREMENTAL") {
        cfg.incremental = Some(text("CKPT_INCREMENTAL", v)? != "0");
    }
    if let Some(v) = var(c"CKPT_CHILDREN") {
        cfg.children = text("CKPT_CHILDREN", v)? != "0";
    }
    // A descendant of the process `ckpt` started, which inherited the library with the
    // environment: no signal or periodic checkpoints of its own unless CKPT_CHILDREN=1.
    // (ckpt_config and `ckpt checkpoint PID` still work in it.)
    if !cfg.children && started_by_ckpt() == Some(false) {
        cfg.asyncsig = 0;
        cfg.msperiod = 0;
    }
    Ok(cfg)
}

/// A size in bytes: a whole number, optionally followed by `K`, `M` or `G` (powers of
/// 1024; `KiB`, `MB` and the like are read alike).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    /// The names this file reads (`c"CKPT_…"`) are exactly ckpt-image's list, which `ckpt
    /// attach` clears while it loads the library.
    #[test]
    fn reads_the_listed_variables() {
        let source = include_str!("config.rs");
        let mut read: Vec<&str> = source
            .split("c\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|name| {
                name.starts_with("CKPT_")
                    && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            })
            .collect();
        read.sort();
        read.dedup();
        let mut listed = ckpt_image::settings::LIBRARY_VARIABLES.to_vec();
        listed.sort();
        assert_eq!(read, listed);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("16m"), Some(16 << 20));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("2 G"), Some(2 << 30));
        assert_eq!(parse_size("1.5M"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999G"), None);
    }
}
