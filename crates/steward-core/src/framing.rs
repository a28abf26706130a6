//! Cutting a byte stream (a program's stdout or stderr) into whole lines, in a buffer of
//! fixed size.
//!
//! The runtime reads a pipe into [`LineFramer::space`], tells the framer how much came
//! ([`LineFramer::filled`]), and gets back what is ready to be written: every line that
//! ended, in one piece. The unfinished line after the last `\n` waits in the buffer for
//! the next read. A line longer than the buffer goes out in pieces as the buffer fills, so
//! memory stays bounded by the buffer whatever the program writes. At the end of the
//! stream, [`LineFramer::finish`] says how to close an unfinished last line, so that the
//! next run's first line never gets glued onto it.
//!
//! Writing every piece handed out, then what `finish` says, reproduces the stream byte for
//! byte, with a `\n` added if it did not end in one.

/// The framer of one stream. See the [module docs](self).
pub struct LineFramer {
    buf: Box<[u8]>,
    /// `buf[..held]` is the start of a line not finished yet. Always `held < buf.len()`, so
    /// a read always has room, and a read of 0 bytes always means the end of the stream.
    held: usize,
    /// A piece of the current line has already been handed out.
    mid_line: bool,
}

/// How to close the stream at its end ([`LineFramer::finish`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending<'a> {
    /// The stream ended at a line boundary (or was empty): nothing more to write.
    Clean,
    /// Write these bytes: the unfinished last line, with a `\n` added.
    Rest(&'a [u8]),
    /// The last line went out in pieces without its `\n`: end it with one.
    EndLine,
}

impl LineFramer {
    /// A framer whose buffer holds `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> LineFramer {
        LineFramer { buf: vec![0; capacity.max(1)].into_boxed_slice(), held: 0, mid_line: false }
    }

    /// Where the next read goes. Never empty.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.held..]
    }

    /// `n` bytes were read into [`LineFramer::space`]. Calls `write` with what is ready:
    /// the lines that ended (the held start of the first included), or, when the buffer is
    /// full of one unfinished line, that piece of it. Calls nothing when all that came is
    /// the start of a line that fits. `n` beyond the space is clamped to it.
    pub fn filled(&mut self, n: usize, write: impl FnOnce(&[u8])) {
        let end = self.held + n.min(self.buf.len() - self.held);
        // Only the new bytes can hold a '\n': the held ones were searched before.
        let cut = match memchr::memrchr(b'\n', &self.buf[self.held..end]) {
            Some(i) => self.held + i + 1,
            // A line longer than the buffer: this piece goes now.
            None if end == self.buf.len() => end,
            None => {
                self.held = end;
                return;
            }
        };
        write(&self.buf[..cut]);
        self.mid_line = self.buf[cut - 1] != b'\n';
        self.buf.copy_within(cut..end, 0);
        self.held = end - cut;
    }

    /// The stream ended: what is left to write. Call once; the framer is spent afterwards.
    pub fn finish(&mut self) -> Ending<'_> {
        if self.held > 0 {
            // `held < buf.len()`, so the `\n` fits after the held bytes.
            let held = std::mem::take(&mut self.held);
            self.buf[held] = b'\n';
            self.mid_line = false;
            Ending::Rest(&self.buf[..=held])
        } else if std::mem::take(&mut self.mid_line) {
            Ending::EndLine
        } else {
            Ending::Clean
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `reads` to a framer of `capacity` bytes; returns every call's output, with the
    /// ending as the last entry (`"<end-line>"` for [`Ending::EndLine`]).
    fn frame(capacity: usize, reads: &[&str]) -> Vec<String> {
        let mut framer = LineFramer::new(capacity);
        let mut out = Vec::new();
        for read in reads {
            let space = framer.space();
            assert!(read.len() <= space.len(), "a read of {read:?} does not fit");
            space[..read.len()].copy_from_slice(read.as_bytes());
            framer.filled(read.len(), |b| out.push(String::from_utf8_lossy(b).into_owned()));
        }
        match framer.finish() {
            Ending::Clean => {}
            Ending::Rest(b) => out.push(String::from_utf8_lossy(b).into_owned()),
            Ending::EndLine => out.push("<end-line>".into()),
        }
        out
    }

    #[test]
    fn whole_lines_go_out_together_and_the_rest_waits() {
        assert_eq!(frame(64, &["a\nb\nc"]), ["a\nb\n", "c\n"]);
        assert_eq!(frame(64, &["ab", "c\nd", "e\n"]), ["abc\n", "de\n"]);
        assert_eq!(frame(64, &["a\n", "b\n"]), ["a\n", "b\n"]);
    }

    #[test]
    fn an_empty_stream_or_one_ending_in_a_newline_ends_cleanly() {
        assert_eq!(frame(8, &[]), Vec::<String>::new());
        assert_eq!(frame(8, &["x\n"]), ["x\n"]);
    }

    #[test]
    fn a_line_longer_than_the_buffer_goes_in_pieces() {
        assert_eq!(frame(4, &["abcd", "ef\n"]), ["abcd", "ef\n"]);
        assert_eq!(frame(4, &["abcd", "ef"]), ["abcd", "ef\n"]);
        assert_eq!(frame(4, &["abcd"]), ["abcd", "<end-line>"]);
        // The piece that fills the buffer ends the line: nothing is held, nothing added.
        assert_eq!(frame(4, &["abc", "\n"]), ["abc\n"]);
    }

    #[test]
    fn a_one_byte_buffer_still_frames() {
        assert_eq!(frame(1, &["a", "\n", "b"]), ["a", "\n", "b", "<end-line>"]);
        assert_eq!(frame(0, &["a"]), ["a", "<end-line>"]);
    }

    #[test]
    fn a_count_beyond_the_space_is_clamped() {
        let mut framer = LineFramer::new(4);
        let mut out = Vec::new();
        framer.space().copy_from_slice(b"a\nbc");
        framer.filled(usize::MAX, |b| out.push(b.to_vec()));
        assert_eq!(out, [b"a\n".to_vec()]);
        assert_eq!(framer.finish(), Ending::Rest(b"bc\n"));
    }
}
