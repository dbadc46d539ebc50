//! Client policy as data: timeouts, retries, resets, pipelining, TLS and AUTH rules.

use std::time::Duration;

use smtp_proto::Limits;

/// Whether and how the client uses STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsMode {
    /// Never use STARTTLS.
    Disabled,
    /// Use STARTTLS when offered and the driver can; otherwise go on in plaintext, as
    /// also after a `454` (or any other refusal) to STARTTLS (RFC 3207 §4).
    #[default]
    Opportunistic,
    /// Never send a message in plaintext: a session without TLS (not offered, refused, or
    /// the driver cannot) fails with a temporary error ([`Error::TlsUnavailable`](crate::Error::TlsUnavailable)), so messages are deferred.
    Required,
}

/// How a session behaves, as data. [`Policy::default`] follows RFC 5321 §4.5.3.2 for
/// timeouts and the NetX Duo SMTP client guide for retries and resets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Waiting for the greeting (RFC 5321 §4.5.3.2.1: 5 minutes).
    pub greeting_timeout: Duration,
    /// Waiting for the reply to MAIL, RCPT, EHLO/HELO, AUTH, RSET, QUIT or a custom
    /// command (§4.5.3.2.2-3: 5 minutes).
    pub command_timeout: Duration,
    /// Waiting for the `354` after DATA (§4.5.3.2.4: 2 minutes).
    pub data_init_timeout: Duration,
    /// Writing one block of the body (§4.5.3.2.5: 3 minutes); drivers use it as their write
    /// timeout.
    pub data_block_timeout: Duration,
    /// Waiting for the reply to the end-of-data dot (§4.5.3.2.6: 10 minutes).
    pub final_timeout: Duration,
    /// How many times a MAIL or RCPT answered with a 4xx is sent again at once, when not
    /// pipelining (NetX `NX_SMTP_CLIENT_SESSION_COMMAND_RETRIES`: 2). 5xx replies are never
    /// retried.
    pub command_retries: u8,
    /// The most RSETs one session sends (NetX: a configurable RSET limit); past it the
    /// session QUITs and the remaining messages are deferred.
    pub max_resets: u32,
    /// Use PIPELINING when the server offers it (MAIL, every RCPT and DATA in one flight).
    pub pipelining: bool,
    /// Send the body with BDAT (RFC 3030 CHUNKING) instead of DATA when the server offers
    /// CHUNKING: no dot-stuffing, no `354` round trip, chunks pipelined when PIPELINING is
    /// offered too. Off by default: DATA is what every server handles best.
    pub chunking: bool,
    /// The most body bytes in one BDAT chunk (at least 1; default 64 KiB).
    pub chunk_size: usize,
    /// STARTTLS use. TLS needs a driver that can run it
    /// ([`SessionConfig::tls_available`](crate::SessionConfig::tls_available)).
    pub tls: TlsMode,
    /// Allow AUTH (PLAIN, LOGIN, XOAUTH2 all expose the secret) without TLS. Off by default:
    /// turn it on only for loopback or otherwise trusted paths.
    pub auth_without_tls: bool,
    /// End the session with QUIT after a message was refused at end of data (the NetX
    /// client's behaviour: a server that rejects content rarely accepts the next message).
    /// Messages still queued are then deferred.
    pub quit_after_rejected_message: bool,
    /// Bounds on replies (line length, lines, bytes).
    pub limits: Limits,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            greeting_timeout: Duration::from_secs(5 * 60),
            command_timeout: Duration::from_secs(5 * 60),
            data_init_timeout: Duration::from_secs(2 * 60),
            data_block_timeout: Duration::from_secs(3 * 60),
            final_timeout: Duration::from_secs(10 * 60),
            command_retries: 2,
            max_resets: 10,
            pipelining: true,
            chunking: false,
            chunk_size: 64 * 1024,
            tls: TlsMode::Opportunistic,
            auth_without_tls: false,
            quit_after_rejected_message: true,
            limits: Limits::default(),
        }
    }
}
