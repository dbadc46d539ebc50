//! The spool writer of the message a connection receives, as a state machine: no message,
//! a writer taking body bytes, a writer away at a spool thread, or a refusal to answer at
//! the end of data.
//!
//! It does no I/O and calls no spool: the writers it hands out (to send away, to commit, to
//! discard) are the caller's to pass to the spool.

use crate::spool::{QueueId, SpoolError, SpoolWriter};

/// Where the message being received stands with the spool.
#[derive(Debug, Default)]
pub(crate) enum Spooling {
    /// No message is being written: none started, `[spool] discard`, or it ended. Body
    /// bytes, if any, are dropped.
    #[default]
    Idle,
    /// The writer takes body bytes into its buffer.
    Writing(SpoolWriter),
    /// The writer of message `QueueId` is at a spool thread writing its buffer out: the body
    /// waits in the factory until the writer is back.
    AwaitingWriter(QueueId),
    /// The spool refused the message: the body is dropped and the refusal answered at the
    /// end of data.
    Refused(SpoolError),
}

impl Spooling {
    /// A new message's writer. Returns the previous message's writer, if one was still
    /// here, for the caller to discard.
    #[must_use]
    pub(crate) fn begin(&mut self, writer: SpoolWriter) -> Option<SpoolWriter> {
        let old = self.end();
        *self = Spooling::Writing(writer);
        old
    }

    /// The spool refused a new message with `err`. Returns the previous message's writer,
    /// if one was still here, for the caller to discard.
    #[must_use]
    pub(crate) fn refuse(&mut self, err: SpoolError) -> Option<SpoolWriter> {
        let old = self.end();
        *self = Spooling::Refused(err);
        old
    }

    /// The message ended without a commit (aborted, or the connection went): back to
    /// [`Idle`](Spooling::Idle). Returns its writer, if it is here, for the caller to
    /// discard; a writer that is away is discarded when it comes back
    /// ([`writer_back`](Spooling::writer_back)).
    #[must_use]
    pub(crate) fn end(&mut self) -> Option<SpoolWriter> {
        match std::mem::take(self) {
            Spooling::Writing(w) => Some(w),
            _ => None,
        }
    }

    /// The end of data: the writer to commit, or why there is none (the spool's refusal;
    /// `None` when no writer is here). Back to [`Idle`](Spooling::Idle) either way.
    pub(crate) fn finish(&mut self) -> Result<SpoolWriter, Option<SpoolError>> {
        match std::mem::take(self) {
            Spooling::Writing(w) => Ok(w),
            Spooling::Refused(e) => Err(Some(e)),
            Spooling::Idle | Spooling::AwaitingWriter(_) => Err(None),
        }
    }

    /// The writer, while it takes body bytes.
    pub(crate) fn writer_mut(&mut self) -> Option<&mut SpoolWriter> {
        match self {
            Spooling::Writing(w) => Some(w),
            _ => None,
        }
    }

    /// Whether the writer is at a spool thread (the body waits meanwhile).
    pub(crate) fn is_away(&self) -> bool {
        matches!(self, Spooling::AwaitingWriter(_))
    }

    /// The writer's buffer is full: takes the writer for the caller to send to a spool
    /// thread, and awaits it back. `None` when no writer is here.
    pub(crate) fn writer_sent_away(&mut self) -> Option<SpoolWriter> {
        match std::mem::take(self) {
            Spooling::Writing(w) => {
                *self = Spooling::AwaitingWriter(w.id());
                Some(w)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// A spool thread hands a writer back. When it is the one awaited it takes body bytes
    /// again (`None`); any other (its message ended meanwhile) is returned for the caller
    /// to discard.
    #[must_use]
    pub(crate) fn writer_back(&mut self, writer: SpoolWriter) -> Option<SpoolWriter> {
        match self {
            Spooling::AwaitingWriter(id) if *id == writer.id() => {
                *self = Spooling::Writing(writer);
                None
            }
            _ => Some(writer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::spool::{Envelope, MemFs, Spool, SpoolOptions};

    fn spool() -> Spool {
        Spool::open_with("/spool", SpoolOptions::default(), Arc::new(MemFs::new())).unwrap()
    }

    fn writer(spool: &Spool) -> SpoolWriter {
        spool.begin_deferred(&Envelope::default(), b"").unwrap()
    }

    #[test]
    fn a_writer_goes_away_and_comes_back() {
        let spool = spool();
        let mut s = Spooling::default();
        assert!(s.writer_mut().is_none());
        assert!(s.begin(writer(&spool)).is_none());
        assert!(s.writer_mut().is_some());
        let away = s.writer_sent_away().expect("the writer");
        assert!(s.is_away());
        assert!(s.writer_mut().is_none(), "no body bytes while away");
        assert!(s.writer_sent_away().is_none(), "only one writer to send");
        assert!(s.writer_back(away).is_none());
        assert!(!s.is_away());
        assert!(s.finish().is_ok());
        assert!(matches!(s, Spooling::Idle));
    }

    #[test]
    fn a_writer_whose_message_ended_is_returned_to_discard() {
        let spool = spool();
        let mut s = Spooling::default();
        let _ = s.begin(writer(&spool));
        let away = s.writer_sent_away().unwrap();
        assert!(s.end().is_none(), "the away writer is not here to discard");
        assert!(matches!(s, Spooling::Idle));
        // A new message meanwhile: the old writer coming back is not taken for it.
        let _ = s.begin(writer(&spool));
        let new_away = s.writer_sent_away().unwrap();
        let old = s.writer_back(away).expect("not the awaited writer");
        assert_ne!(old.id(), new_away.id());
        assert!(s.is_away());
        assert!(s.writer_back(new_away).is_none());
    }

    #[test]
    fn a_refusal_is_answered_once_at_the_end_of_data() {
        let spool = spool();
        let mut s = Spooling::default();
        let _ = s.begin(writer(&spool));
        let old = s
            .refuse(SpoolError::Closed)
            .expect("the earlier writer to discard");
        drop(old);
        assert!(s.writer_mut().is_none(), "the body is dropped");
        assert!(matches!(s.finish(), Err(Some(SpoolError::Closed))));
        assert!(matches!(s.finish(), Err(None)));
    }

    #[test]
    fn the_end_of_data_while_away_has_no_writer() {
        let spool = spool();
        let mut s = Spooling::default();
        let _ = s.begin(writer(&spool));
        let away = s.writer_sent_away().unwrap();
        assert!(matches!(s.finish(), Err(None)));
        assert!(s.writer_back(away).is_some());
    }
}
