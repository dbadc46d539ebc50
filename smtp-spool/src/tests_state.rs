//! State record tests: framing, atomic replace across power cuts, removal order, recovery of
//! orphans, quarantine.

use std::path::Path;

use proptest::prelude::*;

use super::memfs::Op;
use super::tests::{names, open_mem, store, ROOT};
use super::*;

#[test]
fn a_record_is_written_read_and_replaced() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let id = store(&spool, 1, 100).unwrap();
    assert_eq!(spool.read_state(id).unwrap(), None, "no record yet");
    spool.write_state(id, b"first").unwrap();
    assert_eq!(
        spool.read_state(id).unwrap().as_deref(),
        Some(&b"first"[..])
    );
    spool.write_state(id, b"second, longer").unwrap();
    assert_eq!(
        spool.read_state(id).unwrap().as_deref(),
        Some(&b"second, longer"[..])
    );
    assert_eq!(names(&fs, "state"), vec![id.to_string()]);
    assert!(names(&fs, "tmp").is_empty(), "no temporary file left");
    assert!(matches!(
        spool.write_state(id, &vec![0; MAX_STATE_LEN + 1]),
        Err(SpoolError::StateTooLarge(_))
    ));
}

#[test]
fn an_acknowledged_record_survives_a_power_cut_and_a_failed_one_leaves_the_old() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let id = store(&spool, 1, 100).unwrap();
    spool.write_state(id, b"v1").unwrap();
    // The next replace fails at its file sync: v1 must stay, whole.
    fs.fail(Op::Sync, 0);
    assert!(spool.write_state(id, b"v2").is_err());
    fs.clear_faults();
    assert_eq!(spool.read_state(id).unwrap().as_deref(), Some(&b"v1"[..]));
    // A replace whose directory fsync never happens is lost in a cut, v1 is not.
    fs.fail(Op::FsyncDir, 0);
    assert!(spool.write_state(id, b"v3").is_err());
    fs.clear_faults();
    drop(spool);
    fs.power_cut();
    let spool = open_mem(&fs);
    assert_eq!(spool.read_state(id).unwrap().as_deref(), Some(&b"v1"[..]));
    spool.write_state(id, b"v4").unwrap();
    drop(spool);
    fs.power_cut();
    let spool = open_mem(&fs);
    assert_eq!(spool.read_state(id).unwrap().as_deref(), Some(&b"v4"[..]));
    assert_eq!(spool.recovery_report().states_removed, 0);
}

#[test]
fn remove_takes_the_record_and_recovery_removes_orphans() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let kept = store(&spool, 1, 100).unwrap();
    let gone = store(&spool, 2, 100).unwrap();
    spool.write_state(kept, b"kept").unwrap();
    spool.write_state(gone, b"gone").unwrap();
    spool.remove(gone).unwrap();
    assert_eq!(names(&fs, "state"), vec![kept.to_string()]);
    // A crash between removing a message and its record leaves an orphan record.
    let orphan = QueueId::from_parts(1, 2);
    fs.put_durable(
        &Path::new(ROOT).join("state").join(orphan.as_str()),
        &encode_state(b"orphan").unwrap(),
    );
    drop(spool);
    let spool = open_mem(&fs);
    assert_eq!(spool.recovery_report().states_removed, 1);
    assert_eq!(names(&fs, "state"), vec![kept.to_string()]);
    assert_eq!(
        spool.read_state(kept).unwrap().as_deref(),
        Some(&b"kept"[..])
    );
}

#[test]
fn a_damaged_record_is_an_error_and_quarantine_takes_both_files() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let id = store(&spool, 1, 100).unwrap();
    spool.write_state(id, b"delivered: a@b.example").unwrap();
    let path = Path::new(ROOT).join("state").join(id.as_str());
    let mut bytes = fs.read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 1;
    fs.put_durable(&path, &bytes);
    assert!(matches!(
        spool.read_state(id),
        Err(SpoolError::Corrupt { .. })
    ));
    spool.quarantine(id).unwrap();
    assert!(names(&fs, "queue").is_empty());
    assert!(names(&fs, "state").is_empty());
    let mut q = names(&fs, "quarantine");
    q.sort();
    assert_eq!(q, vec![id.to_string(), format!("{id}.state")]);
    assert!(matches!(spool.quarantine(id), Err(SpoolError::NotFound(_))));
    // Quarantined at startup too: a damaged message takes its record along.
    let other = store(&spool, 2, 100).unwrap();
    spool.write_state(other, b"x").unwrap();
    let qpath = Path::new(ROOT).join("queue").join(other.as_str());
    fs.put_durable(&qpath, b"IMPSPOOL garbage");
    drop(spool);
    let spool = open_mem(&fs);
    assert_eq!(spool.recovery_report().quarantined, 1);
    assert!(names(&fs, "state").is_empty());
    assert!(names(&fs, "quarantine").contains(&format!("{other}.state")));
}

#[test]
fn a_spool_without_a_state_directory_reads_as_having_no_records() {
    // A spool written before state records existed, inspected without recovery.
    let fs = MemFs::new();
    let root = Path::new(ROOT);
    for d in ["tmp", "queue", "quarantine"] {
        fs.create_dir_all(&root.join(d)).unwrap();
    }
    let id = QueueId::from_parts(1_700_000_000_000_000, 7);
    let file = encode_file(&id, &super::tests::envelope(1), b"body\r\n").unwrap();
    fs.put_durable(&root.join("queue").join(id.as_str()), &file);
    let spool = Spool::open_with(
        ROOT,
        SpoolOptions {
            recover: false,
            ..SpoolOptions::default()
        },
        std::sync::Arc::new(fs.clone()),
    )
    .unwrap();
    assert_eq!(spool.read_state(id).unwrap(), None);
}

proptest! {
    #[test]
    fn framing_round_trips_and_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..512),
                                            noise in proptest::collection::vec(any::<u8>(), 0..64),
                                            flip in any::<usize>()) {
        let framed = encode_state(&payload).unwrap();
        prop_assert_eq!(decode_state(&framed).unwrap(), &payload[..]);
        let mut damaged = framed.clone();
        let i = flip % damaged.len();
        damaged[i] ^= 0x40;
        prop_assert!(decode_state(&damaged).is_err());
        let _ = decode_state(&noise);
        let mut truncated = framed;
        truncated.pop();
        prop_assert!(decode_state(&truncated).is_err());
    }
}

#[test]
fn remove_many_takes_messages_and_their_records_in_one_batch() {
    let fs = MemFs::new();
    let spool = open_mem(&fs);
    let a = store(&spool, 1, 100).unwrap();
    let b = store(&spool, 2, 100).unwrap();
    let c = store(&spool, 3, 100).unwrap();
    spool.write_state(a, b"record a").unwrap();
    spool.write_state(c, b"record c").unwrap();
    let gone = QueueId::generate();
    let results = spool.remove_many(&[a, b, gone]);
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(matches!(results[2], Err(SpoolError::NotFound(id)) if id == gone));
    let left: Vec<QueueId> = spool.list().unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(left, vec![c]);
    assert_eq!(spool.read_state(a).unwrap(), None);
    assert_eq!(
        spool.read_state(c).unwrap().as_deref(),
        Some(&b"record c"[..])
    );
    assert!(spool.remove_many(&[]).is_empty());
}
