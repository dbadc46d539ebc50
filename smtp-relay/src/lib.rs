//! # smtp-relay — the queue manager between the server and the client
//!
//! The relay's **sans-IO** parts, with time and the wall clock passed in:
//!
//! | module | what it owns |
//! |---|---|
//! | [`route`] | relay control (who may send where) and routing (static routes, MX per RFC 5321 §5 and RFC 7505, a TTL cache) |
//! | [`schedule`] | the scheduler: messages, route answers and delivery outcomes in; resolve, deliver, persist, bounce and complete out |
//! | [`state`] | the per-recipient state record kept beside each spooled message |
//! | [`retry`] | the retry policy as data (intervals, max ages, delay warning, seeded jitter, down time) |
//! | [`driver`] | the threads that carry it out: spool watch and reload, DNS, delivery through the client engine, notifications |
//! | [`dsn`] | RFC 3464 / RFC 6522 delivery status notifications and the RFC 3461 rules |
//! | [`verify`] | recipient verification at RCPT: probes of a route's next hop on threads of their own, answers in a bounded cache |
//!
//! Apart from [`driver`] and [`verify`], those modules do no I/O: no sockets, no threads, no clock reads, no file I/O, no DNS
//! queries. The [`driver`] does it all for them: a relay thread reads the clock, writes the
//! records through `smtp_spool::Spool::write_state`, hands delivery batches to the
//! `smtp_client` engine and queues notifications; a DNS thread answers route lookups.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod driver;
pub mod dsn;
pub mod retry;
pub mod route;
pub mod schedule;
pub mod state;
pub mod verify;

pub use retry::{parse_duration, InvalidDuration, RetryPolicy, SplitMix64};
pub use schedule::{
    Action, AttemptId, AttemptReport, BounceKind, BounceRecipient, Destination, MessageMeta,
    NextHop, RecipientOutcome, RouteAnswer, ScheduleConfig, ScheduleError, Scheduler, Selection,
    Verdict,
};
pub use state::{MessageState, RecipientState, StateError, Status, Timestamp};
