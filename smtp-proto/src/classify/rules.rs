//! Classification rules: what a rule matches, the built-in priorities and the built-in rules.

use std::fmt;
use std::ops::RangeInclusive;

use super::{id, push_lowercase};
use crate::status::EnhancedStatus;

pub mod priority {
    //! The priorities of the built-in rules. Higher wins; at equal priority the rule
    //! registered first wins (built-in rules are registered before any user rule).
    //!
    //! A user rule above [`AUTO_REPLY`] overrides every built-in rule; one between two tiers
    //! slots in there; one below [`GENERIC`] only sees replies no built-in rule matches (codes
    //! outside 400–599, or text without a reply code).

    /// Text says auto-reply / out of office / vacation (any code, even none).
    pub const AUTO_REPLY: i32 = 1000;
    /// Our sender was refused: sender texts and `x.1.7` / `x.1.8`.
    pub const SENDER: i32 = 960;
    /// An enhanced status together with a text (`5.7.1` + "relay").
    pub const STATUS_AND_TEXT: i32 = 955;
    /// Unambiguous enhanced statuses (`5.1.1`, `x.2.2`, `x.3.4`, `x.1.2`, `x.4.1`, ...).
    pub const STATUS: i32 = 950;
    /// Relaying refused.
    pub const RELAY: i32 = 900;
    /// Virus or prohibited attachment.
    pub const ATTACHMENT: i32 = 850;
    /// Sender IP listed or of bad reputation.
    pub const SPAM_SOURCE: i32 = 800;
    /// Message content judged to be spam.
    pub const SPAM_CONTENT: i32 = 750;
    /// Mailbox over quota (text).
    pub const QUOTA: i32 = 720;
    /// Message too large (text).
    pub const SIZE: i32 = 700;
    /// Missing reverse DNS of the sending host: a block, not a DNS failure.
    pub const REVERSE_DNS: i32 = 690;
    /// DNS failure (text).
    pub const DNS: i32 = 680;
    /// No valid recipient (text, 5xx).
    pub const NO_RCPT: i32 = 660;
    /// Unknown or invalid recipient (text, 5xx).
    pub const RECIPIENT: i32 = 650;
    /// Timeout (text).
    pub const TIMEOUT: i32 = 600;
    /// Greylisting (text, 4xx).
    pub const GREYLIST: i32 = 550;
    /// Generic policy words: blocked, denied, policy, prohibited, SPF/DKIM/DMARC.
    pub const POLICY: i32 = 500;
    /// Enhanced-status subject only: `5.1.x` → Invalid Recipient, `5.7.x` → Mail Block.
    pub const STATUS_SUBJECT: i32 = 400;
    /// "mailbox unavailable" with no better match (5xx): RFC 5321's stock 550 text, also used
    /// for policy rejections, hence weaker than any status subject.
    pub const MAILBOX_UNAVAILABLE: i32 = 350;
    /// Any other 4xx → Transient Failure.
    pub const TRANSIENT: i32 = 100;
    /// Any other 5xx → Generic Bounce.
    pub const GENERIC: i32 = 0;
}

/// A pattern over enhanced status codes: each part either fixed or a wildcard.
///
/// `5.1.1` exact, `5.7.*` a class and subject, `*.2.2` a subject and detail in either class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusPattern {
    /// Required class (2, 4 or 5), or any.
    pub class: Option<u8>,
    /// Required subject, or any.
    pub subject: Option<u16>,
    /// Required detail, or any.
    pub detail: Option<u16>,
}

impl StatusPattern {
    /// A pattern from its parts; `None` is a wildcard.
    pub const fn new(class: Option<u8>, subject: Option<u16>, detail: Option<u16>) -> Self {
        StatusPattern {
            class,
            subject,
            detail,
        }
    }

    /// A pattern matching exactly `status`.
    pub const fn exact(status: EnhancedStatus) -> Self {
        StatusPattern::new(
            Some(status.class),
            Some(status.subject),
            Some(status.detail),
        )
    }

    /// Parses `5.1.1`, `5.7.*`, `*.2.2` (`x` or `X` also stand for a wildcard). Returns `None`
    /// for anything else, including a class other than 2, 4 or 5 and parts over 999.
    pub fn parse(s: &str) -> Option<StatusPattern> {
        let mut parts = s.split('.');
        let mut part = |max: u16| -> Option<Option<u16>> {
            match parts.next()? {
                "*" | "x" | "X" => Some(None),
                p if (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().ok().filter(|v| *v <= max).map(Some)
                }
                _ => None,
            }
        };
        let class = part(5)?;
        let subject = part(999)?;
        let detail = part(999)?;
        if parts.next().is_some() || class.is_some_and(|c| !matches!(c, 2 | 4 | 5)) {
            return None;
        }
        Some(StatusPattern::new(class.map(|c| c as u8), subject, detail))
    }

    /// Whether `status` matches.
    pub fn matches(&self, status: EnhancedStatus) -> bool {
        self.class.is_none_or(|c| c == status.class)
            && self.subject.is_none_or(|s| s == status.subject)
            && self.detail.is_none_or(|d| d == status.detail)
    }
}

impl From<EnhancedStatus> for StatusPattern {
    fn from(status: EnhancedStatus) -> Self {
        StatusPattern::exact(status)
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn part(f: &mut fmt::Formatter<'_>, v: Option<u16>) -> fmt::Result {
            match v {
                Some(v) => write!(f, "{v}"),
                None => f.write_str("*"),
            }
        }
        part(f, self.class.map(u16::from))?;
        f.write_str(".")?;
        part(f, self.subject)?;
        f.write_str(".")?;
        part(f, self.detail)
    }
}

/// A classification rule: conditions on a reply, a priority, and the class it yields.
///
/// Every condition given must hold: the reply code lies in the code range, the enhanced status
/// (which must be present) matches the pattern, and the text contains at least one of the
/// needles, case-insensitively. A rule with no condition matches every reply. Needles are
/// lowercased once, here. Build with [`Rule::new`] and the chained setters; check and add with
/// [`Registry::register_rule`](super::Registry::register_rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    class: u16,
    priority: i32,
    codes: Option<(u16, u16)>,
    status: Option<StatusPattern>,
    needles: Vec<String>,
}

impl Rule {
    /// A rule yielding class `class` at `priority` (see [`priority`] for the built-in tiers).
    pub fn new(class: u16, priority: i32) -> Self {
        Rule {
            class,
            priority,
            codes: None,
            status: None,
            needles: Vec::new(),
        }
    }

    /// Matches only this reply code.
    pub fn code(self, code: u16) -> Self {
        self.codes(code..=code)
    }

    /// Matches only reply codes in `range`, for example `400..=499`.
    pub fn codes(mut self, range: RangeInclusive<u16>) -> Self {
        self.codes = Some((*range.start(), *range.end()));
        self
    }

    /// Matches only replies whose enhanced status matches `pattern`.
    pub fn status(mut self, pattern: impl Into<StatusPattern>) -> Self {
        self.status = Some(pattern.into());
        self
    }

    /// Adds a text needle: the rule matches when the text contains any needle, ignoring case.
    pub fn text(mut self, needle: &str) -> Self {
        let mut lower = String::with_capacity(needle.len());
        push_lowercase(&mut lower, needle.as_bytes());
        self.needles.push(lower);
        self
    }

    /// Adds several text needles; see [`Rule::text`].
    pub fn texts<I>(self, needles: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        needles
            .into_iter()
            .fold(self, |rule, n| rule.text(n.as_ref()))
    }

    /// The class this rule yields.
    pub fn class(&self) -> u16 {
        self.class
    }

    /// The rule's priority; higher wins.
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// Why this rule cannot be registered, if it cannot (class existence aside).
    pub(super) fn invalid_reason(&self) -> Option<&'static str> {
        if self.codes.is_some_and(|(lo, hi)| lo > hi) {
            return Some("empty code range");
        }
        if self.needles.iter().any(String::is_empty) {
            return Some("empty text needle");
        }
        None
    }

    /// Whether the rule matches; `lower_text` must already be lowercased.
    pub(super) fn matches(
        &self,
        code: u16,
        status: Option<EnhancedStatus>,
        lower_text: &str,
    ) -> bool {
        if self.codes.is_some_and(|(lo, hi)| code < lo || code > hi) {
            return false;
        }
        if let Some(pattern) = self.status {
            if !status.is_some_and(|s| pattern.matches(s)) {
                return false;
            }
        }
        self.needles.is_empty() || self.needles.iter().any(|n| lower_text.contains(n.as_str()))
    }
}

/// The built-in rules, in registration order. The precedence table in the module docs lists
/// them; keep the two in step.
pub(super) fn builtin_rules() -> Vec<Rule> {
    use priority::*;
    const FAIL: RangeInclusive<u16> = 400..=599;
    const PERM: RangeInclusive<u16> = 500..=599;
    const TEMP: RangeInclusive<u16> = 400..=499;
    let st = |s: &str| StatusPattern::parse(s).expect("built-in status pattern");
    let status_rule = |class: u16, pattern: &str, codes: RangeInclusive<u16>| {
        Rule::new(class, STATUS).codes(codes).status(st(pattern))
    };

    let mut rules = vec![
        Rule::new(id::AUTO_REPLY, AUTO_REPLY).texts([
            "auto-reply",
            "autoreply",
            "auto reply",
            "automatic reply",
            "automated reply",
            "out of office",
            "out of the office",
            "vacation",
        ]),
        Rule::new(id::MAIL_BLOCK, SENDER).codes(FAIL).texts([
            "sender address rejected",
            "sender verify failed",
            "sender verification failed",
            "sender rejected",
            "sender denied",
            "sender not allowed",
        ]),
        Rule::new(id::MAIL_BLOCK, SENDER)
            .codes(FAIL)
            .status(st("*.1.7")),
        Rule::new(id::MAIL_BLOCK, SENDER)
            .codes(FAIL)
            .status(st("*.1.8")),
        // Microsoft's directory-based edge blocking: "550 5.4.1 Recipient address rejected:
        // Access denied" means the recipient does not exist.
        Rule::new(id::INVALID_RECIPIENT, STATUS_AND_TEXT)
            .codes(PERM)
            .status(st("5.4.1"))
            .text("recipient address rejected"),
        Rule::new(id::RELAYING_DENIED, STATUS_AND_TEXT)
            .codes(PERM)
            .status(st("5.7.1"))
            .text("relay"),
    ];
    for pattern in ["5.1.1", "5.1.3", "5.1.6", "5.1.10", "5.2.1"] {
        rules.push(status_rule(id::INVALID_RECIPIENT, pattern, PERM));
    }
    for (class, pattern) in [
        (id::DNS_FAILURE, "*.1.2"),
        (id::DNS_FAILURE, "*.4.3"),
        (id::DNS_FAILURE, "*.4.4"),
        (id::MAILBOX_FULL, "*.2.2"),
        (id::TOO_LARGE, "*.3.4"),
        (id::TOO_LARGE, "*.2.3"),
        (id::TIMEOUT, "*.4.1"),
        (id::TIMEOUT, "*.4.2"),
        (id::TIMEOUT, "*.4.7"),
        // RFC 7372: SPF, reverse DNS, multiple authentication checks, null MX of our sender.
        (id::MAIL_BLOCK, "*.7.23"),
        (id::MAIL_BLOCK, "*.7.25"),
        (id::MAIL_BLOCK, "*.7.26"),
        (id::MAIL_BLOCK, "*.7.27"),
    ] {
        rules.push(status_rule(class, pattern, FAIL));
    }
    rules.extend([
        Rule::new(id::RELAYING_DENIED, RELAY).codes(FAIL).texts([
            "relay access denied",
            "relaying denied",
            "relay denied",
            "relay not permitted",
            "relaying not permitted",
            "not permitted to relay",
            "relay not allowed",
            "relaying not allowed",
            "not allowed to relay",
            "unable to relay",
            "cannot relay",
            "can't relay",
            "we do not relay",
            "relaying disallowed",
            "relaying prohibited",
            "relay prohibited",
            "no relaying",
        ]),
        Rule::new(id::PROHIBITED_ATTACHMENT, ATTACHMENT)
            .codes(FAIL)
            .texts([
                "virus",
                "malware",
                "infected",
                "trojan",
                "attachment",
                "executable",
                "prohibited file",
                "banned file",
                "file type",
            ]),
        Rule::new(id::SPAM_BLOCK, SPAM_SOURCE).codes(FAIL).texts([
            "spamhaus",
            "spamcop",
            "sorbs",
            "barracuda",
            "dnsbl",
            "blacklist",
            "black list",
            "blocklist",
            "block list",
            "denylist",
            " rbl",
            "rbl ",
            "realtime blackhole",
            "is listed",
            "listed at",
            "listed on",
            "reputation",
            "your ip",
            "sending ip",
            "user complaints",
        ]),
        Rule::new(id::SPAM_CONTENT, SPAM_CONTENT)
            .codes(FAIL)
            .texts([
                "spam",
                "unsolicited",
                "junk mail",
                "bulk mail",
                "content rejected",
                "message content",
                "content filter",
                "suspicious",
                "phishing",
            ]),
        Rule::new(id::MAILBOX_FULL, QUOTA).codes(FAIL).texts([
            "quota",
            "mailbox full",
            "mailbox is full",
            "mailbox was full",
            "inbox is full",
            "inbox full",
            "full mailbox",
            "mail box full",
            "storage allocation",
            "mailbox size limit",
        ]),
        Rule::new(id::TOO_LARGE, SIZE).codes(FAIL).texts([
            "too large",
            "too big",
            "size exceeds",
            "exceeds size",
            "message size",
            "size limit",
            "maximum message size",
            "message length exceeds",
        ]),
        Rule::new(id::MAIL_BLOCK, REVERSE_DNS).codes(FAIL).texts([
            "reverse dns",
            "rdns",
            "reverse hostname",
            "reverse lookup",
            "ptr record",
        ]),
        Rule::new(id::DNS_FAILURE, DNS).codes(FAIL).texts([
            "dns",
            "host not found",
            "host unknown",
            "unknown host",
            "domain not found",
            "no such domain",
            "domain does not exist",
            "domain doesn't exist",
            "nxdomain",
            "unrouteable",
            "unroutable",
            "no mx",
            "mx record",
            "name server",
            "name service",
            "could not resolve",
            "unable to resolve",
        ]),
        Rule::new(id::NO_RCPT, NO_RCPT).codes(PERM).texts([
            "no valid recipient",
            "no recipient",
            "need rcpt",
            "no rcpt",
        ]),
        Rule::new(id::INVALID_RECIPIENT, RECIPIENT)
            .codes(PERM)
            .texts([
                "user unknown",
                "unknown user",
                "no such user",
                "no such mailbox",
                "no such recipient",
                "no such address",
                "unknown recipient",
                "recipient unknown",
                "invalid recipient",
                "recipient not found",
                "user not found",
                "mailbox not found",
                "mailbox does not exist",
                "unknown mailbox",
                "mailbox unknown",
                "invalid mailbox",
                "not a valid mailbox",
                "addressee unknown",
                "does not exist",
                "doesn't exist",
                "user doesn't have",
                "account disabled",
                "account has been disabled",
                "account is disabled",
            ]),
        Rule::new(id::TIMEOUT, TIMEOUT).codes(FAIL).texts([
            "timeout",
            "timed out",
            "time out",
            "time-out",
            "delivery time expired",
        ]),
        Rule::new(id::TRANSIENT_FAILURE, GREYLIST)
            .codes(TEMP)
            .texts(["greylist", "graylist", "grey-list", "gray-list"]),
        Rule::new(id::MAIL_BLOCK, POLICY).codes(FAIL).texts([
            "blocked",
            "denied",
            "policy",
            "policies",
            "prohibit",
            "not allowed",
            "not permitted",
            "refused",
            "banned",
            "not authorized",
            "unauthorized",
            "unauthenticated",
            "spf",
            "dkim",
            "dmarc",
        ]),
        Rule::new(id::INVALID_RECIPIENT, STATUS_SUBJECT)
            .codes(PERM)
            .status(st("5.1.*")),
        Rule::new(id::MAIL_BLOCK, STATUS_SUBJECT)
            .codes(PERM)
            .status(st("5.7.*")),
        Rule::new(id::INVALID_RECIPIENT, MAILBOX_UNAVAILABLE)
            .codes(PERM)
            .text("mailbox unavailable"),
        Rule::new(id::TRANSIENT_FAILURE, TRANSIENT).codes(TEMP),
        Rule::new(id::GENERIC_BOUNCE, GENERIC).codes(PERM),
    ]);
    rules
}
