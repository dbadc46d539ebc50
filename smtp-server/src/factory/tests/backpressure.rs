//! Back-pressure: a full reply queue or body buffer stops input consumption.

use std::sync::Arc;
use std::time::Instant;

use super::util::*;
use crate::factory::{Event, Factory, FactoryConfig};

fn factory(cfg: FactoryConfig) -> (Factory, Instant) {
    let now = Instant::now();
    let mut f = Factory::new(
        Arc::new(cfg),
        PEER.parse().unwrap(),
        LOCAL.parse().unwrap(),
        now,
    );
    let banner = f.poll_transmit().unwrap().len();
    f.advance_transmit(banner);
    let n = f.handle_input(b"EHLO c.example\r\n", now);
    assert_eq!(n, 16);
    let len = f.poll_transmit().unwrap().len();
    f.advance_transmit(len);
    (f, now)
}

#[test]
fn full_reply_queue_stops_reading() {
    let mut cfg = config();
    cfg.max_queued_replies = 4;
    let (mut f, now) = factory(cfg);
    let input = b"RSET\r\n".repeat(10);
    let n = f.handle_input(&input, now);
    assert_eq!(n, 4 * 6, "stops once 4 replies are queued");
    assert!(!f.wants_input());
    assert_eq!(f.handle_input(&input[n..], now), 0);
    // The client reads part of it: still full until the queue empties.
    f.advance_transmit(3);
    assert_eq!(f.handle_input(&input[n..], now), 0);
    let len = f.poll_transmit().unwrap().len();
    f.advance_transmit(len);
    assert!(f.wants_input());
    assert_eq!(f.handle_input(&input[n..], now), 24);
}

#[test]
fn transmit_byte_bound() {
    let mut cfg = config();
    cfg.max_transmit = 1024;
    let (mut f, now) = factory(cfg);
    let input = b"HELP\r\n".repeat(100);
    let n = f.handle_input(&input, now);
    assert!(n < input.len());
    let pending = f.poll_transmit().unwrap().len();
    assert!((1024..1024 + 200).contains(&pending), "{pending}");
}

#[test]
fn body_buffer_bounds_memory() {
    let mut cfg = config();
    cfg.body_chunk = 4096;
    let (mut f, now) = factory(cfg);
    let head = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n";
    assert_eq!(f.handle_input(head, now), head.len());
    let len = f.poll_transmit().unwrap().len();
    f.advance_transmit(len);
    assert!(matches!(f.poll_event(), Some(Event::MessageStart { .. })));
    // A 1 MiB body offered at once is taken at most a buffer's worth at a time.
    let body = stuffed(&b"0123456789abcdef\r\n".repeat(60_000));
    let mut off = 0;
    let mut got = 0usize;
    let mut rounds = 0;
    while off < body.len() {
        let n = f.handle_input(&body[off..], now);
        assert!(n <= 4096, "{n}");
        off += n;
        if let Some(chunk) = f.poll_body() {
            assert!(chunk.len() <= 4096);
            got += chunk.len();
            f.consume_body();
        }
        rounds += 1;
        assert!(rounds < 10_000);
    }
    assert_eq!(got, 18 * 60_000);
    assert!(matches!(
        f.poll_event(),
        Some(Event::MessageComplete { .. })
    ));
}
