//! Who may relay, and where mail for a domain goes.
//!
//! | module | what it owns |
//! |---|---|
//! | [`domain`] | domain names normalised to their A-label form, and the pattern syntax shared by `[relay] domains` and routes |
//! | [`control`] | relay control: the one check the server makes for every RCPT |
//! | [`table`] | static routes, their hosts and TLS policy, and the config checks between routes and relay domains |
//! | [`resolver`] | the DNS answers routing needs, behind a trait; a static table and a TTL cache |
//! | [`mx`] | RFC 5321 §5 and RFC 7505 as pure functions over DNS answers: the ordered next hops |
//!
//! What it does not do: query DNS, open connections or read files (a recipients table arrives
//! as text, DNS answers through [`resolver::Resolver`]).

pub mod control;
pub mod domain;
pub mod mx;
pub mod resolver;
pub mod table;

pub use control::{check_recipient, Client, Decision, RcptPath, RecipientTable, RelayPolicy};
pub use domain::{DomainPattern, DomainSet};
pub use mx::{resolve_domain, LocalHost, NextHop, RouteOutcome};
pub use resolver::{
    Cached, DnsCache, Lookup, MxRecord, Record, RecordType, Resolver, StaticResolver,
};

pub use table::{HostSpec, Route, RouteTable, TlsPolicy};

/// A configuration value that cannot be used, naming the key (and the line, for a table file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `*` in a key that must not accept every domain (`[relay] domains`: it would make an open
    /// relay).
    #[error("{key}: \"*\" is not allowed here (it would accept mail for every domain)")]
    Wildcard {
        /// The key, for example `[relay] domains`.
        key: &'static str,
    },
    /// A value of a key that does not parse.
    #[error("{key}: invalid entry {entry:?}: {reason}")]
    Invalid {
        /// The key, for example `[relay] networks`.
        key: &'static str,
        /// The entry as written.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A line of the recipients table that does not parse.
    #[error("[relay] recipients line {line}: invalid entry {entry:?}: {reason}")]
    TableLine {
        /// The line number, from 1.
        line: usize,
        /// The entry as written.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A `[relay] domains` entry that no route covers: its mail would look up its own MX.
    #[error("[relay] domains: {entry:?} has no [[relay.route]] (its mail would be sent to its own MX, this host)")]
    Unrouted {
        /// The entry as written.
        entry: String,
    },
}
