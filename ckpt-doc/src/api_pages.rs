//! The section 3 pages, one per function of include/ckpt.h, from the header's comments.
//!
//! What the header must look like: a first block comment `ckpt.h - SUMMARY` and paragraphs
//! on linking (the LIBRARY section of every page); each function declared on one line
//! ending in `);`, after a block comment whose first line is `NAME - SUMMARY` (the NAME line
//! of its page) and whose other paragraphs describe it. A `#define` group (consecutive
//! defines after a comment) joins the SYNOPSIS of a function whose comment or declaration
//! names one of its macros, or that its comment names; a `struct` joins it when the
//! declaration names it, its comment then in DESCRIPTION. In comments, a line indented by
//! two spaces whose term is followed by two spaces is a list entry (the struct's fields).

use crate::roff;

#[derive(Debug, Default)]
struct Comment {
    lines: Vec<String>,
}

impl Comment {
    /// Blank-line-separated paragraphs, each a list of lines as written (indentation kept).
    fn paragraphs(&self) -> Vec<Vec<&str>> {
        self.lines
            .split(|line| line.trim().is_empty())
            .filter(|paragraph| !paragraph.is_empty())
            .map(|paragraph| paragraph.iter().map(String::as_str).collect())
            .collect()
    }

    fn text(&self) -> String {
        self.lines.join(" ")
    }
}

#[derive(Debug)]
enum Declaration {
    Defines {
        comment: Comment,
        lines: Vec<String>,
    },
    Struct {
        comment: Comment,
        name: String,
        lines: Vec<String>,
    },
    Function {
        comment: Comment,
        name: String,
        line: String,
    },
}

/// The header taken apart.
#[derive(Debug)]
pub struct Header {
    /// The lead comment after its `ckpt.h - …` line.
    library: Comment,
    declarations: Vec<Declaration>,
}

/// A page written from the header: its file name (`ckpt_ckpt.3`) and text.
pub struct Page {
    pub name: String,
    pub text: String,
}

/// The text of a comment line: without ` * `, `/*` and `*/`, indentation after ` * ` kept.
fn comment_text(line: &str) -> String {
    let line = line.trim_end();
    let line = line.strip_suffix("*/").unwrap_or(line).trim_end();
    let trimmed = line.trim_start();
    let body = if let Some(rest) = trimmed.strip_prefix("/*") {
        rest
    } else if let Some(rest) = trimmed.strip_prefix('*') {
        rest
    } else {
        trimmed
    };
    body.strip_prefix(' ')
        .unwrap_or(body)
        .trim_end()
        .to_string()
}

pub fn parse(header: &str) -> Result<Header, String> {
    let mut lines = header.lines().peekable();
    let mut pending: Option<Comment> = None;
    let mut library: Option<Comment> = None;
    let mut declarations = Vec::new();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.starts_with("/*") {
            let mut comment = Comment::default();
            let mut current = line;
            loop {
                let text = comment_text(current);
                // The opening `/*` and closing `*/` lines of a block carry no text.
                if !(comment.lines.is_empty() && text.is_empty()) {
                    comment.lines.push(text);
                }
                if current.contains("*/") {
                    break;
                }
                current = lines.next().ok_or("a comment is not closed")?;
            }
            while comment.lines.last().is_some_and(|l| l.is_empty()) {
                comment.lines.pop();
            }
            if library.is_none() {
                library = Some(comment);
            } else {
                pending = Some(comment);
            }
        } else if trimmed.starts_with("#define") && pending.is_some() {
            let mut defines = vec![line.to_string()];
            while lines
                .peek()
                .is_some_and(|l| l.trim().starts_with("#define"))
            {
                defines.push(lines.next().unwrap_or_default().to_string());
            }
            let comment = pending.take().unwrap_or_default();
            declarations.push(Declaration::Defines {
                comment,
                lines: defines,
            });
        } else if let Some(rest) = trimmed
            .strip_prefix("struct ")
            .filter(|_| trimmed.ends_with('{'))
        {
            let name = rest.trim_end_matches('{').trim().to_string();
            let mut body = vec![line.to_string()];
            loop {
                let next = lines.next().ok_or(format!("struct {name} is not closed"))?;
                body.push(next.to_string());
                if next.trim_start().starts_with("};") {
                    break;
                }
            }
            declarations.push(Declaration::Struct {
                comment: pending.take().unwrap_or_default(),
                name,
                lines: body,
            });
        } else if trimmed.ends_with(");") && trimmed.contains('(') {
            let before = &trimmed[..trimmed.find('(').unwrap_or(0)];
            let name = before
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default()
                .to_string();
            let comment = pending
                .take()
                .ok_or(format!("{name} has no comment before it"))?;
            declarations.push(Declaration::Function {
                comment,
                name,
                line: trimmed.to_string(),
            });
        } else if !trimmed.is_empty() {
            pending = None;
        }
    }
    let mut library = library.ok_or("the header has no lead comment")?;
    library.lines.remove(0);
    while library.lines.first().is_some_and(|l| l.is_empty()) {
        library.lines.remove(0);
    }
    Ok(Header {
        library,
        declarations,
    })
}

impl Header {
    /// The functions' names, in header order.
    pub fn functions(&self) -> Vec<&str> {
        self.declarations
            .iter()
            .filter_map(|declaration| match declaration {
                Declaration::Function { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// One page per function.
    pub fn pages(&self, version: &str) -> Result<Vec<Page>, String> {
        let functions = self.functions();
        let mut pages = Vec::new();
        for declaration in &self.declarations {
            let Declaration::Function {
                comment,
                name,
                line,
            } = declaration
            else {
                continue;
            };
            let see_also: Vec<String> = std::iter::once("ckpt(1)".to_string())
                .chain(
                    functions
                        .iter()
                        .filter(|other| *other != name)
                        .map(|other| format!("{other}(3)")),
                )
                .collect();
            pages.push(Page {
                name: format!("{name}.3"),
                text: self.page(name, line, comment, version, &see_also)?,
            });
        }
        Ok(pages)
    }

    fn page(
        &self,
        name: &str,
        declaration: &str,
        comment: &Comment,
        version: &str,
        see_also: &[String],
    ) -> Result<String, String> {
        let mut paragraphs = comment.paragraphs();
        let first = paragraphs.first().cloned().unwrap_or_default();
        let summary = first
            .first()
            .and_then(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim_start().strip_prefix("- "))
            .ok_or(format!(
                "the comment of {name} does not start with \"{name} - summary\""
            ))?
            .to_string();
        // The rest of the first paragraph, if the summary line had company.
        if first.len() > 1 {
            paragraphs[0] = first[1..].to_vec();
        } else {
            paragraphs.remove(0);
        }

        let parameters: Vec<String> = parameter_names(declaration);
        let comment_text = comment.text();
        let mut structs = Vec::new();
        let mut defines = Vec::new();
        for other in &self.declarations {
            match other {
                Declaration::Struct {
                    name: struct_name, ..
                } if declaration.contains(&format!("struct {struct_name}")) => structs.push(other),
                _ => {}
            }
        }
        let mut included = declaration.to_string();
        for s in &structs {
            if let Declaration::Struct { lines, .. } = s {
                included.push_str(&lines.join("\n"));
            }
        }
        for other in &self.declarations {
            if let Declaration::Defines {
                comment: group_comment,
                lines,
            } = other
            {
                let named = lines.iter().any(|line| {
                    let macro_name = line.split_whitespace().nth(1).unwrap_or_default();
                    mentions(&comment_text, macro_name) || mentions(&included, macro_name)
                });
                if named || mentions(&group_comment.text(), name) {
                    defines.push((group_comment, lines));
                }
            }
        }

        let mut out = String::new();
        out.push_str(".\\\" Generated by ckpt-man from the comments of include/ckpt.h.\n");
        out.push_str(".\\\" Do not edit: change the header and run ckpt-man again.\n");
        out.push_str(&format!(
            ".TH {} 3 \"\" \"ckpt {}\" \"ckpt API\"\n",
            roff::literal(&name.to_uppercase()),
            roff::literal(version)
        ));
        out.push_str(".SH NAME\n");
        out.push_str(&format!(
            "{} \\- {}\n",
            roff::literal(name),
            roff::text(&summary)
        ));
        out.push_str(".SH LIBRARY\n");
        self.prose(&mut out, &self.library, &[]);
        out.push_str(".SH SYNOPSIS\n.nf\n");
        out.push_str(".B #include <ckpt.h>\n");
        for (group_comment, lines) in &defines {
            out.push_str(".PP\n");
            out.push_str(&roff::literal(&format!("/* {} */", group_comment.text())));
            out.push('\n');
            for line in lines.iter() {
                out.push_str(&roff::literal(line));
                out.push('\n');
            }
        }
        for s in &structs {
            if let Declaration::Struct { lines, .. } = s {
                out.push_str(".PP\n");
                for line in lines {
                    out.push_str(&roff::literal(line));
                    out.push('\n');
                }
            }
        }
        out.push_str(".PP\n");
        out.push_str(&format!(".B \"{}\"\n", roff::literal(declaration)));
        out.push_str(".fi\n");
        out.push_str(".SH DESCRIPTION\n");
        let owned: Vec<Vec<String>> = paragraphs
            .iter()
            .map(|p| p.iter().map(|l| l.to_string()).collect())
            .collect();
        let body = Comment {
            lines: owned.join(&String::new()),
        };
        self.prose(&mut out, &body, &parameters);
        for s in &structs {
            if let Declaration::Struct {
                comment,
                name: struct_name,
                ..
            } = s
            {
                out.push_str(&format!(".SS struct {}\n", roff::literal(struct_name)));
                self.prose(&mut out, comment, &parameters);
            }
        }
        out.push_str(".SH SEE ALSO\n");
        crate::help_page::see_also_list(&mut out, see_also);
        Ok(out)
    }

    /// A comment's paragraphs as `.PP` text, with its two-space-indented entries as `.TP`
    /// tagged paragraphs; words that are parameter names (upper case in the comment, as
    /// `F` for `f`) in italics.
    fn prose(&self, out: &mut String, comment: &Comment, parameters: &[String]) {
        for paragraph in comment.paragraphs() {
            let mut text: Option<String> = None;
            let mut entry: Option<(String, String)> = None;
            let mut blocks: Vec<(Option<String>, String)> = Vec::new();
            for line in paragraph {
                let indent = line.len() - line.trim_start().len();
                if indent == 2 {
                    if let Some(t) = text.take() {
                        blocks.push((None, t));
                    }
                    if let Some((term, description)) = entry.take() {
                        blocks.push((Some(term), description));
                    }
                    let trimmed = line.trim();
                    let (term, description) = trimmed.split_once("  ").unwrap_or((trimmed, ""));
                    entry = Some((term.to_string(), description.to_string()));
                } else if indent > 2 && entry.is_some() {
                    if let Some((_, description)) = entry.as_mut() {
                        description.push(' ');
                        description.push_str(line.trim());
                    }
                } else {
                    if let Some((term, description)) = entry.take() {
                        blocks.push((Some(term), description));
                    }
                    let t = text.get_or_insert_with(String::new);
                    t.push(' ');
                    t.push_str(line.trim());
                }
            }
            if let Some(t) = text.take() {
                blocks.push((None, t));
            }
            if let Some((term, description)) = entry.take() {
                blocks.push((Some(term), description));
            }
            for (term, body) in blocks {
                let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
                match term {
                    Some(term) => {
                        out.push_str(".TP\n");
                        out.push_str(&format!("\\fB{}\\fR\n", roff::literal(&term)));
                    }
                    None => out.push_str(".PP\n"),
                }
                out.push_str(&italicise(&roff::text(&body), parameters));
                out.push('\n');
            }
        }
    }
}

/// Whether `text` has `word` as a whole word.
fn mentions(text: &str, word: &str) -> bool {
    !word.is_empty()
        && text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == word)
}

/// The parameter names of a one-line declaration, upper-cased as the comments write them:
/// `void ckpt_config(struct ckptconfig *cfg, …)` gives `CFG`, …; a function-pointer
/// parameter `void (*f)(void *)` gives `F`.
fn parameter_names(declaration: &str) -> Vec<String> {
    let Some(open) = declaration.find('(') else {
        return Vec::new();
    };
    let inner = &declaration[open + 1..declaration.rfind(')').unwrap_or(declaration.len())];
    let mut names = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    let mut parameters = Vec::new();
    for c in inner.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parameters.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parameters.push(current);
    let identifiers = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    for parameter in parameters {
        // `void (*f)(void *)`: the name follows `(*`; otherwise it is the last word.
        let name = match parameter.split_once("(*") {
            Some((_, after)) => identifiers(after).into_iter().next(),
            None => identifiers(&parameter).pop(),
        };
        if let Some(name) = name.filter(|name| name != "void") {
            names.push(name.to_uppercase());
        }
    }
    names
}

/// Sets whole words of `roff` (already escaped) that are in `words` in italics.
fn italicise(roff: &str, words: &[String]) -> String {
    let mut out = String::with_capacity(roff.len());
    let mut word = String::new();
    let mut previous = '\0';
    let flush = |word: &mut String, out: &mut String, previous: char| {
        // `\fB` and friends end in a letter that is no word of the text; after a backslash
        // escape the "word" is part of it.
        if !word.is_empty() && previous != '\\' && words.contains(word) {
            out.push_str(&format!("\\fI{word}\\fR"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    let mut before_word = '\0';
    for c in roff.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            if word.is_empty() {
                before_word = previous;
            }
            word.push(c);
        } else {
            flush(&mut word, &mut out, before_word);
            out.push(c);
        }
        previous = c;
    }
    flush(&mut word, &mut out, before_word);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = include_str!("../include/ckpt.h");

    #[test]
    fn one_page_per_function_with_its_summary() {
        let header = parse(HEADER).unwrap();
        let functions = header.functions();
        assert!(functions.contains(&"ckpt_ckpt"), "{functions:?}");
        assert!(functions.contains(&"ckpt_config"), "{functions:?}");
        let pages = header.pages("0.0.0").unwrap();
        assert_eq!(pages.len(), functions.len());
        for page in &pages {
            let text = roff::unescape(&page.text);
            let name = page.name.trim_end_matches(".3");
            assert!(text.contains(&format!("{name} - ")), "{}", page.text);
            assert!(text.contains("#include <ckpt.h>"), "{}", page.text);
        }
        let config = pages.iter().find(|p| p.name == "ckpt_config.3").unwrap();
        let text = roff::unescape(&config.text);
        for word in [
            "struct ckptconfig {",
            "CKPT_MSPERIOD",
            "msperiod",
            "CKPT_MAXNAME",
        ] {
            assert!(
                text.contains(word),
                "{word} missing from ckpt_config.3:\n{text}"
            );
        }
        // Each field of the struct is a term of its own (a field whose description follows
        // its name after one space would swallow the description into the term).
        for field in ["flags", "name", "asyncsig", "continues", "msperiod"] {
            assert!(
                config.text.contains(&format!("\n.TP\n\\fB{field}\\fR\n")),
                "field {field} has no entry in ckpt_config.3:\n{}",
                config.text
            );
        }
        let ckpt = pages.iter().find(|p| p.name == "ckpt_ckpt.3").unwrap();
        assert!(roff::unescape(&ckpt.text).contains("CKPT_CKPT_RESTARTED"));
    }

    /// Every sentence of every function's comment reaches its page.
    #[test]
    fn no_comment_text_is_lost() {
        let header = parse(HEADER).unwrap();
        let pages = header.pages("0.0.0").unwrap();
        for declaration in &header.declarations {
            if let Declaration::Function { comment, name, .. } = declaration {
                let page = pages
                    .iter()
                    .find(|p| p.name == format!("{name}.3"))
                    .unwrap();
                let text = roff::unescape(&page.text)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                for line in comment.lines.iter().skip(1) {
                    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
                    if line.is_ascii() {
                        assert!(text.contains(&line), "{name}.3 lacks {line:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn parameters() {
        assert_eq!(
            parameter_names("void ckpt_on_restart(void (*f)(void *), void *arg);"),
            ["F", "ARG"]
        );
        assert_eq!(
            parameter_names("void ckpt_config(struct ckptconfig *cfg, struct ckptconfig *old);"),
            ["CFG", "OLD"]
        );
        assert_eq!(parameter_names("int ckpt_ckpt(char *name);"), ["NAME"]);
        assert_eq!(
            italicise("with NAME or \\fBNAME\\fR", &["NAME".to_string()]),
            "with \\fINAME\\fR or \\fBNAME\\fR"
        );
    }
}
