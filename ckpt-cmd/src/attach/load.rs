//! Steps 3 and 4 of an attach: in the chosen thread, the `CKPT_*` variables set, libckpt
//! `dlopen`ed, `dlerror` read on failure, the variables put back; then the registers and
//! extended state back exactly.

use super::*;

/// `dlopen`'s RTLD_NOW: resolve everything now, so that no lazy binding happens later in a
/// signal handler.
pub(super) const RTLD_NOW: u64 = 2;

pub(super) enum LoadError {
    /// dlopen said no (its message) or a variable could not be set.
    Refused(String),
    Call(CallError),
}

impl From<CallError> for LoadError {
    fn from(error: CallError) -> Self {
        LoadError::Call(error)
    }
}

impl From<std::io::Error> for LoadError {
    fn from(error: std::io::Error) -> Self {
        LoadError::Call(CallError::Io(error))
    }
}

/// Step 3: the calls. On success the environment is as it was and libckpt is loaded.
pub(super) fn load(
    session: &mut Session,
    functions: &target::LibcFunctions,
    options: &AttachOptions,
    library: &Path,
) -> Result<(), LoadError> {
    let path = session.put_string(library.as_os_str().as_bytes())?;
    // Each variable: its name in the target, and its value there before (None: unset).
    // Read from the environment array when glibc's `__environ` leads to it (no call
    // needed), else asked with `getenv` calls.
    let environment = session.read_environment(functions.environ)?;
    let mut before = Vec::new();
    for &name in LIBRARY_VARIABLES {
        let at = session.put_string(name.as_bytes())?;
        let old = match &environment {
            Some(entries) => entries.iter().find_map(|entry| {
                entry
                    .strip_prefix(name.as_bytes())?
                    .strip_prefix(b"=")
                    .map(<[u8]>::to_vec)
            }),
            None => match session.call(functions.getenv, &[at])? {
                0 => None,
                value => Some(session.read_string(value)?),
            },
        };
        before.push((name, at, old));
    }
    let mut changed = Vec::new();
    let mut result = Ok(());
    for (name, at, old) in &before {
        let wanted = options.wanted(name);
        if wanted == *old {
            continue;
        }
        let r = match &wanted {
            Some(value) => {
                let value = session.put_string(value)?;
                session.call(functions.setenv, &[*at, value, 1])?
            }
            None => session.call(functions.unsetenv, &[*at])?,
        };
        changed.push((*at, old.clone()));
        if r as i32 != 0 {
            result = Err(LoadError::Refused(format!(
                "cannot set {name} in it (setenv failed)"
            )));
            break;
        }
    }
    if result.is_ok() {
        let handle = session.call(functions.dlopen, &[path, RTLD_NOW])?;
        if handle == 0 {
            let message = session.call(functions.dlerror, &[])?;
            let text = if message == 0 {
                "no reason given".to_owned()
            } else {
                String::from_utf8_lossy(&session.read_string(message)?).into_owned()
            };
            result = Err(LoadError::Refused(format!(
                "its dlopen of {} failed: {text}",
                library.display()
            )));
        }
    }
    // The variables as they were: children started later must not inherit ours.
    for (at, old) in changed {
        match old {
            Some(value) => {
                let value = session.put_string(&value)?;
                session.call(functions.setenv, &[at, value, 1])?;
            }
            None => {
                session.call(functions.unsetenv, &[at])?;
            }
        }
    }
    result
}
