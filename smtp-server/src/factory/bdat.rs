//! CHUNKING / BDAT (RFC 3030): the second body phase beside DATA's.
//!
//! `BDAT n [LAST]` is followed by exactly `n` raw octets. The factory copies them, without
//! dot-unstuffing, through the same body buffer, back-pressure, hop counter, size accounting
//! and bare CR/LF policy ([`FactoryConfig::bare_line_endings`](super::FactoryConfig)) as a
//! DATA body, so a message received by BDAT and relayed later by DATA cannot carry a second
//! message: under `Normalize` a bare CR or LF is stored as CR LF, under `Reject` the message
//! is refused at `LAST`, and under `Keep` it is stored as sent (the client's dot-stuffer
//! normalises it on the way out). The first accepted chunk emits
//! [`Event::MessageStart`](super::Event::MessageStart) (after the
//! [`Event::DataStart`](super::Event::DataStart) decision, when one is asked for); `LAST`
//! ends the message with [`Event::MessageComplete`](super::Event::MessageComplete).
//!
//! A well-formed `BDAT n` that is refused (no MAIL or RCPT, over SIZE, after a refused chunk,
//! a refused DataStart decision, a refused session) still has its `n` octets read and
//! dropped before the reply (RFC 3030 §2): chunk bytes are never parsed as commands. A chunk
//! that would take the message past SIZE gets `552 5.3.4` and every later BDAT of the
//! transaction gets the same reply until RSET. A malformed count cannot be resynchronised:
//! `501 5.5.4` and close. `DATA` (and `RCPT`) after BDAT get `503 5.5.1`.
//!
//! What it does not do: BINARYMIME (a binary body could not be relayed to most next hops),
//! or any parsing of the chunk bytes beyond line endings and the `Received:` count.

use std::time::{Duration, Instant};

use smtp_proto::data::{BareLineEndings, RawScanner};
use smtp_proto::reply::Reply;
use smtp_proto::status::{EnhancedStatus, ErrorReply};

use super::body::{Doom, HopCounter};
use super::replies as r;
use super::{AbortReason, CloseReason, Event, EventKind, Factory, MessageStats, Pending, Phase};

/// `501 5.5.4` for a BDAT line whose count cannot be read: the session cannot be resynchronised.
pub const BAD_CHUNK_SIZE: ErrorReply = ErrorReply::new(
    501,
    EnhancedStatus::new(5, 5, 4),
    "Error: invalid BDAT chunk size, closing",
);
/// `503 5.5.1` for DATA in a transaction that started with BDAT (RFC 3030 §2).
pub const DATA_AFTER_BDAT: ErrorReply = ErrorReply::new(
    503,
    EnhancedStatus::new(5, 5, 1),
    "Error: DATA after BDAT in one transaction",
);
/// `503 5.5.1` for RCPT once the message's chunks have started.
pub const RCPT_AFTER_BDAT: ErrorReply = ErrorReply::new(
    503,
    EnhancedStatus::new(5, 5, 1),
    "Error: RCPT after BDAT in one transaction",
);

/// The message of a transaction that started with BDAT, between and during its chunks.
#[derive(Debug)]
pub(super) struct Chunked {
    scan: RawScanner,
    hops: HopCounter,
    doom: Option<Doom>,
    /// Raw octets of the accepted chunks.
    octets: u64,
    /// The driver holds an open message ([`Event::MessageStart`] emitted, no abort yet).
    pub(super) open: bool,
    /// A chunk was refused: every later BDAT of the transaction gets this reply until RSET.
    refused: Option<ErrorReply>,
}

/// A chunk being read.
#[derive(Debug)]
pub(super) struct ChunkRead {
    remaining: u64,
    size: u64,
    last: bool,
    /// The chunk is read and dropped, then this reply is sent.
    discard: Option<Reply>,
    deadline: Instant,
}

impl Factory {
    /// `BDAT size [LAST]`, well-formed. Every path reads the chunk's octets.
    pub(super) fn cmd_bdat(&mut self, size: u64, last: bool, now: Instant) {
        if let Some(refusal) = self.bdat_refusal(size) {
            return self.read_chunk(size, last, Some(refusal.into()), now);
        }
        let started = self.construct.as_ref().is_some_and(|c| c.chunks.is_some());
        if !started && self.config.decisions.wants(EventKind::DataStart) {
            return self.await_decision(Pending::BdatStart { size, last }, Event::DataStart);
        }
        self.accept_chunk(size, last, None, now);
    }

    /// Why this BDAT is refused before its octets are read, if it is.
    fn bdat_refusal(&mut self, size: u64) -> Option<ErrorReply> {
        if !self.config.chunking {
            return Some(r::NOT_IMPLEMENTED);
        }
        if self.session.refused {
            return Some(r::NO_SERVICE);
        }
        if self.config.require_tls && self.session.tls.is_none() {
            return Some(r::TLS_REQUIRED);
        }
        let max = self.config.max_message_size;
        let Some(construct) = &mut self.construct else {
            return Some(r::NEED_MAIL);
        };
        if construct.env.recipients.is_empty() {
            return Some(if construct.rcpt_attempts == 0 {
                r::NEED_RCPT
            } else {
                r::NO_VALID_RCPT
            });
        }
        let chunks = construct.chunks.as_deref_mut();
        if let Some(refused) = chunks.as_ref().and_then(|c| c.refused) {
            return Some(refused);
        }
        let octets = chunks.as_ref().map_or(0, |c| c.octets);
        if octets.saturating_add(size) <= max {
            return None;
        }
        let was_open = match chunks {
            Some(c) => {
                c.refused = Some(r::SIZE_TOO_BIG);
                std::mem::take(&mut c.open)
            }
            None => {
                // Refused before the message started: keep refusing until RSET.
                construct.chunks = Some(Box::new(Chunked {
                    scan: RawScanner::new(self.config.bare_line_endings, max),
                    hops: HopCounter::default(),
                    doom: None,
                    octets: 0,
                    open: false,
                    refused: Some(r::SIZE_TOO_BIG),
                }));
                false
            }
        };
        if was_open {
            self.body.clear();
            self.emit(Event::MessageAborted {
                reason: AbortReason::SizeExceeded,
            });
        }
        Some(r::SIZE_TOO_BIG)
    }

    /// The chunk is accepted: the first one opens the message (`Received:` header,
    /// [`Event::MessageStart`]), then its octets are read into the body buffer.
    pub(super) fn accept_chunk(
        &mut self,
        size: u64,
        last: bool,
        queue_id: Option<String>,
        now: Instant,
    ) {
        let Some(construct) = &mut self.construct else {
            return self.read_chunk(size, last, Some(r::NEED_MAIL.into()), now);
        };
        if construct.chunks.is_none() {
            construct.chunks = Some(Box::new(Chunked {
                scan: RawScanner::new(self.config.bare_line_endings, self.config.max_message_size),
                hops: HopCounter::default(),
                doom: None,
                octets: 0,
                open: true,
                refused: None,
            }));
            if let Some((envelope, received)) = self.open_message(queue_id) {
                self.emit(Event::MessageStart { envelope, received });
            }
        }
        if let Some(c) = self.construct.as_mut().and_then(|c| c.chunks.as_mut()) {
            c.octets = c.octets.saturating_add(size);
        }
        self.read_chunk(size, last, None, now);
    }

    /// The chunk is refused with `reply` (a DataStart decision, or its timeout): its octets
    /// are read and dropped first.
    pub(super) fn refuse_chunk(&mut self, size: u64, last: bool, reply: Reply, now: Instant) {
        self.read_chunk(size, last, Some(reply), now);
    }

    /// Enters the chunk phase (or, for an empty chunk, ends it at once).
    fn read_chunk(&mut self, size: u64, last: bool, discard: Option<Reply>, now: Instant) {
        let deadline = now + self.config.data_timeout;
        self.phase = Phase::Chunk(Box::new(ChunkRead {
            remaining: size,
            size,
            last,
            discard,
            deadline,
        }));
        self.deadline = Some(deadline);
        if size == 0 {
            self.finish_chunk(now);
        }
    }

    /// Chunk octets: copied into the body buffer while it has room (or dropped when the chunk
    /// is refused). Returns the bytes consumed (0 when the buffer is full).
    pub(super) fn input_chunk(&mut self, rest: &[u8], now: Instant) -> usize {
        let cap = self.config.body_chunk.max(64);
        let room = cap.saturating_sub(self.body.len());
        let (min_rate, cap_timeout) = (self.config.min_data_rate, self.config.data_timeout);
        let max_hops = self.config.max_hops;
        let Phase::Chunk(read) = &mut self.phase else {
            return 0;
        };
        let want = usize::try_from(read.remaining).unwrap_or(usize::MAX);
        let take = if read.discard.is_some() {
            rest.len().min(want)
        } else {
            // Normalising can double the output (every bare LF becomes CR LF).
            let room = match self.config.bare_line_endings {
                BareLineEndings::Normalize => room / 2,
                _ => room,
            };
            rest.len().min(want).min(room)
        };
        if take == 0 {
            return 0;
        }
        read.remaining -= take as u64;
        if min_rate > 0 {
            let nanos = (take as u128 * 1_000_000_000) / u128::from(min_rate);
            let extra = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            read.deadline = (read.deadline + extra).min(now + cap_timeout);
        }
        self.deadline = Some(read.deadline);
        let done = read.remaining == 0;
        if read.discard.is_none() {
            if let Some(c) = self
                .construct
                .as_mut()
                .and_then(|c| c.chunks.as_deref_mut())
            {
                let body = &mut self.body;
                let Chunked {
                    scan, hops, doom, ..
                } = c;
                scan.feed(&rest[..take], &mut |bytes: &[u8]| {
                    hops.feed(bytes);
                    if hops.count > max_hops {
                        doom.get_or_insert(Doom::TooManyHops);
                    }
                    if doom.is_none() {
                        body.extend_from_slice(bytes);
                    }
                });
                if doom.is_some() || scan.stats().size_exceeded {
                    body.clear();
                }
            }
        }
        if done {
            self.finish_chunk(now);
        }
        take
    }

    /// The chunk's last octet was read: its reply, or for `LAST` the end of the message.
    fn finish_chunk(&mut self, now: Instant) {
        let Phase::Chunk(read) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return;
        };
        self.deadline = Some(now + self.config.command_timeout);
        if let Some(reply) = read.discard {
            self.send_reply(&reply);
        } else if !read.last {
            let text = format!("Ok: {} octets", read.size);
            self.send_reply(&Reply::new(250, Some(EnhancedStatus::new(2, 0, 0)), &text));
        } else {
            self.finish_chunked();
        }
        if !self.session.esmtp && self.pending.is_none() {
            self.end_group();
        }
    }

    /// `BDAT n LAST` was read: refuse the message, or hand it to the driver for commit.
    fn finish_chunked(&mut self) {
        let Some(mut construct) = self.construct.take() else {
            return self.send(&r::NEED_MAIL);
        };
        let Some(mut chunks) = construct.chunks.take() else {
            return self.send(&r::NEED_MAIL);
        };
        let body = &mut self.body;
        let policy = self.config.bare_line_endings;
        let Chunked {
            scan, hops, doom, ..
        } = &mut *chunks;
        scan.finish(&mut |bytes: &[u8]| {
            if doom.is_none() {
                body.extend_from_slice(bytes);
            }
        });
        if policy == BareLineEndings::Reject && scan.stats().has_bare_line_endings() {
            doom.get_or_insert(Doom::BareLineEnding);
        }
        let stats = MessageStats {
            data: *scan.stats(),
            hops: hops.count,
        };
        let refusal = if stats.data.size_exceeded {
            Some((r::SIZE_TOO_BIG, AbortReason::SizeExceeded))
        } else {
            doom.map(Doom::refusal)
        };
        match refusal {
            None => {
                let event = Event::MessageComplete {
                    envelope: construct.env,
                    stats,
                };
                self.await_decision(Pending::MessageComplete, event);
            }
            Some((reply, reason)) => {
                self.body.clear();
                self.emit(Event::MessageAborted { reason });
                self.send(&reply);
            }
        }
    }

    /// A BDAT line that did not parse: `501 5.5.4` and close, since the octets that follow
    /// cannot be told from commands.
    pub(super) fn bad_bdat(&mut self) {
        self.out.push_with(|o| r::write(o, &BAD_CHUNK_SIZE));
        self.close(CloseReason::BadChunkSize);
    }

    /// The transaction's BDAT message is dropped (RSET, a new greeting, a close, the
    /// driver's `destroy_message_construct`): the driver discards what it wrote.
    pub(super) fn abort_chunks(&mut self, reason: AbortReason) {
        let open = self
            .construct
            .as_mut()
            .and_then(|c| c.chunks.as_deref_mut())
            .is_some_and(|c| std::mem::take(&mut c.open));
        if open {
            self.body.clear();
            self.emit(Event::MessageAborted { reason });
        }
        if let Phase::Chunk(read) = &mut self.phase {
            read.discard.get_or_insert_with(|| r::ABORTED.into());
        }
    }
}

/// Whether a command line that did not parse is a BDAT line (`BDAT` then SP or the line end).
pub(super) fn is_bdat_line(line: &[u8]) -> bool {
    line.get(..4)
        .is_some_and(|v| v.eq_ignore_ascii_case(b"BDAT"))
        && matches!(line.get(4), Some(b' ' | b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdat_lines() {
        assert!(is_bdat_line(b"BDAT -1\r\n"));
        assert!(is_bdat_line(b"bdat\r\n"));
        assert!(!is_bdat_line(b"BDATX 1\r\n"));
        assert!(!is_bdat_line(b"BDA"));
    }
}
