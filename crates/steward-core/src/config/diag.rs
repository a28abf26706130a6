//! Config diagnostics: every mistake in a file, each with file:line:col, what is wrong and a hint.
//!
//! Shown like a compiler error, one block per mistake, the first line grep-friendly:
//!
//! ```text
//! /etc/steward.toml:12:1: error: unknown key `restrat` in [programs.web]
//!    12 | restrat = "always"
//!       | ^^^^^^^
//!   hint: did you mean `restart`?
//! ```
//!
//! A [`Severity::Warning`] reads the same with `warning:`: the file is valid and runs, but
//! probably not as meant. Only errors make a config invalid.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Whether a diagnostic makes the config invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The config is refused.
    Error,
    /// The config runs, but likely not as meant.
    Warning,
}

impl Severity {
    /// As the first line shows it: `error`, `warning`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
    /// The text of line `line` (without its line ending), for the snippet. `None` when there
    /// is no source to show, such as for a file that could not be read.
    pub source_line: Option<String>,
    /// How many characters from `col` on the snippet underlines (at least 1).
    pub width: usize,
}

impl Diagnostic {
    /// A diagnostic about a whole file (no snippet), reported at 1:1.
    pub fn whole_file(file: &Path, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            message: message.into(),
            hint: Some(hint.into()),
            source_line: None,
            width: 1,
        }
    }

    /// A diagnostic for the bytes `span` of `src`, with the source line for the snippet.
    /// The underline stops at the end of the first line of the span.
    pub fn at(
        file: &Path,
        src: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let start = floor_char_boundary(src, span.start.min(src.len()));
        let end = floor_char_boundary(src, span.end.clamp(start, src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line_text = src[line_start..line_end].strip_suffix('\r').unwrap_or(&src[line_start..line_end]);
        let line = src[..start].bytes().filter(|b| *b == b'\n').count() + 1;
        // A span at the `\n` of a CRLF line points at the end of the text shown, not one
        // past the `\r` that is not.
        let col = src[line_start..start.min(line_start + line_text.len())].chars().count() + 1;
        let width = src[start..end.min(line_end)].chars().count().max(1);
        Self {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
            hint,
            source_line: Some(line_text.to_owned()),
            width,
        }
    }
}

impl Diagnostic {
    /// The same diagnostic as a warning.
    pub fn warning(self) -> Self {
        Self { severity: Severity::Warning, ..self }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, line, col, severity) = (self.file.display(), self.line, self.col, self.severity.name());
        writeln!(f, "{file}:{line}:{col}: {severity}: {}", self.message)?;
        if let Some(text) = &self.source_line {
            let number = self.line.to_string();
            let gutter = number.len().max(5);
            // Tabs would misalign the caret line, so they are shown as single spaces.
            let shown = text.replace('\t', " ");
            let max_width = shown.chars().count().saturating_sub(self.col - 1).max(1);
            writeln!(f, "{number:>gutter$} | {shown}")?;
            writeln!(
                f,
                "{:gutter$} | {}{}",
                "",
                " ".repeat(self.col - 1),
                "^".repeat(self.width.min(max_width))
            )?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Every mistake found in one config file, sorted by position: the errors that refuse it,
/// with the warnings found beside them; or, for a valid file, its warnings
/// ([`Config::warnings`](super::Config::warnings)).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// The same mistakes (file, line, column, message, hint) without the text of the lines:
    /// what steward's log and API callers get. A config line can hold a secret (a token in
    /// `env`), and the location says where to look; `steward check` shows the lines.
    pub fn located(&self) -> Diagnostics {
        Diagnostics(self.0.iter().map(|d| Diagnostic { source_line: None, ..d.clone() }).collect())
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let errors = self.0.iter().filter(|d| d.is_error()).count();
        let warnings = self.0.len() - errors;
        let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
        let counts = match (errors, warnings) {
            (_, 0) => count(errors, "error"),
            (0, _) => count(warnings, "warning"),
            _ => format!("{} and {}", count(errors, "error"), count(warnings, "warning")),
        };
        match self.0.first() {
            Some(first) => write!(f, "{counts} in {}", first.file.display()),
            None => write!(f, "no errors"),
        }
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[programs.web]\ncommand = \"x\"\nrestrat = \"always\"\n";

    #[test]
    fn position_is_one_based_in_chars() {
        let src = "a = \"é\"\nbé = 1\n";
        let at = src.find("= 1").unwrap();
        let d = Diagnostic::at(Path::new("f.toml"), src, at..at + 1, "m", None);
        assert_eq!((d.line, d.col, d.width), (2, 4, 1));
        assert_eq!(d.source_line.as_deref(), Some("bé = 1"));
    }

    #[test]
    fn renders_like_a_compiler() {
        let at = SRC.find("restrat").unwrap();
        let d = Diagnostic::at(
            Path::new("/abs/steward.toml"),
            SRC,
            at..at + 7,
            "unknown key `restrat` in [programs.web]",
            Some("did you mean `restart`?".into()),
        );
        let shown = Diagnostics(vec![d]).to_string();
        let expected = "/abs/steward.toml:3:1: error: unknown key `restrat` in [programs.web]\n    \
                        3 | restrat = \"always\"\n      | ^^^^^^^\n  hint: did you mean `restart`?\n\
                        1 error in /abs/steward.toml";
        assert_eq!(shown, expected);
    }

    #[test]
    fn counts_errors_and_separates_blocks() {
        let d = Diagnostic::whole_file(Path::new("/x.toml"), "cannot read", "check the path");
        let shown = Diagnostics(vec![d.clone(), d]).to_string();
        assert!(shown.starts_with("/x.toml:1:1: error: cannot read\n  hint: check the path\n\n/x.toml:1:1"));
        assert!(shown.ends_with("2 errors in /x.toml"));
    }

    #[test]
    fn warnings_read_like_errors_and_are_counted_apart() {
        let d = Diagnostic::whole_file(Path::new("/x.toml"), "looks wrong", "change it");
        let w = d.clone().warning();
        assert!(!w.is_error());
        assert_eq!(w.to_string(), "/x.toml:1:1: warning: looks wrong\n  hint: change it\n");
        assert!(Diagnostics(vec![w.clone()]).to_string().ends_with("\n1 warning in /x.toml"));
        let both = Diagnostics(vec![d, w.clone(), w]).to_string();
        assert!(both.ends_with("\n1 error and 2 warnings in /x.toml"), "{both}");
    }

    #[test]
    fn located_keeps_where_and_what_but_not_the_line() {
        let at = SRC.find("restrat").unwrap();
        let d = Diagnostic::at(
            Path::new("/abs/steward.toml"),
            SRC,
            at..at + 7,
            "unknown key",
            Some("a hint".into()),
        );
        let shown = Diagnostics(vec![d]).located().to_string();
        assert_eq!(
            shown,
            "/abs/steward.toml:3:1: error: unknown key\n  hint: a hint\n1 error in /abs/steward.toml"
        );
    }

    #[test]
    fn multi_line_spans_underline_to_the_end_of_the_line() {
        let src = "x = \"\"\"\nabc\"\"\"\n";
        let d = Diagnostic::at(Path::new("f"), src, 4..src.len() - 1, "m", None);
        assert_eq!((d.line, d.col, d.width), (1, 5, 3));
    }

    #[test]
    fn a_span_at_a_crlf_points_at_the_end_of_the_line_shown() {
        // TOML reports an unclosed string on a CRLF line at its `\n`; the `\r` before it
        // is not shown, so the column must not count it (found by fuzzing).
        let src = "[programs.web]\r\ncwd = \"we\r\n";
        let at = src.len() - 1;
        let d = Diagnostic::at(Path::new("f"), src, at..at + 1, "m", None);
        assert_eq!(d.source_line.as_deref(), Some("cwd = \"we"));
        assert_eq!((d.line, d.col, d.width), (2, 10, 1));
        let shown = d.to_string();
        assert!(shown.contains("  2 | cwd = \"we\n      |          ^\n"), "{shown}");
    }
}
