//! The state against a hand-made client context: what it sends for given capabilities,
//! arguments and configuration, and where each reply takes the machine.

use std::net::SocketAddr;

use hooks_api::smtp_proto::{parse_capabilities, Capabilities};
use hooks_api::ClientArgs;

use super::*;

struct Cx {
    caps: Capabilities,
    session: ClientArgs,
    message: ClientArgs,
}

impl Cx {
    fn new(ehlo: &str) -> Cx {
        let (reply, _) = Reply::parse(ehlo.as_bytes()).unwrap().unwrap();
        Cx {
            caps: parse_capabilities(&reply),
            session: ClientArgs::new(),
            message: ClientArgs::new(),
        }
    }
}

impl ClientContext for Cx {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn session_args(&mut self) -> &mut ClientArgs {
        &mut self.session
    }
    fn message_args(&mut self) -> &mut ClientArgs {
        &mut self.message
    }
    fn peer(&self) -> Option<SocketAddr> {
        None
    }
    fn peer_name(&self) -> Option<&str> {
        None
    }
    fn tls_active(&self) -> bool {
        false
    }
}

const WITH_XCLIENT: &str =
    "250-mx.test\r\n250-PIPELINING\r\n250 XCLIENT NAME ADDR PORT PROTO HELO LOGIN\r\n";
const WITHOUT: &str = "250-mx.test\r\n250 PIPELINING\r\n";

fn state(config: Config) -> XclientState {
    XclientState::new(Arc::new(config))
}

fn sent(action: StateAction) -> String {
    match action {
        StateAction::Send(bytes) => String::from_utf8(bytes).unwrap(),
        other => panic!("expected a command, got {other:?}"),
    }
}

fn proxied() -> Config {
    Config {
        addr: Some("192.0.2.10".into()),
        name: Some("client.example".into()),
        ..Config::default()
    }
}

#[test]
fn sends_the_configured_attributes_in_order_then_greets_again() {
    let mut s = state(proxied());
    let mut cx = Cx::new(WITH_XCLIENT);
    assert_eq!(
        sent(s.enter(&mut cx)),
        "XCLIENT NAME=client.example ADDR=192.0.2.10\r\n"
    );
    let ok = Reply::new(220, None, "mx.test ESMTP");
    assert_eq!(s.on_reply(&mut cx, &ok), StateAction::Goto("ehlo".into()));
    // Its second turn, after the new EHLO.
    assert_eq!(s.enter(&mut cx), StateAction::Skip);
}

#[test]
fn session_arguments_override_and_are_removed() {
    let mut s = state(proxied());
    let mut cx = Cx::new(WITH_XCLIENT);
    cx.session.add("XCLIENT-ADDR", "198.51.100.4").unwrap();
    cx.session.add("xclient-helo", "h+x").unwrap();
    cx.session.add("XPRIO", "5").unwrap();
    assert_eq!(
        sent(s.enter(&mut cx)),
        "XCLIENT NAME=client.example ADDR=198.51.100.4 HELO=h+2Bx\r\n"
    );
    assert_eq!(cx.session.to_params_string(), " XPRIO=5");
}

#[test]
fn skips_without_xclient_or_attributes_and_drops_unadvertised_ones() {
    let mut cx = Cx::new(WITHOUT);
    cx.session.add("XCLIENT-ADDR", "198.51.100.4").unwrap();
    assert_eq!(state(proxied()).enter(&mut cx), StateAction::Skip);
    assert!(cx.session.is_empty(), "the argument is consumed anyway");

    let mut cx = Cx::new(WITH_XCLIENT);
    assert_eq!(state(Config::default()).enter(&mut cx), StateAction::Skip);

    let mut s = state(Config {
        destport: Some("25".into()),
        ..proxied()
    });
    assert_eq!(
        sent(s.enter(&mut cx)),
        "XCLIENT NAME=client.example ADDR=192.0.2.10\r\n",
        "DESTPORT is not advertised"
    );
}

#[test]
fn refusals_go_on_unless_required() {
    let mut cx = Cx::new(WITH_XCLIENT);
    let refused = Reply::new(550, Some(EnhancedStatus::new(5, 7, 0)), "no");
    let mut s = state(proxied());
    s.enter(&mut cx);
    assert_eq!(s.on_reply(&mut cx, &refused), StateAction::Next);

    let required = Config {
        required: true,
        ..proxied()
    };
    let mut s = state(required.clone());
    s.enter(&mut cx);
    assert_eq!(
        s.on_reply(&mut cx, &refused),
        StateAction::Fail {
            reply: refused.clone()
        }
    );
    let mut cx = Cx::new(WITHOUT);
    match state(required).enter(&mut cx) {
        StateAction::Fail { reply } => assert_eq!(reply.code(), 550),
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_is_checked() {
    let table: hooks_api::toml::Table =
        hooks_api::toml::from_str("addr = '192.0.2.1'\nname = ''").unwrap();
    let config: Config = PluginConfig::new(NAME, table).deserialize().unwrap();
    assert_eq!(
        config.check().unwrap_err(),
        "[plugins.client-xclient] name: \"\" is empty, longer than 255 bytes or has control characters"
    );
    let table: hooks_api::toml::Table = hooks_api::toml::from_str("adress = 'x'").unwrap();
    let err = PluginConfig::new(NAME, table)
        .deserialize::<Config>()
        .unwrap_err();
    assert!(err.contains("adress"), "{err}");
}
