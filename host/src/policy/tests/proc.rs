use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use crate::policy::proc::{parse_stat, Stat};
use crate::policy::{session_of, SessionCache, SessionKey};

/// A stat line with `comm` and session 77, starttime 9999 (fields 6 and 22).
fn stat_line(comm: &str) -> Vec<u8> {
    format!(
        "4242 ({comm}) S 1 4242 77 34816 4242 4194560 100 0 0 0 1 2 0 0 20 0 1 0 9999 \
         1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
    )
    .into_bytes()
}

#[test]
fn stat_fields_are_counted_after_the_last_paren() {
    let expected = Some(Stat {
        session: 77,
        starttime: 9999,
    });
    for comm in [
        "bash",
        "a b c",
        "x) S 1 2 3 4",
        ")",
        "((",
        ") (",
        "",
        "evil) R 9 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 123 (",
    ] {
        assert_eq!(parse_stat(&stat_line(comm)), expected, "comm {comm:?}");
    }
    // Non-UTF-8 bytes in comm are fine: only what follows the paren is decoded.
    let mut line = b"1 (\xff\xfe) ".to_vec();
    line.extend_from_slice(&stat_line("x")[b"4242 (x) ".len()..]);
    assert_eq!(parse_stat(&line), expected);
}

#[test]
fn broken_stat_lines_are_none() {
    for line in [
        &b""[..],
        b"1 (bash S 1 2 3",
        b"1 (bash) S 1 2",
        b"1 (bash) S 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        b"1 (bash) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",
        b"1 (bash) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5",
    ] {
        assert_eq!(
            parse_stat(line),
            None,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn the_current_process_has_its_session() {
    let pid = std::process::id();
    let key = session_of(pid, 1234).expect("own stat");
    // SAFETY: getsid has no preconditions.
    let sid = unsafe { libc::getsid(0) };
    assert_eq!(key.sid as i32, sid);
    assert_eq!(key.uid, 1234);
    let leader_alive = std::path::Path::new(&format!("/proc/{sid}")).exists();
    if leader_alive && sid != 0 {
        let leader = std::fs::read(format!("/proc/{sid}/stat")).expect("leader stat");
        let leader = parse_stat(&leader).expect("parse");
        assert_eq!(key.leader_start, leader.starttime);
    }
    // Stable between calls; a thread of the process is in the same session.
    assert_eq!(session_of(pid, 1234).expect("again"), key);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    assert_eq!(session_of(tid, 1234).expect("thread"), key);
}

#[test]
fn a_missing_process_is_an_error() {
    // Above the largest pid_max Linux allows (2^22).
    let err = session_of(u32::MAX - 1, 0).expect_err("no such process");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

fn key(sid: u32, uid: u32) -> SessionKey {
    SessionKey {
        sid,
        leader_start: 1,
        uid,
    }
}

#[test]
fn the_cache_serves_within_its_ttl_and_per_uid() {
    let cache = SessionCache::new(Duration::from_secs(1));
    let loads = Cell::new(0);
    let load = |sid| {
        loads.set(loads.get() + 1);
        move || Ok(key(sid, 1000))
    };
    let t0 = Instant::now();
    assert_eq!(
        cache.lookup_with(7, 1000, t0, load(1)).expect("load"),
        key(1, 1000)
    );
    assert_eq!(loads.get(), 1);
    let hit = cache.lookup_with(7, 1000, t0 + Duration::from_millis(999), || {
        panic!("should be cached")
    });
    assert_eq!(hit.expect("hit"), key(1, 1000));

    // After the TTL the entry is read again.
    let after = t0 + Duration::from_secs(1);
    assert_eq!(
        cache.lookup_with(7, 1000, after, load(2)).expect("reload"),
        key(2, 1000)
    );
    assert_eq!(loads.get(), 2);

    // A caller of another uid never gets an entry made for this one.
    let other = cache
        .lookup_with(7, 0, after, || Ok(key(3, 0)))
        .expect("other uid");
    assert_eq!(other, key(3, 0));

    // Errors are not cached.
    let err = cache.lookup_with(8, 0, after, || {
        Err(io::Error::from(io::ErrorKind::NotFound))
    });
    assert!(err.is_err());
    assert_eq!(
        cache
            .lookup_with(8, 0, after, || Ok(key(4, 0)))
            .expect("load"),
        key(4, 0)
    );
}

#[test]
fn the_cache_reads_proc() {
    let cache = SessionCache::default();
    let pid = std::process::id();
    assert_eq!(
        cache.session_of(pid, 5, Instant::now()).expect("own"),
        session_of(pid, 5).expect("direct")
    );
}
