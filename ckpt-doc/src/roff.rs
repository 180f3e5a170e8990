//! Plain text to roff: escaping, and the fonts of command-line terms. Everything the pages
//! say comes from the sources; this module only decides how it is set.

/// `text` escaped for a roff text line: backslashes, hyphens as `\-` (option dashes that
/// copy and paste as ASCII), quotes as the ASCII characters, anything beyond ASCII as a
/// `\[uXXXX]` escape (so the page needs no input encoding), and `` `code` `` spans in bold.
/// The result never starts with a control character.
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_code = false;
    for (i, c) in text.char_indices() {
        let word_start = i == 0 || text[..i].ends_with(char::is_whitespace);
        if word_start && !c.is_whitespace() && !unbreakable_word(&text[i..]).is_empty() {
            // Names, paths and options must not be hyphenated (`CKPT_CON-TINUE`).
            out.push_str("\\%");
        }
        match c {
            '`' if in_code => {
                out.push_str("\\fR");
                in_code = false;
            }
            // A backquote opens a code span only when another one closes it.
            '`' if text[i + 1..].contains('`') => {
                out.push_str("\\fB");
                in_code = true;
            }
            _ => escape_char(c, &mut out),
        }
    }
    if in_code {
        out.push_str("\\fR");
    }
    guard_line_start(out)
}

/// The word `text` starts with, if it is one hyphenation must not break: one holding
/// `_`, `-`, `.`, `/` or `=` (a variable, an option, a file name, `NAME=VALUE`); else "".
fn unbreakable_word(text: &str) -> &str {
    let word = text.split(char::is_whitespace).next().unwrap_or_default();
    if word.contains(['_', '-', '.', '/', '=']) {
        word
    } else {
        ""
    }
}

/// Text set literally (a declaration in a SYNOPSIS): escaped like [`text`], backquotes
/// kept as they are.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        escape_char(c, &mut out);
    }
    guard_line_start(out)
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '\\' => out.push_str("\\e"),
        '-' => out.push_str("\\-"),
        '\'' => out.push_str("\\(aq"),
        '`' => out.push_str("\\(ga"),
        '"' => out.push_str("\\(dq"),
        c if c.is_ascii() => out.push(c),
        c => out.push_str(&format!("\\[u{:04X}]", u32::from(c))),
    }
}

/// A line starting with `.` or `'` would be a request: `\&` (a zero-width character) makes
/// it text.
fn guard_line_start(line: String) -> String {
    if line.starts_with(['.', '\'']) {
        format!("\\&{line}")
    } else {
        line
    }
}

/// A command-line term (`-n NAME`, `info FILE [--json]`, `CKPT_COMPRESS=code|lz4|0`) in the
/// fonts man pages use: what is typed as it stands in bold (options, variable names, literal
/// words such as subcommands and values), what stands for something else in italics
/// (upper-case metavariables: NAME, PROG, SIZE), punctuation in roman.
pub fn term(term: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = term.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_word = c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if !starts_word {
            escape_char(c, &mut out);
            i += 1;
            continue;
        }
        // An option runs on through `=value` (`--resume=fresh-if-damaged`).
        let option = c == '-';
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric()
                || chars[i] == '_'
                || chars[i] == '-'
                || (option && chars[i] == '='))
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let font = if option || word.contains('_') || word.chars().any(|c| c.is_ascii_lowercase()) {
            "B"
        } else if word.chars().any(|c| c.is_ascii_uppercase()) {
            "I"
        } else {
            ""
        };
        let mut escaped = String::new();
        for c in word.chars() {
            escape_char(c, &mut escaped);
        }
        if font.is_empty() {
            out.push_str(&escaped);
        } else {
            out.push_str(&format!("\\f{font}{escaped}\\fR"));
        }
    }
    guard_line_start(out)
}

/// Undoes the escapes of this module, for tests that look for words in a page.
#[cfg(test)]
pub fn unescape(roff: &str) -> String {
    roff.replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\&", "")
        .replace("\\%", "")
        .replace("\\-", "-")
        .replace("\\(aq", "'")
        .replace("\\(ga", "`")
        .replace("\\(dq", "\"")
        .replace("\\e", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(text("a-b \\ 'c'"), "\\%a\\-b \\e \\(aqc\\(aq");
        assert_eq!(text(".ckpt is it"), "\\%.ckpt is it");
        assert_eq!(
            text("run `kill -TSTP PID` now"),
            "run \\fBkill \\%\\-TSTP PID\\fR now"
        );
        assert_eq!(text("a lone ` stays"), "a lone \\(ga stays");
        assert_eq!(text("x \u{2014} y"), "x \\[u2014] y");
    }

    #[test]
    fn term_fonts() {
        assert_eq!(term("-n NAME"), "\\fB\\-n\\fR \\fINAME\\fR");
        assert_eq!(
            term("--resume=fresh-if-damaged"),
            "\\fB\\-\\-resume=fresh\\-if\\-damaged\\fR"
        );
        assert_eq!(
            term("CKPT_FD_POLICY=refuse|close"),
            "\\fBCKPT_FD_POLICY\\fR=\\fBrefuse\\fR|\\fBclose\\fR"
        );
        assert_eq!(term("info FILE"), "\\fBinfo\\fR \\fIFILE\\fR");
    }
}
