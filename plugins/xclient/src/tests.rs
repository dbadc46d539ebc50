//! The verb handler, called directly (the integration tests go through a loaded `.so`).

use hooks_api::toml;
use hooks_api::{Command, Ctx, Notes, SessionInfo, Verdict};

use super::*;

fn xclient(text: &str) -> Result<Xclient, String> {
    let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
    Xclient::new(&config)
}

fn wire(v: &Verdict) -> String {
    String::from_utf8(v.reply().expect("a reply").to_bytes()).unwrap()
}

struct Conn {
    session: SessionInfo,
    conn: Notes,
    txn: Notes,
}

impl Conn {
    fn new(peer: &str) -> Conn {
        Conn {
            session: SessionInfo::new(peer.parse().unwrap(), "10.0.0.25:25".parse().unwrap()),
            conn: Notes::new(),
            txn: Notes::new(),
        }
    }

    fn send(&mut self, x: &Xclient, args: &str) -> (Verdict, bool) {
        let mut ctx = Ctx::new(
            &mut self.session,
            &mut self.conn,
            &mut self.txn,
            Command::new("XCLIENT", args),
        );
        let v = x.handle(&mut ctx, args);
        (v, ctx.session_reset_requested())
    }
}

#[test]
fn authorized_peer_changes_the_session_and_is_regreeted() {
    let x = xclient("hostname = 'mx.example.com'").unwrap();
    let mut c = Conn::new("127.0.0.1:5000");
    let (v, reset) = c.send(&x, "ADDR=192.0.2.10 PORT=40001 HELO=c.example LOGIN=alice");
    assert_eq!(wire(&v), "220 mx.example.com ESMTP\r\n");
    assert!(reset);
    assert_eq!(c.session.peer, "192.0.2.10:40001".parse().unwrap());
    assert_eq!(c.session.helo.as_deref(), Some("c.example"));
    assert_eq!(c.session.auth.as_deref(), Some("alice"));
    assert_eq!(c.conn.get(REAL_PEER_NOTE), Some("127.0.0.1:5000"));
    // The proxy may speak again: authorization follows the real peer.
    let (v, _) = c.send(&x, "NAME=[TEMPUNAVAIL]");
    assert!(matches!(v, Verdict::Accept(Some(_))), "{v:?}");
    assert_eq!(c.conn.get("xclient.name"), Some("[TEMPUNAVAIL]"));
    assert_eq!(c.conn.get(REAL_PEER_NOTE), Some("127.0.0.1:5000"));
}

#[test]
fn refusals() {
    let x = xclient("authorized = ['192.0.2.0/24', '2001:db8::/32']").unwrap();
    let mut outsider = Conn::new("198.51.100.1:5000");
    let (v, reset) = outsider.send(&x, "ADDR=192.0.2.10");
    assert_eq!(wire(&v), "550 5.7.0 Error: insufficient authorization\r\n");
    assert!(!reset);
    assert_eq!(outsider.session.peer, "198.51.100.1:5000".parse().unwrap());
    let mut proxy = Conn::new("[2001:db8::1]:5000");
    let (v, _) = proxy.send(&x, "ADDR=192.0.2.10 BOGUS=1");
    assert_eq!(
        wire(&v),
        "501 5.5.4 Bad XCLIENT attribute name: BOGUS=1\r\n"
    );
    let (v, _) = proxy.send(&x, "");
    assert_eq!(wire(&v), "501 5.5.4 Syntax: XCLIENT attribute=value...\r\n");
    proxy.txn.set(MAIL_NOTE, "1");
    let (v, reset) = proxy.send(&x, "ADDR=192.0.2.10");
    assert_eq!(
        wire(&v),
        "503 5.5.1 Error: MAIL transaction in progress\r\n"
    );
    assert!(!reset);
    proxy.txn.clear();
    let (v, _) = proxy.send(&x, "ADDR=192.0.2.10");
    // Default host name: the local address in brackets.
    assert_eq!(wire(&v), "220 [10.0.0.25] ESMTP\r\n");
}

#[test]
fn configuration_errors_name_the_entry() {
    let x = xclient("").unwrap();
    assert!(x.is_authorized("127.0.0.1:1".parse().unwrap()));
    assert!(x.is_authorized("[::1]:1".parse().unwrap()));
    assert!(!x.is_authorized("192.0.2.1:1".parse().unwrap()));
    let err = xclient("authorized = ['127.0.0.0/8', '10.0.0.1/40']").unwrap_err();
    assert_eq!(
        err,
        "authorized[1]: \"10.0.0.1/40\": prefix length must be 0 to 32"
    );
    let err = xclient("hostname = 'a b'").unwrap_err();
    assert!(err.contains("hostname \"a b\""), "{err}");
    assert!(xclient("authorised = []")
        .unwrap_err()
        .contains("authorised"));
}
