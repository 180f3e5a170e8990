//! `ckpt-man DIR`: writes the man pages of ckpt into DIR — `man1/ckpt.1` from the text of
//! `ckpt --help`, and `man3/FUNCTION.3` for each function of include/ckpt.h from the
//! header's comments. Both sources are compiled in, so the pages are those of the ckpt this
//! workspace builds; the Makefile runs this at `make` and installs what it wrote.
//!
//! There is no second copy of the documentation: a page that says something wrong is fixed
//! in the help text or the header, never in the generated file.

mod api_pages;
mod help_page;
mod roff;

// The command's help text, the one source of ckpt(1). The command's own function for
// synopses (`usage_line`) is of no use here. `src/usage.rs` (like `include/ckpt.h`) is a
// symbolic link to the one copy, which `cargo package` follows, so a packaged ckpt-doc
// carries the text it was packaged with.
#[allow(dead_code)]
mod usage;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const HEADER: &str = include_str!("../include/ckpt.h");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes `text` to `path` through a temporary file renamed into place, so that a reader
/// (man, or `make install` run twice at once) never sees half a page.
fn write_page(path: &Path, text: &str) -> Result<(), String> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn run(out: &Path) -> Result<(), String> {
    let header = api_pages::parse(HEADER).map_err(|e| format!("include/ckpt.h: {e}"))?;
    let api_pages = header.pages(VERSION)?;
    let see_also: Vec<String> = header
        .functions()
        .iter()
        .map(|name| format!("{name}(3)"))
        .collect();
    let help = help_page::parse(usage::USAGE);
    let command_page = help_page::render(&help, VERSION, &see_also);

    for section in ["man1", "man3"] {
        let dir = out.join(section);
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    write_page(&out.join("man1/ckpt.1"), &command_page)?;
    for page in api_pages {
        write_page(&out.join("man3").join(&page.name), &page.text)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: ckpt-man DIR   (writes DIR/man1/ckpt.1 and DIR/man3/*.3)");
        return ExitCode::from(2);
    };
    match run(&PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ckpt-man: {message}");
            ExitCode::FAILURE
        }
    }
}
