//! CHUNKING / BDAT inbound over real sockets: Impulse's own client (`impulse send
//! --chunking`) as the peer, scripted BDAT sessions (refused chunks read and dropped,
//! malformed counts, a disconnect mid-chunk), a BDAT body relayed on by DATA, and the queue
//! id and `for` clause of the `Received:` header.
// A test plays the peers: it reads clocks and starts threads.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use impulse_test_support::cli;
use impulse_test_support::server::TestServer;
use smtp_server::config::BareLineEndingPolicy;

/// A TCP relay for one connection that records what the client sent.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    fn start(to: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = sent.clone();
        let thread = std::thread::spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let server = TcpStream::connect(to).unwrap();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let upstream = std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            record.lock().unwrap().extend_from_slice(&buf[..n]);
                            if s_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s_write.shutdown(Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            let _ = std::io::copy(&mut s_read, &mut c_write);
            let _ = c_write.shutdown(Shutdown::Write);
            let _ = upstream.join();
        });
        Recorder {
            addr,
            sent,
            thread: Some(thread),
        }
    }

    fn sent(mut self) -> String {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }
}

fn with_policy(policy: BareLineEndingPolicy) -> TestServer {
    TestServer::builder()
        .no_tmp_stock()
        .config(|c| c.smtp.bare_line_endings = policy)
        .start()
}

/// The `Received:` header of a stored message and the rest.
fn split_received(stored: &[u8]) -> (String, Vec<u8>) {
    let semi = stored
        .iter()
        .position(|&b| b == b';')
        .expect("a Received: header");
    let end = semi
        + stored[semi..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap()
        + 2;
    (
        String::from_utf8_lossy(&stored[..end]).into_owned(),
        stored[end..].to_vec(),
    )
}

#[test]
fn impulse_send_chunking_is_received_as_sent_with_the_queue_id_in_received() {
    let mx = TestServer::start();
    let proxy = Recorder::start(mx.addr);
    let server = proxy.addr.to_string();
    let body = b"Subject: chunked\r\n\r\n.leading dot\r\n\r\n.\r\nnot the end\r\n";
    let out = impulse_test_support::impulse!().send(
        &cli::to_server(
            &server,
            &["--chunking", "--helo", "client.test", "--data", "-"],
        ),
        Some(body),
    );
    let stdout = cli::succeeded(&out);
    assert!(
        stdout.contains("delivered: 250 2.0.0 Ok: queued as "),
        "{stdout}"
    );
    let wire = proxy.sent();
    assert!(
        wire.contains(&format!("BDAT {} LAST\r\n", body.len())),
        "{wire}"
    );
    assert!(!wire.contains("DATA\r\n"), "{wire}");
    let ids = mx.queued();
    assert_eq!(ids.len(), 1);
    let (received, rest) = split_received(&mx.stored(ids[0]));
    assert_eq!(rest, body, "stored as sent, no unstuffing");
    assert!(
        received.contains(&format!(
            " (Impulse) with ESMTP id {}\r\n\tfor <b@example.com>; ",
            ids[0]
        )),
        "{received}"
    );
    assert!(
        stdout.contains(&format!("queued as {}", ids[0])),
        "{stdout}"
    );
    mx.stop();
}

#[test]
fn the_queue_id_is_in_received_for_data_too_and_each_message_has_its_own() {
    let mx = TestServer::start();
    let mut c = mx.connect();
    assert!(c.cmd("EHLO client.test").contains("CHUNKING"));
    for n in 0..2 {
        assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
        assert!(c.cmd("RCPT TO:<b@example.com>").starts_with("250"));
        if n == 0 {
            // Two recipients: no `for` clause.
            assert!(c.cmd("RCPT TO:<c@example.com>").starts_with("250"));
        }
        assert!(c.cmd("DATA").starts_with("354"));
        let reply = c.cmd("Subject: x\r\n\r\nhi\r\n.");
        assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    let ids = mx.queued();
    assert_eq!(ids.len(), 2);
    let (first, _) = split_received(&mx.stored(ids[0]));
    let (second, _) = split_received(&mx.stored(ids[1]));
    assert!(
        first.contains(&format!("with ESMTP id {}; ", ids[0])),
        "{first}"
    );
    assert!(
        second.contains(&format!(
            "with ESMTP id {}\r\n\tfor <b@example.com>; ",
            ids[1]
        )),
        "{second}"
    );
    mx.stop();
}

#[test]
fn refused_chunks_are_read_and_malformed_counts_close() {
    let mx = TestServer::builder()
        .config(|c| c.limits.message_size = 65_536)
        .start();
    let mut c = mx.connect();
    c.cmd("EHLO client.test");
    // No MAIL: 503, and the chunk's octets (a whole transaction) are not commands.
    let smuggled = "MAIL FROM:<x@example.org>\r\nRCPT TO:<b@example.com>\r\n";
    c.send(format!("BDAT {} LAST\r\n{smuggled}NOOP\r\n", smuggled.len()).as_bytes());
    assert_eq!(c.reply(), "503 5.5.1 Error: need MAIL command");
    assert_eq!(c.reply(), "250 2.0.0 Ok");
    // Over SIZE: 552 before reading, the chunk still dropped, refused until RSET.
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 10\r\n0123456789");
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    assert_eq!(c.reply(), "250 2.0.0 Ok: 10 octets");
    // 10 + 65527 > 65536. The octets look like commands: they must not be taken for any.
    let mut big = "NOOP\r\n".repeat(65_527 / 6);
    big.push('x');
    assert_eq!(big.len(), 65_527);
    c.send(format!("BDAT 65527\r\n{big}BDAT 1 LAST\r\nQ").as_bytes());
    assert_eq!(
        c.reply(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(
        c.reply(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(
        c.cmd("DATA"),
        "503 5.5.1 Error: DATA after BDAT in one transaction"
    );
    assert_eq!(c.cmd("RSET"), "250 2.0.0 Ok");
    // A malformed count cannot be resynchronised.
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 5 LASTX\r\nNOOP\r\n");
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("250"));
    assert_eq!(
        c.reply(),
        "501 5.5.4 Error: invalid BDAT chunk size, closing"
    );
    assert_eq!(c.rest(), "");
    assert_eq!(mx.count(), 0);
    mx.stop();
}

#[test]
fn a_client_that_disconnects_mid_chunk_leaves_nothing() {
    let mx = TestServer::builder().no_tmp_stock().start();
    let mut c = mx.connect();
    c.cmd("EHLO client.test");
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n");
    c.reply();
    c.reply();
    c.send(b"BDAT 10\r\n0123456789");
    assert_eq!(c.reply(), "250 2.0.0 Ok: 10 octets");
    c.send(b"BDAT 100000 LAST\r\nSubject: half a chunk\r\n");
    drop(c);
    let tmp = mx.spool.dir().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = std::fs::read_dir(&tmp).map_or(0, |d| d.count());
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} files left in tmp/");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mx.count(), 0);
    mx.stop();
}

/// A BDAT body that would carry a second message if a relay passed its bare LFs on in DATA.
const SMUGGLE: &[u8] = b"Subject: one\r\n\r\nx\n.\nMAIL FROM:<evil@example.org>\r\n\
RCPT TO:<victim@example.com>\r\nDATA\r\nSubject: two\r\n\r\n.\r\nend\r\n";

fn bdat_in(mx: &TestServer, body: &[u8]) -> String {
    let mut c = mx.connect();
    c.cmd("EHLO client.test");
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n");
    c.reply();
    c.reply();
    let mut chunk = format!("BDAT {} LAST\r\n", body.len()).into_bytes();
    chunk.extend_from_slice(body);
    c.send(&chunk);
    let reply = c.reply();
    c.cmd("QUIT");
    reply
}

#[test]
fn bdat_in_then_data_out_carries_one_message() {
    // The default policy refuses bare line endings in a BDAT body as in a DATA one.
    let mx = TestServer::start();
    assert_eq!(
        bdat_in(&mx, SMUGGLE),
        "550 5.5.2 Message contains bare CR or LF"
    );
    assert_eq!(mx.count(), 0);
    mx.stop();

    for policy in [BareLineEndingPolicy::Normalize, BareLineEndingPolicy::Keep] {
        let mx = with_policy(policy);
        let reply = bdat_in(&mx, SMUGGLE);
        assert!(
            reply.starts_with("250 2.0.0 Ok: queued as "),
            "{policy:?}: {reply}"
        );
        let stored = mx.stored(mx.queued()[0]);
        let (_, body) = split_received(&stored);
        match policy {
            BareLineEndingPolicy::Keep => assert_eq!(body, SMUGGLE),
            _ => assert!(!body.windows(3).any(|w| w == b"x\n."), "{body:?}"),
        }
        // Relayed on by DATA (Impulse's client dot-stuffs and normalises) to a next hop
        // that keeps bare line endings: one message, with the whole body in it.
        let next = with_policy(BareLineEndingPolicy::Keep);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("message");
        std::fs::write(&file, &stored).unwrap();
        let server = next.addr.to_string();
        let out = impulse_test_support::impulse!().send(
            &cli::to_server(&server, &["--data", file.to_str().unwrap()]),
            None,
        );
        cli::succeeded(&out);
        assert_eq!(next.count(), 1, "{policy:?}: one message at the next hop");
        let relayed = next.stored(next.queued()[0]);
        let text = String::from_utf8_lossy(&relayed);
        assert!(text.contains("Subject: one\r\n"), "{text}");
        assert!(text.contains("MAIL FROM:<evil@example.org>\r\n"), "{text}");
        assert!(text.ends_with(".\r\nend\r\n"), "{text}");
        assert_eq!(text.matches("Received: ").count(), 2, "{text}");
        next.stop();
        mx.stop();
    }
}
