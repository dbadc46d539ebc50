//! Mailbox and path syntax: RFC 5321 §4.1.2, with RFC 6531 (SMTPUTF8) extensions.
//!
//! Parses the reverse-path of `MAIL FROM` ([`Path`]), the forward-path of `RCPT TO`
//! ([`ForwardPath`], which also admits the bare `<Postmaster>`), bare mailboxes as used by
//! `VRFY` ([`Mailbox`]) and EHLO arguments ([`Domain`]). Values borrow from the input; only a
//! quoted local part containing quoted-pairs is unescaped into an owned string.
//!
//! What it does not do: resolve domains, check IDNA rules of U-labels beyond the RFC 5321
//! letter/digit/hyphen shape, or decide policy (which domains are local, who may relay).
//!
//! Every error is an [`AddressError`]. The same syntax error deserves `501 5.1.7` in `MAIL`
//! and `501 5.1.3` in `RCPT`, so [`AddressError::reply`] takes the [`AddressRole`].

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::limits::Limits;
use crate::status::{EnhancedStatus, ErrorReply};

/// Options for address parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressOptions {
    /// Permit UTF-8 (RFC 6531 `UTF8-non-ascii`) in local parts and domain labels. Set it when
    /// the transaction carries the `SMTPUTF8` parameter. When unset, any non-ASCII byte is
    /// [`AddressError::Utf8NotPermitted`].
    pub smtputf8: bool,
    /// Length limits: `local_part`, `domain` and `path` are used.
    pub limits: Limits,
}

/// Why an address was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The address does not match the RFC 5321 grammar.
    #[error("address syntax error")]
    Syntax,
    /// The local part is longer than [`Limits::local_part`] octets.
    #[error("local part too long")]
    LocalPartTooLong,
    /// The domain is longer than [`Limits::domain`] octets.
    #[error("domain too long")]
    DomainTooLong,
    /// The path between `<` and `>` is longer than [`Limits::path`] octets.
    #[error("path too long")]
    PathTooLong,
    /// The address contains non-ASCII characters but SMTPUTF8 is not in effect.
    #[error("non-ASCII address without SMTPUTF8")]
    Utf8NotPermitted,
}

/// Where an address appeared; picks the enhanced status code of a syntax error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressRole {
    /// The reverse-path of `MAIL FROM` (`5.1.7`).
    Sender,
    /// The forward-path of `RCPT TO` or a `VRFY`/`EXPN` argument (`5.1.3`).
    Recipient,
}

impl AddressError {
    /// The reply a server sends for this error: `501 5.1.7` (sender) or `501 5.1.3`
    /// (recipient), and `553 5.6.7` for a non-ASCII address without SMTPUTF8 (RFC 6531 §3.6).
    pub fn reply(&self, role: AddressRole) -> ErrorReply {
        use AddressError as E;
        use AddressRole as R;
        if *self == E::Utf8NotPermitted {
            return ErrorReply::new(
                553,
                EnhancedStatus::new(5, 6, 7),
                "Non-ASCII address requires SMTPUTF8",
            );
        }
        let (detail, text) = match (self, role) {
            (E::LocalPartTooLong, R::Sender) => (7, "Sender local part too long"),
            (E::LocalPartTooLong, R::Recipient) => (3, "Recipient local part too long"),
            (E::DomainTooLong, R::Sender) => (7, "Sender domain too long"),
            (E::DomainTooLong, R::Recipient) => (3, "Recipient domain too long"),
            (E::PathTooLong, R::Sender) => (7, "Sender path too long"),
            (E::PathTooLong, R::Recipient) => (3, "Recipient path too long"),
            (_, R::Sender) => (7, "Bad sender address syntax"),
            (_, R::Recipient) => (3, "Bad recipient address syntax"),
        };
        ErrorReply::new(501, EnhancedStatus::new(5, 1, detail), text)
    }
}

/// A reverse-path (`MAIL FROM:<...>`): the null path `<>` or a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Path<'a> {
    /// `<>`: the null reverse-path of bounces (RFC 5321 §4.5.5).
    Null,
    /// A mailbox. A source route, if the client sent one, has been dropped.
    Mailbox(Mailbox<'a>),
}

/// A forward-path (`RCPT TO:<...>`): a mailbox or the bare `<Postmaster>` (RFC 5321 §4.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath<'a> {
    /// `<Postmaster>` without a domain (matched case-insensitively): the local postmaster.
    Postmaster,
    /// A mailbox. A source route, if the client sent one, has been dropped.
    Mailbox(Mailbox<'a>),
}

/// A mailbox `local-part@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox<'a> {
    /// The local part, unquoted: `"john doe"@x` holds `john doe`. Case is preserved (RFC 5321
    /// §2.4: local parts may be case-sensitive).
    pub local_part: Cow<'a, str>,
    /// The domain or address literal.
    pub domain: Domain<'a>,
}

/// The part after `@`: a domain name or an address literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Domain<'a> {
    /// A domain name as sent (case preserved), for example `mail.example.com`; U-labels only
    /// under SMTPUTF8.
    Name(Cow<'a, str>),
    /// An address literal in brackets.
    Literal(AddressLiteral<'a>),
}

/// An address literal (RFC 5321 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressLiteral<'a> {
    /// `[192.0.2.1]`.
    Ipv4(Ipv4Addr),
    /// `[IPv6:2001:db8::1]`.
    Ipv6(Ipv6Addr),
    /// `[tag:content]`, a general address literal for a standardized tag other than `IPv6`.
    General {
        /// The standardized tag (letters, digits, hyphens).
        tag: Cow<'a, str>,
        /// The content: printable ASCII except `[`, `\` and `]`.
        content: Cow<'a, str>,
    },
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl Path<'_> {
    /// Parses a reverse-path including its angle brackets: `<>` or `<[route:]mailbox>`.
    pub fn parse<'a>(input: &'a [u8], opts: &AddressOptions) -> Result<Path<'a>, AddressError> {
        Path::parse_inner(bracketed(input, opts)?, opts)
    }

    /// [`Path::parse`] for input already known to be UTF-8 (the command parser validates its
    /// arguments once rather than each piece).
    pub(crate) fn parse_str<'a>(
        input: &'a str,
        opts: &AddressOptions,
    ) -> Result<Path<'a>, AddressError> {
        Path::parse_inner(bracketed_str(input, opts)?, opts)
    }

    fn parse_inner<'a>(inner: &'a str, opts: &AddressOptions) -> Result<Path<'a>, AddressError> {
        if inner.is_empty() {
            return Ok(Path::Null);
        }
        routed_mailbox(inner, opts).map(Path::Mailbox)
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Path<'static> {
        match self {
            Path::Null => Path::Null,
            Path::Mailbox(m) => Path::Mailbox(m.into_owned()),
        }
    }
}

impl ForwardPath<'_> {
    /// Parses a forward-path including its angle brackets: `<Postmaster>` or
    /// `<[route:]mailbox>`. `<>` is a syntax error.
    pub fn parse<'a>(
        input: &'a [u8],
        opts: &AddressOptions,
    ) -> Result<ForwardPath<'a>, AddressError> {
        ForwardPath::parse_inner(bracketed(input, opts)?, opts)
    }

    /// [`ForwardPath::parse`] for input already known to be UTF-8.
    pub(crate) fn parse_str<'a>(
        input: &'a str,
        opts: &AddressOptions,
    ) -> Result<ForwardPath<'a>, AddressError> {
        ForwardPath::parse_inner(bracketed_str(input, opts)?, opts)
    }

    fn parse_inner<'a>(
        inner: &'a str,
        opts: &AddressOptions,
    ) -> Result<ForwardPath<'a>, AddressError> {
        if inner.eq_ignore_ascii_case("postmaster") {
            return Ok(ForwardPath::Postmaster);
        }
        routed_mailbox(inner, opts).map(ForwardPath::Mailbox)
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> ForwardPath<'static> {
        match self {
            ForwardPath::Postmaster => ForwardPath::Postmaster,
            ForwardPath::Mailbox(m) => ForwardPath::Mailbox(m.into_owned()),
        }
    }
}

impl Mailbox<'_> {
    /// Parses a mailbox without angle brackets, as in `VRFY user@example.com`.
    pub fn parse<'a>(input: &'a [u8], opts: &AddressOptions) -> Result<Mailbox<'a>, AddressError> {
        if input.len() > opts.limits.path {
            return Err(AddressError::PathTooLong);
        }
        mailbox(as_str(input, opts)?, opts)
    }

    /// [`Mailbox::parse`] for input already known to be UTF-8.
    pub(crate) fn parse_str<'a>(
        input: &'a str,
        opts: &AddressOptions,
    ) -> Result<Mailbox<'a>, AddressError> {
        if input.len() > opts.limits.path {
            return Err(AddressError::PathTooLong);
        }
        mailbox(check_encoding(input, opts)?, opts)
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Mailbox<'static> {
        Mailbox {
            local_part: owned(self.local_part),
            domain: self.domain.into_owned(),
        }
    }
}

impl Domain<'_> {
    /// Parses a domain name or an address literal, as in `EHLO` or after `@`.
    pub fn parse<'a>(input: &'a [u8], opts: &AddressOptions) -> Result<Domain<'a>, AddressError> {
        domain(as_str(input, opts)?, opts)
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Domain<'static> {
        match self {
            Domain::Name(n) => Domain::Name(owned(n)),
            Domain::Literal(l) => Domain::Literal(l.into_owned()),
        }
    }
}

impl AddressLiteral<'_> {
    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> AddressLiteral<'static> {
        match self {
            AddressLiteral::Ipv4(a) => AddressLiteral::Ipv4(a),
            AddressLiteral::Ipv6(a) => AddressLiteral::Ipv6(a),
            AddressLiteral::General { tag, content } => AddressLiteral::General {
                tag: owned(tag),
                content: owned(content),
            },
        }
    }
}

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
fn as_str<'a>(input: &'a [u8], opts: &AddressOptions) -> Result<&'a str, AddressError> {
    if !input.is_ascii() && !opts.smtputf8 {
        return Err(AddressError::Utf8NotPermitted);
    }
    std::str::from_utf8(input).map_err(|_| AddressError::Syntax)
}

/// [`as_str`] for text already known to be UTF-8: only the SMTPUTF8 check remains.
fn check_encoding<'a>(input: &'a str, opts: &AddressOptions) -> Result<&'a str, AddressError> {
    if !opts.smtputf8 && !input.is_ascii() {
        return Err(AddressError::Utf8NotPermitted);
    }
    Ok(input)
}

/// Strips `<` and `>` and checks the path length.
fn strip_brackets<'a>(input: &'a [u8], opts: &AddressOptions) -> Result<&'a [u8], AddressError> {
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
fn bracketed<'a>(input: &'a [u8], opts: &AddressOptions) -> Result<&'a str, AddressError> {
    as_str(strip_brackets(input, opts)?, opts)
}

/// [`bracketed`] for text already known to be UTF-8.
fn bracketed_str<'a>(input: &'a str, opts: &AddressOptions) -> Result<&'a str, AddressError> {
    let len = strip_brackets(input.as_bytes(), opts)?.len();
    // The brackets are ASCII, so these are character boundaries.
    let inner = input.get(1..1 + len).ok_or(AddressError::Syntax)?;
    check_encoding(inner, opts)
}

/// A mailbox, optionally preceded by a source route `@a,@b:` (accepted and dropped, RFC 5321
/// §4.1.2 and appendix C).
fn routed_mailbox<'a>(s: &'a str, opts: &AddressOptions) -> Result<Mailbox<'a>, AddressError> {
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

fn mailbox<'a>(s: &'a str, opts: &AddressOptions) -> Result<Mailbox<'a>, AddressError> {
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
fn simple_mailbox<'a>(s: &'a str, opts: &AddressOptions) -> Option<Mailbox<'a>> {
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
fn dot_string(s: &str) -> Result<&str, AddressError> {
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
fn quoted_string(s: &str) -> Result<(Cow<'_, str>, usize), AddressError> {
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

fn domain<'a>(s: &'a str, opts: &AddressOptions) -> Result<Domain<'a>, AddressError> {
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
fn domain_name<'a>(s: &'a str, opts: &AddressOptions) -> Result<Cow<'a, str>, AddressError> {
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
fn is_label(label: &[u8]) -> bool {
    label.len() <= 63
        && label.first().is_some_and(|&b| b != b'-')
        && label.last().is_some_and(|&b| b != b'-')
}

/// A standardized tag (`Ldh-str`): letters, digits, hyphens, not ending in a hyphen.
fn is_ldh_str(s: &str) -> bool {
    !s.is_empty() && !s.ends_with('-') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn address_literal(s: &str) -> Result<AddressLiteral<'_>, AddressError> {
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
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}

impl fmt::Display for Mailbox<'_> {
    /// Wire form without brackets, quoting the local part when it is not a dot-string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local_part) {
            f.write_str(&self.local_part)?;
        } else {
            f.write_str("\"")?;
            for c in self.local_part.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        write!(f, "@{}", self.domain)
    }
}

impl fmt::Display for Domain<'_> {
    /// Wire form: the name, or the literal in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::Literal(l) => write!(f, "{l}"),
        }
    }
}

impl fmt::Display for AddressLiteral<'_> {
    /// Wire form in brackets: `[192.0.2.1]`, `[IPv6:2001:db8::1]`, `[tag:content]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressLiteral::Ipv4(a) => write!(f, "[{a}]"),
            AddressLiteral::Ipv6(a) => write!(f, "[IPv6:{a}]"),
            AddressLiteral::General { tag, content } => write!(f, "[{tag}:{content}]"),
        }
    }
}

impl fmt::Display for Path<'_> {
    /// Wire form with brackets: `<>` or `<mailbox>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Null => f.write_str("<>"),
            Path::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

impl fmt::Display for ForwardPath<'_> {
    /// Wire form with brackets: `<Postmaster>` or `<mailbox>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
