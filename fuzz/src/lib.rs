//! The checks behind steward's fuzz targets, one module per target (docs/fuzzing.md).
//!
//! Each `check(data)` feeds one input to a part of steward that takes outside input, and
//! panics when something that must hold does not: beyond "no panic, no hang, no unbounded
//! memory", each states what the part promises (diagnostics point into the file, the
//! framer gives back the stream byte for byte, rotation cuts only at line ends, ...).
//! `fuzz_targets/` hands them to libFuzzer; `tests/corpus.rs` runs the corpus through them.

pub mod alert_when;
pub mod api;
pub mod config;
pub mod framer;
pub mod interp;
pub mod rotation;
pub mod ship;

/// A little reader over the fuzzer's bytes, for targets that need numbers as well as text.
/// When the bytes run out it gives zeros.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// What is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
