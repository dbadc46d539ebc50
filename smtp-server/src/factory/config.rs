//! [`FactoryConfig`]: limits, timeouts, advertised extensions and which events need a decision.

use std::sync::Arc;
use std::time::Duration;

use smtp_proto::command::Leniency;
use smtp_proto::data::BareLineEndings;
use smtp_proto::limits::{self, Limits};
use smtp_proto::sasl::Mechanism;

use super::event::{Decided, EventKind};
use super::extensions::Extensions;
use super::relay::RelayControl;

/// Default idle / per-command timeout (RFC 5321 §4.5.3.2: at least 5 minutes).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// Default minimum DATA rate in bytes per second (Postfix's `smtpd_min_data_rate`).
pub const DEFAULT_MIN_DATA_RATE: u64 = 500;
/// Default most `Received:` headers a message may already carry.
pub const DEFAULT_MAX_HOPS: u32 = 100;
/// Default error count after which a real server would start slowing the client down.
pub const DEFAULT_SOFT_ERROR_LIMIT: u32 = 10;
/// Default RCPTs past the recipient limit before they count as errors.
pub const DEFAULT_RECIPIENT_OVERSHOOT: usize = 1000;
/// Default error count after which the session ends with `421 4.7.0`.
pub const DEFAULT_HARD_ERROR_LIMIT: u32 = 20;
/// Default most replies queued for the client before the factory stops reading.
pub const DEFAULT_MAX_QUEUED_REPLIES: usize = 64;
/// Default most reply bytes queued for the client before the factory stops reading.
pub const DEFAULT_MAX_TRANSMIT: usize = 16 * 1024;
/// Default longest wait for a decision (a plugin hook that went pending).
pub const DEFAULT_DECISION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default size of the decoded-body buffer handed to the driver through `poll_body`.
pub const DEFAULT_BODY_CHUNK: usize = 32 * 1024;

/// SMTP AUTH settings; AUTH is offered only when [`FactoryConfig::auth`] is `Some`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The mechanisms offered, in order. Only PLAIN and LOGIN are implemented by
    /// [`smtp_proto::sasl::SaslServer`]; others are refused with `504`.
    pub mechanisms: Vec<Mechanism>,
    /// Offer and accept AUTH only over TLS (Postfix's `smtpd_tls_auth_only`): before TLS the
    /// keyword is not advertised and `AUTH` gets `538 5.7.11`.
    pub require_tls: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mechanisms: vec![Mechanism::Plain, Mechanism::Login],
            require_tls: true,
        }
    }
}

/// Which optional events the driver wants to decide. For the others the factory applies the
/// default reply at once and emits no event, so a server without plugins never round-trips
/// through the driver on ordinary commands.
///
/// Which kinds are optional, and which are always decided whatever this says
/// ([`EventKind::Auth`]: someone must check the credentials; [`EventKind::MessageComplete`]:
/// someone must commit the message; [`EventKind::Extension`]: a registered verb has no
/// default behaviour), is the event table's [`EventKind::decided`]. Build one with
/// `Decisions::NONE.with(EventKind::Rcpt)`, or [`Decisions::set`].
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Decisions {
    /// One bit per [`EventKind`] (its discriminant) whose decision is asked for; only kinds
    /// that are [`Decided::Optional`] are ever set.
    asked: u32,
}

impl Decisions {
    /// Decide nothing optional: the fast path.
    pub const NONE: Decisions = Decisions { asked: 0 };

    /// Decide every event that can take a decision.
    pub const ALL: Decisions = {
        let mut d = Decisions::NONE;
        let mut i = 0;
        while i < EventKind::ALL.len() {
            d = d.with(EventKind::ALL[i]);
            i += 1;
        }
        d
    };

    /// These decisions, and also those on events of `kind` (a kind that is always or never
    /// decided changes nothing).
    pub const fn with(self, kind: EventKind) -> Decisions {
        match kind.decided() {
            Decided::Optional => Decisions {
                asked: self.asked | 1 << kind as u32,
            },
            Decided::Always | Decided::Never => self,
        }
    }

    /// The decisions asked for by either.
    pub const fn union(self, other: Decisions) -> Decisions {
        Decisions {
            asked: self.asked | other.asked,
        }
    }

    /// Asks (`on`) or stops asking for decisions on events of `kind`. Kinds that are always
    /// or never decided are left as they are.
    pub fn set(&mut self, kind: EventKind, on: bool) {
        if on {
            *self = self.with(kind);
        } else {
            self.asked &= !(1 << kind as u32);
        }
    }

    /// Whether an event of this kind waits for a [`Decision`](super::Decision).
    pub const fn wants(&self, kind: EventKind) -> bool {
        match kind.decided() {
            Decided::Always => true,
            Decided::Never => false,
            Decided::Optional => self.asked & (1 << kind as u32) != 0,
        }
    }
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let asked = EventKind::ALL
            .iter()
            .filter(|k| k.decided() == Decided::Optional && self.wants(**k));
        f.debug_set().entries(asked).finish()
    }
}

/// Everything a [`Factory`](super::Factory) needs to know about the server, shared by all
/// connections (wrap it in an `Arc`). Defaults follow `limits-and-durability.md`.
#[derive(Debug, Clone)]
pub struct FactoryConfig {
    /// The server's name: in the banner, the EHLO reply, `421` replies and `Received:`.
    pub hostname: String,
    /// Text after `220 hostname` in the banner (default `ESMTP Impulse`).
    pub banner: String,
    /// Parser limits: command line (2048), AUTH line (12288), address lengths.
    pub limits: Limits,
    /// Tolerated command syntax deviations. The default is strict except for
    /// `bare_lf_line_ending` (Postfix's `smtpd_forbid_bare_newline = normalize`); with it off,
    /// a command line ending in a bare LF gets `550 5.5.2` and the connection is closed.
    pub leniency: Leniency,
    /// Most accepted recipients per message (default 1000); more get `452 4.5.3`.
    pub max_recipients: usize,
    /// RCPTs past `max_recipients` that are not errors (default 1000; Postfix's
    /// `smtpd_recipient_overshoot_limit`): each gets `452 4.5.3`, but only those beyond this
    /// many count against the error budget, so a client that pipelines too many recipients
    /// is not cut off before DATA; its message goes to the first `max_recipients`.
    pub recipient_overshoot: usize,
    /// Most messages per session (default `None`: unlimited); MAIL after them gets
    /// `421 4.7.0` and the session ends.
    pub messages_per_session: Option<u64>,
    /// How long the banner waits (default zero: off; postscreen's pregreet test). A client
    /// that talks meanwhile gets `521 5.5.1` and is disconnected.
    pub greet_pause: Duration,
    /// Largest message in bytes, advertised in SIZE (default 32 MiB); enforced at MAIL
    /// (`SIZE=`) and after the end of data (`552 5.3.4`).
    pub max_message_size: u64,
    /// Most `Received:` headers a message may carry before ours (default 100); more get
    /// `554 5.4.6` after the end of data.
    pub max_hops: u32,
    /// Idle timeout: the whole next command must arrive within this (default 300 s), else
    /// `421 4.4.2`.
    pub command_timeout: Duration,
    /// DATA deadline cap: the body deadline starts at this and grows by `n / min_data_rate`
    /// seconds per `n` bytes received, never beyond `now + data_timeout` (Postfix's per-request
    /// deadline). Default 300 s.
    pub data_timeout: Duration,
    /// The longest wait for a decision (default 60 s): a plugin hook that went pending and
    /// was neither completed nor dropped must not park a connection for ever. When it runs
    /// out, the factory answers the command itself with the reply RFC 5321 allows for it,
    /// and the session goes on where it can:
    ///
    /// | awaiting | reply | then |
    /// |---|---|---|
    /// | MAIL, RCPT, DATA, extension and unknown verbs | `451 4.3.0` (local error in processing, §4.2.5) | the client may retry or go on |
    /// | AUTH | `454 4.7.0 Temporary authentication failure` (RFC 4954 §6) | the client may retry |
    /// | the connection (banner), HELO/EHLO | `421 4.3.0 <host>` (their reply sets have no 451; 421 is legal anywhere, §3.8) | close |
    ///
    /// The status is 4.3.0 (a problem of ours, RFC 3463), not 4.4.2 (a bad connection). The
    /// end of data (the spool commit) has no such deadline: the spool always answers.
    pub decision_timeout: Duration,
    /// Minimum DATA rate in bytes per second (default 500); `0` disables the rate rule.
    pub min_data_rate: u64,
    /// Errors after which each error reply is delayed by `error_sleep` (default 10; see also
    /// [`Factory::error_count`](super::Factory::error_count)).
    pub soft_error_limit: u32,
    /// The tarpit past `soft_error_limit` (Postfix's `smtpd_error_sleep_time`; default
    /// zero: off, the server's configuration sets 1 s): replies are held and no input is
    /// consumed meanwhile, on the factory's deadline, never by sleeping.
    pub error_sleep: Duration,
    /// Errors after which the factory answers `421 4.7.0 Error: too many errors` and closes
    /// (default 20).
    pub hard_error_limit: u32,
    /// Replies queued before the factory stops consuming input (default 64).
    pub max_queued_replies: usize,
    /// Reply bytes queued before the factory stops consuming input (default 16 KiB).
    pub max_transmit: usize,
    /// Capacity of the decoded-body buffer exposed by `poll_body` (default 32 KiB, at least 64).
    pub body_chunk: usize,
    /// Policy for bare CR / bare LF inside the message (default `Normalize`).
    pub bare_line_endings: BareLineEndings,
    /// Advertise and accept SMTPUTF8 (default `true`).
    pub smtputf8: bool,
    /// Advertise CHUNKING and accept BDAT (RFC 3030; default `true`). Off, BDAT is answered
    /// `502 5.5.1` (its chunk still read and dropped).
    pub chunking: bool,
    /// TLS can be started: advertise STARTTLS before TLS (default `false` until the driver
    /// has a certificate).
    pub tls_available: bool,
    /// Refuse mail commands before STARTTLS with `530 5.7.0` (default `false`).
    pub require_tls: bool,
    /// SMTP AUTH; `None` (the default) disables it.
    pub auth: Option<AuthConfig>,
    /// Refuse MAIL before a successful AUTH with `530 5.7.0` (default `false`).
    pub require_auth: bool,
    /// Answer `554 5.5.0 Error: SMTP protocol synchronization` and close when the client
    /// talks before the banner, or sends more after a command that must end a pipelined
    /// group before its reply was written (Postfix's `smtpd_forbid_unauth_pipelining`).
    /// Default `true`.
    pub forbid_pipelining_violations: bool,
    /// Which optional events the driver decides (default: none).
    pub decisions: Decisions,
    /// Plugin ESMTP extensions: keywords, verbs and MAIL/RCPT parameters.
    pub extensions: Extensions,
    /// Advertise DSN and accept its parameters (RFC 3461: `RET`, `ENVID` on MAIL, `NOTIFY`,
    /// `ORCPT` on RCPT), kept in the envelope for the relay (default `true`). Off, they get
    /// `555 5.5.4`.
    pub dsn: bool,
    /// Relay control, consulted at every RCPT before the RCPT hook (see the `relay` module:
    /// `554 5.7.1 <address>: Relay access denied`). `None` (the default of a bare factory)
    /// checks nothing; the server always sets it, to the `[relay]` policy or the default one
    /// (loopback and authenticated clients only).
    pub relay: Option<Arc<RelayControl>>,
}

impl Default for FactoryConfig {
    fn default() -> Self {
        FactoryConfig {
            hostname: "localhost".to_owned(),
            banner: "ESMTP Impulse".to_owned(),
            limits: Limits::default(),
            leniency: Leniency {
                bare_lf_line_ending: true,
                ..Leniency::STRICT
            },
            max_recipients: limits::MAX_RECIPIENTS,
            recipient_overshoot: DEFAULT_RECIPIENT_OVERSHOOT,
            messages_per_session: None,
            greet_pause: Duration::ZERO,
            max_message_size: limits::MAX_MESSAGE_SIZE,
            max_hops: DEFAULT_MAX_HOPS,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            data_timeout: DEFAULT_COMMAND_TIMEOUT,
            decision_timeout: DEFAULT_DECISION_TIMEOUT,
            min_data_rate: DEFAULT_MIN_DATA_RATE,
            soft_error_limit: DEFAULT_SOFT_ERROR_LIMIT,
            error_sleep: Duration::ZERO,
            hard_error_limit: DEFAULT_HARD_ERROR_LIMIT,
            max_queued_replies: DEFAULT_MAX_QUEUED_REPLIES,
            max_transmit: DEFAULT_MAX_TRANSMIT,
            body_chunk: DEFAULT_BODY_CHUNK,
            bare_line_endings: BareLineEndings::Normalize,
            smtputf8: true,
            chunking: true,
            tls_available: false,
            require_tls: false,
            auth: None,
            require_auth: false,
            forbid_pipelining_violations: true,
            decisions: Decisions::NONE,
            extensions: Extensions::new(),
            dsn: true,
            relay: None,
        }
    }
}

impl FactoryConfig {
    /// The defaults with this hostname.
    pub fn new(hostname: impl Into<String>) -> Self {
        FactoryConfig {
            hostname: hostname.into(),
            ..FactoryConfig::default()
        }
    }
}
