//! The one wasmtime `Engine` of the process, and the epoch ticker that enforces deadlines.

use std::thread;

use anyhow::{Context, Result};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::ViewLimits;

/// Builds the engine every view is compiled for and starts its epoch ticker.
///
/// Configuration, and why:
/// - component model on, **no** async (`component-model-async` adds ~0.3 µs to every
///   call; views are synchronous functions and callers are threads);
/// - epoch interruption: a deadline check at loop headers and function entries, far
///   cheaper than fuel; a ticker thread advances the epoch every `limits.epoch_tick`;
/// - pooling allocator: instantiation reuses pre-reserved slots (≈20 µs instead of
///   mmap/munmap per instance) and bounds how many instances, memories and tables can
///   exist at once (`limits.max_instances`); the per-memory cap is enforced by the pool
///   (`max_memory_size`) and reported precisely by the store's limiter;
/// - default 4 GiB reservation per memory, so bounds checks stay elided (virtual address
///   space only: 2 memories × 64 instances × 4 GiB is far below the 128 TiB available);
/// - cranelift at its default (speed), parallel compilation: a view compiles once.
pub(crate) fn new_engine(limits: &ViewLimits) -> Result<Engine> {
    let instances = limits.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        // A Rust wasip2 component is 1–4 core instances (the program and wit-component's
        // shim/fixup modules); 16 covers other toolchains too.
        .max_core_instances_per_component(16)
        .total_core_instances(instances.saturating_mul(8))
        .max_memories_per_component(2)
        .total_memories(instances.saturating_mul(2))
        .max_tables_per_component(16)
        .total_tables(instances.saturating_mul(8))
        .table_elements(limits.max_table_elements)
        .max_memory_size(limits.memory_per_instance)
        // Stacks are for async fibers only, which the host never uses.
        .total_stacks(1);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack)
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("configuring the wasmtime engine")?;
    start_epoch_ticker(&engine, limits)?;
    Ok(engine)
}

/// Advances the engine's epoch every tick until the engine is dropped (the thread holds
/// only a weak reference, so it never keeps the engine alive).
fn start_epoch_ticker(engine: &Engine, limits: &ViewLimits) -> Result<()> {
    let weak = engine.weak();
    let tick = limits.epoch_tick;
    thread::Builder::new()
        .name("view-epoch".into())
        .stack_size(64 << 10)
        .spawn(move || loop {
            thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok(())
}
