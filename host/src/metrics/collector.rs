//! The metrics, read at scrape time from what the core and the view host count anyway.
//!
//! Names (OpenMetrics adds `_total` to counters, `_info` to info, and `_bucket`, `_sum`,
//! `_count` to histograms):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `lighthouse_fs_build_info` | version, backend | this process, a series per mount |
//! | `lighthouse_fs_operation_duration_seconds` | op, backend, section | FUSE requests served, by latency |
//! | `lighthouse_fs_operation_errors_total` | op, backend, section, errno | failed requests |
//! | `lighthouse_fs_kernel_notifications_total` | backend, outcome | a mount's kernel told of another mount's changes |
//! | `lighthouse_fs_policy_denied_total` | agent | requests the policy denied (`--policy` only) |
//! | `lighthouse_fs_rate_limited_total` | agent, limit | requests over a rate limit (`--policy` only) |
//! | `lighthouse_fs_auth_responses_total` | agent, outcome | `.auth` responses: bound, refused (`--policy` only) |
//! | `lighthouse_fs_kernel_cache_answers_total` | answer | what the kernel was told it may keep |
//! | `lighthouse_fs_host_cache_lookups_total` | cache, result | the host's own caches (history trees, view answers) |
//! | `lighthouse_fs_view_answer_cache_bytes` | | bytes of kept view answers |
//! | `lighthouse_fs_view_call_duration_seconds` | view | calls into a view's wasm |
//! | `lighthouse_fs_view_faults_total` | view, kind | trap, timeout, memory_cap, bad_answer, unavailable |
//! | `lighthouse_fs_view_reloads_total` | view, outcome | loaded, reloaded, removed, restored, failed |
//! | `lighthouse_fs_view_generation` | view | the generation serving each view |
//! | `lighthouse_fs_views_refused` | | components offered and not loaded |
//! | `lighthouse_fs_open_handles` | kind | file, dir, view, debug |
//! | `lighthouse_fs_blocked_stream_readers` | | reads parked until a stream moves |
//! | `lighthouse_fs_live_inodes` | | inodes of the live tree |
//! | `lighthouse_fs_view_paths` | | view paths numbered (those the kernel or an open file refers to) |
//! | `lighthouse_fs_store_events_total` | state | events appended (`head`), committed (`durable`), shown by this host's tree with its kernels told (`shown`) |
//! | `lighthouse_fs_store_commits_total` | | batches committed to SQLite |
//! | `lighthouse_fs_store_written_bytes_total` | | file content committed as write events |
//! | `lighthouse_fs_store_failed` | | 1 when the store refuses changes |
//! | `lighthouse_fs_store_state` | state | 1 for the store's state: `ok`, `degraded` (short of room, or the database out of reach), `failing` |
//! | `lighthouse_fs_passthrough` | state | 1 for FUSE passthrough's state: `on`, `off`, `pending` |
//! | `lighthouse_fs_process_resident_memory_bytes` | | VmRSS |
//! | `lighthouse_fs_process_open_fds` | | descriptors |
//! | `lighthouse_fs_process_threads` | | threads |

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::core::{process_figures, CacheCounters, Fs, LatencyCounts, Op, LIMITS};
use crate::views::catalog::Catalog;

/// Upper bounds (seconds) of the latency histograms: 5 µs to 10 s, 1-2.5-5 steps.
pub const HISTOGRAM_BOUNDS: &[f64] = &[
    5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
    100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0,
];

/// Everything of one mount: the core's counters, the views' and the catalog's.
pub struct MountCollector {
    fs: Arc<Fs>,
    catalog: Arc<Catalog>,
}

impl fmt::Debug for MountCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MountCollector")
    }
}

impl MountCollector {
    pub fn new(fs: Arc<Fs>, catalog: Arc<Catalog>) -> Self {
        MountCollector { fs, catalog }
    }
}

/// A histogram's buckets as the encoder takes them: (upper bound, count in it).
fn buckets(latencies: &LatencyCounts) -> Vec<(f64, u64)> {
    HISTOGRAM_BOUNDS
        .iter()
        .copied()
        .chain([f64::MAX])
        .zip(latencies.coarse(HISTOGRAM_BOUNDS))
        .collect()
}

fn histogram(
    family: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    latencies: &LatencyCounts,
) -> fmt::Result {
    family
        .encode_family(labels)?
        .encode_histogram::<NoLabelSet>(
            latencies.sum_ns as f64 / 1e9,
            latencies.count(),
            &buckets(latencies),
            None,
        )
}

fn counter(
    family: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    value: u64,
) -> fmt::Result {
    family
        .encode_family(labels)?
        .encode_counter::<NoLabelSet, u64, f64>(&value, None)
}

/// A state gauge: a series per state, 1 for `current` and 0 for the others.
fn one_of(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    states: &[&str],
    current: &str,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for &s in states {
        family
            .encode_family(&[("state", s)])?
            .encode_gauge(&u64::from(s == current))?;
    }
    Ok(())
}

/// A metric without labels.
fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    value: u64,
) -> fmt::Result {
    let mut m = encoder.encode_descriptor(name, help, None, metric_type)?;
    match metric_type {
        MetricType::Counter => m.encode_counter::<NoLabelSet, u64, f64>(&value, None),
        _ => m.encode_gauge(&value),
    }
}

impl Collector for MountCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let fs = &self.fs;
        // One series per mount: two when the backends are served side by side.
        let mounts = fs.mounts();
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_build",
            "The lighthouse-fs version and the FUSE backend serving each mount",
            None,
            MetricType::Info,
        )?;
        for m in &mounts {
            family.encode_info(&[
                ("version", env!("CARGO_PKG_VERSION")),
                ("backend", m.info.backend),
            ])?;
        }

        // Requests, by mount (backend), section and operation (series appear with their
        // first request).
        let mut snapshots = Vec::new();
        for m in &mounts {
            let stats = &m.stats;
            for (id, section) in stats.sections() {
                for op in Op::ALL {
                    let s = stats.snapshot_in(Some(id), op);
                    if s.count > 0 || s.errors > 0 {
                        snapshots.push((m.info.backend, section.clone(), s));
                    }
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_operation_duration_seconds",
            "FUSE requests served, by latency (from the adapter's call into the core to the reply ready)",
            None,
            MetricType::Histogram,
        )?;
        for (backend, section, s) in &snapshots {
            let labels = [
                ("op", s.op.as_str()),
                ("backend", backend),
                ("section", section),
            ];
            histogram(&mut family, &labels, &s.latencies)?;
        }
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_operation_errors",
            "FUSE requests answered with an error, by errno",
            None,
            MetricType::Counter,
        )?;
        for (backend, section, s) in &snapshots {
            for (errno, n) in &s.errnos {
                let labels = [
                    ("op", s.op.as_str()),
                    ("backend", backend),
                    ("section", section),
                    ("errno", errno),
                ];
                counter(&mut family, &labels, *n)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_kernel_notifications",
            "Notifications sent to a mount's kernel for changes made through another mount, by outcome (sent, failed: refused by the kernel, timed_out: not done within the wait)",
            None,
            MetricType::Counter,
        )?;
        for m in &mounts {
            let n = m.notify_counts();
            for (outcome, value) in [
                ("sent", n.sent),
                ("failed", n.failed),
                ("timed_out", n.timed_out),
            ] {
                counter(
                    &mut family,
                    &[("backend", m.info.backend), ("outcome", outcome)],
                    value,
                )?;
            }
        }

        // The policy, when one is in force: what it refused, to whom.
        if let Some(gate) = fs.gate() {
            let mut family = encoder.encode_descriptor(
                "lighthouse_fs_policy_denied",
                "Requests the policy denied (EACCES), by agent",
                None,
                MetricType::Counter,
            )?;
            for (agent, counts) in gate.counts() {
                let n = counts.denied.load(Ordering::Relaxed);
                counter(&mut family, &[("agent", &**agent)], n)?;
            }
            let mut family = encoder.encode_descriptor(
                "lighthouse_fs_rate_limited",
                "Requests refused by a rate limit (EAGAIN), by agent and limit: agent_ops, agent_bytes, overall_ops, overall_bytes",
                None,
                MetricType::Counter,
            )?;
            for (agent, counts) in gate.counts() {
                for (limit, n) in LIMITS.iter().zip(&counts.limited) {
                    let labels = [("agent", &**agent), ("limit", limit.as_str())];
                    counter(&mut family, &labels, n.load(Ordering::Relaxed))?;
                }
            }
            let mut family = encoder.encode_descriptor(
                "lighthouse_fs_auth_responses",
                "Responses written to .auth, by agent and outcome (bound: the session is the agent now; refused: counted to the agent the writer was)",
                None,
                MetricType::Counter,
            )?;
            for (agent, counts) in gate.counts() {
                for (outcome, n) in [("bound", &counts.bound), ("refused", &counts.auth_failed)] {
                    let labels = [("agent", &**agent), ("outcome", outcome)];
                    counter(&mut family, &labels, n.load(Ordering::Relaxed))?;
                }
            }
        }

        // Caches.
        let c = fs.cache_counters();
        let get = CacheCounters::get;
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_kernel_cache_answers",
            "Answers that tell the kernel what it may cache: lookups (positive, negative), opens (keep_cache, direct_io, uncached; passthrough besides), opendirs (cached, uncached)",
            None,
            MetricType::Counter,
        )?;
        for (answer, n) in [
            ("lookup_positive", get(&c.lookups_positive)),
            ("lookup_negative", get(&c.lookups_negative)),
            ("open_keep_cache", get(&c.opens_keep_cache)),
            ("open_direct_io", get(&c.opens_direct_io)),
            ("open_uncached", get(&c.opens_uncached)),
            ("open_passthrough", get(&c.opens_passthrough)),
            ("opendir_cached", get(&c.opendirs_cached)),
            ("opendir_uncached", get(&c.opendirs_uncached)),
        ] {
            counter(&mut family, &[("answer", answer)], n)?;
        }
        let history = fs.store().history_stats().snapshot();
        let host = self.catalog.host();
        let answers = host.answer_cache_stats();
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_host_cache_lookups",
            "Lookups in the host's own caches: past trees of the log (history), answers views declared immutable (view_answers)",
            None,
            MetricType::Counter,
        )?;
        for (cache, result, n) in [
            ("history", "hit", history.hits),
            ("history", "miss", history.misses),
            ("view_answers", "hit", answers.hits),
            ("view_answers", "miss", answers.misses),
        ] {
            counter(&mut family, &[("cache", cache), ("result", result)], n)?;
        }
        single(
            &mut encoder,
            "lighthouse_fs_view_answer_cache_bytes",
            "Bytes of view answers kept by the host",
            MetricType::Gauge,
            answers.bytes,
        )?;

        // Views.
        let calls = host.call_figures();
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_view_call_duration_seconds",
            "Calls into a view's WebAssembly (answers from the host's cache are not calls)",
            None,
            MetricType::Histogram,
        )?;
        for v in &calls {
            histogram(&mut family, &[("view", v.view.as_str())], &v.calls)?;
        }
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_view_faults",
            "View calls that failed by the view's or the runtime's fault, by kind",
            None,
            MetricType::Counter,
        )?;
        for v in &calls {
            for (kind, n) in &v.faults {
                counter(
                    &mut family,
                    &[("view", v.view.as_str()), ("kind", kind)],
                    *n,
                )?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_view_reloads",
            "What reloads did, by view and outcome (view \"\": a file that never loaded)",
            None,
            MetricType::Counter,
        )?;
        for (view, outcome, n) in self.catalog.outcome_counts() {
            counter(
                &mut family,
                &[("view", view.as_str()), ("outcome", outcome.as_str())],
                n,
            )?;
        }
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_view_generation",
            "The generation serving each view (larger after every swap)",
            None,
            MetricType::Gauge,
        )?;
        for v in host.views() {
            family
                .encode_family(&[("view", v.name.as_str())])?
                .encode_gauge(&v.generation)?;
        }
        single(
            &mut encoder,
            "lighthouse_fs_views_refused",
            "Components offered and not loaded (the version before each serves on)",
            MetricType::Gauge,
            host.refused().len() as u64,
        )?;

        // Handles, readers, inodes.
        let census = fs.handle_census();
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_open_handles",
            "Open file and directory handles, by kind",
            None,
            MetricType::Gauge,
        )?;
        for (kind, n) in [
            ("file", census.files),
            ("dir", census.dirs),
            ("view", census.views),
            ("debug", census.debug),
        ] {
            family
                .encode_family(&[("kind", kind)])?
                .encode_gauge(&(n as u64))?;
        }
        single(
            &mut encoder,
            "lighthouse_fs_blocked_stream_readers",
            "Reads waiting for a stream to move",
            MetricType::Gauge,
            fs.blocked_readers(),
        )?;
        single(
            &mut encoder,
            "lighthouse_fs_live_inodes",
            "Inodes of the live tree",
            MetricType::Gauge,
            fs.live_inodes() as u64,
        )?;
        single(
            &mut encoder,
            "lighthouse_fs_view_paths",
            "View paths numbered: those the kernel or an open file refers to",
            MetricType::Gauge,
            fs.view_paths() as u64,
        )?;

        // The store.
        let store = fs.store();
        let durable = store.durable();
        let mut family = encoder.encode_descriptor(
            "lighthouse_fs_store_events",
            "Events of the log: appended (head) and committed to SQLite (durable)",
            None,
            MetricType::Counter,
        )?;
        counter(&mut family, &[("state", "head")], store.head())?;
        counter(&mut family, &[("state", "durable")], durable.seq)?;
        // A store shared by hosts: how far this one shows the log (others' events folded
        // and its kernels told); `head - shown` is how far it lags.
        counter(&mut family, &[("state", "shown")], fs.shown_seq())?;
        single(
            &mut encoder,
            "lighthouse_fs_store_commits",
            "Batches committed to SQLite since the start",
            MetricType::Counter,
            durable.commits,
        )?;
        single(
            &mut encoder,
            "lighthouse_fs_store_written_bytes",
            "File content committed as write events since the start",
            MetricType::Counter,
            fs.written_bytes(),
        )?;
        single(
            &mut encoder,
            "lighthouse_fs_store_failed",
            "1 when the store refuses changes (see debug/health.json)",
            MetricType::Gauge,
            u64::from(store.failure().is_some()),
        )?;
        let state = if store.failure().is_some() {
            "failing"
        } else if store.shortage().is_some() || store.degraded().is_some() {
            "degraded"
        } else {
            "ok"
        };
        one_of(
            &mut encoder,
            "lighthouse_fs_store_state",
            "1 for the store's state (ok, degraded: short of room on its filesystem or its database out of reach, failing), 0 for the others",
            &["ok", "degraded", "failing"],
            state,
        )?;
        one_of(
            &mut encoder,
            "lighthouse_fs_passthrough",
            "1 for the state of FUSE passthrough (on, off, pending: no kernel negotiated yet), 0 for the others",
            &["on", "off", "pending"],
            fs.passthrough_status().state,
        )?;

        // The process.
        let process = process_figures();
        for (name, help, value) in [
            (
                "lighthouse_fs_process_resident_memory_bytes",
                "Resident memory (VmRSS)",
                process.rss_bytes,
            ),
            (
                "lighthouse_fs_process_open_fds",
                "Open file descriptors",
                process.open_fds.map(|n| n as u64),
            ),
            ("lighthouse_fs_process_threads", "Threads", process.threads),
        ] {
            if let Some(value) = value {
                single(&mut encoder, name, help, MetricType::Gauge, value)?;
            }
        }
        Ok(())
    }
}
