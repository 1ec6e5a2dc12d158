//! What each view instance's `Store` carries: the core's [`StoreAccess`], an empty WASI
//! context, the memory limiter, and the tail of the view's stderr.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::ViewLimits;
use super::store_import::StoreAccess;
use crate::core::Caller;

/// The data of one view instance's `Store`.
pub(crate) struct InstanceState {
    pub(crate) store_access: Arc<dyn StoreAccess>,
    pub(crate) max_events_per_call: u32,
    pub(crate) max_read_bytes: u32,
    pub(crate) memory: MemoryCap,
    pub(crate) stderr: StderrTail,
    pub(crate) clock: CallClock,
    /// The call in progress (set by the host around every call into the view).
    pub(crate) call: Option<CallContext>,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl InstanceState {
    pub(crate) fn new(store_access: Arc<dyn StoreAccess>, limits: &ViewLimits) -> Self {
        let stderr = StderrTail::new(limits.stderr_tail_bytes);
        // No preopens, no environment, no arguments, no sockets (the builder denies every
        // address by default), stdin closed, stdout discarded: a view has no ambient
        // authority. Its stderr is kept (the last few KiB) for the log when it traps.
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        InstanceState {
            store_access,
            max_events_per_call: limits.max_events_per_call,
            max_read_bytes: limits.max_read_bytes,
            memory: MemoryCap {
                cap: limits.memory_per_instance,
                exceeded: None,
            },
            stderr,
            clock: CallClock::new(),
            call: None,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Who a call is for, and whether it may record events (`store.append`).
pub(crate) struct CallContext {
    pub(crate) view: Arc<str>,
    pub(crate) caller: Caller,
    /// The caller as the store import sees it (what it may be shown).
    pub(crate) viewer: Arc<crate::core::Viewer>,
    /// Only `write`, `create` and `remove` may append: reading never changes the log.
    pub(crate) may_append: bool,
}

/// Where the time of the current call goes. The epoch deadline counts the view's own
/// time only: when it fires, the store's deadline callback asks [`CallClock::remaining`]
/// and extends the deadline by the time the host spent answering the view's `store`
/// calls, up to the wall limit.
pub(crate) struct CallClock {
    started: Instant,
    in_host: Duration,
    /// Set when the deadline ended the call (so the failure reads "timeout").
    pub(crate) timed_out: bool,
}

impl CallClock {
    fn new() -> Self {
        CallClock {
            started: Instant::now(),
            in_host: Duration::ZERO,
            timed_out: false,
        }
    }

    /// A call begins.
    pub(crate) fn start(&mut self) {
        *self = CallClock::new();
    }

    /// The host spent the time since `since` answering the view.
    pub(crate) fn host_since(&mut self, since: Instant) {
        self.in_host += since.elapsed();
    }

    /// How much longer the call may run: `None` once the view's own time reaches
    /// `deadline` or the wall time reaches `wall_limit`.
    pub(crate) fn remaining(&self, deadline: Duration, wall_limit: Duration) -> Option<Duration> {
        let wall = self.started.elapsed();
        let own = wall.saturating_sub(self.in_host);
        if own >= deadline || wall >= wall_limit {
            return None;
        }
        Some((deadline - own).min(wall_limit - wall))
    }
}

/// Caps an instance's linear memory and remembers that the cap was hit, so a call that
/// traps for it is reported as "memory cap exceeded" rather than a bare trap.
pub(crate) struct MemoryCap {
    pub(crate) cap: usize,
    /// The size the instance asked for when it was refused.
    pub(crate) exceeded: Option<usize>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = Some(desired);
            wasmtime::bail!(
                "memory cap exceeded: the view asked for {desired} bytes, the cap is {}",
                self.cap
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Bounded by the pool's `table_elements`.
        Ok(true)
    }
}

/// The last `capacity` bytes a view wrote to stderr (where a Rust guest's panic message
/// goes). Writes never fail and never block, so a chatty view is not punished.
#[derive(Clone)]
pub(crate) struct StderrTail {
    inner: Arc<Mutex<VecDeque<u8>>>,
    capacity: usize,
}

impl StderrTail {
    fn new(capacity: usize) -> Self {
        StderrTail {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            capacity,
        }
    }

    fn push(&self, bytes: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = &bytes[bytes.len().saturating_sub(self.capacity)..];
        let overflow = (buf.len() + bytes.len()).saturating_sub(self.capacity);
        buf.drain(..overflow);
        buf.extend(bytes);
    }

    /// Takes what was written since the last call (lossy UTF-8, trimmed).
    pub(crate) fn take(&self) -> String {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let bytes: Vec<u8> = buf.drain(..).collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
