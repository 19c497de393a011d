//! What a drill expects of its verdict. Most drills expect a clean run; some expect damage
//! (fsync never + power cut loses acked writes; a non-idempotent producer across a leader
//! change duplicates), and then the absence of that damage is the surprise worth reporting.

use serde::{Deserialize, Serialize};

use super::anomaly::{duplicate_count, lost_count, other_breakdown, other_count};
use super::Verdict;

/// How many of something a drill allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// Must be 0.
    #[default]
    None,
    /// Must be more than 0.
    Some,
    /// Not checked.
    Any,
}

/// Defaults to a clean run (all bounds `none`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Expectation {
    pub lost: Bound,
    pub duplicates: Bound,
    /// Every anomaly that is neither a lost write nor a duplicate.
    pub other_anomalies: Bound,
}

/// Ok when every bound holds; otherwise one message naming each failed bound and its numbers.
pub fn matches(verdict: &Verdict, expect: &Expectation) -> Result<(), String> {
    let a = &verdict.anomalies;
    let other = other_count(a);
    let other_detail = if other > 0 { format!(" ({})", other_breakdown(a)) } else { String::new() };
    let checks = [
        (
            expect.lost,
            lost_count(a),
            format!("lost writes (of {} acknowledged)", verdict.counts.acked),
            String::new(),
        ),
        (expect.duplicates, duplicate_count(a), "duplicated values".to_string(), String::new()),
        (expect.other_anomalies, other, "other anomalies".to_string(), other_detail),
    ];
    let failures: Vec<String> = checks
        .into_iter()
        .filter_map(|(bound, n, what, detail)| match bound {
            Bound::None if n > 0 => Some(format!("expected no {what}, found {n}{detail}")),
            Bound::Some if n == 0 => Some(format!("expected some {what}, found 0")),
            _ => None,
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
