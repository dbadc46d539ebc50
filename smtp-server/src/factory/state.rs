//! [`State`]: what the factory awaits (`esmtp_message_factory_state`).

use super::event::EventKind;

/// The state of a connection and its message, named after what it awaits. A closed enum:
/// plugins add behaviour through events and extensions, not states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Nothing sent yet (the Connect decision may be pending).
    JustConnected,
    /// The banner is queued but not yet written.
    SendingBanner,
    /// Awaiting HELO or EHLO.
    AwaitingHelo,
    /// Awaiting MAIL FROM.
    AwaitingMail,
    /// A transaction is open: awaiting RCPT TO (or DATA once a recipient is accepted).
    AwaitingRcpt,
    /// DATA accepted: awaiting the first body byte.
    DataPhase,
    /// Decoding the body.
    ReadingBody,
    /// Awaiting a SASL response line.
    AuthExchange,
    /// Awaiting the driver's TLS handshake after `220 Ready to start TLS`.
    TlsHandshake,
    /// Awaiting the driver's decision on an event of this kind.
    AsyncHook(EventKind),
    /// Closing: the last replies are being written.
    Closing,
    /// Closed: nothing more to do.
    Closed,
}

impl State {
    /// A Momentum-like name, for logs (`esmtp_message_factory_state`).
    pub fn as_str(&self) -> &'static str {
        match self {
            State::JustConnected => "just connected",
            State::SendingBanner => "sending banner",
            State::AwaitingHelo => "awaiting ehlo/helo",
            State::AwaitingMail => "awaiting mailfrom",
            State::AwaitingRcpt => "awaiting rcptto",
            State::DataPhase => "data phase",
            State::ReadingBody => "reading body",
            State::AuthExchange => "auth exchange",
            State::TlsHandshake => "tls handshake",
            State::AsyncHook(EventKind::MessageComplete) => "async body handler",
            State::AsyncHook(_) => "async hook",
            State::Closing => "closing",
            State::Closed => "closed",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
