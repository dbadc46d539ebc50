//! # smtp-relay — the queue manager between the server and the client
//!
//! Decides who may relay, where mail for a domain goes and what a delivery status notification
//! says, as sans-IO code: no sockets, no threads, no clock reads (time and the wall clock are
//! arguments).
//!
//! | module | what it owns |
//! |---|---|
//! | [`dsn`] | RFC 3464 / RFC 6522 delivery status notifications and the RFC 3461 rules |
//! | [`route`] | relay control (who may send where) and routing (static routes, MX per RFC 5321 §5 and RFC 7505) |
//!
//! What it does not do: open connections, query DNS, read the spool or run a thread.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dsn;
pub mod route;
