//! The output buffer behind [`Session::poll_transmit`](super::Session::poll_transmit) and
//! [`Session::advance_transmit`](super::Session::advance_transmit): commands and body bytes
//! queued by the states, lent to the driver until it says how many it wrote.
//!
//! It does not bound what is queued (a session queues at most one pipelined flight or one
//! body at a time) and knows nothing of sockets.

/// Bytes for the server: `buf[sent..]` is still to be written.
#[derive(Debug, Default)]
pub(crate) struct Transmit {
    buf: Vec<u8>,
    sent: usize,
}

/// Once this many written bytes sit at the front of a buffer holding as many unwritten
/// ones, they are dropped (a driver that writes a little at a time does not grow the buffer
/// without end).
const COMPACT_AFTER: usize = 4096;

impl Transmit {
    /// Queues `bytes` after what is already waiting.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes not written yet, if any.
    pub(crate) fn peek(&self) -> Option<&[u8]> {
        let rest = &self.buf[self.sent..];
        (!rest.is_empty()).then_some(rest)
    }

    /// The first `n` bytes of [`peek`](Self::peek) were written (more than there are counts
    /// as all of them). The buffer keeps its allocation for the next command.
    pub(crate) fn advance(&mut self, n: usize) {
        self.sent = self.buf.len().min(self.sent.saturating_add(n));
        if self.sent == self.buf.len() {
            self.clear();
        } else if self.sent >= COMPACT_AFTER && self.sent * 2 >= self.buf.len() {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Drops everything not written yet (the session is over).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Transmit;

    #[test]
    fn short_writes_resume_where_they_stopped() {
        let mut t = Transmit::default();
        assert_eq!(t.peek(), None);
        t.push(b"MAIL FROM:<a@b>\r\n");
        t.advance(5);
        assert_eq!(t.peek(), Some(&b"FROM:<a@b>\r\n"[..]));
        t.push(b"DATA\r\n");
        assert_eq!(t.peek(), Some(&b"FROM:<a@b>\r\nDATA\r\n"[..]));
        t.advance(usize::MAX);
        assert_eq!(t.peek(), None);
        let cap = t.buf.capacity();
        t.push(b"QUIT\r\n");
        assert_eq!(t.buf.capacity(), cap, "the allocation is reused");
        assert_eq!(t.peek(), Some(&b"QUIT\r\n"[..]));
    }

    #[test]
    fn written_bytes_are_dropped_from_a_large_buffer() {
        let mut t = Transmit::default();
        t.push(&vec![b'x'; 3 * super::COMPACT_AFTER]);
        t.push(b"end");
        t.advance(2 * super::COMPACT_AFTER);
        assert_eq!(t.sent, 0, "compacted");
        assert_eq!(t.peek().map(<[u8]>::len), Some(super::COMPACT_AFTER + 3));
        t.advance(super::COMPACT_AFTER);
        assert_eq!(t.peek(), Some(&b"end"[..]));
        t.clear();
        assert_eq!(t.peek(), None);
    }
}
