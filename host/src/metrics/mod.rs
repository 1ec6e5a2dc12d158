//! `--metrics ADDR`: the Prometheus text exposition at `/metrics` and a liveness answer
//! at `/healthz`, served by a small blocking HTTP server on a thread of its own.
//!
//! Nothing is counted for the metrics' sake: a scrape reads the counters the core and the
//! view host keep anyway (lock-free on the request path) and encodes them then
//! ([`collector`]). A scrape costs the server a few hundred microseconds; requests
//! through the mount pay nothing for it.

mod collector;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use prometheus_client::registry::Registry;

use crate::core::Fs;
use crate::views::catalog::Catalog;

/// The two exposition formats: OpenMetrics for a client that asks for it (Prometheus
/// does), the classic text format (0.0.4) for everyone else (curl, `promtool check
/// metrics`, older scrapers).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the metrics are read from.
pub struct Sources {
    pub fs: Arc<Fs>,
    pub catalog: Arc<Catalog>,
    /// True while the mount serves (between the kernel's INIT and the unmount).
    pub serving: Arc<AtomicBool>,
}

/// Serves `/metrics` and `/healthz` on `addr` from a thread that lives as long as the
/// process; the address it listens on (the port chosen when ADDR said port 0, which is
/// also logged).
pub fn serve(addr: &str, sources: Sources) -> Result<SocketAddr> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("listening for --metrics on {addr}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .context("--metrics needs an IP address and port")?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector::MountCollector::new(
        sources.fs.clone(),
        sources.catalog.clone(),
    )));
    let serving = sources.serving;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let openmetrics = request.headers().iter().any(|h| {
                    h.field.equiv("Accept")
                        && h.value.as_str().contains("application/openmetrics-text")
                });
                let response = answer(request.url(), openmetrics, &registry, &serving);
                if let Err(e) = request.respond(response) {
                    tracing::debug!(error = %e, "answering a metrics request");
                }
            }
        })
        .context("starting the metrics thread")?;
    tracing::info!(addr = %bound, "serving /metrics and /healthz");
    Ok(bound)
}

fn answer(
    url: &str,
    openmetrics: bool,
    registry: &Registry,
    serving: &AtomicBool,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let path = url.split('?').next().unwrap_or(url);
    let text = |code: u16, body: String, content_type: &str| {
        let header =
            tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
        tiny_http::Response::from_string(body)
            .with_status_code(code)
            .with_header(header)
    };
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) if openmetrics => text(200, body, OPENMETRICS),
                Ok(()) => text(200, classic(&body), CLASSIC),
                Err(e) => text(
                    500,
                    format!("encoding the metrics failed: {e}\n"),
                    "text/plain",
                ),
            }
        }
        "/healthz" if serving.load(Ordering::Relaxed) => text(200, "ok\n".into(), "text/plain"),
        "/healthz" => text(503, "not serving\n".into(), "text/plain"),
        _ => text(404, "try /metrics or /healthz\n".into(), "text/plain"),
    }
}

/// The classic text format (0.0.4) of an OpenMetrics text: a counter family is named
/// with its `_total` (as its samples are), an info family becomes a gauge named
/// `NAME_info`, and the `# UNIT` and `# EOF` lines go.
fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line.starts_with("# HELP ") {
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                other => (name.to_owned(), other),
            };
            if let Some(help) = help.take() {
                let text = help
                    .strip_prefix("# HELP ")
                    .and_then(|h| h.split_once(' '))
                    .map_or("", |(_, text)| text);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::classic;

    #[test]
    fn classic_names_counter_and_info_families_as_their_samples() {
        let om = "# HELP a_ops Ops.\n# TYPE a_ops counter\na_ops_total{x=\"1\"} 3\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{v=\"1\"} 1\n\
                  # HELP a_mem Memory.\n# TYPE a_mem gauge\n# UNIT a_mem bytes\na_mem 7\n# EOF\n";
        assert_eq!(
            classic(om),
            "# HELP a_ops_total Ops.\n# TYPE a_ops_total counter\na_ops_total{x=\"1\"} 3\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{v=\"1\"} 1\n\
             # HELP a_mem Memory.\n# TYPE a_mem gauge\na_mem 7\n"
        );
    }
}
