//! Hooks over a real socket: message and queue hooks run on the hook pool (reading the
//! message back from the spool file), a queue hook can take a message instead of the spool,
//! a MAIL hook goes pending and completes from another thread, disconnect hooks run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smtp_server::config::ServerConfig;
use smtp_server::hooks_api::{Order, PluginConfig, PluginDecl, Registrar, Registry, Verdict};
use smtp_server::server::Server;
use smtp_server::spool::Spool;

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

fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut out = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "closed: {out}");
        out.push_str(line.trim_end());
        if line.as_bytes().get(3) != Some(&b'-') {
            return out;
        }
    }
}

#[test]
fn message_and_queue_hooks_run_on_the_pool() {
    let mut registry = Registry::new();
    registry.add(&PLUGIN, &Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let handle = Server::builder()
        .config(ServerConfig {
            workers: 1,
            ..ServerConfig::default()
        })
        .listen("127.0.0.1:0".parse().unwrap())
        .registry(Arc::new(registry))
        .spool(spool.clone())
        .build()
        .unwrap()
        .spawn()
        .unwrap();
    let s = TcpStream::connect(handle.local_addrs()[0]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let cmd = |w: &mut TcpStream, r: &mut BufReader<TcpStream>, line: &str| {
        w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        reply(r)
    };
    assert!(reply(&mut r).starts_with("220"));
    assert!(cmd(&mut w, &mut r, "EHLO client.test").starts_with("250"));
    let send = |w: &mut TcpStream, r: &mut BufReader<TcpStream>, from: &str, msg: &str| {
        let m = cmd(w, r, &format!("MAIL FROM:<{from}>"));
        assert!(m.starts_with("250"), "{m}");
        assert!(cmd(w, r, "RCPT TO:<b@example.com>").starts_with("250"));
        assert!(cmd(w, r, "DATA").starts_with("354"));
        w.write_all(msg.as_bytes()).unwrap();
        w.write_all(b".\r\n").unwrap();
        reply(r)
    };
    let infected = send(&mut w, &mut r, "a@x.test", "Subject: hi\r\n\r\nVIRUS\r\n");
    assert_eq!(infected, "554 5.7.1 Infected");
    let taken = send(
        &mut w,
        &mut r,
        "a@x.test",
        "Subject: take-me\r\n\r\nbody\r\n",
    );
    assert_eq!(taken, "250 2.0.0 Ok: queued as external-1");
    assert!(spool.list().unwrap().is_empty());
    let slow = cmd(&mut w, &mut r, "MAIL FROM:<slow@x.test>");
    assert_eq!(slow, "250 2.1.0 slow sender ok");
    assert!(cmd(&mut w, &mut r, "RSET").starts_with("250"));
    let spooled = send(
        &mut w,
        &mut r,
        "a@x.test",
        "Subject: normal\r\n\r\nbody\r\n",
    );
    assert!(spooled.starts_with("250 2.0.0 Ok: queued as "), "{spooled}");
    assert_eq!(spool.list().unwrap().len(), 1);
    assert!(cmd(&mut w, &mut r, "QUIT").starts_with("221"));
    handle.shutdown();
    handle.join().unwrap();
    assert_eq!(DISCONNECTS.load(Ordering::SeqCst), 1);
}
