//! [`ViewHost`]: the public face of the view runtime.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, Trap};

use super::answers::{Answer, AnswerCache, Op};
use super::bindings::{wit, wit_caller, ViewComponentPre, ViewExports};
use super::compile_cache::{CompileCache, Compiled};
use super::component::{check_view_name, compile, new_linker};
use super::engine::new_engine;
use super::error::{ViewCallError, FAULT_KINDS};
use super::instance_state::{CallContext, InstanceState};
use super::limits::ViewLimits;
use super::pool::{Loaded, ViewInstance};
use super::store_import::StoreAccess;
use crate::contract::{Caching, Chunk, NodeKind, OpenMode, ViewAttrs, ViewDirEntry, ViewInfo};
use crate::core::view_section::{AnswerCacheFigures, RefusedView, ViewStatus};
use crate::core::Caller;
use crate::core::Viewer;
use crate::core::{Latencies, LatencyCounts};

/// A loaded view, as `views()` (and `debug/views.json`) reports it: the core's
/// [`ViewStatus`], which is what the view host knows of a view.
pub type LoadedView = ViewStatus;

/// A component ready to serve: compiled, checked, instantiated once, named.
pub struct Prepared {
    pub info: ViewInfo,
    pre: ViewComponentPre<InstanceState>,
    /// The instance that answered `info`; it joins the pool.
    instance: ViewInstance,
    pub compiled: Compiled,
    /// How long preparing took.
    pub took: Duration,
}

/// What [`ViewHost::install`] did.
#[derive(Debug, Clone)]
pub struct Installed {
    pub info: ViewInfo,
    pub generation: u64,
    /// The generation it replaced (`None`: a new name).
    pub replaced: Option<u64>,
}

/// What a call of a view's export gives: a trap, or the view's answer.
type CallResult<R> = wasmtime::Result<Result<R, wit::FsError>>;

/// One view name: the current generation, swapped atomically, and its fault record.
struct ViewSlot {
    name: Arc<str>,
    current: ArcSwap<Loaded>,
    faults: Mutex<Faults>,
    /// Calls and faults over every generation (never reset: for `/metrics`).
    stats: CallStats,
    /// Generations this one replaced, alive while files opened on them are open.
    retired: Mutex<Vec<Weak<Loaded>>>,
}

impl ViewSlot {
    /// `generation` of this view while it is loaded: the current one, or one that
    /// something (an open file) still holds.
    fn find(&self, generation: u64) -> Option<Arc<Loaded>> {
        let current = self.current.load_full();
        if current.generation == generation {
            return Some(current);
        }
        self.retired
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .find(|l| l.generation == generation)
    }
}

/// One generation of one view, as an open file holds it: calls on it go to that
/// generation even after a hot swap has replaced it.
#[derive(Clone)]
pub struct Version {
    slot: Arc<ViewSlot>,
    loaded: Arc<Loaded>,
}

impl Version {
    pub fn generation(&self) -> u64 {
        self.loaded.generation
    }

    pub fn view(&self) -> &str {
        &self.slot.name
    }
}

/// What a call names: a view by name (its current generation), or a [`Version`].
pub trait Target {
    fn version(self, host: &ViewHost) -> Result<Version, ViewCallError>;
}

impl Target for &str {
    fn version(self, host: &ViewHost) -> Result<Version, ViewCallError> {
        host.version(self, None)
    }
}

impl Target for &Version {
    fn version(self, _: &ViewHost) -> Result<Version, ViewCallError> {
        Ok(self.clone())
    }
}

/// Monotonic counters of one view's calls into wasm.
#[derive(Default)]
struct CallStats {
    latencies: Latencies,
    /// By [`ViewCallError::fault_kind`], in [`FAULT_KINDS`] order.
    faults: [AtomicU64; FAULT_KINDS.len()],
}

/// One view's calls into wasm and its faults, since it was first loaded.
#[derive(Debug, Clone)]
pub struct ViewCallFigures {
    pub view: String,
    pub calls: LatencyCounts,
    /// (kind, count) for every kind in [`FAULT_KINDS`].
    pub faults: Vec<(&'static str, u64)>,
}

#[derive(Default)]
struct Faults {
    last_error: Option<String>,
    count: u64,
}

/// Loads view components and calls into them. Shared by every FUSE worker (it is
/// `Send + Sync`; wrap it in an `Arc`).
///
/// All methods are synchronous and may run wasm: call them from plain threads (FUSE
/// workers) or tokio blocking sections (`spawn_blocking`, `block_in_place`), never
/// directly from an async task. A call runs on the caller's stack (up to
/// `ViewLimits::max_wasm_stack` of it) and takes at most `ViewLimits::call_deadline`.
///
/// Per-call methods take the view's name (its top-level directory), the caller, and a
/// path relative to the view's root ("/" is the view's directory itself).
pub struct ViewHost {
    engine: Engine,
    linker: Linker<InstanceState>,
    limits: Arc<ViewLimits>,
    store_access: Arc<dyn StoreAccess>,
    /// Read on every call without a lock; replaced (copy-on-write) when a name is added
    /// or removed, under `admin`.
    views: ArcSwap<FxHashMap<Arc<str>, Arc<ViewSlot>>>,
    admin: Mutex<()>,
    next_generation: AtomicU64,
    /// Answers views declared immutable, keyed by generation.
    answers: AnswerCache,
    /// Components offered and not loaded, by origin (the newest refusal of each).
    refused: Mutex<Vec<RefusedView>>,
    /// Compiled components on disk (none: always compile).
    compiled: Option<CompileCache>,
}

impl ViewHost {
    /// A host with no views loaded. Starts the wasmtime engine (and its epoch ticker
    /// thread, which stops when the host and every instance are gone).
    pub fn new(limits: ViewLimits, store_access: Arc<dyn StoreAccess>) -> Result<Self> {
        let engine = new_engine(&limits)?;
        let linker = new_linker(&engine)?;
        Ok(ViewHost {
            engine,
            linker,
            answers: AnswerCache::new(limits.answer_cache_bytes),
            limits: Arc::new(limits),
            store_access,
            views: ArcSwap::from_pointee(FxHashMap::default()),
            admin: Mutex::new(()),
            next_generation: AtomicU64::new(1),
            refused: Mutex::new(Vec::new()),
            compiled: None,
        })
    }

    pub fn limits(&self) -> &ViewLimits {
        &self.limits
    }

    /// Keeps compiled components in `dir` (see [`CompileCache`]).
    pub fn with_compile_cache(mut self, dir: &Path) -> Result<Self> {
        self.compiled = Some(CompileCache::open(dir, &self.engine)?);
        Ok(self)
    }

    /// Compiles and checks a component without loading it (`lighthouse-fs views check`):
    /// compile, link against the contract, instantiate, call `info`, check its name.
    /// Compiling takes tens of milliseconds (a second in an unoptimised build).
    pub fn check(&self, bytes: &[u8]) -> Result<ViewInfo> {
        self.prepare(bytes).map(|p| p.info)
    }

    /// Loads a component and serves it under the name its `info` gives: [`prepare`]
    /// then [`install`].
    ///
    /// [`prepare`]: ViewHost::prepare
    /// [`install`]: ViewHost::install
    pub fn load(&self, bytes: &[u8], origin: &str) -> Result<ViewInfo> {
        let prepared = self
            .prepare(bytes)
            .with_context(|| format!("cannot load view from {origin}"))?;
        Ok(self.install(prepared, origin).info)
    }

    /// Everything that can fail about a component, with no effect on what is served:
    /// compile (or take from the compile cache), check against the contract, instantiate,
    /// ask `info`, check the name.
    pub fn prepare(&self, bytes: &[u8]) -> Result<Prepared> {
        let started = Instant::now();
        let (pre, compiled) = compile(
            &self.engine,
            &self.linker,
            &self.limits,
            self.compiled.as_ref(),
            bytes,
        )?;
        let mut instance =
            Loaded::instantiate(&pre, &self.engine, self.store_access.clone(), &self.limits)
                .map_err(anyhow::Error::from)
                .context("cannot instantiate the component")?;
        let info = match instance
            .view
            .lighthouse_fs_view()
            .call_info(&mut instance.store)
        {
            Ok(info) => ViewInfo::from(info),
            Err(e) => {
                let failure = classify(&e, &instance.store, "(loading)".into(), &self.limits);
                tracing::debug!("the component's `info` failed: {e:?}");
                anyhow::bail!("the component's `info` failed: {failure}");
            }
        };
        check_view_name(&info.name)?;
        Ok(Prepared {
            info,
            pre,
            instance,
            compiled,
            took: started.elapsed(),
        })
    }

    /// Serves a prepared component under its name. A view already loaded under that name
    /// is replaced atomically (hot swap): calls in flight finish on the old generation,
    /// files opened on it keep it, later calls use the new one. `origin` is for humans (a
    /// file path, `built-in history`).
    pub fn install(&self, prepared: Prepared, origin: &str) -> Installed {
        let Prepared {
            info,
            pre,
            instance,
            compiled,
            took,
        } = prepared;
        let _admin = self.admin.lock();
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let loaded = Arc::new(Loaded::new(
            generation,
            info.clone(),
            origin.to_owned(),
            pre,
            self.store_access.clone(),
            self.limits.clone(),
        ));
        loaded.checkin(instance);
        let from_cache = compiled == Compiled::FromCache;
        let prepare_ms = took.as_secs_f64() * 1e3;
        let views = self.views.load();
        let replaced = if let Some(slot) = views.get(info.name.as_str()) {
            let old = slot.current.swap(loaded);
            old.retire();
            *slot.faults.lock() = Faults::default();
            let mut retired = slot.retired.lock();
            retired.retain(|l| l.strong_count() > 0);
            retired.push(Arc::downgrade(&old));
            drop(retired);
            tracing::info!(view = %info.name, version = %info.version, origin, generation,
                replaced = old.generation, from_cache, prepare_ms, "view swapped");
            Some(old.generation)
        } else {
            let name: Arc<str> = info.name.as_str().into();
            let slot = Arc::new(ViewSlot {
                name: name.clone(),
                current: ArcSwap::new(loaded),
                faults: Mutex::new(Faults::default()),
                stats: CallStats::default(),
                retired: Mutex::new(Vec::new()),
            });
            let mut next = FxHashMap::clone(&views);
            next.insert(name, slot);
            self.views.store(Arc::new(next));
            tracing::info!(view = %info.name, version = %info.version, origin, generation,
                from_cache, prepare_ms, "view loaded");
            None
        };
        Installed {
            info,
            generation,
            replaced,
        }
    }

    /// Stops serving a view; calls in flight finish. `false` when no such view.
    pub fn unload(&self, name: &str) -> bool {
        let _admin = self.admin.lock();
        let views = self.views.load();
        let Some(slot) = views.get(name) else {
            return false;
        };
        slot.current.load().retire();
        let mut next = FxHashMap::clone(&views);
        next.remove(name);
        self.views.store(Arc::new(next));
        tracing::info!(view = name, "view unloaded");
        true
    }

    /// The loaded views, sorted by name.
    pub fn views(&self) -> Vec<LoadedView> {
        let views = self.views.load();
        let mut out: Vec<LoadedView> = views
            .values()
            .map(|slot| {
                let loaded = slot.current.load();
                let faults = slot.faults.lock();
                LoadedView {
                    name: loaded.info.name.clone(),
                    version: loaded.info.version.clone(),
                    description: loaded.info.description.clone(),
                    generation: loaded.generation,
                    origin: loaded.origin.clone(),
                    last_error: faults.last_error.clone(),
                    faults: faults.count,
                    idle_instances: loaded.idle_count(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Records that the component from `origin` was not loaded, and why (shown in
    /// `debug/views.json` until that origin loads or is forgotten).
    pub fn note_refused(&self, origin: &str, view: Option<&str>, error: &str) {
        let mut refused = self.refused.lock();
        refused.retain(|r| r.origin != origin);
        refused.push(RefusedView {
            origin: origin.to_owned(),
            view: view.map(str::to_owned),
            error: error.to_owned(),
            at_ns: crate::core::now_ns(),
        });
    }

    /// Forgets the refusal of `origin` (it loaded, or it is gone).
    pub fn forget_refused(&self, origin: &str) {
        self.refused.lock().retain(|r| r.origin != origin);
    }

    /// The components offered and not loaded, by origin.
    pub fn refused(&self) -> Vec<RefusedView> {
        let mut out = self.refused.lock().clone();
        out.sort_by(|a, b| a.origin.cmp(&b.origin));
        out
    }

    /// `true` when a view of that name is loaded (cheap: one hash lookup, no lock).
    pub fn has_view(&self, name: &str) -> bool {
        self.views.load().contains_key(name)
    }

    /// The current generation of a view (to key caches of `Immutable` answers).
    pub fn generation(&self, name: &str) -> Option<u64> {
        self.views
            .load()
            .get(name)
            .map(|slot| slot.current.load().generation)
    }

    /// `generation` of `view` while it is loaded (`None`, or a generation gone: the
    /// current one).
    pub fn version(&self, view: &str, generation: Option<u64>) -> Result<Version, ViewCallError> {
        let slot = self.slot(view)?;
        let loaded = match generation.and_then(|g| slot.find(g)) {
            Some(loaded) => loaded,
            None => slot.current.load_full(),
        };
        Ok(Version { slot, loaded })
    }

    /// Exactly `generation` of `view`, for a file being opened: [`ViewCallError::Gone`]
    /// once nothing holds it any more.
    pub fn pin(&self, view: &str, generation: u64) -> Result<Version, ViewCallError> {
        let slot = self.slot(view)?;
        let loaded = slot.find(generation).ok_or(ViewCallError::Gone)?;
        Ok(Version { slot, loaded })
    }

    fn slot(&self, view: &str) -> Result<Arc<ViewSlot>, ViewCallError> {
        self.views
            .load()
            .get(view)
            .cloned()
            .ok_or(ViewCallError::NoSuchView)
    }

    /// Every loaded view's calls and faults (for `/metrics`), sorted by view.
    pub fn call_figures(&self) -> Vec<ViewCallFigures> {
        let mut out: Vec<ViewCallFigures> = self
            .views
            .load()
            .values()
            .map(|slot| ViewCallFigures {
                view: slot.name.to_string(),
                calls: slot.stats.latencies.read(),
                faults: FAULT_KINDS
                    .iter()
                    .zip(&slot.stats.faults)
                    .map(|(&kind, n)| (kind, n.load(Ordering::Relaxed)))
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.view.cmp(&b.view));
        out
    }

    /// How well the cache of immutable answers does (for `debug/` and tests).
    pub fn answer_cache_stats(&self) -> AnswerCacheFigures {
        self.answers.stats()
    }

    /// The view's `getattr` of `path` (kept when the view says it is immutable).
    pub fn getattr(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
    ) -> Result<ViewAttrs, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let viewer = self.viewer(caller);
        let who = viewer.sight.id;
        if let Some((Answer::Attrs(attrs), own)) =
            self.answers.get(loaded.generation, who, Op::Getattr, path)
        {
            return Ok(for_kernel(attrs, own));
        }
        let attrs: ViewAttrs = self
            .call(
                &slot,
                &loaded,
                "getattr",
                path,
                caller,
                &viewer,
                false,
                |v, store, c| v.call_getattr(store, c, path),
            )?
            .into();
        let own = viewer.is_dependent();
        if attrs.caching == Caching::Immutable {
            let answer = Answer::Attrs(attrs);
            self.answers.insert(
                loaded.generation,
                keep_for(&viewer),
                Op::Getattr,
                path,
                answer,
            );
        }
        Ok(for_kernel(attrs, own))
    }

    /// The view's `readdir` of `path` (entry names are checked: one path component each).
    pub fn readdir(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
    ) -> Result<Arc<[ViewDirEntry]>, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let generation = loaded.generation;
        let viewer = self.viewer(caller);
        let who = viewer.sight.id;
        if let Some((Answer::Entries(entries), _)) =
            self.answers.get(generation, who, Op::Readdir, path)
        {
            return Ok(entries);
        }
        let entries = self.call(
            &slot,
            &loaded,
            "readdir",
            path,
            caller,
            &viewer,
            false,
            |v, store, c| v.call_readdir(store, c, path),
        )?;
        if let Some(bad) = entries.iter().find(|e| !is_entry_name(&e.name)) {
            let message = format!("readdir returned the invalid entry name {:?}", bad.name);
            return Err(self.bad_answer(&slot, &loaded, "readdir", path, message));
        }
        let entries: Arc<[ViewDirEntry]> = entries.into_iter().map(Into::into).collect();
        if self.answers.is_immutable(generation, who, path) {
            let answer = Answer::Entries(entries.clone());
            self.answers
                .insert(generation, keep_for(&viewer), Op::Readdir, path, answer);
        }
        Ok(entries)
    }

    /// The view's `read` of up to `len` bytes of `path` from `offset`.
    pub fn read(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let (generation, op) = (loaded.generation, Op::Read { offset, len });
        let viewer = self.viewer(caller);
        let who = viewer.sight.id;
        if let Some((Answer::Data(data), _)) = self.answers.get(generation, who, op, path) {
            return Ok(data.to_vec());
        }
        let data = self.call(
            &slot,
            &loaded,
            "read",
            path,
            caller,
            &viewer,
            false,
            |v, store, c| v.call_read(store, c, path, offset, len),
        )?;
        if data.len() > len as usize {
            let message = format!("read returned {} bytes, {len} were asked", data.len());
            return Err(self.bad_answer(&slot, &loaded, "read", path, message));
        }
        if self.answers.is_immutable(generation, who, path) {
            let answer = Answer::Data(data.as_slice().into());
            self.answers
                .insert(generation, keep_for(&viewer), op, path, answer);
        }
        Ok(data)
    }

    /// The view's `readlink` of `path`.
    pub fn readlink(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
    ) -> Result<String, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let generation = loaded.generation;
        let viewer = self.viewer(caller);
        let who = viewer.sight.id;
        if let Some((Answer::Target(target), _)) =
            self.answers.get(generation, who, Op::Readlink, path)
        {
            return Ok(target.to_string());
        }
        let target = self.call(
            &slot,
            &loaded,
            "readlink",
            path,
            caller,
            &viewer,
            false,
            |v, store, c| v.call_readlink(store, c, path),
        )?;
        if self.answers.is_immutable(generation, who, path) {
            let answer = Answer::Target(target.as_str().into());
            self.answers
                .insert(generation, keep_for(&viewer), Op::Readlink, path, answer);
        }
        Ok(target)
    }

    /// The view's `write` of `data` at `offset` of `path`; the number of bytes taken.
    pub fn write(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<u32, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let n = self.call(
            &slot,
            &loaded,
            "write",
            path,
            caller,
            &self.viewer(caller),
            true,
            |v, store, c| v.call_write(store, c, path, offset, data),
        )?;
        if n as usize > data.len() {
            let message = format!("write took {n} bytes of {}", data.len());
            return Err(self.bad_answer(&slot, &loaded, "write", path, message));
        }
        Ok(n)
    }

    /// The view's `open` of `path` (`write`: opened for writing).
    pub fn open(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
        write: bool,
    ) -> Result<OpenMode, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let mode = self.call(
            &slot,
            &loaded,
            "open",
            path,
            caller,
            &self.viewer(caller),
            false,
            |v, store, c| v.call_open(store, c, path, write),
        )?;
        Ok(mode.into())
    }

    /// The view's `next` chunk of stream `path` from `cursor`.
    pub fn next(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
        cursor: u64,
        max: u32,
    ) -> Result<Chunk, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let chunk: Chunk = self
            .call(
                &slot,
                &loaded,
                "next",
                path,
                caller,
                &self.viewer(caller),
                false,
                |v, store, c| v.call_next(store, c, path, cursor, max),
            )?
            .into();
        if chunk.data.len() > self.limits.max_chunk_bytes {
            let message = format!(
                "next returned {} bytes, the limit is {}",
                chunk.data.len(),
                self.limits.max_chunk_bytes
            );
            return Err(self.bad_answer(&slot, &loaded, "next", path, message));
        }
        Ok(chunk)
    }

    /// The view's `create` of a file or directory at `path`.
    pub fn create(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
        kind: NodeKind,
    ) -> Result<ViewAttrs, ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        let attrs = self.call(
            &slot,
            &loaded,
            "create",
            path,
            caller,
            &self.viewer(caller),
            true,
            |v, store, c| v.call_create(store, c, path, kind.into()),
        )?;
        Ok(attrs.into())
    }

    /// The view's `remove` of the name `path` (`dir`: rmdir).
    pub fn remove(
        &self,
        at: impl Target,
        caller: &Caller,
        path: &str,
        dir: bool,
    ) -> Result<(), ViewCallError> {
        let Version { slot, loaded } = at.version(self)?;
        self.call(
            &slot,
            &loaded,
            "remove",
            path,
            caller,
            &self.viewer(caller),
            true,
            |v, store, c| v.call_remove(store, c, path, dir),
        )
    }

    /// Runs one call on a pooled instance of `loaded`, for `caller` (`may_append`: the call
    /// may record events): the instance goes back to the pool unless the call failed (a
    /// failed `Store` is poisoned and dropped).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn call<R>(
        &self,
        slot: &ViewSlot,
        loaded: &Loaded,
        op: &'static str,
        path: &str,
        caller: &Caller,
        viewer: &Arc<Viewer>,
        may_append: bool,
        f: impl FnOnce(&ViewExports, &mut Store<InstanceState>, &wit::Caller) -> CallResult<R>,
    ) -> Result<R, ViewCallError> {
        // Timed from checkout to the instance back in the pool (or dropped).
        let started = Instant::now();
        let result = self.call_untimed(slot, loaded, op, path, caller, viewer, may_append, f);
        slot.stats.latencies.record(started.elapsed());
        result
    }

    /// [`call`](Self::call) without the clock.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn call_untimed<R>(
        &self,
        slot: &ViewSlot,
        loaded: &Loaded,
        op: &'static str,
        path: &str,
        caller: &Caller,
        viewer: &Arc<Viewer>,
        may_append: bool,
        f: impl FnOnce(&ViewExports, &mut Store<InstanceState>, &wit::Caller) -> CallResult<R>,
    ) -> Result<R, ViewCallError> {
        let mut instance = match loaded.checkout() {
            Ok(instance) => instance,
            Err(e) => {
                let err = ViewCallError::Unavailable {
                    view: slot.name.clone(),
                    message: format!("{e:#}"),
                };
                return Err(self.fault(slot, loaded, op, path, err, &format!("{e:?}")));
            }
        };
        let ViewInstance {
            store,
            view: bindings,
        } = &mut instance;
        store.data_mut().call = Some(CallContext {
            view: slot.name.clone(),
            caller: *caller,
            viewer: viewer.clone(),
            may_append,
        });
        let result = f(
            bindings.lighthouse_fs_view(),
            store,
            &wit_caller(caller, viewer.sight.id),
        );
        store.data_mut().call = None;
        match result {
            Ok(Ok(value)) => {
                loaded.checkin(instance);
                Ok(value)
            }
            Ok(Err(e)) => {
                loaded.checkin(instance);
                Err(ViewCallError::View(e.into()))
            }
            Err(e) => {
                let err = classify(&e, &instance.store, slot.name.clone(), &self.limits);
                Err(self.fault(slot, loaded, op, path, err, &format!("{e:?}")))
                // `instance` (its poisoned Store) is dropped here.
            }
        }
    }

    /// The caller of one call as the store import sees it.
    fn viewer(&self, caller: &Caller) -> Arc<Viewer> {
        Arc::new(self.store_access.viewer(caller))
    }

    fn bad_answer(
        &self,
        slot: &ViewSlot,
        loaded: &Loaded,
        op: &str,
        path: &str,
        message: String,
    ) -> ViewCallError {
        let err = ViewCallError::BadAnswer {
            view: slot.name.clone(),
            message,
        };
        self.fault(slot, loaded, op, path, err, "")
    }

    /// Logs a fault and records it as the view's `last_error`.
    fn fault(
        &self,
        slot: &ViewSlot,
        loaded: &Loaded,
        op: &str,
        path: &str,
        err: ViewCallError,
        detail: &str,
    ) -> ViewCallError {
        tracing::warn!(view = %slot.name, generation = loaded.generation, op, path,
            error = %err, detail, "view call failed");
        if let Some(i) = err
            .fault_kind()
            .and_then(|k| FAULT_KINDS.iter().position(|&f| f == k))
        {
            slot.stats.faults[i].fetch_add(1, Ordering::Relaxed);
        }
        let mut faults = slot.faults.lock();
        faults.count += 1;
        faults.last_error = Some(format!("{op} {path}: {err}"));
        err
    }
}

/// What kind of failure a failed call was, with the view's stderr (its panic message).
fn classify(
    e: &wasmtime::Error,
    store: &Store<InstanceState>,
    view: Arc<str>,
    limits: &ViewLimits,
) -> ViewCallError {
    let state = store.data();
    if state.memory.exceeded.is_some() {
        return ViewCallError::MemoryCap {
            view,
            cap: state.memory.cap,
        };
    }
    if state.clock.timed_out {
        return ViewCallError::Timeout {
            view,
            deadline: limits.call_deadline,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => ViewCallError::Timeout {
            view,
            deadline: limits.call_deadline,
        },
        Some(trap) => {
            let stderr = state.stderr.take();
            let message = if stderr.is_empty() {
                trap.to_string()
            } else {
                format!("{trap}; the view's stderr: {stderr}")
            };
            ViewCallError::Trap { view, message }
        }
        None => ViewCallError::Trap {
            view,
            message: format!("{e:#}"),
        },
    }
}

/// A directory entry name the core can serve: one path component.
fn is_entry_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.bytes().any(|b| b == b'/' || b == 0)
}

/// Whom an answer made for `viewer` may be kept for: every caller (0) unless what the
/// store showed depended on who asked.
fn keep_for(viewer: &Viewer) -> u64 {
    if viewer.is_dependent() {
        viewer.sight.id
    } else {
        0
    }
}

/// Attributes as the kernel may keep them: one caller's own (`own`) are never kept, as
/// the kernel would show them to every caller.
fn for_kernel(mut attrs: ViewAttrs, own: bool) -> ViewAttrs {
    if own {
        attrs.caching = Caching::Volatile;
    }
    attrs
}
