//! The context view's answers, over any [`Store`] (the host import in the component, a
//! model in the tests).
//!
//! ```text
//! context/                       the packages (volatile, 0755); `mkdir` makes one
//! context/<pkg>/                 a package (0755): made by mkdir or by writing its manifest;
//!                                `rmdir` removes it when it has no manifest (ENOTEMPTY else)
//! context/<pkg>/manifest.json    writable (0644): what the package selects; `{}` until written;
//!                                `rm` removes the manifest (the package stays, empty)
//! context/<pkg>/files.json       read-only: the selected files, content and hashes (crate::files_json)
//! context/<pkg>/context.json     read-only: their annotations and recent events (crate::context_json)
//! ```
//!
//! A name that is not a package is not there (ENOENT), whatever it looks like; the two
//! documents exist only while the package has a manifest.
//!
//! Every answer is about the tree and log at the head when it is asked, and every
//! document's size is that of the document rendered at that head, so a getattr and the
//! reads after it agree as long as the head stays. The two rendered documents are kept
//! (a few, by package, head and caller) so that the reads of one document at one head
//! render it once; they are a cache, rebuilt from the store whenever missing. The
//! caller is part of the key: the store answers with the caller's eyes (a package holds
//! only what its reader may read), so one reader's document is never another's.

use std::cell::RefCell;
use std::rc::Rc;

use lighthouse_view_sdk::{attrs, error, path, slice_read};
use lighthouse_view_sdk::{
    Attrs, Caching, Caller, DirEntry, EventFilter, FsError, NodeKind, OpenMode, Store,
};

use crate::manifest::Record;
use crate::packages::{self, Existing, Package};
use crate::select::select;
use crate::{context_json, files_json, name};

pub const MANIFEST: &str = "manifest.json";
pub const FILES: &str = "files.json";
pub const CONTEXT: &str = "context.json";
/// Rendered documents kept.
const CACHED: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doc {
    Manifest,
    Files,
    Context,
}

impl Doc {
    fn by_name(name: &str) -> Option<Doc> {
        match name {
            MANIFEST => Some(Doc::Manifest),
            FILES => Some(Doc::Files),
            CONTEXT => Some(Doc::Context),
            _ => None,
        }
    }
}

/// What a view path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    Root,
    Package(&'a str),
    Doc(&'a str, Doc),
}

/// A rendered document: which, of which package, at which head, for whom.
type Key = (Doc, String, u64, Option<u64>);

pub struct Context<S> {
    pub store: S,
    rendered: RefCell<Vec<(Key, Rc<Vec<u8>>)>>,
    /// Who the call being served is for: the store shows each caller its own files
    /// and events, so a document rendered for one is never served to another.
    caller: RefCell<Option<u64>>,
}

/// The attributes of a writable directory (the root and packages: `mkdir` and the
/// manifest's `create` go through them). Every caller's, as far as the mode bits go (the
/// mount has `default_permissions`): `context:write` decides who may make packages, and
/// each package holds only what its reader may read.
fn dir(mtime_ns: i64) -> Attrs {
    Attrs {
        perm: 0o777,
        writable: true,
        ..attrs::dir(mtime_ns, Caching::Volatile)
    }
}

impl<S: Store> Context<S> {
    pub const fn new(store: S) -> Self {
        Context {
            store,
            rendered: RefCell::new(Vec::new()),
            caller: RefCell::new(None),
        }
    }

    /// The calls that follow are for `caller` (its rendered documents are its own).
    pub fn serving(&self, caller: &Caller) {
        *self.caller.borrow_mut() = Some(caller.sight);
    }

    /// `Err(NotFound)` for names that are not there (lookups, reads).
    fn target<'a>(&self, parts: &[&'a str]) -> Result<Target<'a>, FsError> {
        match *parts {
            [] => Ok(Target::Root),
            [pkg] if name::is_valid(pkg) => Ok(Target::Package(pkg)),
            [pkg, file] if name::is_valid(pkg) => Doc::by_name(file)
                .map(|doc| Target::Doc(pkg, doc))
                .ok_or(FsError::NotFound),
            _ => Err(FsError::NotFound),
        }
    }

    /// For writes and creates: a bad package name is EINVAL, with the rule.
    fn check_name(parts: &[&str]) -> Result<(), FsError> {
        match parts.first().and_then(|pkg| name::problem(pkg)) {
            Some(problem) => Err(FsError::Invalid(problem)),
            None => Ok(()),
        }
    }

    /// Package `pkg` after `seq`, if it exists (ENOENT else).
    fn existing(&self, pkg: &str, seq: u64) -> Result<Existing, FsError> {
        packages::one(&self.store, pkg, seq).ok_or(FsError::NotFound)
    }

    /// Package `pkg` after `seq`, if it has a manifest.
    fn package(&self, pkg: &str, seq: u64) -> Option<Package> {
        packages::one(&self.store, pkg, seq).and_then(|e| e.package)
    }

    /// The content of `doc` of `pkg` at `seq`, and the time of its manifest (ENOENT: no
    /// such package, or a document of a package without a manifest).
    fn render(&self, pkg: &str, doc: Doc, seq: u64) -> Result<(Rc<Vec<u8>>, i64), FsError> {
        let existing = self.existing(pkg, seq)?;
        let package = existing.package;
        let time_ns = package.as_ref().map_or(existing.time_ns, |p| p.time_ns);
        let package = match (doc, package) {
            (Doc::Manifest, None) => return Ok((Rc::new(b"{}\n".to_vec()), time_ns)),
            (Doc::Manifest, Some(p)) => {
                return Ok((
                    Rc::new(lighthouse_view_sdk::json::document(&p.manifest)?),
                    time_ns,
                ))
            }
            (_, None) => return Err(FsError::NotFound),
            (_, Some(p)) => p,
        };
        let key = (doc, pkg.to_string(), seq, *self.caller.borrow());
        if let Some((_, bytes)) = self.rendered.borrow().iter().find(|(k, _)| *k == key) {
            return Ok((bytes.clone(), time_ns));
        }
        let selection = select(&self.store, seq, &package.manifest.patterns())?;
        let bytes = Rc::new(match doc {
            Doc::Files => files_json::render(&self.store, pkg, &package, &selection, seq)?,
            _ => context_json::render(&self.store, pkg, &package, &selection, seq)?,
        });
        let mut rendered = self.rendered.borrow_mut();
        if rendered.len() >= CACHED {
            rendered.remove(0);
        }
        rendered.push((key, bytes.clone()));
        Ok((bytes, time_ns))
    }

    pub fn getattr(&self, view_path: &str) -> Result<Attrs, FsError> {
        let head = self.store.head();
        match self.target(&path::split(view_path)?)? {
            Target::Root => Ok(dir(self.head_time(head))),
            Target::Package(pkg) => Ok(dir(self.existing(pkg, head)?.time_ns)),
            Target::Doc(pkg, doc) => {
                let (bytes, mtime_ns) = self.render(pkg, doc, head)?;
                let file = attrs::file(bytes.len() as u64, mtime_ns, Caching::Volatile);
                Ok(match doc {
                    Doc::Manifest => Attrs {
                        perm: 0o666,
                        writable: true,
                        ..file
                    },
                    _ => file,
                })
            }
        }
    }

    pub fn readdir(&self, view_path: &str) -> Result<Vec<DirEntry>, FsError> {
        let head = self.store.head();
        match self.target(&path::split(view_path)?)? {
            Target::Root => Ok(packages::all(&self.store, head)
                .into_keys()
                .map(|pkg| attrs::entry(pkg, NodeKind::Directory))
                .collect()),
            Target::Package(pkg) => {
                let mut names = vec![MANIFEST];
                if self.existing(pkg, head)?.package.is_some() {
                    names.extend([FILES, CONTEXT]);
                }
                Ok(names
                    .into_iter()
                    .map(|n| attrs::entry(n, NodeKind::File))
                    .collect())
            }
            Target::Doc(..) => Err(FsError::NotADirectory),
        }
    }

    pub fn read(&self, view_path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match self.target(&path::split(view_path)?)? {
            Target::Root | Target::Package(_) => Err(FsError::IsADirectory),
            Target::Doc(pkg, doc) => {
                let (bytes, _) = self.render(pkg, doc, self.store.head())?;
                Ok(slice_read(&bytes, offset, len))
            }
        }
    }

    pub fn readlink(&self, view_path: &str) -> Result<String, FsError> {
        self.getattr(view_path)?;
        Err(error::not_a_symlink(view_path))
    }

    pub fn open(&self, view_path: &str, write: bool) -> Result<OpenMode, FsError> {
        match self.target(&path::split(view_path)?)? {
            Target::Root | Target::Package(_) => Err(FsError::IsADirectory),
            Target::Doc(pkg, Doc::Manifest) => {
                self.existing(pkg, self.store.head())?;
                Ok(OpenMode::Plain)
            }
            Target::Doc(..) if write => Err(FsError::ReadOnly),
            Target::Doc(pkg, _) => match self.package(pkg, self.store.head()) {
                Some(_) => Ok(OpenMode::Plain),
                None => Err(FsError::NotFound),
            },
        }
    }

    /// A write of `manifest.json`: one whole JSON document at offset 0, checked, then
    /// recorded as a `context` event (nothing is recorded when it is refused).
    pub fn write(&self, view_path: &str, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        let parts = path::split(view_path)?;
        Self::check_name(&parts)?;
        match self.target(&parts)? {
            Target::Root | Target::Package(_) => Err(FsError::IsADirectory),
            Target::Doc(_, Doc::Files | Doc::Context) => Err(FsError::ReadOnly),
            Target::Doc(pkg, Doc::Manifest) => {
                if offset != 0 {
                    return Err(FsError::Invalid(format!(
                        "{pkg}/{MANIFEST}: a manifest is one whole JSON document written at offset 0, not at {offset}"
                    )));
                }
                self.existing(pkg, self.store.head())?;
                let record = match Record::parse(data) {
                    Ok(record @ (Record::Manifest(_) | Record::Delete)) => Ok(record),
                    Ok(_) => Err("only a manifest or {\"delete\":true} is written here".into()),
                    Err(why) => Err(why),
                }
                .map_err(|why| FsError::Invalid(format!("{pkg}/{MANIFEST}: {why}")))?;
                self.store
                    .append(packages::OP, &packages::event_path(pkg), &record.body())?;
                u32::try_from(data.len()).map_err(error::internal)
            }
        }
    }

    /// `mkdir <pkg>` (recorded: the package exists from then on) and the creation of
    /// `<pkg>/manifest.json` in a package (it is there already, as `{}`); nothing else.
    pub fn create(&self, view_path: &str, kind: NodeKind) -> Result<Attrs, FsError> {
        let parts = path::split(view_path)?;
        if parts.len() > 2 {
            return Err(FsError::NotFound);
        }
        Self::check_name(&parts)?;
        let head = self.store.head();
        match (self.target(&parts), kind) {
            (Ok(Target::Package(pkg)), NodeKind::Directory) => {
                if packages::one(&self.store, pkg, head).is_some() {
                    return Err(FsError::Exists);
                }
                self.store.append(
                    packages::OP,
                    &packages::event_path(pkg),
                    &Record::Mkdir.body(),
                )?;
                self.getattr(view_path)
            }
            (Ok(Target::Doc(_, Doc::Manifest)), NodeKind::File) => self.getattr(view_path),
            _ => Err(FsError::PermissionDenied),
        }
    }

    /// `rmdir <pkg>`: only a package without a manifest (ENOTEMPTY else). `rm` of its
    /// `manifest.json`: the manifest goes (recorded), the package stays; the derived
    /// documents go with the manifest and are not removed on their own (EACCES).
    pub fn remove(&self, view_path: &str, dir: bool) -> Result<(), FsError> {
        let parts = path::split(view_path)?;
        let head = self.store.head();
        let (pkg, record) = match (self.target(&parts)?, dir) {
            (Target::Root, _) => return Err(FsError::PermissionDenied),
            (Target::Package(pkg), true) => match self.existing(pkg, head)?.package {
                Some(_) => return Err(FsError::NotEmpty),
                None => (pkg, Record::Delete),
            },
            (Target::Doc(pkg, Doc::Manifest), false) => match self.existing(pkg, head)?.package {
                Some(_) => (pkg, Record::Unlink),
                // The `{}` of a package without a manifest: nothing to remove.
                None => return Ok(()),
            },
            (Target::Doc(pkg, _), false) => {
                self.require_manifest(pkg, head)?;
                return Err(FsError::PermissionDenied);
            }
            (Target::Package(_), false) => return Err(FsError::IsADirectory),
            (Target::Doc(..), true) => return Err(FsError::NotADirectory),
        };
        self.store
            .append(packages::OP, &packages::event_path(pkg), &record.body())?;
        Ok(())
    }

    /// ENOENT unless `pkg` has a manifest (and so its derived documents).
    fn require_manifest(&self, pkg: &str, seq: u64) -> Result<(), FsError> {
        match self.existing(pkg, seq)?.package {
            Some(_) => Ok(()),
            None => Err(FsError::NotFound),
        }
    }

    /// The time of the newest event (0: empty log).
    fn head_time(&self, head: u64) -> i64 {
        if head == 0 {
            return 0;
        }
        // 0 too when the caller may not see the newest event.
        match self
            .store
            .events(head - 1, 1, &EventFilter::all())
            .events
            .first()
        {
            Some(event) if event.seq == head => event.time_ns,
            _ => 0,
        }
    }
}
