//! An event as the columns of a log table: what every store's log keeps, whichever
//! database holds it (SQLite in `log.rs`, PostgreSQL in `postgres/`). Each backend maps
//! its rows to and from [`EventRow`]; what the columns mean is decided here once.

use std::sync::Arc;

use anyhow::{bail, Context};

use super::event::{Change, Event};
use super::Hash;
use crate::vocab::{Caller, FileKind, RenameFlags};

/// The columns, in table order.
pub const COLUMNS: &str =
    "seq, time_ns, agent, uid, gid, pid, op, path, path2, kind, mode, owner, grp, \
     size, hash, atime_ns, mtime_ns, flags, rdev, view, body, value";

/// One event as columns (`None`: NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRow {
    pub seq: i64,
    pub time_ns: i64,
    pub agent: Option<String>,
    pub uid: i64,
    pub gid: i64,
    pub pid: i64,
    pub op: String,
    pub path: String,
    /// A rename's or link's destination, a symlink's target, an attribute's name.
    pub path2: Option<String>,
    pub kind: Option<String>,
    pub mode: Option<i64>,
    pub owner: Option<i64>,
    pub grp: Option<i64>,
    pub size: Option<i64>,
    pub hash: Option<String>,
    pub atime_ns: Option<i64>,
    pub mtime_ns: Option<i64>,
    pub flags: Option<i64>,
    pub rdev: Option<i64>,
    pub view: Option<String>,
    pub body: Option<String>,
    pub value: Option<Vec<u8>>,
}

/// A row of a `SELECT {COLUMNS}` as a database's client reads it: each backend reads
/// its rows through this, and [`EventRow::read`] decides what they hold.
pub trait ColumnRow {
    type Error: std::error::Error + Send + Sync + 'static;
    fn int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, Self::Error>;
}

impl EventRow {
    /// The columns of a row of a `SELECT {COLUMNS}`; an error names the event.
    pub fn read<R: ColumnRow>(row: &R) -> anyhow::Result<EventRow> {
        let seq = row.int(0)?.context("an event without a seq")?;
        let columns = || -> anyhow::Result<EventRow> {
            let int = |i: usize, what: &str| -> anyhow::Result<i64> {
                row.int(i)?.with_context(|| format!("missing {what}"))
            };
            let text = |i: usize, what: &str| -> anyhow::Result<String> {
                row.text(i)?.with_context(|| format!("missing {what}"))
            };
            Ok(EventRow {
                seq,
                time_ns: int(1, "time")?,
                agent: row.text(2)?,
                uid: int(3, "uid")?,
                gid: int(4, "gid")?,
                pid: int(5, "pid")?,
                op: text(6, "op")?,
                path: text(7, "path")?,
                path2: row.text(8)?,
                kind: row.text(9)?,
                mode: row.int(10)?,
                owner: row.int(11)?,
                grp: row.int(12)?,
                size: row.int(13)?,
                hash: row.text(14)?,
                atime_ns: row.int(15)?,
                mtime_ns: row.int(16)?,
                flags: row.int(17)?,
                rdev: row.int(18)?,
                view: row.text(19)?,
                body: row.text(20)?,
                value: row.bytes(21)?,
            })
        };
        columns().with_context(|| format!("event {seq} is malformed"))
    }

    /// The columns of `e`.
    pub fn of(e: &Event) -> EventRow {
        let mut row = EventRow {
            seq: e.seq as i64,
            time_ns: e.time,
            agent: e.agent.as_deref().map(str::to_owned),
            uid: e.caller.uid.into(),
            gid: e.caller.gid.into(),
            pid: e.caller.pid.into(),
            op: e.change.op().to_owned(),
            path: e.change.path().to_owned(),
            path2: e.change.path2().map(str::to_owned),
            view: e.change.view().map(str::to_owned),
            body: e.change.body().map(str::to_owned),
            value: e.change.xattr_value().map(<[u8]>::to_vec),
            ..EventRow::default()
        };
        match &e.change {
            Change::Create {
                kind,
                perm,
                uid,
                gid,
                rdev,
                ..
            } => {
                row.kind = Some(kind.as_str().to_owned());
                row.mode = Some((*perm).into());
                row.owner = Some((*uid).into());
                row.grp = Some((*gid).into());
                row.rdev = (*rdev != 0).then_some((*rdev).into());
            }
            Change::Symlink { uid, gid, .. } => {
                row.kind = Some("symlink".to_owned());
                row.owner = Some((*uid).into());
                row.grp = Some((*gid).into());
            }
            Change::Write {
                hash, size, mtime, ..
            } => {
                row.size = Some(*size as i64);
                row.hash = hash.map(|h| h.to_hex());
                row.mtime_ns = Some(*mtime);
            }
            Change::SetAttr {
                perm,
                uid,
                gid,
                atime,
                mtime,
                ..
            } => {
                row.mode = perm.map(i64::from);
                row.owner = uid.map(i64::from);
                row.grp = gid.map(i64::from);
                row.atime_ns = *atime;
                row.mtime_ns = *mtime;
            }
            Change::Rename { flags, .. } => row.flags = Some(flags.to_raw().into()),
            Change::SetXattr { value, .. } => row.size = Some(value.len() as i64),
            Change::Link { .. }
            | Change::Unlink { .. }
            | Change::Rmdir { .. }
            | Change::RemoveXattr { .. }
            | Change::View { .. } => {}
        }
        row
    }

    /// The event these columns hold; an error names what is missing or malformed.
    pub fn into_event(self) -> anyhow::Result<Event> {
        let seq = self.seq;
        self.event()
            .with_context(|| format!("event {seq} is malformed"))
    }

    fn event(self) -> anyhow::Result<Event> {
        let EventRow {
            seq,
            time_ns,
            agent,
            uid,
            gid,
            pid,
            op,
            path,
            path2,
            kind,
            mode,
            owner,
            grp,
            size,
            hash,
            atime_ns,
            mtime_ns,
            flags,
            rdev,
            view,
            body,
            value,
        } = self;
        let text = |v: Option<String>, what: &str| -> anyhow::Result<Arc<str>> {
            v.map(Arc::from).with_context(|| format!("missing {what}"))
        };
        let id = |v: Option<i64>| v.map(|v| v as u32);
        let path: Arc<str> = path.into();
        let hash = match hash {
            Some(h) => Some(Hash::from_hex(&h).with_context(|| format!("bad hash {h:?}"))?),
            None => None,
        };
        let change = match op.as_str() {
            "create" | "mkdir" | "mknod" => {
                let kind_s = text(kind, "kind")?;
                let kind =
                    FileKind::parse(&kind_s).with_context(|| format!("bad kind {kind_s:?}"))?;
                Change::Create {
                    path,
                    kind,
                    perm: id(mode).context("missing mode")?,
                    uid: id(owner).context("missing owner")?,
                    gid: id(grp).context("missing group")?,
                    rdev: id(rdev).unwrap_or(0),
                }
            }
            "symlink" => Change::Symlink {
                path,
                target: text(path2, "target")?,
                uid: id(owner).context("missing owner")?,
                gid: id(grp).context("missing group")?,
            },
            "write" => Change::Write {
                path,
                hash,
                size: size.context("missing size")? as u64,
                mtime: mtime_ns.context("missing mtime")?,
            },
            "setattr" => Change::SetAttr {
                path,
                perm: id(mode),
                uid: id(owner),
                gid: id(grp),
                atime: atime_ns,
                mtime: mtime_ns,
            },
            "rename" => Change::Rename {
                from: path,
                to: text(path2, "destination")?,
                flags: RenameFlags::from_raw(id(flags).unwrap_or(0)).context("bad rename flags")?,
            },
            "link" => Change::Link {
                from: path,
                to: text(path2, "destination")?,
            },
            "unlink" => Change::Unlink { path },
            "rmdir" => Change::Rmdir { path },
            "setxattr" => Change::SetXattr {
                path,
                name: text(path2, "attribute name")?,
                value: value.context("missing attribute value")?.into(),
            },
            "removexattr" => Change::RemoveXattr {
                path,
                name: text(path2, "attribute name")?,
            },
            op => match view {
                Some(view) => Change::View {
                    view: view.into(),
                    op: op.into(),
                    path,
                    body: text(body, "body")?,
                },
                None => bail!("unknown operation {op:?}"),
            },
        };
        Ok(Event {
            seq: seq as u64,
            time: time_ns,
            agent: agent.map(Arc::from),
            caller: Caller {
                uid: uid as u32,
                gid: gid as u32,
                pid: pid as u32,
                mount: 0,
                agent: crate::policy::AgentId::DEFAULT,
                agent_name: None,
            },
            change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_survives_its_columns() {
        let changes = [
            Change::Create {
                path: "/a".into(),
                kind: FileKind::CharDev,
                perm: 0o640,
                uid: 7,
                gid: 8,
                rdev: 0x0103,
            },
            Change::Symlink {
                path: "/l".into(),
                target: "../x y".into(),
                uid: 1,
                gid: 2,
            },
            Change::Write {
                path: "/a".into(),
                hash: Some(Hash::of_empty()),
                size: 5,
                mtime: -3,
            },
            Change::Write {
                path: "/e".into(),
                hash: None,
                size: 0,
                mtime: 9,
            },
            Change::SetAttr {
                path: "/a".into(),
                perm: None,
                uid: Some(u32::MAX),
                gid: None,
                atime: Some(1),
                mtime: None,
            },
            Change::Rename {
                from: "/a".into(),
                to: "/b".into(),
                flags: RenameFlags::from_raw(libc::RENAME_NOREPLACE).unwrap(),
            },
            Change::Link {
                from: "/b".into(),
                to: "/c".into(),
            },
            Change::Unlink { path: "/c".into() },
            Change::Rmdir { path: "/d".into() },
            Change::SetXattr {
                path: "/b".into(),
                name: "user.k".into(),
                value: vec![0, 255, 1].into(),
            },
            Change::RemoveXattr {
                path: "/b".into(),
                name: "user.k".into(),
            },
            Change::View {
                view: "shadows".into(),
                op: "annotate".into(),
                path: "/b".into(),
                body: "{\"n\":1}".into(),
            },
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let e = Event {
                seq: i as u64 + 1,
                time: 1_000 + i as i64,
                agent: (i % 2 == 0).then(|| Arc::from("agent-a")),
                caller: Caller {
                    uid: 1000,
                    gid: 100,
                    pid: 4242,
                    ..Caller::HOST
                },
                change,
            };
            let back = EventRow::of(&e).into_event().unwrap();
            assert_eq!(back.seq, e.seq);
            assert_eq!(back.time, e.time);
            assert_eq!(back.agent, e.agent);
            assert_eq!(
                (back.caller.uid, back.caller.gid, back.caller.pid),
                (1000, 100, 4242)
            );
            assert_eq!(back.change, e.change);
        }
        let bad = EventRow {
            seq: 9,
            op: "create".into(),
            path: "/x".into(),
            ..EventRow::default()
        };
        let err = format!("{:#}", bad.into_event().unwrap_err());
        assert!(
            err.contains("event 9 is malformed") && err.contains("kind"),
            "{err}"
        );
    }
}
