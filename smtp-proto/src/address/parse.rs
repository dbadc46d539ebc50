//! The grammar behind [`super`]'s parsers: RFC 5321 §4.1.2 paths, mailboxes, local parts,
//! domains and address literals, as functions over borrowed input.
//!
//! What it does not do: hold types or their `Display` (the parent module does), or decide
//! policy.

use std::borrow::Cow;

use super::{AddressError, AddressLiteral, AddressOptions, Domain, Mailbox};

/// The length of the path token at the start of `input`, for the command parser: through the
/// closing `>` when `input` starts with `<`, else up to the first space. Quoted strings and
/// address literals are skipped over, so `<"a>b"@c>` is one token. Returns `input.len()` when
/// the token is not terminated (the parser then reports the syntax error).
pub(crate) fn token_len(input: &[u8]) -> usize {
    let bracketed = input.first() == Some(&b'<');
    let end = if bracketed { b'>' } else { b' ' };
    // Usually the token ends before any quoted string or literal: find that end in a simple
    // loop, and walk the grammar only from the first `"` or `[`.
    let start = match memchr::memchr3(end, b'"', b'[', input) {
        Some(i) if input[i] == end => return if bracketed { i + 1 } else { i },
        Some(i) => i,
        None => return input.len(),
    };
    let (mut quoted, mut literal, mut escaped) = (false, false, false);
    for (i, &b) in input.iter().enumerate().skip(start) {
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
        } else if literal {
            literal = b != b']';
        } else {
            match b {
                b'"' => quoted = true,
                b'[' => literal = true,
                b'>' if bracketed => return i + 1,
                b' ' if !bracketed => return i,
                _ => {}
            }
        }
    }
    input.len()
}

/// Validates the encoding: ASCII always, UTF-8 only under SMTPUTF8.
pub(super) fn as_str<'a>(input: &'a [u8], opts: &AddressOptions) -> Result<&'a str, AddressError> {
    if !input.is_ascii() && !opts.smtputf8 {
        return Err(AddressError::Utf8NotPermitted);
    }
    std::str::from_utf8(input).map_err(|_| AddressError::Syntax)
}

/// [`as_str`] for text already known to be UTF-8: only the SMTPUTF8 check remains.
pub(super) fn check_encoding<'a>(
    input: &'a str,
    opts: &AddressOptions,
) -> Result<&'a str, AddressError> {
    if !opts.smtputf8 && !input.is_ascii() {
        return Err(AddressError::Utf8NotPermitted);
    }
    Ok(input)
}

/// Strips `<` and `>` and checks the path length.
pub(super) fn strip_brackets<'a>(
    input: &'a [u8],
    opts: &AddressOptions,
) -> Result<&'a [u8], AddressError> {
    let inner = match input {
        [b'<', inner @ .., b'>'] => inner,
        _ => return Err(AddressError::Syntax),
    };
    if inner.len() > opts.limits.path {
        return Err(AddressError::PathTooLong);
    }
    Ok(inner)
}

/// Strips `<` and `>`, checks the path length and the encoding.
pub(super) fn bracketed<'a>(
    input: &'a [u8],
    opts: &AddressOptions,
) -> Result<&'a str, AddressError> {
    as_str(strip_brackets(input, opts)?, opts)
}

/// [`bracketed`] for text already known to be UTF-8.
pub(super) fn bracketed_str<'a>(
    input: &'a str,
    opts: &AddressOptions,
) -> Result<&'a str, AddressError> {
    let len = strip_brackets(input.as_bytes(), opts)?.len();
    // The brackets are ASCII, so these are character boundaries.
    let inner = input.get(1..1 + len).ok_or(AddressError::Syntax)?;
    check_encoding(inner, opts)
}

/// A mailbox, optionally preceded by a source route `@a,@b:` (accepted and dropped, RFC 5321
/// §4.1.2 and appendix C).
pub(super) fn routed_mailbox<'a>(
    s: &'a str,
    opts: &AddressOptions,
) -> Result<Mailbox<'a>, AddressError> {
    if !s.starts_with('@') {
        return mailbox(s, opts);
    }
    let (route, rest) = s.split_once(':').ok_or(AddressError::Syntax)?;
    for hop in route.split(',') {
        let name = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
        domain_name(name, opts)?;
    }
    mailbox(rest, opts)
}

pub(super) fn mailbox<'a>(s: &'a str, opts: &AddressOptions) -> Result<Mailbox<'a>, AddressError> {
    if let Some(mailbox) = simple_mailbox(s, opts) {
        return Ok(mailbox);
    }
    let (local_part, at) = if s.starts_with('"') {
        quoted_string(s)?
    } else {
        let atoms = dot_string(s)?;
        (Cow::Borrowed(atoms), atoms.len())
    };
    if at > opts.limits.local_part {
        return Err(AddressError::LocalPartTooLong);
    }
    let rest = match s.get(at..).and_then(|r| r.strip_prefix('@')) {
        Some(rest) => rest,
        None => return Err(AddressError::Syntax),
    };
    Ok(Mailbox {
        local_part,
        domain: domain(rest, opts)?,
    })
}

/// The fast path of [`mailbox`] for the common form, an ASCII `dot-string@domain-name`
/// within the limits: one pass over the bytes that finds the `@` and checks the atoms, the
/// labels and the lengths as it goes, where the general parser below takes a pass for each.
/// `None` for anything else (quoted local part, address literal, non-ASCII, any error): the
/// general parser then decides, so this only ever accepts what it would accept, with the same
/// result.
#[inline]
pub(super) fn simple_mailbox<'a>(s: &'a str, opts: &AddressOptions) -> Option<Mailbox<'a>> {
    let bytes = s.as_bytes();
    // The local part: atoms of ASCII atext separated by single dots, up to the `@`.
    let mut i = 0;
    let mut atom_start = 0;
    let at = loop {
        let b = *bytes.get(i)?;
        if BYTE_CLASS[usize::from(b)] & ASCII_ATEXT != 0 {
            i += 1;
        } else if i == atom_start {
            return None;
        } else if b == b'.' {
            i += 1;
            atom_start = i;
        } else if b == b'@' {
            break i;
        } else {
            return None;
        }
    };
    if at > opts.limits.local_part || bytes.len() - at - 1 > opts.limits.domain {
        return None;
    }
    // The domain: labels of ASCII letters, digits and hyphens separated by single dots, 1 to 63
    // octets, no hyphen first or last.
    let mut label_start = at + 1;
    let mut i = label_start;
    loop {
        match bytes.get(i) {
            Some(&b) if BYTE_CLASS[usize::from(b)] & ASCII_LDH != 0 => i += 1,
            end @ (Some(b'.') | None) => {
                let label = &bytes[label_start..i];
                if !is_label(label) {
                    return None;
                }
                if end.is_none() {
                    break;
                }
                i += 1;
                label_start = i;
            }
            Some(_) => return None,
        }
    }
    // `@` is ASCII, so both are character boundaries.
    Some(Mailbox {
        local_part: Cow::Borrowed(s.get(..at)?),
        domain: Domain::Name(Cow::Borrowed(s.get(at + 1..)?)),
    })
}

/// [`BYTE_CLASS`] bit: RFC 5322 `atext`, extended by RFC 6531 with any non-ASCII byte.
const ATEXT: u8 = 1;
/// [`BYTE_CLASS`] bit: a letter, digit or hyphen of a domain label, or any non-ASCII byte (a
/// U-label's, admitted under SMTPUTF8).
const LDH: u8 = 2;
/// [`BYTE_CLASS`] bit: [`ATEXT`] without the non-ASCII bytes, for [`simple_mailbox`].
const ASCII_ATEXT: u8 = 4;
/// [`BYTE_CLASS`] bit: [`LDH`] without the non-ASCII bytes, for [`simple_mailbox`].
const ASCII_LDH: u8 = 8;

/// The class bits of each byte value, so that the hot loops test a byte with one lookup.
static BYTE_CLASS: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < table.len() {
        let b = i as u8;
        if b.is_ascii_alphanumeric() || b >= 0x80 {
            table[i] = ATEXT | LDH;
        }
        i += 1;
    }
    let specials = b"!#$%&'*+-/=?^_`{|}~";
    let mut i = 0;
    while i < specials.len() {
        table[specials[i] as usize] |= ATEXT;
        i += 1;
    }
    table[b'-' as usize] |= LDH;
    let mut i = 0;
    while i < 0x80 {
        if table[i] & ATEXT != 0 {
            table[i] |= ASCII_ATEXT;
        }
        if table[i] & LDH != 0 {
            table[i] |= ASCII_LDH;
        }
        i += 1;
    }
    table
}

/// RFC 5322 `atext`, extended by RFC 6531 with any non-ASCII byte (the encoding was already
/// validated).
pub(crate) fn is_atext(b: u8) -> bool {
    BYTE_CLASS[usize::from(b)] & ATEXT != 0
}

/// The longest dot-string at the start of `s` (`Atom *("." Atom)`); the caller checks what
/// follows.
pub(super) fn dot_string(s: &str) -> Result<&str, AddressError> {
    // Whether an atom must come next: at the start and after each dot.
    let mut atom_due = true;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if is_atext(b) {
            atom_due = false;
        } else if atom_due {
            return Err(AddressError::Syntax);
        } else if b == b'.' {
            atom_due = true;
        } else {
            return s.get(..i).ok_or(AddressError::Syntax);
        }
    }
    if atom_due {
        return Err(AddressError::Syntax);
    }
    Ok(s)
}

/// A quoted string at the start of `s`: the unquoted content and the index after the closing
/// quote.
pub(super) fn quoted_string(s: &str) -> Result<(Cow<'_, str>, usize), AddressError> {
    let bytes = s.as_bytes();
    let (mut i, mut escapes) = (1, false);
    loop {
        match bytes.get(i) {
            Some(b'"') => break,
            Some(b'\\') if bytes.get(i + 1).is_some_and(|b| (32..=126).contains(b)) => {
                escapes = true;
                i += 2;
            }
            Some(b'\\') | None => return Err(AddressError::Syntax),
            Some(&b) if (32..=126).contains(&b) || b >= 0x80 => i += 1,
            Some(_) => return Err(AddressError::Syntax),
        }
    }
    let content = s.get(1..i).ok_or(AddressError::Syntax)?;
    if !escapes {
        return Ok((Cow::Borrowed(content), i + 1));
    }
    let mut out = String::with_capacity(content.len());
    let mut chars = content.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().ok_or(AddressError::Syntax)?
        } else {
            c
        });
    }
    Ok((Cow::Owned(out), i + 1))
}

pub(super) fn domain<'a>(s: &'a str, opts: &AddressOptions) -> Result<Domain<'a>, AddressError> {
    if s.len() > opts.limits.domain {
        return Err(AddressError::DomainTooLong);
    }
    match s.strip_prefix('[') {
        Some(rest) => {
            let inner = rest.strip_suffix(']').ok_or(AddressError::Syntax)?;
            address_literal(inner).map(Domain::Literal)
        }
        None => domain_name(s, opts).map(Domain::Name),
    }
}

/// `sub-domain *("." sub-domain)`: letters, digits and inner hyphens, labels of 1 to 63
/// octets; non-ASCII characters count as letters under SMTPUTF8 (U-labels).
pub(super) fn domain_name<'a>(
    s: &'a str,
    opts: &AddressOptions,
) -> Result<Cow<'a, str>, AddressError> {
    if s.len() > opts.limits.domain {
        return Err(AddressError::DomainTooLong);
    }
    if !s.is_ascii() && !opts.smtputf8 {
        return Err(AddressError::Utf8NotPermitted);
    }
    let bytes = s.as_bytes();
    let mut label_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            if !is_label(&bytes[label_start..i]) {
                return Err(AddressError::Syntax);
            }
            label_start = i + 1;
        } else if BYTE_CLASS[usize::from(b)] & LDH == 0 {
            return Err(AddressError::Syntax);
        }
    }
    if !is_label(&bytes[label_start..]) {
        return Err(AddressError::Syntax);
    }
    Ok(Cow::Borrowed(s))
}

/// The shape of a label already known to hold only letters, digits and hyphens: 1 to 63
/// octets, no hyphen first or last.
#[inline]
pub(super) fn is_label(label: &[u8]) -> bool {
    label.len() <= 63
        && label.first().is_some_and(|&b| b != b'-')
        && label.last().is_some_and(|&b| b != b'-')
}

/// A standardized tag (`Ldh-str`): letters, digits, hyphens, not ending in a hyphen.
pub(super) fn is_ldh_str(s: &str) -> bool {
    !s.is_empty() && !s.ends_with('-') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub(super) fn address_literal(s: &str) -> Result<AddressLiteral<'_>, AddressError> {
    let Some((tag, content)) = s.split_once(':') else {
        return s
            .parse()
            .map(AddressLiteral::Ipv4)
            .map_err(|_| AddressError::Syntax);
    };
    if tag.eq_ignore_ascii_case("IPv6") {
        return content
            .parse()
            .map(AddressLiteral::Ipv6)
            .map_err(|_| AddressError::Syntax);
    }
    let dcontent = |b: u8| matches!(b, 33..=90 | 94..=126);
    if !is_ldh_str(tag) || content.is_empty() || !content.bytes().all(dcontent) {
        return Err(AddressError::Syntax);
    }
    Ok(AddressLiteral::General {
        tag: Cow::Borrowed(tag),
        content: Cow::Borrowed(content),
    })
}

/// Whether `s` can be written as a dot-string, without quotes.
pub(super) fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}
