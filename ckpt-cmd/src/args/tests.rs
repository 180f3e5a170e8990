//! Unit tests of `args`.

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
        "0", "1", "10", "20", "64", "TSTP", "SIGTSTP", "sigusr1", "usr2", "SigHup", "IOT", "CLD",
        "POLL", "RTMIN+2",
    ] {
        assert!(parse_signal(good).is_some(), "{good} should be accepted");
        assert_eq!(run(&["-a", good, "p"]).async_signal.as_deref(), Some(*good));
    }
    assert_eq!(parse_signal("SIGUSR1"), Some(libc::SIGUSR1));
    assert_eq!(parse_signal("tstp"), Some(libc::SIGTSTP));
    // Spellings of no signal, and signals that cannot be the checkpoint signal.
    for bad in [
        "", "65", "-1", "+5", "1x", "SIG", "SIGFOO", "KILL", "SIGSTOP", "USR1 ", "９", "9", "19",
        "63", "RTMAX-1", "32", "33",
    ] {
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

fn checkpoint(args: &[&str]) -> CheckpointOptions {
    match parse_strs(args) {
        Ok(Request::Checkpoint(options)) => options,
        other => panic!("expected Checkpoint for {args:?}, got {other:?}"),
    }
}

fn subcommand_error(args: &[&str]) -> String {
    match parse_strs(args) {
        Err(error @ ArgError::Subcommand { .. }) => error.to_string(),
        other => panic!("expected a subcommand error for {args:?}, got {other:?}"),
    }
}

#[test]
fn info_and_verify() {
    assert_eq!(
        parse_strs(&["info", "x.ckpt"]),
        Ok(Request::Info {
            file: "x.ckpt".into(),
            json: false
        })
    );
    for args in [
        &["info", "--json", "x.ckpt"][..],
        &["info", "x.ckpt", "--json"][..],
    ] {
        assert_eq!(
            parse_strs(args),
            Ok(Request::Info {
                file: "x.ckpt".into(),
                json: true
            })
        );
    }
    assert_eq!(
        parse_strs(&["info", "--", "-odd.ckpt"]),
        Ok(Request::Info {
            file: "-odd.ckpt".into(),
            json: false
        })
    );
    assert_eq!(
        parse_strs(&["verify", "x.ckpt"]),
        Ok(Request::Verify {
            file: "x.ckpt".into()
        })
    );
    assert!(subcommand_error(&["info"]).starts_with("info: no checkpoint FILE"));
    assert!(subcommand_error(&["verify"]).starts_with("verify: no checkpoint FILE"));
    assert!(subcommand_error(&["verify", "a", "b"]).contains("more than one"));
    assert!(subcommand_error(&["info", "--xml", "a"]).contains("unknown option --xml"));
    assert_eq!(parse_strs(&["verify", "--help"]), Ok(Request::Help));
}

#[test]
fn subcommands_only_as_first_argument() {
    assert_eq!(run(&["--", "info", "x"]).program, "info");
    assert_eq!(run(&["-c", "verify"]).program, "verify");
    let options = run(&["prog", "checkpoint"]);
    assert_eq!(options.program_args, vec!["checkpoint"]);
}

#[test]
fn checkpoint_options() {
    let options = checkpoint(&["checkpoint", "42"]);
    assert_eq!(
        options,
        CheckpointOptions {
            pid: 42,
            name: None,
            end_signal: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS
        }
    );
    let options = checkpoint(&[
        "checkpoint",
        "-n",
        "x.ckpt",
        "--term",
        "7",
        "--timeout",
        "2.5",
    ]);
    assert_eq!(options.pid, 7);
    assert_eq!(options.name.as_deref(), Some(OsStr::new("x.ckpt")));
    assert_eq!(options.end_signal, Some(libc::SIGTERM));
    assert_eq!(options.timeout_secs, 2.5);
    assert_eq!(
        checkpoint(&["checkpoint", "9", "--kill"]).end_signal,
        Some(libc::SIGKILL)
    );
    assert_eq!(
        checkpoint(&["checkpoint", "9", "--signal", "10"]).end_signal,
        Some(10)
    );
    assert_eq!(
        checkpoint(&["checkpoint", "9", "--signal=USR2"]).end_signal,
        Some(libc::SIGUSR2)
    );
    assert_eq!(
        checkpoint(&["checkpoint", "9", "--signal", "sigkill"]).end_signal,
        Some(libc::SIGKILL)
    );
    assert_eq!(
        checkpoint(&["checkpoint", "9", "--signal", "STOP"]).end_signal,
        Some(libc::SIGSTOP)
    );
    let options = checkpoint(&["checkpoint", "-nfoo", "--timeout=0", "9"]);
    assert_eq!(options.name.as_deref(), Some(OsStr::new("foo")));
    assert_eq!(options.timeout_secs, 0.0);
    assert_eq!(parse_strs(&["checkpoint", "--help"]), Ok(Request::Help));
}

#[test]
fn checkpoint_errors() {
    assert!(subcommand_error(&["checkpoint"]).contains("no PID"));
    for bad in ["0", "-5", "abc", "12x", "99999999999"] {
        let message = subcommand_error(&["checkpoint", "--", bad]);
        assert!(message.contains("bad PID"), "{bad}: {message}");
    }
    assert!(subcommand_error(&["checkpoint", "1", "2"]).contains("more than one PID"));
    assert!(subcommand_error(&["checkpoint", "1", "--term", "--kill"]).contains("at most one"));
    assert!(
        subcommand_error(&["checkpoint", "1", "--signal", "0"]).contains("bad value for --signal")
    );
    assert!(subcommand_error(&["checkpoint", "1", "--signal", "FOO"])
        .contains("bad value for --signal"));
    for bad in ["", "-1", "1s", "1.2.3", "."] {
        let message = subcommand_error(&["checkpoint", "1", "--timeout", bad]);
        assert!(
            message.contains("bad value for --timeout"),
            "{bad}: {message}"
        );
    }
    assert!(subcommand_error(&["checkpoint", "1", "--timeout"]).contains("needs a value"));
    assert!(subcommand_error(&["checkpoint", "1", "-n", "a\nb"]).contains("newline"));
    assert!(subcommand_error(&["checkpoint", "1", "--term=3"]).contains("takes no value"));
    assert!(subcommand_error(&["checkpoint", "1", "-x"]).contains("unknown option -x"));
}

fn attach(args: &[&str]) -> AttachOptions {
    match parse_strs(args) {
        Ok(Request::Attach(options)) => options,
        other => panic!("expected Attach for {args:?}, got {other:?}"),
    }
}

#[test]
fn attach_pid_and_options() {
    let options = attach(&["attach", "42"]);
    assert_eq!(
        options,
        AttachOptions {
            pid: 42,
            ..Default::default()
        }
    );
    let options = attach(&["attach", "-c", "-z", "500", "42", "-a", "USR1", "-nx.ckpt"]);
    assert_eq!(options.pid, 42);
    assert!(options.continue_after_checkpoint);
    assert_eq!(options.period_ms, Some(500));
    assert_eq!(options.async_signal.as_deref(), Some("USR1"));
    assert_eq!(options.name.as_deref(), Some(OsStr::new("x.ckpt")));
}

#[test]
fn attach_refusals() {
    for (args, wanted) in [
        (&["attach"][..], "no PID given"),
        (&["attach", "1", "2"], "more than one PID"),
        (&["attach", "x"], "bad PID"),
        (&["attach", "1", "-q"], "unknown option -q"),
        (&["attach", "1", "--kill"], "unknown option --kill"),
        (&["attach", "1", "-a", "63"], "-a"),
        (&["attach", "1", "-z", "soon"], "-z"),
    ] {
        let error = parse_strs(args).expect_err("refused").to_string();
        assert!(error.contains(wanted), "{args:?}: {error}");
    }
    assert_eq!(parse_strs(&["attach", "--help"]), Ok(Request::Help));
}

#[test]
fn resume_and_its_value() {
    assert_eq!(run(&["prog"]).resume, None);
    let options = run(&["--resume", "-n", "job.ckpt", "prog", "--resume"]);
    assert_eq!(options.resume, Some(Resume::RefuseDamaged));
    assert_eq!(options.name.as_deref(), Some(OsStr::new("job.ckpt")));
    assert_eq!(options.program_args, vec!["--resume"]);
    let options = run(&["-z", "5", "--resume=fresh-if-damaged", "prog"]);
    assert_eq!(options.resume, Some(Resume::FreshIfDamaged));
    assert_eq!(
        parse_strs(&["--resume=always", "prog"]),
        Err(ArgError::BadResume("always".to_owned()))
    );
    // `--resume fresh-if-damaged` is --resume with PROG fresh-if-damaged, as with any
    // option whose value is optional: the value must be attached.
    let options = run(&["--resume", "fresh-if-damaged"]);
    assert_eq!(options.resume, Some(Resume::RefuseDamaged));
    assert_eq!(options.program, "fresh-if-damaged");
}
