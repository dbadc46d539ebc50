//! Arbitrary input split arbitrarily, decisions answered arbitrarily: no panic, bounded
//! buffers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use smtp_proto::reply::Reply;

use super::util::*;
use crate::factory::{
    AuthConfig, Decision, Decisions, Event, EventKind, Extensions, Factory, FactoryConfig, TlsInfo,
};

const FRAGMENTS: &[&[u8]] = &[
    b"EHLO c.example\r\n",
    b"HELO c.example\r\n",
    b"MAIL FROM:<a@b.example>\r\n",
    b"MAIL FROM:<a@b.example> SIZE=10 XTRACE=1\r\n",
    b"RCPT TO:<c@d.example>\r\n",
    b"DATA\r\n",
    b"BDAT 5 LAST\r\n",
    b"BDAT 3\r\n",
    b"BDAT 0 LAST\r\n",
    b"BDAT 1x\r\n",
    b"Received: x\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n.\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN dXNlcg==\r\n",
    b"AHVzZXIAcGFzcw==\r\n",
    b"*\r\n",
    b"XCLIENT ADDR=1\r\n",
    b"QUIT\r\n",
    b"\r",
    b"\n",
    b"\0",
];

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            3 => proptest::sample::select(FRAGMENTS).prop_map(<[u8]>::to_vec),
            1 => proptest::collection::vec(any::<u8>(), 0..64),
            1 => (1usize..5000).prop_map(|n| vec![b'x'; n]),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn config_for(seed: u8) -> FactoryConfig {
    let mut cfg = FactoryConfig::new("mx.example");
    cfg.max_queued_replies = 1 + usize::from(seed % 8);
    cfg.max_transmit = 512;
    cfg.body_chunk = 64 + usize::from(seed) * 7;
    cfg.max_message_size = 1000;
    cfg.max_hops = 2;
    cfg.hard_error_limit = 5 + u32::from(seed % 30);
    cfg.forbid_pipelining_violations = seed % 3 != 0;
    cfg.tls_available = seed % 2 == 0;
    cfg.auth = Some(AuthConfig {
        require_tls: seed % 4 == 0,
        ..AuthConfig::default()
    });
    cfg.leniency.bare_lf_line_ending = seed % 5 != 0;
    cfg.bare_line_endings = match seed % 3 {
        0 => smtp_proto::data::BareLineEndings::Normalize,
        1 => smtp_proto::data::BareLineEndings::Reject,
        _ => smtp_proto::data::BareLineEndings::Keep,
    };
    if seed % 4 == 1 {
        cfg.soft_error_limit = 2;
        cfg.error_sleep = Duration::from_secs(1);
    }
    if seed == 7 {
        cfg.greet_pause = Duration::from_secs(1);
    }
    if seed % 2 == 1 {
        cfg.decisions = Decisions::ALL;
    }
    let mut ext = Extensions::new();
    ext.register("XCLIENT", &["ADDR"], Some("XCLIENT"), &["XTRACE"], &[])
        .unwrap();
    cfg.extensions = ext;
    cfg
}

fn decision(pick: u8, event: &Event) -> Decision {
    let reply = |code| Reply::new(code, None, "x");
    match (pick % 7, event) {
        (0, _) => Decision::Continue,
        (1, _) => Decision::Accept,
        (2, _) => Decision::Reject(reply(550)),
        (3, _) => Decision::TempFail(reply(451)),
        (4, _) => Decision::Disconnect(reply(421)),
        (5, _) => Decision::Queued("ID\r\nX".into()),
        _ => Decision::Reply(reply(250)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_input_never_panics_and_stays_bounded(
        data in input(),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        picks in proptest::collection::vec(any::<u8>(), 1..16),
        seed in any::<u8>(),
    ) {
        let cfg = config_for(seed);
        let (max_transmit, body_chunk, auth_line) =
            (cfg.max_transmit, cfg.body_chunk, cfg.limits.auth_line);
        let mut now = Instant::now();
        let mut f = Factory::new(Arc::new(cfg), PEER.parse().unwrap(), LOCAL.parse().unwrap(), now);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.push(data.len());
        points.sort_unstable();
        let mut held: Vec<u8> = Vec::new();
        let mut next = 0;
        let mut pick = 0usize;
        let mut steps = 0;
        // A message is open at the driver: MessageStart seen, no end yet.
        let mut open = false;
        loop {
            steps += 1;
            prop_assert!(steps < 100_000, "no progress");
            let reading = pick % 3 != 0 || f.is_closed();
            if let Some(bytes) = f.poll_transmit() {
                let len = bytes.len();
                prop_assert!(len <= max_transmit + 2048, "transmit {len}");
                if reading {
                    f.advance_transmit(len.min(1 + pick * 37 % 600));
                }
            }
            while let Some(chunk) = f.poll_body() {
                prop_assert!(chunk.len() <= body_chunk.max(64));
                f.consume_body();
            }
            while let Some(event) = f.poll_event() {
                match event.kind() {
                    EventKind::MessageStart => {
                        prop_assert!(!open, "a message started inside another");
                        open = true;
                    }
                    EventKind::MessageComplete | EventKind::MessageAborted => {
                        prop_assert!(open, "a message ended that never started");
                        open = false;
                    }
                    _ => {}
                }
                if event.needs_decision() {
                    let d = decision(picks[pick % picks.len()], &event);
                    pick += 1;
                    // A decision polled after its deadline passed finds nothing to answer.
                    let timed_out = f
                        .events
                        .iter()
                        .any(|e| matches!(e, Event::DecisionTimeout { .. }));
                    match f.handle_decision(d, now) {
                        Ok(()) => {}
                        Err(_) if timed_out => {}
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                if matches!(event, Event::StartTls) {
                    let _ = f.handle_tls_established(TlsInfo::default(), now);
                }
            }
            prop_assert!(f.line.len() <= auth_line);
            prop_assert!(f.events.len() <= 70);
            if held.is_empty() {
                if next < points.len() {
                    let start = if next == 0 { 0 } else { points[next - 1] };
                    held.extend_from_slice(&data[start..points[next]]);
                    next += 1;
                } else if f.poll_transmit().is_none() || !reading {
                    break;
                }
            }
            let n = f.handle_input(&held, now);
            prop_assert!(n <= held.len());
            held.drain(..n);
            pick += 1;
            if pick % 11 == 0 {
                now += Duration::from_secs(100);
                f.handle_timeout(now);
            }
            if n == 0 && f.poll_transmit().is_none() && f.poll_event().is_none() && !f.wants_input() && f.poll_body().is_none() {
                // Stuck only if a handshake is pending: finish it.
                if f.handle_tls_established(TlsInfo::default(), now).is_err() {
                    break;
                }
            }
        }
        f.handle_close();
        prop_assert!(f.is_closed());
        prop_assert!(f.envelope().is_none());
    }
}
