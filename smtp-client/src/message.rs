//! What the client sends ([`Message`]) and what it reports ([`RecipientOutcome`], [`Event`]).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use hooks_api::ClientArgs;
use smtp_proto::classify::{self, BounceClass, Category};
use smtp_proto::sasl::Secret;
use smtp_proto::{EnhancedStatus, Reply};

use crate::dsn::Dsn;
use crate::error::{Error, Stage};

/// One message: an envelope, the body as it should be stored (line endings are normalised
/// to CRLF and dot-stuffing is applied on the way out), and per-message client arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The reverse-path without brackets; empty for the null path `<>`.
    pub from: String,
    /// The forward-paths without brackets.
    pub recipients: Vec<String>,
    /// The message (headers and body), shared between clones.
    pub body: Body,
    /// Per-message ESMTP parameters (Momentum's `smtp_client_args`): `NOTIFY` and `ORCPT`
    /// go on every RCPT TO, every other keyword on MAIL FROM.
    pub args: ClientArgs,
    /// The DSN parameters (RFC 3461), passed on only to a server that offers `DSN` (see
    /// [`crate::dsn`]). When set, they replace any `RET`, `ENVID`, `NOTIFY` or `ORCPT` in
    /// [`args`](Self::args) and the session's arguments, to every server. `None` (the
    /// default): no DSN handling, the arguments go out as they are.
    pub dsn: Option<Dsn>,
}

impl Message {
    /// A message from `from` to `recipients` with this body and no arguments.
    pub fn new<S: Into<String>>(
        from: impl Into<String>,
        recipients: impl IntoIterator<Item = S>,
        body: impl Into<Body>,
    ) -> Self {
        Message {
            from: from.into(),
            recipients: recipients.into_iter().map(Into::into).collect(),
            body: body.into(),
            args: ClientArgs::new(),
            dsn: None,
        }
    }

    /// The message with these DSN parameters (one [`RcptDsn`](crate::dsn::RcptDsn) per
    /// recipient, in order).
    pub fn with_dsn(mut self, dsn: Dsn) -> Self {
        self.dsn = Some(dsn);
        self
    }
}

/// A message's content: immutable and shared, so cloning a [`Message`] (to keep it for a
/// retry while a connection sends it, or to send one content to many envelopes) copies no
/// bytes. Reads as a `&[u8]` through `Deref`; made from `Vec<u8>`, `String`, `&[u8]`, `&str`
/// and the like.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Body(Arc<[u8]>);

impl Body {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let head = &self.0[..self.0.len().min(SHOWN)];
        write!(
            f,
            "Body({} bytes: {:?}",
            self.0.len(),
            String::from_utf8_lossy(head)
        )?;
        if self.0.len() > SHOWN {
            f.write_str("...")?;
        }
        f.write_str(")")
    }
}

impl From<Arc<[u8]>> for Body {
    fn from(bytes: Arc<[u8]>) -> Self {
        Body(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body(bytes.into())
    }
}

impl From<Box<[u8]>> for Body {
    fn from(bytes: Box<[u8]>) -> Self {
        Body(bytes.into())
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Self {
        Body(bytes.into())
    }
}

impl<const N: usize> From<[u8; N]> for Body {
    fn from(bytes: [u8; N]) -> Self {
        Body(bytes.as_slice().into())
    }
}

impl<const N: usize> From<&[u8; N]> for Body {
    fn from(bytes: &[u8; N]) -> Self {
        Body(bytes.as_slice().into())
    }
}

impl From<&Vec<u8>> for Body {
    fn from(bytes: &Vec<u8>) -> Self {
        Body(bytes.as_slice().into())
    }
}

impl From<Cow<'_, [u8]>> for Body {
    fn from(bytes: Cow<'_, [u8]>) -> Self {
        Body(bytes.as_ref().into())
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body(text.into_bytes().into())
    }
}

impl From<&String> for Body {
    fn from(text: &String) -> Self {
        Body(text.as_bytes().into())
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Self {
        Body(text.as_bytes().into())
    }
}

impl PartialEq<[u8]> for Body {
    fn eq(&self, other: &[u8]) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<Vec<u8>> for Body {
    fn eq(&self, other: &Vec<u8>) -> bool {
        *self.0 == **other
    }
}

/// Credentials for AUTH. `Debug` redacts the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password: PLAIN, else LOGIN.
    Password {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// A user name and an OAuth 2.0 bearer token: XOAUTH2.
    OAuth2 {
        /// The user name.
        user: String,
        /// The access token.
        token: Secret,
    },
}

/// A message's number within its session, in the order messages were queued (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// How a recipient's delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// The server accepted the message for this recipient (2xx at end of data).
    Delivered,
    /// A temporary failure (4xx, or a session error): try again later.
    Deferred,
    /// A permanent failure (5xx): do not retry.
    Bounced,
}

/// The final word on one recipient of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The recipient, as given in the [`Message`].
    pub recipient: String,
    /// What happened.
    pub kind: OutcomeKind,
    /// The reply that decided it: the server's, or one the client made up for a local
    /// decision (see [`local`](Self::local)).
    pub reply: Reply,
    /// The bounce class from [`smtp_proto::classify`] (1 Undetermined when delivered).
    pub class: BounceClass,
    /// `true` when the client decided without the server's word (a refused address, a
    /// message too large for the advertised SIZE, a session error).
    pub local: bool,
    /// Which of the server's replies decided it, when one did (`None` for a local
    /// decision): [`Stage::Rcpt`] when it was the reply to this recipient's own RCPT TO
    /// (so a `552` there is temporary, RFC 5321 §4.5.3.1.10), [`Stage::Mail`] for a refused
    /// MAIL, [`Stage::DataInit`] for a refused DATA, [`Stage::DataBlock`] for a refused BDAT
    /// chunk, [`Stage::Final`] for the reply to the end of the body.
    pub stage: Option<Stage>,
}

impl RecipientOutcome {
    /// The outcome `reply` gives `recipient`: the kind from the code class, the bounce class
    /// from [`classify::classify`].
    pub fn from_reply(recipient: &str, reply: Reply, local: bool) -> Self {
        let kind = if reply.is_positive_completion() {
            OutcomeKind::Delivered
        } else if reply.is_permanent() {
            OutcomeKind::Bounced
        } else {
            OutcomeKind::Deferred
        };
        let class = if kind == OutcomeKind::Delivered {
            classify::for_id(classify::id::UNDETERMINED)
                .unwrap_or_else(|| classify::classify(reply.code(), reply.status(), &reply.text()))
        } else {
            let class = classify::classify(reply.code(), reply.status(), &reply.text());
            match classify::for_id(classify::id::ADMIN_FAILURE) {
                // Our own policy refused it: never a block by the receiver (a 4.7.x / 5.7.x
                // reply we made up would otherwise read as one).
                Some(admin) if local && class.category == classify::Category::Block => admin,
                _ => class,
            }
        };
        RecipientOutcome {
            recipient: recipient.to_owned(),
            kind,
            reply,
            class,
            local,
            stage: None,
        }
    }

    /// The outcome with the stage whose reply decided it.
    pub fn with_stage(mut self, stage: Stage) -> Self {
        self.stage = Some(stage);
        self
    }

    /// `true` when the reply that decided it answered this recipient's RCPT TO.
    pub fn at_rcpt(&self) -> bool {
        self.stage == Some(Stage::Rcpt)
    }

    /// `true` when delivered.
    pub fn is_delivered(&self) -> bool {
        self.kind == OutcomeKind::Delivered
    }

    /// The bounce class's category.
    pub fn category(&self) -> Category {
        self.class.category
    }
}

/// What a session reports, in order, through [`Session::poll_event`](crate::Session::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One recipient's outcome is final.
    Recipient {
        /// The message.
        message: MessageId,
        /// The outcome.
        outcome: RecipientOutcome,
    },
    /// Every recipient of a message has its outcome (the same ones, in message order).
    MessageDone {
        /// The message.
        message: MessageId,
        /// One outcome per recipient, in the order of [`Message::recipients`].
        outcomes: Vec<RecipientOutcome>,
    },
    /// The session is over: after QUIT (`error: None`), or because of `error`.
    SessionDone {
        /// Why it ended early, if it did.
        error: Option<Error>,
    },
}

/// A reply the client makes up for a local decision.
pub(crate) fn local_reply(code: u16, status: (u8, u16, u16), text: &str) -> Reply {
    Reply::new(
        code,
        Some(EnhancedStatus::new(status.0, status.1, status.2)),
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_from_the_usual_types_and_clones_share_bytes() {
        let text = "Subject: x\r\n\r\nhi\r\n";
        let from_vec = Message::new("a@b", ["c@d"], text.as_bytes().to_vec());
        for m in [
            Message::new("a@b", ["c@d"], text),
            Message::new("a@b", ["c@d"], text.to_owned()),
            Message::new("a@b", ["c@d"], text.as_bytes()),
            Message::new("a@b", ["c@d"], Cow::Borrowed(text.as_bytes())),
        ] {
            assert_eq!(m, from_vec);
            assert_eq!(m.body, text.as_bytes().to_vec());
        }
        let clone = from_vec.clone();
        assert_eq!(
            clone.body.as_ptr(),
            from_vec.body.as_ptr(),
            "shared, not copied"
        );
        let long = Body::from(vec![b'x'; 100]);
        assert_eq!(
            format!("{long:?}"),
            format!("Body(100 bytes: {:?}...)", "x".repeat(64))
        );
    }
}
