//! Spool tests: round trips through crash and restart, streaming, group commit, recovery.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use super::format::tests::any_envelope;
use super::memfs::Op;
use super::*;

pub(crate) const ROOT: &str = "/spool";

pub(crate) fn envelope(n: usize) -> Envelope {
    Envelope {
        sender: format!("sender{n}@example.org"),
        mail_params: "SIZE=100 BODY=8BITMIME".into(),
        recipients: vec![
            Recipient::new(format!("rcpt{n}@example.com")),
            Recipient {
                address: "second@example.com".into(),
                params: "NOTIFY=NEVER".into(),
            },
        ],
        peer: "192.0.2.7:40000".into(),
        helo: "client.example.org".into(),
        received: 1_700_000_000 + n as u64,
        tls: None,
        auth: Some("alice".into()),
        notes: vec!["note\r\nX-Injected: yes".into()],
    }
}

pub(crate) fn body(n: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ n.wrapping_mul(7)) as u8)
        .collect()
}

/// A spool on `fs` without the tmp-file stock, so that `tmp/` holds only messages in flight.
pub(crate) fn open_mem(fs: &MemFs) -> Spool {
    let options = SpoolOptions {
        tmp_stock: 0,
        ..SpoolOptions::default()
    };
    Spool::open_with(ROOT, options, Arc::new(fs.clone())).unwrap()
}

/// Waits up to 5 s for `cond`.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cond()
}

#[test]
fn the_tmp_stock_is_used_refilled_and_removed_on_close() {
    let fs = MemFs::new();
    let options = SpoolOptions {
        tmp_stock: 4,
        ..SpoolOptions::default()
    };
    let spool = Spool::open_with(ROOT, options, Arc::new(fs.clone())).unwrap();
    assert!(
        eventually(|| names(&fs, "tmp").len() >= 4),
        "the stock fills up"
    );
    let stocked = names(&fs, "tmp");
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(store(&spool, n, 3000).unwrap());
    }
    // The first message went into a stocked file, under a fresh queue id.
    assert!(!stocked.contains(&ids[0].to_string()));
    let mut queued = names(&fs, "queue");
    queued.sort();
    let mut want: Vec<String> = ids.iter().map(ToString::to_string).collect();
    want.sort();
    assert_eq!(queued, want);
    for (n, id) in ids.iter().enumerate() {
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut spool.open_message(*id).unwrap(), &mut got).unwrap();
        assert_eq!(got, body(n, 3000));
    }
    // Refilled once half empty.
    assert!(
        eventually(|| names(&fs, "tmp").len() > 4 / 2),
        "the stock refills"
    );
    drop(spool);
    assert!(
        eventually(|| names(&fs, "tmp").is_empty()),
        "stocked files removed"
    );
}

pub(crate) fn store(spool: &Spool, n: usize, len: usize) -> Result<QueueId, SpoolError> {
    let mut w = spool.begin(&envelope(n))?;
    w.write_all(&body(n, len))?;
    spool.commit_blocking(w)
}

pub(crate) fn read_all(spool: &Spool, id: QueueId) -> Vec<u8> {
    let mut out = Vec::new();
    spool
        .open_message(id)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub(crate) fn names(fs: &MemFs, dir: &str) -> Vec<String> {
    fs.read_dir(&Path::new(ROOT).join(dir)).unwrap()
}

#[test]
fn commit_list_read_remove() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let id = store(&spool, 1, 5000).unwrap();
    assert!(names(&fs, "tmp").is_empty());
    assert_eq!(names(&fs, "queue"), vec![id.to_string()]);
    let list = spool.list().unwrap();
    assert_eq!(
        list,
        vec![SpoolEntrySummary {
            id,
            sender: "sender1@example.org".into(),
            recipients: vec!["rcpt1@example.com".into(), "second@example.com".into()],
            size: 5000,
            received: 1_700_000_001,
        }]
    );
    assert_eq!(spool.read_envelope(id).unwrap(), envelope(1));
    assert_eq!(read_all(&spool, id), body(1, 5000));
    spool.remove(id).unwrap();
    assert!(matches!(spool.remove(id), Err(SpoolError::NotFound(_))));
    assert!(matches!(
        spool.read_envelope(id),
        Err(SpoolError::NotFound(_))
    ));
    assert!(spool.list().unwrap().is_empty());
    assert_eq!(spool.stats().commits, 1);
}

#[test]
fn abort_and_drop_remove_the_tmp_file() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let mut w = spool.begin(&envelope(1)).unwrap();
    w.write_all(&body(1, 100_000)).unwrap();
    assert_eq!(names(&fs, "tmp").len(), 1);
    w.abort();
    assert!(names(&fs, "tmp").is_empty());
    let w = spool.begin(&envelope(2)).unwrap();
    assert_eq!(names(&fs, "tmp").len(), 1);
    drop(w);
    assert!(names(&fs, "tmp").is_empty());
    assert!(names(&fs, "queue").is_empty());
}

#[test]
fn operator_ids_cannot_escape_the_queue() {
    for bad in [
        "../x",
        "../../etc/passwd",
        "/etc/passwd",
        "",
        "0123456789abcdef012/",
    ] {
        assert!(QueueId::parse(bad).is_err(), "{bad:?}");
    }
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let missing = QueueId::parse("0123456789abcdef0123").unwrap();
    assert!(matches!(
        spool.open_message(missing),
        Err(SpoolError::NotFound(_))
    ));
}

#[test]
fn free_space_check() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    fs.set_available_space(149);
    let err = spool.check_free_space(100).unwrap_err();
    assert_eq!(
        err.reply().to_string(),
        "452 4.3.1 Insufficient system storage"
    );
    fs.set_available_space(150);
    spool.check_free_space(100).unwrap();
    // The real file system answers too.
    let dir = tempfile::tempdir().unwrap();
    let real = Spool::open(dir.path()).unwrap();
    real.check_free_space(1024).unwrap();
    assert!(real
        .check_free_space(u64::MAX / 2)
        .unwrap_err()
        .is_no_space());
}

#[test]
fn large_message_streams_through_a_fixed_buffer() {
    const TOTAL: usize = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let mut w = spool.begin(&envelope(9)).unwrap();
    let cap = w.buffer_capacity();
    assert_eq!(cap, SpoolOptions::default().buffer_size);
    // Chunks of varied sizes: smaller and larger than the buffer.
    let chunk = body(9, 300_000);
    let sizes = [
        1usize, 17, 4096, 65_535, 65_536, 65_537, 200_000, 300_000, 1000,
    ];
    let mut written = 0;
    let mut crc = crc32fast::Hasher::new();
    let mut i = 0;
    while written < TOTAL {
        let n = sizes[i % sizes.len()].min(TOTAL - written);
        w.write_all(&chunk[..n]).unwrap();
        crc.update(&chunk[..n]);
        written += n;
        i += 1;
        assert_eq!(
            w.buffer_capacity(),
            cap,
            "buffer grew after {written} bytes"
        );
    }
    let id = spool.commit_blocking(w).unwrap();
    let mut r = spool.open_message(id).unwrap();
    assert_eq!(r.len(), TOTAL as u64);
    let mut buf = vec![0u8; 1 << 16];
    let mut back = crc32fast::Hasher::new();
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        back.update(&buf[..n]);
        total += n;
    }
    assert_eq!(total, TOTAL);
    assert_eq!(back.finalize(), crc.finalize());
    // And it survives a restart (recovery verifies the 64 MiB checksum).
    drop(spool);
    let spool = Spool::open(dir.path()).unwrap();
    assert_eq!(spool.recovery_report().recovered, 1);
}

#[test]
fn group_commit_shares_directory_fsyncs() {
    const THREADS: usize = 20;
    const EACH: usize = 10;
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    fs.set_fsync_dir_delay(Duration::from_millis(3));
    let before = fs.count(Op::FsyncDir);
    let ids = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let spool = spool.clone();
            let ids = ids.clone();
            s.spawn(move || {
                for k in 0..EACH {
                    let id = store(&spool, t * 100 + k, 4096).unwrap();
                    ids.lock().unwrap().push(id);
                }
            });
        }
    });
    let ids = ids.lock().unwrap().clone();
    let unique: BTreeSet<_> = ids.iter().copied().collect();
    assert_eq!(unique.len(), THREADS * EACH);
    let stats = spool.stats();
    let dir_fsyncs = fs.count(Op::FsyncDir) - before;
    assert_eq!(stats.commits, (THREADS * EACH) as u64);
    assert_eq!(stats.dir_fsyncs, dir_fsyncs);
    assert!(
        dir_fsyncs * 2 < stats.commits,
        "{dir_fsyncs} directory fsyncs for {} commits",
        stats.commits
    );
    // Every commit also has its own file fsync.
    assert_eq!(fs.count(Op::Sync), (THREADS * EACH) as u64);
    assert_eq!(spool.list().unwrap().len(), THREADS * EACH);
}

#[test]
fn async_commit_calls_back_once() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let (tx, rx) = crossbeam_channel::unbounded();
    for n in 0..8 {
        let mut w = spool.begin(&envelope(n)).unwrap();
        w.write_all(&body(n, 10)).unwrap();
        let tx = tx.clone();
        spool.commit(w, Box::new(move |r| tx.send((n, r)).unwrap()));
    }
    drop(tx);
    let mut got: Vec<_> = rx.iter().map(|(n, r)| (n, r.unwrap())).collect();
    got.sort();
    assert_eq!(got.len(), 8);
    for (n, id) in got {
        assert_eq!(spool.read_envelope(id).unwrap(), envelope(n));
    }
}

#[test]
fn power_cut_keeps_exactly_the_acknowledged_messages() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let mut acked = Vec::new();
    for n in 0..5 {
        acked.push((n, store(&spool, n, 1000 * n + 1).unwrap()));
    }
    // Received but not committed.
    let mut open = spool.begin(&envelope(50)).unwrap();
    open.write_all(&body(50, 200_000)).unwrap();
    // Committed, but the cut falls during the directory fsync: no Ok may come back.
    fs.set_fsync_dir_delay(Duration::from_millis(300));
    let mut w = spool.begin(&envelope(51)).unwrap();
    w.write_all(&body(51, 10)).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    spool.commit(w, Box::new(move |r| tx.send(r).unwrap()));
    std::thread::sleep(Duration::from_millis(100));
    fs.power_cut();
    assert!(
        rx.recv().unwrap().is_err(),
        "acknowledged across a power cut"
    );
    fs.set_fsync_dir_delay(Duration::ZERO);
    drop(open);
    drop(spool);

    let spool = open_mem(&fs);
    let report = spool.recovery_report();
    assert_eq!(report.recovered, 5);
    assert_eq!(report.quarantined, 0);
    let listed: Vec<QueueId> = spool.list().unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(listed, acked.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    for (n, id) in acked {
        assert_eq!(spool.read_envelope(id).unwrap(), envelope(n));
        assert_eq!(read_all(&spool, id), body(n, 1000 * n + 1));
    }
    assert!(names(&fs, "tmp").is_empty());
}

#[test]
fn recovery_removes_tmp_files_and_quarantines_damage() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let good = store(&spool, 1, 100).unwrap();
    let bad = store(&spool, 2, 100).unwrap();
    drop(spool);
    let q = Path::new(ROOT).join("queue");
    // A flipped byte in the body.
    let mut bytes = fs.read(&q.join(bad.as_str())).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs.put_durable(&q.join(bad.as_str()), &bytes);
    // A truncated file (no END record), a stray name, a file holding another id.
    let trunc = QueueId::from_parts(5, 5);
    let full = encode_file(&trunc, &envelope(5), b"body").unwrap();
    fs.put_durable(&q.join(trunc.as_str()), &full[..full.len() - 3]);
    fs.put_durable(&q.join("junk"), b"not a spool file");
    let misnamed = QueueId::from_parts(6, 6);
    fs.put_durable(
        &q.join(misnamed.as_str()),
        &encode_file(&QueueId::from_parts(7, 7), &envelope(7), b"x").unwrap(),
    );
    // Leftovers in tmp/, one complete.
    let t = Path::new(ROOT).join("tmp");
    fs.put_durable(&t.join("00000000000000000001"), b"IMPSPOOL\0\x01");
    fs.put_durable(&t.join("00000000000000000002"), &full);

    let spool = open_mem(&fs);
    assert_eq!(
        spool.recovery_report(),
        RecoveryReport {
            recovered: 1,
            tmp_removed: 2,
            quarantined: 4,
            states_removed: 0,
        }
    );
    let quarantined: BTreeSet<String> = names(&fs, "quarantine").into_iter().collect();
    let expected: BTreeSet<String> = [
        bad.to_string(),
        trunc.to_string(),
        "junk".into(),
        misnamed.to_string(),
    ]
    .into_iter()
    .collect();
    assert_eq!(quarantined, expected);
    // Quarantined bytes are kept as they were.
    assert_eq!(
        fs.read(&Path::new(ROOT).join("quarantine").join(bad.as_str()))
            .unwrap(),
        bytes
    );
    assert_eq!(names(&fs, "queue"), vec![good.to_string()]);
    assert!(names(&fs, "tmp").is_empty());
    // A second damaged file of the same name does not overwrite the first.
    drop(spool);
    fs.put_durable(&q.join("junk"), b"again");
    let _spool = open_mem(&fs);
    assert!(names(&fs, "quarantine").contains(&"junk.1".to_string()));
}

#[test]
fn checksum_mismatch_fails_the_reader_at_the_end() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let id = store(&spool, 3, 1000).unwrap();
    let path = Path::new(ROOT).join("queue").join(id.as_str());
    let mut bytes = fs.read(&path).unwrap();
    let n = bytes.len();
    bytes[n - TRAILER_LEN - 1] ^= 1;
    fs.put_durable(&path, &bytes);
    let mut out = Vec::new();
    let err = spool
        .open_message(id)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Every field and every byte survives write → power cut → restart → parse.
    #[test]
    fn arbitrary_envelopes_survive_a_power_cut(env in any_envelope(), body in proptest::collection::vec(any::<u8>(), 0..70_000)) {
        let fs = MemFs::new();
        let spool = open_mem(&fs);
        let mut w = spool.begin(&env).unwrap();
        w.write_all(&body).unwrap();
        let id = spool.commit_blocking(w).unwrap();
        drop(spool);
        fs.power_cut();
        let spool = open_mem(&fs);
        prop_assert_eq!(spool.recovery_report().recovered, 1);
        prop_assert_eq!(spool.read_envelope(id).unwrap(), env);
        prop_assert_eq!(read_all(&spool, id), body);
    }
}

#[test]
fn commit_watchers_see_each_durable_id_once_from_every_clone() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let before = store(&spool, 1, 10).unwrap();
    let watch = spool.watch_commits();
    let clone = spool.clone();
    let a = store(&spool, 2, 100).unwrap();
    let b = store(&clone, 3, 100).unwrap();
    let seen: Vec<QueueId> = watch.try_iter().collect();
    assert_eq!(
        seen,
        vec![a, b],
        "{before} was committed before the watch began"
    );
    // An aborted message is never announced.
    let w = spool.begin(&envelope(4)).unwrap();
    w.abort();
    assert!(watch.try_recv().is_err());
    // A dropped watcher does not stop commits.
    drop(watch);
    store(&spool, 5, 10).unwrap();
}

#[test]
fn one_process_owns_a_spool_and_inspection_needs_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path()).unwrap();
    match Spool::open(dir.path()) {
        Err(SpoolError::Locked { pid, path }) => {
            assert_eq!(pid, Some(std::process::id()));
            assert_eq!(path, dir.path());
        }
        other => panic!("a second owner: {other:?}"),
    }
    let inspect = SpoolOptions {
        recover: false,
        ..SpoolOptions::default()
    };
    let look = Spool::open_with(dir.path(), inspect, Arc::new(RealIo)).unwrap();
    assert!(look.list().unwrap().is_empty());
    drop(first);
    let again = Spool::open(dir.path()).expect("the lock goes with its owner");
    let e = Spool::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("in use by another process"), "{e}");
    drop(again);
}
