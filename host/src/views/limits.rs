//! What a view may use: time per call, memory per instance, how many instances exist.
//! One place for the defaults, each with the reason for its value.

use std::time::Duration;

/// Limits of the view runtime. `ViewLimits::default()` is what the mount uses.
#[derive(Clone, Debug)]
pub struct ViewLimits {
    /// Budget of the view's own time in one call (`info`, `getattr`, `read`, ...): wall
    /// time minus the time the host spends answering the view's `store` calls, so a view
    /// is not punished for a slow disk or a cold history tree. A call past it traps and
    /// the caller gets EIO. 200 ms: a view answers in microseconds, so only a runaway
    /// view gets near it, and a stuck `ls` gives up quickly enough for an agent not to
    /// notice a hang.
    pub call_deadline: Duration,
    /// Wall-clock bound of one call, host time included: a view that keeps the host busy
    /// (reading huge files over and over) still ends. 2 s: ten deadlines.
    pub call_wall_limit: Duration,
    /// Period of the epoch ticker that enforces `call_deadline`. The deadline is honoured
    /// to within one tick; 10 ms costs nothing measurable (one atomic add per tick).
    pub epoch_tick: Duration,
    /// Linear memory one instance may grow to. 64 MiB: a view holds one answer at a time
    /// (a read is at most `max_read_bytes`); more is a leak or a runaway.
    pub memory_per_instance: usize,
    /// Component instances that may exist at once, over all views and generations (the
    /// pooling allocator reserves its slots up front). 64: a few views × the FUSE worker
    /// threads calling into each at once, plus the old generation during a hot swap.
    pub max_instances: u32,
    /// Idle instances kept per loaded view, ready for the next call. 4: enough that the
    /// usual 2–4 concurrent callers of one view never instantiate (≈20 µs) on the hot
    /// path, few enough that a dozen views stay far below `max_instances`.
    pub idle_instances_per_view: usize,
    /// Elements of one wasm table. Rust components use a few hundred; 10,000 leaves room
    /// for other languages while bounding what one instance reserves.
    pub max_table_elements: usize,
    /// Wasm stack of one call. 512 KiB (wasmtime's default) runs on the caller's own
    /// stack: callers need threads with at least 1 MiB of stack (Rust's default is 2).
    pub max_wasm_stack: usize,
    /// Most events one `store.events` call returns, whatever `limit` the view asks for:
    /// a view pages through the log instead of making the host build a huge list.
    pub max_events_per_call: u32,
    /// Most bytes one `store.read-at` call returns, whatever `len` the view asks for.
    pub max_read_bytes: u32,
    /// Largest chunk one `next` may return (a stream's records are whole, so a chunk may
    /// exceed what the reader asked; the host keeps the rest). 4 MiB.
    pub max_chunk_bytes: usize,
    /// Largest component accepted by `load`/`check`. 32 MiB: views are a few hundred KiB;
    /// this only bounds what a bad file costs to compile.
    pub max_component_bytes: usize,
    /// Bytes of a view's stderr kept per instance (its panic message, for the log).
    pub stderr_tail_bytes: usize,
    /// Bytes of answers declared immutable that the host keeps (over all views), so a warm
    /// history tree is served without entering wasm. 64 MiB; 0 turns the cache off.
    pub answer_cache_bytes: u64,
}

impl Default for ViewLimits {
    fn default() -> Self {
        ViewLimits {
            call_deadline: Duration::from_millis(200),
            call_wall_limit: Duration::from_secs(2),
            epoch_tick: Duration::from_millis(10),
            memory_per_instance: 64 << 20,
            max_instances: 64,
            idle_instances_per_view: 4,
            max_table_elements: 10_000,
            max_wasm_stack: 512 << 10,
            max_events_per_call: 4096,
            max_read_bytes: 4 << 20,
            max_chunk_bytes: 4 << 20,
            max_component_bytes: 32 << 20,
            stderr_tail_bytes: 4096,
            answer_cache_bytes: 64 << 20,
        }
    }
}

impl ViewLimits {
    /// The epoch deadline of one call, in ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        ticks(self.call_deadline, self.epoch_tick)
    }
}

/// `time` in epoch ticks of length `tick`, rounded up (at least one).
pub(crate) fn ticks(time: Duration, tick: Duration) -> u64 {
    time.as_nanos().div_ceil(tick.as_nanos().max(1)).max(1) as u64
}
