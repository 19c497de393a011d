//! The anomaly kinds as one closed set: what a `check` event, a chaos report, a shrink and the
//! CLI's `--anomaly` name, in the same snake_case words as [`Anomaly`](super::Anomaly)'s `kind` tag.

use serde::{Deserialize, Serialize};

/// One kind of [`Anomaly`](super::Anomaly), without its data. Declared from most to least
/// severe, and ordered so (`Ord`): a shrink keeps the most severe kind the first run showed, so
/// its search cannot drift from a lost write to a lesser anomaly some other episode also shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    LostWrite,
    ReplicaDivergence,
    CommittedOffsetBackwards,
    Unseen,
    PollSkip,
    PhantomRead,
    FailedButPresent,
    InconsistentOffset,
    Duplicate,
    NonmonotonicPoll,
    NonmonotonicSend,
    Reordered,
}

impl AnomalyKind {
    /// Every kind, most severe first.
    pub const ALL: [AnomalyKind; 12] = [
        AnomalyKind::LostWrite,
        AnomalyKind::ReplicaDivergence,
        AnomalyKind::CommittedOffsetBackwards,
        AnomalyKind::Unseen,
        AnomalyKind::PollSkip,
        AnomalyKind::PhantomRead,
        AnomalyKind::FailedButPresent,
        AnomalyKind::InconsistentOffset,
        AnomalyKind::Duplicate,
        AnomalyKind::NonmonotonicPoll,
        AnomalyKind::NonmonotonicSend,
        AnomalyKind::Reordered,
    ];

    /// The serde name (`lost_write`), as the JSON on disk and the CLI write it.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::LostWrite => "lost_write",
            AnomalyKind::ReplicaDivergence => "replica_divergence",
            AnomalyKind::CommittedOffsetBackwards => "committed_offset_backwards",
            AnomalyKind::Unseen => "unseen",
            AnomalyKind::PollSkip => "poll_skip",
            AnomalyKind::PhantomRead => "phantom_read",
            AnomalyKind::FailedButPresent => "failed_but_present",
            AnomalyKind::InconsistentOffset => "inconsistent_offset",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::NonmonotonicPoll => "nonmonotonic_poll",
            AnomalyKind::NonmonotonicSend => "nonmonotonic_send",
            AnomalyKind::Reordered => "reordered",
        }
    }

    /// Short plural-free label used in summaries and `matches` errors.
    pub fn label(self) -> &'static str {
        match self {
            AnomalyKind::LostWrite => "lost write",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::Reordered => "reordered pair",
            AnomalyKind::InconsistentOffset => "inconsistent offset",
            AnomalyKind::PhantomRead => "phantom read",
            AnomalyKind::ReplicaDivergence => "replica divergence",
            AnomalyKind::FailedButPresent => "failed send present",
            AnomalyKind::NonmonotonicSend => "nonmonotonic send",
            AnomalyKind::PollSkip => "poll skip",
            AnomalyKind::NonmonotonicPoll => "nonmonotonic poll",
            AnomalyKind::Unseen => "unseen write",
            AnomalyKind::CommittedOffsetBackwards => "committed offset backwards",
        }
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AnomalyKind {
    type Err = String;

    /// A kind by its name; an unknown name's error lists every valid one.
    fn from_str(s: &str) -> Result<Self, String> {
        AnomalyKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown anomaly kind '{s}'; the kinds are: {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names_and_unknown_ones_list_every_kind() {
        for k in AnomalyKind::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
            assert_eq!(k.as_str().parse::<AnomalyKind>(), Ok(k));
        }
        let mut sorted = AnomalyKind::ALL;
        sorted.sort();
        assert_eq!(sorted, AnomalyKind::ALL, "ALL is in declaration (severity) order");
        let err = "lost".parse::<AnomalyKind>().unwrap_err();
        assert!(err.contains("'lost'") && err.contains("lost_write") && err.contains("reordered"), "{err}");
    }
}
