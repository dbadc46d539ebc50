//! The Impulse relay: the queue manager between the spool and the client.
//!
//! This crate holds the relay's **sans-IO** parts: the per-recipient state record that lives
//! beside each spooled message ([`state`]), the retry policy as data ([`retry`]) and the
//! scheduler ([`schedule`]) that turns messages, route answers and delivery outcomes into
//! actions (resolve, deliver, persist, bounce, complete), with time passed in.
//!
//! What it does not do: no sockets, no threads, no clock reads, no file I/O. A driver (a
//! thread of its own, in a later increment) reads the clock, writes the records through
//! `smtp_spool::Spool::write_state`, runs DNS and hands delivery batches to the client engine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod retry;
pub mod schedule;
pub mod state;

pub use retry::{parse_duration, InvalidDuration, RetryPolicy, SplitMix64};
pub use schedule::{
    Action, AttemptId, AttemptReport, BounceKind, BounceRecipient, Destination, MessageMeta,
    NextHop, RecipientOutcome, RouteAnswer, ScheduleConfig, ScheduleError, Scheduler, Selection,
    Verdict,
};
pub use state::{MessageState, RecipientState, StateError, Status, Timestamp};
