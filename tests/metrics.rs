//! `--metrics` and `--log-format json` through a real mount, on both backends: the
//! figures move as a workload does, the exposition passes `promtool check metrics`
//! (Debian `prometheus`, installed by `.ci/run`), `/healthz` answers, and every log line
//! is one JSON object.

#[macro_use]
mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::metrics::*;
use common::*;

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool not found ({e}): install Debian's `prometheus` package, as .ci/run does"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

both_backends! {
    fn metrics_follow_a_workload(backend: Backend) {
        let tmp = tempfile::tempdir().unwrap();
        let m = Mount::start_with(
            backend,
            &tmp.path().join("store"),
            &["--metrics", "127.0.0.1:0", "--log-format", "json"],
        );
        let addr = metrics_addr(&m);
        assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_owned()));
        assert_eq!(get(&addr, "/nothing").0, 404);

        let (status, head, text) = get_with(&addr, "/metrics", "");
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
        promtool_check(&text);
        let before = samples(&text);
        // A client that asks for OpenMetrics (as Prometheus does) gets it: counters named
        // without `_total` in their TYPE line, info as info, the closing `# EOF`.
        let (status, head, om) = get_with(&addr, "/metrics", "Accept: application/openmetrics-text; version=1.0.0\r\n");
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/openmetrics-text"), "{head}");
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE lighthouse_fs_operation_errors counter\n"), "{om}");
        assert!(om.contains("# TYPE lighthouse_fs_build info\n"), "{om}");
        assert!(!text.contains("# EOF") && text.contains("# TYPE lighthouse_fs_operation_errors_total counter\n"));
        let info = format!("backend=\"{backend}\"");
        assert_eq!(value(&before, "lighthouse_fs_build_info", &[&info]), 1.0, "{text}");

        // The workload: 20 files written and read back, a refused rmdir, a history
        // listing, three files held open and a stream reader waiting.
        let c = m.current();
        const FILES: usize = 20;
        const SIZE: usize = 3000;
        fs::create_dir(c.join("w")).unwrap();
        for i in 0..FILES {
            fs::write(c.join(format!("w/f{i}")), vec![b'x'; SIZE]).unwrap();
            assert_eq!(fs::read(c.join(format!("w/f{i}"))).unwrap().len(), SIZE);
        }
        assert_errno(fs::remove_dir(c.join("w")), libc::ENOTEMPTY, "rmdir of a full directory");
        File::open(&c).unwrap().sync_all().unwrap();
        assert!(fs::read_dir(m.root().join("history")).unwrap().count() > 0);
        let held: Vec<fs::File> = (0..3).map(|i| fs::File::open(c.join(format!("w/f{i}"))).unwrap()).collect();
        // From the next event on: the log before it is there to read at once.
        let stream = m.root().join("streams/file_changes@now");
        let reader = std::thread::spawn(move || {
            let mut f = fs::File::open(stream).unwrap();
            let mut buf = [0u8; 4096];
            f.read(&mut buf).unwrap()
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let during = loop {
            let now = samples(&get(&addr, "/metrics").1);
            if value(&now, "lighthouse_fs_blocked_stream_readers", &[]) >= 1.0 {
                break now;
            }
            assert!(Instant::now() < deadline, "the stream reader never showed as blocked");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(value(&during, "lighthouse_fs_open_handles", &["kind=\"file\""]) >= 3.0);
        // Its event ends the blocked read.
        fs::write(c.join("wake"), b"up").unwrap();
        assert!(reader.join().unwrap() > 0);
        drop(held);
        File::open(&c).unwrap().sync_all().unwrap();

        let (status, text) = get(&addr, "/metrics");
        assert_eq!(status, 200);
        promtool_check(&text);
        let after = samples(&text);
        let moved = |name: &str, labels: &[&str]| value(&after, name, labels) - value(&before, name, labels);
        let backend_label = format!("backend=\"{backend}\"");
        let current = ["section=\"current\"", backend_label.as_str()];
        let count = "lighthouse_fs_operation_duration_seconds_count";
        assert!(moved(count, &[&current[..], &["op=\"create\""]].concat()) >= FILES as f64, "{text}");
        // Each file's writes reached the daemon, or its writer (of a new file) wrote it
        // by passthrough, which health.json counts.
        let health = common::json::parse(&fs::read_to_string(m.root().join("debug/health.json")).unwrap()).unwrap();
        let writer_opens = health.at(&["passthrough", "writer_opens"]).and_then(|v| v.as_u64()).unwrap();
        assert!(moved(count, &[&current[..], &["op=\"write\""]].concat()) + writer_opens as f64 >= FILES as f64, "{text}");
        // Each read back reached the daemon, or was served by passthrough (fuser), which
        // the open's answer counts.
        let passthrough = moved("lighthouse_fs_kernel_cache_answers_total", &["answer=\"open_passthrough\""]);
        assert!(moved(count, &[&current[..], &["op=\"read\""]].concat()).min(1.0) + passthrough >= 1.0, "{text}");
        assert_eq!(value(&after, "lighthouse_fs_passthrough", &["state=\"on\""]), 1.0, "{text}");
        let errors = "lighthouse_fs_operation_errors_total";
        assert_eq!(moved(errors, &["op=\"rmdir\"", "errno=\"ENOTEMPTY\"", "section=\"current\""]), 1.0, "{text}");
        assert!(moved(count, &["section=\"history\"", "op=\"readdirplus\""]) + moved(count, &["section=\"history\"", "op=\"readdir\""]) >= 1.0);
        assert!(moved("lighthouse_fs_view_call_duration_seconds_count", &["view=\"history\""]) >= 1.0);
        // mkdir, 20 creates and 20 writes, the wake-up's create and write: at least 43 events.
        assert!(moved("lighthouse_fs_store_events_total", &["state=\"head\""]) >= 43.0);
        assert_eq!(moved("lighthouse_fs_store_written_bytes_total", &[]), (FILES * SIZE + 2) as f64);
        assert!(value(&after, "lighthouse_fs_store_commits_total", &[]) >= 1.0);
        assert_eq!(value(&after, "lighthouse_fs_blocked_stream_readers", &[]), 0.0);
        assert_eq!(value(&after, "lighthouse_fs_open_handles", &["kind=\"file\""]), 0.0);
        assert!(value(&after, "lighthouse_fs_process_resident_memory_bytes", &[]) > 1e6);
        assert!(value(&after, "lighthouse_fs_live_inodes", &[]) >= (FILES + 3) as f64);
        // history/ and the names its listing handed the kernel.
        assert!(value(&after, "lighthouse_fs_view_paths", &[]) >= 1.0);
        // A histogram's +Inf bucket holds its whole count.
        let inf = value(&after, "lighthouse_fs_operation_duration_seconds_bucket", &[&current[..], &["op=\"write\"", "le=\"+Inf\""]].concat());
        assert_eq!(inf, value(&after, count, &[&current[..], &["op=\"write\""]].concat()));

        let log = m.stop();
        for line in log.lines() {
            let entry: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line:?}"));
            assert!(entry["level"].is_string() && entry["timestamp"].is_string(), "{line}");
        }
        // Nothing per request at the default level: the notices of start and stop, not a
        // line for each of the hundreds of requests above (fuse3's own spans included).
        let lines = log.lines().count();
        assert!(lines < 40, "{lines} log lines at the default level:\n{log}");
        assert!(TcpStream::connect(&addr).is_err() || get(&addr, "/healthz").0 != 200, "nothing serves after the stop");
    }
}
