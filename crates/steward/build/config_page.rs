//! steward.toml(5): docs/config.md, the config reference, turned into a man page, by the
//! build script (so the markdown parser and its tables stay out of the binary, which only
//! fills in the version and the date: `cli/man.rs`).
//!
//! The markdown is parsed with pulldown-cmark and written with the roff crate (which escapes
//! text, so no character of the docs can turn into a roff request). What the reference uses
//! maps onto the man macros: `##` to `.SH`, `###` to `.SS`, paragraphs to `.PP`, lists to
//! `.IP`, code blocks to indented no-fill text, and each row of a table to a `.TP` entry
//! (the key as its tag, the other cells as "type: ..; default: ..; example: .."), since a
//! table (tbl) does not fit an 80-column terminal with these examples in it.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use roff::{bold, italic, line_break, roman, Inline, Roff};

/// Stand-ins in the page's header for what only the binary knows; `cli/man.rs` has the same.
pub const VERSION: &str = "@STEWARD_VERSION@";
pub const DATE: &str = "@PAGE_DATE@";
pub const MANUAL: &str = "steward manual";

/// The roff source of steward.toml(5) from the markdown of the config reference, with
/// [`VERSION`] and [`DATE`] in its header.
pub fn render(config_md: &str) -> String {
    let mut page = Roff::new();
    page.control("TH", ["steward.toml", "5", DATE, &format!("steward {VERSION}"), MANUAL]);
    // Key names such as `restart_max_delay` must not be split across lines.
    page.control("nh", []).control("ad", ["l"]);
    page.control("SH", ["NAME"]).text([roman("steward.toml - the config file of steward")]);
    page.control("SH", ["DESCRIPTION"]);
    Writer::new(&mut page).convert(config_md);
    page.control("SH", ["SEE ALSO"]).text([
        bold("steward"),
        roman("(1), "),
        bold("steward-check"),
        roman("(1)"),
    ]);
    page.render()
}

/// A table being read: its header cells (as plain text) and its rows (as inlines).
#[derive(Default)]
struct Table {
    header: Vec<String>,
    in_header: bool,
    row: Vec<Vec<Inline>>,
}

/// The state of one conversion: the inlines of the paragraph (or cell) being read, the text
/// of a heading or code block being read, and how deep in styles and lists we are.
struct Writer<'r> {
    roff: &'r mut Roff,
    inlines: Vec<Inline>,
    /// Plain text of the heading being read.
    heading: Option<String>,
    /// Text of the code block being read.
    code: Option<String>,
    bold: usize,
    italic: usize,
    /// One entry per open list: the next number of an ordered list, `None` for bullets.
    lists: Vec<Option<u64>>,
    /// Whether the next paragraph is the first block of a list item (its `.IP` is out).
    item_start: bool,
    /// Links open: their destination.
    links: Vec<String>,
    table: Option<Table>,
}

impl<'r> Writer<'r> {
    fn new(roff: &'r mut Roff) -> Self {
        Writer {
            roff,
            inlines: Vec::new(),
            heading: None,
            code: None,
            bold: 0,
            italic: 0,
            lists: Vec::new(),
            item_start: false,
            links: Vec::new(),
            table: None,
        }
    }

    fn convert(mut self, markdown: &str) {
        for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
            self.event(event);
        }
        self.flush();
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.text(&text),
            Event::Code(code) => match &mut self.heading {
                Some(heading) => heading.push_str(&code),
                None => self.inlines.push(bold(ascii(&code))),
            },
            Event::SoftBreak => self.text(" "),
            Event::HardBreak => self.inlines.push(line_break()),
            // No HTML, footnotes, rules or math in the reference; nothing to show for them.
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { .. } => {
                self.flush();
                self.heading = Some(String::new());
            }
            Tag::Paragraph => {
                self.flush();
                if self.lists.is_empty() {
                    self.roff.control("PP", []);
                } else if !std::mem::take(&mut self.item_start) {
                    // A second paragraph of a list item: indented like the first, no bullet.
                    self.roff.control("IP", ["", "2"]);
                }
            }
            Tag::CodeBlock(_) => {
                self.flush();
                if self.lists.is_empty() {
                    self.roff.control("PP", []);
                }
                self.item_start = false;
                self.code = Some(String::new());
            }
            Tag::List(first) => {
                self.flush();
                if !self.lists.is_empty() {
                    self.roff.control("RS", ["2"]);
                }
                self.lists.push(first);
            }
            Tag::Item => {
                self.flush();
                let tag = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}.", *n - 1)
                    }
                    _ => "\\(bu".to_owned(),
                };
                self.roff.control("IP", [tag.as_str(), "2"]);
                self.item_start = true;
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.roff.control("RS", ["4"]);
            }
            Tag::Table(_) => {
                self.flush();
                self.table = Some(Table::default());
            }
            Tag::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_header = true;
                }
            }
            Tag::TableRow => {
                if let Some(t) = &mut self.table {
                    t.row.clear();
                }
            }
            Tag::TableCell => self.inlines.clear(),
            Tag::Strong => self.bold += 1,
            Tag::Emphasis => self.italic += 1,
            Tag::Link { dest_url, .. } => self.links.push(dest_url.into_string()),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(level) => {
                let text = ascii(&self.heading.take().unwrap_or_default());
                match level {
                    // The title: the page has its own NAME.
                    HeadingLevel::H1 => {}
                    HeadingLevel::H2 => {
                        self.roff.control("SH", [text.as_str()]);
                    }
                    _ => {
                        self.roff.control("SS", [text.as_str()]);
                    }
                }
            }
            TagEnd::Paragraph => self.flush(),
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                self.roff.control("RS", ["4"]).control("nf", []);
                for line in code.trim_end_matches('\n').lines() {
                    if line.is_empty() {
                        self.roff.control("sp", []);
                    } else {
                        self.roff.text([roman(ascii(line))]);
                    }
                }
                self.roff.control("fi", []).control("RE", []);
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                if !self.lists.is_empty() {
                    self.roff.control("RE", []);
                }
            }
            TagEnd::Item => self.flush(),
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.roff.control("RE", []);
            }
            TagEnd::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_header = false;
                }
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.inlines);
                if let Some(t) = &mut self.table {
                    if t.in_header {
                        t.header.push(plain(&cell));
                    } else {
                        t.row.push(cell);
                    }
                }
            }
            TagEnd::TableRow => {
                if let Some(t) = &self.table {
                    table_row(self.roff, &t.header, &t.row);
                }
            }
            TagEnd::Table => self.table = None,
            TagEnd::Strong => self.bold = self.bold.saturating_sub(1),
            TagEnd::Emphasis => self.italic = self.italic.saturating_sub(1),
            TagEnd::Link => {
                // A link to another page of the docs or the web keeps its target beside the
                // text; one to a section of this page (`#restarts`) is just its text.
                let url = self.links.pop().unwrap_or_default();
                let text = plain(&self.inlines);
                if !url.starts_with('#') && !text.ends_with(&url) {
                    self.inlines.push(roman(format!(" ({url})")));
                }
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(heading) = &mut self.heading {
            heading.push_str(text);
        } else if let Some(code) = &mut self.code {
            code.push_str(text);
        } else if self.bold > 0 {
            self.inlines.push(bold(ascii(text)));
        } else if self.italic > 0 {
            self.inlines.push(italic(ascii(text)));
        } else {
            self.inlines.push(roman(ascii(text)));
        }
    }

    /// Writes the inlines read so far as one text line.
    fn flush(&mut self) {
        if !self.inlines.is_empty() {
            self.roff.text(std::mem::take(&mut self.inlines));
        }
    }
}

/// One table row as a `.TP` entry: the first cell as the tag; below it the other cells, each
/// named by its column ("type: path; default: none") when there are more than one.
fn table_row(roff: &mut Roff, header: &[String], row: &[Vec<Inline>]) {
    let Some((tag, cells)) = row.split_first() else { return };
    roff.control("TP", []).text(tag.clone());
    let mut body = Vec::new();
    for (i, cell) in cells.iter().enumerate().filter(|(_, c)| !plain(c).trim().is_empty()) {
        if cells.len() > 1 {
            if !body.is_empty() {
                body.push(roman("; "));
            }
            let column = header.get(i + 1).map_or("", String::as_str);
            body.push(roman(format!("{column}: ")));
        }
        body.extend(cell.iter().cloned());
    }
    if !body.is_empty() {
        roff.text(body);
    }
}

/// The text of `inlines`, without styles.
fn plain(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Roman(t) | Inline::Bold(t) | Inline::Italic(t) => t.as_str(),
            Inline::LineBreak => " ",
        })
        .collect()
}

/// The few non-ASCII characters of the docs in ASCII, so that the page reads the same under
/// any man implementation and locale.
fn ascii(text: &str) -> String {
    text.replace('\u{2265}', ">=")
        .replace('\u{2264}', "<=")
        .replace(['\u{2013}', '\u{2014}'], "-")
        .replace('\u{2192}', "->")
        .replace('\u{00a0}', " ")
}
