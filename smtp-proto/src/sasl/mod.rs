//! SASL for SMTP AUTH (RFC 4954): PLAIN and LOGIN for both sides, XOAUTH2 for clients.
//!
//! Sans-IO like the rest of the crate: this module turns AUTH lines into credentials (server)
//! and credentials into AUTH lines (client). It never checks a password — the server's caller
//! does that and answers [`AUTH_SUCCEEDED`] or [`CREDENTIALS_INVALID`] — and it never decides
//! whether plaintext mechanisms are allowed before STARTTLS (answer [`ENCRYPTION_REQUIRED`]).
//!
//! | piece | side | what it does |
//! |---|---|---|
//! | [`Mechanism`] | both | mechanism names, case-insensitive parsing, [`choose_mechanism`] |
//! | [`SaslServer`] | server | PLAIN and LOGIN exchanges → [`Credentials`] |
//! | [`decode_plain`] | server | one RFC 4616 message → [`Credentials`], fully validated |
//! | [`encode_plain`], [`LoginClient`], [`encode_xoauth2`] | client | what to send |
//! | [`decode_response_line`] | server | `*`, base64 and the 12288-octet limit of RFC 4954 §4 |
//! | [`SaslError`] | both | what went wrong, and [`SaslError::reply`] for the server to send |
//!
//! Secrets: passwords and tokens are held in [`Secret`], whose `Debug` prints `<redacted>`, so
//! `{:?}` on [`Credentials`] or [`LoginClient`] never shows them, and no [`SaslError`] carries
//! any decoded payload.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::status::{EnhancedStatus, ErrorReply};

mod client;
mod server;

pub use client::{
    choose_mechanism, decode_xoauth2_challenge, encode_plain, encode_xoauth2, CredentialKind,
    LoginClient,
};
pub use server::{decode_plain, parse_plain, SaslServer, ServerStep};

#[cfg(test)]
mod tests;

/// RFC 4616 §2: authzid, authcid and password are each at most 255 octets.
pub const MAX_PLAIN_FIELD: usize = 255;

/// The LOGIN server's first challenge, `Username:`, base64-encoded as sent after `334 `.
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// The LOGIN server's second challenge, `Password:`, base64-encoded as sent after `334 `.
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// The line a client sends to cancel an exchange (RFC 4954 §4).
pub const CANCEL: &str = "*";

/// The reply code of a server challenge; see [`challenge_line`].
pub const CHALLENGE_CODE: u16 = 334;

/// `235 2.7.0 Authentication successful` as `(code, enhanced status, text)`.
///
/// A tuple rather than an [`ErrorReply`] because success is not an error; the server formats
/// it as `"{code} {status} {text}"`.
pub const AUTH_SUCCEEDED: (u16, EnhancedStatus, &str) = (
    235,
    EnhancedStatus::new(2, 7, 0),
    "Authentication successful",
);

/// `535 5.7.8`: the credentials were checked and are wrong (RFC 4954 §6).
pub const CREDENTIALS_INVALID: ErrorReply = ErrorReply::new(
    535,
    EnhancedStatus::new(5, 7, 8),
    "Authentication credentials invalid",
);
/// `538 5.7.11`: the mechanism needs TLS first (RFC 4954 §6).
pub const ENCRYPTION_REQUIRED: ErrorReply = ErrorReply::new(
    538,
    EnhancedStatus::new(5, 7, 11),
    "Encryption required for requested authentication mechanism",
);
/// `504 5.5.4`: the server does not offer the requested mechanism (RFC 4954 §4).
pub const UNRECOGNIZED_MECHANISM: ErrorReply = ErrorReply::new(
    504,
    EnhancedStatus::new(5, 5, 4),
    "Unrecognized authentication type",
);
/// `503 5.5.1`: AUTH after a successful AUTH (RFC 4954 §4).
pub const ALREADY_AUTHENTICATED: ErrorReply =
    ErrorReply::new(503, EnhancedStatus::new(5, 5, 1), "Already authenticated");
/// `501 5.7.0`: the client sent `*` (RFC 4954 §4 requires a 501).
pub const AUTH_CANCELLED: ErrorReply = ErrorReply::new(
    501,
    EnhancedStatus::new(5, 7, 0),
    "Authentication cancelled",
);
/// `501 5.5.2`: a client response is not valid base64 (RFC 4954 §4).
pub const CANNOT_DECODE: ErrorReply = ErrorReply::new(
    501,
    EnhancedStatus::new(5, 5, 2),
    "Cannot Base64-decode client response",
);
/// `501 5.5.2`: the decoded response breaks the mechanism's syntax (for example a PLAIN
/// message without two NUL separators).
pub const MALFORMED_RESPONSE: ErrorReply = ErrorReply::new(
    501,
    EnhancedStatus::new(5, 5, 2),
    "Malformed authentication response",
);
/// `500 5.5.6`: a response line is longer than the AUTH line limit (RFC 4954 §4, §6).
pub const LINE_TOO_LONG: ErrorReply = ErrorReply::new(
    500,
    EnhancedStatus::new(5, 5, 6),
    "Authentication Exchange line is too long",
);
/// `503 5.5.1`: an AUTH exchange was fed out of order.
pub const BAD_SEQUENCE: ErrorReply = ErrorReply::new(
    503,
    EnhancedStatus::new(5, 5, 1),
    "Bad sequence of commands",
);
/// `530 5.7.0`: the server requires AUTH before this command (RFC 4954 §6).
pub const AUTH_REQUIRED: ErrorReply =
    ErrorReply::new(530, EnhancedStatus::new(5, 7, 0), "Authentication required");
/// `454 4.7.0`: the credential store could not be consulted (RFC 4954 §6).
pub const TEMPORARY_FAILURE: ErrorReply = ErrorReply::new(
    454,
    EnhancedStatus::new(4, 7, 0),
    "Temporary authentication failure",
);

/// Formats a server challenge line without CRLF: `334 <base64 of challenge>`; an empty
/// challenge gives `"334 "` (RFC 4954 §4).
pub fn challenge_line(challenge: &[u8]) -> String {
    format!("{CHALLENGE_CODE} {}", STANDARD.encode(challenge))
}

/// What went wrong in a SASL exchange, grouped by who is at fault.
///
/// No variant carries decoded payload bytes, so an error can be logged without leaking a
/// credential. [`SaslError::reply`] gives the reply a server sends for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    // --- the peer sent garbage ---
    /// The client sent `*` to cancel the exchange.
    #[error("authentication cancelled by the client")]
    Cancelled,
    /// A response was not valid (padded, standard-alphabet) base64.
    #[error("response is not valid base64")]
    BadBase64,
    /// A response line exceeded the AUTH line limit (CRLF included).
    #[error("authentication line longer than {limit} octets")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The decoded response breaks the mechanism's syntax; the reason names the rule.
    #[error("malformed authentication response: {0}")]
    Malformed(&'static str),
    /// The server sent a challenge the client does not expect (client side).
    #[error("unexpected server challenge")]
    UnexpectedChallenge,
    // --- the peer broke sequence ---
    /// A step was fed after the exchange had finished.
    #[error("authentication exchange already finished")]
    Sequence,
    // --- unsupported ---
    /// The mechanism is not implemented by this side or not offered.
    #[error("unsupported authentication mechanism {0}")]
    UnsupportedMechanism(String),
    /// A mechanism name breaks RFC 4422 §3.1 syntax.
    #[error("invalid mechanism name")]
    InvalidMechanismName,
    /// The mechanism may only be used over TLS.
    #[error("encryption required for this mechanism")]
    EncryptionRequired,
    // --- our caller misused the API ---
    /// A credential handed to a client encoder cannot be encoded (the reason says why).
    #[error("invalid credential: {0}")]
    InvalidCredential(&'static str),
}

impl SaslError {
    /// The RFC 4954 reply a server sends for this error.
    ///
    /// Client-side errors ([`SaslError::UnexpectedChallenge`], [`SaslError::InvalidCredential`])
    /// make the client send [`CANCEL`], so they map to the [`AUTH_CANCELLED`] reply the server
    /// will then send.
    pub fn reply(&self) -> ErrorReply {
        match self {
            SaslError::Cancelled
            | SaslError::UnexpectedChallenge
            | SaslError::InvalidCredential(_) => AUTH_CANCELLED,
            SaslError::BadBase64 => CANNOT_DECODE,
            SaslError::LineTooLong { .. } => LINE_TOO_LONG,
            SaslError::Malformed(_) => MALFORMED_RESPONSE,
            SaslError::Sequence => BAD_SEQUENCE,
            SaslError::UnsupportedMechanism(_) | SaslError::InvalidMechanismName => {
                UNRECOGNIZED_MECHANISM
            }
            SaslError::EncryptionRequired => ENCRYPTION_REQUIRED,
        }
    }
}

/// A SASL mechanism name.
///
/// Parsing is case-insensitive; [`Display`](fmt::Display) gives the canonical upper-case name.
/// `CRAM-MD5` is recognised so it can be listed and refused, but this crate does not implement
/// it (that would need an MD5 dependency).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN`, RFC 4616.
    Plain,
    /// `LOGIN`, draft-murchison-sasl-login.
    Login,
    /// `XOAUTH2`, Google's and Microsoft's OAuth 2.0 bearer mechanism.
    XOAuth2,
    /// `CRAM-MD5`, RFC 2195 (named only, not implemented).
    CramMd5,
    /// Any other syntactically valid name, stored upper-case.
    Other(String),
}

impl Mechanism {
    /// Parses a mechanism name, case-insensitively. Returns `None` when the name breaks
    /// RFC 4422 §3.1 (1 to 20 characters of `A-Z 0-9 - _`).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        let valid = (1..=20).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return None;
        }
        Some(if name.eq_ignore_ascii_case("PLAIN") {
            Mechanism::Plain
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Mechanism::Login
        } else if name.eq_ignore_ascii_case("XOAUTH2") {
            Mechanism::XOAuth2
        } else if name.eq_ignore_ascii_case("CRAM-MD5") {
            Mechanism::CramMd5
        } else {
            Mechanism::Other(name.to_ascii_uppercase())
        })
    }

    /// Parses the mechanisms of an EHLO `AUTH` keyword's parameters, such as
    /// `"PLAIN LOGIN XOAUTH2"`; invalid names are skipped and duplicates kept once.
    pub fn parse_list(params: &str) -> Vec<Mechanism> {
        let mut out: Vec<Mechanism> = Vec::new();
        for m in params
            .split_ascii_whitespace()
            .filter_map(Mechanism::from_name)
        {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// The canonical upper-case name.
    pub fn as_str(&self) -> &str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::Other(name) => name,
        }
    }

    /// Whether the mechanism sends the password in the clear (PLAIN, LOGIN), so a server
    /// should only offer it over TLS and otherwise answer [`ENCRYPTION_REQUIRED`].
    pub fn sends_cleartext_password(&self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }
}

impl FromStr for Mechanism {
    type Err = SaslError;

    /// Like [`Mechanism::from_name`], failing with [`SaslError::InvalidMechanismName`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::from_name(s).ok_or(SaslError::InvalidMechanismName)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A password or token. `Debug` prints `<redacted>`; read it with [`Secret::expose`].
///
/// Equality compares in time independent of where the contents differ (only the length
/// leaks). The memory is not zeroed on drop: that needs unsafe code or a dependency.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for checking it or putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the secret.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a server-side exchange yields: who authenticates, as whom, with which password.
///
/// `Debug` redacts the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authorization identity: the identity to act as. Empty means "the same as
    /// `authcid`" (always empty for LOGIN).
    pub authzid: String,
    /// The authentication identity: the user name whose password is checked. Never empty.
    pub authcid: String,
    /// The password. Never empty.
    pub password: Secret,
}

/// Decodes one client response line on the server side (RFC 4954 §4).
///
/// `line` is the line as received, with or without its CRLF; its length is measured as if it
/// ended in CRLF and must not exceed `max_line` (normally
/// [`MAX_AUTH_LINE`](crate::limits::MAX_AUTH_LINE) or
/// [`Limits::auth_line`](crate::Limits::auth_line)). A line of `*` is a cancellation; an empty
/// line is an empty response.
pub fn decode_response_line(line: &[u8], max_line: usize) -> Result<Vec<u8>, SaslError> {
    let line = strip_crlf(line);
    if line.len() + 2 > max_line {
        return Err(SaslError::LineTooLong { limit: max_line });
    }
    if line == CANCEL.as_bytes() {
        return Err(SaslError::Cancelled);
    }
    decode_b64(line)
}

/// Decodes the initial response of `AUTH <mechanism> <initial-response>`: `=` stands for an
/// empty response (RFC 4954 §4); anything else must be base64. The length check is the same as
/// [`decode_response_line`]'s.
pub fn decode_initial_response(arg: &[u8], max_line: usize) -> Result<Vec<u8>, SaslError> {
    let arg = strip_crlf(arg);
    if arg.len() + 2 > max_line {
        return Err(SaslError::LineTooLong { limit: max_line });
    }
    if arg == b"=" {
        return Ok(Vec::new());
    }
    decode_b64(arg)
}

/// Strict base64 decoding (standard alphabet, canonical padding); an empty input is an empty
/// response.
pub(crate) fn decode_b64(data: &[u8]) -> Result<Vec<u8>, SaslError> {
    STANDARD.decode(data).map_err(|_| SaslError::BadBase64)
}

pub(crate) fn encode_b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

fn strip_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Which credential field [`check_field`] checks, for its error messages.
#[derive(Clone, Copy)]
pub(crate) enum Field {
    Authzid,
    Authcid,
    Password,
}

/// Checks one identity or password field: UTF-8, no NUL, 1 (0 for authzid) to
/// [`MAX_PLAIN_FIELD`] octets. Errors name the field, never its contents.
pub(crate) fn check_field(field: &[u8], which: Field) -> Result<String, &'static str> {
    let (empty, long, nul, utf8) = match which {
        Field::Authzid => (
            None,
            "authzid longer than 255 octets",
            "NUL inside authzid",
            "authzid is not UTF-8",
        ),
        Field::Authcid => (
            Some("empty authcid"),
            "authcid longer than 255 octets",
            "NUL inside authcid",
            "authcid is not UTF-8",
        ),
        Field::Password => (
            Some("empty password"),
            "password longer than 255 octets",
            "NUL inside password",
            "password is not UTF-8",
        ),
    };
    match empty {
        Some(msg) if field.is_empty() => return Err(msg),
        _ => {}
    }
    if field.len() > MAX_PLAIN_FIELD {
        return Err(long);
    }
    if field.contains(&0) {
        return Err(nul);
    }
    String::from_utf8(field.to_vec()).map_err(|_| utf8)
}
