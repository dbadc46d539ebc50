//! A test plugin for hooks-api's dynamic-loading tests. Configuration (`[plugins.test-plugin]`):
//! `reject` (a recipient to refuse), `fail` (init returns an error), `panic_in_init`.
//!
//! RCPT hooks, in run order, each appending its tag to the transaction note
//! `test-plugin.trace`: `first` (First), `p10` rejects the configured recipient, `p20` panics
//! for `<panic@...>`, `p30` goes pending for `<slow@...>` and completes from a thread, `last`
//! (Last) accepts with the trace as reply text.

use hooks_api::smtp_proto::classify::{Category, Rule};
use hooks_api::smtp_proto::{ForwardPath, Reply};
use hooks_api::{
    Anchor, ClientContext, ClientState, EsmtpExtension, Order, PluginConfig, RcptCtx, Registrar,
    StateAction, Verdict,
};

const TRACE: &str = "test-plugin.trace";

fn trace(ctx: &mut RcptCtx<'_>, tag: &str) {
    let notes = ctx.txn_notes();
    let mut value = notes.get(TRACE).unwrap_or_default().to_owned();
    if !value.is_empty() {
        value.push(',');
    }
    value.push_str(tag);
    notes.set(TRACE, value);
}

fn local_part(path: &ForwardPath<'_>) -> String {
    match path {
        ForwardPath::Postmaster => "postmaster".to_owned(),
        ForwardPath::Mailbox(m) => m.local_part.to_string(),
    }
}

struct XTestState;

impl ClientState for XTestState {
    fn name(&self) -> &str {
        "xtest-state"
    }

    fn enter(&mut self, cx: &mut dyn ClientContext) -> StateAction {
        if cx.capabilities().get("XTEST").is_some() {
            StateAction::command("XTEST hello")
        } else {
            StateAction::Skip
        }
    }

    fn on_reply(&mut self, _: &mut dyn ClientContext, reply: &Reply) -> StateAction {
        if reply.is_positive_completion() {
            StateAction::Next
        } else {
            StateAction::Fail {
                reply: reply.clone(),
            }
        }
    }
}

fn init(r: &mut Registrar, config: &PluginConfig) -> Result<(), String> {
    if config.get("fail").and_then(|v| v.as_bool()) == Some(true) {
        return Err("configured to fail".to_owned());
    }
    if config.get("panic_in_init").and_then(|v| v.as_bool()) == Some(true) {
        panic!("configured to panic");
    }
    let reject = config
        .get("reject")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    hooks_api::log::info!("test-plugin: rejecting {reject:?}");

    r.on_rcpt(Order::First, |ctx| {
        trace(ctx, "first");
        Verdict::Continue
    });
    r.on_rcpt(Order::Priority(10), move |ctx| {
        trace(ctx, "p10");
        if !reject.is_empty() && ctx.recipient.to_string().trim_matches(['<', '>']) == reject {
            Verdict::reject(550, "5.1.1", "Rejected by test-plugin")
        } else {
            Verdict::Continue
        }
    });
    r.on_rcpt(Order::Priority(20), |ctx| {
        trace(ctx, "p20");
        if local_part(ctx.recipient) == "panic" {
            panic!("test-plugin panics on request");
        }
        Verdict::Continue
    });
    r.on_rcpt(Order::Priority(30), |ctx| {
        trace(ctx, "p30");
        if local_part(ctx.recipient) != "slow" {
            return Verdict::Continue;
        }
        let (verdict, completer) = ctx.pending();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            completer.complete(Verdict::Continue);
        });
        verdict
    });
    r.on_rcpt(Order::Last, |ctx| {
        trace(ctx, "last");
        let text = ctx.txn_notes().get(TRACE).unwrap_or_default().to_owned();
        Verdict::accept_with(250, "2.1.5", &text)
    });
    r.esmtp_extension(
        EsmtpExtension::new("XTEST")
            .param("ECHO")
            .mail_param("XTEST-ID")
            .handler(|_, args| Verdict::accept_with(250, "2.0.0", &format!("xtest {args}"))),
    );
    r.client_state("xtest-state", Anchor::After("ehlo".to_owned()), || {
        Box::new(XTestState)
    });
    r.bounce_class(250, "Test Class", "registered by test-plugin", Category::Soft);
    r.bounce_rule(Rule::new(250, 5000).text("test-plugin-bounce"));
    Ok(())
}

fn shutdown() {
    hooks_api::log::info!("test-plugin: shutdown");
}

hooks_api::plugin!("test-plugin", env!("CARGO_PKG_VERSION"), init, shutdown = shutdown);

#[cfg(not(feature = "bad-abi"))]
hooks_api::export_plugin!();
#[cfg(feature = "bad-abi")]
hooks_api::export_plugin!(abi_version = 999);
