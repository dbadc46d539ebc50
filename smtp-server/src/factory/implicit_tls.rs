//! Implicit TLS (RFC 8314): a connection that spoke TLS from its first byte, before the
//! factory was made.
//!
//! It does not run the handshake (the driver does, before [`Factory::new`]) and changes
//! nothing for STARTTLS, which stays in `decide.rs`.

use super::{Factory, TlsInfo};

impl Factory {
    /// The connection has been under TLS since before the banner (the driver finished the
    /// handshake first, RFC 8314 §3.3): the session counts as encrypted (STARTTLS is not
    /// offered, AUTH that requires TLS is, and `Received:` says `ESMTPS`). Call it right after
    /// [`Factory::new`], before any input.
    pub fn handle_implicit_tls(&mut self, info: TlsInfo) {
        self.session.tls = Some(info);
    }
}
