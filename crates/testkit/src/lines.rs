//! The line format of `steward-testchild --write-lines N --line-len L`.
//!
//! Line `n` (counting from 1) is exactly `L` bytes including its `'\n'`: `n` zero-padded to
//! [`NUMBER_WIDTH`] digits, a space, then [`FILL`] bytes up to the newline:
//!
//! ```text
//! 0000000001 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n
//! ```
//!
//! So captured output can be checked line by line: [`check_lines`] finds torn, merged or
//! corrupted lines and returns the numbers it saw, which a test compares with what it expects
//! (for instance `1..=N` in order, or, across rotated log files, a gapless sequence).

use std::ops::RangeInclusive;

/// Digits of the line number.
pub const NUMBER_WIDTH: usize = 10;
/// The shortest line: the number, the space and the newline.
pub const MIN_LINE_LEN: usize = NUMBER_WIDTH + 2;
/// The largest line number that fits in [`NUMBER_WIDTH`] digits.
pub const MAX_LINE_NUMBER: u64 = 9_999_999_999;
/// The byte that pads each line after the number and its space.
pub const FILL: u8 = b'x';

/// Fills `buf` with line `n`; the line is `buf.len()` bytes long.
///
/// # Panics
/// If `buf` is shorter than [`MIN_LINE_LEN`] or `n` is above [`MAX_LINE_NUMBER`].
pub fn fill_line(buf: &mut [u8], n: u64) {
    assert!(buf.len() >= MIN_LINE_LEN, "a line needs at least {MIN_LINE_LEN} bytes, got {}", buf.len());
    assert!(n <= MAX_LINE_NUMBER, "line number {n} has more than {NUMBER_WIDTH} digits");
    let mut rest = n;
    for digit in buf[..NUMBER_WIDTH].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    buf[NUMBER_WIDTH] = b' ';
    let last = buf.len() - 1;
    buf[NUMBER_WIDTH + 1..last].fill(FILL);
    buf[last] = b'\n';
}

/// Line `n`, `len` bytes long. Panics like [`fill_line`].
pub fn line(n: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    fill_line(&mut buf, n);
    buf
}

/// The lines numbered `numbers`, each `len` bytes long, one after the other: what
/// `--write-lines N --line-len L` prints is `lines(1..=N, L)`. Panics like [`fill_line`].
pub fn lines(numbers: RangeInclusive<u64>, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0; len];
    for n in numbers {
        fill_line(&mut buf, n);
        out.extend_from_slice(&buf);
    }
    out
}

/// Checks that `data` is a sequence of whole, intact lines of `len` bytes each and returns
/// their numbers in order. The error names the first bad line, its byte offset and content.
pub fn check_lines(data: &[u8], len: usize) -> Result<Vec<u64>, String> {
    let mut numbers = Vec::with_capacity(data.len() / len.max(1));
    let mut offset = 0;
    for (index, chunk) in data.split_inclusive(|&b| b == b'\n').enumerate() {
        let number = parse_line(chunk, len).ok_or_else(|| {
            format!("line {} at byte {offset} is not a {len}-byte test line: {:?}", index + 1, preview(chunk))
        })?;
        numbers.push(number);
        offset += chunk.len();
    }
    Ok(numbers)
}

/// The number of `line` (with its `'\n'`) if it is an intact line of `len` bytes.
fn parse_line(line: &[u8], len: usize) -> Option<u64> {
    if len < MIN_LINE_LEN || line.len() != len || line[len - 1] != b'\n' {
        return None;
    }
    let (digits, rest) = line.split_at(NUMBER_WIDTH);
    if !digits.iter().all(u8::is_ascii_digit) || rest[0] != b' ' {
        return None;
    }
    if !rest[1..rest.len() - 1].iter().all(|&b| b == FILL) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The start and end of a possibly long chunk, for error messages.
fn preview(chunk: &[u8]) -> String {
    const KEEP: usize = 40;
    let text = String::from_utf8_lossy(chunk);
    if text.chars().count() <= 2 * KEEP {
        return text.into_owned();
    }
    let head: String = text.chars().take(KEEP).collect();
    let tail: String = text.chars().skip(text.chars().count() - KEEP).collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format() {
        assert_eq!(line(1, 16), b"0000000001 xxxx\n");
        assert_eq!(line(MAX_LINE_NUMBER, 12), b"9999999999 \n");
        assert_eq!(lines(9..=10, 13), b"0000000009 x\n0000000010 x\n");
    }

    #[test]
    #[should_panic(expected = "at least 12 bytes")]
    fn too_short() {
        line(1, 11);
    }

    #[test]
    fn check_accepts_intact_lines() {
        let data = lines(5..=7, 20);
        assert_eq!(check_lines(&data, 20), Ok(vec![5, 6, 7]));
        assert_eq!(check_lines(b"", 20), Ok(vec![]));
    }

    #[test]
    fn check_rejects_damage() {
        let good = lines(1..=3, 20);
        let torn = &good[..good.len() - 1];
        let err = check_lines(torn, 20).unwrap_err();
        assert!(err.starts_with("line 3 at byte 40 "), "{err}");

        let mut corrupt = good.clone();
        corrupt[25] = b'y';
        assert!(check_lines(&corrupt, 20).unwrap_err().starts_with("line 2 at byte 20 "));

        let mut merged = good.clone();
        merged.remove(19);
        assert!(check_lines(&merged, 20).is_err());

        assert!(check_lines(&good, 21).is_err(), "wrong length");
        assert!(check_lines(b"000000000a xxxxxxxx\n", 20).is_err());
    }
}
