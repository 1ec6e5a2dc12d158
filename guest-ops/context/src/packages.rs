//! Packages, folded from the log: each `context` event at `/<pkg>` is a manifest (or a
//! deletion) for `<pkg>`, and the latest one up to a given seq is what the package is.
//! A body that does not parse as a manifest (not one this view wrote) is passed over.

use std::collections::BTreeMap;

use lighthouse_view_sdk::{Event, EventFilter, Store};

use crate::manifest::{Manifest, Record};
use crate::name;

/// The op of the events this view appends.
pub const OP: &str = "context";
/// Events asked of the store per call while folding.
const PAGE: u32 = 4096;

/// A package's current manifest and the event that recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub manifest: Manifest,
    pub seq: u64,
    pub time_ns: i64,
}

/// The store path of a package's events.
pub fn event_path(pkg: &str) -> String {
    format!("/{pkg}")
}

/// Every event passing `filter` that the caller may see with a seq in (after, upto], in
/// order (pages followed by their `through`, past the events the store hides).
pub fn events_upto<S: Store>(
    store: &S,
    after: u64,
    upto: u64,
    filter: &EventFilter,
    mut each: impl FnMut(&Event),
) {
    if after >= upto {
        return;
    }
    for event in store
        .events_after(after, filter)
        .page_size(PAGE)
        .take_while(|e| e.seq <= upto)
    {
        each(&event);
    }
}

/// A package that exists: made with `mkdir`, or given a manifest, and not deleted since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Its manifest (`None`: made with mkdir, or its manifest removed, none written since).
    pub package: Option<Package>,
    /// The time of its latest event.
    pub time_ns: i64,
}

fn fold(packages: &mut BTreeMap<String, Existing>, event: &Event) {
    let Some(pkg) = event.path.strip_prefix('/') else {
        return;
    };
    if event.op != OP || !name::is_valid(pkg) {
        return;
    }
    let time_ns = event.time_ns;
    let empty = Existing {
        package: None,
        time_ns,
    };
    match event.body.as_deref().map(|b| Record::parse(b.as_bytes())) {
        Some(Ok(Record::Manifest(manifest))) => drop(packages.insert(
            pkg.to_string(),
            Existing {
                package: Some(Package {
                    manifest,
                    seq: event.seq,
                    time_ns,
                }),
                time_ns,
            },
        )),
        Some(Ok(Record::Delete)) => drop(packages.remove(pkg)),
        Some(Ok(Record::Mkdir)) => drop(packages.entry(pkg.to_string()).or_insert(empty)),
        Some(Ok(Record::Unlink)) => {
            if let Some(existing) = packages.get_mut(pkg) {
                *existing = empty;
            }
        }
        _ => {}
    }
}

/// Every package that exists after event `seq`.
pub fn all<S: Store>(store: &S, seq: u64) -> BTreeMap<String, Existing> {
    let mut packages = BTreeMap::new();
    events_upto(store, 0, seq, &EventFilter::all().ops(&[OP]), |e| {
        fold(&mut packages, e)
    });
    packages
}

/// Package `pkg` after event `seq` (`None`: there is no such package).
pub fn one<S: Store>(store: &S, pkg: &str, seq: u64) -> Option<Existing> {
    let mut packages = BTreeMap::new();
    let path = event_path(pkg);
    let filter = EventFilter::under(path.clone()).ops(&[OP]);
    events_upto(store, 0, seq, &filter, |e| {
        if e.path == path {
            fold(&mut packages, e)
        }
    });
    packages.remove(pkg)
}
