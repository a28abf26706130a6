//! The line framer that cuts a program's output into whole lines (`logs::pump`).
//!
//! The input: a buffer size (1 to 256 bytes, small so that long lines happen), then the
//! stream, cut into reads whose sizes come from the stream's own bytes.
//!
//! What must hold: the pieces handed out, then the ending, are the stream byte for byte
//! with a `\n` added if it did not end in one; a piece ends in `\n` unless it filled the
//! whole buffer; nothing that fits in the buffer is handed out before its line ends; an
//! `EndLine` ending comes only after a piece that did not end its line.

use steward_core::framing::{Ending, LineFramer};

use crate::Bytes;

pub fn check(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let capacity = usize::from(bytes.u8()) + 1;
    let seed = bytes.u8();
    let stream = bytes.rest();

    let mut framer = LineFramer::new(capacity);
    let mut out: Vec<u8> = Vec::with_capacity(stream.len() + 1);
    let mut fed = 0;
    let mut step = 0usize;
    while fed < stream.len() {
        let space = framer.space();
        assert!(!space.is_empty(), "no room to read into");
        // Read sizes from 1 to the room left, varied by the seed and the position.
        let want = 1 + (usize::from(seed) * 31 + step * 7 + usize::from(stream[fed])) % space.len();
        let n = want.min(stream.len() - fed);
        space[..n].copy_from_slice(&stream[fed..fed + n]);
        fed += n;
        step += 1;
        let mut calls = 0;
        framer.filled(n, |piece| {
            calls += 1;
            assert!(!piece.is_empty(), "an empty piece");
            assert!(
                piece.ends_with(b"\n") || piece.len() == capacity,
                "a piece of {} bytes neither ends a line nor fills the {capacity}-byte buffer",
                piece.len()
            );
            out.extend_from_slice(piece);
        });
        assert!(calls <= 1, "one write per read");
        // Whatever was held back is the start of a line that has not ended yet.
        let held = &stream[out.len().min(fed)..fed];
        assert!(out.len() <= fed, "handed out more than was read");
        assert!(!held.contains(&b'\n'), "a finished line was held back");
        assert!(held.len() < capacity, "held a full buffer");
    }
    match framer.finish() {
        Ending::Clean => {}
        Ending::Rest(rest) => {
            assert!(rest.ends_with(b"\n") && !rest[..rest.len() - 1].contains(&b'\n'), "{rest:?}");
            out.extend_from_slice(rest);
        }
        Ending::EndLine => {
            assert!(!out.is_empty() && !out.ends_with(b"\n"), "EndLine after a finished line");
            out.push(b'\n');
        }
    }
    let mut want = stream.to_vec();
    if want.last().is_some_and(|&b| b != b'\n') {
        want.push(b'\n');
    }
    assert!(out == want, "the framed stream differs from what was read");
}
