//! The named streams: which events each shows, and how.

use lighthouse_view_sdk::EventFilter;

/// The ops of changes to the live tree (what `file_changes` shows).
pub use lighthouse_view_sdk::LIVE_OPS;

/// The op the `shadows` view appends for an annotation.
pub const ANNOTATE_OP: &str = "annotate";

/// How a stream renders each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Every field of the event, `body` as JSON.
    Full,
    /// Who did what where: seq, time, agent, uid, pid, op, path (and path2 when set).
    Compact,
}

/// One of the streams `streams/` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    FileChanges,
    Annotations,
    AgentActivity,
    All,
    /// The policy's audit trail: not events of the log but the store's audit records.
    Audit,
}

impl Stream {
    /// Every stream, in listing order.
    pub const ALL: [Stream; 5] = [
        Stream::FileChanges,
        Stream::Annotations,
        Stream::AgentActivity,
        Stream::All,
        Stream::Audit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stream::FileChanges => "file_changes",
            Stream::Annotations => "annotations",
            Stream::AgentActivity => "agent_activity",
            Stream::All => "all",
            Stream::Audit => "audit",
        }
    }

    pub fn by_name(name: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The events it shows, as the store filters them.
    pub fn filter(self) -> EventFilter {
        match self {
            Stream::FileChanges => EventFilter::all().ops(LIVE_OPS),
            Stream::Annotations => EventFilter::all().ops(&[ANNOTATE_OP]),
            Stream::AgentActivity | Stream::All | Stream::Audit => EventFilter::all(),
        }
    }

    pub fn style(self) -> Style {
        match self {
            Stream::AgentActivity => Style::Compact,
            _ => Style::Full,
        }
    }

    /// One line for the README.
    pub fn summary(self) -> &'static str {
        match self {
            Stream::FileChanges => {
                "changes to the live tree (create mkdir symlink mknod write setattr rename link unlink rmdir setxattr removexattr), in full"
            }
            Stream::Annotations => "annotations (op \"annotate\", appended by shadows/), in full",
            Stream::AgentActivity => {
                "every event, compact: {seq,time,agent,uid,pid,op,path[,path2]} (who did what, where)"
            }
            Stream::All => "every event, in full (live changes and what views appended)",
            Stream::Audit => {
                "the policy's audit trail (--policy): denials, rate refusals, .auth answers: {seq,time,agent,uid,gid,pid,op,path,outcome}"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Stream::ALL {
            assert_eq!(Stream::by_name(s.name()), Some(s));
        }
        assert_eq!(Stream::by_name("README"), None);
        assert_eq!(Stream::by_name("File_changes"), None);
    }
}
