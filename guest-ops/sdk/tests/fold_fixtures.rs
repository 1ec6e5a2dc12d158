//! ModelStore against the host's projection: the root suite's `tests/fold_models.rs`
//! writes seeded event sequences with the projection's tree after every step as JSON
//! fixtures into a directory and runs this test with `LIGHTHOUSE_FOLD_FIXTURES` naming
//! it. Each sequence is pushed into a [`ModelStore`] (every event as the user that made
//! it) and its tree at each checkpoint is read back through the [`Store`] calls a view
//! makes (`list_at`, `stat_at`, `read_at`, `hash_at`, `readlink_at`) and compared: paths,
//! kinds, file sizes and content hashes, symlink targets, and owners (both keep them; the
//! root's is the mount's in ModelStore, so it is left out). See the root test for what is
//! generated and why.
//!
//! Run alone (no fixtures), it has nothing to compare and says so.

use std::collections::BTreeMap;
use std::path::Path;

use lighthouse_view_sdk::model::{hash_hex, ModelStore};
use lighthouse_view_sdk::serde_json::{self, json, Value};
use lighthouse_view_sdk::{NodeKind, Store};

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// ModelStore's tree at `seq`, in the fixtures' terms.
fn shown(m: &ModelStore, seq: u64) -> Result<BTreeMap<String, Value>, String> {
    let s = &m;
    let mut out = BTreeMap::new();
    out.insert("/".to_string(), json!({"kind": "dir", "uid": null}));
    let mut dirs = vec!["/".to_string()];
    while let Some(dir) = dirs.pop() {
        let entries = s
            .list_at(&dir, seq)
            .map_err(|e| format!("list_at({dir}, {seq}): {e:?}"))?;
        for entry in entries {
            let path = join(&dir, &entry.name);
            let attrs = s
                .stat_at(&path, seq)
                .map_err(|e| format!("stat_at({path}, {seq}): {e:?}"))?;
            if attrs.kind != entry.kind {
                return Err(format!(
                    "{path}: listed as {:?}, stat says {:?}",
                    entry.kind, attrs.kind
                ));
            }
            let mut v = match attrs.kind {
                NodeKind::Directory => {
                    dirs.push(path.clone());
                    json!({"kind": "dir"})
                }
                NodeKind::File => {
                    let data = s
                        .read_at(&path, seq, 0, u32::MAX)
                        .map_err(|e| format!("read_at({path}, {seq}): {e:?}"))?;
                    let hash = s
                        .hash_at(&path, seq)
                        .map_err(|e| format!("hash_at({path}, {seq}): {e:?}"))?;
                    if data.len() as u64 != attrs.size || hash_hex(&data) != hash {
                        return Err(format!(
                            "{path}: stat size {}, hash {hash}, but read {} bytes hashing {}",
                            attrs.size,
                            data.len(),
                            hash_hex(&data)
                        ));
                    }
                    json!({"kind": "file", "size": attrs.size, "hash": hash})
                }
                NodeKind::Symlink => {
                    let target = s
                        .readlink_at(&path, seq)
                        .map_err(|e| format!("readlink_at({path}, {seq}): {e:?}"))?;
                    json!({"kind": "symlink", "target": target})
                }
                other => return Err(format!("{path}: a {other:?}")),
            };
            if attrs.owner.is_some_and(|o| o.uid != o.gid) {
                return Err(format!("{path}: owner {:?}, uid != gid", attrs.owner));
            }
            v["uid"] = json!(attrs.owner.map(|o| o.uid));
            out.insert(path, v);
        }
    }
    Ok(out)
}

/// Folds one fixture; the first checkpoint where ModelStore shows another tree.
fn check(doc: &Value) -> Result<usize, String> {
    let m = ModelStore::new(0);
    let events = doc["events"].as_array().ok_or("no events")?;
    for e in events {
        let uid = e["uid"].as_u64().ok_or("event without uid")? as u32;
        m.as_user(uid, uid);
        let data: Option<Vec<u8>> = serde_json::from_value(e["data"].clone())
            .map_err(|err| format!("data of {e}: {err}"))?;
        m.push(
            e["op"].as_str().ok_or("event without op")?,
            e["path"].as_str().ok_or("event without path")?,
            e["path2"].as_str(),
            data.as_deref(),
        );
    }
    let checkpoints = doc["checkpoints"].as_array().ok_or("no checkpoints")?;
    for c in checkpoints {
        let seq = c["seq"].as_u64().ok_or("checkpoint without seq")?;
        let want: BTreeMap<String, Value> = serde_json::from_value(c["tree"].clone())
            .map_err(|err| format!("tree at {seq}: {err}"))?;
        let got = shown(&m, seq)?;
        if got != want {
            let mut diff = String::new();
            for path in want
                .keys()
                .chain(got.keys().filter(|p| !want.contains_key(*p)))
            {
                let (w, g) = (want.get(path), got.get(path));
                if w != g {
                    diff += &format!(
                        "  {path}: projection {}, ModelStore {}\n",
                        w.map_or("absent".into(), Value::to_string),
                        g.map_or("absent".into(), Value::to_string)
                    );
                }
            }
            let log: String = events
                .iter()
                .take(seq as usize)
                .enumerate()
                .map(|(i, e)| {
                    let data = e["data"]
                        .as_array()
                        .map(|d| format!(" ({} bytes)", d.len()));
                    format!(
                        "  {:>3} {} {}{}{} (uid {})\n",
                        i + 1,
                        e["op"].as_str().unwrap_or("?"),
                        e["path"].as_str().unwrap_or("?"),
                        e["path2"]
                            .as_str()
                            .map_or(String::new(), |p| format!("-> {p}")),
                        data.unwrap_or_default(),
                        e["uid"]
                    )
                })
                .collect();
            return Err(format!(
                "after event {seq} ModelStore shows another tree than the projection:\n{diff}events:\n{log}"
            ));
        }
    }
    Ok(checkpoints.len())
}

#[test]
fn model_store_folds_as_the_projection() {
    let Some(dir) = std::env::var_os("LIGHTHOUSE_FOLD_FIXTURES") else {
        println!(
            "no LIGHTHOUSE_FOLD_FIXTURES: nothing to fold (the root suite's fold_models runs this)"
        );
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(Path::new(&dir))
        .expect("the fixtures directory")
        .map(|e| e.expect("a fixture").path())
        .collect();
    files.sort();
    let (mut sequences, mut checkpoints, mut failed) = (0, 0, Vec::new());
    for file in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(file).expect("read a fixture"))
            .expect("a JSON fixture");
        let seed = &doc["seed"];
        match check(&doc) {
            Ok(n) => {
                sequences += 1;
                checkpoints += n;
            }
            Err(e) => {
                println!("seed {seed}: {e}");
                failed.push(seed.to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "ModelStore differs from the projection for seeds {failed:?}"
    );
    println!("folded {sequences} sequences, {checkpoints} checkpoints");
}
