//! Results, their arithmetic (rates, percentiles, ratios) and the human-readable rendering.
//!
//! Everything here is pure so it can be unit-tested without a broker.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::cases::Acks;

/// Ack latency percentiles in milliseconds, from a histogram recorded in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LatencySummary {
    pub fn from_histogram_us(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// Nearest-rank percentiles of a small sample (with 20 kills, p99 is the maximum).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SmallSummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl SmallSummary {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = |q: f64| {
            v.get(((q * v.len() as f64).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
        };
        SmallSummary {
            count: v.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// A rate; MB means 10^6 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Throughput {
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
}

impl Throughput {
    pub fn new(messages: u64, bytes: u64, elapsed: Duration) -> Self {
        // A zero duration only happens for zero messages; report 0, not infinity.
        let secs = elapsed.as_secs_f64();
        let per = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        Throughput {
            messages,
            bytes,
            seconds: secs,
            msgs_per_sec: per(messages as f64),
            mb_per_sec: per(bytes as f64) / 1e6,
        }
    }
}

/// One measured case against one broker.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// `clusterlab` or `tansu`.
    pub target: String,
    /// Our fsync policy; `None` for Tansu (memory storage).
    pub fsync: Option<String>,
    pub size: usize,
    pub acks: Acks,
    pub produce: Throughput,
    pub ack_latency: LatencySummary,
    /// fsync calls of the broker per 1000 measured messages (`None` when not observable).
    pub fsyncs_per_1000_msgs: Option<f64>,
    /// Mean duration of one fsync in ms during the run.
    pub fsync_mean_ms: Option<f64>,
    /// Rate from the first consumed message to the last.
    pub consume: Throughput,
    /// Time from assign() to the first consumed message.
    pub consume_first_message_ms: f64,
}

/// A case that did not complete, with the reason; the bench goes on with the others.
#[derive(Debug, Clone, Serialize)]
pub struct CaseFailure {
    pub target: String,
    pub case: String,
    pub error: String,
}

/// Ours divided by Tansu's for the same size and acks (>1 = we are faster / slower p99).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub fsync: String,
    pub size: usize,
    pub acks: Acks,
    pub produce_msgs_ratio: f64,
    pub consume_msgs_ratio: f64,
    pub p99_ratio: f64,
}

pub fn ratio(ours: f64, theirs: f64) -> f64 {
    if theirs > 0.0 {
        ours / theirs
    } else {
        f64::NAN
    }
}

/// Pairs every result of ours with Tansu's result for the same size and acks.
pub fn compare(ours: &[CaseResult], tansu: &[CaseResult]) -> Vec<Comparison> {
    ours.iter()
        .filter_map(|o| {
            let t = tansu.iter().find(|t| t.size == o.size && t.acks == o.acks)?;
            Some(Comparison {
                fsync: o.fsync.clone().unwrap_or_default(),
                size: o.size,
                acks: o.acks,
                produce_msgs_ratio: ratio(o.produce.msgs_per_sec, t.produce.msgs_per_sec),
                consume_msgs_ratio: ratio(o.consume.msgs_per_sec, t.consume.msgs_per_sec),
                p99_ratio: ratio(o.ack_latency.p99_ms, t.ack_latency.p99_ms),
            })
        })
        .collect()
}

/// The results table, one row per case.
pub fn render_results(results: &[CaseResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<12} {:>5} {:>4} | {:>10} {:>7} {:>8} {:>8} {:>8} {:>9} | {:>10} {:>7} {:>8}",
        "target",
        "fsync",
        "size",
        "acks",
        "prod msg/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "fsync/1k",
        "cons msg/s",
        "MB/s",
        "1st ms"
    );
    let _ = writeln!(out, "{}", "-".repeat(129));
    for r in results {
        let _ = writeln!(
            out,
            "{:<10} {:<12} {:>5} {:>4} | {:>10} {:>7.2} {:>8.2} {:>8.2} {:>8.2} {:>9} | {:>10} {:>7.2} {:>8.0}",
            r.target,
            r.fsync.as_deref().unwrap_or("(memory)"),
            r.size,
            r.acks.as_str(),
            fmt_rate(r.produce.msgs_per_sec),
            r.produce.mb_per_sec,
            r.ack_latency.p50_ms,
            r.ack_latency.p99_ms,
            r.ack_latency.max_ms,
            r.fsyncs_per_1000_msgs.map_or("-".to_string(), |f| format!("{f:.1}")),
            fmt_rate(r.consume.msgs_per_sec),
            r.consume.mb_per_sec,
            r.consume_first_message_ms,
        );
    }
    out
}

/// The ours/Tansu table.
pub fn render_comparisons(cmp: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>5} {:>4} | {:>14} {:>14} {:>10}",
        "fsync", "size", "acks", "produce x", "consume x", "p99 x"
    );
    let _ = writeln!(out, "{}", "-".repeat(68));
    for c in cmp {
        let _ = writeln!(
            out,
            "{:<12} {:>5} {:>4} | {:>14} {:>14} {:>10}",
            c.fsync,
            c.size,
            c.acks.as_str(),
            fmt_ratio(c.produce_msgs_ratio),
            fmt_ratio(c.consume_msgs_ratio),
            fmt_ratio(c.p99_ratio)
        );
    }
    out
}

pub fn render_failures(failures: &[CaseFailure]) -> String {
    failures.iter().map(|f| format!("FAILED {} {}: {}\n", f.target, f.case, f.error)).collect()
}

/// Whole messages per second with thousands separators: `123456.7` -> `123,457`.
pub fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 120_000_000, 3).unwrap();
        for v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_of_a_uniform_run() {
        // 1..=1000 ms in µs: p50 = 500 ms, p99 = 990 ms, max = 1000 ms (within 0.1% precision).
        let s = LatencySummary::from_histogram_us(&hist((1..=1000).map(|ms| ms * 1000)));
        assert!((s.p50_ms - 500.0).abs() <= 0.5, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() <= 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() <= 1.0, "{s:?}");
        assert!((s.mean_ms - 500.5).abs() <= 0.5, "{s:?}");
    }

    #[test]
    fn one_slow_message_moves_max_not_p99() {
        let mut values = vec![2_000u64; 999];
        values.push(250_000);
        let s = LatencySummary::from_histogram_us(&hist(values));
        assert!((s.p99_ms - 2.0).abs() < 0.01, "{s:?}");
        assert!((s.max_ms - 250.0).abs() < 0.3, "{s:?}");
    }

    #[test]
    fn throughput_and_ratio_maths() {
        let t = Throughput::new(50_000, 5_000_000, Duration::from_millis(2500));
        assert_eq!(t.msgs_per_sec, 20_000.0);
        assert_eq!(t.mb_per_sec, 2.0);
        assert_eq!(Throughput::new(0, 0, Duration::ZERO).msgs_per_sec, 0.0);
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert!(ratio(1.0, 0.0).is_nan());
        assert_eq!(fmt_ratio(ratio(1.0, 0.0)), "-");
        assert_eq!(fmt_ratio(0.456), "0.46x");
    }

    #[test]
    fn rates_get_thousands_separators() {
        assert_eq!(fmt_rate(0.0), "0");
        assert_eq!(fmt_rate(999.4), "999");
        assert_eq!(fmt_rate(1000.0), "1,000");
        assert_eq!(fmt_rate(123_456.7), "123,457");
        assert_eq!(fmt_rate(1_234_567.0), "1,234,567");
    }

    fn result(target: &str, fsync: Option<&str>, size: usize, acks: Acks, rate: f64, p99: f64) -> CaseResult {
        let t = Throughput {
            messages: 1,
            bytes: 1,
            seconds: 1.0,
            msgs_per_sec: rate,
            mb_per_sec: rate * size as f64 / 1e6,
        };
        CaseResult {
            target: target.into(),
            fsync: fsync.map(Into::into),
            size,
            acks,
            produce: t,
            ack_latency: LatencySummary {
                p50_ms: p99 / 2.0,
                p99_ms: p99,
                max_ms: p99 * 2.0,
                mean_ms: p99 / 2.0,
            },
            fsyncs_per_1000_msgs: fsync.map(|_| 12.5),
            fsync_mean_ms: None,
            consume: t,
            consume_first_message_ms: 300.0,
        }
    }

    #[test]
    fn comparison_pairs_by_size_and_acks() {
        let ours = vec![
            result("clusterlab", Some("always"), 100, Acks::All, 10_000.0, 8.0),
            result("clusterlab", Some("never"), 1024, Acks::One, 40_000.0, 2.0),
        ];
        let tansu = vec![result("tansu", None, 100, Acks::All, 20_000.0, 4.0)];
        let cmp = compare(&ours, &tansu);
        assert_eq!(cmp.len(), 1, "no Tansu result for 1024/acks=1");
        assert_eq!(cmp[0].produce_msgs_ratio, 0.5);
        assert_eq!(cmp[0].p99_ratio, 2.0);
        let table = render_comparisons(&cmp);
        assert!(table.lines().nth(2).unwrap().contains("0.50x"), "{table}");
    }

    #[test]
    fn results_table_has_a_row_per_case() {
        let rows = vec![
            result("clusterlab", Some("always"), 100, Acks::All, 12_345.0, 8.0),
            result("tansu", None, 100, Acks::All, 20_000.0, 4.0),
        ];
        let table = render_results(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].contains("12,345") && lines[2].contains("12.5"), "{table}");
        assert!(lines[3].contains("(memory)") && lines[3].contains(" - "), "{table}");
    }

    #[test]
    fn small_summary_is_nearest_rank() {
        let s = SmallSummary::of((1..=20).map(f64::from));
        assert_eq!((s.count, s.p50_ms, s.p99_ms, s.max_ms), (20, 10.0, 20.0, 20.0));
        let s = SmallSummary::of([5.0, f64::NAN, 1.0]);
        assert_eq!((s.count, s.p50_ms, s.max_ms), (2, 1.0, 5.0));
        assert!(SmallSummary::of([]).p50_ms.is_nan());
    }
}
