//! RFC 3461 parameters and reply stages through the mio engine, against Postfix's
//! `smtp-sink` as the next hop: it offers DSN (or not, with `-N`), and its `-d` dump of
//! each transaction shows the MAIL and RCPT arguments it received; `-f` makes it refuse a
//! command, to see which reply decided a recipient.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use impulse_test_support::peers::Sink;
use smtp_client::driver::engine::{Delivery, Engine};
use smtp_client::dsn::{Dsn, Notify, Orcpt, RcptDsn, Ret};
use smtp_client::{Message, OutcomeKind, SessionConfig, Stage};

const SUCCESS: Notify = Notify {
    success: true,
    failure: false,
    delay: false,
};

fn message() -> Message {
    Message::new(
        "sender@client.test",
        ["b@y.test", "c@y.test"],
        "Subject: dsn\r\n\r\nhello\r\n",
    )
    .with_dsn(Dsn {
        ret: Some(Ret::Full),
        envid: Some("Q1 env=1".into()),
        recipients: vec![
            RcptDsn::notify(SUCCESS),
            RcptDsn {
                notify: None,
                orcpt: Some(Orcpt {
                    addr_type: "rfc822".into(),
                    addr: "first@z.test".into(),
                }),
            },
        ],
    })
}

/// Sends `message` through an engine to `sink` and returns its delivery.
fn deliver(sink: &Sink, message: Message) -> Delivery {
    let mut session = SessionConfig::new("client.test");
    session.policy.command_retries = 0;
    let engine = Engine::builder(sink.addr)
        .session(session)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let rx = engine.deliveries();
    engine.submit(message).unwrap();
    let d = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a delivery");
    engine.shutdown();
    d
}

/// A directory `smtp-sink` may write its dumps to (it runs as `nobody` under root).
fn dump_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// The `X-Mail-Args` and `X-Rcpt-Args` headers of the one transaction dumped in `dir`.
fn dumped_args(dir: &tempfile::TempDir) -> (String, Vec<String>) {
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one transaction: {files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let header = |name: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .collect()
    };
    let mail = header("X-Mail-Args:").pop().unwrap_or_default();
    (mail, header("X-Rcpt-Args:"))
}

#[test]
fn a_next_hop_that_offers_dsn_gets_the_parameters_with_orcpt_added() {
    let dir = dump_dir();
    let template = format!("{}/%M.", dir.path().display());
    let Some(sink) = Sink::start(&["-d", &template]) else {
        return;
    };
    let d = deliver(&sink, message());
    assert!(d.is_delivered(), "{:?}", d.outcomes);
    assert!(d.dsn_offered);
    let (mail, rcpts) = dumped_args(&dir);
    assert_eq!(mail, "<sender@client.test> RET=FULL ENVID=Q1+20env+3D1");
    assert_eq!(
        rcpts,
        [
            "<b@y.test> NOTIFY=SUCCESS ORCPT=rfc822;b@y.test",
            "<c@y.test> ORCPT=rfc822;first@z.test",
        ]
    );
}

#[test]
fn a_next_hop_without_dsn_gets_none_and_the_delivery_says_so() {
    let dir = dump_dir();
    let template = format!("{}/%M.", dir.path().display());
    let Some(sink) = Sink::start(&["-N", "-d", &template]) else {
        return;
    };
    let d = deliver(&sink, message());
    assert!(d.is_delivered(), "{:?}", d.outcomes);
    assert!(!d.dsn_offered, "a relayed notification is owed");
    let (mail, rcpts) = dumped_args(&dir);
    assert_eq!(mail, "<sender@client.test>");
    assert_eq!(rcpts, ["<b@y.test>", "<c@y.test>"]);
}

#[test]
fn a_refusal_at_rcpt_and_one_at_end_of_data_have_their_stages() {
    for (refused, stage) in [("RCPT", Stage::Rcpt), (".", Stage::Final)] {
        let Some(sink) = Sink::start(&["-f", refused]) else {
            return;
        };
        let d = deliver(&sink, message());
        for o in &d.outcomes {
            assert_eq!(o.kind, OutcomeKind::Bounced, "{refused}: {o:?}");
            assert_eq!(o.stage, Some(stage), "{refused}: {o:?}");
            assert_eq!(o.at_rcpt(), stage == Stage::Rcpt);
            assert!(!o.local);
        }
    }
}
