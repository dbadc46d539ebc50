//! The DATA body: `354`, the `Received:` header, streaming decode into the bounded body
//! buffer, hop counting, the per-request deadline and the end-of-data checks.

use std::time::{Duration, Instant};

use smtp_proto::data::{BareLineEndings, DataDecoder};
use smtp_proto::reply::Reply;
use smtp_proto::status::ErrorReply;

use super::received::{self, TraceInfo};
use super::replies as r;
use super::{AbortReason, Event, Factory, MessageStats, Pending, Phase};

/// Why a message being read will be refused at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Doom {
    TooManyHops,
    BareLineEnding,
    /// `destroy_message_construct` was called.
    Discarded,
}

impl Doom {
    /// The reply after the end of data, and the abort reason.
    pub(super) fn refusal(self) -> (ErrorReply, AbortReason) {
        match self {
            Doom::TooManyHops => (r::TOO_MANY_HOPS, AbortReason::TooManyHops),
            Doom::BareLineEnding => (
                smtp_proto::data::REPLY_BARE_LINE_ENDING,
                AbortReason::BareLineEnding,
            ),
            Doom::Discarded => (r::ABORTED, AbortReason::Discarded),
        }
    }
}

/// Counts `Received:` header fields at the start of the body, stopping at the first empty
/// line. A few bytes of state, whatever the header section's size.
#[derive(Debug, Default)]
pub(super) struct HopCounter {
    state: HopState,
    pub(super) count: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum HopState {
    #[default]
    LineStart,
    /// Matched this many bytes of `received:`.
    Matching(u8),
    /// Inside a line that is not (or no longer could be) a `Received:` field.
    SkipLine,
    /// Past the header section.
    Done,
}

const RECEIVED: &[u8; 9] = b"received:";

impl HopCounter {
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                HopState::Done => return,
                HopState::LineStart => {
                    if matches!(bytes[i], b'\r' | b'\n') {
                        self.state = HopState::Done;
                        return;
                    }
                    self.state = HopState::Matching(0);
                }
                HopState::Matching(k) => {
                    if bytes[i].to_ascii_lowercase() == RECEIVED[usize::from(k)] {
                        i += 1;
                        if usize::from(k) + 1 == RECEIVED.len() {
                            self.count = self.count.saturating_add(1);
                            self.state = HopState::SkipLine;
                        } else {
                            self.state = HopState::Matching(k + 1);
                        }
                    } else {
                        self.state = HopState::SkipLine;
                    }
                }
                HopState::SkipLine => match bytes[i..].iter().position(|&b| b == b'\n') {
                    Some(p) => {
                        i += p + 1;
                        self.state = HopState::LineStart;
                    }
                    None => return,
                },
            }
        }
    }
}

/// The state of a message body being read.
#[derive(Debug)]
pub(super) struct BodyReader {
    decoder: DataDecoder,
    hops: HopCounter,
    pub(super) doom: Option<Doom>,
    /// A body byte has arrived (`reading body` rather than `data phase`).
    pub(super) started: bool,
    deadline: Instant,
}

impl Factory {
    /// DATA accepted: `354`, the `Received:` header, [`Event::MessageStart`].
    pub(super) fn start_data(
        &mut self,
        queue_id: Option<String>,
        reply: Option<Reply>,
        now: Instant,
    ) {
        let Some((envelope, header)) = self.open_message(queue_id) else {
            return self.send(&r::NEED_MAIL);
        };
        match reply {
            Some(reply) => self.out.push_with(|o| reply.write_to(o)),
            None => self
                .out
                .push_with(|o| o.extend_from_slice(r::START_DATA.as_bytes())),
        }
        self.end_group();
        let decoder = DataDecoder::new()
            .with_max_size(self.config.max_message_size)
            .with_bare_line_endings(self.config.bare_line_endings);
        let deadline = now + self.config.data_timeout;
        self.phase = Phase::Body(Box::new(BodyReader {
            decoder,
            hops: HopCounter::default(),
            doom: None,
            started: false,
            deadline,
        }));
        self.deadline = Some(deadline);
        self.emit(Event::MessageStart {
            envelope,
            received: header,
        });
    }

    /// The message starts (DATA's `354`, or the first BDAT chunk): the queue id (the
    /// decision's, else the one the driver set for the next message) goes into the envelope,
    /// and the `Received:` header is built. Returns the envelope and the header for
    /// [`Event::MessageStart`].
    pub(super) fn open_message(
        &mut self,
        queue_id: Option<String>,
    ) -> Option<(super::Envelope, String)> {
        let construct = self.construct.as_mut()?;
        let next = self.next_queue_id.take();
        construct.env.queue_id = queue_id.or(next);
        let env = &construct.env;
        let rcpt = match env.recipients.as_slice() {
            [one] => Some(one.path.to_string()),
            _ => None,
        };
        let date = received::rfc5322_date(self.wall);
        let header = received::received_header(&TraceInfo {
            helo: &env.helo,
            name: self.session.client_name.as_deref(),
            peer: self.peer.ip(),
            hostname: &self.config.hostname,
            protocol: received::protocol(
                env.esmtp,
                env.smtputf8(),
                self.session.tls.is_some(),
                self.session.auth.is_some(),
            ),
            queue_id: env.queue_id.as_deref(),
            recipient: rcpt.as_deref(),
            date: &date,
        });
        Some((env.clone(), header))
    }

    /// Decodes body bytes into the body buffer while it has room; returns the bytes consumed
    /// (0 when the buffer is full).
    pub(super) fn input_body(&mut self, rest: &[u8], now: Instant) -> usize {
        let cap = self.config.body_chunk.max(64);
        let room = cap.saturating_sub(self.body.len());
        let policy = self.config.bare_line_endings;
        // Normalising can double the output (every bare LF becomes CR LF).
        let take = match policy {
            BareLineEndings::Normalize => room / 2,
            _ => room,
        }
        .min(rest.len());
        if take == 0 {
            return 0;
        }
        let max_hops = self.config.max_hops;
        let (min_rate, cap_timeout) = (self.config.min_data_rate, self.config.data_timeout);
        let Phase::Body(reader) = &mut self.phase else {
            return 0;
        };
        reader.started = true;
        let body = &mut self.body;
        let BodyReader {
            decoder,
            hops,
            doom,
            deadline,
            ..
        } = &mut **reader;
        let progress = decoder.decode_with(&rest[..take], |bytes| {
            hops.feed(bytes);
            if hops.count > max_hops {
                doom.get_or_insert(Doom::TooManyHops);
            }
            if doom.is_none() {
                body.extend_from_slice(bytes);
            }
        });
        if policy == BareLineEndings::Reject && decoder.stats().has_bare_line_endings() {
            doom.get_or_insert(Doom::BareLineEnding);
        }
        if doom.is_some() || decoder.stats().size_exceeded {
            // Refused at the end anyway: stop handing bytes to the spool.
            body.clear();
        }
        // Postfix's per-request deadline: each byte buys 1/min_rate s, never beyond the cap.
        if min_rate > 0 {
            let nanos = (progress.consumed as u128 * 1_000_000_000) / u128::from(min_rate);
            let extra = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            *deadline = (*deadline + extra).min(now + cap_timeout);
        }
        self.deadline = Some(*deadline);
        if progress.complete {
            self.finish_message(now);
        }
        progress.consumed
    }

    /// The end of data: refuse the message, or hand it to the driver for commit.
    fn finish_message(&mut self, now: Instant) {
        let Phase::Body(reader) = std::mem::replace(&mut self.phase, Phase::Command) else {
            return;
        };
        self.deadline = Some(now + self.config.command_timeout);
        let stats = MessageStats {
            data: *reader.decoder.stats(),
            hops: reader.hops.count,
        };
        let refusal = if stats.data.size_exceeded {
            Some((
                smtp_proto::data::REPLY_SIZE_EXCEEDED,
                AbortReason::SizeExceeded,
            ))
        } else {
            reader.doom.map(Doom::refusal)
        };
        let construct = self.construct.take();
        match (refusal, construct) {
            (None, Some(construct)) => {
                let event = Event::MessageComplete {
                    envelope: construct.env,
                    stats,
                };
                self.await_decision(Pending::MessageComplete, event);
            }
            (refusal, _) => {
                let (reply, reason) = refusal.unwrap_or((r::ABORTED, AbortReason::Discarded));
                self.body.clear();
                self.emit(Event::MessageAborted { reason });
                self.send(&reply);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HopCounter;

    fn hops(chunks: &[&[u8]]) -> u32 {
        let mut h = HopCounter::default();
        for c in chunks {
            h.feed(c);
        }
        h.count
    }

    #[test]
    fn counts_received_headers_only_in_the_header_section() {
        let msg = b"Received: a\r\nRECEIVED: b\r\n c\r\nX-Received: no\r\nreceived:d\r\n\r\nReceived: body\r\n";
        assert_eq!(hops(&[msg]), 3);
        // Split anywhere, same count.
        for cut in 0..msg.len() {
            assert_eq!(hops(&[&msg[..cut], &msg[cut..]]), 3, "cut at {cut}");
        }
        assert_eq!(hops(&[b"Receive: x\r\nReceived x\r\n"]), 0);
        assert_eq!(hops(&[b"\r\nReceived: x\r\n"]), 0);
    }
}
