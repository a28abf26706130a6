//! Log shipping, the pure part: where a sink is in a stream ([`cursor`]), the timestamped
//! line format ([`cri`]), what a receiver's answer means and how a refused batch is split
//! ([`verdict`]), and the names a line carries ([`line_id`], [`loki_labels`]).
//!
//! The runtime (`ship` in the steward crate) reads the files, talks to the receivers and
//! keeps the time; it asks these functions what to do.

pub mod cri;
pub mod cursor;
pub mod verdict;

use sha2::{Digest, Sha256};

use crate::rotation::Stamp;

/// A line's id, the same every time the line is sent: 32 hex digits, the first 16 from a
/// SHA-256 over the host, the stream (`web.out`), the cursor's epoch and the file the line is
/// in (named by the stamp before it, see [`cursor`]), the last 16 the line's offset in that
/// file. Elasticsearch's `_id` and OTLP's `log.record.uid`: a line sent twice is then stored
/// once. [`LineIds`] hashes once per file, not once per line.
pub fn line_id(host: &str, stream: &str, epoch: u64, after: Option<Stamp>, offset: u64) -> String {
    LineIds::new(host, stream, epoch, after).id(offset)
}

/// The ids of the lines of one file: [`line_id`] with the hash done once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineIds {
    file: u64,
}

impl LineIds {
    pub fn new(host: &str, stream: &str, epoch: u64, after: Option<Stamp>) -> LineIds {
        let mut hash = Sha256::new();
        for part in [host.as_bytes(), b"\0", stream.as_bytes(), b"\0"] {
            hash.update(part);
        }
        hash.update(epoch.to_le_bytes());
        hash.update(after.map_or(u64::MAX, |s| s.millis).to_le_bytes());
        let digest = hash.finalize();
        let mut file = [0u8; 8];
        file.copy_from_slice(&digest[..8]);
        LineIds { file: u64::from_be_bytes(file) }
    }

    /// The id of the line at `offset`.
    pub fn id(&self, offset: u64) -> String {
        format!("{:016x}{offset:016x}", self.file)
    }
}

/// A Loki stream selector, `{host="a", program="web"}`, from label pairs (sorted by name, as
/// Loki sorts them). Values are escaped as Prometheus requires (`\\`, `\"`, `\n`).
pub fn loki_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = labels.into_iter().collect();
    pairs.sort_unstable();
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Whether `name` may be a label name in Loki and Prometheus: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_tell_lines_apart() {
        let id = line_id("h", "web.out", 1, None, 0);
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id, line_id("h", "web.out", 1, None, 0));
        let others = [
            line_id("h2", "web.out", 1, None, 0),
            line_id("h", "web.err", 1, None, 0),
            line_id("h", "web.out", 2, None, 0),
            line_id("h", "web.out", 1, Some(Stamp { millis: 5 }), 0),
            line_id("h", "web.out", 1, None, 1),
            line_id("", "hweb.out", 1, None, 0),
        ];
        for other in &others {
            assert_ne!(&id, other);
        }
    }

    #[test]
    fn labels_are_sorted_and_escaped() {
        assert_eq!(loki_labels([("program", "web"), ("host", "a")]), r#"{host="a", program="web"}"#);
        assert_eq!(loki_labels([("x", "say \"hi\"\\\n")]), r#"{x="say \"hi\"\\\n"}"#);
        assert_eq!(loki_labels([]), "{}");
    }

    #[test]
    fn label_names() {
        assert!(valid_label_name("env") && valid_label_name("_a1"));
        assert!(
            !valid_label_name("")
                && !valid_label_name("1a")
                && !valid_label_name("a-b")
                && !valid_label_name("é")
        );
    }
}
