//! `bad-append/`, a test view that pushes at the edges of `store.append`:
//! - reading `/try` calls `append` during a read (which the host must refuse) and reads
//!   back what the host answered;
//! - writing `OP\nPATH\nBODY` to `/append` appends exactly that (the host checks op, path
//!   and body), and `create` of `/made` appends a `made` event.

use lighthouse_view_sdk::{
    attrs, error, slice_read, store, Attrs, Caching, Caller, DirEntry, FixedDir, FsError, NodeKind,
    OpenMode, View, ViewInfo,
};

const ROOT: FixedDir = FixedDir {
    files: &[("try", b""), ("append", b"")],
    mtime_ns: 0,
};

struct Append;

fn outcome(result: Result<u64, FsError>) -> String {
    match result {
        Ok(seq) => format!("appended {seq}\n"),
        Err(FsError::Invalid(why)) => format!("refused: {why}\n"),
        Err(other) => format!("error: {other:?}\n"),
    }
}

impl View for Append {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!("bad-append", "test view: store.append at its edges")
    }

    fn getattr(_: Caller, path: String) -> Result<Attrs, FsError> {
        let mut a = ROOT.getattr(&path)?;
        if path == "/try" {
            a.caching = Caching::Volatile;
            a.size = 4096;
        }
        if path == "/append" {
            a.writable = true;
            a.perm = 0o644;
        }
        Ok(a)
    }

    fn readdir(_: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        ROOT.readdir(&path)
    }

    fn read(_: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        if path == "/try" {
            let answer = outcome(store::append("note", "/x", "{}"));
            return Ok(slice_read(answer.as_bytes(), offset, len));
        }
        ROOT.read(&path, offset, len)
    }

    fn open(_: Caller, path: String, write: bool) -> Result<OpenMode, FsError> {
        if write && path != "/append" {
            return Err(FsError::ReadOnly);
        }
        Ok(OpenMode::Plain)
    }

    fn write(_: Caller, path: String, _offset: u64, data: Vec<u8>) -> Result<u32, FsError> {
        if path != "/append" {
            return Err(FsError::ReadOnly);
        }
        let text = String::from_utf8(data.clone()).map_err(|_| error::invalid("not UTF-8"))?;
        let mut parts = text.splitn(3, '\n');
        let (op, at, body) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        store::append(op, at, body)?;
        Ok(data.len() as u32)
    }

    fn create(_: Caller, path: String, kind: NodeKind) -> Result<Attrs, FsError> {
        if path != "/made" || kind != NodeKind::File {
            return Err(FsError::ReadOnly);
        }
        store::append("made", "/made", "{\"by\":\"create\"}")?;
        Ok(attrs::file(0, 0, Caching::Volatile))
    }
}

lighthouse_view_sdk::export!(Append);
