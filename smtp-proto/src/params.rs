//! ESMTP `MAIL` and `RCPT` parameters (`keyword[=value]`, RFC 5321 §4.1.2) and xtext
//! (RFC 3461 §4).
//!
//! Known parameters are typed: `SIZE` (RFC 1870), `BODY` (RFC 6152, RFC 3030), `SMTPUTF8`
//! (RFC 6531), `RET`/`ENVID`/`NOTIFY`/`ORCPT` (RFC 3461) and `AUTH` (RFC 4954). Any other
//! parameter, and a known one given to the command it does not belong to (`NOTIFY` on `MAIL`),
//! is kept verbatim in [`Params::unknown`] so extensions and plugins can read it; whether to
//! refuse it (`555 5.5.4`) is the server's call, see [`Params::reject_unknown`].
//!
//! What it does not do: check a value against policy (a `SIZE` over the limit is the server's
//! `552 5.3.4`) or decode the RFC 6533 `utf-8-addr-xtext` of an `ORCPT` with type `utf-8`.

use std::borrow::Cow;
use std::fmt;

mod xtext;
use xtext::{write_xtext, xtext_decode_str};
pub use xtext::{xtext_decode, xtext_encode, XtextError};

use crate::limits::{MAX_ENVID, MAX_ORCPT};
use crate::status::{EnhancedStatus, ErrorReply};

/// Which command the parameters belong to; decides which keywords are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// `MAIL FROM`: `SIZE`, `BODY`, `SMTPUTF8`, `RET`, `ENVID`, `AUTH`.
    Mail,
    /// `RCPT TO`: `NOTIFY`, `ORCPT`.
    Rcpt,
}

/// A known parameter keyword, to say which one had a bad value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Keyword {
    /// `SIZE`.
    Size,
    /// `BODY`.
    Body,
    /// `SMTPUTF8`.
    SmtpUtf8,
    /// `RET`.
    Ret,
    /// `ENVID`.
    Envid,
    /// `AUTH`.
    Auth,
    /// `NOTIFY`.
    Notify,
    /// `ORCPT`.
    Orcpt,
}

/// Why a parameter list was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// Not `keyword[=value]` separated by single spaces, or a value with forbidden characters.
    #[error("malformed parameter")]
    Syntax,
    /// The same keyword twice (compared case-insensitively).
    #[error("duplicate parameter")]
    Duplicate,
    /// A known keyword with a missing, superfluous or malformed value.
    #[error("invalid value for {0:?} parameter")]
    InvalidValue(Keyword),
    /// Not produced by the parser: the server refuses an unknown parameter
    /// ([`Params::reject_unknown`]).
    #[error("unrecognized parameter")]
    Unrecognized,
}

impl ParamError {
    /// The reply a server sends: `501 5.5.4`, or `555 5.5.4` for an unrecognized parameter
    /// (RFC 5321 §4.1.1.11).
    pub fn reply(&self) -> ErrorReply {
        let text = match self {
            ParamError::Unrecognized => {
                return ErrorReply::new(555, EnhancedStatus::new(5, 5, 4), "Unsupported parameter");
            }
            ParamError::Syntax => "Malformed parameter",
            ParamError::Duplicate => "Duplicate parameter",
            ParamError::InvalidValue(k) => match k {
                Keyword::Size => "Invalid SIZE value",
                Keyword::Body => "Invalid BODY value",
                Keyword::SmtpUtf8 => "SMTPUTF8 takes no value",
                Keyword::Ret => "Invalid RET value",
                Keyword::Envid => "Invalid ENVID value",
                Keyword::Auth => "Invalid AUTH value",
                Keyword::Notify => "Invalid NOTIFY value",
                Keyword::Orcpt => "Invalid ORCPT value",
            },
        };
        ErrorReply::new(501, EnhancedStatus::new(5, 5, 4), text)
    }
}

/// `BODY=` (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// `7BIT`.
    SevenBit,
    /// `8BITMIME`.
    EightBitMime,
    /// `BINARYMIME` (requires BDAT).
    BinaryMime,
}

/// `RET=` (RFC 3461 §4.3): what a DSN returns of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `FULL`: the whole message.
    Full,
    /// `HDRS`: the headers only.
    Hdrs,
}

/// `NOTIFY=` (RFC 3461 §4.1). All three `false` is `NEVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Notify {
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// Whether this is `NEVER`.
    pub fn is_never(&self) -> bool {
        *self == Notify::NEVER
    }
}

/// `ORCPT=addr-type;xtext` (RFC 3461 §4.2): the original recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Orcpt<'a> {
    /// The address type, for example `rfc822`, as sent.
    pub addr_type: Cow<'a, str>,
    /// The address, xtext-decoded.
    pub addr: Cow<'a, str>,
}

/// `AUTH=` on `MAIL` (RFC 4954 §5): who submitted the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthParam<'a> {
    /// `AUTH=<>`: the submitter is unknown or not to be trusted.
    Null,
    /// The xtext-decoded `addr-spec`, not further validated.
    Mailbox(Cow<'a, str>),
}

/// A parameter this crate does not type, kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownParam<'a> {
    /// The keyword, case preserved.
    pub keyword: Cow<'a, str>,
    /// The raw value after `=`, if any.
    pub value: Option<Cow<'a, str>>,
}

/// The parameters of one `MAIL` or `RCPT` command.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Params<'a> {
    /// `SIZE=n`: the declared message size in octets (`MAIL`).
    pub size: Option<u64>,
    /// `BODY=` (`MAIL`).
    pub body: Option<Body>,
    /// `SMTPUTF8` (`MAIL`): the transaction may use UTF-8 addresses and headers.
    pub smtputf8: bool,
    /// `RET=` (`MAIL`).
    pub ret: Option<Ret>,
    /// `ENVID=`, xtext-decoded (`MAIL`).
    pub envid: Option<Cow<'a, str>>,
    /// `AUTH=` (`MAIL`).
    pub auth: Option<AuthParam<'a>>,
    /// `NOTIFY=` (`RCPT`).
    pub notify: Option<Notify>,
    /// `ORCPT=` (`RCPT`).
    pub orcpt: Option<Orcpt<'a>>,
    /// Every other parameter, in the order sent.
    pub unknown: Vec<UnknownParam<'a>>,
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl Params<'_> {
    /// Parses `keyword[=value] *(SP keyword[=value])`, the text after the path and its space.
    /// Empty input gives empty parameters. `smtputf8` admits UTF-8 in values of unknown
    /// parameters (RFC 6531 §3.3 extends `esmtp-value`).
    pub fn parse(input: &[u8], kind: ParamKind, smtputf8: bool) -> Result<Params<'_>, ParamError> {
        let mut params = Params::default();
        params.parse_into(input, kind, smtputf8)?;
        Ok(params)
    }
}

impl<'a> Params<'a> {
    /// [`Params::parse`] into `self`, which must be empty. The command parser fills the
    /// parameters where they lie in the command rather than copy them in.
    pub(crate) fn parse_into(
        &mut self,
        input: &'a [u8],
        kind: ParamKind,
        smtputf8: bool,
    ) -> Result<(), ParamError> {
        if input.is_empty() {
            return Ok(());
        }
        // The encoding is checked once. Invalid UTF-8 is a syntax error of the token holding
        // it, reported only after the tokens before it: so parse the valid prefix, whose last
        // token is the one cut short.
        let (text, truncated) = match std::str::from_utf8(input) {
            Ok(text) => (text, false),
            Err(e) => {
                let valid = input.get(..e.valid_up_to()).unwrap_or_default();
                (std::str::from_utf8(valid).unwrap_or_default(), true)
            }
        };
        self.parse_text_into(text, truncated, kind, smtputf8)
    }

    /// [`Params::parse_into`] for input already known to be UTF-8 (the command parser checks
    /// its arguments once rather than each piece).
    pub(crate) fn parse_str_into(
        &mut self,
        input: &'a str,
        kind: ParamKind,
        smtputf8: bool,
    ) -> Result<(), ParamError> {
        if input.is_empty() {
            return Ok(());
        }
        self.parse_text_into(input, false, kind, smtputf8)
    }

    /// Parses `text`; `truncated` when it is the valid prefix of input that was not UTF-8,
    /// whose last token is then a syntax error.
    fn parse_text_into(
        &mut self,
        text: &'a str,
        truncated: bool,
        kind: ParamKind,
        smtputf8: bool,
    ) -> Result<(), ParamError> {
        let mut seen_known = 0u16;
        let mut rest = Some(text);
        while let Some(current) = rest {
            // Split off the next token at a space (a byte loop: tokens are short).
            let token = match current.bytes().position(|b| b == b' ') {
                Some(sp) => {
                    rest = Some(&current[sp + 1..]);
                    &current[..sp]
                }
                None => {
                    rest = None;
                    current
                }
            };
            if truncated && rest.is_none() {
                return Err(ParamError::Syntax);
            }
            // `keyword [= value]`: the keyword runs to the first byte that is not a letter,
            // digit or hyphen, which must be the `=` or the end of the token.
            let key_len = token
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b == b'-'))
                .unwrap_or(token.len());
            let (key, rest) = token.split_at(key_len);
            let value = match rest.strip_prefix('=') {
                Some(value) => Some(value),
                None if rest.is_empty() => None,
                None => return Err(ParamError::Syntax),
            };
            let key_ok = key
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphanumeric);
            let value_ok = |v: &str| {
                !v.is_empty()
                    && v.bytes()
                        .all(|b| matches!(b, b'!'..=b'~') && b != b'=' || (smtputf8 && b >= 0x80))
            };
            if !key_ok || !value.is_none_or(value_ok) {
                return Err(ParamError::Syntax);
            }
            match known(key, kind) {
                Some(k) => {
                    let bit = 1 << k as u16;
                    if seen_known & bit != 0 {
                        return Err(ParamError::Duplicate);
                    }
                    seen_known |= bit;
                    self.set(k, value).ok_or(ParamError::InvalidValue(k))?;
                }
                None => {
                    if self
                        .unknown
                        .iter()
                        .any(|u| u.keyword.eq_ignore_ascii_case(key))
                    {
                        return Err(ParamError::Duplicate);
                    }
                    self.unknown.push(UnknownParam {
                        keyword: Cow::Borrowed(key),
                        value: value.map(Cow::Borrowed),
                    });
                }
            }
        }
        Ok(())
    }
}

impl<'a> Params<'a> {
    /// Stores a known parameter; `None` when its value is invalid.
    fn set(&mut self, k: Keyword, value: Option<&'a str>) -> Option<()> {
        match (k, value) {
            (Keyword::SmtpUtf8, None) => self.smtputf8 = true,
            (_, None) | (Keyword::SmtpUtf8, Some(_)) => return None,
            (Keyword::Size, Some(v)) => {
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                self.size = Some(v.parse().ok()?);
            }
            (Keyword::Body, Some(v)) => {
                let bodies = [
                    ("7BIT", Body::SevenBit),
                    ("8BITMIME", Body::EightBitMime),
                    ("BINARYMIME", Body::BinaryMime),
                ];
                self.body = Some(pick(v, &bodies)?);
            }
            (Keyword::Ret, Some(v)) => {
                self.ret = Some(pick(v, &[("FULL", Ret::Full), ("HDRS", Ret::Hdrs)])?);
            }
            (Keyword::Envid, Some(v)) => {
                let decoded = xtext_decode_str(v).ok()?;
                if decoded.len() > MAX_ENVID {
                    return None;
                }
                self.envid = Some(decoded);
            }
            (Keyword::Auth, Some("<>")) => self.auth = Some(AuthParam::Null),
            (Keyword::Auth, Some(v)) => {
                self.auth = Some(AuthParam::Mailbox(xtext_decode_str(v).ok()?));
            }
            (Keyword::Notify, Some(v)) => self.notify = Some(notify(v)?),
            (Keyword::Orcpt, Some(v)) => {
                let (addr_type, addr) = v.split_once(';')?;
                let atext = |b: u8| crate::address::is_atext(b) && b.is_ascii();
                if addr_type.is_empty() || !addr_type.bytes().all(atext) {
                    return None;
                }
                let addr = xtext_decode_str(addr).ok()?;
                if addr.is_empty() || addr.len() > MAX_ORCPT {
                    return None;
                }
                self.orcpt = Some(Orcpt {
                    addr_type: Cow::Borrowed(addr_type),
                    addr,
                });
            }
        }
        Some(())
    }

    /// `Err(ParamError::Unrecognized)` (`555 5.5.4`) when any parameter is unknown: for a
    /// server that supports no extension parameters of its own.
    pub fn reject_unknown(&self) -> Result<(), ParamError> {
        if self.unknown.is_empty() {
            Ok(())
        } else {
            Err(ParamError::Unrecognized)
        }
    }

    /// Whether there are no parameters at all.
    pub fn is_empty(&self) -> bool {
        *self == Params::default()
    }

    /// Appends every parameter in wire form, each preceded by a space: the known ones in a
    /// fixed order, then the unknown ones as sent.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        if let Some(size) = self.size {
            let _ = write!(out, " SIZE={size}");
        }
        if let Some(body) = self.body {
            out.extend_from_slice(match body {
                Body::SevenBit => b" BODY=7BIT",
                Body::EightBitMime => b" BODY=8BITMIME",
                Body::BinaryMime => b" BODY=BINARYMIME",
            });
        }
        if self.smtputf8 {
            out.extend_from_slice(b" SMTPUTF8");
        }
        if let Some(ret) = self.ret {
            out.extend_from_slice(if ret == Ret::Full {
                b" RET=FULL"
            } else {
                b" RET=HDRS"
            });
        }
        if let Some(envid) = &self.envid {
            out.extend_from_slice(b" ENVID=");
            write_xtext(out, envid);
        }
        match &self.auth {
            Some(AuthParam::Null) => out.extend_from_slice(b" AUTH=<>"),
            Some(AuthParam::Mailbox(m)) => {
                out.extend_from_slice(b" AUTH=");
                write_xtext(out, m);
            }
            None => {}
        }
        if let Some(notify) = self.notify {
            let _ = write!(out, " NOTIFY={notify}");
        }
        if let Some(orcpt) = &self.orcpt {
            let _ = write!(out, " ORCPT={};", orcpt.addr_type);
            write_xtext(out, &orcpt.addr);
        }
        for u in &self.unknown {
            out.push(b' ');
            out.extend_from_slice(u.keyword.as_bytes());
            if let Some(v) = &u.value {
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
        }
    }

    /// Detaches the value from the input buffer.
    pub fn into_owned(self) -> Params<'static> {
        Params {
            size: self.size,
            body: self.body,
            smtputf8: self.smtputf8,
            ret: self.ret,
            envid: self.envid.map(owned),
            auth: self.auth.map(|a| match a {
                AuthParam::Null => AuthParam::Null,
                AuthParam::Mailbox(m) => AuthParam::Mailbox(owned(m)),
            }),
            notify: self.notify,
            orcpt: self.orcpt.map(|o| Orcpt {
                addr_type: owned(o.addr_type),
                addr: owned(o.addr),
            }),
            unknown: self
                .unknown
                .into_iter()
                .map(|u| UnknownParam {
                    keyword: owned(u.keyword),
                    value: u.value.map(owned),
                })
                .collect(),
        }
    }
}

/// The value of the case-insensitive name `v` in `options`.
fn pick<T: Copy>(v: &str, options: &[(&str, T)]) -> Option<T> {
    options
        .iter()
        .find(|(name, _)| v.eq_ignore_ascii_case(name))
        .map(|&(_, t)| t)
}

fn known(key: &str, kind: ParamKind) -> Option<Keyword> {
    // The length and first letter single out the one candidate to compare.
    let (name, keyword) = match (key.len(), key.as_bytes().first()?.to_ascii_uppercase()) {
        (4, b'S') => ("SIZE", Keyword::Size),
        (4, b'B') => ("BODY", Keyword::Body),
        (8, b'S') => ("SMTPUTF8", Keyword::SmtpUtf8),
        (3, b'R') => ("RET", Keyword::Ret),
        (5, b'E') => ("ENVID", Keyword::Envid),
        (4, b'A') => ("AUTH", Keyword::Auth),
        (6, b'N') => ("NOTIFY", Keyword::Notify),
        (5, b'O') => ("ORCPT", Keyword::Orcpt),
        _ => return None,
    };
    let for_kind = match kind {
        ParamKind::Mail => !matches!(keyword, Keyword::Notify | Keyword::Orcpt),
        ParamKind::Rcpt => matches!(keyword, Keyword::Notify | Keyword::Orcpt),
    };
    (for_kind && key.eq_ignore_ascii_case(name)).then_some(keyword)
}

/// `NEVER` or a comma list of distinct `SUCCESS`, `FAILURE`, `DELAY`.
fn notify(v: &str) -> Option<Notify> {
    if v.eq_ignore_ascii_case("NEVER") {
        return Some(Notify::NEVER);
    }
    let mut n = Notify::NEVER;
    for item in v.as_bytes().split(|&b| b == b',') {
        let flag = if item.eq_ignore_ascii_case(b"SUCCESS") {
            &mut n.success
        } else if item.eq_ignore_ascii_case(b"FAILURE") {
            &mut n.failure
        } else if item.eq_ignore_ascii_case(b"DELAY") {
            &mut n.delay
        } else {
            return None;
        };
        if std::mem::replace(flag, true) {
            return None;
        }
    }
    Some(n)
}

impl fmt::Display for Notify {
    /// `NEVER` or the list, for example `SUCCESS,DELAY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            return f.write_str("NEVER");
        }
        let names = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ];
        let mut sep = "";
        for (_, name) in names.iter().filter(|(on, _)| *on) {
            write!(f, "{sep}{name}")?;
            sep = ",";
        }
        Ok(())
    }
}

impl fmt::Display for Params<'_> {
    /// The wire form of [`Params::write_to`]: each parameter preceded by a space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write_to(&mut out);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

#[cfg(test)]
pub(crate) mod tests;
