//! EHLO capabilities: the client parses the server's EHLO reply into a typed
//! [`Capabilities`] set ([`parse_capabilities`], Momentum's `smtp_parse_capabilities`); the
//! server builds its EHLO reply from one ([`Capabilities::to_reply`]).
//!
//! # Parsing rules
//!
//! The first reply line is the greeting: its first word is the server's domain, the rest is
//! free text. Every further line is `keyword *(SP param)`; keywords compare
//! case-insensitively, words are separated by any run of ASCII whitespace or control
//! characters, and empty lines are skipped.
//!
//! * Known keywords become typed [`Capability`] values. Flags (PIPELINING, 8BITMIME, ...)
//!   take no parameters; parameters sent anyway are ignored.
//! * `SIZE` without a parameter means the same as `SIZE 0`: no fixed limit (RFC 1870). A
//!   parameter that is not a plain decimal `u64` (`SIZE abc`, `SIZE 1 2`) does not fail the
//!   parse: the line is kept as [`Capability::Other`] under `SIZE`, so
//!   [`has(Keyword::Size)`](Capabilities::has) is `false` and the client does not rely on it.
//! * `AUTH` mechanisms and `XCLIENT` attributes are upper-cased and deduplicated. The legacy
//!   `AUTH=LOGIN PLAIN` form (pre-RFC 4954 servers) is merged with `AUTH`.
//! * A keyword seen again merges into the first one (SIZE: the later value wins); unknown
//!   keywords are kept with their parameters, in order, one entry per line.
//!
//! # Round trip
//!
//! [`Capabilities`] only ever holds canonical values (every insertion goes through the same
//! rules as parsing), so `parse_capabilities(&caps.to_reply(domain, greeting))` gives back
//! `caps` with that domain and greeting, also through the wire form. The reverse is not
//! byte-exact: parsing normalises case, merges and drops ignored parameters.

#[cfg(test)]
mod tests;

use crate::reply::Reply;

/// The EHLO keywords Impulse understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Keyword {
    /// `SIZE [n]`, RFC 1870: message size declaration.
    Size,
    /// `PIPELINING`, RFC 2920: command pipelining.
    Pipelining,
    /// `8BITMIME`, RFC 6152: 8-bit message bodies.
    EightBitMime,
    /// `SMTPUTF8`, RFC 6531: internationalised addresses and headers.
    SmtpUtf8,
    /// `STARTTLS`, RFC 3207: upgrade to TLS.
    StartTls,
    /// `AUTH mech...`, RFC 4954: SASL authentication.
    Auth,
    /// `CHUNKING`, RFC 3030: the BDAT command.
    Chunking,
    /// `BINARYMIME`, RFC 3030: binary message bodies (with CHUNKING).
    BinaryMime,
    /// `DSN`, RFC 3461: delivery status notifications.
    Dsn,
    /// `ENHANCEDSTATUSCODES`, RFC 2034: enhanced status codes in replies.
    EnhancedStatusCodes,
    /// `REQUIRETLS`, RFC 8689: the message must only travel over TLS.
    RequireTls,
    /// `XCLIENT attr...`, Postfix: a trusted client may override connection attributes.
    Xclient,
}

impl Keyword {
    /// Every known keyword, in the order [`Keyword`] declares them.
    pub const ALL: [Keyword; 12] = [
        Keyword::Size,
        Keyword::Pipelining,
        Keyword::EightBitMime,
        Keyword::SmtpUtf8,
        Keyword::StartTls,
        Keyword::Auth,
        Keyword::Chunking,
        Keyword::BinaryMime,
        Keyword::Dsn,
        Keyword::EnhancedStatusCodes,
        Keyword::RequireTls,
        Keyword::Xclient,
    ];

    /// The keyword as advertised, in upper case (`"8BITMIME"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Size => "SIZE",
            Keyword::Pipelining => "PIPELINING",
            Keyword::EightBitMime => "8BITMIME",
            Keyword::SmtpUtf8 => "SMTPUTF8",
            Keyword::StartTls => "STARTTLS",
            Keyword::Auth => "AUTH",
            Keyword::Chunking => "CHUNKING",
            Keyword::BinaryMime => "BINARYMIME",
            Keyword::Dsn => "DSN",
            Keyword::EnhancedStatusCodes => "ENHANCEDSTATUSCODES",
            Keyword::RequireTls => "REQUIRETLS",
            Keyword::Xclient => "XCLIENT",
        }
    }

    /// Looks a keyword up by name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
    }
}

/// One advertised extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// `SIZE [n]`: the largest message accepted, 0 meaning no fixed limit.
    Size(u64),
    /// `PIPELINING`.
    Pipelining,
    /// `8BITMIME`.
    EightBitMime,
    /// `SMTPUTF8`.
    SmtpUtf8,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH` with its SASL mechanisms, upper case.
    Auth(Vec<String>),
    /// `CHUNKING`.
    Chunking,
    /// `BINARYMIME`.
    BinaryMime,
    /// `DSN`.
    Dsn,
    /// `ENHANCEDSTATUSCODES`.
    EnhancedStatusCodes,
    /// `REQUIRETLS`.
    RequireTls,
    /// `XCLIENT` with the attributes the server lets the client set, upper case.
    Xclient(Vec<String>),
    /// Any other line, or a known keyword with parameters that do not parse: the keyword as
    /// sent and its parameters in order.
    Other {
        /// The keyword, case preserved.
        keyword: String,
        /// The parameters, in order.
        params: Vec<String>,
    },
}

impl Capability {
    /// The known keyword this is, or `None` for [`Capability::Other`].
    pub fn keyword(&self) -> Option<Keyword> {
        Some(match self {
            Capability::Size(_) => Keyword::Size,
            Capability::Pipelining => Keyword::Pipelining,
            Capability::EightBitMime => Keyword::EightBitMime,
            Capability::SmtpUtf8 => Keyword::SmtpUtf8,
            Capability::StartTls => Keyword::StartTls,
            Capability::Auth(_) => Keyword::Auth,
            Capability::Chunking => Keyword::Chunking,
            Capability::BinaryMime => Keyword::BinaryMime,
            Capability::Dsn => Keyword::Dsn,
            Capability::EnhancedStatusCodes => Keyword::EnhancedStatusCodes,
            Capability::RequireTls => Keyword::RequireTls,
            Capability::Xclient(_) => Keyword::Xclient,
            Capability::Other { .. } => return None,
        })
    }

    /// The EHLO line advertising this capability (`"SIZE 1000"`, `"AUTH PLAIN LOGIN"`).
    /// `SIZE 0` is written as a bare `SIZE`.
    pub fn to_line(&self) -> String {
        let (name, params): (&str, &[String]) = match self {
            Capability::Size(0) => ("SIZE", &[]),
            Capability::Size(n) => return format!("SIZE {n}"),
            Capability::Auth(mechs) => ("AUTH", mechs),
            Capability::Xclient(attrs) => ("XCLIENT", attrs),
            Capability::Other { keyword, params } => (keyword, params),
            flag => (flag.keyword().map_or("", Keyword::as_str), &[]),
        };
        let mut line = name.to_owned();
        for param in params {
            line.push(' ');
            line.push_str(param);
        }
        line
    }

    /// Classifies one EHLO line's words.
    fn from_words<'a>(keyword: &'a str, params: impl Iterator<Item = &'a str>) -> Capability {
        if keyword
            .as_bytes()
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"AUTH="))
        {
            // Byte 4 is '=', so byte 5 starts a character.
            let first = Some(&keyword[5..]).filter(|m| !m.is_empty());
            return Capability::Auth(upper_unique(first.into_iter().chain(params)));
        }
        let Some(known) = Keyword::from_name(keyword) else {
            return other(keyword, params);
        };
        match known {
            Keyword::Size => {
                let mut params = params.peekable();
                let Some(first) = params.next() else {
                    return Capability::Size(0);
                };
                let size = match params.peek() {
                    None if first.bytes().all(|b| b.is_ascii_digit()) => first.parse().ok(),
                    _ => None,
                };
                match size {
                    Some(n) => Capability::Size(n),
                    None => other(keyword, std::iter::once(first).chain(params)),
                }
            }
            Keyword::Auth => Capability::Auth(upper_unique(params)),
            Keyword::Xclient => Capability::Xclient(upper_unique(params)),
            Keyword::Pipelining => Capability::Pipelining,
            Keyword::EightBitMime => Capability::EightBitMime,
            Keyword::SmtpUtf8 => Capability::SmtpUtf8,
            Keyword::StartTls => Capability::StartTls,
            Keyword::Chunking => Capability::Chunking,
            Keyword::BinaryMime => Capability::BinaryMime,
            Keyword::Dsn => Capability::Dsn,
            Keyword::EnhancedStatusCodes => Capability::EnhancedStatusCodes,
            Keyword::RequireTls => Capability::RequireTls,
        }
    }
}

fn other<'a>(keyword: &str, params: impl Iterator<Item = &'a str>) -> Capability {
    Capability::Other {
        keyword: keyword.to_owned(),
        params: params.map(str::to_owned).collect(),
    }
}

fn upper_unique<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in words.map(str::to_ascii_uppercase) {
        if !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// Whether `c` separates words: ASCII whitespace or control characters.
fn is_separator(c: char) -> bool {
    c.is_ascii_whitespace() || c.is_ascii_control()
}

/// [`is_separator`] for a byte of UTF-8 text: separators are ASCII, so a byte that is one is
/// a whole character. (ASCII whitespace and control characters are exactly the bytes up to
/// space, and DEL.)
fn is_separator_byte(b: u8) -> bool {
    matches!(b, 0..=b' ' | 0x7f)
}

/// Splits a line into words on runs of separators.
fn words(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        let start = rest.bytes().position(|b| !is_separator_byte(b))?;
        let word = &rest[start..];
        let len = word
            .bytes()
            .position(is_separator_byte)
            .unwrap_or(word.len());
        let (word, after) = word.split_at(len);
        rest = after;
        Some(word)
    })
}

/// The extensions a server advertised in its EHLO reply, with its domain and greeting.
///
/// Built by [`parse_capabilities`] on the client, or by the server from [`Capability`]
/// items ([`insert`](Capabilities::insert), `collect()`) before [`to_reply`](Capabilities::to_reply).
/// Items keep the order in which they were first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Capabilities {
    domain: String,
    greeting: String,
    items: Vec<Capability>,
}

/// Parses an EHLO reply into capabilities: Impulse's counterpart of Momentum's
/// `smtp_parse_capabilities`. See the [module doc](self) for the rules.
///
/// Never fails. A reply that is not 2xx advertises nothing: the result then has the domain
/// and greeting of its first line and no extensions.
pub fn parse_capabilities(reply: &Reply) -> Capabilities {
    let mut caps = Capabilities::new();
    let mut lines = reply.lines().iter();
    if let Some(first) = lines.next() {
        let first = first.trim_start_matches(is_separator);
        let end = first.find(is_separator).unwrap_or(first.len());
        caps.domain = first[..end].to_owned();
        // Control characters in the greeting read as spaces, as `to_reply` writes them.
        let greeting = first[end..].trim_start_matches(is_separator);
        caps.greeting = if greeting.bytes().any(|b| b.is_ascii_control()) {
            greeting.replace(|c: char| c.is_ascii_control(), " ")
        } else {
            greeting.to_owned()
        };
    }
    if reply.is_positive_completion() {
        caps.items.reserve_exact(lines.len());
        for line in lines {
            caps.insert_line(line);
        }
    }
    caps
}

impl Capabilities {
    /// An empty set with no domain.
    pub fn new() -> Self {
        Capabilities::default()
    }

    /// The server's domain: the first word of the EHLO reply's first line.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The rest of the EHLO reply's first line, after the domain.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Adds a capability, normalised and merged exactly as if it had been parsed from its
    /// EHLO line ([`Capability::to_line`]); so `Other { keyword: "size", params: ["10"] }`
    /// becomes `Size(10)`, and a second `Auth` adds its mechanisms to the first.
    pub fn insert(&mut self, capability: Capability) {
        let line = capability.to_line();
        self.insert_line(&line);
    }

    /// Adds the capability one EHLO line advertises; empty lines add nothing.
    pub fn insert_line(&mut self, line: &str) {
        let mut words = words(line);
        let Some(keyword) = words.next() else { return };
        let new = Capability::from_words(keyword, words);
        let existing = new
            .keyword()
            .and_then(|k| self.items.iter_mut().find(|c| c.keyword() == Some(k)));
        match (existing, new) {
            (Some(Capability::Auth(have)), Capability::Auth(more))
            | (Some(Capability::Xclient(have)), Capability::Xclient(more)) => {
                for word in more {
                    if !have.contains(&word) {
                        have.push(word);
                    }
                }
            }
            (Some(slot @ Capability::Size(_)), size) => *slot = size,
            (Some(_), _) => {}
            (None, new) => self.items.push(new),
        }
    }

    /// Removes a known capability (for example STARTTLS once TLS is up). Returns whether it
    /// was present.
    pub fn remove(&mut self, keyword: Keyword) -> bool {
        let before = self.items.len();
        self.items.retain(|c| c.keyword() != Some(keyword));
        self.items.len() != before
    }

    /// Whether the known keyword was advertised (a malformed `SIZE` does not count).
    pub fn has(&self, keyword: Keyword) -> bool {
        self.items.iter().any(|c| c.keyword() == Some(keyword))
    }

    /// The advertised SIZE: `Some(0)` when SIZE came without a limit, `None` when absent.
    pub fn size(&self) -> Option<u64> {
        self.items.iter().find_map(|c| match c {
            Capability::Size(n) => Some(*n),
            _ => None,
        })
    }

    /// The AUTH mechanisms (both the RFC 4954 and the legacy `AUTH=` form), upper case, in
    /// the order advertised; empty when AUTH is absent.
    pub fn auth_mechanisms(&self) -> &[String] {
        self.items
            .iter()
            .find_map(|c| match c {
                Capability::Auth(mechs) => Some(mechs.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// Whether the SASL mechanism was advertised, compared case-insensitively.
    pub fn supports_auth(&self, mechanism: &str) -> bool {
        self.auth_mechanisms()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// The XCLIENT attributes, upper case, in the order advertised; empty when XCLIENT is
    /// absent.
    pub fn xclient_attributes(&self) -> &[String] {
        self.items
            .iter()
            .find_map(|c| match c {
                Capability::Xclient(attrs) => Some(attrs.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// The parameters of the first [`Capability::Other`] line with this keyword, compared
    /// case-insensitively. Known keywords are queried through their typed accessors; this
    /// only finds them when their parameters were malformed (`get("SIZE")` after `SIZE abc`).
    pub fn get(&self, keyword: &str) -> Option<&[String]> {
        self.items.iter().find_map(|c| match c {
            Capability::Other { keyword: k, params } if k.eq_ignore_ascii_case(keyword) => {
                Some(params.as_slice())
            }
            _ => None,
        })
    }

    /// The capabilities in the order they were first seen.
    pub fn iter(&self) -> std::slice::Iter<'_, Capability> {
        self.items.iter()
    }

    /// How many capabilities (lines after the greeting) there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// `true` when no extension is advertised.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The server's EHLO reply: `250-domain greeting`, then one line per capability in
    /// order, without enhanced status codes (RFC 2034 exempts the EHLO reply).
    ///
    /// Control characters (CR, LF, ...) in `domain` and `greeting` become spaces, so they
    /// cannot inject capability lines. For the round trip to give them back, `domain` must be
    /// one word that does not look like an enhanced status code, and `greeting` must not
    /// start with a space.
    pub fn to_reply(&self, domain: &str, greeting: &str) -> Reply {
        let clean = |s: &str| s.replace(|c: char| c.is_ascii_control(), " ");
        let mut first = clean(domain);
        let greeting = clean(greeting);
        if !greeting.is_empty() {
            first.push(' ');
            first.push_str(&greeting);
        }
        let mut lines = Vec::with_capacity(self.items.len() + 1);
        lines.push(first);
        lines.extend(self.items.iter().map(Capability::to_line));
        Reply::from_lines(250, lines)
    }
}

impl<'a> IntoIterator for &'a Capabilities {
    type Item = &'a Capability;
    type IntoIter = std::slice::Iter<'a, Capability>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl Extend<Capability> for Capabilities {
    fn extend<I: IntoIterator<Item = Capability>>(&mut self, iter: I) {
        for capability in iter {
            self.insert(capability);
        }
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut caps = Capabilities::new();
        caps.extend(iter);
        caps
    }
}
