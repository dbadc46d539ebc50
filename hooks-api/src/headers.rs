//! A small, bounded RFC 5322 header-block parser: [`Headers::parse`].
//!
//! The host parses the start of every received message once and hands the result to the
//! message and queue hooks. The parser:
//!
//! - reads lines ending in LF or CRLF (a CR before the LF is dropped);
//! - takes `name: value` fields, where the name is 1 or more printable ASCII characters other
//!   than `:` (RFC 5322 §2.2); whitespace between the name and the colon is tolerated and
//!   dropped, as most MTAs do;
//! - unfolds continuation lines (lines starting with a space or a tab) into the previous
//!   field: the line break is removed, the whitespace kept (RFC 5322 §2.2.3);
//! - ends the header block at the first empty line ([`Headers::complete`] is then `true`)
//!   or at the first line that is neither a field nor a continuation — such a line belongs to
//!   the body, as in Postfix and Exim;
//! - decodes values as UTF-8, replacing invalid bytes with U+FFFD;
//! - is bounded by [`HeaderLimits`]: when a limit is reached it stops and sets
//!   [`Headers::truncated`]. It never panics and never allocates more than the limits allow.

use std::fmt;

/// Bounds on what [`Headers::parse`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimits {
    /// The most fields kept (default 1000).
    pub max_fields: usize,
    /// The longest unfolded field, name and value, in bytes (default 64 KiB).
    pub max_field_len: usize,
    /// The most bytes of input examined (default 1 MiB).
    pub max_block: usize,
}

impl Default for HeaderLimits {
    fn default() -> Self {
        HeaderLimits {
            max_fields: 1000,
            max_field_len: 64 * 1024,
            max_block: 1024 * 1024,
        }
    }
}

/// One header field, unfolded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name as sent (compare it ignoring ASCII case).
    pub name: String,
    /// The value: everything after the colon, unfolded, without leading and trailing
    /// whitespace.
    pub value: String,
}

/// The parsed header block of a message. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<Header>,
    body_offset: usize,
    complete: bool,
    truncated: bool,
}

impl Headers {
    /// Parses the header block at the start of `message` with the default limits.
    pub fn parse(message: &[u8]) -> Headers {
        Self::parse_with(message, &HeaderLimits::default())
    }

    /// Parses the header block at the start of `message` within `limits`.
    pub fn parse_with(message: &[u8], limits: &HeaderLimits) -> Headers {
        let input = &message[..message.len().min(limits.max_block)];
        let mut out = Headers::default();
        let mut current: Option<Vec<u8>> = None;
        let mut pos = 0;
        loop {
            let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
                // No complete line left: the block did not end within the input.
                out.truncated = input.len() < message.len();
                break;
            };
            let line_end = pos + nl + 1;
            let line = &input[pos..pos + nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                out.complete = true;
                pos = line_end;
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                if let Some(field) = current.as_mut() {
                    if field.len() + line.len() > limits.max_field_len {
                        out.truncated = true;
                        break;
                    }
                    field.extend_from_slice(line);
                    pos = line_end;
                    continue;
                }
                // A continuation with nothing to continue: body.
                break;
            }
            if !is_field_start(line) {
                break;
            }
            if line.len() > limits.max_field_len {
                out.truncated = true;
                break;
            }
            if let Some(field) = current.take() {
                if !out.push(&field, limits) {
                    break;
                }
            }
            current = Some(line.to_vec());
            pos = line_end;
        }
        if let Some(field) = current.take() {
            out.push(&field, limits);
        }
        out.body_offset = pos;
        out
    }

    /// Adds a field from its unfolded bytes; `false` when the field limit is reached.
    fn push(&mut self, field: &[u8], limits: &HeaderLimits) -> bool {
        if self.fields.len() >= limits.max_fields {
            self.truncated = true;
            return false;
        }
        let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
        let name = trim(&field[..colon]);
        let value = trim(field.get(colon + 1..).unwrap_or_default());
        self.fields.push(Header {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(value).into_owned(),
        });
        true
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The values of every field named `name`, in message order.
    pub fn get_all<'s, 'n>(&'s self, name: &'n str) -> impl Iterator<Item = &'s str> + use<'s, 'n> {
        self.fields
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every field, in message order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.fields.iter()
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// `true` when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Where the body starts in the parsed input: after the empty line when
    /// [`complete`](Headers::complete), else where parsing stopped.
    pub fn body_offset(&self) -> usize {
        self.body_offset
    }

    /// `true` when the block ended with an empty line.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// `true` when a [`HeaderLimits`] bound stopped the parser.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<'h> IntoIterator for &'h Headers {
    type Item = &'h Header;
    type IntoIter = std::slice::Iter<'h, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.fields.iter()
    }
}

impl fmt::Display for Header {
    /// `Name: value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

/// A field line: a non-empty name of printable ASCII without `:`, optional blanks, a colon.
fn is_field_start(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = &line[..colon];
    let name_end = name
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    name_end > 0 && name[..name_end].iter().all(|&b| (33..=126).contains(&b))
}

fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unfolds() {
        let msg = b"From: a@example.com\r\nSubject: hello\r\n  world\r\n\tagain\r\nTo:b@x\r\n\r\nbody\r\n";
        let h = Headers::parse(msg);
        assert!(h.complete());
        assert!(!h.truncated());
        assert_eq!(h.len(), 3);
        assert_eq!(h.get("subject"), Some("hello  world\tagain"));
        assert_eq!(h.get("TO"), Some("b@x"));
        assert_eq!(&msg[h.body_offset()..], b"body\r\n");
        assert_eq!(h.iter().next().unwrap().to_string(), "From: a@example.com");
    }

    #[test]
    fn lf_only_repeated_and_blank_names() {
        let h = Headers::parse(b"Received: one\nReceived : two\nX-Empty:\n\nrest");
        assert_eq!(h.get_all("received").collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(h.get("x-empty"), Some(""));
        assert!(h.complete());
    }

    #[test]
    fn garbage_line_starts_the_body() {
        let msg = b"Subject: x\r\nthis is not a header\r\nSubject: y\r\n\r\n";
        let h = Headers::parse(msg);
        assert_eq!(h.len(), 1);
        assert!(!h.complete());
        assert_eq!(&msg[h.body_offset()..h.body_offset() + 4], b"this");
        for garbage in [
            &b": no name\r\n"[..],
            b" leading continuation\r\n",
            b"\xff\xfe:\r\n",
        ] {
            let h = Headers::parse(garbage);
            assert!(h.is_empty(), "{garbage:?}");
            assert_eq!(h.body_offset(), 0);
        }
    }

    #[test]
    fn no_header_block_and_empty_input() {
        let h = Headers::parse(b"\r\nbody");
        assert!(h.complete() && h.is_empty());
        assert_eq!(h.body_offset(), 2);
        let h = Headers::parse(b"");
        assert!(!h.complete() && h.is_empty() && !h.truncated());
        let h = Headers::parse(b"Subject: no newline");
        assert_eq!(h.len(), 0);
        assert_eq!(h.body_offset(), 0);
    }

    #[test]
    fn non_utf8_values_are_lossy() {
        let h = Headers::parse(b"Subject: caf\xe9\r\n\r\n");
        assert_eq!(h.get("subject"), Some("caf\u{fffd}"));
    }

    #[test]
    fn limits_bound_the_result() {
        let limits = HeaderLimits {
            max_fields: 2,
            max_field_len: 20,
            max_block: 1000,
        };
        let h = Headers::parse_with(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", &limits);
        assert_eq!(h.len(), 2);
        assert!(h.truncated());

        let h = Headers::parse_with(b"A: 1\r\nB: 0123456789012345678901234\r\n\r\n", &limits);
        assert_eq!(h.len(), 1);
        assert!(h.truncated());

        let h = Headers::parse_with(b"A: 1\r\n 0123456789\r\n 0123456789\r\n\r\n", &limits);
        assert!(h.truncated());

        let small = HeaderLimits {
            max_block: 8,
            ..HeaderLimits::default()
        };
        let h = Headers::parse_with(b"A: 1\r\nB: 2\r\n\r\n", &small);
        assert_eq!(h.len(), 1);
        assert!(h.truncated());
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b": \t\r\nAb\xff"[(seed % 8) as usize]
                })
                .collect();
            let h = Headers::parse_with(
                &bytes,
                &HeaderLimits {
                    max_fields: 5,
                    max_field_len: 30,
                    max_block: 200,
                },
            );
            assert!(h.body_offset() <= bytes.len());
            assert!(h.len() <= 5);
        }
    }
}
