//! The JSON hub protocol's framing: every message (the handshake included)
//! is a JSON text ending in the record separator 0x1E. A WebSocket message
//! may carry several records, and a record may be split across messages.

/// The record separator that ends every message.
pub(super) const RS: char = '\u{1e}';

/// Why the input cannot be framed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FrameError {
    /// A record grew past the limit without its separator.
    TooLarge,
}

/// Collects WebSocket text into whole records.
pub(super) struct Records {
    /// The start of a record whose separator has not arrived yet.
    partial: String,
    /// The largest record (without its separator), in bytes.
    max: usize,
}

impl Records {
    pub(super) fn new(max: usize) -> Self {
        Records {
            partial: String::new(),
            max,
        }
    }

    /// Adds a WebSocket message's text; returns the records it completed,
    /// in order (without separators). Text after the last separator waits
    /// for the next message.
    pub(super) fn push(&mut self, text: &str) -> Result<Vec<String>, FrameError> {
        let mut records = Vec::new();
        let mut rest = text;
        while let Some(end) = rest.find(RS) {
            let piece = &rest[..end];
            if self.partial.len() + piece.len() > self.max {
                return Err(FrameError::TooLarge);
            }
            let record = if self.partial.is_empty() {
                piece.to_owned()
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.push_str(piece);
                whole
            };
            records.push(record);
            rest = &rest[end + RS.len_utf8()..];
        }
        if self.partial.len() + rest.len() > self.max {
            return Err(FrameError::TooLarge);
        }
        self.partial.push_str(rest);
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            // An idle connection keeps no buffer.
            self.partial = String::new();
        }
        Ok(records)
    }
}

/// One record: the JSON and its separator.
pub(super) fn record(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 1);
    out.push_str(json);
    out.push(RS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_records_in_one_message() {
        let mut records = Records::new(1024);
        let got = records
            .push("{\"protocol\":\"json\",\"version\":1}\u{1e}{\"type\":6}\u{1e}")
            .unwrap();
        assert_eq!(
            got,
            ["{\"protocol\":\"json\",\"version\":1}", "{\"type\":6}"]
        );
    }

    #[test]
    fn a_record_split_across_messages() {
        let mut records = Records::new(1024);
        assert!(records.push("{\"type\":1,\"tar").unwrap().is_empty());
        assert!(records.push("get\":\"X\",").unwrap().is_empty());
        let got = records.push("\"arguments\":[]}\u{1e}{\"type\"").unwrap();
        assert_eq!(got, ["{\"type\":1,\"target\":\"X\",\"arguments\":[]}"]);
        assert_eq!(records.push(":6}\u{1e}").unwrap(), ["{\"type\":6}"]);
        assert!(records.partial.is_empty());
    }

    #[test]
    fn separators_alone_are_empty_records() {
        let mut records = Records::new(8);
        assert_eq!(records.push("\u{1e}\u{1e}").unwrap(), ["", ""]);
    }

    #[test]
    fn a_record_past_the_limit_is_refused() {
        let mut records = Records::new(8);
        assert_eq!(records.push("12345678\u{1e}").unwrap(), ["12345678"]);
        assert_eq!(records.push("123456789"), Err(FrameError::TooLarge));
        let mut records = Records::new(8);
        records.push("12345").unwrap();
        assert_eq!(records.push("6789\u{1e}"), Err(FrameError::TooLarge));
    }

    #[test]
    fn records_end_with_the_separator() {
        assert_eq!(record("{}"), "{}\u{1e}");
    }
}
