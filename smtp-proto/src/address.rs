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

mod parse;
use crate::status::{EnhancedStatus, ErrorReply};
pub(crate) use parse::is_atext;
pub(crate) use parse::token_len;
use parse::{
    as_str, bracketed, bracketed_str, check_encoding, domain, is_dot_string, mailbox,
    routed_mailbox,
};

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
