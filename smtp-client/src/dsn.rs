//! The DSN part of a [`Message`](crate::Message) (RFC 3461): `RET` and `ENVID` for MAIL,
//! `NOTIFY` and `ORCPT` for each recipient's RCPT.
//!
//! These are passed on only to a server whose EHLO offers `DSN`; to one that does not, none
//! of them is sent, and [`Delivery::dsn_offered`](crate::Delivery::dsn_offered) says so
//! (a relay then owes a `relayed` notification to a recipient that asked for success). To a
//! server that offers DSN every recipient gets an `ORCPT`: the one given, or `rfc822;` and
//! the recipient's address when none was (RFC 3461 §4.2 asks a relay to add it).
//!
//! What it does not do: decide whether a notification is due, or build one (the relay
//! does), or check the values against the server's limits (the server answers `501`).

pub use smtp_proto::params::{Notify, Orcpt, Ret};

use smtp_proto::limits::MAX_ORCPT;

/// The DSN parameters of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Dsn {
    /// `RET=` on MAIL: what a notification returns of the message.
    pub ret: Option<Ret>,
    /// `ENVID=` on MAIL, not xtext-encoded (encoding happens on the way out).
    pub envid: Option<String>,
    /// One entry per recipient, in the order of [`Message::recipients`](crate::Message::recipients);
    /// a recipient without an entry is sent as one with [`RcptDsn::default`].
    pub recipients: Vec<RcptDsn>,
}

/// The DSN parameters of one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RcptDsn {
    /// `NOTIFY=`: when the sender wants a notification (absent: the server's default,
    /// failures and delays).
    pub notify: Option<Notify>,
    /// `ORCPT=`: the original recipient, address not xtext-encoded. When absent (or its
    /// type is not a valid `addr-type` atom, or its address is empty or longer than
    /// [`MAX_ORCPT`]), `rfc822;` and the recipient's address is sent.
    pub orcpt: Option<Orcpt<'static>>,
}

impl RcptDsn {
    /// A recipient with this `NOTIFY`, and no `ORCPT` of its own.
    pub fn notify(notify: Notify) -> Self {
        RcptDsn {
            notify: Some(notify),
            orcpt: None,
        }
    }
}

impl Dsn {
    /// The parameters of recipient `i` (the default when the list is shorter).
    pub fn recipient(&self, i: usize) -> RcptDsn {
        self.recipients.get(i).cloned().unwrap_or_default()
    }
}

/// The `ORCPT` sent for `recipient` with the given one: kept when its type is an `atext`
/// atom and its address is not empty, else `rfc822;<recipient>`.
pub(crate) fn orcpt_for(given: Option<&Orcpt<'static>>, recipient: &str) -> Orcpt<'static> {
    let valid = |o: &&Orcpt<'static>| {
        !o.addr_type.is_empty()
            && o.addr_type.bytes().all(is_atext)
            && !o.addr.is_empty()
            && o.addr.len() <= MAX_ORCPT
    };
    match given.filter(valid) {
        Some(o) => o.clone(),
        None => Orcpt {
            addr_type: "rfc822".into(),
            addr: recipient.to_owned().into(),
        },
    }
}

/// RFC 5322 `atext` (ASCII only), without `=` (which no `esmtp-value` may hold): what an
/// `addr-type` atom is made of.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/?^_`{|}~".contains(&b)
}
