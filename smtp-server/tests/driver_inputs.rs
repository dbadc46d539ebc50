//! Driver inputs beyond the client's bytes, over real sockets: the spool's free space
//! (`452 4.3.1` at MAIL), a pending hook that never completes (`451 4.3.0` after
//! `timeouts.hook`, the late completion ignored), and the session hooks see (EHLO vs HELO).
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use impulse_test_support::server::TestServer;
use smtp_server::hooks_api::{
    Completer, Order, PluginConfig, PluginDecl, Registrar, Registry, Verdict,
};
use smtp_server::spool::{MemFs, Spool, SpoolOptions};

#[test]
fn mail_gets_452_while_the_spool_is_short_of_space() {
    let fs = Arc::new(MemFs::new());
    let spool = Spool::open_with("/spool", SpoolOptions::default(), fs.clone()).unwrap();
    // Less than 1.5 x the 32 MiB size limit.
    fs.set_available_space(40 << 20);
    let server = TestServer::builder().spool(spool).start();
    let mut c = server.connect();
    c.cmd("EHLO c.test");
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.org>"),
        "452 4.3.1 Insufficient system storage"
    );
    // Space comes back: within a second (the checks' cache), MAIL is accepted again.
    fs.set_available_space(1 << 30);
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = c.cmd("MAIL FROM:<a@example.org>");
        if reply.starts_with("250 2.1.0") {
            break;
        }
        assert!(reply.starts_with("452 4.3.1"), "{reply}");
        assert!(Instant::now() < until, "still refused");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    server.stop();
}

/// Completers of the hook that never answers, kept alive (neither completed nor dropped).
static STUCK: Mutex<Vec<Completer>> = Mutex::new(Vec::new());
/// What MAIL hooks saw in `session().ehlo`.
static EHLO_SEEN: Mutex<Vec<bool>> = Mutex::new(Vec::new());

fn init(r: &mut Registrar, _: &PluginConfig) -> Result<(), String> {
    r.on_rcpt(Order::Priority(0), |ctx| {
        if !ctx.recipient.to_string().starts_with("<stuck") {
            return Verdict::Continue;
        }
        let (verdict, completer) = ctx.pending();
        STUCK.lock().unwrap().push(completer);
        verdict
    });
    r.on_mail(Order::Priority(0), |ctx| {
        EHLO_SEEN.lock().unwrap().push(ctx.session().ehlo);
        Verdict::Continue
    });
    Ok(())
}

static PLUGIN: PluginDecl = PluginDecl {
    name: "stuck-test",
    version: "0",
    init,
    shutdown: None,
};

#[test]
fn a_hook_that_never_completes_times_out() {
    let mut registry = Registry::new();
    registry.add(&PLUGIN, &Default::default()).unwrap();
    let server = TestServer::builder()
        .registry(registry)
        .config(|c| c.timeouts.hook = smtp_server::config::ConfigDuration::from_secs(1))
        .start();
    let mut c = server.connect();
    c.cmd("HELO c.test");
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(c.cmd("RSET").starts_with("250"));
    c.cmd("EHLO c.test");
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    // The hooks saw HELO, then EHLO.
    assert_eq!(*EHLO_SEEN.lock().unwrap(), [false, true]);

    let t = Instant::now();
    assert_eq!(
        c.cmd("RCPT TO:<stuck@example.net>"),
        "451 4.3.0 Error: timeout waiting for a policy decision, try again later"
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The late completion is ignored; the session goes on.
    let late = STUCK.lock().unwrap().pop().unwrap();
    late.complete(Verdict::reject(550, "5.1.1", "late"));
    assert!(c.cmd("RCPT TO:<b@example.net>").starts_with("250 2.1.5"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n");
    let queued = c.reply();
    assert!(queued.starts_with("250 2.0.0 Ok: queued as"), "{queued}");
    assert!(c.cmd("QUIT").starts_with("221"));
    server.stop();
}
