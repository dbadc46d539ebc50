//! Hooks over a real socket: message and queue hooks run on the hook pool (reading the
//! message back from the spool file), a queue hook can take a message instead of the spool,
//! a MAIL hook goes pending and completes from another thread, disconnect hooks run.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use impulse_test_support::line::LineClient;
use impulse_test_support::server::TestServer;
use smtp_server::hooks_api::{Order, PluginConfig, PluginDecl, Registrar, Registry, Verdict};

static DISCONNECTS: AtomicUsize = AtomicUsize::new(0);

fn init(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
    r.on_mail(Order::Priority(0), |ctx| {
        if !ctx.sender.to_string().starts_with("<slow") {
            return Verdict::Continue;
        }
        let (verdict, completer) = ctx.pending();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            completer.complete(Verdict::accept_with(250, "2.1.0", "slow sender ok"));
        });
        verdict
    });
    r.on_message(Order::Priority(0), |ctx| {
        let mut body = String::new();
        if ctx
            .body()
            .and_then(|r| r.read_to_string(&mut body))
            .is_err()
        {
            return Verdict::temp_fail(451, "4.3.0", "cannot read");
        }
        if body.contains("VIRUS") {
            Verdict::reject(554, "5.7.1", "Infected")
        } else {
            Verdict::Continue
        }
    });
    r.on_queue(Order::Priority(0), |ctx| {
        if ctx.headers.get("Subject").map(str::trim) == Some("take-me") {
            ctx.set_queue_id("external-1");
            Verdict::accept()
        } else {
            Verdict::Continue
        }
    });
    r.on_disconnect(Order::Last, |_| {
        DISCONNECTS.fetch_add(1, Ordering::SeqCst);
    });
    Ok(())
}

static PLUGIN: PluginDecl = PluginDecl {
    name: "pool-test",
    version: "0",
    init,
    shutdown: None,
};

#[test]
fn message_and_queue_hooks_run_on_the_pool() {
    let mut registry = Registry::new();
    registry.add(&PLUGIN, &Default::default()).unwrap();
    let server = TestServer::with(registry, 1);
    let spool = server.spool.clone();
    let mut c = LineClient::connect(server.addr);
    assert!(c.reply().starts_with("220"));
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    let send = |c: &mut LineClient, from: &str, msg: &str| {
        let m = c.cmd(&format!("MAIL FROM:<{from}>"));
        assert!(m.starts_with("250"), "{m}");
        assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(msg.as_bytes());
        c.send(b".\r\n");
        c.reply()
    };
    let infected = send(&mut c, "a@x.test", "Subject: hi\r\n\r\nVIRUS\r\n");
    assert_eq!(infected, "554 5.7.1 Infected");
    let taken = send(&mut c, "a@x.test", "Subject: take-me\r\n\r\nbody\r\n");
    assert_eq!(taken, "250 2.0.0 Ok: queued as external-1");
    assert!(spool.list().unwrap().is_empty());
    let slow = c.cmd("MAIL FROM:<slow@x.test>");
    assert_eq!(slow, "250 2.1.0 slow sender ok");
    assert!(c.cmd("RSET").starts_with("250"));
    let spooled = send(&mut c, "a@x.test", "Subject: normal\r\n\r\nbody\r\n");
    assert!(spooled.starts_with("250 2.0.0 Ok: queued as "), "{spooled}");
    assert_eq!(spool.list().unwrap().len(), 1);
    assert!(c.cmd("QUIT").starts_with("221"));
    server.stop();
    assert_eq!(DISCONNECTS.load(Ordering::SeqCst), 1);
}
