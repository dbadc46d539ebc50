//! The ESMTP extension registry (`esmtp_extensions_register`): the built-in keywords and the
//! keywords, verbs and MAIL/RCPT parameters plugins register.

use smtp_proto::capability::{Capabilities, Capability};

/// Keywords the factory advertises (or reserves: BINARYMIME is not offered, a binary body
/// could not be relayed to most next hops); an extension may not claim them. Others that smtp-proto knows (XCLIENT, REQUIRETLS) are
/// left to plugins.
const BUILTIN_KEYWORDS: [&str; 10] = [
    "DSN",
    "PIPELINING",
    "SIZE",
    "8BITMIME",
    "SMTPUTF8",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "AUTH",
    "CHUNKING",
    "BINARYMIME",
];

/// Verbs the factory implements itself; an extension may not claim them.
const RESERVED_VERBS: [&str; 14] = [
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "VRFY", "EXPN", "HELP", "NOOP", "QUIT",
    "STARTTLS", "AUTH",
];

/// Why [`Extensions::register`] refused an extension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The keyword, verb or a parameter name is not 1 to 64 letters, digits or hyphens
    /// starting with a letter or digit, or an EHLO parameter contains a space or control
    /// character.
    #[error("invalid extension name {0:?}")]
    InvalidName(String),
    /// The keyword is one the factory advertises itself (`SIZE`, `STARTTLS`, ...).
    #[error("{0} is a built-in ESMTP keyword")]
    BuiltIn(String),
    /// The verb is one the factory implements itself (`MAIL`, `AUTH`, ...).
    #[error("{0} is a built-in SMTP verb")]
    ReservedVerb(String),
    /// The keyword, verb or parameter is already registered.
    #[error("{0} is already registered")]
    Duplicate(String),
}

/// One registered extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    keyword: String,
    params: Vec<String>,
    verb: Option<String>,
    mail_params: Vec<String>,
    rcpt_params: Vec<String>,
}

impl Extension {
    /// The EHLO keyword, upper case.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The EHLO keyword's parameters.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// The verb the extension handles, upper case, if any.
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// MAIL parameters it accepts, upper case.
    pub fn mail_params(&self) -> &[String] {
        &self.mail_params
    }

    /// RCPT parameters it accepts, upper case.
    pub fn rcpt_params(&self) -> &[String] {
        &self.rcpt_params
    }
}

/// What the built-in part of the EHLO reply offers on one connection right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtins<'a> {
    /// The SIZE limit.
    pub size: u64,
    /// Offer SMTPUTF8.
    pub smtputf8: bool,
    /// Offer STARTTLS (configured and not yet active).
    pub starttls: bool,
    /// Offer CHUNKING (BDAT).
    pub chunking: bool,
    /// Offer AUTH with these mechanism names.
    pub auth: Option<&'a [String]>,
    /// Offer DSN (RFC 3461).
    pub dsn: bool,
}

/// The EHLO keyword registry. Built-ins come first in the EHLO reply (PIPELINING, SIZE n,
/// 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN, CHUNKING, then STARTTLS and AUTH when
/// available), then the registered extensions in
/// registration order.
///
/// A registered verb reaches the driver as [`Event::Extension`](super::Event::Extension); a
/// registered MAIL or RCPT parameter is accepted (kept in
/// [`Params::unknown`](smtp_proto::params::Params::unknown)) instead of answered with `555`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    entries: Vec<Extension>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn upper(name: &str) -> Result<String, ExtensionError> {
    if valid_name(name) {
        Ok(name.to_ascii_uppercase())
    } else {
        Err(ExtensionError::InvalidName(name.to_owned()))
    }
}

impl Extensions {
    /// An empty registry (the built-ins are always there).
    pub fn new() -> Self {
        Extensions::default()
    }

    /// Registers an extension: its EHLO `keyword` and `params`, the `verb` it handles (often
    /// the keyword itself, as `XCLIENT`), and the MAIL and RCPT parameters it accepts.
    pub fn register(
        &mut self,
        keyword: &str,
        params: &[&str],
        verb: Option<&str>,
        mail_params: &[&str],
        rcpt_params: &[&str],
    ) -> Result<&Extension, ExtensionError> {
        let keyword = upper(keyword)?;
        if BUILTIN_KEYWORDS.contains(&keyword.as_str()) {
            return Err(ExtensionError::BuiltIn(keyword));
        }
        if self.entries.iter().any(|e| e.keyword == keyword) {
            return Err(ExtensionError::Duplicate(keyword));
        }
        for p in params {
            if p.is_empty() || p.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(ExtensionError::InvalidName((*p).to_owned()));
            }
        }
        let verb = verb.map(upper).transpose()?;
        if let Some(v) = &verb {
            if RESERVED_VERBS.contains(&v.as_str()) {
                return Err(ExtensionError::ReservedVerb(v.clone()));
            }
            if self.find_verb(v).is_some() {
                return Err(ExtensionError::Duplicate(v.clone()));
            }
        }
        let mail_params = mail_params
            .iter()
            .map(|p| upper(p))
            .collect::<Result<Vec<_>, _>>()?;
        let rcpt_params = rcpt_params
            .iter()
            .map(|p| upper(p))
            .collect::<Result<Vec<_>, _>>()?;
        for p in &mail_params {
            if self.accepts_mail_param(p) {
                return Err(ExtensionError::Duplicate(p.clone()));
            }
        }
        for p in &rcpt_params {
            if self.accepts_rcpt_param(p) {
                return Err(ExtensionError::Duplicate(p.clone()));
            }
        }
        self.entries.push(Extension {
            keyword,
            params: params.iter().map(|p| (*p).to_owned()).collect(),
            verb,
            mail_params,
            rcpt_params,
        });
        Ok(&self.entries[self.entries.len() - 1])
    }

    /// The registered extensions, in registration order.
    pub fn iter(&self) -> std::slice::Iter<'_, Extension> {
        self.entries.iter()
    }

    /// The extension handling `verb` (case-insensitive).
    pub fn find_verb(&self, verb: &str) -> Option<&Extension> {
        self.entries.iter().find(|e| {
            e.verb
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case(verb))
        })
    }

    /// Whether a registered extension accepts this MAIL parameter (case-insensitive).
    pub fn accepts_mail_param(&self, keyword: &str) -> bool {
        self.entries.iter().any(|e| {
            e.mail_params
                .iter()
                .any(|p| p.eq_ignore_ascii_case(keyword))
        })
    }

    /// Whether a registered extension accepts this RCPT parameter (case-insensitive).
    pub fn accepts_rcpt_param(&self, keyword: &str) -> bool {
        self.entries.iter().any(|e| {
            e.rcpt_params
                .iter()
                .any(|p| p.eq_ignore_ascii_case(keyword))
        })
    }

    /// The capability list for an EHLO reply: built-ins, then registered keywords.
    pub fn capabilities(&self, builtins: &Builtins<'_>) -> Capabilities {
        self.capabilities_except(builtins, &[])
    }

    /// The capability list for an EHLO reply without the registered keywords in `hidden`
    /// (compared ignoring case): the extensions not advertised to this session.
    pub fn capabilities_except(&self, builtins: &Builtins<'_>, hidden: &[String]) -> Capabilities {
        let mut caps = Capabilities::new();
        caps.insert(Capability::Pipelining);
        caps.insert(Capability::Size(builtins.size));
        caps.insert(Capability::EightBitMime);
        if builtins.smtputf8 {
            caps.insert(Capability::SmtpUtf8);
        }
        caps.insert(Capability::EnhancedStatusCodes);
        if builtins.dsn {
            caps.insert(Capability::Dsn);
        }
        if builtins.chunking {
            caps.insert(Capability::Chunking);
        }
        if builtins.starttls {
            caps.insert(Capability::StartTls);
        }
        if let Some(mechs) = builtins.auth {
            caps.insert(Capability::Auth(mechs.to_vec()));
        }
        for e in &self.entries {
            if hidden.iter().any(|h| h.eq_ignore_ascii_case(&e.keyword)) {
                continue;
            }
            caps.insert(Capability::Other {
                keyword: e.keyword.clone(),
                params: e.params.clone(),
            });
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rules() {
        let mut x = Extensions::new();
        x.register("XCLIENT", &["ADDR", "NAME"], Some("xclient"), &["XID"], &[])
            .unwrap();
        assert!(matches!(
            x.register("xclient", &[], None, &[], &[]),
            Err(ExtensionError::Duplicate(_))
        ));
        assert!(matches!(
            x.register("SIZE", &[], None, &[], &[]),
            Err(ExtensionError::BuiltIn(_))
        ));
        assert!(matches!(
            x.register("XFOO", &[], Some("MAIL"), &[], &[]),
            Err(ExtensionError::ReservedVerb(_))
        ));
        assert!(matches!(
            x.register("X FOO", &[], None, &[], &[]),
            Err(ExtensionError::InvalidName(_))
        ));
        assert!(matches!(
            x.register("XBAR", &["a\r\nb"], None, &[], &[]),
            Err(ExtensionError::InvalidName(_))
        ));
        assert!(x.find_verb("XClient").is_some());
        assert!(x.accepts_mail_param("xid"));
        assert!(!x.accepts_rcpt_param("xid"));
    }
}
