//! [`Factory::handle_input`]: framing command and AUTH lines, discarding too-long lines, and
//! routing body bytes.

use std::time::Instant;

use smtp_proto::command::{discard_line, frame_line, Discard, Frame};
use smtp_proto::status::ErrorReply;

use super::{replies, CloseReason, Factory, Phase, MAX_EVENTS};

/// What to do with a complete line.
type OnLine = fn(&mut Factory, &[u8], Instant);

impl Factory {
    /// Feeds bytes read from the client at `now` and returns how many were consumed.
    ///
    /// Fewer than `input.len()` means the factory stopped — a decision is pending, the reply
    /// queue, body buffer or event queue is full — and the caller keeps the rest and passes it
    /// again when [`wants_input`](Factory::wants_input) says so. Once closed, or while a TLS
    /// handshake is pending (after STARTTLS), input is consumed and discarded.
    #[must_use]
    pub fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        self.clock = now;
        if self.greet_pause && !input.is_empty() {
            self.pregreet();
            return input.len();
        }
        let mut used = 0;
        loop {
            if matches!(self.phase, Phase::Closed | Phase::Tls) {
                return input.len();
            }
            let rest = &input[used..];
            if rest.is_empty()
                || self.pending.is_some()
                || matches!(self.phase, Phase::Greeting)
                || self.held()
                || self.out.is_full()
                || self.events.len() >= MAX_EVENTS
            {
                break;
            }
            // Chunk octets are never commands: they cannot break synchronisation.
            if !matches!(self.phase, Phase::Chunk(_)) && self.out_of_sync() {
                self.sync_violation();
                return input.len();
            }
            let n = match self.phase {
                Phase::Command => {
                    let max = self.config.limits.command_line;
                    self.frame_input(
                        rest,
                        max,
                        now,
                        Factory::command_line,
                        replies::LINE_TOO_LONG,
                    )
                }
                Phase::Auth(_) => {
                    let max = self.config.limits.auth_line;
                    self.frame_input(
                        rest,
                        max,
                        now,
                        Factory::auth_line,
                        smtp_proto::sasl::LINE_TOO_LONG,
                    )
                }
                Phase::Discard(reply) => self.discard(rest, reply, now),
                Phase::Body(_) => self.input_body(rest, now),
                Phase::Chunk(_) => self.input_chunk(rest, now),
                Phase::Greeting | Phase::Tls | Phase::Closed => 0,
            };
            if n == 0 {
                break;
            }
            used += n;
        }
        used
    }

    /// `554 5.5.0` and close: the client did not wait for a reply it had to wait for.
    fn sync_violation(&mut self) {
        self.out.push_with(|o| replies::write(o, &replies::SYNC));
        self.close(CloseReason::ProtocolSync);
    }

    /// Takes the next line of at most `max` bytes from the partial-line buffer and `rest`,
    /// and hands it to `on_line`. Returns the bytes of `rest` consumed (at least one).
    fn frame_input(
        &mut self,
        rest: &[u8],
        max: usize,
        now: Instant,
        on_line: OnLine,
        too_long: ErrorReply,
    ) -> usize {
        if self.line.is_empty() {
            // Zero-copy: the whole line is in this input.
            return match frame_line(rest, max) {
                Frame::Complete(n) => {
                    on_line(self, &rest[..n], now);
                    n
                }
                Frame::Incomplete => {
                    self.line.extend_from_slice(rest);
                    rest.len()
                }
                Frame::TooLong => {
                    self.phase = Phase::Discard(too_long);
                    self.discard(rest, too_long, now)
                }
            };
        }
        let before = self.line.len();
        let take = rest.len().min(max.saturating_sub(before).max(1));
        self.line.extend_from_slice(&rest[..take]);
        match frame_line(&self.line, max) {
            Frame::Complete(n) => {
                self.line.truncate(n);
                let line = std::mem::take(&mut self.line);
                on_line(self, &line, now);
                // Keep the allocation unless the factory closed meanwhile.
                if self.line.is_empty() && !matches!(self.phase, super::Phase::Closed) {
                    self.line = line;
                    self.line.clear();
                }
                n - before
            }
            Frame::Incomplete => take,
            Frame::TooLong => {
                self.line.clear();
                self.phase = Phase::Discard(too_long);
                take
            }
        }
    }

    /// Drops the rest of a too-long line; after its LF, answers `reply` (`500 5.5.2`, or
    /// `500 5.5.6` for an AUTH line, which also ends the exchange).
    fn discard(&mut self, rest: &[u8], reply: ErrorReply, now: Instant) -> usize {
        match discard_line(rest) {
            Discard::All(n) => n,
            Discard::Through(n) => {
                self.phase = Phase::Command;
                self.deadline = Some(now + self.config.command_timeout);
                self.send(&reply);
                n
            }
        }
    }
}
