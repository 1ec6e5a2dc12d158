//! One loaded component generation and its pool of ready instances.
//!
//! Each call checks an instance (a `Store` plus the component instantiated in it) out of
//! the pool and returns it afterwards, so concurrent calls to one view never wait for one
//! another. A `Store` whose call failed (trap, deadline, memory cap) is poisoned and is
//! dropped instead of returned. The pool belongs to the generation: when a hot swap
//! replaces the `Arc<Loaded>`, calls in flight finish on the old generation, whose
//! instances go away with its last reference.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::bindings::{ViewComponent, ViewComponentPre};
use super::instance_state::InstanceState;
use super::limits::{ticks, ViewLimits};
use super::store_import::StoreAccess;
use crate::contract::ViewInfo;

/// One instance of a view, ready for a call.
pub(crate) struct ViewInstance {
    pub(crate) store: Store<InstanceState>,
    pub(crate) view: ViewComponent,
}

/// A compiled component generation: what it said about itself and its instances.
pub(crate) struct Loaded {
    /// Unique over the host's lifetime; a new load of the same view gets a larger one.
    pub(crate) generation: u64,
    pub(crate) info: ViewInfo,
    /// Where the component came from (a file path, `builtin:history`, ...).
    pub(crate) origin: String,
    pre: ViewComponentPre<InstanceState>,
    idle: Mutex<Vec<ViewInstance>>,
    store_access: Arc<dyn StoreAccess>,
    limits: Arc<ViewLimits>,
    deadline_ticks: u64,
    /// Replaced by a newer generation: only files opened on it still call it, so it keeps
    /// at most one idle instance (instances are a bounded, shared resource).
    retired: AtomicBool,
}

impl Loaded {
    pub(crate) fn new(
        generation: u64,
        info: ViewInfo,
        origin: String,
        pre: ViewComponentPre<InstanceState>,
        store_access: Arc<dyn StoreAccess>,
        limits: Arc<ViewLimits>,
    ) -> Self {
        let deadline_ticks = limits.deadline_ticks();
        Loaded {
            generation,
            info,
            origin,
            pre,
            idle: Mutex::new(Vec::with_capacity(limits.idle_instances_per_view)),
            store_access,
            limits,
            deadline_ticks,
            retired: AtomicBool::new(false),
        }
    }

    /// This generation was replaced: give back all idle instances but one.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.idle.lock().truncate(1);
    }

    /// A fresh instance in a fresh `Store` (its start functions run under the deadline).
    pub(crate) fn instantiate(
        pre: &ViewComponentPre<InstanceState>,
        engine: &Engine,
        store_access: Arc<dyn StoreAccess>,
        limits: &ViewLimits,
    ) -> wasmtime::Result<ViewInstance> {
        let mut store = Store::new(engine, InstanceState::new(store_access, limits));
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(limits.deadline_ticks());
        let (deadline, wall_limit, tick) = (
            limits.call_deadline,
            limits.call_wall_limit,
            limits.epoch_tick,
        );
        store.epoch_deadline_callback(move |mut ctx| {
            let clock = &mut ctx.data_mut().clock;
            Ok(match clock.remaining(deadline, wall_limit) {
                Some(rest) => UpdateDeadline::Continue(ticks(rest, tick)),
                None => {
                    clock.timed_out = true;
                    UpdateDeadline::Interrupt
                }
            })
        });
        let view = pre.instantiate(&mut store)?;
        Ok(ViewInstance { store, view })
    }

    /// An instance for one call, its deadline armed: an idle one, or a new one.
    pub(crate) fn checkout(&self) -> wasmtime::Result<ViewInstance> {
        let idle = self.idle.lock().pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => Self::instantiate(
                &self.pre,
                self.pre.engine(),
                self.store_access.clone(),
                &self.limits,
            )?,
        };
        instance.store.set_epoch_deadline(self.deadline_ticks);
        instance.store.data_mut().clock.start();
        Ok(instance)
    }

    /// Returns a healthy instance after its call (kept if the pool has room).
    pub(crate) fn checkin(&self, instance: ViewInstance) {
        let keep = if self.retired.load(Ordering::Relaxed) {
            1
        } else {
            self.limits.idle_instances_per_view
        };
        let mut idle = self.idle.lock();
        if idle.len() < keep {
            idle.push(instance);
        }
    }

    /// Number of idle instances (for tests and debug output).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }
}
