//! Delivery status notifications (RFC 3464, RFC 6522) and the RFC 3461 rules around them.
//!
//! [`build`] turns a [`Notification`] (the original envelope, the reporting MTA, one
//! [`RecipientReport`] per recipient and the original message) into the bytes of a complete
//! message: `multipart/report; report-type=delivery-status` with a human-readable part, a
//! `message/delivery-status` part and the returned message (`text/rfc822-headers`, or
//! `message/rfc822` with `RET=FULL`). [`rules`] says when one is due and what is passed on to a
//! next hop that offers DSN. Dates come from wall-clock times passed in ([`date`]).
//!
//! What it does not do: send or queue the notification (it is queued like any message from the
//! null sender), read the clock, or decide a recipient's fate.

mod build;
pub mod date;
pub mod rules;

use std::time::SystemTime;

use smtp_proto::params::Ret;
use smtp_proto::{EnhancedStatus, Reply};

pub use build::build;

/// The envelope of the message reported on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The envelope sender, to whom the notification goes (`""` for the null sender).
    pub sender: String,
    /// `ENVID`, xtext-decoded.
    pub envid: Option<String>,
    /// `RET`; without it the headers only are returned.
    pub ret: Option<Ret>,
    /// When the message arrived.
    pub arrival: SystemTime,
}

/// A recipient's `Action` (RFC 3464 §2.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `failed`: it will not be delivered.
    Failed,
    /// `delayed`: not delivered yet, still being retried until the time given.
    Delayed {
        /// `Will-Retry-Until`.
        will_retry_until: SystemTime,
    },
    /// `delivered`.
    Delivered,
    /// `relayed`: handed to a next hop that does not offer DSN.
    Relayed,
}

impl Action {
    /// The field value: `failed`, `delayed`, `delivered` or `relayed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed { .. } => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// What a notification says about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReport {
    final_recipient: String,
    original: Option<(String, String)>,
    action: Action,
    status: EnhancedStatus,
    remote: Option<(String, Reply)>,
    last_attempt: Option<SystemTime>,
}

impl RecipientReport {
    /// A report on `final_recipient` (the address, without brackets).
    pub fn new(final_recipient: &str, action: Action, status: EnhancedStatus) -> RecipientReport {
        RecipientReport {
            final_recipient: final_recipient.to_string(),
            original: None,
            action,
            status,
            remote: None,
            last_attempt: None,
        }
    }

    /// The original recipient from `ORCPT`: its address type (`rfc822`) and address.
    pub fn original_recipient(mut self, addr_type: &str, addr: &str) -> RecipientReport {
        self.original = Some((addr_type.to_string(), addr.to_string()));
        self
    }

    /// The remote MTA that answered and its reply (`Remote-MTA`, `Diagnostic-Code`).
    pub fn remote(mut self, mta: &str, reply: Reply) -> RecipientReport {
        self.remote = Some((mta.to_string(), reply));
        self
    }

    /// When delivery was last attempted (`Last-Attempt-Date`).
    pub fn last_attempt(mut self, at: SystemTime) -> RecipientReport {
        self.last_attempt = Some(at);
        self
    }

    /// The recipient's action.
    pub fn action(&self) -> &Action {
        &self.action
    }
}

/// Everything a notification is built from.
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    /// The reporting MTA's host name (`Reporting-MTA`, `From: MAILER-DAEMON@host`).
    pub reporting_mta: &'a str,
    /// The original envelope.
    pub envelope: &'a Envelope,
    /// One report per recipient (at least one).
    pub recipients: &'a [RecipientReport],
    /// The original message as spooled (headers, blank line, body).
    pub original: &'a [u8],
    /// The wall-clock time of the notification (`Date:`).
    pub date: SystemTime,
    /// A token unique to this notification (the queue id and an occasion, say): it makes the
    /// `Message-ID` and the boundary.
    pub token: &'a str,
}

#[cfg(test)]
mod tests;
