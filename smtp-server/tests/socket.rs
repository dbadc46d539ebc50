//! The event-loop driver over real sockets on 127.0.0.1:0: hostile input, timeouts,
//! connection caps, shutdown, and what lands in the spool.
// Socket tests run real peers on threads and wait on the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use smtp_server::spool::QueueId;

mod support;

use impulse_test_support::line::LineClient as Client;
use impulse_test_support::server::TestServer;

fn envelope(c: &mut Client) {
    assert!(c.cmd("EHLO client.test").starts_with("250-mx.test"));
    assert!(c.cmd("MAIL FROM:<a@example.com>").starts_with("250 2.1.0"));
    assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250 2.1.5"));
}

#[test]
fn a_message_is_queued_byte_exact_after_250() {
    let mut s = support::start(|_| {});
    let mut c = s.connect();
    envelope(&mut c);
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: hi\r\n\r\n..leading dot\r\nline two\r\n.\r\n");
    let reply = c.reply();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    let id = QueueId::parse(reply.rsplit(' ').next().unwrap()).unwrap();
    let stored = s.stored(id);
    let stored = String::from_utf8(stored).unwrap();
    assert!(stored.starts_with("Received: from client.test"), "{stored}");
    assert!(
        stored.ends_with("\r\nSubject: hi\r\n\r\n.leading dot\r\nline two\r\n"),
        "{stored}"
    );
    let env = s.spool.read_envelope(id).unwrap();
    assert_eq!(env.sender, "a@example.com");
    assert_eq!(env.recipients[0].address, "b@example.com");
    assert!(c.cmd("QUIT").starts_with("221"));
    s.shutdown();
}

#[test]
fn a_100k_line_gets_500_and_the_session_goes_on() {
    let s = support::start(|_| {});
    let mut c = s.connect();
    c.send(&vec![b'A'; 100 * 1024]);
    c.send(b"\r\n");
    let reply = c.reply();
    assert!(reply.starts_with("500 5.5.2"), "{reply}");
    assert!(c.cmd("NOOP").starts_with("250"));
    envelope(&mut c);
}

#[test]
fn smuggled_end_of_data_does_not_end_data() {
    let s = support::start(|_| {});
    let mut c = s.connect();
    envelope(&mut c);
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n");
    c.send(b"smuggled\r\n.\r\n");
    // Exactly one reply, to the real end of data: the bare LFs are refused (default policy),
    // and none of the smuggled commands was answered.
    let reply = c.reply();
    assert!(reply.starts_with("550 5.5.2"), "{reply}");
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(s.queued().is_empty());
}

#[test]
fn smuggled_end_of_data_is_content_when_kept() {
    let s = support::start(|c| {
        c.smtp.bare_line_endings = smtp_server::config::BareLineEndingPolicy::Keep;
    });
    let mut c = s.connect();
    envelope(&mut c);
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n");
    let reply = c.reply();
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let id = s.queued()[0];
    let stored = s.stored(id);
    assert!(stored.ends_with(b"hello\n.\nMAIL FROM:<evil@example.com>\r\n"));
}

#[test]
fn a_body_before_354_is_a_synchronization_error() {
    let s = support::start(|_| {});
    let mut c = s.connect();
    envelope(&mut c);
    c.send(b"DATA\r\nSubject: early\r\n\r\nbody\r\n.\r\n");
    let rest = c.rest();
    assert!(rest.contains("554 5.5.0"), "{rest}");
    assert!(s.queued().is_empty());
}

#[test]
fn an_idle_client_times_out_with_421() {
    let s =
        support::start(|c| c.timeouts.command = smtp_server::config::ConfigDuration::from_secs(1));
    let mut c = s.connect();
    let started = std::time::Instant::now();
    let rest = c.rest();
    assert!(rest.starts_with("421 4.4.2"), "{rest}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_client_that_stops_reading_does_not_keep_its_slot() {
    let s = support::start(|c| {
        c.timeouts.command = smtp_server::config::ConfigDuration::from_secs(1);
        c.limits.connections_per_ip = 1;
        c.limits.exempt_loopback = false;
    });
    // A client with a small receive window that pipelines far more commands than their
    // replies fit in it, reads none of them, then falls silent.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&s.addr.into()).unwrap();
    let mut stalled: TcpStream = socket.into();
    stalled
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    let mut read_until = |stalled: &mut TcpStream, end: &[u8]| {
        while !seen.windows(end.len()).any(|w| w == end) {
            let n = stalled.read(&mut buf).unwrap();
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    };
    read_until(&mut stalled, b"\r\n");
    stalled.write_all(b"EHLO client.test\r\n").unwrap();
    read_until(&mut stalled, b"\n250 ");
    let noops = b"RSET\r\n".repeat(4096);
    for _ in 0..64 {
        if stalled.write_all(&noops).is_err() {
            break; // the server stopped reading: its replies fill both buffers
        }
    }
    // Its 421 timeout cannot be written either; one command timeout later the server
    // gives the connection up, and the client's one slot is free again.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        let mut next = TcpStream::connect(s.addr).unwrap();
        next.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 3];
        if next.read_exact(&mut buf).is_ok() && &buf == b"220" {
            drop(stalled);
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("a client that stopped reading kept its slot");
}

#[test]
fn connections_per_ip_are_capped() {
    let s = support::start(|c| {
        c.limits.connections_per_ip = 2;
        c.limits.exempt_loopback = false;
    });
    let _a = s.connect();
    let _b = s.connect();
    let mut third = TcpStream::connect(s.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = String::new();
    let _ = third.read_to_string(&mut got);
    assert!(got.starts_with("421 4.7.0"), "{got}");
    drop(_a);
    // The slot is freed once the server sees the close.
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        let mut s4 = TcpStream::connect(s.addr).unwrap();
        s4.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 3];
        s4.read_exact(&mut buf).unwrap();
        if &buf == b"220" {
            return;
        }
    }
    panic!("the per-IP slot was never released");
}

#[test]
fn shutdown_sends_421_to_idle_clients_and_lets_transactions_finish() {
    let mut s = support::start(|_| {});
    let mut idle = s.connect();
    assert!(idle.cmd("EHLO idle.test").starts_with("250"));
    let mut busy = s.connect();
    envelope(&mut busy);
    assert!(busy.cmd("DATA").starts_with("354"));
    busy.send(b"Subject: in flight\r\n\r\n");
    let handle = s.handle.take().unwrap();
    handle.shutdown();
    let rest = idle.rest();
    assert!(
        rest.starts_with("421 4.3.2 mx.test Service shutting down"),
        "{rest}"
    );
    // New connections are refused once the listeners are closed.
    std::thread::sleep(Duration::from_millis(200));
    assert!(TcpStream::connect(s.addr).is_err());
    busy.send(b"the end\r\n.\r\n");
    let reply = busy.reply();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
    let rest = busy.rest();
    assert!(rest.starts_with("421 4.3.2"), "{rest}");
    handle.join().unwrap();
    assert_eq!(s.queued().len(), 1);
}

#[test]
fn many_pipelined_messages_on_one_connection() {
    let s = support::start(|_| {});
    let mut c = s.connect();
    assert!(c.cmd("EHLO client.test").contains("PIPELINING"));
    for i in 0..50 {
        c.send(
            format!(
                "MAIL FROM:<a@example.com>\r\nRCPT TO:<b{i}@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
            )
            .as_bytes(),
        );
        assert!(c.reply().starts_with("250 2.1.0"));
        assert!(c.reply().starts_with("250 2.1.5"));
        assert!(c.reply().starts_with("250 2.1.5"));
        assert!(c.reply().starts_with("354"));
        c.send(format!("Subject: {i}\r\n\r\n{}\r\n.\r\n", "x".repeat(i * 100)).as_bytes());
        assert!(c.reply().starts_with("250 2.0.0"));
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    assert_eq!(s.queued().len(), 50);
}

#[test]
fn discard_mode_answers_250_and_stores_nothing() {
    let s = support::start(|c| c.spool.discard = true);
    let mut c = s.connect();
    for i in 0..3 {
        envelope(&mut c);
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(format!("Subject: {i}\r\n\r\nbody\r\n.\r\n").as_bytes());
        let reply = c.reply();
        assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
        assert!(QueueId::parse(reply.rsplit(' ').next().unwrap()).is_ok());
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    assert!(s.queued().is_empty());
    let tmp = s.spool.dir().join("tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
}

#[test]
fn a_message_sent_with_a_half_close_is_answered_and_the_connection_closed_at_once() {
    // The client sends the body and shuts its sending side in the same breath (data and
    // FIN arrive together): the server must not take the short read for "nothing more" and miss the end
    // of file, nor wait for the idle timeout.
    let s =
        support::start(|c| c.timeouts.command = smtp_server::config::ConfigDuration::from_secs(60));
    let mut c = s.connect();
    assert!(c.cmd("EHLO client.test").contains("PIPELINING"));
    c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    assert!(c.reply().starts_with("250 2.1.0"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert!(c.reply().starts_with("354"));
    c.send(b"Subject: half-close\r\n\r\nbody\r\n.\r\n");
    c.w.shutdown(std::net::Shutdown::Write).unwrap();
    let started = std::time::Instant::now();
    let queued = c.reply();
    assert!(queued.starts_with("250 2.0.0 Ok: queued as"), "{queued}");
    // Then the server closes its side (an end of file, after an optional 421).
    let mut rest = String::new();
    c.r.read_to_string(&mut rest).unwrap();
    assert!(rest.is_empty() || rest.starts_with("421"), "{rest:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(s.queued().len(), 1);
}

/// Files in the spool's `tmp/` (messages in flight; the test spools keep no stock).
fn tmp_files(s: &TestServer) -> usize {
    std::fs::read_dir(s.spool.dir().join("tmp"))
        .unwrap()
        .count()
}

/// Lines of varied length, some starting with a dot, `len` bytes in all (CRLF-terminated).
fn big_body(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut n = 0usize;
    while out.len() < len {
        if n % 7 == 0 {
            out.push(b'.');
        }
        let width = 1 + (n * 37) % 300;
        out.extend((0..width).map(|i| b'a' + ((i + n) % 26) as u8));
        out.extend_from_slice(b"\r\n");
        n += 1;
    }
    out
}

fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 50);
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

#[test]
fn a_large_message_streams_through_spool_threads_byte_exact() {
    let mut s = support::start(|_| {});
    let mut c = s.connect();
    envelope(&mut c);
    assert!(c.cmd("DATA").starts_with("354"));
    // 3 MiB: dozens of 64 KiB buffers written out by spool threads while the loop reads on.
    let body = big_body(3 << 20);
    let sender = {
        let mut w = c.w.try_clone().unwrap();
        let wire = dot_stuff(&body);
        std::thread::spawn(move || {
            w.write_all(&wire).unwrap();
            w.write_all(b".\r\n").unwrap();
        })
    };
    let reply = c.reply();
    sender.join().unwrap();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    let id = QueueId::parse(reply.rsplit(' ').next().unwrap()).unwrap();
    let stored = s.stored(id);
    assert!(stored.starts_with(b"Received: from client.test"));
    assert!(stored.ends_with(&body), "the body is stored byte-exact");
    assert_eq!(tmp_files(&s), 0);
    assert!(c.cmd("QUIT").starts_with("221"));
    s.shutdown();
}

#[test]
fn a_client_that_leaves_in_the_middle_of_a_large_body_leaves_no_file() {
    let mut s = support::start(|_| {});
    let mut c = s.connect();
    envelope(&mut c);
    assert!(c.cmd("DATA").starts_with("354"));
    // More than a buffer, so that a spool thread has created and written the tmp file.
    c.send(&dot_stuff(&big_body(1 << 20)));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tmp_files(&s) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(tmp_files(&s), 1, "the message being received is in tmp/");
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tmp_files(&s) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(tmp_files(&s), 0, "the aborted message's file is removed");
    assert!(s.queued().is_empty());
    // The server goes on.
    let mut c = s.connect();
    envelope(&mut c);
    s.shutdown();
}
