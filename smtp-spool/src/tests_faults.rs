//! Fault injection: a failure at any step of a commit yields an error (never an id), leaves
//! no tmp file, and the spool keeps working.

use proptest::prelude::*;

use super::memfs::Op;
use super::tests::{body, envelope, names, open_mem, read_all, store};
use super::*;

fn enospc() -> i32 {
    rustix::io::Errno::NOSPC.raw_os_error()
}

/// Stores one message of `len` bytes with the `nth` operation of kind `op` failing.
fn store_with_fault(
    op: Op,
    nth: u64,
    errno: i32,
    len: usize,
) -> (MemFs, Spool, Result<QueueId, SpoolError>) {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    fs.fail_with(op, nth, errno);
    let res = store(&spool, 1, len);
    fs.clear_faults();
    (fs, spool, res)
}

#[test]
fn a_failure_at_each_step_is_reported_and_cleaned_up() {
    let eio = rustix::io::Errno::IO.raw_os_error();
    for (op, len) in [
        (Op::CreateNew, 10),
        (Op::Write, 10),        // the only write happens at commit time
        (Op::Write, 1_000_000), // a write while streaming
        (Op::Sync, 10),
        (Op::Rename, 10),
        (Op::FsyncDir, 10),
    ] {
        for errno in [eio, enospc()] {
            let (fs, spool, res) = store_with_fault(op, 1, errno, len);
            let err = match res {
                Ok(id) => panic!("{op:?}: got id {id} despite the fault"),
                Err(e) => e,
            };
            let expected = if errno == enospc() { 452 } else { 451 };
            assert_eq!(err.reply().code, expected, "{op:?} {errno}: {err}");
            assert!(names(&fs, "tmp").is_empty(), "{op:?}: tmp file left");
            assert!(
                names(&fs, "queue").is_empty(),
                "{op:?}: failed message queued"
            );
            assert_eq!(spool.stats().commits, 0);
            // The spool still works, and a restart finds only what was acknowledged.
            let id = store(&spool, 2, 3000).unwrap();
            drop(spool);
            fs.power_cut();
            let spool = open_mem(&fs);
            assert_eq!(spool.recovery_report().recovered, 1, "{op:?}");
            assert_eq!(read_all(&spool, id), body(2, 3000));
        }
    }
}

#[test]
fn write_errors_stick() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let mut w = spool.begin(&envelope(1)).unwrap();
    fs.fail(Op::Write, 1);
    assert!(w.write_all(&body(1, 200_000)).is_err());
    fs.clear_faults();
    let again = w.write_all(b"more").unwrap_err();
    assert_eq!(again.reply().code, 451);
    assert!(spool.commit_blocking(w).is_err());
    assert!(names(&fs, "tmp").is_empty());
    assert!(names(&fs, "queue").is_empty());
}

#[test]
fn a_failed_directory_fsync_fails_the_whole_batch() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    fs.set_fsync_dir_delay(std::time::Duration::from_millis(20));
    fs.fail(Op::FsyncDir, 1);
    let results: Vec<Result<QueueId, SpoolError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|n| {
                let spool = spool.clone();
                s.spawn(move || store(&spool, n, 100))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok: Vec<QueueId> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert!(ok.len() < 16, "the failed fsync failed nobody");
    // Only acknowledged messages are in the queue, and they survive a power cut.
    let mut queued: Vec<String> = names(&fs, "queue");
    queued.sort();
    let mut expected: Vec<String> = ok.iter().map(|id| id.to_string()).collect();
    expected.sort();
    assert_eq!(queued, expected);
    drop(spool);
    fs.power_cut();
    let spool = open_mem(&fs);
    assert_eq!(spool.recovery_report().recovered, ok.len());
}

#[test]
fn every_sync_failing_fails_every_commit() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    fs.fail(Op::Sync, 0);
    let w = spool.begin(&envelope(1)).unwrap();
    assert!(spool.commit_blocking(w).is_err());
    assert!(names(&fs, "tmp").is_empty());
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::CreateNew),
        Just(Op::Write),
        Just(Op::Sync),
        Just(Op::Rename),
        Just(Op::FsyncDir),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// A run of commits with one fault somewhere, then a power cut: recovery finds exactly
    /// the acknowledged messages, byte-exact.
    #[test]
    fn one_fault_then_power_cut(op in any_op(), nth in 1u64..12, sizes in proptest::collection::vec(0usize..150_000, 1..8)) {
        let fs = MemFs::new();
        let spool = open_mem(&fs);
        fs.fail(op, nth);
        let mut acked = Vec::new();
        for (n, len) in sizes.iter().enumerate() {
            if let Ok(id) = store(&spool, n, *len) {
                acked.push((n, *len, id));
            }
        }
        drop(spool);
        fs.clear_faults();
        fs.power_cut();
        let spool = open_mem(&fs);
        prop_assert_eq!(spool.recovery_report().quarantined, 0);
        let listed: Vec<QueueId> = spool.list().unwrap().into_iter().map(|e| e.id).collect();
        prop_assert_eq!(listed, acked.iter().map(|a| a.2).collect::<Vec<_>>());
        for (n, len, id) in acked {
            prop_assert_eq!(spool.read_envelope(id).unwrap(), envelope(n));
            prop_assert_eq!(read_all(&spool, id), body(n, len));
        }
    }
}
