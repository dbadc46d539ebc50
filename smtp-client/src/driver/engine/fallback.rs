//! RFC 7435 fallback: when the TLS handshake after STARTTLS fails on a connection whose TLS
//! is opportunistic, the engine connects to the same next hop again and goes on in
//! plaintext on that new connection (it does not try STARTTLS there), instead of counting a
//! failed set-up. Opportunistic TLS does not verify the server, so what fails is the
//! handshake itself: an error in what the server sent, a protocol alert, a close or a reset
//! during the handshake. Under [`TlsMode::Required`] a failed handshake stays a failed
//! set-up (the messages are deferred, never sent in plaintext).
//!
//! What it does not do: fall back after a handshake that timed out (a server that does not
//! answer the handshake is as unlikely to answer in plaintext, and its set-up failure is
//! counted as any other timeout), after a response injection (a server that sends bytes
//! after its `220` is not trusted with a second try), or once the connection carried a
//! message. It opens nothing itself: the event loop does, under the same connection id, so
//! the [dispatcher](super::dispatch) sees one connection that took longer to set up.

use super::conn::Work;
use crate::error::Error;
use crate::policy::TlsMode;

/// Whether a connection that ended with `error` under TLS `mode` is opened again in
/// plaintext: its TLS handshake failed under opportunistic TLS, while it was being set up
/// (never `ready_once`, no message in flight).
pub(super) fn falls_back(
    error: Option<&Error>,
    mode: TlsMode,
    ready_once: bool,
    work: &Work,
) -> bool {
    mode == TlsMode::Opportunistic
        && matches!(error, Some(Error::Tls(_)))
        && !ready_once
        && !matches!(work, Work::AwaitOutcome { .. })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Stage;
    use crate::message::MessageId;

    #[test]
    fn only_a_failed_handshake_under_opportunistic_tls_during_set_up() {
        let tls = Error::Tls("received fatal alert: HandshakeFailure".into());
        let idle = Work::Unoffered;
        assert!(falls_back(Some(&tls), TlsMode::Opportunistic, false, &idle));
        // Required TLS never goes on in plaintext.
        assert!(!falls_back(Some(&tls), TlsMode::Required, false, &idle));
        assert!(!falls_back(Some(&tls), TlsMode::Disabled, false, &idle));
        // Not after the connection was ready, nor with a message on it.
        assert!(!falls_back(Some(&tls), TlsMode::Opportunistic, true, &idle));
        let busy = Work::AwaitOutcome {
            id: MessageId(0),
            body_sent: false,
            retryable: false,
        };
        assert!(!falls_back(
            Some(&tls),
            TlsMode::Opportunistic,
            false,
            &busy
        ));
        // Other ends of a set-up are failures as before.
        let timeout = Error::Timeout {
            stage: Stage::Command,
            after: Duration::from_secs(1),
        };
        for other in [
            None,
            Some(&Error::ResponseInjection),
            Some(&Error::PeerClosed),
            Some(&timeout),
            Some(&Error::Io("reset".into())),
        ] {
            assert!(!falls_back(other, TlsMode::Opportunistic, false, &idle));
        }
    }
}
