//! ckpt(1) from the text of `ckpt --help` (`USAGE` in ckpt-cmd/src/usage.rs), so that the
//! page and the help cannot disagree.
//!
//! The help text is structured, and this module relies on exactly that: the synopses come
//! first, up to the first blank line; a line at column 0 that starts with `options`,
//! `environment`, `subcommands` or `exit status` opens that section (what follows the word
//! on the column-0 lines, up to the first indented line, is an introduction); in the first
//! three, a line indented by two spaces starts an entry whose term ends at the first run of
//! two spaces (or the end of the line), and lines indented further continue its description.
//! In `exit status` the lines are prose, a new paragraph at each column-0 `exit status` line.
//! Other column-0 paragraphs are the DESCRIPTION before the first section and NOTES after it.

use crate::roff;

/// The page's one-line summary for NAME: the only words of ckpt(1) not taken from the help.
const SUMMARY: &str = "checkpoint and restart ordinary Linux programs";

/// How a section's indented lines are read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Term, two spaces, description; continuation lines indented further.
    Entries,
    /// Running text.
    Prose,
}

/// The sections of the help text: the word that opens each, the man page heading, and the
/// order of the headings in the page (man-pages(7) order, whatever the help's order).
const SECTIONS: &[(&str, &str, Kind)] = &[
    ("options", "OPTIONS", Kind::Entries),
    ("subcommands", "SUBCOMMANDS", Kind::Entries),
    ("environment", "ENVIRONMENT", Kind::Entries),
    ("exit status", "EXIT STATUS", Kind::Prose),
];

#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub term: String,
    pub description: String,
}

#[derive(Debug)]
enum Block {
    Paragraph(String),
    Entry(Entry),
}

/// The help text taken apart.
#[derive(Debug, Default)]
pub struct Help {
    pub synopses: Vec<String>,
    description: Vec<String>,
    /// Blocks per entry of `SECTIONS`.
    sections: Vec<Vec<Block>>,
    notes: Vec<String>,
}

#[cfg(test)]
impl Help {
    /// The entries of the section opened by `word` (`"options"`, …), in help order.
    pub fn entries(&self, word: &str) -> Vec<&Entry> {
        let index = SECTIONS
            .iter()
            .position(|(opening, _, _)| *opening == word)
            .expect("a known section");
        self.sections[index]
            .iter()
            .filter_map(|block| match block {
                Block::Entry(entry) => Some(entry),
                Block::Paragraph(_) => None,
            })
            .collect()
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The section a column-0 line opens, if any, and the rest of the line after its word.
fn opens_section(line: &str) -> Option<(usize, &str)> {
    SECTIONS
        .iter()
        .enumerate()
        .find_map(|(index, (word, _, _))| {
            let rest = line.strip_prefix(word)?;
            (rest.is_empty() || rest.starts_with([':', ' ', '('])).then_some((index, rest))
        })
}

/// Words joined by single spaces.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `(recognised only …):` → `Recognised only ….`: a section's introduction as a sentence.
fn as_sentence(text: &str) -> String {
    let mut text = collapse(text);
    text = text.trim_start_matches(':').trim().to_string();
    if let Some(inner) = text
        .strip_suffix(':')
        .map(str::trim_end)
        .and_then(|t| t.strip_prefix('('))
        .and_then(|t| t.strip_suffix(')'))
    {
        text = format!("{inner}.");
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

pub fn parse(usage: &str) -> Help {
    let mut help = Help {
        sections: SECTIONS.iter().map(|_| Vec::new()).collect(),
        ..Help::default()
    };
    let mut lines = usage.lines().peekable();
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
        let synopsis = line.trim_start_matches("usage:").trim();
        help.synopses.push(synopsis.to_string());
    }

    let rest: Vec<&str> = lines.collect();
    let mut current: Option<usize> = None;
    for block in rest.split(|line| line.trim().is_empty()) {
        let Some(first) = block.first() else {
            continue;
        };
        let opened = (indent(first) == 0).then(|| opens_section(first)).flatten();
        if opened.is_none() && indent(first) == 0 {
            let paragraph = collapse(&block.join(" "));
            if current.is_none() {
                help.description.push(paragraph);
            } else {
                help.notes.push(paragraph);
            }
            continue;
        }
        parse_section_block(&mut help, &mut current, block);
    }
    help
}

/// One blank-line-separated block inside (or opening) sections.
fn parse_section_block(help: &mut Help, current: &mut Option<usize>, block: &[&str]) {
    // What is being gathered: an introduction or prose paragraph, or an entry.
    let mut paragraph: Option<String> = None;
    let mut entry: Option<Entry> = None;
    let flush = |help: &mut Help,
                 section: Option<usize>,
                 paragraph: &mut Option<String>,
                 entry: &mut Option<Entry>| {
        let Some(section) = section else { return };
        if let Some(text) = paragraph.take().filter(|text| !text.trim().is_empty()) {
            help.sections[section].push(Block::Paragraph(as_sentence(&text)));
        }
        if let Some(mut done) = entry.take() {
            done.description = collapse(&done.description);
            help.sections[section].push(Block::Entry(done));
        }
    };
    for &line in block {
        if indent(line) == 0 {
            if let Some((index, rest)) = opens_section(line) {
                flush(help, *current, &mut paragraph, &mut entry);
                *current = Some(index);
                // `exit status of attach: …` keeps its words; `exit status: …` is the rest.
                let keep_heading = SECTIONS[index].2 == Kind::Prose && !rest.starts_with(':');
                paragraph = Some(if keep_heading {
                    line.to_string()
                } else {
                    rest.to_string()
                });
                continue;
            }
        }
        let kind = current.map(|index| SECTIONS[index].2);
        match kind {
            Some(Kind::Entries) if indent(line) > 0 => {
                if indent(line) <= 2 {
                    flush(help, *current, &mut paragraph, &mut entry);
                    let text = line.trim();
                    let (term, description) = text.split_once("  ").unwrap_or((text, ""));
                    entry = Some(Entry {
                        term: term.trim().to_string(),
                        description: description.to_string(),
                    });
                } else if let Some(entry) = entry.as_mut() {
                    entry.description.push(' ');
                    entry.description.push_str(line.trim());
                } else {
                    paragraph.get_or_insert_with(String::new).push_str(line);
                }
            }
            Some(Kind::Entries) if entry.is_some() => {
                // Prose at column 0 after the entries: a paragraph of its own.
                flush(help, *current, &mut paragraph, &mut entry);
                paragraph = Some(line.to_string());
            }
            _ => {
                let text = paragraph.get_or_insert_with(String::new);
                text.push(' ');
                text.push_str(line);
            }
        }
    }
    flush(help, *current, &mut paragraph, &mut entry);
}

/// The synopsis line `ckpt info FILE [--json]` as `.SY ckpt` and its arguments.
fn synopsis(out: &mut String, line: &str) {
    let (command, arguments) = line.split_once(' ').unwrap_or((line, ""));
    out.push_str(&format!(".SY {}\n", roff::literal(command)));
    if !arguments.is_empty() {
        out.push_str(&roff::term(arguments));
        out.push('\n');
    }
    out.push_str(".YS\n");
}

/// The whole of ckpt(1). `see_also` names the other pages (`ckpt_ckpt(3)`, …).
pub fn render(help: &Help, version: &str, see_also: &[String]) -> String {
    let mut out = String::new();
    out.push_str(
        ".\\\" Generated by ckpt-man from the --help text of ckpt (ckpt-cmd/src/usage.rs).\n",
    );
    out.push_str(".\\\" Do not edit: change the help text and run ckpt-man again.\n");
    out.push_str(&format!(
        ".TH CKPT 1 \"\" \"ckpt {}\" \"User Commands\"\n",
        roff::literal(version)
    ));
    out.push_str(".SH NAME\n");
    out.push_str(&format!("ckpt \\- {}\n", roff::text(SUMMARY)));
    out.push_str(".SH SYNOPSIS\n");
    for line in &help.synopses {
        synopsis(&mut out, line);
    }
    out.push_str(".SH DESCRIPTION\n");
    paragraphs(&mut out, &help.description);
    for ((_, heading, _), blocks) in SECTIONS.iter().zip(&help.sections) {
        if blocks.is_empty() {
            continue;
        }
        out.push_str(&format!(".SH {heading}\n"));
        for block in blocks {
            match block {
                Block::Paragraph(text) => {
                    out.push_str(".PP\n");
                    out.push_str(&roff::text(text));
                    out.push('\n');
                }
                Block::Entry(entry) => {
                    out.push_str(".TP\n");
                    out.push_str(&roff::term(&entry.term));
                    out.push('\n');
                    if !entry.description.is_empty() {
                        out.push_str(&roff::text(&entry.description));
                        out.push('\n');
                    }
                }
            }
        }
    }
    if !help.notes.is_empty() {
        out.push_str(".SH NOTES\n");
        paragraphs(&mut out, &help.notes);
    }
    if !see_also.is_empty() {
        out.push_str(".SH SEE ALSO\n");
        see_also_list(&mut out, see_also);
    }
    out
}

fn paragraphs(out: &mut String, paragraphs: &[String]) {
    for (i, text) in paragraphs.iter().enumerate() {
        if i > 0 {
            out.push_str(".PP\n");
        }
        out.push_str(&roff::text(text));
        out.push('\n');
    }
}

/// `name(section)` references, comma-separated, each name in bold.
pub fn see_also_list(out: &mut String, pages: &[String]) {
    for (i, page) in pages.iter().enumerate() {
        let (name, section) = page.split_once('(').unwrap_or((page, ""));
        let comma = if i + 1 < pages.len() { "," } else { "" };
        out.push_str(&format!(
            ".BR \\%{} ({}{comma}\n",
            roff::literal(name),
            roff::literal(section)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::USAGE;

    fn page() -> String {
        render(&parse(USAGE), "0.0.0", &["ckpt_ckpt(3)".to_string()])
    }

    /// Every option, variable, subcommand and exit status the help text names is in the page:
    /// an entry the parser lost (a changed layout, a new section) fails here.
    #[test]
    fn the_page_names_everything_the_help_names() {
        let page = roff::unescape(&page());
        let words: Vec<&str> = USAGE
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '='))
            .collect();
        let mut checked = 0;
        for word in words {
            let word = word.trim_end_matches(['=', '-']);
            let option = word.starts_with('-') && word.len() > 1 && word != "--";
            let variable = word.starts_with("CKPT_") || word.starts_with("LD_");
            if option || variable {
                assert!(page.contains(word), "{word} is in --help but not in ckpt.1");
                checked += 1;
            }
        }
        assert!(checked > 30, "only {checked} options and variables found");
        for synopsis in parse(USAGE).synopses.iter().skip(1) {
            let subcommand = synopsis.split_whitespace().nth(1).unwrap();
            assert!(
                page.contains(&format!("\n{subcommand} ")) || subcommand.starts_with('-'),
                "subcommand {subcommand} has no entry in ckpt.1"
            );
        }
        for status in ["2", "126", "127", "64", "65", "75", "124"] {
            assert!(
                page.contains(status),
                "exit status {status} is not in ckpt.1"
            );
        }
    }

    /// Each entry of the help has its own tagged paragraph, and the terms are what their
    /// section lists: an entry whose term and description are parted by one space only
    /// would make a term of the whole line.
    #[test]
    fn entries_are_parsed_with_their_terms() {
        let help = parse(USAGE);
        let options = help.entries("options");
        assert!(options.len() >= 8, "{options:#?}");
        for entry in &options {
            assert!(entry.term.starts_with('-'), "option term {:?}", entry.term);
            assert!(!entry.description.is_empty(), "{entry:?}");
        }
        let variables = help.entries("environment");
        assert!(variables.len() >= 10, "{variables:#?}");
        for entry in &variables {
            for name in entry.term.split(", ") {
                let name = name.split('=').next().unwrap();
                assert!(
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                    "environment term {:?} is not a list of variables",
                    entry.term
                );
            }
            assert!(!entry.description.is_empty(), "{entry:?}");
        }
        let subcommands = help.entries("subcommands");
        assert_eq!(
            subcommands.len(),
            help.synopses.len() - 2,
            "one entry per subcommand synopsis: {subcommands:#?}"
        );
        let page = page();
        let tagged = page.matches("\n.TP\n").count();
        assert_eq!(tagged, options.len() + variables.len() + subcommands.len());
    }

    #[test]
    fn introductions_become_sentences() {
        assert_eq!(
            as_sentence(" (recognised only as the first argument):"),
            "Recognised only as the first argument."
        );
        assert_eq!(as_sentence(": that of PROG; or 2"), "That of PROG; or 2");
    }
}
