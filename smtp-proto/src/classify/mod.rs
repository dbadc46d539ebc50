//! The bounce-class registry: Momentum's `smtp_error_classify` family.
//!
//! Turns an SMTP failure reply into one of the bounce classes of the Momentum / SparkPost table
//! (Invalid Recipient, Mailbox Full, Spam Block, ...) so the client and the bounce logic can
//! decide what to do with the recipient. It does no I/O and keeps no per-message state.
//!
//! | Momentum | here |
//! |---|---|
//! | `smtp_error_classify(text)` | [`classify_reply_text`], [`classify`] |
//! | `smtp_error_classify_len(text, len)` | [`classify_len`] |
//! | `smtp_error_for_id(id)` | [`for_id`] |
//! | `smtp_error_retrieve_class(id, ...)` | [`retrieve_class`] |
//! | `smtp_error_register_class(id, name, desc)` | [`register_class`] (plus a category) |
//! | — | [`register_rule`]: user rules beside the built-in ones |
//! | — | [`other_names`]: a built-in class's KumoMTA and PowerMTA names |
//!
//! The free functions use one process-wide [`Registry`] ([`global`]); embedders and tests can
//! make their own with [`Registry::new`]. A registry is thread-safe: classification takes a
//! read lock (the text is parsed and lowercased once, before the lock), registration a write
//! lock. Registration is meant for start-up, so names and descriptions of user classes are
//! leaked to `&'static str` — once per successful registration; refused duplicates leak
//! nothing.
//!
//! # How a reply is classified
//!
//! [`classify_reply_text`] reads the reply code and the optional enhanced status of the first
//! line (multi-line replies are joined; each line's `550-5.1.1 ` prefix is dropped). Rules are
//! tried from the highest priority down; the first that matches gives the class; when none
//! matches, the class is 1 (Undetermined) — which is what text without a reply code, or a
//! 2xx/3xx reply, gets. Text matching is case-insensitive substring search.
//!
//! Built-in rules, highest first (codes: *fail* = 400–599, *5xx* = 500–599):
//!
//! | priority | codes | status | text contains (any) | class |
//! |---|---|---|---|---|
//! | 1000 | any, or none | — | auto-reply, out of office, vacation, ... | 60 Auto-Reply |
//! | 960 | fail | — or `x.1.7`, `x.1.8` | sender address rejected, sender verify failed, ... | 50 Mail Block |
//! | 955 | 5xx | `5.4.1` | recipient address rejected (Microsoft edge blocking) | 10 Invalid Recipient |
//! | 955 | 5xx | `5.7.1` | relay | 54 Relaying Denied |
//! | 950 | 5xx | `5.1.1`, `5.1.3`, `5.1.6`, `5.1.10`, `5.2.1` | — | 10 Invalid Recipient |
//! | 950 | fail | `x.1.2`, `x.4.3`, `x.4.4` | — | 21 DNS Failure |
//! | 950 | fail | `x.2.2` | — | 22 Mailbox Full |
//! | 950 | fail | `x.3.4`, `x.2.3` | — | 23 Too Large |
//! | 950 | fail | `x.4.1`, `x.4.2`, `x.4.7` | — | 24 Timeout |
//! | 950 | fail | `x.7.23`, `x.7.25`, `x.7.26`, `x.7.27` (RFC 7372) | — | 50 Mail Block |
//! | 900 | fail | — | relay access denied, relaying denied, unable to relay, ... | 54 Relaying Denied |
//! | 850 | fail | — | virus, malware, infected, attachment, executable, ... | 53 Prohibited Attachment |
//! | 800 | fail | — | spamhaus, spamcop, dnsbl, blacklist, block list, ` rbl`, reputation, your ip, ... | 51 Spam Block |
//! | 750 | fail | — | spam, unsolicited, junk mail, message content, suspicious, ... | 52 Spam Content |
//! | 720 | fail | — | quota, mailbox full, mailbox is full, storage allocation, ... | 22 Mailbox Full |
//! | 700 | fail | — | too large, size exceeds, message size, size limit, ... | 23 Too Large |
//! | 690 | fail | — | reverse dns, rdns, reverse hostname, ptr record | 50 Mail Block |
//! | 680 | fail | — | dns, host not found, domain not found, unrouteable, no mx, ... | 21 DNS Failure |
//! | 660 | 5xx | — | no valid recipient, no recipient, need rcpt | 30 Generic Bounce: No RCPT |
//! | 650 | 5xx | — | user unknown, no such user, unknown user, does not exist, mailbox not found, ... | 10 Invalid Recipient |
//! | 600 | fail | — | timeout, timed out, time out | 24 Timeout |
//! | 550 | 4xx | — | greylist, graylist | 70 Transient Failure |
//! | 500 | fail | — | blocked, denied, policy, prohibit, refused, not allowed, spf, dkim, dmarc, ... | 50 Mail Block |
//! | 400 | 5xx | `5.1.x` | — | 10 Invalid Recipient |
//! | 400 | 5xx | `5.7.x` | — | 50 Mail Block |
//! | 350 | 5xx | — | mailbox unavailable | 10 Invalid Recipient |
//! | 100 | 4xx | — | — | 70 Transient Failure |
//! | 0 | 5xx | — | — | 40 Generic Bounce |
//! | — | — | — | nothing matched | 1 Undetermined |
//!
//! The exact needle lists are in the source of `rules.rs`; the tiers are the constants of
//! [`priority`]. Choices worth knowing:
//!
//! - **Hard classes need a 5xx.** Invalid Recipient and No RCPT are never given to a 4xx reply:
//!   a temporary reply must not get a recipient suppressed. `450 4.1.1 user unknown` is 70.
//! - **`5.1.2` is 21 DNS Failure, not 10.** RFC 3463 X.1.2 is "bad destination *system*
//!   address": the domain, usually because it does not resolve. That is soft — a DNS outage or
//!   a misconfigured zone heals — so it must not suppress the address like 10 would.
//! - **Sender problems are 50 Mail Block.** `5.1.7`/`5.1.8` and "sender address rejected" are
//!   about our envelope sender, not the recipient, even when the text says "user unknown".
//! - **Source before content.** A text naming a block list ("spamhaus", "dnsbl") is 51 even if
//!   it also says "spam"; "dnsbl" and "rdns" outrank the plain "dns" needle.
//! - **Precise statuses win over words.** `552 5.3.4 attachment too big` is 23, not 53.
//! - Classes 20, 25, 80, 90 and 100 have no built-in rule: SMTP replies do not carry them;
//!   they are for policy code and bounce-message parsing, through user rules if wanted.
//!
//! At equal priority, the rule registered first wins; built-in rules come before user rules.

use std::fmt;
use std::sync::LazyLock;

use parking_lot::RwLock;

use crate::status::EnhancedStatus;

mod rules;
mod vocab;

pub use rules::{priority, Rule, StatusPattern};
pub use vocab::{ids_for_other_name, other_names, OtherNames, OTHER_NAMES};

#[cfg(test)]
mod tests;

/// The ids of the built-in classes, for rules and comparisons.
pub mod id {
    /// 1 Undetermined.
    pub const UNDETERMINED: u16 = 1;
    /// 10 Invalid Recipient.
    pub const INVALID_RECIPIENT: u16 = 10;
    /// 20 Soft Bounce.
    pub const SOFT_BOUNCE: u16 = 20;
    /// 21 DNS Failure.
    pub const DNS_FAILURE: u16 = 21;
    /// 22 Mailbox Full.
    pub const MAILBOX_FULL: u16 = 22;
    /// 23 Too Large.
    pub const TOO_LARGE: u16 = 23;
    /// 24 Timeout.
    pub const TIMEOUT: u16 = 24;
    /// 25 Admin Failure.
    pub const ADMIN_FAILURE: u16 = 25;
    /// 30 Generic Bounce: No RCPT.
    pub const NO_RCPT: u16 = 30;
    /// 40 Generic Bounce.
    pub const GENERIC_BOUNCE: u16 = 40;
    /// 50 Mail Block.
    pub const MAIL_BLOCK: u16 = 50;
    /// 51 Spam Block.
    pub const SPAM_BLOCK: u16 = 51;
    /// 52 Spam Content.
    pub const SPAM_CONTENT: u16 = 52;
    /// 53 Prohibited Attachment.
    pub const PROHIBITED_ATTACHMENT: u16 = 53;
    /// 54 Relaying Denied.
    pub const RELAYING_DENIED: u16 = 54;
    /// 60 Auto-Reply.
    pub const AUTO_REPLY: u16 = 60;
    /// 70 Transient Failure.
    pub const TRANSIENT_FAILURE: u16 = 70;
    /// 80 Subscribe.
    pub const SUBSCRIBE: u16 = 80;
    /// 90 Unsubscribe.
    pub const UNSUBSCRIBE: u16 = 90;
    /// 100 Challenge-Response.
    pub const CHALLENGE_RESPONSE: u16 = 100;
}

/// What kind of failure a class is, as in the Category column of the Momentum table.
///
/// `Hard` and `Admin` are suppression-level; `Soft`, `Block` and `Undetermined` are usually
/// temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// The reply could not be identified.
    Undetermined,
    /// Permanent: the address should be suppressed.
    Hard,
    /// Temporary or recoverable.
    Soft,
    /// The receiver blocked the message or its sender.
    Block,
    /// Decided by our own policy or an administrative request.
    Admin,
}

impl Category {
    /// The name as written in the Momentum table: `Undetermined`, `Hard`, `Soft`, `Block`,
    /// `Admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Undetermined => "Undetermined",
            Category::Hard => "Hard",
            Category::Soft => "Soft",
            Category::Block => "Block",
            Category::Admin => "Admin",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A bounce class: Momentum's `struct _smtp_error_class` plus its category. Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BounceClass {
    /// The classification code, for example 10.
    pub id: u16,
    /// The short name, for example `Invalid Recipient`.
    pub name: &'static str,
    /// The one-sentence description.
    pub description: &'static str,
    /// The category.
    pub category: Category,
}

impl BounceClass {
    const fn new(id: u16, name: &'static str, description: &'static str, c: Category) -> Self {
        BounceClass {
            id,
            name,
            description,
            category: c,
        }
    }
}

/// The 20 built-in classes, word for word from the Momentum 4 "Bounce Classification Codes"
/// table, sorted by id.
#[rustfmt::skip]
pub const BUILTIN_CLASSES: [BounceClass; 20] = {
    use Category::*;
    [
        BounceClass::new(1, "Undetermined", "The response text could not be identified.", Undetermined),
        BounceClass::new(10, "Invalid Recipient", "The recipient is invalid.", Hard),
        BounceClass::new(20, "Soft Bounce", "The message soft bounced.", Soft),
        BounceClass::new(21, "DNS Failure", "The message bounced due to a DNS failure.", Soft),
        BounceClass::new(22, "Mailbox Full", "The message bounced due to the remote mailbox being over quota.", Soft),
        BounceClass::new(23, "Too Large", "The message bounced because it was too large for the recipient.", Soft),
        BounceClass::new(24, "Timeout", "The message timed out.", Soft),
        BounceClass::new(25, "Admin Failure", "The message was failed by Momentum's configured policies.", Admin),
        BounceClass::new(30, "Generic Bounce: No RCPT", "No recipient could be determined for the message.", Hard),
        BounceClass::new(40, "Generic Bounce", "The message failed for unspecified reasons.", Soft),
        BounceClass::new(50, "Mail Block", "The message was blocked by the receiver.", Block),
        BounceClass::new(51, "Spam Block", "The message was blocked by the receiver as coming from a known spam source.", Block),
        BounceClass::new(52, "Spam Content", "The message was blocked by the receiver as spam.", Block),
        BounceClass::new(53, "Prohibited Attachment", "The message was blocked by the receiver because it contained an attachment.", Block),
        BounceClass::new(54, "Relaying Denied", "The message was blocked by the receiver because relaying is not allowed.", Block),
        BounceClass::new(60, "Auto-Reply", "The message is an auto-reply/vacation mail.", Soft),
        BounceClass::new(70, "Transient Failure", "Message transmission has been temporarily delayed.", Soft),
        BounceClass::new(80, "Subscribe", "The message is a subscribe request.", Admin),
        BounceClass::new(90, "Unsubscribe", "The message is an unsubscribe request.", Hard),
        BounceClass::new(100, "Challenge-Response", "The message is a challenge-response probe.", Soft),
    ]
};

const UNDETERMINED: BounceClass = BUILTIN_CLASSES[0];

/// Longest name a user class may have, in bytes.
pub const MAX_CLASS_NAME: usize = 64;
/// Longest description a user class may have, in bytes.
pub const MAX_CLASS_DESCRIPTION: usize = 1024;

/// Why a class or rule was refused. Every variant is the caller's misuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// A class with this id exists already.
    #[error("bounce class {0} already exists")]
    DuplicateId(u16),
    /// A class with this name (compared ignoring ASCII case) exists already.
    #[error("a bounce class named {0:?} already exists")]
    DuplicateName(String),
    /// The id is reserved: 0 means "no class".
    #[error("bounce class id {0} is reserved")]
    InvalidId(u16),
    /// The name is empty or longer than [`MAX_CLASS_NAME`], or the description longer than
    /// [`MAX_CLASS_DESCRIPTION`].
    #[error("invalid bounce class name or description: {0}")]
    InvalidName(&'static str),
    /// A rule names a class that is not registered.
    #[error("rule names unknown bounce class {0}")]
    UnknownClass(u16),
    /// A rule can never match as written.
    #[error("invalid rule: {0}")]
    InvalidRule(&'static str),
}

/// A set of bounce classes and the rules that assign them. See the [module docs](self).
#[derive(Debug)]
pub struct Registry {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Sorted by id.
    classes: Vec<BounceClass>,
    /// Sorted by priority, highest first; equal priorities in registration order. Each rule
    /// carries its class, resolved at registration (classes are never removed).
    rules: Vec<(Rule, BounceClass)>,
}

impl Inner {
    fn class(&self, id: u16) -> Option<BounceClass> {
        self.classes
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| self.classes[i])
    }

    fn add_rule(&mut self, rule: Rule) -> Result<(), ClassifyError> {
        if let Some(reason) = rule.invalid_reason() {
            return Err(ClassifyError::InvalidRule(reason));
        }
        let class = self
            .class(rule.class())
            .ok_or(ClassifyError::UnknownClass(rule.class()))?;
        let at = self
            .rules
            .partition_point(|(r, _)| r.priority() >= rule.priority());
        self.rules.insert(at, (rule, class));
        Ok(())
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry holding the built-in classes and rules.
    pub fn new() -> Self {
        let mut inner = Inner {
            classes: BUILTIN_CLASSES.to_vec(),
            rules: Vec::new(),
        };
        for rule in rules::builtin_rules() {
            inner.add_rule(rule).expect("built-in rules are valid");
        }
        Registry {
            inner: RwLock::new(inner),
        }
    }

    /// Classifies a reply from its parts. `text` is the reply text without code or enhanced
    /// status; it is not searched for either.
    pub fn classify(&self, code: u16, status: Option<EnhancedStatus>, text: &str) -> BounceClass {
        let mut lower = String::with_capacity(text.len());
        push_lowercase(&mut lower, text.as_bytes());
        self.classify_lowered(code, status, &lower)
    }

    /// Classifies a whole reply such as `"550 5.1.1 <bob@example.com>: user unknown"`, single-
    /// or multi-line. Text without a reply code is matched by text-only rules, else it is
    /// Undetermined.
    pub fn classify_reply_text(&self, reply: &str) -> BounceClass {
        self.classify_len(reply.as_bytes(), usize::MAX)
    }

    /// Classifies the first `max_len` bytes of `reply` (Momentum's `smtp_error_classify_len`).
    /// Bytes that are not UTF-8, including a character cut by `max_len`, are read as U+FFFD.
    pub fn classify_len(&self, reply: &[u8], max_len: usize) -> BounceClass {
        let reply = &reply[..reply.len().min(max_len)];
        let parsed = parse_reply(reply);
        self.classify_lowered(parsed.code, parsed.status, &parsed.lower_text)
    }

    fn classify_lowered(
        &self,
        code: u16,
        status: Option<EnhancedStatus>,
        lower: &str,
    ) -> BounceClass {
        let inner = self.inner.read();
        inner
            .rules
            .iter()
            .find(|(rule, _)| rule.matches(code, status, lower))
            .map_or(UNDETERMINED, |(_, class)| *class)
    }

    /// The class with this id (Momentum's `smtp_error_for_id`).
    pub fn for_id(&self, id: u16) -> Option<BounceClass> {
        self.inner.read().class(id)
    }

    /// The name and description of the class with this id (Momentum's
    /// `smtp_error_retrieve_class`).
    pub fn retrieve_class(&self, id: u16) -> Option<(&'static str, &'static str)> {
        self.for_id(id).map(|c| (c.name, c.description))
    }

    /// All classes, built-in and user, sorted by id.
    pub fn classes(&self) -> Vec<BounceClass> {
        self.inner.read().classes.clone()
    }

    /// Registers a user class (Momentum's `smtp_error_register_class`, with a category).
    ///
    /// Refuses id 0, an id or a name (ignoring ASCII case) already registered, an empty or
    /// over-long name and an over-long description. On success the name and description are
    /// leaked to `&'static str`; a refused registration leaks nothing.
    pub fn register_class(
        &self,
        id: u16,
        name: &str,
        description: &str,
        category: Category,
    ) -> Result<(), ClassifyError> {
        if id == 0 {
            return Err(ClassifyError::InvalidId(id));
        }
        if name.trim().is_empty() {
            return Err(ClassifyError::InvalidName("empty name"));
        }
        if name.len() > MAX_CLASS_NAME {
            return Err(ClassifyError::InvalidName("name too long"));
        }
        if description.len() > MAX_CLASS_DESCRIPTION {
            return Err(ClassifyError::InvalidName("description too long"));
        }
        let mut inner = self.inner.write();
        let at = match inner.classes.binary_search_by_key(&id, |c| c.id) {
            Ok(_) => return Err(ClassifyError::DuplicateId(id)),
            Err(at) => at,
        };
        if inner
            .classes
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
        {
            return Err(ClassifyError::DuplicateName(name.to_owned()));
        }
        let class = BounceClass {
            id,
            name: Box::leak(name.into()),
            description: Box::leak(description.into()),
            category,
        };
        inner.classes.insert(at, class);
        Ok(())
    }

    /// Adds a rule. Refuses a rule naming an unregistered class or one that can never match
    /// (an empty code range or an empty text needle).
    pub fn register_rule(&self, rule: Rule) -> Result<(), ClassifyError> {
        self.inner.write().add_rule(rule)
    }
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::new);

/// The process-wide registry behind the free functions.
pub fn global() -> &'static Registry {
    &GLOBAL
}

/// [`Registry::classify_reply_text`] on the [`global`] registry.
pub fn classify_reply_text(reply: &str) -> BounceClass {
    GLOBAL.classify_reply_text(reply)
}

/// [`Registry::classify`] on the [`global`] registry.
pub fn classify(code: u16, status: Option<EnhancedStatus>, text: &str) -> BounceClass {
    GLOBAL.classify(code, status, text)
}

/// [`Registry::classify_len`] on the [`global`] registry.
pub fn classify_len(reply: &[u8], max_len: usize) -> BounceClass {
    GLOBAL.classify_len(reply, max_len)
}

/// [`Registry::for_id`] on the [`global`] registry.
pub fn for_id(id: u16) -> Option<BounceClass> {
    GLOBAL.for_id(id)
}

/// [`Registry::retrieve_class`] on the [`global`] registry.
pub fn retrieve_class(id: u16) -> Option<(&'static str, &'static str)> {
    GLOBAL.retrieve_class(id)
}

/// [`Registry::classes`] on the [`global`] registry.
pub fn classes() -> Vec<BounceClass> {
    GLOBAL.classes()
}

/// [`Registry::register_class`] on the [`global`] registry.
pub fn register_class(
    id: u16,
    name: &str,
    description: &str,
    category: Category,
) -> Result<(), ClassifyError> {
    GLOBAL.register_class(id, name, description, category)
}

/// [`Registry::register_rule`] on the [`global`] registry.
pub fn register_rule(rule: Rule) -> Result<(), ClassifyError> {
    GLOBAL.register_rule(rule)
}

/// A reply split into code, enhanced status and lowercased text.
struct ParsedReply {
    /// 0 when the first line does not start with a three-digit code.
    code: u16,
    status: Option<EnhancedStatus>,
    lower_text: String,
}

/// Splits a (possibly multi-line) reply. Never fails: text without a code keeps code 0 and
/// all of its text.
fn parse_reply(reply: &[u8]) -> ParsedReply {
    let mut lower_text = String::with_capacity(reply.len());
    let mut lines = reply
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).trim_ascii());
    let first = lines.next().unwrap_or_default();
    let Some((code, rest)) = split_code(first) else {
        push_lowercase(&mut lower_text, first);
        for line in lines.filter(|l| !l.is_empty()) {
            lower_text.push(' ');
            push_lowercase(&mut lower_text, line);
        }
        return ParsedReply {
            code: 0,
            status: None,
            lower_text,
        };
    };
    let (status, rest) = split_status(rest);
    push_lowercase(&mut lower_text, rest);
    for line in lines {
        let line = match split_code(line) {
            Some((c, rest)) if c == code => split_status(rest).1,
            _ => line,
        };
        if !line.is_empty() {
            lower_text.push(' ');
            push_lowercase(&mut lower_text, line);
        }
    }
    ParsedReply {
        code,
        status,
        lower_text,
    }
}

/// `550 rest` / `550-rest` / `550` → (550, rest).
fn split_code(line: &[u8]) -> Option<(u16, &[u8])> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Some((code, &[])),
        Some(b' ' | b'-' | b'\t') => Some((code, line[4..].trim_ascii_start())),
        Some(_) => None,
    }
}

/// `5.1.1 rest` → (Some(5.1.1), rest); anything else is all text.
fn split_status(rest: &[u8]) -> (Option<EnhancedStatus>, &[u8]) {
    match EnhancedStatus::parse_prefix(rest) {
        Some((status, used)) => (Some(status), rest[used..].trim_ascii_start()),
        None => (None, rest),
    }
}

/// Appends `bytes` lowercased; invalid UTF-8 becomes U+FFFD. The one lowercasing used for
/// both texts and rule needles, so they always agree.
fn push_lowercase(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        }
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}
