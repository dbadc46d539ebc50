//! Relay control at RCPT (the client as the session knows it: after a session update, after
//! AUTH) and the DSN parameters of RFC 3461 kept in the envelope.

use std::sync::Arc;

use smtp_relay::route::RelayPolicy;

use super::util::*;
use crate::factory::{Decision, Event, EventKind, FactoryConfig, RelayControl, SessionUpdate};

const DENIED: &str = "554 5.7.1";

/// The harness's peer (192.0.2.7) is outside `networks`; `example.org` is ours.
fn policy(networks: &[&str]) -> RelayPolicy {
    RelayPolicy::new(&["example.org", ".example.net"], Some(networks), None).unwrap()
}

fn relay_config(networks: &[&str]) -> FactoryConfig {
    let mut c = config();
    c.relay = Some(Arc::new(RelayControl::new(policy(networks))));
    c
}

fn rcpt(h: &mut Harness, to: &str) -> String {
    h.exchange(format!("RCPT TO:{to}\r\n").as_bytes())
}

#[test]
fn an_outside_client_may_send_to_our_domains_only() {
    let mut h = Harness::ready(relay_config(&["127.0.0.0/8"]));
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example>\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    for to in [
        "<u@example.org>",
        "<u@EXAMPLE.Org>",
        "<u@mx.example.net>",
        "<u@xn--bcher-kva.example.net>",
        "<Postmaster>",
    ] {
        assert_eq!(rcpt(&mut h, to), "250 2.1.5 Ok\r\n", "{to}");
    }
    for (to, shown) in [
        ("<u@example.com>", "u@example.com"),
        ("<u@example.net>", "u@example.net"),
        ("<u@evilexample.org>", "u@evilexample.org"),
        ("<u@example.org.evil.test>", "u@example.org.evil.test"),
        ("<u@[192.0.2.1]>", "u@[192.0.2.1]"),
        ("<u@[127.0.0.1]>", "u@[127.0.0.1]"),
        ("<u%example.com@example.org>", "u%example.com@example.org"),
        ("<example.com!u@example.org>", "example.com!u@example.org"),
        ("<@example.org:u@example.com>", "u@example.com"),
        (
            "<@example.org,@mx.example.net:u@example.org>",
            "u@example.org",
        ),
    ] {
        assert_eq!(
            rcpt(&mut h, to),
            format!("{DENIED} <{shown}>: Relay access denied\r\n"),
            "{to}"
        );
    }
    // Only refused recipients: DATA has nothing to deliver.
    let mut h = Harness::ready(relay_config(&["127.0.0.0/8"]));
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert!(rcpt(&mut h, "<u@example.com>").starts_with(DENIED));
    assert_eq!(
        h.exchange(b"DATA\r\n"),
        "554 5.5.1 Error: no valid recipients\r\n"
    );
}

#[test]
fn trusted_networks_and_authenticated_clients_relay_anywhere() {
    let mut h = Harness::ready(relay_config(&["192.0.2.0/24"]));
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    for to in [
        "<u@example.com>",
        "<u%example.com@example.org>",
        "<@a.example:u@example.com>",
        "<u@[192.0.2.1]>",
    ] {
        assert_eq!(rcpt(&mut h, to), "250 2.1.5 Ok\r\n", "{to}");
    }

    // A session update (XCLIENT LOGIN) makes the client authenticated: trusted.
    let mut h = Harness::ready(relay_config(&["127.0.0.0/8"]));
    let update = SessionUpdate {
        auth: Some(Some("alice".into())),
        ..SessionUpdate::default()
    };
    h.f.handle_session_update(update, false);
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(rcpt(&mut h, "<u@example.com>"), "250 2.1.5 Ok\r\n");
}

#[test]
fn the_check_sees_the_address_a_session_update_reported() {
    // The connection comes from a trusted proxy, which reports an outside client.
    let mut h = Harness::ready(relay_config(&["192.0.2.0/24"]));
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(rcpt(&mut h, "<u@example.com>"), "250 2.1.5 Ok\r\n");
    h.exchange(b"RSET\r\n");
    let update = SessionUpdate {
        peer: Some("203.0.113.9:4000".parse().unwrap()),
        ..SessionUpdate::default()
    };
    h.f.handle_session_update(update, false);
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert!(rcpt(&mut h, "<u@example.com>").starts_with(DENIED));
    assert_eq!(rcpt(&mut h, "<u@example.org>"), "250 2.1.5 Ok\r\n");
    // And the other way round: an update to a trusted address.
    let update = SessionUpdate {
        peer: Some("[::ffff:192.0.2.9]:4000".parse().unwrap()),
        ..SessionUpdate::default()
    };
    h.f.handle_session_update(update, false);
    assert_eq!(rcpt(&mut h, "<u@example.com>"), "250 2.1.5 Ok\r\n");
}

#[test]
fn a_refusal_is_final_and_the_rcpt_hook_sees_only_accepted_recipients() {
    let mut cfg = relay_config(&["127.0.0.0/8"]);
    cfg.decisions.set(EventKind::Rcpt, true);
    let mut h = Harness::with_decider(
        cfg,
        Box::new(|event| match event {
            // A plugin that would accept everything cannot open the relay.
            Event::Rcpt { .. } => Decision::Accept,
            _ => Decision::Continue,
        }),
    );
    h.send(b"EHLO c.example\r\n");
    h.output();
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    h.events.clear();
    assert!(rcpt(&mut h, "<u@example.com>").starts_with(DENIED));
    assert!(!h.events.iter().any(|e| matches!(e, Event::Rcpt { .. })));
    assert_eq!(rcpt(&mut h, "<u@example.org>"), "250 2.1.5 Ok\r\n");
    assert!(h.events.iter().any(|e| matches!(e, Event::Rcpt { .. })));
}

#[test]
fn a_replaced_policy_holds_from_the_next_rcpt() {
    let control = Arc::new(RelayControl::new(policy(&["127.0.0.0/8"])));
    let mut cfg = config();
    cfg.relay = Some(control.clone());
    let mut h = Harness::ready(cfg);
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert!(rcpt(&mut h, "<u@example.com>").starts_with(DENIED));
    control.replace(policy(&["192.0.2.7"]));
    assert_eq!(rcpt(&mut h, "<u@example.com>"), "250 2.1.5 Ok\r\n");
}

#[test]
fn without_relay_control_every_recipient_passes() {
    let mut h = Harness::ready(config());
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(rcpt(&mut h, "<u@example.com>"), "250 2.1.5 Ok\r\n");
}

#[test]
fn dsn_is_advertised_and_its_parameters_are_kept() {
    let mut h = Harness::new(config());
    h.output();
    let ehlo = h.exchange(b"EHLO c.example\r\n");
    assert!(
        ehlo.contains("250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"),
        "{ehlo}"
    );
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ+2B1=x\r\n"),
        "501 5.5.4 Malformed parameter\r\n"
    );
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example> ret=hdrs ENVID=QQ+2B1\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        h.exchange(b"RCPT TO:<c@d.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c+40d.example\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        h.exchange(b"RCPT TO:<e@d.example> NOTIFY=never\r\n"),
        "250 2.1.5 Ok\r\n"
    );
    let env = h.f.envelope().unwrap();
    assert_eq!(env.mail_params.ret, Some(smtp_proto::params::Ret::Hdrs));
    assert_eq!(env.mail_params.envid.as_deref(), Some("QQ+1"));
    assert_eq!(env.mail_params.to_string().trim(), "RET=HDRS ENVID=QQ+2B1");
    let first = &env.recipients[0].params;
    assert_eq!(
        first.to_string().trim(),
        "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c@d.example"
    );
    assert_eq!(first.orcpt.as_ref().unwrap().addr, "c@d.example");
    assert!(env.recipients[1].params.notify.unwrap().is_never());
}

#[test]
fn malformed_and_duplicate_dsn_parameters_get_501() {
    let envid_101 = format!("MAIL FROM:<a@b.example> ENVID={}\r\n", "x".repeat(101));
    let envid_100 = format!("MAIL FROM:<a@b.example> ENVID={}\r\n", "x".repeat(100));
    let mail_cases: [(&str, &str); 6] = [
        (
            "MAIL FROM:<a@b.example> RET=BODY\r\n",
            "501 5.5.4 Invalid RET value",
        ),
        (
            "MAIL FROM:<a@b.example> RET=FULL RET=HDRS\r\n",
            "501 5.5.4 Duplicate parameter",
        ),
        (
            "MAIL FROM:<a@b.example> RET\r\n",
            "501 5.5.4 Invalid RET value",
        ),
        (
            "MAIL FROM:<a@b.example> ENVID=a+zz\r\n",
            "501 5.5.4 Invalid ENVID value",
        ),
        (&envid_101, "501 5.5.4 Invalid ENVID value"),
        (
            "MAIL FROM:<a@b.example> ENVID=a ENVID=b\r\n",
            "501 5.5.4 Duplicate parameter",
        ),
    ];
    for (command, want) in mail_cases {
        let mut h = Harness::ready(config());
        assert_eq!(
            h.exchange(command.as_bytes()),
            format!("{want}\r\n"),
            "{command}"
        );
    }
    let mut h = Harness::ready(config());
    assert_eq!(h.exchange(envid_100.as_bytes()), "250 2.1.0 Ok\r\n");
    for (command, want) in [
        (
            "RCPT TO:<c@d.example> NOTIFY=NEVER,FAILURE\r\n",
            "501 5.5.4 Invalid NOTIFY value",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY=SUCCESS,SUCCESS\r\n",
            "501 5.5.4 Invalid NOTIFY value",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY=SOMETIMES\r\n",
            "501 5.5.4 Invalid NOTIFY value",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY=\r\n",
            "501 5.5.4 Malformed parameter",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=c@d.example\r\n",
            "501 5.5.4 Invalid ORCPT value",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822;\r\n",
            "501 5.5.4 Invalid ORCPT value",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822;a+g0\r\n",
            "501 5.5.4 Invalid ORCPT value",
        ),
        (
            "RCPT TO:<c@d.example> ORCPT=rfc822;a ORCPT=rfc822;b\r\n",
            "501 5.5.4 Duplicate parameter",
        ),
        (
            "RCPT TO:<c@d.example> NOTIFY=DELAY notify=FAILURE\r\n",
            "501 5.5.4 Duplicate parameter",
        ),
    ] {
        assert_eq!(
            h.exchange(command.as_bytes()),
            format!("{want}\r\n"),
            "{command}"
        );
    }
    assert!(h.f.envelope().unwrap().recipients.is_empty());
    // DSN parameters belong to one command each.
    let mut h = Harness::ready(config());
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example> NOTIFY=NEVER\r\n"),
        "555 5.5.4 Unsupported parameter\r\n"
    );
}

#[test]
fn with_dsn_off_the_parameters_are_unsupported() {
    let mut cfg = config();
    cfg.dsn = false;
    let mut h = Harness::new(cfg);
    h.output();
    assert!(!h.exchange(b"EHLO c.example\r\n").contains("DSN"));
    assert_eq!(
        h.exchange(b"MAIL FROM:<a@b.example> RET=FULL\r\n"),
        "555 5.5.4 Unsupported parameter\r\n"
    );
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(
        h.exchange(b"RCPT TO:<c@d.example> NOTIFY=NEVER\r\n"),
        "555 5.5.4 Unsupported parameter\r\n"
    );
}

#[test]
fn a_client_that_authenticated_relays_anywhere() {
    let mut cfg = relay_config(&["127.0.0.0/8"]);
    cfg.auth = Some(crate::factory::AuthConfig {
        require_tls: false,
        ..Default::default()
    });
    let mut h = Harness::ready(cfg);
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert!(rcpt(&mut h, "<u@example.com>").starts_with(DENIED));
    h.exchange(b"RSET\r\n");
    // "\0alice\0secret"; the harness's decider accepts the credentials.
    assert!(h
        .exchange(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        .starts_with("235 2.7.0"));
    h.exchange(b"MAIL FROM:<a@b.example>\r\n");
    assert_eq!(rcpt(&mut h, "<u@example.com>"), "250 2.1.5 Ok\r\n");
    assert_eq!(
        rcpt(&mut h, "<u%example.com@example.org>"),
        "250 2.1.5 Ok\r\n"
    );
}
