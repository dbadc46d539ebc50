//! The session: what the driver reads about it, and the inputs that change it from outside
//! the client's bytes — shutdown, session updates from extensions (XCLIENT), per-session
//! EHLO advertising, spool space and the next queue id.

use std::net::SocketAddr;

use smtp_proto::status::EnhancedStatus;

use super::{CloseReason, Factory, FactoryConfig, Phase, ReplyTally, TlsInfo};

/// What an extension changed in the session (Postfix's XCLIENT attributes), for
/// [`Factory::handle_session_update`]. Each field is `None` when unchanged; `Some(None)`
/// clears an optional value.
///
/// ```
/// use smtp_server::factory::SessionUpdate;
/// let mut update = SessionUpdate::default();
/// update.peer = Some("192.0.2.7:40000".parse().unwrap());
/// update.helo = Some(Some("client.example".to_owned()));
/// assert!(!update.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionUpdate {
    /// The client's address (XCLIENT ADDR and PORT).
    pub peer: Option<SocketAddr>,
    /// Our address as the client saw it (XCLIENT DESTADDR and DESTPORT).
    pub local: Option<SocketAddr>,
    /// The client's host name (XCLIENT NAME): written in the `Received:` header.
    pub client_name: Option<Option<String>>,
    /// The client's HELO name (XCLIENT HELO). After a reset it replaces the name the client
    /// gives in its next greetings, so the trace shows the real client's name, not the
    /// proxy's.
    pub helo: Option<Option<String>>,
    /// EHLO (`true`) or HELO (XCLIENT PROTO): the protocol written in `Received:`.
    pub esmtp: Option<bool>,
    /// The authenticated identity (XCLIENT LOGIN).
    pub auth: Option<Option<String>>,
}

impl SessionUpdate {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == SessionUpdate::default()
    }
}

impl Factory {
    /// The server is shutting down: `421 4.3.2 <host> Service shutting down` is queued after
    /// the replies already queued (answering any command still awaiting a decision), a
    /// streaming message is aborted, and [`Event::Close`](super::Event::Close) is emitted
    /// ([`CloseReason::Shutdown`]). During a TLS handshake the connection just closes. Once
    /// closed, nothing happens. The driver decides *when* (an idle session at once, a
    /// session in a transaction when it ends or the grace period runs out).
    pub fn handle_shutdown(&mut self) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if !matches!(self.phase, Phase::Tls) {
            let reply = self.host_reply(421, EnhancedStatus::new(4, 3, 2), "Service shutting down");
            self.out.push_with(|o| reply.write_to(o));
        }
        self.close(CloseReason::Shutdown);
    }

    /// An extension verb changed the session (XCLIENT: the real client's address, HELO name,
    /// login). Call it while the extension's decision is pending, before
    /// [`handle_decision`](Factory::handle_decision).
    ///
    /// With `reset` (hooks-api's `request_session_reset`, XCLIENT's semantics) the session
    /// starts over as after the banner: the transaction is discarded
    /// ([`Event::Reset`](super::Event::Reset)), the HELO/EHLO name, EHLO flag and
    /// authentication are forgotten, the decision's reply (XCLIENT's `220` greeting) ends a
    /// pipelining group, and the client must greet again. Then `update` is applied: its
    /// peer, name and login hold for the rest of the connection, and its HELO name and
    /// protocol replace those of the client's next greetings. Without `reset` the values
    /// apply at once. Ignored once closed.
    pub fn handle_session_update(&mut self, update: SessionUpdate, reset: bool) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        if reset {
            if matches!(self.phase, Phase::Body(_)) {
                self.destroy_message_construct();
            } else {
                self.reset_transaction();
            }
            self.session.helo = None;
            self.session.esmtp = false;
            self.session.auth = None;
            self.group_after_reply = true;
        }
        let s = &mut self.session;
        if let Some(peer) = update.peer {
            self.peer = peer;
        }
        if let Some(local) = update.local {
            self.local = local;
        }
        if let Some(name) = update.client_name {
            s.client_name = name;
        }
        if let Some(helo) = update.helo {
            if !reset && s.helo.is_some() {
                s.helo.clone_from(&helo);
            }
            s.helo_override = helo;
        }
        if let Some(esmtp) = update.esmtp {
            s.proto = Some(esmtp);
        }
        if let Some(auth) = update.auth {
            s.auth = auth;
        }
    }

    /// Leaves these plugin extension keywords out of this session's EHLO replies (replacing
    /// any earlier list): the driver evaluates the extensions' per-session conditions (for
    /// example at [`Event::Helo`](super::Event::Helo)) and passes the keywords to hide.
    /// Built-in keywords are not affected; a hidden extension's verb is still dispatched
    /// (its handler decides who may use it).
    pub fn hide_extensions<I, S>(&mut self, keywords: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hidden.clear();
        self.hidden.extend(keywords.into_iter().map(Into::into));
    }

    /// The queue id of the next message, written in its `Received:` header (`with ESMTP id
    /// ID`) and set as [`Envelope::queue_id`](super::Envelope::queue_id) at its
    /// [`Event::MessageStart`](super::Event::MessageStart), where it is used up: call it
    /// again for the message after. A [`Decision::Queued`](super::Decision::Queued) at
    /// [`Event::DataStart`](super::Event::DataStart) takes precedence. Without one, the
    /// header has no id.
    pub fn set_queue_id(&mut self, id: impl Into<String>) {
        self.next_queue_id = Some(id.into());
    }

    /// Whether the next message has a queue id set ([`set_queue_id`](Factory::set_queue_id)).
    pub fn has_queue_id(&self) -> bool {
        self.next_queue_id.is_some()
    }

    /// Tells the factory whether the spool has room for a message of the size limit (the
    /// driver checks it off the hot path, for example once a second). While it has not,
    /// MAIL is answered `452 4.3.1 Insufficient system storage`. Default: room.
    pub fn set_storage_available(&mut self, available: bool) {
        self.storage_low = !available;
    }

    /// Command lines received so far (parsed or refused; not SASL response lines), for
    /// the driver's connection log line.
    pub fn commands(&self) -> u64 {
        self.commands
    }

    /// Replies queued so far, by class (and the AUTH answers), for the driver's metrics.
    pub fn reply_tally(&self) -> ReplyTally {
        self.out.tally
    }

    /// Whether the session speaks ESMTP: the client greeted with EHLO (not HELO), or a
    /// session update said so. `false` before any greeting.
    pub fn is_esmtp(&self) -> bool {
        self.session.proto.unwrap_or(self.session.esmtp)
    }

    /// The client's host name, when a session update reported one (XCLIENT NAME).
    pub fn client_name(&self) -> Option<&str> {
        self.session.client_name.as_deref()
    }

    /// The HELO/EHLO name, once accepted.
    pub fn helo(&self) -> Option<&str> {
        self.session.helo.as_deref()
    }

    /// The TLS parameters, once STARTTLS completed.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.session.tls.as_ref()
    }

    /// The authenticated identity, once AUTH succeeded (or a session update set one).
    pub fn authenticated(&self) -> Option<&str> {
        self.session.auth.as_deref()
    }

    /// The client's address (as a session update may have reported it).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Our address (as a session update may have reported it).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The configuration.
    pub fn config(&self) -> &FactoryConfig {
        &self.config
    }
}
