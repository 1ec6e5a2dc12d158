//! The core on a store whose disk fills up (a small tmpfs: needs root).

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::store::{Change, EmbeddedStore};
use crate::test_disk::{fill, SmallTmpfs};

const C: Caller = Caller {
    uid: 0,
    gid: 0,
    pid: 7,
    mount: 0,
    agent: crate::policy::AgentId::DEFAULT,
    agent_name: None,
};

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn write_events_of(fs: &Fs, path: &str) -> usize {
    let mut n = 0;
    fs.store()
        .read(0, None, &mut |e| {
            n += usize::from(matches!(&e.change, Change::Write { path: p, .. } if &**p == path));
            Ok(())
        })
        .unwrap();
    n
}

#[test]
fn a_close_without_room_keeps_the_content_and_commits_it_when_room_comes_back() {
    let tmpfs = SmallTmpfs::new("3m");
    let dir = tmpfs.path().join("store");
    let fs = Arc::new(Fs::new(
        EmbeddedStore::open_reserving(&dir, 256 << 10).unwrap(),
        FsConfig::default(),
    ));
    fs.commit_when_room();
    let data = bytes(100_000);
    let (a, oa) = fs
        .create(&C, CURRENT_INO, OsStr::new("a"), 0o644, 0, libc::O_WRONLY)
        .unwrap();
    let a = a.attr.ino;
    fs.write(&C, a, oa.fh, 0, &data).unwrap();
    let filler = fill(tmpfs.path());

    // New content does not fit: ENOSPC, and the refused write leaves nothing behind.
    let (b, ob) = fs
        .create(&C, CURRENT_INO, OsStr::new("b"), 0o644, 0, libc::O_RDWR)
        .unwrap();
    let b = b.attr.ino;
    let big = bytes(1 << 20);
    let e = fs.write(&C, b, ob.fh, 0, &big).unwrap_err();
    assert_eq!(e.errno, libc::ENOSPC, "{e}");
    assert!(fs.store().space().is_short() && fs.store().failure().is_none());
    assert_eq!(fs.getattr(&C, b, None).unwrap().0.size, 0);
    assert_eq!(fs.read(&C, b, ob.fh, 0, 4096).unwrap(), b"");
    // While short, even what would fit is refused: the reserve is the log's.
    assert_eq!(
        fs.write(&C, b, ob.fh, 0, b"x").unwrap_err().errno,
        libc::ENOSPC
    );
    fs.release(&C, b, ob.fh).unwrap();

    // Metadata changes go on into the reserve, until even the reserve is full: then they
    // are refused with ENOSPC too (never EIO), and nothing is half recorded.
    let long = "n".repeat(240);
    let mut made = 0;
    let refused = loop {
        assert!(made < 100_000, "the reserve never filled");
        match fs.mkdir(
            &C,
            CURRENT_INO,
            OsStr::new(&format!("{long}{made}")),
            0o755,
            0,
        ) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        if made % 50 == 0 {
            // Let the writer find out before the queue grows long.
            let _ = fs.fsyncdir(&C, CURRENT_INO, 0, false);
        }
    };
    assert_eq!(refused.errno, libc::ENOSPC, "{refused}");
    eprintln!("{made} mkdirs of 240-byte names fit in a 256 KiB reserve");
    assert!(made > 0, "the reserve took no event");
    assert_eq!(
        fs.fsyncdir(&C, CURRENT_INO, 0, false).unwrap_err().errno,
        libc::ENOSPC
    );

    // close() cannot commit `a`: ENOSPC, at close and at release; its bytes stay readable.
    assert_eq!(fs.flush(&C, a, oa.fh).unwrap_err().errno, libc::ENOSPC);
    assert_eq!(fs.release(&C, a, oa.fh).unwrap_err().errno, libc::ENOSPC);
    let o = fs.open(&C, a, libc::O_RDONLY).unwrap();
    assert_eq!(fs.read(&C, a, o.fh, 0, 200_000).unwrap(), data);
    fs.release(&C, a, o.fh).unwrap();
    assert_eq!(write_events_of(&fs, "/a"), 0);

    // Room again: the log commits what waited, and `a` is committed in the background.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let durable = fs.store().wait_durable(fs.store().head()).is_ok();
        if durable && write_events_of(&fs, "/a") == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`a` was not committed once room came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(fs.store().shortage().is_none());
    fs.write(
        &C,
        b,
        fs.open(&C, b, libc::O_WRONLY).unwrap().fh,
        0,
        b"later",
    )
    .expect("writes are accepted again");
    fs.shutdown();
    drop(fs);

    let fs = Fs::new(EmbeddedStore::open(&dir).unwrap(), FsConfig::default());
    let o = fs.open(&C, a, libc::O_RDONLY).unwrap();
    assert_eq!(
        fs.read(&C, a, o.fh, 0, 200_000).unwrap(),
        data,
        "after reopen"
    );
    for i in 0..=made {
        let e = fs
            .lookup(&C, CURRENT_INO, OsStr::new(&format!("{long}{i}")))
            .unwrap();
        // Every mkdir answered 0 is in the log; the refused one is not.
        assert_eq!(e.attr.ino != 0, i < made, "mkdir {i} of {made}");
    }
    fs.shutdown();
}
