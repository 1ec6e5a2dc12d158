//! Rate limits: token buckets per agent and across all callers, for operations and bytes
//! per second.
//!
//! - **Burst.** A bucket holds one second's worth (`ops_per_sec` operations,
//!   `bytes_per_sec` bytes) and refills continuously, so an idle agent may do a second's
//!   work at once and a busy one settles at its rate.
//! - **Requests larger than the burst.** A request whose cost exceeds what the bucket can
//!   hold is admitted when the bucket is full, and leaves it in debt: everything after it
//!   waits until the debt is paid at the configured rate. A 10 MiB write under a
//!   1 MiB/s limit thus passes once, then the agent is held for ten seconds. The long-run
//!   rate holds and no request size is refused forever.
//! - **Over the limit** the host answers [`RATE_LIMIT_ERRNO`] (EAGAIN) and counts the
//!   refusal under [`Limited::as_str`]. EAGAIN says "nothing is wrong with the request,
//!   try again", which a client can act on (retry with back-off), unlike EACCES or EIO;
//!   Python raises it as `BlockingIOError`, which a bridge can tell apart from a real
//!   failure.
//! - **Cost.** A bucket is one atomic word (GCRA: the moment at which the bucket will be
//!   full again), updated by compare-and-swap, so concurrent callers never block each
//!   other. An unlimited bucket does not exist at all: with no limit configured,
//!   [`Limits::admit`] is a branch on a flag.
//! - A refused request consumes nothing: buckets it had already passed are refunded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{AgentId, Policy, RateLimit};

/// The errno a request over a rate limit is answered with.
pub const RATE_LIMIT_ERRNO: i32 = libc::EAGAIN;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Which limit refused a request, for the metric label and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    AgentOps,
    AgentBytes,
    OverallOps,
    OverallBytes,
}

impl Limited {
    /// The metric label: `agent_ops`, `agent_bytes`, `overall_ops`, `overall_bytes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limited::AgentOps => "agent_ops",
            Limited::AgentBytes => "agent_bytes",
            Limited::OverallOps => "overall_ops",
            Limited::OverallBytes => "overall_bytes",
        }
    }
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            Limited::AgentOps => "the agent's operations per second",
            Limited::AgentBytes => "the agent's bytes per second",
            Limited::OverallOps => "the overall operations per second",
            Limited::OverallBytes => "the overall bytes per second",
        };
        write!(f, "over {what} limit")
    }
}

/// The rate limiters of one policy: build once with [`Limits::new`], share between
/// threads.
#[derive(Debug)]
pub struct Limits {
    /// Buckets are measured in nanoseconds since this instant.
    epoch: Instant,
    /// Index = `AgentId`.
    agents: Vec<Pair>,
    overall: Pair,
    /// False when no limit is configured anywhere: `admit` returns at once.
    any: bool,
}

/// An ops bucket and a bytes bucket; `None` is unlimited.
#[derive(Debug, Default)]
struct Pair {
    ops: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl Pair {
    fn new(limit: RateLimit) -> Pair {
        Pair {
            ops: Bucket::new(limit.ops_per_sec),
            bytes: Bucket::new(limit.bytes_per_sec),
        }
    }
}

impl Limits {
    pub fn new(policy: &Policy) -> Limits {
        let agents: Vec<Pair> = policy
            .agents()
            .map(|(_, a)| Pair::new(a.limits()))
            .collect();
        let overall = Pair::new(policy.overall_limits());
        let any = !policy.overall_limits().is_unlimited()
            || policy.agents().any(|(_, a)| !a.limits().is_unlimited());
        Limits {
            epoch: Instant::now(),
            agents,
            overall,
            any,
        }
    }

    /// Whether any limit is configured. When not, callers need not even read the clock.
    pub fn is_unlimited(&self) -> bool {
        !self.any
    }

    /// Charges one request of `ops` operations moving `bytes` bytes to `agent` and to the
    /// overall limits, or says which limit it is over (and then charges nothing). An agent
    /// id from another policy is charged to the overall limits only.
    pub fn admit(&self, agent: AgentId, ops: u32, bytes: u64, now: Instant) -> Result<(), Limited> {
        if !self.any {
            return Ok(());
        }
        // Before the epoch (a caller's stale `now`) counts as the epoch.
        let now =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let none = Pair::default();
        let agent = self.agents.get(agent.index()).unwrap_or(&none);
        let steps = [
            (&agent.ops, u64::from(ops), Limited::AgentOps),
            (&agent.bytes, bytes, Limited::AgentBytes),
            (&self.overall.ops, u64::from(ops), Limited::OverallOps),
            (&self.overall.bytes, bytes, Limited::OverallBytes),
        ];
        for (i, &(bucket, cost, which)) in steps.iter().enumerate() {
            let Some(bucket) = bucket else { continue };
            if !bucket.take(cost, now) {
                for &(passed, cost, _) in &steps[..i] {
                    if let Some(passed) = passed {
                        passed.refund(cost);
                    }
                }
                return Err(which);
            }
        }
        Ok(())
    }
}

/// A token bucket as GCRA, kept in *token time*: the bucket's clock advances `per_sec`
/// ticks per second, so costs are whole ticks and no rounding lets a burst or a rate
/// drift. `full_at` is the tick at which the bucket will be full again; taking `cost`
/// pushes it `cost` ticks further, which is allowed while the backlog stays within one
/// second (`per_sec` ticks).
#[derive(Debug)]
struct Bucket {
    per_sec: u64,
    full_at: AtomicU64,
}

impl Bucket {
    fn new(per_sec: u64) -> Option<Bucket> {
        (per_sec > 0).then(|| Bucket {
            per_sec,
            full_at: AtomicU64::new(0),
        })
    }

    /// The bucket's clock at `now_ns`. With rates capped at 2^34/s (see
    /// `file::MAX_RATE`) it saturates after 34 years.
    fn ticks(&self, now_ns: u64) -> u64 {
        let ticks = u128::from(now_ns) * u128::from(self.per_sec) / u128::from(NANOS_PER_SEC);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    fn take(&self, cost: u64, now_ns: u64) -> bool {
        if cost == 0 {
            return true;
        }
        let now = self.ticks(now_ns);
        // A cost above the burst needs a full bucket, then leaves it in debt.
        let needed = cost.min(self.per_sec);
        let mut full_at = self.full_at.load(Ordering::Relaxed);
        loop {
            let start = full_at.max(now);
            if (start - now).saturating_add(needed) > self.per_sec {
                return false;
            }
            match self.full_at.compare_exchange_weak(
                full_at,
                start.saturating_add(cost),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(current) => full_at = current,
            }
        }
    }

    /// Gives back what a `take` of `cost` charged, when a later limit refused the request.
    fn refund(&self, cost: u64) {
        // `full_at` below the clock means a full bucket either way; saturating keeps it sane.
        let _ = self
            .full_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(cost))
            });
    }
}
