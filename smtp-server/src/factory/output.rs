//! The bounded reply queue behind `poll_transmit` / `advance_transmit`.

/// Bytes for the client, with a count of the replies they hold and running totals used for
/// pipelining synchronisation ("has the reply to X been written yet?").
#[derive(Debug)]
pub(crate) struct Transmit {
    buf: Vec<u8>,
    sent: usize,
    /// Replies queued since the buffer was last empty (an upper bound on those unwritten).
    replies: usize,
    /// Bytes ever queued.
    pub(crate) total_queued: u64,
    /// Bytes ever written (advanced).
    pub(crate) total_sent: u64,
    max_replies: usize,
    max_bytes: usize,
    /// Replies ever queued, counted by their code (for the driver's metrics).
    pub(crate) tally: ReplyTally,
}

/// Replies a session has queued so far, by the class of their code, for the driver's
/// metrics ([`Factory::reply_tally`](super::Factory::reply_tally)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyTally {
    /// Indexed by the first digit of the code (`1` to `5`); `0` counts anything else.
    pub by_class: [u64; 6],
    /// `235` replies: AUTH succeeded (RFC 4954).
    pub auth_succeeded: u64,
    /// `535` replies: AUTH credentials refused (RFC 4954).
    pub auth_failed: u64,
}

impl ReplyTally {
    /// Counts one reply that starts with `bytes`.
    fn count(&mut self, bytes: &[u8]) {
        let code = match bytes {
            [a, b, c, ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => Some((
                u16::from(a - b'0'),
                u16::from(b - b'0') * 10 + u16::from(c - b'0'),
            )),
            _ => None,
        };
        let class = match code {
            Some((first @ 1..=5, _)) => usize::from(first),
            _ => 0,
        };
        self.by_class[class] += 1;
        match code {
            Some((2, 35)) => self.auth_succeeded += 1,
            Some((5, 35)) => self.auth_failed += 1,
            _ => {}
        }
    }
}

impl Transmit {
    pub(crate) fn new(max_replies: usize, max_bytes: usize) -> Self {
        Transmit {
            buf: Vec::new(),
            sent: 0,
            replies: 0,
            total_queued: 0,
            total_sent: 0,
            max_replies: max_replies.max(1),
            max_bytes: max_bytes.max(512),
            tally: ReplyTally::default(),
        }
    }

    /// Bytes queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Whether the queue is full: stop consuming commands until the driver drains it.
    pub(crate) fn is_full(&self) -> bool {
        self.replies >= self.max_replies || self.pending() >= self.max_bytes
    }

    /// Queues one reply written by `f`.
    pub(crate) fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let before = self.buf.len();
        f(&mut self.buf);
        self.tally.count(&self.buf[before..]);
        self.replies += 1;
        self.total_queued += (self.buf.len() - before) as u64;
    }

    pub(crate) fn peek(&self) -> Option<&[u8]> {
        let rest = &self.buf[self.sent..];
        (!rest.is_empty()).then_some(rest)
    }

    /// Drops every byte not yet written (the client stopped reading them).
    pub(crate) fn discard(&mut self) {
        self.buf.clear();
        self.sent = 0;
        self.replies = 0;
    }

    pub(crate) fn advance(&mut self, n: usize) {
        let n = n.min(self.pending());
        self.sent += n;
        self.total_sent += n as u64;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
            self.replies = 0;
        } else if self.sent >= 4096 && self.sent * 2 >= self.buf.len() {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_counted_by_class_and_auth_code() {
        let mut t = Transmit::new(10, 4096);
        for line in [
            "220 hi\r\n",
            "250-a\r\n250 b\r\n",
            "235 2.7.0 ok\r\n",
            "535 5.7.8 no\r\n",
            "354 go\r\n",
            "x\r\n",
        ] {
            t.push_with(|o| o.extend_from_slice(line.as_bytes()));
        }
        assert_eq!(t.tally.by_class, [1, 0, 3, 1, 0, 1]);
        assert_eq!((t.tally.auth_succeeded, t.tally.auth_failed), (1, 1));
    }
}
