//! `impulse spool ...` against a spool written through the library.

use std::path::Path;
use std::process::Output;

use smtp_server::spool::{Envelope, QueueId, Recipient, Spool};

fn impulse(spool: &Path, args: &[&str]) -> Output {
    impulse_test_support::impulse!().spool_tool("spool", spool, args)
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Every byte value, bare CR and LF, a lone dot line, NUL: cat must give them back as stored.
fn message() -> Vec<u8> {
    let mut m = b"Subject: test\r\n\r\n.\r\nbare\nlf and bare\rcr\0nul\r\n".to_vec();
    m.extend((0..=255u8).cycle().take(70_000));
    m
}

fn setup(dir: &Path) -> (QueueId, QueueId) {
    let spool = Spool::open(dir).unwrap();
    let env = Envelope {
        sender: "alice@example.org".into(),
        mail_params: "BODY=8BITMIME".into(),
        recipients: vec![
            Recipient::new("bob@example.com"),
            Recipient {
                address: "carol@example.com".into(),
                params: "NOTIFY=NEVER".into(),
            },
        ],
        peer: "192.0.2.1:40000".into(),
        helo: "evil\r\nX-Injected: 1".into(),
        received: 1_700_000_000,
        tls: Some("TLSv1.3".into()),
        auth: None,
        notes: vec!["first".into()],
    };
    let mut w = spool.begin(&env).unwrap();
    w.write_all(&message()).unwrap();
    let a = spool.commit_blocking(w).unwrap();
    let mut w = spool
        .begin(&Envelope {
            recipients: vec![Recipient::new("postmaster")],
            ..Envelope::default()
        })
        .unwrap();
    w.write_all(b"second\r\n").unwrap();
    let b = spool.commit_blocking(w).unwrap();
    (a, b)
}

#[test]
fn list_show_cat_rm() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = setup(dir.path());

    let list: serde_json::Value =
        serde_json::from_str(&stdout(&impulse(dir.path(), &["list", "--json"]))).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], a.as_str());
    assert_eq!(list[0]["sender"], "alice@example.org");
    assert_eq!(
        list[0]["recipients"],
        serde_json::json!(["bob@example.com", "carol@example.com"])
    );
    assert_eq!(list[0]["size"], message().len() as u64);
    assert_eq!(list[0]["received"], 1_700_000_000u64);
    assert_eq!(list[1]["id"], b.as_str());
    assert_eq!(list[1]["sender"], "");

    let table = stdout(&impulse(dir.path(), &["list"]));
    assert_eq!(table.lines().count(), 2);
    assert!(table.contains("2023-11-14T22:13:20Z"));

    let show = stdout(&impulse(dir.path(), &["show", a.as_str()]));
    assert!(show.contains("sender:      <alice@example.org>"));
    assert!(show.contains("recipient:   <carol@example.com> NOTIFY=NEVER"));
    // The hostile HELO stays on one escaped line.
    assert!(show.contains("helo:        evil\\r\\nX-Injected: 1"));
    assert!(!show.contains("\nX-Injected"));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&impulse(
        dir.path(),
        &["show", "--json", a.as_str()],
    )))
    .unwrap();
    assert_eq!(shown["helo"], "evil\r\nX-Injected: 1");
    assert_eq!(shown["tls"], "TLSv1.3");
    assert_eq!(shown["auth"], serde_json::Value::Null);

    let cat = impulse(dir.path(), &["cat", a.as_str()]);
    assert!(cat.status.success());
    assert_eq!(cat.stdout, message());

    stdout(&impulse(dir.path(), &["rm", a.as_str()]));
    let again = impulse(dir.path(), &["rm", a.as_str()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no message"));
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&impulse(dir.path(), &["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn bad_ids_and_missing_spools_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    // A file outside the queue that a traversal would reach.
    std::fs::write(dir.path().join("secret"), b"secret").unwrap();
    for cmd in ["show", "cat", "rm"] {
        for bad in ["../secret", "../../etc/passwd", "ZZZ", ""] {
            let o = impulse(dir.path(), &[cmd, bad]);
            assert!(!o.status.success(), "{cmd} {bad:?} succeeded");
            assert!(o.stdout.is_empty());
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("invalid queue id"),
                "{cmd} {bad:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    assert!(dir.path().join("secret").exists());
    let missing = impulse(&dir.path().join("nope"), &["list"]);
    assert!(!missing.status.success());
    assert!(
        !dir.path().join("nope").exists(),
        "inspection created a spool"
    );
}
