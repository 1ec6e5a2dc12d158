//! Which files of the live tree a manifest selects, at one seq.
//!
//! A plain path selects that file, or every file below it when it is a directory; a glob
//! walks the tree from its literal base (the components before the first wildcard),
//! going only into directories below which it may still match. Symlinks are neither
//! selected nor followed. Files come out sorted, each once however many patterns
//! select it. The walk is bounded: [`MAX_ENTRIES`] directory entries looked at and
//! [`MAX_FILES`] files selected in all; where it stopped, [`Selection::cut`] says so.

use std::collections::BTreeSet;

use lighthouse_view_sdk::{path, FsError, NodeKind, Store};

use crate::glob::Pattern;

/// Directory entries a selection looks at, at most.
pub const MAX_ENTRIES: usize = 10_000;
/// Files a selection holds, at most.
pub const MAX_FILES: usize = 500;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Store paths (`/src/main.rs`), sorted.
    pub files: BTreeSet<String>,
    /// The patterns (normalized) that selected no file.
    pub missing: Vec<String>,
    /// Why the selection stopped short, when it did.
    pub cut: Option<String>,
    /// What the patterns reached that the caller may not read: files (`/secret/key`)
    /// and directories it may not list (`/private/`), sorted.
    pub denied: BTreeSet<String>,
}

struct Walk<'a, S> {
    store: &'a S,
    seq: u64,
    entries: usize,
    /// Denials met so far (counting those naming what `denied` already holds).
    denials: usize,
    selection: Selection,
}

/// The files `patterns` select in the tree after event `seq`.
pub fn select<S: Store>(store: &S, seq: u64, patterns: &[Pattern]) -> Result<Selection, FsError> {
    let mut walk = Walk {
        store,
        seq,
        entries: 0,
        denials: 0,
        selection: Selection::default(),
    };
    for pattern in patterns {
        if walk.selection.cut.is_some() {
            break;
        }
        let denials = walk.denials;
        let found = match pattern.literal() {
            Some(path) => walk.literal(&path)?,
            None => walk.glob(pattern)?,
        };
        // A pattern that reached only what the caller may not read is not missing: the
        // reader is told it was denied, not that nothing is there.
        let reached_denied = walk.denials > denials;
        if !found && !reached_denied && walk.selection.cut.is_none() {
            walk.selection.missing.push(pattern.text().to_string());
        }
    }
    Ok(walk.selection)
}

impl<S: Store> Walk<'_, S> {
    /// Selects `path`; `false` when that would go past MAX_FILES (and says so). A file
    /// the caller may not read is named in `denied` instead (taking no place).
    fn take(&mut self, path: String) -> Result<bool, FsError> {
        if self.selection.files.contains(&path) {
            return Ok(true);
        }
        if self.selection.denied.contains(&path) {
            self.denials += 1;
            return Ok(true);
        }
        // Its hash needs the read permission its content does.
        match self.store.hash_at(&path, self.seq) {
            Ok(_) => {}
            Err(FsError::PermissionDenied) => {
                self.deny(path);
                return Ok(true);
            }
            Err(FsError::NotFound | FsError::NotADirectory) => return Ok(true),
            Err(other) => return Err(other),
        }
        let files = &mut self.selection.files;
        if files.len() >= MAX_FILES && !files.contains(&path) {
            self.selection.cut = Some(format!(
                "stopped at {MAX_FILES} files: the selection has more"
            ));
            return Ok(false);
        }
        files.insert(path);
        Ok(true)
    }

    fn deny(&mut self, name: String) {
        self.denials += 1;
        self.selection.denied.insert(name);
    }

    /// What `path` is; `None` when it is not there, or when the caller may not reach it
    /// (then named in `denied`).
    fn kind(&mut self, path: &str) -> Result<Option<NodeKind>, FsError> {
        match self.store.stat_at(path, self.seq) {
            Ok(attrs) => Ok(Some(attrs.kind)),
            Err(FsError::NotFound | FsError::NotADirectory) => Ok(None),
            Err(FsError::PermissionDenied) => {
                let denied = self.unlistable_above(path)?;
                self.deny(denied);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// What to name for `path`, which the caller may not reach: the first directory
    /// above it that it may not list (as `/private/`: the reader learns no more than
    /// that directory's name), or `path` itself when no directory is at fault (a policy
    /// denying it).
    fn unlistable_above(&self, path: &str) -> Result<String, FsError> {
        let parts = path::split(path)?;
        for depth in 0..parts.len() {
            let dir = path::join(&parts[..depth]);
            match self.store.list_at(&dir, self.seq) {
                Err(FsError::PermissionDenied) => return Ok(dir_name(&dir)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(path.to_string())
    }

    /// A plain path: the file, or every file below the directory.
    fn literal(&mut self, path: &str) -> Result<bool, FsError> {
        match self.kind(path)? {
            Some(NodeKind::File) => self.take(path.to_string()),
            Some(NodeKind::Directory) => {
                let base = path::split(path)?.iter().map(|s| s.to_string()).collect();
                self.walk(base, &|_: &[String]| true, &|_: &[String]| true)
            }
            _ => Ok(false),
        }
    }

    fn glob(&mut self, pattern: &Pattern) -> Result<bool, FsError> {
        let base = pattern.base();
        if self.kind(&path::join(&base))? != Some(NodeKind::Directory) {
            return Ok(false);
        }
        self.walk(
            base,
            &|file: &[String]| pattern.matches(file),
            &|dir: &[String]| pattern.may_match_below(dir),
        )
    }

    /// Depth first from directory `base`, in name order: selects the files `wanted`,
    /// enters the directories `enter`. `true` when it selected at least one file.
    fn walk(
        &mut self,
        base: Vec<String>,
        wanted: &dyn Fn(&[String]) -> bool,
        enter: &dyn Fn(&[String]) -> bool,
    ) -> Result<bool, FsError> {
        let mut found = false;
        let mut stack = vec![base];
        while let Some(dir) = stack.pop() {
            let mut entries = match self.store.list_at(&path::join(&dir), self.seq) {
                Ok(entries) => entries,
                Err(FsError::NotFound | FsError::NotADirectory) => continue,
                Err(FsError::PermissionDenied) => {
                    // Named once, and not walked: its names are not the caller's to see.
                    self.deny(dir_name(&path::join(&dir)));
                    continue;
                }
                Err(other) => return Err(other),
            };
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let mut subdirs = Vec::new();
            for entry in entries {
                self.entries += 1;
                if self.entries > MAX_ENTRIES {
                    self.selection.cut = Some(format!(
                        "stopped after {MAX_ENTRIES} directory entries: the tree is larger"
                    ));
                    return Ok(found);
                }
                let mut child = dir.clone();
                child.push(entry.name);
                match entry.kind {
                    NodeKind::File if wanted(&child) => {
                        if !self.take(path::join(&child))? {
                            return Ok(found);
                        }
                        found |= self.selection.files.contains(&path::join(&child));
                    }
                    NodeKind::Directory if enter(&child) => subdirs.push(child),
                    _ => {}
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(found)
    }
}

/// A directory as `denied` names it: its path with a trailing `/`.
fn dir_name(dir: &str) -> String {
    if dir.ends_with('/') {
        dir.to_string()
    } else {
        format!("{dir}/")
    }
}
