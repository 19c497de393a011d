//! The case matrix (fsync policy x message size x acks) and the `--cases` filter.
//!
//! Filter syntax: comma-separated `key=value` terms, keys `fsync`, `size`, `acks`. Terms with
//! the same key are alternatives (OR), different keys must all hold (AND); a value may also list
//! alternatives with `|`. Example: `fsync=always|never,size=100,acks=all`.

use std::str::FromStr;

use serde::Serialize;

use crate::error::LabError;

/// The fsync policies measured, in the broker's `--fsync` syntax.
pub const FSYNC_POLICIES: [&str; 3] = ["always", "interval:50", "never"];
/// The message sizes measured, in bytes.
pub const SIZES: [usize; 2] = [100, 1024];

/// The producer's `acks` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    #[serde(rename = "1")]
    One,
    All,
}

impl Acks {
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::One => "1",
            Acks::All => "all",
        }
    }
}

impl FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1" => Ok(Acks::One),
            "all" | "-1" => Ok(Acks::All),
            _ => Err(format!("acks '{s}' is not one of: 1, all")),
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub fsync: String,
    pub size: usize,
    pub acks: Acks,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fsync={} size={} acks={}", self.fsync, self.size, self.acks.as_str())
    }
}

/// Every case, in the order they run (fsync outermost: one policy's cases sit together).
pub fn all_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for fsync in FSYNC_POLICIES {
        for size in SIZES {
            for acks in [Acks::One, Acks::All] {
                out.push(Case { fsync: fsync.to_string(), size, acks });
            }
        }
    }
    out
}

/// Default measured message count per size: ~5 MB of 100 B messages, ~20 MB of 1 KiB ones.
pub fn default_messages(size: usize) -> u64 {
    if size <= 100 {
        50_000
    } else {
        20_000
    }
}

/// A parsed `--cases` filter; the empty filter keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    fsync: Vec<String>,
    size: Vec<usize>,
    acks: Vec<Acks>,
}

impl CaseFilter {
    pub fn matches(&self, case: &Case) -> bool {
        let fsync_ok = self.fsync.is_empty()
            || self
                .fsync
                .iter()
                .any(|f| *f == case.fsync || (f == "interval" && case.fsync.starts_with("interval:")));
        let size_ok = self.size.is_empty() || self.size.contains(&case.size);
        let acks_ok = self.acks.is_empty() || self.acks.contains(&case.acks);
        fsync_ok && size_ok && acks_ok
    }

    /// Whether a peer case (no fsync dimension) is needed by any kept case of ours.
    pub fn matches_peer(&self, size: usize, acks: Acks) -> bool {
        (self.size.is_empty() || self.size.contains(&size))
            && (self.acks.is_empty() || self.acks.contains(&acks))
    }
}

impl FromStr for CaseFilter {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self, LabError> {
        let bad = |detail: String| LabError::InvalidArgument { what: "--cases filter", detail };
        let mut filter = CaseFilter::default();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (key, values) =
                term.split_once('=').ok_or_else(|| bad(format!("'{term}' is not key=value")))?;
            for value in values.split('|').map(str::trim) {
                match key.trim() {
                    "fsync" => {
                        let known = value == "interval" || FSYNC_POLICIES.contains(&value);
                        if !known {
                            return Err(bad(format!(
                                "fsync '{value}' is not one of: {}, interval",
                                FSYNC_POLICIES.join(", ")
                            )));
                        }
                        filter.fsync.push(value.to_string());
                    }
                    "size" => {
                        let n = parse_size(value)
                            .ok_or_else(|| bad(format!("size '{value}' is not a byte count")))?;
                        if !SIZES.contains(&n) {
                            return Err(bad(format!("size {n} is not measured; sizes are {SIZES:?}")));
                        }
                        filter.size.push(n);
                    }
                    "acks" => filter.acks.push(value.parse().map_err(bad)?),
                    other => return Err(bad(format!("unknown key '{other}'; keys are fsync, size, acks"))),
                }
            }
        }
        Ok(filter)
    }
}

/// `100`, `1024`, `1k`/`1KiB` (binary: message sizes are conventionally powers of two).
fn parse_size(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches("ib").trim_end_matches('b');
    match trimmed.strip_suffix('k') {
        Some(k) => k.parse::<usize>().ok().map(|k| k * 1024),
        None => trimmed.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(filter: &str) -> usize {
        let f: CaseFilter = filter.parse().unwrap();
        all_cases().iter().filter(|c| f.matches(c)).count()
    }

    #[test]
    fn matrix_has_twelve_cases() {
        assert_eq!(all_cases().len(), 12);
        assert_eq!(count(""), 12);
    }

    #[test]
    fn keys_and_together_values_or_together() {
        assert_eq!(count("fsync=always,size=100"), 2);
        assert_eq!(count("fsync=always,size=100,acks=all"), 1);
        assert_eq!(count("fsync=always,fsync=never"), 8);
        assert_eq!(count("fsync=always|never,acks=1"), 4);
        assert_eq!(count("fsync=interval"), 4);
        assert_eq!(count("fsync=interval:50,size=1k"), 2);
        assert_eq!(count(" size = 1KiB , acks=-1 "), 3);
    }

    #[test]
    fn rejects_bad_filters() {
        for bad in ["fsync", "fsync=sometimes", "size=7", "size=abc", "acks=2", "color=red"] {
            assert!(bad.parse::<CaseFilter>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn peer_cases_ignore_fsync() {
        let f: CaseFilter = "fsync=always,size=100".parse().unwrap();
        assert!(f.matches_peer(100, Acks::All));
        assert!(!f.matches_peer(1024, Acks::One));
    }
}
