//! `impulse queue ...`: the relay's queue seen and commanded by an operator, with no server
//! on the spool (the command takes the spool's lock) and through a running server's control
//! socket; one server per spool.

use std::path::Path;
use std::process::Output;

use impulse_test_support::LineClient;
use serde_json::Value;
use smtp_server::spool::{Envelope, QueueId, Recipient, Spool};

fn queue(spool: &Path, args: &[&str]) -> Output {
    impulse_test_support::impulse!().spool_tool("queue", spool, args)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn commit(spool: &Spool, to: &[&str], received: u64) -> QueueId {
    let env = Envelope {
        sender: "alice@example.org".into(),
        mail_params: String::new(),
        recipients: to.iter().map(|r| Recipient::new(*r)).collect(),
        peer: "192.0.2.1:40000".into(),
        helo: "client.example".into(),
        received,
        tls: None,
        auth: None,
        notes: vec![],
    };
    let mut w = spool.begin(&env).unwrap();
    w.write_all(b"Subject: q\r\n\r\nbody\r\n").unwrap();
    spool.commit_blocking(w).unwrap()
}

fn list(dir: &Path) -> Vec<Value> {
    serde_json::from_str(&ok(&queue(dir, &["list", "--json"]))).unwrap()
}

#[test]
fn list_show_and_summary_give_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _b) = {
        let spool = Spool::open(dir.path()).unwrap();
        let a = commit(
            &spool,
            &["bob@example.com", "carol@example.net"],
            1_700_000_000,
        );
        let b = commit(&spool, &["dave@example.com"], 1_700_000_100);
        (a, b)
    };
    let all = list(dir.path());
    assert_eq!(all.len(), 2);
    let first = &all[0];
    assert_eq!(first["id"], a.as_str());
    assert_eq!(first["sender"], "alice@example.org");
    assert_eq!(first["arrival"], "2023-11-14T22:13:20Z");
    assert_eq!(first["size"], 20);
    assert_eq!(first["held"], false);
    let r = &first["recipients"][0];
    assert_eq!(r["address"], "bob@example.com");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["attempts"], 0);
    assert_eq!(r["next_attempt"], "2023-11-14T22:13:20Z");
    assert_eq!(r["last_reply"], "");
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    let shown: Value =
        serde_json::from_str(&ok(&queue(dir.path(), &["show", a.as_str()]))).unwrap();
    assert_eq!(&shown, first);
    let text = ok(&queue(dir.path(), &["list"]));
    assert!(
        text.contains(a.as_str()) && text.contains("-- 2 messages"),
        "{text}"
    );
    let summary = ok(&queue(dir.path(), &["summary"]));
    let total = summary
        .lines()
        .find(|l| l.trim_start().starts_with("TOTAL"))
        .unwrap();
    assert_eq!(total.split_whitespace().nth(1), Some("3"), "{summary}");
    let com = summary.lines().find(|l| l.contains("example.com")).unwrap();
    assert_eq!(com.split_whitespace().nth(1), Some("2"), "{summary}");
    assert!(
        summary.lines().next().unwrap().contains("1280+"),
        "{summary}"
    );
    // Bad ids are refused with a clear error.
    let bad = queue(dir.path(), &["show", "../etc"]);
    assert!(!bad.status.success());
}

#[test]
fn commands_without_a_server_take_the_lock_and_apply_directly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = {
        let spool = Spool::open(dir.path()).unwrap();
        (
            commit(&spool, &["bob@example.com"], 1_700_000_000),
            commit(&spool, &["carol@example.com"], 1_700_000_000),
            commit(&spool, &["dave@example.com"], 1_700_000_000),
        )
    };
    assert_eq!(
        ok(&queue(dir.path(), &["hold", a.as_str()])).trim(),
        "hold: 1 message"
    );
    let held: Vec<bool> = list(dir.path())
        .iter()
        .map(|m| m["held"].as_bool().unwrap())
        .collect();
    assert_eq!(held, vec![true, false, false]);
    assert_eq!(
        ok(&queue(dir.path(), &["release", a.as_str()])).trim(),
        "release: 1 message"
    );
    assert_eq!(
        ok(&queue(dir.path(), &["delete", b.as_str()])).trim(),
        "delete: 1 message"
    );
    assert_eq!(
        ok(&queue(dir.path(), &["bounce", c.as_str()])).trim(),
        "bounce: 1 message"
    );
    let left = list(dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0]["id"], a.as_str());
    assert_eq!(left[1]["sender"], "", "the notification of the bounce");
    assert_eq!(left[1]["recipients"][0]["address"], "alice@example.org");
    assert_eq!(
        ok(&queue(dir.path(), &["flush"])).trim(),
        "flush: 2 messages"
    );
    let missing = queue(dir.path(), &["hold"]);
    assert!(!missing.status.success(), "hold needs an id");
}

#[test]
fn a_running_server_owns_the_spool_and_takes_commands_through_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let imp = impulse_test_support::impulse!();
    let mut server = imp.serve(|c| {
        c.args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(&spool_dir);
    });
    server.drain_log();
    let mut c = LineClient::connect(server.addr.parse().unwrap());
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO client.test");
    assert!(c.cmd("MAIL FROM:<alice@example.org>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<bob@example.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("Subject: live\r\n\r\nhi\r\n.").starts_with("250"));
    let id = list(&spool_dir)[0]["id"].as_str().unwrap().to_string();
    // A second server on the same spool refuses to start.
    let second = imp
        .command()
        .args(["serve", "--listen", "127.0.0.1:0", "--spool"])
        .arg(&spool_dir)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another process"), "{err}");
    // The queue command goes through the server (it holds the lock).
    assert_eq!(
        ok(&queue(&spool_dir, &["hold", &id])).trim(),
        "hold: 1 message"
    );
    assert_eq!(list(&spool_dir)[0]["held"], true);
    // `impulse spool rm` takes the same path.
    let rm = impulse_test_support::impulse!()
        .command()
        .args(["spool", "--spool"])
        .arg(&spool_dir)
        .args(["rm", &id])
        .output()
        .unwrap();
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert!(list(&spool_dir).is_empty());
    server.terminate();
    assert!(server.wait().success());
}
