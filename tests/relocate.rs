//! CKPT_RELOCATE at a restart: files the program had open under a directory that moved are
//! opened under its new name (tests/programs/files.c reads a file across the checkpoint).

use std::path::PathBuf;

use ckpt_tests::*;

const FILES_C: &str = include_str!("programs/files.c");

/// A checkpoint of `files read DIR/old/data.txt` at offset 6, with `old` then renamed `new`.
fn moved_after_checkpoint(dir: &TempDir) -> (PathBuf, PathBuf) {
    let (old, new) = (dir.join("old"), dir.join("new"));
    std::fs::create_dir(&old).expect("mkdir old");
    shared_file(&old.join("data.txt"), b"hello world, again\n");
    (old, new)
}

#[test]
fn relocated_directory_is_found_under_its_new_name() {
    let dir = TempDir::new("relocate");
    let program = compile_c(&dir, "files", FILES_C, &[]);
    let (old, new) = moved_after_checkpoint(&dir);
    let run = FdRun::new(&dir, &program);
    let data = old.join("data.txt");
    let before = run.checkpoint(&["read", data.to_str().unwrap()], &[]);
    expect_lines(
        &before,
        &["before: hello ", "ready"],
        "before the checkpoint",
    );
    std::fs::rename(&old, &new).expect("rename old to new");

    // Without the option the file is missing, and the restart says which.
    let (status, _, stderr) = run.restart();
    assert_eq!(status.code(), Some(77), "{stderr}");
    assert!(
        stderr.contains(&format!("('{}') cannot be opened again", data.display())),
        "{stderr}"
    );

    // A pair that does not apply changes nothing; a trailing slash is fine.
    let value = format!("/nowhere=/else:{}/={}/", old.display(), new.display());
    let (status, lines, stderr) = run.restart_with(&[("CKPT_RELOCATE", &value)]);
    assert!(status.success(), "{} {stderr}", describe_status(status));
    expect_lines(
        &lines,
        &["after: world,", "done"],
        "after the relocated restart",
    );
    assert!(stderr.is_empty(), "the restart said {stderr:?}");
}

#[test]
fn relocated_file_missing_names_its_new_path() {
    let dir = TempDir::new("relocate-missing");
    let program = compile_c(&dir, "files", FILES_C, &[]);
    let (old, new) = moved_after_checkpoint(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["read", old.join("data.txt").to_str().unwrap()], &[]);
    let value = format!("{}={}", old.display(), new.display());
    let (status, lines, stderr) = run.restart_with(&[("CKPT_RELOCATE", &value)]);
    assert_eq!(status.code(), Some(77), "{lines:?} {stderr}");
    assert!(
        stderr.contains(&format!(
            "('{}', relocated) cannot be opened again: no such file",
            new.join("data.txt").display()
        )),
        "{stderr}"
    );
}

#[test]
fn malformed_relocation_refuses_the_restart() {
    let dir = TempDir::new("relocate-malformed");
    let program = compile_c(&dir, "files", FILES_C, &[]);
    let (old, _) = moved_after_checkpoint(&dir);
    let run = FdRun::new(&dir, &program);
    run.checkpoint(&["read", old.join("data.txt").to_str().unwrap()], &[]);
    for bad in ["old=new", "/a/b", "/a=relative"] {
        let (status, lines, stderr) = run.restart_with(&[("CKPT_RELOCATE", bad)]);
        assert_eq!(status.code(), Some(79), "{bad}: {lines:?} {stderr}");
        assert!(
            lines.is_empty()
                && stderr.starts_with(&format!(
                    "ckpt restart: CKPT_RELOCATE: '{bad}' is not OLD=NEW"
                )),
            "{bad}: {lines:?} {stderr}"
        );
    }
    let long = format!("/a={}", "/b".repeat(2100));
    let (status, _, stderr) = run.restart_with(&[("CKPT_RELOCATE", &long)]);
    assert_eq!(status.code(), Some(79), "{stderr}");
    assert!(
        stderr.contains("CKPT_RELOCATE is longer than 4095 bytes"),
        "{stderr}"
    );
}
