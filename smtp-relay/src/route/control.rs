//! Relay control: whether a recipient is accepted at RCPT, the one check the server makes for
//! every RCPT whether or not delivery is enabled.
//!
//! A recipient is accepted when its domain is one of `[relay] domains` (mail for us), or when
//! the client is trusted: its address (after XCLIENT or a PROXY header) is in
//! `[relay] networks` (loopback only by default) or it authenticated. Anyone else gets
//! `554 5.7.1 <address>: Relay access denied`. Sender-specified routing (`%` or `!` in the
//! local part, a source route `@a,@b:user@c`) is refused from untrusted clients whatever the
//! domain. With a recipients table, an address of a relay domain that is not in it gets
//! `550 5.1.1 <address>: Recipient address rejected: User unknown`, from any client, unless
//! its route verifies recipients ([`RelayPolicy::with_verification`]): an address of such a
//! domain that the table does not list (or any address of it, without a table) is
//! [`Decision::Verify`], for the server to probe the route's next hop (see
//! [`crate::verify`]). The bare `<Postmaster>` is always accepted (RFC 5321 §4.5.1), never
//! probed.
//!
//! What it does not do: read the recipients file (its text is passed in), know about plugins
//! (they may still accept or refuse on the RCPT hook) or route anything.

use std::net::IpAddr;
use std::str::FromStr;

use smtp_proto::address::AddressOptions;
use smtp_proto::{AddressError, Domain, EnhancedStatus, ForwardPath, Mailbox, Reply};

use super::domain::{normalize, DomainSet};
use super::ConfigError;

const DOMAINS_KEY: &str = "[relay] domains";
const NETWORKS_KEY: &str = "[relay] networks";

/// The networks trusted when `[relay] networks` is not given: loopback only.
pub const DEFAULT_NETWORKS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// An address block in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`; a bare address is a
/// single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| "not an IP address".to_string())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("prefix length must be 0..={max}")),
            },
        };
        Ok(Network { addr, prefix })
    }
}

impl Network {
    /// Whether `ip` is inside the block. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is
    /// the IPv4 address it maps, so it matches IPv4 blocks; an IPv4 address matches an IPv6
    /// block through its mapped form.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.to_ipv6_mapped().octets(), self.prefix)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// The valid recipients of the relay domains, from the text of `[relay] recipients`: one
/// address or `@domain` (every address of the domain) per line; blank lines and lines starting
/// with `#` are ignored, as is a ` #` comment after an entry. Local parts compare without
/// regard to ASCII case, domains on their A-label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientTable {
    addresses: std::collections::HashSet<(String, String)>,
    domains: std::collections::HashSet<String>,
}

impl RecipientTable {
    /// Parses the file's text; an error names the line.
    pub fn parse(text: &str) -> Result<RecipientTable, ConfigError> {
        let mut table = RecipientTable::default();
        for (i, raw) in text.lines().enumerate() {
            let entry = strip_comment(raw).trim();
            if entry.is_empty() {
                continue;
            }
            let bad = |reason: &str| ConfigError::TableLine {
                line: i + 1,
                entry: entry.to_string(),
                reason: reason.to_string(),
            };
            if let Some(domain) = entry.strip_prefix('@') {
                let name = normalize(domain).ok_or_else(|| bad("not a domain name"))?;
                table.domains.insert(name);
                continue;
            }
            let opts = AddressOptions {
                smtputf8: true,
                ..AddressOptions::default()
            };
            let mailbox = Mailbox::parse(entry.as_bytes(), &opts)
                .map_err(|e| bad(&format!("not an address ({e})")))?;
            let key = mailbox_key(&mailbox).ok_or_else(|| bad("not a domain name"))?;
            table.addresses.insert(key);
        }
        Ok(table)
    }

    /// Whether the table lists `mailbox` or its whole domain.
    pub fn contains(&self, mailbox: &Mailbox<'_>) -> bool {
        match mailbox_key(mailbox) {
            Some(key) => self.domains.contains(&key.1) || self.addresses.contains(&key),
            None => false,
        }
    }
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(at) => &line[..at],
        None => line,
    }
}

/// (local part in ASCII lower case, normalised domain); `None` for an address literal or a
/// name that does not normalise.
fn mailbox_key(mailbox: &Mailbox<'_>) -> Option<(String, String)> {
    match &mailbox.domain {
        Domain::Name(name) => Some((mailbox.local_part.to_ascii_lowercase(), normalize(name)?)),
        Domain::Literal(_) => None,
    }
}

/// Who may relay: `[relay] domains`, `[relay] networks`, the optional recipients table, and
/// which routes verify their recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPolicy {
    domains: DomainSet,
    networks: Vec<Network>,
    recipients: Option<RecipientTable>,
    /// The routes' domains in route order, each with its `verify_recipients`.
    verification: Vec<(DomainSet, bool)>,
}

impl RelayPolicy {
    /// Builds the policy. `networks` is `None` when the key is absent ([`DEFAULT_NETWORKS`]).
    /// `*` in `domains` is an error naming the key: it would make an open relay.
    pub fn new<S: AsRef<str>>(
        domains: &[S],
        networks: Option<&[S]>,
        recipients: Option<RecipientTable>,
    ) -> Result<RelayPolicy, ConfigError> {
        let domains = DomainSet::parse(DOMAINS_KEY, domains, false)?;
        let parse = |entry: &str| {
            entry
                .parse::<Network>()
                .map_err(|reason| ConfigError::Invalid {
                    key: NETWORKS_KEY,
                    entry: entry.to_string(),
                    reason,
                })
        };
        let networks: Vec<Network> = match networks {
            Some(list) => list
                .iter()
                .map(|n| parse(n.as_ref()))
                .collect::<Result<_, _>>(),
            None => DEFAULT_NETWORKS
                .iter()
                .map(|n| parse(n))
                .collect::<Result<_, _>>(),
        }?;
        Ok(RelayPolicy {
            domains,
            networks,
            recipients,
            verification: Vec::new(),
        })
    }

    /// The policy with the routes' domains, in route order, each with whether its route
    /// verifies recipients: the first set that matches a relay domain's address decides
    /// (as the first matching route wins).
    pub fn with_verification(mut self, routes: Vec<(DomainSet, bool)>) -> RelayPolicy {
        self.verification = routes;
        self
    }

    /// Whether the route serving `domain` verifies its recipients.
    pub fn verifies(&self, domain: &str) -> bool {
        if !self.verification.iter().any(|(_, verify)| *verify) {
            return false;
        }
        // Normalised once (lowercase A-label), not once per route.
        let Some(name) = normalize(domain) else {
            return false;
        };
        self.verification
            .iter()
            .find(|(set, _)| set.matches_normalized(&name))
            .is_some_and(|(_, verify)| *verify)
    }

    /// The relay domains (for the config check against routes).
    pub fn domains(&self) -> &DomainSet {
        &self.domains
    }

    /// Whether `client` may relay to any domain.
    pub fn trusts(&self, client: &Client) -> bool {
        client.authenticated || self.networks.iter().any(|n| n.contains(client.addr))
    }
}

/// The client as relay control sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address, after XCLIENT or a PROXY header.
    pub addr: IpAddr,
    /// Whether it authenticated (SMTP AUTH).
    pub authenticated: bool,
}

impl Client {
    /// An unauthenticated client at `addr`.
    pub fn at(addr: IpAddr) -> Client {
        Client {
            addr,
            authenticated: false,
        }
    }
}

/// A forward-path as relay control needs it: the mailbox, and whether the client wrote a source
/// route before it (which [`smtp_proto::address`] parses and drops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptPath {
    path: ForwardPath<'static>,
    source_route: bool,
}

impl RcptPath {
    /// Parses the forward-path as sent, with its angle brackets (`<user@example.org>`,
    /// `<@a,@b:user@c>`, `<Postmaster>`).
    pub fn parse(path: &[u8], smtputf8: bool) -> Result<RcptPath, AddressError> {
        let opts = AddressOptions {
            smtputf8,
            ..AddressOptions::default()
        };
        let parsed = ForwardPath::parse(path, &opts)?.into_owned();
        let inner = path.trim_ascii().strip_prefix(b"<").unwrap_or(path);
        Ok(RcptPath::new(
            parsed,
            inner.trim_ascii_start().starts_with(b"@"),
        ))
    }

    /// A path already parsed; `source_route` says whether the client sent one.
    pub fn new(path: ForwardPath<'static>, source_route: bool) -> RcptPath {
        RcptPath { path, source_route }
    }

    /// The forward-path (without its source route).
    pub fn path(&self) -> &ForwardPath<'static> {
        &self.path
    }
}

/// Why a recipient was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Its domain is a relay domain (and the recipients table, if any, lists it).
    RelayDomain,
    /// The client is trusted to relay anywhere.
    TrustedClient,
    /// The bare `<Postmaster>`.
    Postmaster,
}

/// The answer of relay control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept the recipient (plugins may still refuse it).
    Accept(Acceptance),
    /// Refuse it with this reply.
    Refuse(Reply),
    /// An address of a relay domain whose route verifies recipients, not listed in the
    /// recipients table: accept it only once the route's next hop does (a probe).
    Verify,
}

/// Relay control for one RCPT: see the module doc for the rules.
pub fn check_recipient(policy: &RelayPolicy, rcpt: &RcptPath, client: &Client) -> Decision {
    let mailbox = match &rcpt.path {
        ForwardPath::Postmaster => return Decision::Accept(Acceptance::Postmaster),
        ForwardPath::Mailbox(m) => m,
    };
    let trusted = policy.trusts(client);
    let routed =
        rcpt.source_route || mailbox.local_part.contains('%') || mailbox.local_part.contains('!');
    if routed && !trusted {
        return Decision::Refuse(relay_denied(mailbox));
    }
    let relay_domain = match &mailbox.domain {
        Domain::Name(name) => policy.domains.matches(name),
        Domain::Literal(_) => false,
    };
    if relay_domain {
        let listed = policy.recipients.as_ref().map(|t| t.contains(mailbox));
        let verified = match &mailbox.domain {
            Domain::Name(name) => policy.verifies(name),
            Domain::Literal(_) => false,
        };
        return match listed {
            Some(true) => Decision::Accept(Acceptance::RelayDomain),
            _ if verified => Decision::Verify,
            Some(false) => Decision::Refuse(Reply::new(
                550,
                Some(EnhancedStatus::new(5, 1, 1)),
                &format!("<{mailbox}>: Recipient address rejected: User unknown"),
            )),
            None => Decision::Accept(Acceptance::RelayDomain),
        };
    }
    if trusted {
        Decision::Accept(Acceptance::TrustedClient)
    } else {
        Decision::Refuse(relay_denied(mailbox))
    }
}

fn relay_denied(mailbox: &Mailbox<'_>) -> Reply {
    Reply::new(
        554,
        Some(EnhancedStatus::new(5, 7, 1)),
        &format!("<{mailbox}>: Relay access denied"),
    )
}

#[cfg(test)]
mod tests;
