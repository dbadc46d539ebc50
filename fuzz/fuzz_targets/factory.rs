//! Fuzzes the ESMTP message factory with raw client bytes: the input, split into chunks the
//! fuzzer chooses, is fed to a `Factory` whose decisions are answered from the input too. It
//! must never panic, never consume more than it was given, keep its transmit queue and body
//! chunks bounded, and only ever write well-formed reply lines (`ddd` then space or hyphen).
//! Messages come by DATA and by BDAT (CHUNKING) under every bare CR/LF policy: each
//! `MessageComplete` or `MessageAborted` ends exactly one `MessageStart`.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use smtp_proto::data::BareLineEndings;
use smtp_proto::reply::Reply;
use smtp_server::factory::{
    AuthConfig, Decision, Decisions, Event, Extensions, Factory, FactoryConfig, State, TlsInfo,
};

fn config(steer: u8, policy: u8) -> FactoryConfig {
    let mut cfg = FactoryConfig::new("mx.example");
    cfg.max_queued_replies = 1 + usize::from(steer % 8);
    cfg.max_transmit = 1024;
    cfg.body_chunk = 256;
    cfg.max_message_size = 4096;
    cfg.max_hops = 3;
    cfg.bare_line_endings = match policy % 3 {
        0 => BareLineEndings::Normalize,
        1 => BareLineEndings::Reject,
        _ => BareLineEndings::Keep,
    };
    cfg.forbid_pipelining_violations = steer & 0x10 != 0;
    cfg.tls_available = steer & 0x20 != 0;
    cfg.auth = Some(AuthConfig {
        require_tls: steer & 0x40 != 0,
        ..AuthConfig::default()
    });
    if steer & 0x80 != 0 {
        cfg.decisions = Decisions::ALL;
    }
    let mut ext = Extensions::new();
    let _ = ext.register(
        "XCLIENT",
        &["ADDR"],
        Some("XCLIENT"),
        &["XTRACE"],
        &["XPRIO"],
    );
    cfg.extensions = ext;
    cfg
}

fn decision(pick: u8) -> Decision {
    match pick % 7 {
        0 => Decision::Continue,
        1 => Decision::Accept,
        2 => Decision::Reject(Reply::new(550, None, "no")),
        3 => Decision::TempFail(Reply::new(451, None, "later")),
        4 => Decision::Disconnect(Reply::new(421, None, "bye")),
        5 => Decision::Queued("ID\r\n250 injected".into()),
        _ => Decision::Reply(Reply::new(250, None, "ok")),
    }
}

fn check_reply_lines(out: &[u8]) {
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.ends_with(b"\r"), "unterminated reply line {line:?}");
        assert!(line.len() >= 4, "short reply line {line:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit), "{line:?}");
        assert!(matches!(line[3], b' ' | b'-' | b'\r'), "{line:?}");
    }
}

fuzz_target!(|input: &[u8]| {
    let (steer, chunk, policy, data) = match input {
        [a, b, rest @ ..] => (*a, usize::from(*b % 64) + 1, *b / 64, rest),
        _ => return,
    };
    let mut now = Instant::now();
    let mut f = Factory::new(
        Arc::new(config(steer, policy)),
        "192.0.2.1:1234".parse().unwrap(),
        "192.0.2.2:25".parse().unwrap(),
        now,
    );
    let mut written = Vec::new();
    let mut held: Vec<u8> = Vec::new();
    let mut pieces = data.chunks(chunk);
    // A queue id with a line break in it: the `Received:` header must not break.
    f.set_queue_id("Q1\r\nX-Injected: 1");
    let mut pick = steer;
    // A message is open at the driver (MessageStart seen, not yet completed or aborted).
    let mut open = false;
    for _ in 0..100_000 {
        while let Some(bytes) = f.poll_transmit() {
            assert!(bytes.len() <= 1024 + 4096);
            written.extend_from_slice(bytes);
            let n = bytes.len();
            f.advance_transmit(n);
        }
        while let Some(body) = f.poll_body() {
            assert!(body.len() <= 256);
            // Sometimes a driver whose buffer takes only part of the chunk.
            pick = pick.wrapping_mul(31).wrapping_add(7);
            let len = body.len();
            if pick % 4 == 0 {
                f.consume_body_prefix(usize::from(pick) % len + 1);
            } else {
                f.consume_body();
            }
        }
        while let Some(event) = f.poll_event() {
            pick = pick.wrapping_mul(31).wrapping_add(7);
            match &event {
                Event::MessageStart { received, .. } => {
                    assert!(!open, "a message started inside another");
                    // Folded lines only: nothing in it starts a header field of its own.
                    for line in received.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
                        assert!(line.starts_with('\t'), "{received:?}");
                    }
                    open = true;
                }
                Event::MessageComplete { .. } | Event::MessageAborted { .. } => {
                    assert!(open, "a message ended that never started");
                    open = false;
                }
                _ => {}
            }
            // A decision polled after its deadline (the factory answered it itself, and an
            // `Event::DecisionTimeout` follows) has nothing left to answer.
            if event.needs_decision() && matches!(f.state(), State::AsyncHook(_)) {
                f.handle_decision(decision(pick), now).unwrap();
            }
            if matches!(event, Event::StartTls) {
                f.handle_tls_established(TlsInfo::default(), now).unwrap();
            }
        }
        if held.is_empty() {
            match pieces.next() {
                Some(piece) => held.extend_from_slice(piece),
                None => break,
            }
        }
        let n = f.handle_input(&held, now);
        assert!(n <= held.len());
        held.drain(..n);
        if n == 0 && !f.wants_input() && f.poll_transmit().is_none() && f.poll_event().is_none() {
            break;
        }
        if pick % 13 == 0 {
            now += Duration::from_secs(120);
            f.handle_timeout(now);
        }
    }
    f.handle_close();
    assert!(f.is_closed() && f.envelope().is_none());
    check_reply_lines(&written);
});
