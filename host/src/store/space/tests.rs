use std::sync::mpsc;

use super::*;
use crate::store::{Change, EmbeddedStore, StoreReader};
use crate::test_disk::{fill, SmallTmpfs};
use crate::vocab::Caller;

fn reserve_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(RESERVE_FILE)).unwrap().len()
}

#[test]
fn a_shortage_releases_the_reserve_and_room_restores_it() {
    let tmp = tempfile::tempdir().unwrap();
    let space = Space::open(tmp.path(), 64 << 10).unwrap();
    assert!(!space.is_short());
    assert_eq!(reserve_len(tmp.path()), 64 << 10, "allocated at open");
    let (tx, rx) = mpsc::channel();
    let tx = parking_lot::Mutex::new(tx);
    space.on_room(move || tx.lock().send(()).unwrap());

    space.report(libc::ENOSPC, "writing content: No space left on device");
    assert!(space.is_short());
    assert_eq!(reserve_len(tmp.path()), 0, "released for the log");
    let Some(Refusal::NoSpace { errno, reason }) = space.shortage() else {
        panic!("short of space: {:?}", space.shortage());
    };
    assert_eq!(errno, libc::ENOSPC);
    assert!(
        reason.starts_with("no space left on the store's filesystem (writing content"),
        "{reason}"
    );
    // A second report of the same shortage changes nothing.
    space.report(libc::EDQUOT, "something else");
    assert_eq!(space.shortage().map(|r| r.errno()), Some(libc::ENOSPC));

    // This filesystem has room: the shortage ends at the first look.
    assert!(space.recheck());
    assert!(!space.is_short() && space.shortage().is_none());
    assert_eq!(reserve_len(tmp.path()), 64 << 10, "allocated again");
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the hooks ran once room came back");

    space.report(libc::EDQUOT, "committing content: Disk quota exceeded");
    assert_eq!(space.shortage().map(|r| r.errno()), Some(libc::EDQUOT));
    assert!(space
        .shortage()
        .unwrap()
        .to_string()
        .starts_with("disk quota exceeded"));
    assert!(
        space.recheck(),
        "a quota is probed by allocating the reserve"
    );
}

fn view_event(i: usize) -> Change {
    Change::View {
        view: "test".into(),
        op: "note".into(),
        path: format!("/n{i}").into(),
        body: format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(3000)).into(),
    }
}

#[test]
fn a_log_that_finds_the_disk_full_uses_the_reserve_then_waits_for_room() {
    let fs = SmallTmpfs::new("3m");
    let dir = fs.path().join("store");
    let store = EmbeddedStore::open_reserving(&dir, 512 << 10)
        .unwrap()
        .store;
    assert!(!store.space().is_short());
    let filler = fill(fs.path());

    // Events until the log has no room even in its reserve: SQLite answers SQLITE_FULL,
    // which is a shortage (ENOSPC, the events kept), not a failure of the store.
    let mut refused = None;
    let mut durable_before = 0;
    for i in 0..2000 {
        let seq = store
            .append(None, 0, &Caller::HOST, None, view_event(i))
            .expect("appends are taken while the log waits");
        match store.wait_durable(seq) {
            Ok(()) => durable_before = seq,
            Err(r) => {
                refused = Some((seq, r));
                break;
            }
        }
    }
    let (stuck_seq, refusal) = refused.expect("the log ran out of room");
    assert!(
        durable_before > 0,
        "the disk was full before the first event"
    );
    assert_eq!(refusal.errno(), libc::ENOSPC, "{refusal}");
    assert!(
        refusal.to_string().contains("disk is full"),
        "SQLite's SQLITE_FULL: {refusal}"
    );
    assert_eq!(store.failure(), None, "no room is not a failure");
    assert_eq!(
        store.refusal(),
        Some(refusal.clone()),
        "changes wait for room"
    );
    assert!(store.space().is_short(), "the reserve was given to the log");
    assert_eq!(reserve_len(&dir), 0);
    assert!(store.content_refusal().is_some());
    // More events queue behind the stuck batch, in order.
    let last = store
        .append(None, 0, &Caller::HOST, None, view_event(stuck_seq as usize))
        .unwrap();
    assert_eq!(last, stuck_seq + 1);

    // Room again: the writer commits the events that waited, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(r) = store.wait_durable(last) {
        assert!(
            Instant::now() < deadline,
            "still refused after room came back: {r}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.refusal(), None);
    assert!(store.space().recheck() && store.shortage().is_none());
    assert_eq!(reserve_len(&dir), 512 << 10, "the reserve is back");
    store.close();
    drop(store);

    // Every event is in the log, once, in order, whole.
    let reader = StoreReader::open(&dir).unwrap();
    let mut seen = Vec::new();
    reader
        .events(0, None, |e| {
            seen.push((e.seq, e.change));
            Ok(())
        })
        .unwrap();
    assert_eq!(seen.len() as u64, last);
    for (i, (seq, change)) in seen.into_iter().enumerate() {
        assert_eq!(seq, i as u64 + 1);
        assert_eq!(change, view_event(i), "event {seq}");
    }
}
