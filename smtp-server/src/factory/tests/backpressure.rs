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

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// A driver whose buffer takes only part of each body chunk (`consume_body_prefix`)
    /// receives the body whole and in order, the factory stops reading while its body
    /// buffer is full, and the end of data waits for the last byte.
    #[test]
    fn a_body_consumed_in_pieces_arrives_whole_and_in_order(
        lines in proptest::collection::vec("[ -~]{0,120}", 0..300),
        takes in proptest::collection::vec(1usize..700, 1..40),
        packet in 1usize..5000,
    ) {
        let mut body = Vec::new();
        for l in &lines {
            body.extend_from_slice(l.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        let mut wire = stuffed(&body);
        wire.extend_from_slice(b".\r\n");
        let mut h = Harness::ready(FactoryConfig::default());
        h.hold_body = true;
        h.send(b"MAIL FROM:<a@example.org>\r\n");
        h.send(b"RCPT TO:<b@example.org>\r\n");
        h.send(b"DATA\r\n");
        proptest::prop_assert!(h.output().contains("354"));
        let mut got = Vec::new();
        let mut k = 0;
        let mut sent = 0;
        let mut steps = 0;
        loop {
            steps += 1;
            proptest::prop_assert!(steps < 1_000_000, "no progress");
            if let Some(chunk) = h.f.poll_body() {
                if chunk.len() + 2 > h.f.config().body_chunk.max(64) {
                    proptest::prop_assert!(!h.f.wants_input(), "reads on with a full body buffer");
                }
                let take = takes[k % takes.len()].min(chunk.len());
                k += 1;
                got.extend_from_slice(&chunk[..take]);
                h.f.consume_body_prefix(take);
                h.pump();
                continue;
            }
            if sent < wire.len() {
                let end = (sent + packet).min(wire.len());
                h.send(&wire[sent..end]);
                sent = end;
                continue;
            }
            if h.input.is_empty() {
                break;
            }
            h.pump();
        }
        proptest::prop_assert_eq!(&got, &body);
        let out = h.output();
        proptest::prop_assert!(out.contains("250 2.0.0 Ok: queued as"), "{}", out);
    }
}
