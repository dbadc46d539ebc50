//! What a hook receives: a [`Ctx`] — the session, the two note stores, the way to go
//! pending — around one *event*, the data of the hook point.
//!
//! `Ctx` dereferences to its event, so `ctx.recipient` reads the RCPT hook's recipient and
//! `ctx.session()` the connection. One alias per hook point names the pair:
//!
//! | hook point | context | event data | `Continue` from every hook means |
//! |---|---|---|---|
//! | connect | [`ConnectCtx`] | — (see [`Ctx::session`]) | the banner is sent |
//! | helo | [`HeloCtx`] | [`Helo`]: name, EHLO or HELO | the greeting is accepted |
//! | auth | [`AuthCtx`] | [`Auth`]: mechanism, authcid, authzid, password | **nobody vouched: `535 5.7.8`**; a hook must `Accept` valid credentials |
//! | mail | [`MailCtx`] | [`Mail`]: sender, MAIL parameters | the sender is accepted |
//! | rcpt | [`RcptCtx`] | [`Rcpt`]: envelope so far, recipient, RCPT parameters | the host's own recipient policy decides |
//! | data start | [`DataStartCtx`] | [`DataStart`]: envelope | `354` is sent |
//! | message | [`MessageCtx`] | [`Message`]: envelope, headers, message bytes | the message goes on to the queue hooks |
//! | queue | [`QueueCtx`] | [`Queue`]: as message, plus the queue id to set | the next queue hook; the durable spool, registered last by the server, takes it |
//! | disconnect | [`DisconnectCtx`] | — | (void: every hook runs, verdicts are ignored) |
//! | unknown command | [`CommandCtx`] | [`Command`]: verb and arguments | `500 5.5.1` command unrecognized |
//!
//! ESMTP extension verbs ([`EsmtpExtension`](crate::EsmtpExtension)) receive an
//! [`ExtensionCtx`], the same as [`CommandCtx`], which may also change the session
//! ([`Ctx::session_mut`]) — XCLIENT needs that.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::{Deref, DerefMut};

use smtp_proto::sasl::Secret;
use smtp_proto::{ForwardPath, Mechanism, Params, Path};

use crate::headers::Headers;
use crate::notes::Notes;
use crate::session::{Envelope, SessionInfo};
use crate::verdict::{Completer, Pending, PendingSource, Verdict};

/// The context of one hook call: the session, the note stores, the pending source, and the
/// event `E` of the hook point (reachable through `Deref`). See the [module docs](self).
///
/// The host builds one with [`Ctx::new`] (and [`Ctx::with_pending`] where it can wait) and
/// passes it to `Registry::dispatch_*`.
pub struct Ctx<'a, E> {
    session: &'a mut SessionInfo,
    conn_notes: &'a mut Notes,
    txn_notes: &'a mut Notes,
    pending: Option<&'a dyn PendingSource>,
    pub(crate) pending_issued: bool,
    pub(crate) faulted: bool,
    event: E,
}

impl<'a, E> Ctx<'a, E> {
    /// A context for one dispatch (host side).
    pub fn new(
        session: &'a mut SessionInfo,
        conn_notes: &'a mut Notes,
        txn_notes: &'a mut Notes,
        event: E,
    ) -> Self {
        Ctx {
            session,
            conn_notes,
            txn_notes,
            pending: None,
            pending_issued: false,
            faulted: false,
            event,
        }
    }

    /// Lets hooks go pending through `source` (host side). Without a source, a `Pending`
    /// verdict is refused by the dispatcher with the local-error temp-fail.
    pub fn with_pending(mut self, source: &'a dyn PendingSource) -> Self {
        self.pending = Some(source);
        self
    }

    /// The connection: peer and local address, HELO name, TLS, authenticated identity.
    pub fn session(&self) -> &SessionInfo {
        self.session
    }

    /// The per-connection note store.
    pub fn conn_notes(&mut self) -> &mut Notes {
        self.conn_notes
    }

    /// The per-transaction note store (emptied by the host when a transaction ends).
    pub fn txn_notes(&mut self) -> &mut Notes {
        self.txn_notes
    }

    /// Starts a pending verdict: return the `Verdict` (a [`Verdict::Pending`]) from the hook,
    /// move the [`Completer`] to a worker thread and call
    /// [`complete`](Completer::complete) there.
    ///
    /// ```
    /// # use hooks_api::{RcptCtx, Verdict};
    /// fn slow_lookup(ctx: &mut RcptCtx<'_>) -> Verdict {
    ///     let address = ctx.recipient.to_string();
    ///     let (verdict, completer) = ctx.pending();
    ///     std::thread::spawn(move || {
    ///         let known = address.ends_with("@example.com>"); // a directory lookup, say
    ///         completer.complete(if known {
    ///             Verdict::Continue
    ///         } else {
    ///             Verdict::reject(550, "5.1.1", "No such user")
    ///         });
    ///     });
    ///     verdict
    /// }
    /// ```
    pub fn pending(&mut self) -> (Verdict, Completer) {
        let (ticket, notify) = match self.pending {
            Some(source) => {
                let (ticket, notify) = source.completion();
                (ticket, Some(notify))
            }
            None => (0, None),
        };
        self.pending_issued = true;
        (
            Verdict::Pending(Pending {
                ticket,
                resume_at: 0,
            }),
            Completer::new(notify),
        )
    }

    /// `true` when the host supplied a pending source.
    pub fn can_pend(&self) -> bool {
        self.pending.is_some()
    }

    /// `true` once a hook dispatched on this context panicked, or answered a
    /// verdict the dispatcher refused (one that does not fit its kind, a pending one where
    /// none can wait): the dispatcher logged it and substituted `451 4.3.0`. Host side: the
    /// relay applies its default then (see [`crate::relay`]).
    pub fn hook_faulted(&self) -> bool {
        self.faulted
    }

    /// The event data.
    pub fn event(&self) -> &E {
        &self.event
    }

    /// The event data, mutable.
    pub fn event_mut(&mut self) -> &mut E {
        &mut self.event
    }

    /// Ends the context and returns the event (host side: to read a queue id, for example).
    pub fn into_event(self) -> E {
        self.event
    }
}

impl<E> Deref for Ctx<'_, E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.event
    }
}

impl<E> DerefMut for Ctx<'_, E> {
    fn deref_mut(&mut self) -> &mut E {
        &mut self.event
    }
}

impl Ctx<'_, Command<'_>> {
    /// The session, mutable: an extension verb such as XCLIENT may replace the peer address,
    /// the HELO name or the authenticated identity. Ordinary hooks cannot.
    pub fn session_mut(&mut self) -> &mut SessionInfo {
        self.session
    }
}

/// The connect hook's event: nothing beyond [`Ctx::session`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Connect;

/// The HELO/EHLO hook's event.
#[derive(Debug, Clone, Copy)]
pub struct Helo<'a> {
    /// The name the client gave.
    pub name: &'a str,
    /// `true` for EHLO, `false` for HELO.
    pub extended: bool,
}

/// The AUTH hook's event: credentials to verify. Never log `password`.
#[derive(Debug, Clone, Copy)]
pub struct Auth<'a> {
    /// The SASL mechanism used.
    pub mechanism: &'a Mechanism,
    /// The authentication identity (the user whose password is checked).
    pub authcid: &'a str,
    /// The authorization identity; empty means "same as `authcid`".
    pub authzid: &'a str,
    /// The password (`Debug` prints `<redacted>`).
    pub password: &'a Secret,
}

/// The MAIL FROM hook's event.
#[derive(Debug, Clone, Copy)]
pub struct Mail<'a> {
    /// The reverse-path.
    pub sender: &'a Path<'static>,
    /// The MAIL parameters, including extension parameters (in `params.unknown`).
    pub params: &'a Params<'static>,
}

/// The RCPT TO hook's event.
#[derive(Debug, Clone, Copy)]
pub struct Rcpt<'a> {
    /// The envelope so far (the recipient being decided is not in it yet).
    pub envelope: &'a Envelope,
    /// The recipient being decided.
    pub recipient: &'a ForwardPath<'static>,
    /// Its RCPT parameters.
    pub params: &'a Params<'static>,
}

/// The DATA (or first BDAT) hook's event.
#[derive(Debug, Clone, Copy)]
pub struct DataStart<'a> {
    /// The complete envelope.
    pub envelope: &'a Envelope,
}

/// The message bytes: anything readable and seekable (a spool file, a cursor over memory).
pub trait MessageData: Read + Seek {}

impl<T: Read + Seek + ?Sized> MessageData for T {}

/// The message hook's event: the whole message is received (not yet acknowledged).
pub struct Message<'a> {
    /// The envelope.
    pub envelope: &'a Envelope,
    /// The parsed header block.
    pub headers: &'a Headers,
    data: &'a mut dyn MessageData,
}

impl<'a> Message<'a> {
    /// The event (host side). `data` holds the message as received, after dot-unstuffing.
    pub fn new(
        envelope: &'a Envelope,
        headers: &'a Headers,
        data: &'a mut dyn MessageData,
    ) -> Self {
        Message {
            envelope,
            headers,
            data,
        }
    }

    /// The whole message, header block included, from its first byte — every time it is
    /// called (the reader is rewound), so each hook reads it from the start.
    pub fn message(&mut self) -> io::Result<&mut dyn Read> {
        self.data.seek(SeekFrom::Start(0))?;
        Ok(&mut *self.data)
    }

    /// The body: the bytes after the header block ([`Headers::body_offset`]), from the start.
    pub fn body(&mut self) -> io::Result<&mut dyn Read> {
        let offset = self.headers.body_offset() as u64;
        self.data.seek(SeekFrom::Start(offset))?;
        Ok(&mut *self.data)
    }
}

/// The queue hook's event: take responsibility for the message, or pass.
///
/// A hook that takes the message stores it durably, sets the queue id with
/// [`Queue::set_queue_id`] and returns `Accept`; the host then answers
/// `250 2.0.0 Ok: queued as <id>`. `Accept` without a queue id is refused as a plugin error
/// (local-error temp-fail).
pub struct Queue<'a> {
    /// The message event: envelope, headers and bytes.
    pub message: Message<'a>,
    queue_id: Option<String>,
}

impl<'a> Queue<'a> {
    /// The event (host side).
    pub fn new(message: Message<'a>) -> Self {
        Queue {
            message,
            queue_id: None,
        }
    }

    /// Records the id under which the message was queued.
    pub fn set_queue_id(&mut self, id: impl Into<String>) {
        self.queue_id = Some(id.into());
    }

    /// The queue id, once a hook set it.
    pub fn queue_id(&self) -> Option<&str> {
        self.queue_id.as_deref()
    }
}

impl<'a> Deref for Queue<'a> {
    type Target = Message<'a>;
    fn deref(&self) -> &Message<'a> {
        &self.message
    }
}

impl<'a> DerefMut for Queue<'a> {
    fn deref_mut(&mut self) -> &mut Message<'a> {
        &mut self.message
    }
}

/// The disconnect hook's event: nothing beyond [`Ctx::session`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Disconnect;

/// A command the server does not implement itself: the unknown-command hook's event, and an
/// extension verb's.
#[derive(Debug, Clone)]
pub struct Command<'a> {
    /// The verb, upper-cased.
    pub verb: &'a str,
    /// Everything after the verb and its space, without CRLF.
    pub args: &'a str,
    reset: bool,
}

impl<'a> Command<'a> {
    /// The event (host side).
    pub fn new(verb: &'a str, args: &'a str) -> Self {
        Command {
            verb,
            args,
            reset: false,
        }
    }

    /// Asks the host to reset the session as for a new connection (HELO, transaction and
    /// authentication forgotten) before sending the reply — XCLIENT's semantics.
    pub fn request_session_reset(&mut self) {
        self.reset = true;
    }

    /// `true` when a handler asked for a session reset (host side).
    pub fn session_reset_requested(&self) -> bool {
        self.reset
    }
}

/// The connect hook's context.
pub type ConnectCtx<'a> = Ctx<'a, Connect>;
/// The HELO/EHLO hook's context.
pub type HeloCtx<'a> = Ctx<'a, Helo<'a>>;
/// The AUTH hook's context.
pub type AuthCtx<'a> = Ctx<'a, Auth<'a>>;
/// The MAIL FROM hook's context.
pub type MailCtx<'a> = Ctx<'a, Mail<'a>>;
/// The RCPT TO hook's context.
pub type RcptCtx<'a> = Ctx<'a, Rcpt<'a>>;
/// The DATA-start hook's context.
pub type DataStartCtx<'a> = Ctx<'a, DataStart<'a>>;
/// The message hook's context.
pub type MessageCtx<'a> = Ctx<'a, Message<'a>>;
/// The queue hook's context.
pub type QueueCtx<'a> = Ctx<'a, Queue<'a>>;
/// The disconnect hook's context.
pub type DisconnectCtx<'a> = Ctx<'a, Disconnect>;
/// The unknown-command hook's context.
pub type CommandCtx<'a> = Ctx<'a, Command<'a>>;
/// An ESMTP extension verb handler's context (same as [`CommandCtx`]).
pub type ExtensionCtx<'a> = Ctx<'a, Command<'a>>;
