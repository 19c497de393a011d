//! Fault families: what `--faults kill,pause,...` switches on, and how a list of names is read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One family of faults the nemesis may draw. Each is healed within its own episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// SIGKILL a node, later start it again.
    Kill,
    /// SIGSTOP a node (a "GC pause"), later SIGCONT.
    Pause,
    /// SIGTERM (graceful stop), later start again.
    Stop,
    /// SIGTERM and start at once: a rolling-restart step.
    Restart,
    /// Drop the node's files to their last fsync and abort it (one node or all), later start again.
    PowerCut,
    /// Network partitions by shape: isolate a leader / the controller / a node, bridge, one-way.
    Partition,
    /// Link toxics on one direction between two nodes: latency with jitter, bandwidth, slicer,
    /// limit-data-then-close, timeout, reset.
    Link,
    /// Slow fsync on a node, later back to normal.
    Disk,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::Kill,
        Family::Pause,
        Family::Stop,
        Family::Restart,
        Family::PowerCut,
        Family::Partition,
        Family::Link,
        Family::Disk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Kill => "kill",
            Family::Pause => "pause",
            Family::Stop => "stop",
            Family::Restart => "restart",
            Family::PowerCut => "power_cut",
            Family::Partition => "partition",
            Family::Link => "link",
            Family::Disk => "disk",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Family, String> {
        let s = s.trim();
        Family::ALL.into_iter().find(|f| f.name() == s || f.name().replace('_', "-") == s).ok_or_else(|| {
            format!(
                "unknown fault family '{s}': expected {} (or all)",
                Family::ALL.map(Family::name).join(", ")
            )
        })
    }
}

/// `kill,pause,partition` (or `all`) -> the families, sorted and deduplicated so that the order
/// the user typed them in cannot change the schedule a seed draws.
pub fn parse_families(list: &str) -> Result<Vec<Family>, String> {
    if list.trim() == "all" {
        return Ok(Family::ALL.to_vec());
    }
    let mut families = Vec::new();
    for name in list.split(',').filter(|n| !n.trim().is_empty()) {
        families.push(name.parse::<Family>()?);
    }
    if families.is_empty() {
        return Err("--faults needs at least one family (or all)".into());
    }
    families.sort();
    families.dedup();
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_parse_sorted_and_refuse_typos_by_name() {
        assert_eq!(parse_families("pause,kill,kill").unwrap(), vec![Family::Kill, Family::Pause]);
        assert_eq!(parse_families("power-cut").unwrap(), vec![Family::PowerCut]);
        assert_eq!(parse_families("all").unwrap().len(), 8);
        let e = parse_families("kill,paus").unwrap_err();
        assert!(e.contains("unknown fault family 'paus'") && e.contains("power_cut"), "{e}");
        assert!(parse_families(" , ").is_err());
    }
}
