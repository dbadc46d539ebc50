//! The dispatcher's vocabulary: the ids it hands out, the [`Job`]s it takes, its rules
//! ([`DispatchConfig`]), the [`Action`]s it asks for and its [`Counters`]. No behaviour
//! lives here.

use std::time::Duration;

use super::super::destination::{Destination, PoolKey};
use super::super::{Delivery, Ticket};
use crate::driver::tls::Verify;
use crate::message::Message;
use crate::policy::TlsMode;

/// A connection's number, unique within one dispatcher (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A destination's number within one dispatcher. Equal [`Destination`]s share one; it is
/// forgotten (and a new one given later) once the destination has no job and no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestinationId(pub u64);

/// A message to deliver, and where.
#[derive(Debug, Clone)]
pub struct Job {
    /// The number the [`Delivery`] will carry.
    pub ticket: Ticket,
    /// Where it goes.
    pub destination: Destination,
    /// The message.
    pub message: Message,
}

/// The rules every destination shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchConfig {
    /// The most connections open at once, over every destination (at least 1).
    pub connections: usize,
    /// Connections a job is given to before it is reported, and failed set-ups in a row on
    /// one next hop before the next one is tried (at least 1).
    pub attempts: u32,
    /// How long a ready connection without a job stays open.
    pub idle_timeout: Duration,
    /// Messages per connection for destinations that do not set it (at least 1).
    pub max_deliveries: u32,
    /// The TLS mode of destinations that do not set one (part of their hops' [`PoolKey`]s).
    pub tls: TlsMode,
    /// The certificate verification of destinations that do not set one.
    pub verify: Verify,
}

/// What the driver must do, from [`Dispatcher::poll_action`](super::Dispatcher::poll_action).
#[derive(Debug)]
pub enum Action {
    /// Open connection `conn` to `pool`'s next hop and set its session up with `pool`'s TLS
    /// mode and verification; then call [`handle_ready`](super::Dispatcher::handle_ready) or
    /// [`handle_closed`](super::Dispatcher::handle_closed).
    Open {
        /// The new connection's id.
        conn: ConnId,
        /// The server to connect to and how: the connection's pool.
        pool: PoolKey,
    },
    /// Send `message` on `conn` (ready, as reported); then call
    /// [`handle_message_done`](super::Dispatcher::handle_message_done).
    Assign {
        /// The connection.
        conn: ConnId,
        /// The job's ticket.
        ticket: Ticket,
        /// The message (a clone: the dispatcher keeps the job for a retry or its report).
        message: Message,
    },
    /// Close `conn` politely (QUIT); it has no job.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Drop `conn` at once: it is still being set up and nothing is left to send.
    Abandon {
        /// The connection.
        conn: ConnId,
    },
    /// A job is over: hand its delivery to the caller.
    Complete(Delivery),
}

/// Counters of the dispatcher's decisions so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections opened.
    pub opened: u64,
    /// Connections that ended before they were ready (not counting those abandoned at
    /// shutdown).
    pub setups_failed: u64,
    /// Jobs sent again on another connection after theirs broke before the body.
    pub retries: u64,
    /// Jobs completed.
    pub completed: u64,
}
