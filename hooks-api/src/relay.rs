//! The relay-side hook points: their events, their context aliases, and the scope a relay
//! builds their contexts from.
//!
//! The relay (the queue manager that delivers what the server accepted) dispatches four
//! points of the [hook table](crate::points), all of side `relay`, on its own threads — never
//! on a server loop thread:
//!
//! | point | context | event | when | what the verdict means |
//! |---|---|---|---|---|
//! | `route` | [`RouteCtx`] | [`Route`]: domain, next hops, failure | a recipient domain needs next hops (DNS thread, after the static route or MX lookup) | `Continue`/`Accept`: the event's hops (or its failure) stand, as the hooks left them; `Reject` (5xx): every recipient of the domain bounces with that reply, no attempt; `TempFail` (4xx): they are deferred with it |
//! | `attempt` | [`AttemptCtx`] | [`Attempt`]: message, sender, recipient, attempts so far | a recipient is about to be handed to a next hop (relay thread) | `Continue`/`Accept`: it is attempted; `Reject` (5xx): it bounces at once with that reply, no attempt; `TempFail` (4xx): it is deferred with it, no attempt |
//! | `delivery_outcome` | [`DeliveryOutcomeCtx`] | [`DeliveryOutcome`]: recipient, [`Disposition`], reply, bounce class, next hop | a next hop (or a connection failure) decided a recipient (relay thread) | `Continue`/`Accept`: the outcome stands; `Reject` (5xx): it bounces with that reply; `TempFail` (4xx): it is deferred with it. A delivered recipient stays delivered |
//! | `bounce` | [`BounceCtx`] | [`Bounce`]: message, sender, kind, recipients reported | a notification to the sender is about to be queued (relay thread) | `Reject`: no notification is sent (its recipients are still marked bounced); anything else: it is queued, with the headers and notes hooks added |
//!
//! `Disconnect` counts as `Reject` or `TempFail` by its reply's class. A hook that panics,
//! returns a verdict that does not fit its kind, or goes pending (relay contexts cannot wait)
//! is logged with its plugin and point, and the relay applies the **default**, as if every
//! hook had answered `Continue` ([`Ctx::hook_faulted`]): a faulty plugin never bounces mail.
//!
//! As everywhere, a verdict other than `Continue` ends the chain: a `delivery_outcome` hook
//! that changes a verdict is the last to see that outcome. A hook that records outcomes (the
//! suppression list does) and should see only those no other hook changed registers with
//! `Order::Last`.
//!
//! Relay contexts describe no connection: [`Ctx::session`] is a placeholder (unspecified
//! addresses, the relay's host name as HELO), and the note stores are empty at each dispatch.
//! The host builds contexts with a [`RelayScope`].
//!
//! What this module does not do: dispatch (the relay does, through `Registry::dispatch_*`),
//! or know the relay's own types (its next hops and outcomes are translated at the driver).

use std::net::SocketAddr;

use smtp_proto::classify::BounceClass;
use smtp_proto::Reply;

use crate::context::Ctx;
use crate::notes::Notes;
use crate::session::SessionInfo;

/// At most this many headers a `bounce` hook may add to one notification.
pub const MAX_ADDED_HEADERS: usize = 16;
/// At most this many notes `bounce` hooks may add to one notification.
pub const MAX_ADDED_NOTES: usize = 16;
/// An added header's name and value together are at most this long (RFC 5322 §2.1.1 keeps
/// lines under 998 characters).
pub const MAX_ADDED_HEADER_LEN: usize = 900;
/// An added note is at most this long.
pub const MAX_ADDED_NOTE_LEN: usize = 900;

/// One next hop as a `route` hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RouteHop {
    /// The host name, for SNI, certificate checks and logs (the address as text for a
    /// literal address).
    pub name: String,
    /// Where to connect.
    pub addr: SocketAddr,
}

impl RouteHop {
    /// A next hop named `name` at `addr`.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        RouteHop {
            name: name.into(),
            addr,
        }
    }
}

/// The `route` point's event: the next hops found for a recipient domain, or why there are
/// none. Hooks may edit both before the host reads them back: replace or reorder `hops`, set
/// a `failure`, or clear it and give hops. After the chain, a `failure` that is set wins;
/// otherwise the hops are used (none at all defers the domain with `451 4.4.4`).
#[derive(Debug)]
#[non_exhaustive]
pub struct Route<'a> {
    /// The recipient domain, lower-case A-labels.
    pub domain: &'a str,
    /// The next hops, in the order they are tried (a static route's hosts, or MX targets by
    /// preference); empty when the lookup failed.
    pub hops: Vec<RouteHop>,
    /// Why the lookup failed, when it did: a 5xx bounces the domain's recipients (NXDOMAIN,
    /// null MX, an MX loop), a 4xx defers them (SERVFAIL, a timeout).
    pub failure: Option<Reply>,
}

impl<'a> Route<'a> {
    /// The event (host side).
    pub fn new(domain: &'a str, hops: Vec<RouteHop>, failure: Option<Reply>) -> Self {
        Route {
            domain,
            hops,
            failure,
        }
    }
}

/// The `attempt` point's event: one recipient about to be attempted.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Attempt<'a> {
    /// The message's queue id.
    pub queue_id: &'a str,
    /// The envelope sender (empty for the null sender).
    pub sender: &'a str,
    /// The recipient address, as in the envelope (no angle brackets).
    pub recipient: &'a str,
    /// Attempts made for this recipient before this one.
    pub attempts: u32,
}

impl<'a> Attempt<'a> {
    /// The event (host side).
    pub fn new(queue_id: &'a str, sender: &'a str, recipient: &'a str, attempts: u32) -> Self {
        Attempt {
            queue_id,
            sender,
            recipient,
            attempts,
        }
    }
}

/// What became of a recipient in an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// A next hop accepted it.
    Delivered,
    /// A temporary failure: a 4xx, a connection that failed, our own side's failure
    /// ([`DeliveryOutcome::local`]). It will be retried.
    Deferred,
    /// A permanent failure (5xx): the sender will be notified.
    Bounced,
}

impl Disposition {
    /// `delivered`, `deferred` or `bounced`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Delivered => "delivered",
            Disposition::Deferred => "deferred",
            Disposition::Bounced => "bounced",
        }
    }
}

/// The `delivery_outcome` point's event: how one recipient fared in one attempt.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DeliveryOutcome<'a> {
    /// The message's queue id.
    pub queue_id: &'a str,
    /// The envelope sender (empty for the null sender).
    pub sender: &'a str,
    /// The recipient address, as in the envelope.
    pub recipient: &'a str,
    /// The relay's verdict, before the hooks.
    pub disposition: Disposition,
    /// The reply that decided it: the next hop's, or one the relay made up for a connection
    /// failure or a local one.
    pub reply: &'a Reply,
    /// The reply's bounce class, by the host's classifier (plugins' classes and rules
    /// included); 1 Undetermined for a delivery.
    pub class: BounceClass,
    /// `true` when our own side failed (a plugin client state, our policy, a spool read):
    /// never a remote block.
    pub local: bool,
    /// The next hop that answered, `host[ip]:port`, when one did.
    pub next_hop: Option<&'a str>,
}

impl<'a> DeliveryOutcome<'a> {
    /// The event (host side); `local` false and no next hop until set.
    pub fn new(
        queue_id: &'a str,
        sender: &'a str,
        recipient: &'a str,
        disposition: Disposition,
        reply: &'a Reply,
        class: BounceClass,
    ) -> Self {
        DeliveryOutcome {
            queue_id,
            sender,
            recipient,
            disposition,
            reply,
            class,
            local: false,
            next_hop: None,
        }
    }

    /// Sets [`local`](Self::local) (host side).
    pub fn local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }

    /// Sets [`next_hop`](Self::next_hop) (host side).
    pub fn next_hop(mut self, next_hop: Option<&'a str>) -> Self {
        self.next_hop = next_hop;
        self
    }
}

/// What a notification reports (RFC 3464 `Action:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// `failed`: permanent failures, an expiry, an operator's bounce.
    Failed,
    /// `delayed`: the delay warning.
    Delayed,
    /// `relayed`: delivered to a next hop without DSN although `NOTIFY=SUCCESS` was asked.
    Relayed,
}

/// One recipient a notification reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reported<'a> {
    /// The recipient address.
    pub address: &'a str,
    /// The enhanced status for `Status:` (`5.1.1`, `4.4.7`, ...).
    pub status: &'a str,
    /// The last reply, on one line, possibly empty.
    pub reply: &'a str,
    /// The bounce class of the last reply, when there is one.
    pub class: Option<u16>,
}

impl<'a> Reported<'a> {
    /// A reported recipient (host side).
    pub fn new(address: &'a str, status: &'a str, reply: &'a str, class: Option<u16>) -> Self {
        Reported {
            address,
            status,
            reply,
            class,
        }
    }
}

/// The `bounce` point's event: a notification about to be queued to the message's sender.
/// Hooks may add header fields to the notification ([`Bounce::add_header`]) and notes to its
/// spool envelope ([`Bounce::add_note`]); `Reject` suppresses it.
#[derive(Debug)]
pub struct Bounce<'a> {
    /// The queue id of the message reported on.
    pub queue_id: &'a str,
    /// Its envelope sender: who gets the notification.
    pub sender: &'a str,
    /// What the notification reports.
    pub kind: NotificationKind,
    /// The recipients it reports on.
    pub recipients: &'a [Reported<'a>],
    headers: Vec<(String, String)>,
    notes: Vec<String>,
}

impl<'a> Bounce<'a> {
    /// The event (host side), with nothing added yet.
    pub fn new(
        queue_id: &'a str,
        sender: &'a str,
        kind: NotificationKind,
        recipients: &'a [Reported<'a>],
    ) -> Self {
        Bounce {
            queue_id,
            sender,
            kind,
            recipients,
            headers: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds the header field `name: value` to the notification's header section. Refused
    /// (`false`) when the name is not an RFC 5322 field name (printable ASCII, no colon), the
    /// value holds a CR, LF or other control character, the two are longer than
    /// [`MAX_ADDED_HEADER_LEN`], or [`MAX_ADDED_HEADERS`] were added already.
    pub fn add_header(&mut self, name: &str, value: &str) -> bool {
        let name_ok =
            !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        let value_ok = value.chars().all(|c| c == '\t' || !c.is_control());
        if !name_ok
            || !value_ok
            || name.len() + value.len() > MAX_ADDED_HEADER_LEN
            || self.headers.len() >= MAX_ADDED_HEADERS
        {
            return false;
        }
        self.headers
            .push((name.to_owned(), value.trim().to_owned()));
        true
    }

    /// Adds a note to the notification's spool envelope (shown by `impulse spool show`).
    /// Refused (`false`) when it holds a control character, is longer than
    /// [`MAX_ADDED_NOTE_LEN`], or [`MAX_ADDED_NOTES`] were added already.
    pub fn add_note(&mut self, note: &str) -> bool {
        if note.chars().any(char::is_control)
            || note.len() > MAX_ADDED_NOTE_LEN
            || self.notes.len() >= MAX_ADDED_NOTES
        {
            return false;
        }
        self.notes.push(note.to_owned());
        true
    }

    /// The header fields hooks added, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The notes hooks added, in order.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// What relay contexts borrow: a placeholder session and two note stores (see the
/// [module docs](self)). The host keeps one per thread and builds each context with
/// [`RelayScope::ctx`].
#[derive(Debug, Clone)]
pub struct RelayScope {
    session: SessionInfo,
    conn_notes: Notes,
    txn_notes: Notes,
}

impl RelayScope {
    /// A scope whose session names `hostname` as its HELO.
    pub fn new(hostname: &str) -> Self {
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut session = SessionInfo::new(nowhere, nowhere);
        session.helo = Some(hostname.to_owned());
        RelayScope {
            session,
            conn_notes: Notes::new(),
            txn_notes: Notes::new(),
        }
    }

    /// A context around `event`, with empty note stores and no way to go pending.
    pub fn ctx<E>(&mut self, event: E) -> Ctx<'_, E> {
        self.conn_notes.clear();
        self.txn_notes.clear();
        Ctx::new(
            &mut self.session,
            &mut self.conn_notes,
            &mut self.txn_notes,
            event,
        )
    }
}

/// The `route` hook's context.
pub type RouteCtx<'a> = Ctx<'a, Route<'a>>;
/// The `attempt` hook's context.
pub type AttemptCtx<'a> = Ctx<'a, Attempt<'a>>;
/// The `delivery_outcome` hook's context.
pub type DeliveryOutcomeCtx<'a> = Ctx<'a, DeliveryOutcome<'a>>;
/// The `bounce` hook's context.
pub type BounceCtx<'a> = Ctx<'a, Bounce<'a>>;
