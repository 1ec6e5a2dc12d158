//! `--metrics` from a test: HTTP GET, the samples of an exposition, and where the mount
//! serves them (from its JSON log: start it with `--log-format json`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::Mount;

/// `GET path` over HTTP/1.0: (status, body).
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let (status, _, body) = get_with(addr, path, "");
    (status, body)
}

/// `GET path` with extra header lines: (status, headers, body).
pub fn get_with(addr: &str, path: &str, headers: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_lowercase(), body.to_owned())
}

/// The samples of a classic text exposition: `name{labels}` (labels as written) → value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                series.to_owned(),
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

/// The value of the one series of `name` whose labels include every `label="value"`
/// given (0 when there is none).
pub fn value(samples: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    let matching: Vec<(&String, &f64)> = samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            n == name && labels.iter().all(|l| rest.contains(l))
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches several series: {matching:?}"
    );
    matching.first().map_or(0.0, |(_, v)| **v)
}

/// The address the mount's log says it serves metrics on.
pub fn metrics_addr(m: &Mount) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for line in m.stderr().lines() {
            let entry: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line:?}"));
            if entry["fields"]["message"] == "serving /metrics and /healthz" {
                return entry["fields"]["addr"].as_str().unwrap().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no metrics address logged:\n{}",
            m.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
