//! Custom states in the chain: where they run, what they can do, registry errors.

use std::sync::{Arc, Mutex};

use hooks_api::{Anchor, ClientContext, ClientState, Registrar, Registry, StateAction};
use smtp_proto::{Keyword, Reply};

use super::{kinds, msg, Fake, EHLO_PIPE, EHLO_PLAIN};
use crate::message::OutcomeKind;
use crate::registry::{Builtin, RegistryError, StateRegistry};
use crate::session::SessionConfig;

type Log = Arc<Mutex<Vec<String>>>;

/// Sends `XPING` when PIPELINING is offered (else skips), records the reply code, adds a
/// session argument, then does `then`.
struct Ping {
    log: Log,
    then: StateAction,
}

impl ClientState for Ping {
    fn name(&self) -> &str {
        "xping"
    }
    fn enter(&mut self, cx: &mut dyn ClientContext) -> StateAction {
        if !cx.capabilities().has(Keyword::Pipelining) {
            return StateAction::Skip;
        }
        StateAction::command("XPING hello")
    }
    fn on_reply(&mut self, cx: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        self.log
            .lock()
            .unwrap()
            .push(format!("reply {}", reply.code()));
        let _ = cx.session_args().add("XPINGED", "yes");
        self.then.clone()
    }
}

fn chain_with(anchor: Anchor, then: StateAction) -> (Fake, Log) {
    let log = Log::default();
    let mut reg = StateRegistry::new();
    let l = log.clone();
    reg.register_state("xping", anchor, move || {
        Box::new(Ping {
            log: l.clone(),
            then: then.clone(),
        })
    })
    .unwrap();
    (
        Fake::with(reg.build(), SessionConfig::new("client.test")),
        log,
    )
}

#[test]
fn a_state_after_ehlo_sends_its_command_and_sees_its_reply() {
    let (mut f, log) = chain_with(Anchor::After("ehlo".into()), StateAction::Next);
    f.server("220 mx\r\n");
    f.sent();
    f.server(EHLO_PIPE);
    assert_eq!(f.sent(), "XPING hello\r\n");
    assert!(!f.s.is_idle());
    f.server("250 pong\r\n");
    assert_eq!(*log.lock().unwrap(), ["reply 250"]);
    assert!(f.s.is_idle());
    // The argument it added goes on MAIL.
    f.queue(msg(&["b@y.test"]));
    assert!(f
        .sent()
        .starts_with("MAIL FROM:<a@x.test> SIZE=21 XPINGED=yes\r\n"));
}

#[test]
fn skip_goto_and_fail() {
    // Skip: PIPELINING absent, nothing sent.
    let (mut f, log) = chain_with(Anchor::After("ehlo".into()), StateAction::Next);
    f.setup(EHLO_PLAIN);
    assert!(log.lock().unwrap().is_empty());

    // Goto: straight to quit (closing the session).
    let (mut f, _) = chain_with(
        Anchor::After("ehlo".into()),
        StateAction::Goto("quit".into()),
    );
    f.close();
    f.server("220 mx\r\n");
    f.sent();
    f.server(EHLO_PIPE);
    f.server("250 pong\r\n");
    assert_eq!(f.sent(), "XPING hello\r\nQUIT\r\n");

    // Fail before MAIL fails the session, classified.
    let fail = StateAction::Fail {
        reply: Reply::new(550, None, "5.7.1 relaying denied"),
    };
    let (mut f, _) = chain_with(Anchor::After("ehlo".into()), fail.clone());
    f.queue(msg(&["b@y.test"]));
    f.server("220 mx\r\n");
    f.server(EHLO_PIPE);
    f.server("250 pong\r\n");
    assert!(f.sent().ends_with("XPING hello\r\nQUIT\r\n"));
    let done = f.done();
    // A plugin state's failure is local: never read as a block by the receiver.
    assert!(done[0][0].local);
    assert_eq!(done[0][0].class.id, 25, "Admin Failure");

    // Fail inside a transaction fails only the message; RSET follows.
    let (mut f, _) = chain_with(Anchor::After("mail".into()), fail);
    f.setup(EHLO_PIPE);
    f.queue(msg(&["b@y.test"]));
    assert_eq!(
        f.sent(),
        "MAIL FROM:<a@x.test> SIZE=21\r\n",
        "a custom state in the envelope turns pipelining off"
    );
    f.server("250 ok\r\n");
    assert_eq!(f.sent(), "XPING hello\r\n");
    f.server("250 pong\r\n");
    assert_eq!(f.sent(), "RSET\r\n");
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Bounced]);
    f.server("250 ok\r\n");
    assert!(f.s.is_idle());
    // An unknown Goto target fails the message, not the program.
    let (mut f, _) = chain_with(
        Anchor::After("rcpt".into()),
        StateAction::Goto("nowhere".into()),
    );
    f.setup(EHLO_PIPE);
    f.queue(msg(&["b@y.test"]));
    for reply in ["250 ok\r\n", "250 ok\r\n", "250 pong\r\n"] {
        f.server(reply);
    }
    assert!(f.sent().ends_with("RSET\r\n"));
    assert_eq!(kinds(&f.done()[0]), [OutcomeKind::Deferred]);
}

#[test]
fn front_states_run_before_the_banner() {
    let (mut f, log) = chain_with(Anchor::Front, StateAction::Next);
    // PIPELINING is not known yet: the state skips, and the banner comes next.
    assert_eq!(f.sent(), "");
    f.setup(EHLO_PLAIN);
    assert!(log.lock().unwrap().is_empty());
    let m = f.s.machine().clone();
    assert_eq!(m.get_state(m.state_machine()).unwrap().name(), "xping");
}

#[test]
fn registry_errors_and_chain_order() {
    let mut reg = StateRegistry::new();
    let factory = || -> Box<dyn ClientState> {
        Box::new(Ping {
            log: Log::default(),
            then: StateAction::Next,
        })
    };
    let a = reg
        .register_state("a", Anchor::After("ehlo".into()), factory)
        .unwrap();
    let b = reg
        .register_state("b", Anchor::After("ehlo".into()), factory)
        .unwrap();
    assert_eq!(
        reg.register_state("c", Anchor::After("nope".into()), factory),
        Err(RegistryError::UnknownAnchor {
            state: "c".into(),
            anchor: "nope".into()
        })
    );
    assert_eq!(
        reg.register_state("a", Anchor::Front, factory),
        Err(RegistryError::DuplicateName("a".into()))
    );
    assert_eq!(
        reg.register_state("mail", Anchor::Front, factory),
        Err(RegistryError::DuplicateName("mail".into()))
    );
    assert!(matches!(
        reg.register_state("has space", Anchor::Front, factory),
        Err(RegistryError::InvalidName(_))
    ));
    let names: Vec<&str> = reg.chain().iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "connect", "banner", "ehlo", "b", "a", "starttls", "auth", "mail", "rcpt", "data",
            "message", "rset", "quit"
        ],
        "linked-list insertion, as in Momentum"
    );
    assert_eq!(
        reg.get_state(a).unwrap().next(),
        Some(Builtin::StartTls.id())
    );
    assert_eq!(reg.get_state(b).unwrap().next(), Some(a));
    assert_eq!(reg.state_machine(), Builtin::Connect.id());
    let machine = reg.build();
    assert!(!machine.customs_in_envelope());
}

#[test]
fn next_state_moves_an_idle_session() {
    let mut f = Fake::ready(EHLO_PLAIN);
    let machine = f.s.machine().clone();
    let ehlo = machine.find("ehlo").unwrap();
    f.queue(msg(&["b@y.test"]));
    assert!(
        machine.next_state(&mut f.s, Some(ehlo)).is_err(),
        "a reply is due"
    );
    for reply in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 ok\r\n"] {
        f.server(reply);
    }
    f.sent();
    assert!(f.s.is_idle());
    // Between messages, send EHLO again (Momentum's smtp_next_state).
    machine.next_state(&mut f.s, Some(ehlo)).unwrap();
    f.pump();
    assert_eq!(f.sent(), "EHLO client.test\r\n");
    f.server(EHLO_PIPE);
    assert!(f.s.is_idle());
    assert!(f.s.capabilities().has(Keyword::Pipelining));
}

fn plugin_init(r: &mut Registrar, _: &hooks_api::PluginConfig) -> Result<(), String> {
    // Registered before its anchor exists: the registry retries it.
    r.client_state("second", Anchor::After("first".into()), || {
        Box::new(Ping {
            log: Log::default(),
            then: StateAction::Next,
        })
    });
    r.client_state("first", Anchor::After("auth".into()), || {
        Box::new(Ping {
            log: Log::default(),
            then: StateAction::Next,
        })
    });
    Ok(())
}

static PLUGIN: hooks_api::PluginDecl = hooks_api::PluginDecl {
    name: "client-state-test",
    version: "1",
    init: plugin_init,
    shutdown: None,
};

#[test]
fn plugin_registrations_build_the_chain() {
    let mut registry = Registry::new();
    registry
        .add(&PLUGIN, &hooks_api::toml::Table::new())
        .unwrap();
    let reg = StateRegistry::from_hooks(&registry).unwrap();
    let names: Vec<&str> = reg.chain().iter().map(|e| e.name()).collect();
    assert_eq!(&names[4..8], ["auth", "first", "second", "mail"]);
    let machine = reg.build();
    let mut f = Fake::with(machine, SessionConfig::new("client.test"));
    f.server("220 mx\r\n");
    f.server(EHLO_PIPE);
    assert_eq!(f.sent(), "EHLO client.test\r\n");
    // The states between auth and mail run before each transaction.
    f.queue(msg(&["b@y.test"]));
    assert_eq!(f.sent(), "XPING hello\r\n");
    f.server("250 a\r\n");
    assert_eq!(f.sent(), "XPING hello\r\n");
    f.server("250 b\r\n");
    assert!(f.sent().starts_with("MAIL FROM:"));
}

struct Boom;

impl ClientState for Boom {
    fn name(&self) -> &str {
        "boom"
    }
    fn enter(&mut self, _: &mut dyn ClientContext) -> StateAction {
        panic!("boom")
    }
    fn on_reply(&mut self, _: &mut dyn ClientContext, _: &Reply) -> StateAction {
        StateAction::Next
    }
}

#[test]
fn a_panicking_state_fails_the_message_not_the_process() {
    let mut reg = StateRegistry::new();
    reg.register_state("boom", Anchor::After("rcpt".into()), || Box::new(Boom))
        .unwrap();
    let mut f = Fake::with(reg.build(), SessionConfig::new("client.test"));
    f.setup(EHLO_PLAIN);
    f.queue(msg(&["b@y.test"]));
    f.server("250 ok\r\n");
    f.server("250 ok\r\n");
    assert!(f.sent().ends_with("RSET\r\n"));
    let done = f.done();
    assert_eq!(kinds(&done[0]), [OutcomeKind::Deferred]);
    assert_eq!(done[0][0].reply.code(), 451);
}
