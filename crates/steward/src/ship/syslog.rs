//! Syslog: RFC 5424 messages over TCP, framed by octet counting (RFC 6587, section 3.4.1), the
//! framing RFC 5425 prescribes over TLS too (TLS is the transport's job).
//!
//! ```text
//! 97 <14>1 2026-12-04T16:41:49.123456Z h1 web 4242 stdout [steward@32473 instance="3" env="prod"] the line
//! ```
//!
//! Facility `user`; severity informational for stdout and error for stderr. The program is
//! APP-NAME, its pid PROCID, the stream MSGID; the instance and the sink's static labels are
//! structured data.
//!
//! No BOM before the text, though RFC 5424 asks for one before a UTF-8 MSG: rsyslog keeps it
//! as part of the message (rsyslog issue #284, open since 2015), so it shows up as `ï»¿` in
//! files and breaks a JSON line for every parser after it. Without it the MSG is MSG-ANY,
//! which RFC 5424 allows; receivers take it as UTF-8 all the same.

use steward_core::config::ShipSpec;
use steward_core::ship::cri::write_time;

use super::batch::{Batch, Stream};

/// The structured data element steward writes. 32473 is the enterprise number RFC 5612
/// reserves for examples.
const SD_ID: &str = "steward@32473";

/// Facility `user` (1), times 8 as PRI wants it.
const FACILITY_USER: u8 = 8;
/// Severities: informational (6) for stdout, error (3) for stderr.
const INFORMATIONAL: u8 = 6;
const ERROR: u8 = 3;

/// The frames for the lines `part` (indices into `batch.lines`) of `batch`, one after the
/// other: each `LEN SP MSG`, LEN the byte length of MSG in decimal.
pub fn encode(spec: &ShipSpec, batch: &Batch, part: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut message = Vec::new();
    for line in part.iter().filter_map(|&i| batch.lines.get(i)) {
        let Some(origin) = batch.origins.get(line.origin) else { continue };
        message.clear();
        let severity = match origin.stream {
            Stream::Out => INFORMATIONAL,
            Stream::Err => ERROR,
        };
        message.extend_from_slice(format!("<{}>1 ", FACILITY_USER + severity).as_bytes());
        write_timestamp(&mut message, line.at);
        let pid = origin.pid.map(|p| p.to_string());
        for (value, max) in [
            (origin.host.as_str(), 255),
            (origin.program.as_str(), 48),
            (pid.as_deref().unwrap_or("-"), 128),
            (origin.stream.name(), 32),
        ] {
            message.push(b' ');
            message.extend_from_slice(header_field(value, max).as_bytes());
        }
        message.push(b' ');
        let instance = origin.instance.map(|i| i.to_string());
        let params = instance
            .as_deref()
            .map(|i| ("instance", i))
            .into_iter()
            .chain(spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        write_structured_data(&mut message, params);
        if !line.text.is_empty() {
            message.push(b' ');
            message.extend_from_slice(String::from_utf8_lossy(&line.text).as_bytes());
        }
        out.extend_from_slice(message.len().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(&message);
    }
    out
}

/// `at` as RFC 3339 in UTC with microseconds: TIME-SECFRAC allows at most six digits.
fn write_timestamp(out: &mut Vec<u8>, at: i64) {
    let start = out.len();
    // `2026-12-04T16:41:49.123456789Z`: keep up to the sixth fraction digit.
    write_time(out, at);
    out.truncate(start + "2026-12-04T16:41:49.123456".len());
    out.push(b'Z');
}

/// A header field: PRINTUSASCII (33..=126) only, others replaced by `_`, at most `max`
/// characters, `-` (the nil value) when empty.
fn header_field(value: &str, max: usize) -> String {
    let field: String =
        value.chars().take(max).map(|c| if matches!(c, '!'..='~') { c } else { '_' }).collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// `[steward@32473 name="value" ...]`, or `-` without params. Names are PRINTUSASCII but
/// `=`, space, `]` and `"` (others become `_`), at most 32; a name left empty is skipped.
/// Values escape `"`, `\` and `]` with a backslash, as RFC 5424 requires.
fn write_structured_data<'a>(out: &mut Vec<u8>, params: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut element = format!("[{SD_ID}");
    let mut any = false;
    for (name, value) in params {
        let name: String = name
            .chars()
            .take(32)
            .map(|c| if matches!(c, '!'..='~') && !matches!(c, '=' | ']' | '"') { c } else { '_' })
            .collect();
        if name.is_empty() {
            continue;
        }
        any = true;
        element.push(' ');
        element.push_str(&name);
        element.push_str("=\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | ']') {
                element.push('\\');
            }
            element.push(c);
        }
        element.push('"');
    }
    element.push(']');
    out.extend_from_slice(if any { element.as_bytes() } else { b"-" });
}

#[cfg(test)]
mod tests {

    use steward_core::config::SinkKind;

    use super::*;
    use crate::ship::batch::{Line, Origin};

    fn spec(labels: &[(&str, &str)]) -> ShipSpec {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ShipSpec { labels, ..crate::ship::batch::test_spec(SinkKind::Syslog, "tcp://logs:514") }
    }

    fn origin(host: &str, program: &str, instance: Option<u32>, stream: Stream, pid: Option<u32>) -> Origin {
        Origin { host: host.into(), program: program.into(), instance, stream, path: String::new(), pid }
    }

    fn line(origin: usize, at: i64, text: &[u8]) -> Line {
        Line { origin, at, observed: at, text: text.to_vec(), id: String::new() }
    }

    /// The frames of `bytes`, split by their octet counts.
    fn frames(mut bytes: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let space = bytes.iter().position(|&b| b == b' ').expect("LEN SP");
            let len: usize = std::str::from_utf8(&bytes[..space]).unwrap().parse().expect("a decimal LEN");
            assert!(!bytes[..space].starts_with(b"0"), "no leading zero");
            let message = &bytes[space + 1..space + 1 + len];
            out.push(message);
            bytes = &bytes[space + 1 + len..];
        }
        out
    }

    /// One message read back: PRI, version, the four header fields and the timestamp,
    /// structured data and MSG.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        pri: u8,
        timestamp: String,
        host: String,
        app: String,
        procid: String,
        msgid: String,
        sd: String,
        msg: Option<Vec<u8>>,
    }

    fn parse(message: &[u8]) -> Parsed {
        let (head, rest) = message.split_at(message.iter().position(|&b| b == b'>').unwrap() + 1);
        let pri: u8 = std::str::from_utf8(&head[1..head.len() - 1]).unwrap().parse().unwrap();
        assert_eq!(head[0], b'<');
        let mut fields = rest.splitn(7, |&b| b == b' ');
        let mut field = || String::from_utf8(fields.next().unwrap().to_vec()).unwrap();
        assert_eq!(field(), "1", "version");
        let (timestamp, host, app, procid, msgid) = (field(), field(), field(), field(), field());
        let rest = fields.next().unwrap();
        // The structured data ends at the first `]` not escaped, or is `-`.
        let sd_len = if rest.starts_with(b"-") {
            1
        } else {
            let mut escaped = false;
            1 + rest
                .iter()
                .position(|&b| {
                    let end = b == b']' && !escaped;
                    escaped = b == b'\\' && !escaped;
                    end
                })
                .unwrap()
        };
        let sd = String::from_utf8(rest[..sd_len].to_vec()).unwrap();
        let msg = match &rest[sd_len..] {
            [] => None,
            [b' ', msg @ ..] => Some(msg.to_vec()),
            other => panic!("no space before MSG: {other:?}"),
        };
        Parsed { pri, timestamp, host, app, procid, msgid, sd, msg }
    }

    #[test]
    fn every_field() {
        let batch = Batch {
            origins: vec![
                origin("h1", "web", Some(3), Stream::Out, Some(4242)),
                origin("h1", "web", None, Stream::Err, None),
            ],
            lines: vec![
                line(0, 1_700_000_000_123_456_789, b"hello world"),
                line(1, 1_700_000_001_000_000_000, b""),
            ],
        };
        let bytes = encode(&spec(&[("env", "prod")]), &batch, &[0, 1]);
        let frames = frames(&bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            parse(frames[0]),
            Parsed {
                pri: 14,
                timestamp: "2023-11-14T22:13:20.123456Z".into(),
                host: "h1".into(),
                app: "web".into(),
                procid: "4242".into(),
                msgid: "stdout".into(),
                sd: r#"[steward@32473 instance="3" env="prod"]"#.into(),
                msg: Some(b"hello world".to_vec()),
            }
        );
        assert_eq!(
            std::str::from_utf8(frames[0]).unwrap(),
            r#"<14>1 2023-11-14T22:13:20.123456Z h1 web 4242 stdout [steward@32473 instance="3" env="prod"] hello world"#
        );
        let err = parse(frames[1]);
        assert_eq!((err.pri, err.procid.as_str(), err.msgid.as_str()), (11, "-", "stderr"));
        assert_eq!(err.timestamp, "2023-11-14T22:13:21.000000Z");
        assert_eq!(err.sd, r#"[steward@32473 env="prod"]"#);
        assert_eq!(err.msg, None, "an empty line has no MSG");
    }

    #[test]
    fn no_params_is_nil_and_parts_keep_their_order() {
        let batch = Batch {
            origins: vec![origin("h", "w", None, Stream::Out, None)],
            lines: vec![line(0, 0, b"a"), line(0, 1_000, b"b")],
        };
        let bytes = encode(&spec(&[]), &batch, &[1, 0]);
        let frames = frames(&bytes);
        let parsed: Vec<Parsed> = frames.iter().map(|f| parse(f)).collect();
        assert_eq!(parsed[0].sd, "-");
        assert_eq!(parsed[0].msg.as_deref(), Some(&b"b"[..]));
        assert_eq!(parsed[0].timestamp, "1970-01-01T00:00:00.000001Z");
        assert_eq!(parsed[1].msg.as_deref(), Some(&b"a"[..]));
        assert!(encode(&spec(&[]), &batch, &[]).is_empty());
    }

    #[test]
    fn octet_counts_are_bytes_with_multibyte_and_invalid_text() {
        let batch = Batch {
            origins: vec![origin("h", "w", None, Stream::Out, None)],
            lines: vec![line(0, 0, "größe ✓ 🚀".as_bytes()), line(0, 0, b"x\xffy\r\n z")],
        };
        let bytes = encode(&spec(&[]), &batch, &[0, 1]);
        let frames = frames(&bytes);
        assert_eq!(frames.len(), 2, "the counts cover every byte");
        assert_eq!(parse(frames[0]).msg.unwrap(), "größe ✓ 🚀".as_bytes());
        assert_eq!(parse(frames[1]).msg.unwrap(), "x\u{fffd}y\r\n z".as_bytes());
        let header = b"<14>1 1970-01-01T00:00:00.000000Z h w - stdout - ";
        assert!(
            bytes.starts_with(format!("{} <", header.len() + "größe ✓ 🚀".len()).as_bytes()),
            "LEN in bytes"
        );
        assert!(
            !bytes.starts_with(b"\xef\xbb\xbf") && !frames[0].windows(3).any(|w| w == b"\xef\xbb\xbf"),
            "no BOM"
        );
    }

    #[test]
    fn header_fields_are_printable_ascii_and_bounded() {
        let long = "p".repeat(60);
        let batch = Batch {
            origins: vec![
                origin("my host\u{e9}", &long, None, Stream::Out, None),
                origin("", "", None, Stream::Out, None),
            ],
            lines: vec![line(0, 0, b"m"), line(1, 0, b"m")],
        };
        let bytes = encode(&spec(&[]), &batch, &[0, 1]);
        let frames = frames(&bytes);
        let first = parse(frames[0]);
        assert_eq!(first.host, "my_host_");
        assert_eq!(first.app, "p".repeat(48));
        let second = parse(frames[1]);
        assert_eq!((second.host.as_str(), second.app.as_str()), ("-", "-"));
        assert_eq!(header_field(&"h".repeat(300), 255).len(), 255);
        assert_eq!(header_field("a\tb\u{7f}c", 32), "a_b_c");
    }

    #[test]
    fn structured_data_is_escaped() {
        let batch =
            Batch { origins: vec![origin("h", "w", None, Stream::Out, None)], lines: vec![line(0, 0, b"m")] };
        let bytes = encode(&spec(&[("q", r#"say "hi" \o/ [x]"#), ("a=b c]", "v")]), &batch, &[0]);
        let parsed = parse(frames(&bytes)[0]);
        assert_eq!(parsed.sd, r#"[steward@32473 a_b_c_="v" q="say \"hi\" \\o/ [x\]"]"#);
        assert_eq!(parsed.msg.as_deref(), Some(&b"m"[..]));

        let mut out = Vec::new();
        write_structured_data(&mut out, [("n".repeat(40).as_str(), "é")].into_iter());
        assert_eq!(String::from_utf8(out).unwrap(), format!("[steward@32473 {}=\"é\"]", "n".repeat(32)));
    }
}
