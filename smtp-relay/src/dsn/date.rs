//! RFC 5322 §3.3 dates (`Tue, 03 Mar 2026 14:05:09 +0000`) from a wall-clock time passed in:
//! the one formatter of `smtp_proto::date`, which `Received:` headers use too.
//!
//! What it does not do: read the clock, know time zones (every date is written in UTC) or
//! parse dates.

pub use smtp_proto::date::rfc5322;
