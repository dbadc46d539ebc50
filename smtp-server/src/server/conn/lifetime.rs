//! A connection's lifetime as a state machine (open, the peer's side closed, closing once
//! everything is written, dead), and what the poller told us about its socket
//! ([`Readiness`]).
//!
//! Neither does I/O or reads the clock: the connection (`conn/mod.rs`) reports what its
//! reads and writes found, and the loop reports the poller's events.

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lifetime {
    /// Both sides open.
    #[default]
    Open,
    /// The peer closed its side (or reading failed): the factory is told once its held
    /// input is consumed, and the replies still go out.
    AwaitingFactoryClose,
    /// The driver closes the connection once everything queued is written (shutdown, a
    /// TLS error): nothing more is read.
    AwaitingFlush,
    /// Writing failed: the socket is unusable, the connection is done.
    Dead,
}

impl Lifetime {
    /// The peer closed its side (a read returned 0 or failed). Only an open connection
    /// changes: a closing or dead one reads no more anyway.
    pub(crate) fn peer_closed(&mut self) {
        if *self == Lifetime::Open {
            *self = Lifetime::AwaitingFactoryClose;
        }
    }

    /// Close once everything is written. Returns `true` when this asked first (it was not
    /// closing or dead already).
    pub(crate) fn close_when_flushed(&mut self) -> bool {
        match self {
            Lifetime::Open | Lifetime::AwaitingFactoryClose => {
                *self = Lifetime::AwaitingFlush;
                true
            }
            Lifetime::AwaitingFlush | Lifetime::Dead => false,
        }
    }

    /// The socket is unusable (a write failed, TLS could not start): done at once.
    pub(crate) fn write_failed(&mut self) {
        *self = Lifetime::Dead;
    }

    /// Both sides are open: the connection may ask to read.
    pub(crate) fn is_open(self) -> bool {
        self == Lifetime::Open
    }

    /// The peer's side is closed and the driver has not asked to close.
    pub(crate) fn peer_has_closed(self) -> bool {
        self == Lifetime::AwaitingFactoryClose
    }

    /// The driver asked to close, or the socket is dead: nothing more is read.
    pub(crate) fn is_closing(self) -> bool {
        matches!(self, Lifetime::AwaitingFlush | Lifetime::Dead)
    }

    /// The socket is unusable.
    pub(crate) fn is_dead(self) -> bool {
        self == Lifetime::Dead
    }
}

/// What the read side of the socket may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadSide {
    /// Drained: wait for the poller.
    Drained,
    /// It may hold more; a short read proves it drained.
    Ready,
    /// The poller reported the peer's half-close or an error: a short read is no proof of a
    /// drained socket any more, only `WouldBlock` (`drained`) or end of file is.
    HalfClosed { drained: bool },
}

/// The poller's readiness hints for one socket. A hint, not a promise: a read or write that
/// would block clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness {
    read: ReadSide,
    /// The socket may take more bytes.
    write: bool,
}

impl Default for Readiness {
    /// A new socket: try both (edge-triggered registration reports only what comes later).
    fn default() -> Readiness {
        Readiness {
            read: ReadSide::Ready,
            write: true,
        }
    }
}

impl Readiness {
    /// A poller event: readable, the peer's read side closed (or an error), writable.
    pub(crate) fn event(&mut self, readable: bool, read_closed: bool, writable: bool) {
        if read_closed {
            self.read = ReadSide::HalfClosed { drained: false };
        } else if readable {
            self.read = match self.read {
                ReadSide::HalfClosed { .. } => ReadSide::HalfClosed { drained: false },
                _ => ReadSide::Ready,
            };
        }
        if writable {
            self.write = true;
        }
    }

    /// Whether a read may return something.
    pub(crate) fn can_read(self) -> bool {
        matches!(
            self.read,
            ReadSide::Ready | ReadSide::HalfClosed { drained: false }
        )
    }

    /// Whether a write may take something.
    pub(crate) fn can_write(self) -> bool {
        self.write
    }

    /// A read returned `WouldBlock`.
    pub(crate) fn read_would_block(&mut self) {
        self.read = match self.read {
            ReadSide::HalfClosed { .. } => ReadSide::HalfClosed { drained: true },
            _ => ReadSide::Drained,
        };
    }

    /// A read returned less than asked for: drained, unless the peer half-closed.
    pub(crate) fn short_read(&mut self) {
        if self.read == ReadSide::Ready {
            self.read = ReadSide::Drained;
        }
    }

    /// Read again without an event (TLS just started: the client's hello may be in the
    /// kernel's buffer already).
    pub(crate) fn retry_read(&mut self) {
        self.read = match self.read {
            ReadSide::HalfClosed { .. } => ReadSide::HalfClosed { drained: false },
            _ => ReadSide::Ready,
        };
    }

    /// A write returned `WouldBlock` (or the socket is unusable).
    pub(crate) fn write_would_block(&mut self) {
        self.write = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifetime_only_goes_forward() {
        let mut l = Lifetime::default();
        assert!(l.is_open() && !l.is_closing());
        l.peer_closed();
        assert!(l.peer_has_closed() && !l.is_open() && !l.is_closing());
        assert!(l.close_when_flushed());
        assert!(l.is_closing() && !l.peer_has_closed() && !l.is_dead());
        assert!(!l.close_when_flushed(), "asked once");
        l.peer_closed();
        assert_eq!(
            l,
            Lifetime::AwaitingFlush,
            "a closing connection stays closing"
        );
        l.write_failed();
        assert!(l.is_dead() && l.is_closing());
        assert!(!l.close_when_flushed());
        l.peer_closed();
        assert!(l.is_dead(), "dead stays dead");
    }

    #[test]
    fn an_open_connection_may_close_at_once() {
        let mut l = Lifetime::default();
        assert!(l.close_when_flushed());
        assert_eq!(l, Lifetime::AwaitingFlush);
        let mut l = Lifetime::default();
        l.write_failed();
        assert!(l.is_dead());
    }

    #[test]
    fn a_short_read_drains_an_open_socket() {
        let mut r = Readiness::default();
        assert!(r.can_read() && r.can_write());
        r.short_read();
        assert!(!r.can_read());
        r.event(true, false, false);
        assert!(r.can_read());
        r.read_would_block();
        assert!(!r.can_read());
        r.retry_read();
        assert!(r.can_read());
    }

    #[test]
    fn after_a_half_close_only_would_block_drains() {
        let mut r = Readiness::default();
        r.read_would_block();
        r.event(false, true, false);
        assert!(r.can_read(), "a half-close is readable");
        r.short_read();
        assert!(r.can_read(), "a short read is no proof any more");
        r.read_would_block();
        assert!(!r.can_read());
        r.event(true, false, false);
        assert!(r.can_read());
        r.short_read();
        assert!(r.can_read(), "the half-close is remembered");
    }

    #[test]
    fn writability_comes_from_events() {
        let mut r = Readiness::default();
        r.write_would_block();
        assert!(!r.can_write());
        r.event(true, false, false);
        assert!(!r.can_write());
        r.event(false, false, true);
        assert!(r.can_write());
    }
}
