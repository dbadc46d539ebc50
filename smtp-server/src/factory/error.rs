//! [`FactoryError`]: the driver called the factory out of turn.

/// The driver misused the factory's API. Protocol problems are never errors: they are
/// replies. The call that returns one of these had no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FactoryError {
    /// [`Factory::handle_decision`](super::Factory::handle_decision) without an event
    /// awaiting one.
    #[error("no event is awaiting a decision")]
    NoPendingDecision,
    /// [`Factory::handle_tls_established`](super::Factory::handle_tls_established) without a
    /// STARTTLS in progress.
    #[error("no STARTTLS handshake is in progress")]
    NoTlsHandshake,
}
