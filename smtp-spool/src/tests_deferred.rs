//! The event loop's side of the spool: deferred writers that make no system call on the
//! caller's thread, buffers written out by spool threads, messages abandoned without blocking.

use std::sync::Arc;
use std::time::Duration;

use super::memfs::Op;
use super::tests::{body, envelope, names, read_all, ROOT};
use super::*;

fn open_small(fs: &MemFs, buffer_size: usize) -> Spool {
    let options = SpoolOptions {
        tmp_stock: 0,
        buffer_size,
        ..SpoolOptions::default()
    };
    Spool::open_with(ROOT, options, Arc::new(fs.clone())).unwrap()
}

/// `flush_behind`, waiting for the writer to come back.
fn flush(spool: &Spool, w: SpoolWriter) -> SpoolWriter {
    let (tx, rx) = crossbeam_channel::bounded(1);
    spool.flush_behind(
        w,
        Box::new(move |w| {
            let _ = tx.send(w);
        }),
    );
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the writer comes back")
}

/// Feeds `data` as an event loop does: into the buffer, flushing behind when it is full.
fn stream(spool: &Spool, mut w: SpoolWriter, data: &[u8], chunk: usize) -> SpoolWriter {
    let cap = w.buffer_capacity();
    for piece in data.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let n = w.write_buffered(rest);
            rest = &rest[n..];
            if !rest.is_empty() {
                assert_eq!(w.spare(), 0, "a partial take means a full buffer");
                w = flush(spool, w);
                assert_eq!(w.spare(), cap, "the writer comes back empty");
            }
            assert_eq!(w.buffer_capacity(), cap, "the buffer never grows");
        }
    }
    w
}

#[test]
fn a_deferred_writer_makes_no_system_call_until_a_spool_thread_writes() {
    let fs = MemFs::new();
    let spool = open_small(&fs, 64 * 1024);
    let before = (fs.count(Op::CreateNew), fs.count(Op::Write));
    let mut w = spool
        .begin_deferred(&envelope(1), b"Received: from x\r\n")
        .unwrap();
    assert_eq!(w.write_buffered(&body(1, 5000)), 5000);
    assert_eq!(
        (fs.count(Op::CreateNew), fs.count(Op::Write)),
        before,
        "no file created or written on the caller's thread"
    );
    assert!(names(&fs, "tmp").is_empty());
    let id = spool.commit_blocking(w).unwrap();
    assert_eq!(fs.count(Op::CreateNew), before.0 + 1);
    let mut want = b"Received: from x\r\n".to_vec();
    want.extend_from_slice(&body(1, 5000));
    assert_eq!(read_all(&spool, id), want);
    assert!(names(&fs, "tmp").is_empty());
}

#[test]
fn a_message_streams_through_flush_behind_byte_exact() {
    let fs = MemFs::new();
    let spool = open_small(&fs, 4096);
    let data = body(2, 1 << 20);
    for chunk in [1, 4095, 4096, 4097, 65_536] {
        let w = spool.begin_deferred(&envelope(2), b"").unwrap();
        let w = stream(&spool, w, &data, chunk);
        let id = spool.commit_blocking(w).unwrap();
        assert_eq!(read_all(&spool, id), data, "chunks of {chunk}");
    }
    assert!(names(&fs, "tmp").is_empty());
}

#[test]
fn discard_behind_removes_only_a_file_that_exists() {
    let fs = MemFs::new();
    let spool = open_small(&fs, 4096);
    // Never written out: nothing on disk, nothing to remove.
    let mut w = spool.begin_deferred(&envelope(3), b"").unwrap();
    w.write_buffered(&body(3, 100));
    let removes = fs.count(Op::Remove);
    spool.discard_behind(w);
    assert_eq!(fs.count(Op::Remove), removes);
    // Written out once: a spool thread removes the file.
    let w = spool.begin_deferred(&envelope(4), b"").unwrap();
    let w = stream(&spool, w, &body(4, 10_000), 3000);
    assert_eq!(names(&fs, "tmp").len(), 1);
    spool.discard_behind(w);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !names(&fs, "tmp").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(names(&fs, "tmp").is_empty(), "the tmp file is removed");
    assert_eq!(fs.count(Op::Remove), removes + 1);
    assert!(names(&fs, "queue").is_empty());
}

#[test]
fn a_failed_write_behind_sticks_and_fails_the_commit() {
    let fs = MemFs::new();
    let spool = open_small(&fs, 4096);
    fs.fail_with(Op::Write, 2, rustix::io::Errno::NOSPC.raw_os_error());
    let w = spool.begin_deferred(&envelope(5), b"").unwrap();
    let w = stream(&spool, w, &body(5, 20_000), 1000);
    let err = spool.commit_blocking(w).unwrap_err();
    assert!(err.is_no_space(), "{err}");
    assert_eq!(err.reply().code, 452);
    assert!(names(&fs, "queue").is_empty(), "nothing queued");
    assert!(names(&fs, "tmp").is_empty(), "the tmp file is removed");
}

#[test]
fn an_envelope_larger_than_the_buffer_is_buffered_once_then_the_buffer_is_fixed_again() {
    let fs = MemFs::new();
    let spool = open_small(&fs, 4096);
    let mut env = envelope(6);
    for n in 0..500 {
        env.recipients
            .push(Recipient::new(format!("recipient-number-{n}@example.com")));
    }
    let w = spool.begin_deferred(&env, b"Received: y\r\n").unwrap();
    assert_eq!(w.spare(), 0);
    let w = flush(&spool, w);
    assert_eq!(w.spare(), w.buffer_capacity());
    assert!(w.buffer_capacity() < 8192, "{}", w.buffer_capacity());
    let data = body(6, 50_000);
    let w = stream(&spool, w, &data, 7000);
    let id = spool.commit_blocking(w).unwrap();
    let mut want = b"Received: y\r\n".to_vec();
    want.extend_from_slice(&data);
    assert_eq!(read_all(&spool, id), want);
    assert_eq!(spool.read_envelope(id).unwrap().recipients.len(), 502);
}

#[test]
fn flush_behind_on_a_closed_spool_hands_the_writer_back_failed() {
    let fs = MemFs::new();
    let spool = open_small(&fs, 4096);
    let w = spool.begin_deferred(&envelope(7), b"").unwrap();
    spool.inner.writes.close();
    spool.inner.jobs.close();
    let w = flush(&spool, w);
    assert!(spool.commit_blocking(w).is_err());
}
