//! # impulse-test-support — what Impulse's tests share
//!
//! | module | what it is for |
//! |---|---|
//! | [`pair`] | the real client session against the real server factory, in memory, on one simulated clock, the spool on `MemFs` |
//! | [`cli`] | the `impulse` binary from the root tests: a command runner, `impulse send`, `impulse serve` on a loopback port |
//! | [`server`] | Impulse's own server on a loopback port with a temporary spool, for socket tests |
//! | [`dns`] | an authoritative DNS responder on loopback (UDP, TCP on truncation): MX/A/AAAA with TTLs, NXDOMAIN, SERVFAIL, silence, forged answers, query counts |
//! | [`fake`] | scripted fake SMTP servers: one closure over one connection, or canned behaviours per connection |
//! | [`peers`] | real third-party peers as child processes: Postfix's `smtp-sink`, Python (aiosmtpd) servers |
//! | [`postfix`] | a private Postfix (own main.cf, master.cf and queue in a temporary directory) holding what it accepts, or relaying to a given next hop |
//! | [`sink`] | a recording ESMTP sink with per-recipient replies, for relay tests |
//! | [`spool`] | committing a message to a spool as the server would, for relay tests |
//! | [`tls`] | a throw-away CA and certificate, and a scripted STARTTLS server (rustls) |
//! | [`wait`] | polling a condition until it holds or a limit passes |
//! | [`metrics`] | scraping `GET /metrics`, reading a series, `promtool check metrics` |
//! | [`line`](mod@line) | a line-by-line SMTP client for scripted socket sessions |
//!
//! Test code only (`publish = false`, a dev-dependency of the crates whose tests use it): it
//! panics on what a test would fail on anyway and makes no promise of a stable API. It does
//! not test the crates it serves (their tests stay beside the code they check; its own tests
//! check the harness), and it changes none of their behaviour: it drives their public API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Test support plays drivers and peers: it reads clocks and starts threads.
#![allow(clippy::disallowed_methods)]

pub mod cli;
pub mod dns;
pub mod fake;
pub mod line;
pub mod metrics;
pub mod pair;
pub mod peers;
pub mod postfix;
pub mod server;
pub mod sink;
pub mod spool;
pub mod tls;
pub mod wait;

pub use line::LineClient;
pub use pair::{Answer, Pair, Stored, Transcript};
pub use server::{TestServer, TestServerBuilder};
