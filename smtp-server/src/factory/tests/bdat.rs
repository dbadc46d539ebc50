//! CHUNKING / BDAT (RFC 3030): pipelined chunks, SIZE, refused chunks read and dropped,
//! malformed counts, DATA after BDAT, disconnects mid-chunk, the bare CR/LF policy.

use proptest::prelude::*;
use smtp_proto::data::BareLineEndings;

use super::util::*;
use crate::factory::{
    AbortReason, CloseReason, Decision, Decisions, Event, EventKind, FactoryConfig, State,
};

const ENVELOPE: &[u8] = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n";

fn transaction(h: &mut Harness) {
    h.send(ENVELOPE);
    assert_eq!(h.output(), "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
    h.events.clear();
}

/// The stored message without our `Received:` header (which ends with the line holding
/// its only `;`).
fn stored_body(h: &Harness) -> Vec<u8> {
    let body = &h.body;
    let semi = body
        .iter()
        .position(|&b| b == b';')
        .expect("a Received: header");
    let end = semi + body[semi..].windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    body[end..].to_vec()
}

#[test]
fn chunking_is_advertised() {
    let mut h = Harness::new(config());
    let ehlo = h.exchange(b"EHLO client.example\r\n");
    assert!(ehlo.contains("250 CHUNKING\r\n"), "{ehlo}");
    assert!(!ehlo.contains("BINARYMIME"), "{ehlo}");
    let mut off = config();
    off.chunking = false;
    let mut h = Harness::new(off);
    assert!(!h.exchange(b"EHLO c\r\n").contains("CHUNKING"));
    // Off, BDAT is 502, and its chunk is still read: "QUIT" inside it is no command.
    h.send(ENVELOPE);
    h.output();
    assert_eq!(
        h.exchange(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n"),
        "502 5.5.1 Error: command not implemented\r\n250 2.0.0 Ok\r\n"
    );
}

#[test]
fn pipelined_chunks_make_one_message_without_unstuffing() {
    let mut h = Harness::ready(config());
    let mut input = Vec::new();
    input.extend_from_slice(ENVELOPE);
    input.extend_from_slice(b"BDAT 20\r\nSubject: hi\r\n\r\n..dot");
    input.extend_from_slice(b"BDAT 10\r\n\r\n.\r\nend\r\n");
    input.extend_from_slice(b"BDAT 0 LAST\r\nQUIT\r\n");
    assert_eq!(
        h.exchange(&input),
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 20 octets\r\n250 2.0.0 Ok: 10 octets\r\n\
         250 2.0.0 Ok: queued as QID1\r\n221 2.0.0 Bye\r\n"
    );
    assert_eq!(
        h.kinds(),
        [
            EventKind::MessageStart,
            EventKind::MessageComplete,
            EventKind::Close
        ]
    );
    assert_eq!(stored_body(&h), b"Subject: hi\r\n\r\n..dot\r\n.\r\nend\r\n");
    match &h.events[1] {
        Event::MessageComplete { stats, .. } => assert_eq!(stats.data.size, 30),
        other => panic!("{other:?}"),
    }
}

#[test]
fn chunks_split_anywhere_give_the_same_message() {
    let wire: &[u8] = b"BDAT 12\r\nline one\r\nxxBDAT 7 LAST\r\ny\r\nzz\r\n";
    for cut in 0..wire.len() {
        let mut h = Harness::ready(config());
        transaction(&mut h);
        h.send(&wire[..cut]);
        h.send(&wire[cut..]);
        assert_eq!(
            h.output(),
            "250 2.0.0 Ok: 12 octets\r\n250 2.0.0 Ok: queued as QID1\r\n",
            "cut at {cut}"
        );
        assert_eq!(
            stored_body(&h),
            b"line one\r\nxxy\r\nzz\r\n",
            "cut at {cut}"
        );
    }
}

#[test]
fn a_chunk_over_size_is_552_read_and_refused_until_rset() {
    let mut cfg = config();
    cfg.max_message_size = 10;
    let mut h = Harness::ready(cfg);
    transaction(&mut h);
    assert_eq!(
        h.exchange(b"BDAT 6\r\n123456"),
        "250 2.0.0 Ok: 6 octets\r\n"
    );
    // 6 + 5 > 10: refused before reading, but the 5 octets are read ("RSET\r" is no command).
    assert_eq!(
        h.exchange(b"BDAT 5\r\nRSET\rNOOP\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n"
    );
    assert!(h.kinds().contains(&EventKind::MessageAborted));
    // Every later chunk: the same refusal, its octets dropped.
    assert_eq!(
        h.exchange(b"BDAT 4 LAST\r\nQUIT"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert!(!h.f.is_closed());
    assert_eq!(
        h.exchange(b"DATA\r\n"),
        "503 5.5.1 Error: DATA after BDAT in one transaction\r\n"
    );
    h.events.clear();
    assert_eq!(h.exchange(b"RSET\r\n"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        h.kinds(),
        [EventKind::Reset],
        "the message was already aborted"
    );
    // A fresh transaction works.
    transaction(&mut h);
    assert_eq!(
        h.exchange(b"BDAT 3 LAST\r\nabc"),
        "250 2.0.0 Ok: queued as QID1\r\n"
    );
    // A first chunk over SIZE: no message ever starts.
    transaction(&mut h);
    assert_eq!(
        h.exchange(b"BDAT 11 LAST\r\n01234567890NOOP\r\n"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n"
    );
    assert!(!h.kinds().contains(&EventKind::MessageStart));
}

#[test]
fn refused_chunks_are_read_and_dropped() {
    let mut h = Harness::ready(config());
    // No MAIL: 503, and "MAIL FROM:<x>\r\n" inside the chunk is not a command.
    assert_eq!(
        h.exchange(b"BDAT 15\r\nMAIL FROM:<x>\r\nNOOP\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n"
    );
    h.send(b"MAIL FROM:<a@example.org>\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"BDAT 6 LAST\r\nQUIT\r\n"),
        "503 5.5.1 Error: need RCPT command\r\n"
    );
    assert!(!h.f.is_closed());
    assert!(h.events.is_empty(), "{:?}", h.events);
    // A refused DataStart decision: the chunk is dropped, then the hook's reply.
    let mut cfg = config();
    cfg.decisions = Decisions::NONE.with(EventKind::DataStart);
    let mut h = Harness::with_decider(
        cfg,
        Box::new(|e| match e {
            Event::DataStart => Decision::Reject(smtp_proto::reply::Reply::new(
                554,
                Some(smtp_proto::status::EnhancedStatus::new(5, 7, 1)),
                "no",
            )),
            _ => Decision::Continue,
        }),
    );
    h.send(b"EHLO c\r\n");
    h.output();
    transaction(&mut h);
    assert_eq!(
        h.exchange(b"BDAT 6\r\nQUIT\r\nNOOP\r\n"),
        "554 5.7.1 no\r\n250 2.0.0 Ok\r\n"
    );
    assert_eq!(h.kinds(), [EventKind::DataStart]);
}

#[test]
fn the_data_start_decision_names_the_queue_id() {
    let mut cfg = config();
    cfg.decisions = Decisions::NONE.with(EventKind::DataStart);
    let mut h = Harness::with_decider(
        cfg,
        Box::new(|e| match e {
            Event::DataStart => Decision::Queued("0661b8f99d91dd18b5fc".into()),
            Event::MessageComplete { envelope, .. } => {
                Decision::Queued(envelope.queue_id.clone().unwrap())
            }
            _ => Decision::Continue,
        }),
    );
    h.send(b"EHLO c\r\n");
    h.output();
    transaction(&mut h);
    assert_eq!(
        h.exchange(b"BDAT 2 LAST\r\nhi"),
        "250 2.0.0 Ok: queued as 0661b8f99d91dd18b5fc\r\n"
    );
    let body = String::from_utf8(h.body.clone()).unwrap();
    assert!(
        body.contains("with ESMTP id 0661b8f99d91dd18b5fc\r\n\tfor <b@example.com>; "),
        "{body}"
    );
}

#[test]
fn the_driver_s_queue_id_goes_into_received_once() {
    let mut h = Harness::ready(config());
    h.f.set_queue_id("AAAA1");
    transaction(&mut h);
    h.send(b"BDAT 1 LAST\r\nx");
    h.send(ENVELOPE);
    h.send(b"DATA\r\n");
    h.send(b"y\r\n.\r\n");
    let body = String::from_utf8(h.body.clone()).unwrap();
    assert_eq!(body.matches(" id AAAA1\r\n").count(), 1, "{body}");
    assert_eq!(body.matches("Received:").count(), 2, "{body}");
    assert!(!h.f.has_queue_id());
}

#[test]
fn malformed_counts_are_501_and_close() {
    for line in [
        &b"BDAT -1\r\n"[..],
        b"BDAT 1x\r\n",
        b"BDAT 5 LASTX\r\n",
        b"BDAT 18446744073709551616\r\n",
        b"bdat\r\n",
        b"BDAT 5  LAST\r\n",
    ] {
        let mut h = Harness::ready(config());
        transaction(&mut h);
        let mut input = line.to_vec();
        input.extend_from_slice(b"NOOP\r\n");
        assert_eq!(
            h.exchange(&input),
            "501 5.5.4 Error: invalid BDAT chunk size, closing\r\n",
            "{line:?}"
        );
        assert_eq!(h.closed_with(), Some(CloseReason::BadChunkSize));
    }
}

#[test]
fn data_after_bdat_is_503_and_rcpt_too() {
    let mut h = Harness::ready(config());
    transaction(&mut h);
    assert_eq!(h.exchange(b"BDAT 3\r\nabc"), "250 2.0.0 Ok: 3 octets\r\n");
    assert_eq!(
        h.exchange(b"DATA\r\n"),
        "503 5.5.1 Error: DATA after BDAT in one transaction\r\n"
    );
    assert_eq!(
        h.exchange(b"RCPT TO:<c@example.com>\r\n"),
        "503 5.5.1 Error: RCPT after BDAT in one transaction\r\n"
    );
    assert_eq!(
        h.exchange(b"BDAT 1 LAST\r\nd"),
        "250 2.0.0 Ok: queued as QID1\r\n"
    );
    assert_eq!(stored_body(&h), b"abcd");
    // After LAST the transaction is over: BDAT needs a new MAIL (its octet still read).
    assert_eq!(
        h.exchange(b"BDAT 1 LAST\r\nQNOOP\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n"
    );
}

#[test]
fn rset_between_chunks_aborts_the_message() {
    let mut h = Harness::ready(config());
    transaction(&mut h);
    h.send(b"BDAT 3\r\nabc");
    h.output();
    assert_eq!(h.exchange(b"RSET\r\n"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        h.kinds(),
        [
            EventKind::MessageStart,
            EventKind::MessageAborted,
            EventKind::Reset
        ]
    );
    // EHLO in the middle of one too.
    transaction(&mut h);
    h.events.clear();
    h.send(b"BDAT 3\r\nabc");
    h.send(b"EHLO c\r\n");
    assert!(h.kinds().contains(&EventKind::MessageAborted));
}

#[test]
fn a_disconnect_mid_chunk_leaves_nothing() {
    let mut h = Harness::ready(config());
    transaction(&mut h);
    h.send(b"BDAT 100 LAST\r\nSubject: x\r\n\r\npart");
    assert_eq!(h.f.state(), State::ReadingBody);
    h.f.handle_close();
    h.pump();
    assert_eq!(
        h.kinds(),
        [
            EventKind::MessageStart,
            EventKind::MessageAborted,
            EventKind::Close
        ]
    );
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::MessageAborted {
            reason: AbortReason::ConnectionClosed
        }
    )));
    assert!(h.f.poll_body().is_none());
    // Between chunks, the same.
    let mut h = Harness::ready(config());
    transaction(&mut h);
    h.send(b"BDAT 4\r\npart");
    h.f.handle_close();
    h.pump();
    assert!(h.kinds().contains(&EventKind::MessageAborted));
    assert!(!h.kinds().contains(&EventKind::MessageComplete));
}

#[test]
fn the_bare_line_ending_policy_applies_to_chunks() {
    // A body that would end a DATA message early if its bare LFs were passed on.
    let smuggle: &[u8] = b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@x>\r\n";
    let bdat = |policy| {
        let mut cfg = config();
        cfg.bare_line_endings = policy;
        let mut h = Harness::ready(cfg);
        transaction(&mut h);
        let mut input = format!("BDAT {} LAST\r\n", smuggle.len()).into_bytes();
        input.extend_from_slice(smuggle);
        let out = h.exchange(&input);
        (h, out)
    };
    let (h, out) = bdat(BareLineEndings::Normalize);
    assert_eq!(out, "250 2.0.0 Ok: queued as QID1\r\n");
    assert_eq!(
        stored_body(&h),
        b"Subject: a\r\n\r\nx\r\n.\r\nMAIL FROM:<evil@x>\r\n"
    );
    let (h, out) = bdat(BareLineEndings::Reject);
    assert_eq!(out, "550 5.5.2 Message contains bare CR or LF\r\n");
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::MessageAborted {
            reason: AbortReason::BareLineEnding
        }
    )));
    let (h, _) = bdat(BareLineEndings::Keep);
    assert_eq!(stored_body(&h), smuggle);
    // And relayed by DATA, the dot-stuffer makes it one message whatever was stored.
    let wire = stuffed(&stored_body(&h));
    let mut cfg = FactoryConfig::new("next.example");
    cfg.bare_line_endings = BareLineEndings::Keep;
    let mut next = Harness::ready(cfg);
    transaction(&mut next);
    next.send(b"DATA\r\n");
    next.output();
    next.send(&wire);
    assert_eq!(next.output(), "250 2.0.0 Ok: queued as QID1\r\n");
    assert_eq!(
        next.kinds()
            .iter()
            .filter(|k| **k == EventKind::MessageComplete)
            .count(),
        1
    );
}

#[test]
fn too_many_hops_in_chunks_is_554() {
    let mut cfg = config();
    cfg.max_hops = 1;
    let mut h = Harness::ready(cfg);
    transaction(&mut h);
    h.send(b"BDAT 13\r\nReceived: a\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"BDAT 15 LAST\r\nReceived: b\r\n\r\n"),
        "554 5.4.6 Error: too many hops\r\n"
    );
}

#[test]
fn a_helo_session_may_send_bdat_and_its_chunk() {
    let mut h = Harness::new(config());
    h.send(b"HELO c\r\n");
    h.output();
    h.send(b"MAIL FROM:<a@example.org>\r\n");
    h.send(b"RCPT TO:<b@example.com>\r\n");
    h.output();
    assert_eq!(
        h.exchange(b"BDAT 3 LAST\r\nabc"),
        "250 2.0.0 Ok: queued as QID1\r\n"
    );
}

#[test]
fn a_slow_chunk_times_out() {
    let mut h = Harness::ready(config());
    transaction(&mut h);
    h.send(b"BDAT 1000 LAST\r\nabc");
    h.advance(std::time::Duration::from_secs(301));
    assert!(h.f.is_closed());
    assert_eq!(h.closed_with(), Some(CloseReason::Timeout));
    assert!(h.kinds().contains(&EventKind::MessageAborted));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any body in any chunking, split into any reads: the stored body is the sent one
    /// (CR LF-only bodies are kept byte for byte), one message, and the session stays in
    /// sync (the NOOP after is answered).
    #[test]
    fn any_chunking_stores_the_body(
        lines in proptest::collection::vec("[ -~]{0,20}", 0..12),
        cuts in proptest::collection::vec(0usize..400, 0..6),
        reads in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let body: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.push(body.len());
        cuts.sort_unstable();
        let mut wire = Vec::new();
        let mut at = 0;
        let mut chunks = 0;
        for (i, &cut) in cuts.iter().enumerate() {
            let last = i + 1 == cuts.len();
            let head = if last { format!("BDAT {} LAST\r\n", cut - at) } else { format!("BDAT {}\r\n", cut - at) };
            wire.extend_from_slice(head.as_bytes());
            wire.extend_from_slice(&body[at..cut]);
            at = cut;
            chunks += 1;
        }
        wire.extend_from_slice(b"NOOP\r\n");
        let mut h = Harness::ready(config());
        transaction(&mut h);
        let mut pos = 0;
        let mut r = 0;
        while pos < wire.len() {
            let n = reads[r % reads.len()].min(wire.len() - pos);
            h.send(&wire[pos..pos + n]);
            pos += n;
            r += 1;
        }
        let out = h.output();
        prop_assert_eq!(out.matches("250 2.0.0 Ok: queued as QID1\r\n").count(), 1);
        prop_assert_eq!(out.lines().count(), chunks + 1);
        prop_assert!(out.ends_with("250 2.0.0 Ok\r\n"));
        prop_assert_eq!(stored_body(&h), body);
    }
}
