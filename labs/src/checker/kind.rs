//! The anomaly kinds as one closed set: what a `check` event, a chaos report, a shrink and the
//! CLI's `--anomaly` name, in the same snake_case words as [`Anomaly`](super::Anomaly)'s `kind` tag.

use serde::{Deserialize, Serialize};

/// One kind of [`Anomaly`](super::Anomaly), without its data. Declared from most to least
/// severe, and ordered so (`Ord`): a shrink keeps the most severe kind the first run showed, so
/// its search cannot drift from a lost write to a lesser anomaly some other episode also shows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ts_rs::TS,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    /// Every kind, most severe first (declaration order).
    pub const ALL: &'static [AnomalyKind] = <AnomalyKind as strum::VariantArray>::VARIANTS;

    /// The serde name (`lost_write`), as the JSON on disk and the CLI write it.
    pub fn as_str(self) -> &'static str {
        self.into()
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

impl std::str::FromStr for AnomalyKind {
    type Err = String;

    /// A kind by its name; an unknown name's error lists every valid one.
    fn from_str(s: &str) -> Result<Self, String> {
        AnomalyKind::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| {
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
        for &k in AnomalyKind::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
            assert_eq!(k.as_str().parse::<AnomalyKind>(), Ok(k));
        }
        let mut sorted = AnomalyKind::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, AnomalyKind::ALL, "ALL is in declaration (severity) order");
        let err = "lost".parse::<AnomalyKind>().unwrap_err();
        assert!(err.contains("'lost'") && err.contains("lost_write") && err.contains("reordered"), "{err}");
    }
}
