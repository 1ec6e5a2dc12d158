//! `lighthouse-fs log`: the event log as text or JSON lines.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::time::format_ns;
use crate::store::{Change, Event, StoreReader};

#[derive(Args)]
pub struct LogArgs {
    /// Only events touching this path (relative to current/, e.g. /src or src/main.rs).
    path: Option<String>,
    /// The store: a directory, or a PostgreSQL database (`postgres://…`).
    #[arg(long, env = "LIGHTHOUSE_STORE", default_value_os_t = super::default_store())]
    store: PathBuf,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: LogArgs) -> anyhow::Result<()> {
    let store = StoreReader::open(&args.store)?;
    let prefix = args.path.as_deref().map(normalize);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    store.events(0, None, |e| {
        if prefix.as_deref().is_some_and(|p| !e.touches(p)) {
            return Ok(());
        }
        let line = if args.json {
            serde_json::to_string(&to_json(&e))?
        } else {
            to_text(&e)
        };
        if let Err(err) = writeln!(out, "{line}") {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(err.into());
        }
        Ok(())
    })?;
    out.flush().or_else(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    Ok(())
}

/// `src/x`, `/src/x/`, `current/src/x` → `/src/x`.
fn normalize(path: &str) -> String {
    let p = path.trim_matches('/');
    let p = p
        .strip_prefix("current")
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .unwrap_or(p);
    format!("/{}", p.trim_matches('/'))
}

fn to_json(e: &Event) -> serde_json::Value {
    let mut v = serde_json::json!({
        "seq": e.seq,
        "time": format_ns(e.time),
        "time_ns": e.time,
        "agent": e.agent.as_deref(),
        "uid": e.caller.uid,
        "gid": e.caller.gid,
        "pid": e.caller.pid,
        "op": e.change.op(),
        "path": e.change.path(),
        "path2": e.change.path2(),
        "size": serde_json::Value::Null,
        "hash": serde_json::Value::Null,
    });
    let m = v.as_object_mut().expect("object");
    match &e.change {
        Change::Create {
            kind,
            perm,
            uid,
            gid,
            rdev,
            ..
        } => {
            m.insert("kind".into(), kind.as_str().into());
            m.insert("mode".into(), format!("{perm:04o}").into());
            m.insert("owner".into(), (*uid).into());
            m.insert("group".into(), (*gid).into());
            if *rdev != 0 {
                m.insert("rdev".into(), (*rdev).into());
            }
        }
        Change::Symlink { uid, gid, .. } => {
            m.insert("owner".into(), (*uid).into());
            m.insert("group".into(), (*gid).into());
        }
        Change::Write {
            hash, size, mtime, ..
        } => {
            m.insert("size".into(), (*size).into());
            m.insert("hash".into(), hash.map(|h| h.to_hex()).into());
            m.insert("mtime".into(), format_ns(*mtime).into());
        }
        Change::SetAttr {
            perm,
            uid,
            gid,
            atime,
            mtime,
            ..
        } => {
            if let Some(p) = perm {
                m.insert("mode".into(), format!("{p:04o}").into());
            }
            if let Some(u) = uid {
                m.insert("owner".into(), (*u).into());
            }
            if let Some(g) = gid {
                m.insert("group".into(), (*g).into());
            }
            if let Some(t) = atime {
                m.insert("atime".into(), format_ns(*t).into());
            }
            if let Some(t) = mtime {
                m.insert("mtime".into(), format_ns(*t).into());
            }
        }
        Change::Rename { flags, .. } => {
            if flags.noreplace {
                m.insert("flags".into(), "noreplace".into());
            } else if flags.exchange {
                m.insert("flags".into(), "exchange".into());
            }
        }
        Change::View { view, body, .. } => {
            m.insert("view".into(), view.as_ref().into());
            // The body is JSON by contract; shown as a document, not a string.
            let body = serde_json::from_str(body).unwrap_or_else(|_| body.as_ref().into());
            m.insert("body".into(), body);
        }
        Change::SetXattr { value, .. } => {
            m.insert("size".into(), value.len().into());
            // The value as text when it is UTF-8, else as hex: values are binary.
            match std::str::from_utf8(value) {
                Ok(text) => m.insert("value".into(), text.into()),
                Err(_) => m.insert("value_hex".into(), hex::encode(value).into()),
            };
        }
        Change::Link { .. }
        | Change::Unlink { .. }
        | Change::Rmdir { .. }
        | Change::RemoveXattr { .. } => {}
    }
    v
}

fn to_text(e: &Event) -> String {
    let mut s = format!(
        "{:>6} {} uid={} gid={} pid={} {:<7} {}",
        e.seq,
        format_ns(e.time),
        e.caller.uid,
        e.caller.gid,
        e.caller.pid,
        e.change.op(),
        e.change.path()
    );
    match &e.change {
        Change::Rename { to, .. } | Change::Link { to, .. } => s += &format!(" -> {to}"),
        Change::Symlink { target, .. } => s += &format!(" -> {target:?}"),
        Change::Create { perm, .. } => s += &format!(" mode={perm:04o}"),
        Change::Write { hash, size, .. } => {
            s += &format!(" size={size}");
            if let Some(h) = hash {
                s += &format!(" hash={}", &h.to_hex()[..16]);
            }
        }
        Change::SetAttr {
            perm,
            uid,
            gid,
            mtime,
            ..
        } => {
            if let Some(p) = perm {
                s += &format!(" mode={p:04o}");
            }
            if let Some(u) = uid {
                s += &format!(" owner={u}");
            }
            if let Some(g) = gid {
                s += &format!(" group={g}");
            }
            if let Some(t) = mtime {
                s += &format!(" mtime={}", format_ns(*t));
            }
        }
        Change::View { view, body, .. } => s += &format!(" view={view} {body}"),
        Change::SetXattr { name, value, .. } => s += &format!(" {name} size={}", value.len()),
        Change::RemoveXattr { name, .. } => s += &format!(" {name}"),
        Change::Unlink { .. } | Change::Rmdir { .. } => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn paths_normalize_to_the_log_form() {
        assert_eq!(normalize("src/x"), "/src/x");
        assert_eq!(normalize("/src/x/"), "/src/x");
        assert_eq!(normalize("current/src"), "/src");
        assert_eq!(normalize("currently"), "/currently");
        assert_eq!(normalize("/"), "/");
    }
}
