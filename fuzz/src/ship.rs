//! Log shipping's readers of outside bytes: a log line read as a CRI record, a cursor file,
//! a sink's URL, and the plan that splits a refused batch.
//!
//! The input: a selector byte, then the text (or, for the plan, the receiver's answers).
//!
//! What must hold:
//! - a line read as a CRI record is written back, prefix and content, as a line that reads
//!   the same; its time is not before 1970;
//! - a cursor file that reads is written back as the same cursor;
//! - a URL that parses names a host and a port, and an HTTP sink's path starts with `/`;
//! - whatever the answers, a batch's plan ends (bounded steps) with every line either
//!   delivered or dead-lettered exactly once, and the delivered ones in their order.

use steward_core::config::{ShipEndpoint, SinkKind};
use steward_core::ship::cri;
use steward_core::ship::cursor::Cursor;
use steward_core::ship::verdict::{Plan, Verdict};

use crate::Bytes;

pub fn check(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    match bytes.u8() % 4 {
        0 => record(bytes.rest()),
        1 => cursor(bytes.rest()),
        2 => url(bytes.u8(), bytes.rest()),
        _ => plan(&mut bytes),
    }
}

fn record(line: &[u8]) {
    for line in line.split(|&b| b == b'\n') {
        let Some(r) = cri::parse(line) else { continue };
        assert!(r.at >= 0, "a time before 1970: {}", r.at);
        let Ok(stream) = std::str::from_utf8(r.stream) else { continue };
        let mut again = Vec::new();
        cri::write_prefix(&mut again, r.at, stream, r.tag);
        again.extend_from_slice(r.content);
        let back = cri::parse(&again).expect("what was written reads back");
        assert_eq!((back.at, back.stream, back.tag, back.content), (r.at, r.stream, r.tag, r.content));
    }
}

fn cursor(text: &[u8]) {
    if let Ok(c) = Cursor::from_json(text) {
        assert_eq!(Cursor::from_json(&c.to_json()), Ok(c));
    }
}

fn url(kind: u8, text: &[u8]) {
    let kind = [SinkKind::Loki, SinkKind::Otlp, SinkKind::Elasticsearch, SinkKind::Syslog][usize::from(kind % 4)];
    let Ok(text) = std::str::from_utf8(text) else { return };
    if let Ok(e) = ShipEndpoint::parse(kind, text) {
        assert!(!e.host.is_empty() && e.port > 0, "{e:?}");
        assert!(kind == SinkKind::Syslog || e.path.starts_with('/'), "{e:?}");
        assert!(!e.authority().is_empty());
    }
}

fn plan(bytes: &mut Bytes) {
    let lines = usize::from(bytes.u8() % 64);
    let mut plan = Plan::new(lines);
    let mut delivered = Vec::new();
    let mut dead = Vec::new();
    // Each step an answer; a part is never retried more than a few times in a row, as the
    // bytes run out the answers become "delivered".
    let mut steps = 0;
    while let Some(part) = plan.current() {
        let part = part.to_vec();
        steps += 1;
        assert!(steps < 10_000, "the plan does not end");
        let verdict = match bytes.u8() % 5 {
            0 if !bytes.is_empty() => Verdict::Refused,
            1 if !bytes.is_empty() => Verdict::Retry { after: None },
            2 if !bytes.is_empty() => {
                let mask = bytes.u64();
                let refused = (0..part.len()).filter(|i| mask >> (i % 64) & 1 == 1).collect();
                let retry = (0..part.len()).filter(|i| mask >> ((i + 32) % 64) & 1 == 1 && mask >> (i % 64) & 1 == 0).collect();
                Verdict::Items { refused, retry }
            }
            _ => Verdict::Delivered,
        };
        match &verdict {
            Verdict::Delivered => delivered.extend(part.iter().copied()),
            Verdict::Items { refused, retry } => {
                delivered.extend((0..part.len()).filter(|i| !refused.contains(i) && !retry.contains(i)).map(|i| part[i]))
            }
            _ => {}
        }
        plan.apply(&verdict);
        dead.extend(plan.take_dead());
    }
    let mut all: Vec<usize> = delivered.iter().chain(&dead).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..lines).collect::<Vec<_>>(), "every line delivered or dead, once");
}
