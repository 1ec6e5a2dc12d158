use std::sync::Arc;
use std::time::{Duration, Instant};

use super::parse;
use crate::policy::{AgentId, Limited, Limits, Policy, RATE_LIMIT_ERRNO};

const MS: Duration = Duration::from_millis(1);

fn limits(text: &str) -> (Policy, Limits) {
    let policy = parse(text);
    let limits = Limits::new(&policy);
    (policy, limits)
}

fn agent(policy: &Policy, name: &str) -> AgentId {
    policy.agent_by_name(name).expect("agent")
}

/// Operations of `agent` admitted at `now` before the first refusal, up to `max`.
fn burst(limits: &Limits, agent: AgentId, now: Instant, max: u32) -> u32 {
    (0..max)
        .take_while(|_| limits.admit(agent, 1, 0, now).is_ok())
        .count() as u32
}

#[test]
fn no_limits_admit_everything() {
    let (policy, limits) = limits(super::ISSUE_EXAMPLE);
    assert!(limits.is_unlimited());
    let now = Instant::now();
    for (id, _) in policy.agents() {
        for _ in 0..10_000 {
            assert_eq!(limits.admit(id, 1, u64::MAX, now), Ok(()));
        }
    }
    assert_eq!(RATE_LIMIT_ERRNO, libc::EAGAIN);
}

#[test]
fn ops_limit_trips_and_recovers() {
    let (policy, limits) = limits("[[agents]]\nname = \"a\"\nuids = [1]\nops_per_sec = 10\n");
    assert!(!limits.is_unlimited());
    let a = agent(&policy, "a");
    let t0 = Instant::now();
    // The burst is one second's worth.
    assert_eq!(burst(&limits, a, t0, 100), 10);
    assert_eq!(limits.admit(a, 1, 0, t0), Err(Limited::AgentOps));
    // One op per 100 ms comes back.
    assert_eq!(limits.admit(a, 1, 0, t0 + 99 * MS), Err(Limited::AgentOps));
    assert_eq!(limits.admit(a, 1, 0, t0 + 100 * MS), Ok(()));
    assert_eq!(limits.admit(a, 1, 0, t0 + 100 * MS), Err(Limited::AgentOps));
    // After a second idle, a full burst again, never more.
    assert_eq!(burst(&limits, a, t0 + 10 * Duration::from_secs(1), 100), 10);
    // Others are not limited.
    assert_eq!(burst(&limits, AgentId::DEFAULT, t0, 100), 100);
}

#[test]
fn the_long_run_rate_holds() {
    let (policy, limits) = limits("[[agents]]\nname = \"a\"\nuids = [1]\nops_per_sec = 1000\n");
    let a = agent(&policy, "a");
    let t0 = Instant::now();
    // Ten seconds of attempts every 100 µs: the burst plus 1000 per second.
    let admitted = (0..100_000u32)
        .filter(|i| {
            let now = t0 + Duration::from_micros(100) * *i;
            limits.admit(a, 1, 0, now).is_ok()
        })
        .count();
    assert!((10_990..=11_001).contains(&admitted), "{admitted}");
}

#[test]
fn agents_are_limited_independently() {
    let (policy, limits) = limits(
        r#"
        [default]
        ops_per_sec = 3
        [[agents]]
        name = "a"
        uids = [1]
        ops_per_sec = 5
        [[agents]]
        name = "b"
        uids = [2]
        ops_per_sec = 5
        "#,
    );
    let (a, b) = (agent(&policy, "a"), agent(&policy, "b"));
    let t0 = Instant::now();
    assert_eq!(burst(&limits, a, t0, 100), 5);
    assert_eq!(burst(&limits, b, t0, 100), 5);
    // The default agent is one bucket for all unmatched callers.
    assert_eq!(burst(&limits, AgentId::DEFAULT, t0, 100), 3);
}

#[test]
fn the_overall_limit_spans_agents() {
    let (policy, limits) = limits(
        r#"
        [limits]
        ops_per_sec = 8
        [[agents]]
        name = "a"
        uids = [1]
        ops_per_sec = 5
        [[agents]]
        name = "b"
        uids = [2]
        "#,
    );
    let (a, b) = (agent(&policy, "a"), agent(&policy, "b"));
    let t0 = Instant::now();
    assert_eq!(burst(&limits, a, t0, 100), 5);
    assert_eq!(limits.admit(a, 1, 0, t0), Err(Limited::AgentOps));
    assert_eq!(burst(&limits, b, t0, 100), 3);
    assert_eq!(limits.admit(b, 1, 0, t0), Err(Limited::OverallOps));
    assert_eq!(
        limits.admit(AgentId::DEFAULT, 1, 0, t0),
        Err(Limited::OverallOps)
    );
}

#[test]
fn a_refused_request_costs_nothing() {
    let (policy, limits) = limits(
        r#"
        [limits]
        ops_per_sec = 4
        [[agents]]
        name = "a"
        uids = [1]
        ops_per_sec = 100
        bytes_per_sec = 1000
        "#,
    );
    let a = agent(&policy, "a");
    let t0 = Instant::now();
    assert_eq!(burst(&limits, AgentId::DEFAULT, t0, 100), 4);
    // Refused overall after passing the agent's ops and bytes buckets...
    for _ in 0..50 {
        assert_eq!(limits.admit(a, 1, 100, t0), Err(Limited::OverallOps));
    }
    // ...which were refunded: a second later the agent has its full bytes burst.
    let t1 = t0 + Duration::from_secs(1);
    for _ in 0..4 {
        assert_eq!(limits.admit(a, 1, 250, t1), Ok(()));
    }
    assert_eq!(limits.admit(a, 1, 1, t1), Err(Limited::AgentBytes));
}

#[test]
fn bytes_limits_and_requests_larger_than_the_burst() {
    let (policy, limits) = limits("[[agents]]\nname = \"a\"\nuids = [1]\nbytes_per_sec = 1000\n");
    let a = agent(&policy, "a");
    let t0 = Instant::now();
    // Zero-byte requests never touch a bytes bucket.
    assert_eq!(limits.admit(a, 1, 0, t0), Ok(()));
    assert_eq!(limits.admit(a, 1, 600, t0), Ok(()));
    assert_eq!(limits.admit(a, 1, 600, t0), Err(Limited::AgentBytes));
    assert_eq!(limits.admit(a, 1, 400, t0), Ok(()));
    assert_eq!(limits.admit(a, 1, 1, t0), Err(Limited::AgentBytes));

    // 5000 bytes, five times the burst: admitted once the bucket is full...
    let t1 = t0 + Duration::from_millis(999);
    assert_eq!(limits.admit(a, 1, 5000, t1), Err(Limited::AgentBytes));
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(limits.admit(a, 1, 5000, t1), Ok(()));
    // ...and then the debt is paid: nothing for four seconds, a byte after that.
    assert_eq!(
        limits.admit(a, 1, 1, t1 + Duration::from_secs(4) - MS),
        Err(Limited::AgentBytes)
    );
    assert_eq!(
        limits.admit(a, 1, 1, t1 + Duration::from_secs(4) + MS),
        Ok(())
    );
    // Zero bytes still pass while in debt.
    assert_eq!(limits.admit(a, 1, 0, t1), Ok(()));
}

#[test]
fn overall_bytes_limit() {
    let (policy, limits) =
        limits("[limits]\nbytes_per_sec = 100\n[[agents]]\nname = \"a\"\nuids = [1]\n");
    let a = agent(&policy, "a");
    let t0 = Instant::now();
    assert_eq!(limits.admit(a, 1, 60, t0), Ok(()));
    assert_eq!(
        limits.admit(AgentId::DEFAULT, 1, 60, t0),
        Err(Limited::OverallBytes)
    );
    assert_eq!(limits.admit(AgentId::DEFAULT, 1, 40, t0), Ok(()));
}

#[test]
fn a_stale_now_and_a_foreign_agent_are_handled() {
    let (_, limits) = limits("[limits]\nops_per_sec = 2\n");
    let before_epoch = Instant::now() - Duration::from_secs(5);
    assert_eq!(limits.admit(AgentId::DEFAULT, 1, 0, before_epoch), Ok(()));
    let other = parse(super::ISSUE_EXAMPLE);
    let foreign = agent(&other, "reviewer");
    assert_eq!(limits.admit(foreign, 1, 0, before_epoch), Ok(()));
    assert_eq!(
        limits.admit(foreign, 1, 0, before_epoch),
        Err(Limited::OverallOps)
    );
}

#[test]
fn labels_and_messages() {
    let all = [
        (Limited::AgentOps, "agent_ops"),
        (Limited::AgentBytes, "agent_bytes"),
        (Limited::OverallOps, "overall_ops"),
        (Limited::OverallBytes, "overall_bytes"),
    ];
    for (limited, label) in all {
        assert_eq!(limited.as_str(), label);
        assert!(limited.to_string().starts_with("over the "));
    }
}

#[test]
fn concurrent_callers_never_exceed_the_burst() {
    let (policy, limits) = limits("[[agents]]\nname = \"a\"\nuids = [1]\nops_per_sec = 1000\n");
    let a = agent(&policy, "a");
    let limits = Arc::new(limits);
    let now = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let limits = Arc::clone(&limits);
            std::thread::spawn(move || {
                (0..1000)
                    .filter(|_| limits.admit(a, 1, 0, now).is_ok())
                    .count()
            })
        })
        .collect();
    let admitted: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(admitted, 1000);
}
