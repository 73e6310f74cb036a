//! Splits a byte stream into lines without ever holding more than one bounded line: a line
//! longer than the bound is dropped as it streams and reported by its length only.

/// One line of the body, its `\n` (and a `\r` before it) removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(Vec<u8>),
    /// Longer than the bound; its bytes were not kept.
    TooLong,
}

#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    current: Vec<u8>,
    /// The current line passed the bound: its remaining bytes are skipped.
    overflow: bool,
}

impl LineSplitter {
    /// `max` bytes per line, its line ending excluded.
    pub fn new(max: usize) -> Self {
        LineSplitter {
            max,
            current: Vec::new(),
            overflow: false,
        }
    }

    /// Feeds the next bytes; every line they end goes to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Line>) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.take(&bytes[..end]);
            out.push(self.end_line());
            bytes = &bytes[end + 1..];
        }
        self.take(bytes);
    }

    /// The last line, when the body does not end with a line ending.
    pub fn finish(&mut self) -> Option<Line> {
        (self.overflow || !self.current.is_empty()).then(|| self.end_line())
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.overflow {
            return;
        }
        // One byte of slack for the `\r` of a CRLF line ending, removed at the end.
        if self.current.len() + bytes.len() > self.max + 1 {
            self.overflow = true;
            self.current.clear();
        } else {
            self.current.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self) -> Line {
        if std::mem::take(&mut self.overflow) {
            return Line::TooLong;
        }
        if self.current.last() == Some(&b'\r') {
            self.current.pop();
        }
        if self.current.len() > self.max {
            self.current.clear();
            return Line::TooLong;
        }
        Line::Text(std::mem::take(&mut self.current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Line> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        out.extend(s.finish());
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_across_chunks_with_crlf_and_no_final_newline() {
        assert_eq!(
            split(10, &[b"ab", b"c\r\nde\n", b"\nf", b"g"]),
            [text("abc"), text("de"), text(""), text("fg")]
        );
        assert_eq!(split(10, &[b"a\n"]), [text("a")]);
        assert!(split(10, &[b""]).is_empty());
    }

    #[test]
    fn a_long_line_is_dropped_and_the_next_one_read() {
        assert_eq!(
            split(4, &[b"abcd\nabcde", b"fgh", b"ij\nxy\n"]),
            [text("abcd"), Line::TooLong, text("xy")]
        );
        // Exactly at the bound with CRLF, and one over it with CRLF.
        assert_eq!(
            split(4, &[b"abcd\r\nabcde\r\n"]),
            [text("abcd"), Line::TooLong]
        );
        assert_eq!(split(2, &[b"abc"]), [Line::TooLong]);
    }
}
