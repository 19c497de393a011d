//! Link toxics (after Toxiproxy's ideas): what one direction of a link does to the bytes besides
//! passing, cutting or resetting them. Written as one string, `name:params[@percent]`:
//!
//! - `latency:<ms>:<jitter_ms>` — each chunk waits ms ± jitter (order kept, as on a real wire).
//! - `bandwidth:<kib_per_s>` — chunks leave no faster than this rate.
//! - `slicer:<bytes>:<delay_ms>` — chunks cut into slices of this size, `delay_ms` apart.
//! - `limit_data:<bytes>` — each connection forwards this much more, then is closed.
//! - `timeout:<ms>` — nothing passes, and the connection is reset after `ms`.
//! - `reset` — connections are reset and new ones refused (the link's `reset` mode).
//!
//! `@percent` (toxicity, default 100) applies the toxic to that share of chunks (latency,
//! bandwidth, slicer) or of connections (limit_data, timeout).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

/// In JSON (and so in the UI) a toxic is its text form, e.g. `latency:100:20@50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ts_rs::TS)]
#[ts(type = "string")]
pub enum Toxic {
    Latency { ms: u64, jitter_ms: u64, percent: u8 },
    Bandwidth { kib_per_s: u64, percent: u8 },
    Slicer { bytes: u32, delay_ms: u64, percent: u8 },
    LimitData { bytes: u64, percent: u8 },
    Timeout { ms: u64, percent: u8 },
    Reset,
}

const FORMS: &str = "latency:<ms>:<jitter_ms>, bandwidth:<KiB/s>, slicer:<bytes>:<delay_ms>, \
                     limit_data:<bytes>, timeout:<ms> or reset, each optionally @<percent>";

impl Toxic {
    pub fn percent(&self) -> u8 {
        match *self {
            Toxic::Latency { percent, .. }
            | Toxic::Bandwidth { percent, .. }
            | Toxic::Slicer { percent, .. }
            | Toxic::LimitData { percent, .. }
            | Toxic::Timeout { percent, .. } => percent,
            Toxic::Reset => 100,
        }
    }

    /// Decided per connection (when the toxic reaches it) rather than per chunk.
    pub(crate) fn per_connection(&self) -> bool {
        matches!(self, Toxic::LimitData { .. } | Toxic::Timeout { .. } | Toxic::Reset)
    }

    /// When the slices of a chunk of `len` bytes leave, given that the previous chunk of this
    /// direction leaves at `last_due` (never earlier: bytes do not overtake each other).
    /// Returns (due, slice length) pairs covering `len`.
    pub(crate) fn schedule(
        &self,
        now: Instant,
        last_due: Instant,
        len: usize,
        roll: u64,
    ) -> Vec<(Instant, usize)> {
        let start = now.max(last_due);
        match *self {
            Toxic::Latency { ms, jitter_ms, .. } => {
                // roll spreads uniformly over [-jitter, +jitter].
                let span = 2 * jitter_ms + 1;
                let delay = (ms + roll % span).saturating_sub(jitter_ms);
                vec![((now + Duration::from_millis(delay)).max(last_due), len)]
            }
            Toxic::Bandwidth { kib_per_s, .. } => {
                let secs = len as f64 / (kib_per_s.max(1) as f64 * 1024.0);
                vec![(start + Duration::from_secs_f64(secs), len)]
            }
            Toxic::Slicer { bytes, delay_ms, .. } => {
                let size = (bytes as usize).max(1);
                let mut out = Vec::with_capacity(len.div_ceil(size));
                let mut at = start;
                for i in (0..len).step_by(size) {
                    at += Duration::from_millis(delay_ms);
                    out.push((at, size.min(len - i)));
                }
                out
            }
            Toxic::LimitData { .. } | Toxic::Timeout { .. } | Toxic::Reset => vec![(start, len)],
        }
    }
}

impl FromStr for Toxic {
    type Err = String;
    fn from_str(s: &str) -> Result<Toxic, String> {
        let bad = |why: &str| format!("bad toxic '{s}': {why}; expected {FORMS}");
        let (body, percent) = match s.split_once('@') {
            Some((b, p)) => match p.parse::<u8>() {
                Ok(p) if (1..=100).contains(&p) => (b, p),
                _ => return Err(bad("the percent after @ must be 1 to 100")),
            },
            None => (s, 100),
        };
        let mut parts = body.split(':');
        let name = parts.next().unwrap_or_default();
        let nums: Result<Vec<u64>, _> = parts.map(str::parse::<u64>).collect();
        let nums = nums.map_err(|_| bad("parameters must be whole numbers"))?;
        let toxic = match (name, nums.as_slice()) {
            ("latency", [ms, jitter_ms]) => Toxic::Latency { ms: *ms, jitter_ms: *jitter_ms, percent },
            ("bandwidth", [k]) if *k > 0 => Toxic::Bandwidth { kib_per_s: *k, percent },
            ("slicer", [b, d]) if *b > 0 && *b <= u32::MAX as u64 => {
                Toxic::Slicer { bytes: *b as u32, delay_ms: *d, percent }
            }
            ("limit_data", [b]) => Toxic::LimitData { bytes: *b, percent },
            ("timeout", [ms]) => Toxic::Timeout { ms: *ms, percent },
            ("reset", []) if percent == 100 => Toxic::Reset,
            ("latency" | "bandwidth" | "slicer" | "limit_data" | "timeout" | "reset", _) => {
                return Err(bad("wrong number or value of parameters"))
            }
            _ => return Err(bad(&format!("unknown toxic '{name}'"))),
        };
        Ok(toxic)
    }
}

impl fmt::Display for Toxic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Toxic::Latency { ms, jitter_ms, .. } => write!(f, "latency:{ms}:{jitter_ms}")?,
            Toxic::Bandwidth { kib_per_s, .. } => write!(f, "bandwidth:{kib_per_s}")?,
            Toxic::Slicer { bytes, delay_ms, .. } => write!(f, "slicer:{bytes}:{delay_ms}")?,
            Toxic::LimitData { bytes, .. } => write!(f, "limit_data:{bytes}")?,
            Toxic::Timeout { ms, .. } => write!(f, "timeout:{ms}")?,
            Toxic::Reset => return f.write_str("reset"),
        }
        match self.percent() {
            100 => Ok(()),
            p => write!(f, "@{p}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Toxic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Toxic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxics_round_trip_through_their_string_and_refuse_bad_ones() {
        for s in
            ["latency:200:50", "bandwidth:64@50", "slicer:100:5", "limit_data:4096", "timeout:0", "reset"]
        {
            assert_eq!(s.parse::<Toxic>().unwrap().to_string(), s);
        }
        for (s, why) in [
            ("latency:200", "wrong number"),
            ("lag:1", "unknown toxic 'lag'"),
            ("bandwidth:0", "wrong number or value"),
            ("latency:1:1@0", "1 to 100"),
            ("slicer:a:1", "whole numbers"),
        ] {
            let e = s.parse::<Toxic>().unwrap_err();
            assert!(e.contains(why) && e.contains("expected latency"), "{s}: {e}");
        }
    }

    #[test]
    fn delays_keep_order_and_slices_cover_the_chunk() {
        let now = Instant::now();
        let later = now + Duration::from_millis(500);
        let lat = Toxic::Latency { ms: 100, jitter_ms: 50, percent: 100 };
        for roll in 0..200 {
            let (due, len) = lat.schedule(now, now, 10, roll)[0];
            let ms = (due - now).as_millis() as u64;
            assert!((50..=150).contains(&ms) && len == 10, "{ms}");
            assert!(lat.schedule(now, later, 10, roll)[0].0 >= later, "never before the previous chunk");
        }
        let slices = Toxic::Slicer { bytes: 4, delay_ms: 1, percent: 100 }.schedule(now, now, 10, 0);
        assert_eq!(slices.iter().map(|s| s.1).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert!(slices.windows(2).all(|w| w[0].0 < w[1].0));
        let bw = Toxic::Bandwidth { kib_per_s: 1, percent: 100 }.schedule(now, now, 1024, 0);
        assert_eq!((bw[0].0 - now).as_millis(), 1000);
    }
}
