//! The environment variables ckpt reads, by who reads them: one list for the library's
//! constructor (which `ckpt attach` must clear while it loads the library into a program
//! that may carry stray values), the restart, and the command. Tests in libckpt and
//! restart-stub check these lists against the names their code reads.

/// Read by libckpt's constructor (libckpt/src/config.rs), when the library loads.
pub const LIBRARY_VARIABLES: &[&str] = &[
    "CKPT_NAME",
    "CKPT_CONTINUE",
    "CKPT_ASYNCSIG",
    "CKPT_MSPERIOD",
    "CKPT_FSYNC",
    "CKPT_FORK",
    "CKPT_COMPRESS",
    "CKPT_INCREMENTAL",
    "CKPT_FD_POLICY",
    "CKPT_STRICT_FILES",
    "CKPT_MAX_DELETED",
    "CKPT_QUIET",
    "CKPT_CHILDREN",
    "CKPT_PID",
    "CKPT_PROGRAM",
];

/// Read by a restart (the stub, restart-stub/src/main.rs), from its own environment.
pub const RESTART_VARIABLES: &[&str] = &[
    "CKPT_LAZY",
    "CKPT_HUGE_FILL",
    "CKPT_STRICT_FILES",
    "CKPT_RESTORE_STDIO",
    "CKPT_RELOCATE",
];

/// Read by the `ckpt` command only.
pub const COMMAND_VARIABLES: &[&str] = &["CKPT_LIBRARY", "CKPT_PROGRESS", "CKPT_QUIET"];
