//! Builds `xclient` as a `.so` with cargo, loads it into a `Registry`, and drives it as the
//! server will: EHLO advertisement, the XCLIENT verb from authorized and unauthorized peers,
//! bad syntax, and XCLIENT inside a transaction (after the MAIL chain ran).

use std::path::PathBuf;

use hooks_api::smtp_proto::{classify, Params, Path as ReversePath};
use hooks_api::toml;
use hooks_api::{
    Command as Verb, Ctx, HookPoint, Mail, Notes, Order, Registry, SessionInfo, Verdict,
};

#[path = "../../../tests/support/load_so.rs"]
mod load_so;
use load_so::load_so;

#[path = "../../../tests/support/plugin_so.rs"]
mod build_so;

/// The plugin's `.so`, built once per test binary.
fn plugin_so() -> PathBuf {
    build_so::plugin_so("xclient")
}

fn loaded() -> Registry {
    let configs: toml::Table = toml::from_str(
        "[xclient]\nauthorized = ['127.0.0.0/8', '::1/128', '10.1.0.0/16']\nhostname = 'mx.example.com'",
    )
    .unwrap();
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    assert_eq!(
        load_so(&mut registry, plugin_so(), &configs).unwrap(),
        ["xclient"]
    );
    registry
}

/// One connection's state, as the server keeps it.
struct Conn {
    session: SessionInfo,
    conn: Notes,
    txn: Notes,
}

impl Conn {
    fn new(peer: &str) -> Conn {
        Conn {
            session: SessionInfo::new(peer.parse().unwrap(), "10.1.0.25:25".parse().unwrap()),
            conn: Notes::new(),
            txn: Notes::new(),
        }
    }

    /// Looks the verb up in the extension registry and runs its handler.
    fn xclient(&mut self, registry: &Registry, args: &str) -> (String, bool) {
        let ext = registry.extension("xclient").expect("XCLIENT registered");
        let mut ctx = Ctx::new(
            &mut self.session,
            &mut self.conn,
            &mut self.txn,
            Verb::new("XCLIENT", args),
        );
        let verdict = ext.call(&mut ctx, args);
        let reset = ctx.session_reset_requested();
        let reply = verdict
            .reply()
            .expect("XCLIENT always answers with a reply");
        (String::from_utf8(reply.to_bytes()).unwrap(), reset)
    }

    fn mail(&mut self, registry: &Registry) -> Verdict {
        let (sender, params) = (ReversePath::Null, Params::default());
        let event = Mail {
            sender: &sender,
            params: &params,
        };
        let mut ctx = Ctx::new(&mut self.session, &mut self.conn, &mut self.txn, event);
        registry.dispatch_mail(&mut ctx)
    }
}

#[test]
fn advertised_to_authorized_peers_only() {
    let registry = loaded();
    let ext = &registry.extension("XCLIENT").unwrap().extension;
    assert_eq!(
        ext.ehlo_line(),
        "XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT"
    );
    for (peer, shown) in [
        ("127.0.0.1:1000", true),
        ("[::1]:1000", true),
        ("10.1.200.3:1000", true),
        ("[::ffff:10.1.0.9]:1000", true),
        ("10.2.0.1:1000", false),
        ("[2001:db8::1]:1000", false),
    ] {
        assert_eq!(ext.advertised_to(&Conn::new(peer).session), shown, "{peer}");
    }
    assert_eq!(
        registry.chain(HookPoint::Mail),
        [("xclient".to_owned(), Order::Last)]
    );
}

#[test]
fn authorized_peer_rewrites_the_session() {
    let registry = loaded();
    let mut c = Conn::new("10.1.0.7:33000");
    let (reply, reset) = c.xclient(
        &registry,
        "NAME=client.example.org ADDR=IPV6:2001:db8::10 PORT=40001 PROTO=ESMTP HELO=client.example.org LOGIN=alice+40example.org",
    );
    assert_eq!(reply, "220 mx.example.com ESMTP\r\n");
    assert!(reset);
    assert_eq!(c.session.peer, "[2001:db8::10]:40001".parse().unwrap());
    assert_eq!(c.session.helo.as_deref(), Some("client.example.org"));
    assert!(c.session.ehlo);
    assert_eq!(c.session.auth.as_deref(), Some("alice@example.org"));
    assert_eq!(c.conn.get("xclient.name"), Some("client.example.org"));
}

#[test]
fn unauthorized_peer_is_refused() {
    let registry = loaded();
    let mut c = Conn::new("192.0.2.66:33000");
    let (reply, reset) = c.xclient(&registry, "ADDR=127.0.0.1");
    assert_eq!(reply, "550 5.7.0 Error: insufficient authorization\r\n");
    assert!(!reset);
    assert_eq!(c.session.peer, "192.0.2.66:33000".parse().unwrap());
}

#[test]
fn bad_syntax_is_501() {
    let registry = loaded();
    let mut c = Conn::new("127.0.0.1:33000");
    for (args, reply) in [
        ("", "501 5.5.4 Syntax: XCLIENT attribute=value...\r\n"),
        ("ADDR", "501 5.5.4 Bad XCLIENT attribute name: ADDR\r\n"),
        ("ADDR=1.2.3", "501 5.5.4 Bad ADDR syntax: 1.2.3\r\n"),
        ("PORT=99999", "501 5.5.4 Bad PORT syntax: 99999\r\n"),
        ("HELO=bad+ZZ", "501 5.5.4 Bad HELO syntax: bad+ZZ\r\n"),
    ] {
        let (got, reset) = c.xclient(&registry, args);
        assert_eq!(got, reply, "{args:?}");
        assert!(!reset);
    }
    assert_eq!(c.session.peer, "127.0.0.1:33000".parse().unwrap());
}

#[test]
fn inside_a_transaction_is_503_until_it_ends() {
    let registry = loaded();
    let mut c = Conn::new("127.0.0.1:33000");
    assert_eq!(c.mail(&registry), Verdict::Continue);
    let (reply, reset) = c.xclient(&registry, "ADDR=192.0.2.1");
    assert_eq!(reply, "503 5.5.1 Error: MAIL transaction in progress\r\n");
    assert!(!reset);
    // RSET: the host empties the transaction notes.
    c.txn.clear();
    let (reply, reset) = c.xclient(&registry, "ADDR=192.0.2.1");
    assert_eq!(reply, "220 mx.example.com ESMTP\r\n");
    assert!(reset);
}

#[test]
fn a_bad_network_fails_init_naming_it() {
    let configs: toml::Table =
        toml::from_str("[xclient]\nauthorized = ['10.0.0.0/8', 'lan']").unwrap();
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    let err = load_so(&mut registry, plugin_so(), &configs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin xclient failed to initialise: [plugins.xclient] authorized[1]: \"lan\" is not an IP address or network"
    );
}
