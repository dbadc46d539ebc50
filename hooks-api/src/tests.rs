//! Dispatcher tests: ordering, chain rules, panics, pending, registry validation.
// Tests complete pending hooks from other threads, as a worker would.
#![allow(clippy::disallowed_methods)]

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::{classify, ForwardPath, Params, Path};

use crate::*;

fn session() -> SessionInfo {
    SessionInfo::new(
        "192.0.2.1:4000".parse().unwrap(),
        "192.0.2.2:25".parse().unwrap(),
    )
}

fn registry_with(init: fn(&mut Registrar, &PluginConfig) -> Result<(), String>) -> Registry {
    let decl: &'static PluginDecl = Box::leak(Box::new(PluginDecl {
        name: "t",
        version: "1",
        init,
        shutdown: None,
    }));
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    registry.add(decl, &toml::Table::new()).unwrap();
    registry
}

/// Runs the helo chain and returns its verdict.
fn helo(registry: &Registry, name: &str) -> Verdict {
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    let mut ctx = Ctx::new(
        &mut s,
        &mut c,
        &mut t,
        Helo {
            name,
            extended: true,
        },
    );
    registry.dispatch_helo(&mut ctx)
}

static TRACE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn trace(tag: &str) -> Verdict {
    TRACE.lock().unwrap().push(tag.to_owned());
    Verdict::Continue
}

#[test]
fn ordering_first_priority_last_then_registration() {
    let registry = registry_with(|r, _| {
        r.on_connect(Order::Last, |_| trace("last1"));
        r.on_connect(Order::Priority(10), |_| trace("p10a"));
        r.on_connect(Order::First, |_| trace("first1"));
        r.on_connect(Order::Priority(-5), |_| trace("p-5"));
        r.on_connect(Order::Priority(10), |_| trace("p10b"));
        r.on_connect(Order::Last, |_| trace("last2"));
        r.on_connect(Order::First, |_| trace("first2"));
        Ok(())
    });
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    TRACE.lock().unwrap().clear();
    let verdict = registry.dispatch_connect(&mut Ctx::new(&mut s, &mut c, &mut t, Connect));
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(
        *TRACE.lock().unwrap(),
        ["first1", "first2", "p-5", "p10a", "p10b", "last1", "last2"]
    );
    assert_eq!(registry.hook_count(HookPoint::Connect), 7);
}

#[test]
fn a_final_verdict_ends_the_chain() {
    let registry = registry_with(|r, _| {
        r.on_helo(Order::Priority(1), |ctx| {
            ctx.conn_notes().set("seen", "1");
            if ctx.name == "accept" {
                Verdict::accept()
            } else {
                Verdict::Continue
            }
        });
        r.on_helo(Order::Priority(2), |ctx| match ctx.name {
            "bad" => Verdict::reject(550, "5.7.1", "no"),
            "busy" => Verdict::temp_fail(421, "4.7.0", "busy"),
            "bye" => Verdict::disconnect("bye"),
            _ => Verdict::Continue,
        });
        r.on_helo(Order::Priority(3), |_| {
            Verdict::reject(554, "", "third hook ran")
        });
        Ok(())
    });
    assert_eq!(helo(&registry, "accept"), Verdict::Accept(None));
    assert!(matches!(helo(&registry, "bad"), Verdict::Reject(r) if r.code() == 550));
    assert!(matches!(helo(&registry, "busy"), Verdict::TempFail(r) if r.code() == 421));
    assert!(matches!(helo(&registry, "bye"), Verdict::Disconnect(r) if r.code() == 421));
    assert!(matches!(helo(&registry, "other"), Verdict::Reject(r) if r.code() == 554));
}

#[test]
fn bad_verdicts_are_coerced() {
    let registry = registry_with(|r, _| {
        r.on_helo(Order::First, |_| {
            Verdict::Reject(smtp_proto::Reply::new(450, None, "4xx in a reject"))
        });
        Ok(())
    });
    assert_eq!(helo(&registry, "x"), Verdict::local_error());
}

#[test]
fn panics_are_contained_and_dispatch_goes_on() {
    let registry = registry_with(|r, _| {
        r.on_helo(Order::First, |ctx| {
            if ctx.name == "boom" {
                panic!("plugin bug");
            }
            Verdict::Continue
        });
        r.on_helo(Order::Last, |_| Verdict::accept());
        Ok(())
    });
    let v = helo(&registry, "boom");
    assert!(matches!(&v, Verdict::TempFail(r) if r.code() == 451
        && r.status() == Some(smtp_proto::EnhancedStatus::new(4, 3, 0))));
    assert_eq!(helo(&registry, "fine"), Verdict::Accept(None));
    assert_eq!(helo(&registry, "boom"), v);
}

fn rcpt_registry() -> Registry {
    registry_with(|r, _| {
        r.on_rcpt(Order::Priority(0), |ctx| {
            let who = ctx.recipient.to_string();
            let (verdict, completer) = ctx.pending();
            std::thread::spawn(move || {
                completer.complete(if who.contains("slow-ok") {
                    Verdict::Continue
                } else if who.contains("drop") {
                    return; // completer dropped
                } else {
                    Verdict::reject(550, "5.1.1", "unknown")
                })
            });
            verdict
        });
        r.on_rcpt(Order::Priority(1), |ctx| {
            ctx.txn_notes().set("second", "ran");
            Verdict::accept_with(250, "2.1.5", "after pending")
        });
        Ok(())
    })
}

fn run_rcpt(registry: &Registry, to: &str, source: Option<&ChannelPending>) -> (Verdict, Notes) {
    let envelope = Envelope::new(Path::Null, Params::default());
    let rcpt = ForwardPath::parse(to.as_bytes(), &Default::default())
        .unwrap()
        .into_owned();
    let params = Params::default();
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    let event = Rcpt {
        envelope: &envelope,
        recipient: &rcpt,
        params: &params,
    };
    let mut ctx = Ctx::new(&mut s, &mut c, &mut t, event);
    if let Some(source) = source {
        ctx = ctx.with_pending(source);
    }
    let verdict = match registry.dispatch_rcpt(&mut ctx) {
        Verdict::Pending(pending) => {
            let (ticket, completed) = source.unwrap().wait(Duration::from_secs(10)).unwrap();
            assert_eq!(ticket, pending.ticket());
            assert_eq!(pending.resume_at(), 1);
            registry.resume_rcpt(&mut ctx, pending, completed)
        }
        other => other,
    };
    (verdict, t)
}

#[test]
fn pending_completes_from_another_thread_and_resumes() {
    let registry = rcpt_registry();
    let source = ChannelPending::new();
    let (v, notes) = run_rcpt(&registry, "<slow-ok@example.com>", Some(&source));
    assert!(matches!(&v, Verdict::Accept(Some(r)) if r.text() == "after pending"));
    assert_eq!(notes.get("second"), Some("ran"));
    let (v, notes) = run_rcpt(&registry, "<nobody@example.com>", Some(&source));
    assert!(matches!(&v, Verdict::Reject(r) if r.code() == 550));
    assert_eq!(notes.get("second"), None);
    let (v, _) = run_rcpt(&registry, "<drop@example.com>", Some(&source));
    assert!(matches!(&v, Verdict::TempFail(r) if r.code() == 451));
}

#[test]
fn pending_without_a_source_is_refused() {
    let (v, _) = run_rcpt(&rcpt_registry(), "<slow-ok@example.com>", None);
    assert_eq!(v, Verdict::local_error());
}

#[test]
fn queue_accept_needs_a_queue_id_and_message_rewinds() {
    let registry = registry_with(|r, _| {
        r.on_message(Order::First, |ctx| {
            let mut first = String::new();
            ctx.message().unwrap().read_to_string(&mut first).unwrap();
            let mut body = String::new();
            ctx.body().unwrap().read_to_string(&mut body).unwrap();
            assert!(first.starts_with("Subject: hi"));
            assert_eq!(body, "hello\r\n");
            assert_eq!(ctx.headers.get("subject"), Some("hi"));
            Verdict::Continue
        });
        r.on_queue(Order::First, |ctx| {
            if ctx.envelope.recipients.is_empty() {
                Verdict::accept() // forgot the queue id
            } else {
                ctx.set_queue_id("Q1");
                Verdict::accept()
            }
        });
        Ok(())
    });
    let raw = b"Subject: hi\r\n\r\nhello\r\n".to_vec();
    let headers = Headers::parse(&raw);
    let mut envelope = Envelope::new(Path::Null, Params::default());
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    let mut data = Cursor::new(raw.clone());
    let mut ctx = Ctx::new(
        &mut s,
        &mut c,
        &mut t,
        Message::new(&envelope, &headers, &mut data),
    );
    assert_eq!(registry.dispatch_message(&mut ctx), Verdict::Continue);

    let mut data = Cursor::new(raw.clone());
    let mut ctx = Ctx::new(
        &mut s,
        &mut c,
        &mut t,
        Queue::new(Message::new(&envelope, &headers, &mut data)),
    );
    assert_eq!(registry.dispatch_queue(&mut ctx), Verdict::local_error());

    envelope
        .recipients
        .push(Recipient::new(ForwardPath::Postmaster, Params::default()));
    let mut data = Cursor::new(raw);
    let mut ctx = Ctx::new(
        &mut s,
        &mut c,
        &mut t,
        Queue::new(Message::new(&envelope, &headers, &mut data)),
    );
    assert_eq!(registry.dispatch_queue(&mut ctx), Verdict::Accept(None));
    assert_eq!(ctx.into_event().queue_id(), Some("Q1"));
}

#[test]
fn disconnect_hooks_all_run_despite_panics() {
    static COUNT: Mutex<u32> = Mutex::new(0);
    let registry = registry_with(|r, _| {
        r.on_disconnect(Order::First, |_| panic!("bye"));
        r.on_disconnect(Order::Last, |_| *COUNT.lock().unwrap() += 1);
        Ok(())
    });
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    registry.dispatch_disconnect(&mut Ctx::new(&mut s, &mut c, &mut t, Disconnect));
    assert_eq!(*COUNT.lock().unwrap(), 1);
}

#[test]
fn extension_verbs_and_session_changes() {
    let registry = registry_with(|r, _| {
        r.esmtp_extension(
            EsmtpExtension::new("xclient")
                .params(["NAME", "ADDR"])
                .advertise_if(|s| s.peer.ip().is_loopback())
                .handler(|ctx, args| {
                    if args == "boom" {
                        panic!("handler bug");
                    }
                    ctx.session_mut().helo = Some(args.to_owned());
                    ctx.request_session_reset();
                    Verdict::accept_with(220, "", "ready")
                }),
        );
        Ok(())
    });
    let ext = registry.extension("XCLIENT").unwrap();
    assert_eq!(ext.extension.ehlo_line(), "XCLIENT NAME ADDR");
    assert!(!ext.extension.advertised_to(&session()));
    let (mut s, mut c, mut t) = (session(), Notes::new(), Notes::new());
    let mut ctx = Ctx::new(&mut s, &mut c, &mut t, Command::new("XCLIENT", "NAME=x"));
    assert!(matches!(ext.call(&mut ctx, "NAME=x"), Verdict::Accept(Some(r)) if r.code() == 220));
    assert!(ctx.session_reset_requested());
    assert_eq!(ctx.session().helo.as_deref(), Some("NAME=x"));
    assert_eq!(ext.call(&mut ctx, "boom"), Verdict::panicked());
}

#[test]
fn registry_refuses_conflicts_and_bad_registrations() {
    fn two_xclients(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
        r.esmtp_extension(EsmtpExtension::new("XA"));
        r.esmtp_extension(EsmtpExtension::new("xa"));
        Ok(())
    }
    fn bad_keyword(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
        r.esmtp_extension(EsmtpExtension::new("NO SPACE"));
        Ok(())
    }
    fn failing(_: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
        Err("missing users file".into())
    }
    fn panicking(_: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
        panic!("init bug")
    }
    fn classes(r: &mut Registrar, c: &PluginConfig) -> Result<(), String> {
        let id = c.get("id").and_then(|v| v.as_integer()).unwrap_or(200) as u16;
        r.bounce_class(
            id,
            &format!("Custom {id}"),
            "a test class",
            classify::Category::Soft,
        );
        r.bounce_rule(classify::Rule::new(id, 2000).text("frobnicated"));
        Ok(())
    }
    let leak = |name, init| -> &'static PluginDecl {
        Box::leak(Box::new(PluginDecl {
            name,
            version: "1",
            init,
            shutdown: None,
        }))
    };
    let classifier: &'static classify::Registry = Box::leak(Box::new(classify::Registry::new()));
    let mut registry = Registry::with_classifier(classifier);
    let none = toml::Table::new();
    assert!(matches!(
        registry.add(leak("a", two_xclients), &none),
        Err(LoadError::InvalidRegistration { .. })
    ));
    assert!(matches!(
        registry.add(leak("b", bad_keyword), &none),
        Err(LoadError::InvalidRegistration { .. })
    ));
    assert_eq!(
        registry.add(leak("c", failing), &none),
        Err(LoadError::InitFailed {
            plugin: "c".into(),
            reason: "missing users file".into()
        })
    );
    assert!(matches!(registry.add(leak("d", panicking), &none),
        Err(LoadError::EntryPanicked { plugin, message }) if plugin == "d" && message == "init bug"));
    registry.add(leak("e", classes), &none).unwrap();
    assert_eq!(classifier.classify_reply_text("550 frobnicated").id, 200);
    assert_eq!(
        registry.add(leak("e", classes), &none),
        Err(LoadError::Duplicate { name: "e".into() })
    );
    assert!(matches!(
        registry.add(leak("f", classes), &none),
        Err(LoadError::InvalidRegistration { .. })
    ));
    assert_eq!(registry.plugin_names(), ["e"]);
    let summary = registry.summary("e").unwrap();
    assert_eq!(summary.classes, [(200, "Custom 200".to_owned())]);
    assert_eq!(summary.rules, 1);
}

#[test]
fn shutdown_runs_in_reverse_and_contains_panics() {
    static ORDER: Mutex<Vec<&str>> = Mutex::new(Vec::new());
    fn nop(_: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
        Ok(())
    }
    let decls: Vec<&'static PluginDecl> = vec![
        Box::leak(Box::new(PluginDecl {
            name: "one",
            version: "1",
            init: nop,
            shutdown: Some(|| ORDER.lock().unwrap().push("one")),
        })),
        Box::leak(Box::new(PluginDecl {
            name: "two",
            version: "1",
            init: nop,
            shutdown: Some(|| panic!("two")),
        })),
        Box::leak(Box::new(PluginDecl {
            name: "three",
            version: "1",
            init: nop,
            shutdown: Some(|| ORDER.lock().unwrap().push("three")),
        })),
    ];
    let mut registry = Registry::new();
    for d in decls {
        registry.add(d, &toml::Table::new()).unwrap();
    }
    registry.shutdown();
    registry.shutdown();
    assert_eq!(*ORDER.lock().unwrap(), ["three", "one"]);
}

#[test]
fn hooks_api_itself_submits_no_plugin() {
    assert!(plugin::linked_plugins().is_empty());
    assert_eq!(
        Registry::from_static(&toml::Table::new())
            .unwrap()
            .plugin_names(),
        Vec::<&str>::new()
    );
}

#[test]
fn client_states_are_registered_with_their_anchor() {
    struct Ping;
    impl ClientState for Ping {
        fn name(&self) -> &str {
            "xping"
        }
        fn enter(&mut self, _: &mut dyn ClientContext) -> StateAction {
            StateAction::command("XPING")
        }
        fn on_reply(&mut self, _: &mut dyn ClientContext, _: &smtp_proto::Reply) -> StateAction {
            StateAction::Next
        }
    }
    let registry = registry_with(|r, _| {
        r.client_state("xping", Anchor::After("ehlo".into()), || Box::new(Ping));
        Ok(())
    });
    let states = registry.client_states();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].insert_after(), &Anchor::After("ehlo".into()));
    assert_eq!(states[0].create().name(), "xping");
    let _ = Arc::new(registry);
}

#[test]
fn host_hooks_capture_state_and_a_failing_init_adds_nothing() {
    let mut registry = Registry::with_classifier(Box::leak(Box::new(classify::Registry::new())));
    let refused = Arc::new(String::from("localhost"));
    let name = refused.clone();
    registry
        .add_host_hooks("host-policy", "1", move |r| {
            r.on_helo(Order::First, move |ctx| {
                if ctx.name == name.as_str() {
                    Verdict::reject(550, "5.7.1", "Liar")
                } else {
                    Verdict::Continue
                }
            });
            Ok(())
        })
        .unwrap();
    assert_eq!(registry.plugin_names(), ["host-policy"]);
    assert!(matches!(helo(&registry, "localhost"), Verdict::Reject(_)));
    assert!(matches!(helo(&registry, "mx.example"), Verdict::Continue));
    assert!(Arc::strong_count(&refused) > 1, "the hook holds the state");

    let err = registry
        .add_host_hooks("broken", "1", |r| {
            r.on_helo(Order::First, |_| Verdict::Continue);
            Err("no".into())
        })
        .unwrap_err();
    assert!(err.to_string().contains("no"), "{err}");
    let err = registry
        .add_host_hooks("host-policy", "2", |_| Ok(()))
        .unwrap_err();
    assert!(err.to_string().contains("host-policy"), "{err}");
    assert_eq!(registry.plugin_names(), ["host-policy"]);
    assert_eq!(registry.hook_count(HookPoint::Helo), 1);
}
