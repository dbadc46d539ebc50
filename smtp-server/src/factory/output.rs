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
        self.replies += 1;
        self.total_queued += (self.buf.len() - before) as u64;
    }

    pub(crate) fn peek(&self) -> Option<&[u8]> {
        let rest = &self.buf[self.sent..];
        (!rest.is_empty()).then_some(rest)
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
