//! The audit trail of the policy (`--policy`): every denial, rate refusal and
//! authentication, as a record with its agent, uid, pid, path, operation and outcome. It
//! lives with the store so that both the core (which records) and the views (the
//! `audit` stream of `streams/`, through the store import) reach it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::vocab::{now_ns, Caller, TimeNs};

/// Audit records kept for readers of the audit stream (the log has them all).
pub const AUDIT_KEPT: usize = 10_000;

/// One audited decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1, 2, … in the order the decisions were made (since the mount started).
    pub seq: u64,
    pub time_ns: TimeNs,
    pub agent: Arc<str>,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    pub op: &'static str,
    /// In the mount: `/current/a/b`, `/.auth`.
    pub path: String,
    /// `denied`, `limited`, `bound`, `refused`, with the reason after a colon.
    pub outcome: String,
}

/// The audit trail: each record goes to the log (target `audit`, info level) and is
/// kept, the last [`AUDIT_KEPT`], for the audit stream. The log takes at most
/// [`AUDIT_LINES_PER_SEC`] lines a second per agent: an agent hammering at what it may not
/// do must not flood the log (nor cost the others their lines). The lines it was spared
/// are counted in the next line it gets (`suppressed`), and every record is kept.
#[derive(Default)]
pub struct Audit {
    state: Mutex<AuditState>,
    next: AtomicU64,
}

#[derive(Default)]
struct AuditState {
    /// The last [`AUDIT_KEPT`].
    kept: VecDeque<AuditRecord>,
    /// Per agent: the second its lines are counted in, lines logged in it, lines spared
    /// since the last one logged. Bounded by the policy's agents (the names records
    /// carry).
    budgets: rustc_hash::FxHashMap<Arc<str>, (Instant, u32, u64)>,
}

/// Audit lines an agent may write to the log in one second.
pub const AUDIT_LINES_PER_SEC: u32 = 20;

impl Audit {
    /// Record one decision, made now by `caller` as `agent`.
    pub fn record(
        &self,
        caller: &Caller,
        agent: &Arc<str>,
        op: &'static str,
        path: String,
        outcome: String,
    ) {
        self.record_at(caller, agent, op, path, outcome, Instant::now());
    }

    /// [`Audit::record`] at `now` (tests set the clock).
    fn record_at(
        &self,
        caller: &Caller,
        agent: &Arc<str>,
        op: &'static str,
        path: String,
        outcome: String,
        now: Instant,
    ) {
        // Numbered under the lock that keeps it: a reader that sees the new head finds
        // the record.
        let mut st = self.state.lock();
        let seq = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let budget = st.budgets.entry(agent.clone()).or_insert((now, 0, 0));
        if now.saturating_duration_since(budget.0) >= std::time::Duration::from_secs(1) {
            budget.0 = now;
            budget.1 = 0;
        }
        if budget.1 < AUDIT_LINES_PER_SEC {
            budget.1 += 1;
            let suppressed = std::mem::take(&mut budget.2);
            tracing::info!(
                target: "audit",
                agent = &**agent,
                uid = caller.uid,
                pid = caller.pid,
                path,
                op,
                outcome,
                suppressed,
                "audit"
            );
        } else {
            budget.2 += 1;
        }
        if st.kept.len() >= AUDIT_KEPT {
            st.kept.pop_front();
        }
        st.kept.push_back(AuditRecord {
            seq,
            time_ns: now_ns(),
            agent: agent.clone(),
            uid: caller.uid,
            gid: caller.gid,
            pid: caller.pid,
            op,
            path,
            outcome,
        });
    }

    /// Records after `seq`, at most `limit`, oldest first.
    pub fn after(&self, seq: u64, limit: usize) -> Vec<AuditRecord> {
        self.state
            .lock()
            .kept
            .iter()
            .filter(|r| r.seq > seq)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Records kept now (at most [`AUDIT_KEPT`]).
    pub fn kept(&self) -> usize {
        self.state.lock().kept.len()
    }

    /// The last record's seq (0: none yet).
    pub fn head(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_log_takes_a_few_lines_a_second_per_agent_and_keeps_every_record() {
        let audit = Audit::default();
        let (a, b): (Arc<str>, Arc<str>) = ("noisy".into(), "quiet".into());
        let t0 = Instant::now();
        let logged = |audit: &Audit, agent: &Arc<str>| {
            audit.state.lock().budgets.get(agent).map_or(0, |b| b.1)
        };
        for i in 0..100 {
            let at = t0 + Duration::from_millis(i);
            audit.record_at(&Caller::HOST, &a, "open", "/x".into(), "denied".into(), at);
        }
        assert_eq!(logged(&audit, &a), AUDIT_LINES_PER_SEC);
        assert_eq!(
            audit.state.lock().budgets[&a].2,
            100 - u64::from(AUDIT_LINES_PER_SEC)
        );
        // Another agent has a budget of its own.
        audit.record_at(&Caller::HOST, &b, "open", "/y".into(), "denied".into(), t0);
        assert_eq!(logged(&audit, &b), 1);
        // A second later the noisy one logs again, and its next line says what it spared.
        let later = t0 + Duration::from_millis(1200);
        audit.record_at(
            &Caller::HOST,
            &a,
            "open",
            "/x".into(),
            "denied".into(),
            later,
        );
        assert_eq!(logged(&audit, &a), 1);
        assert_eq!(
            audit.state.lock().budgets[&a].2,
            0,
            "reported with that line"
        );
        // Every record is kept for the stream, in order.
        let kept = audit.after(0, usize::MAX);
        assert_eq!(kept.len(), 102);
        assert!(kept.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(audit.head(), 102);
    }
}
