//! xtext (RFC 3461 §4): the encoding of `ENVID`, `ORCPT` and `AUTH=` values.
//!
//! What it does not do: know which parameters use it (the parent module does).

use std::borrow::Cow;

/// An xtext string was malformed: a byte outside `!`..=`~`, a raw `=`, a `+` not followed by
/// two upper-case hex digits, or a decoded value that is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("malformed xtext")]
pub struct XtextError;

/// Decodes xtext (RFC 3461 §4). Borrows when there is no `+XX` escape.
pub fn xtext_decode(input: &[u8]) -> Result<Cow<'_, str>, XtextError> {
    let xchar = |b: &u8| is_xchar(*b);
    if input.iter().all(xchar) {
        return std::str::from_utf8(input)
            .map(Cow::Borrowed)
            .map_err(|_| XtextError);
    }
    let hex = |b: Option<&u8>| match b {
        Some(&b @ b'0'..=b'9') => Some(b - b'0'),
        Some(&b @ b'A'..=b'F') => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(b) = input.get(i) {
        if *b == b'+' {
            let (hi, lo) = (hex(input.get(i + 1)), hex(input.get(i + 2)));
            out.push(hi.zip(lo).map(|(h, l)| h << 4 | l).ok_or(XtextError)?);
            i += 3;
        } else if xchar(b) {
            out.push(*b);
            i += 1;
        } else {
            return Err(XtextError);
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| XtextError)
}

/// [`xtext_decode`] for text already known to be UTF-8: borrows without validating it again.
pub(super) fn xtext_decode_str(input: &str) -> Result<Cow<'_, str>, XtextError> {
    if input.bytes().all(is_xchar) {
        return Ok(Cow::Borrowed(input));
    }
    xtext_decode(input.as_bytes())
}

/// Whether `b` stands for itself in xtext: printable ASCII but `+` and `=`.
fn is_xchar(b: u8) -> bool {
    matches!(b, b'!'..=b'~') && b != b'=' && b != b'+'
}

/// Encodes `input` as xtext: `+XX` for `+`, `=` and every byte outside `!`..=`~`. Borrows when
/// nothing needs encoding.
pub fn xtext_encode(input: &str) -> Cow<'_, str> {
    if !input.bytes().any(needs_xtext_escape) {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len() + 8);
    write_xtext(&mut out, input);
    // Only ASCII was written, so the conversion cannot fail.
    Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

fn needs_xtext_escape(b: u8) -> bool {
    !matches!(b, b'!'..=b'~') || b == b'+' || b == b'='
}

pub(super) fn write_xtext(out: &mut Vec<u8>, input: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in input.bytes() {
        if needs_xtext_escape(b) {
            out.extend_from_slice(&[b'+', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}
