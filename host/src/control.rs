//! The mount's control socket: how `lighthouse-fs views reload MOUNTPOINT` reaches the
//! process serving that mount.
//!
//! The socket is `control.sock` in the store directory (the mount's source in
//! /proc/self/mountinfo names the store, so the mountpoint is all a client needs), mode
//! 0600: only the user who mounted (and root) may use it. One request per connection,
//! one JSON line each way: `{"command":"reload"}` → `{"reload":{...}}` or
//! `{"error":"..."}`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::views::catalog::{Catalog, ReloadReport};

/// The socket's name in the store directory.
pub const SOCKET_NAME: &str = "control.sock";

/// Longest a client waits for an answer (a reload compiles; in a debug build a large
/// view takes seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
enum Request {
    Reload,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Response {
    Reload(ReloadReport),
    Error(String),
}

/// The listening socket; removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `store_dir/control.sock` and answers requests on a thread of its own until
/// the process ends. A socket left by a process that died is replaced: the store's lock,
/// held by this process, says no other mount of it is alive.
pub fn listen(store_dir: &Path, catalog: Arc<Catalog>) -> Result<ControlSocket> {
    let path = store_dir.join(SOCKET_NAME);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing the old {}", path.display())),
    }
    let listener =
        UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))?;
    let socket = ControlSocket { path: path.clone() };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = answer(stream, &catalog) {
                            tracing::warn!("control request: {e:#}");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "control socket"),
                }
            }
        })
        .context("starting the control thread")?;
    Ok(socket)
}

fn answer(stream: UnixStream, catalog: &Catalog) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Reload) => {
            let report = catalog.reload();
            report.log("views reload");
            Response::Reload(report)
        }
        Err(e) => Response::Error(format!("bad request: {e}")),
    };
    let mut out = serde_json::to_vec(&response)?;
    out.push(b'\n');
    (&stream).write_all(&out)?;
    Ok(())
}

/// Asks the process serving `mountpoint` to reload its views; its report.
pub fn reload(mountpoint: &Path) -> Result<ReloadReport> {
    let store = crate::fuse::mountpoint::store_of(mountpoint)?;
    let path = store.join(SOCKET_NAME);
    let stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "connecting to {} (the control socket of the mount at {})",
            path.display(),
            mountpoint.display()
        )
    })?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    let mut request = serde_json::to_vec(&Request::Reload)?;
    request.push(b'\n');
    (&stream).write_all(&request)?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .context("waiting for the mount's answer")?;
    if line.is_empty() {
        bail!("the mount closed the control socket without an answer");
    }
    match serde_json::from_str(&line).context("reading the mount's answer")? {
        Response::Reload(report) => Ok(report),
        Response::Error(e) => bail!("the mount refused: {e}"),
    }
}
