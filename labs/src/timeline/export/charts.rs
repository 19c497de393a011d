//! Charts of a run, as PNG and SVG (plotters):
//! - `leaders` — "leaders and terms": one lane per Raft group, a colored segment per leader
//!   node, the term where it changes, fault bands on top;
//! - `produce` — "produce rate and latency": acked sends per 100 ms bucket and the p99 ack
//!   latency per bucket (secondary axis), with the same fault bands.
//!
//! Text needs a font file: we use plotters' pure-Rust `ab_glyph` renderer with a TrueType font
//! found at run time (`CLUSTERLAB_CHART_FONT`, else DejaVu/Liberation/any .ttf under
//! /usr/share/fonts). Nothing is embedded; without a font the charts are drawn without text.

mod draw;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::error::LabError;
use crate::history::{OpKind, OpType};
use crate::timeline::event::{EventKind, TimelineEvent};

use super::{fault_spans, leader_spans, origin_ns, raft_groups, FaultSpan, LeaderSpan};

/// Width of a produce-rate bucket.
const BUCKET_NS: u64 = 100_000_000;
pub(crate) const LEADERS_SIZE: (u32, u32) = (1200, 420);
pub(crate) const PRODUCE_SIZE: (u32, u32) = (1200, 460);
/// The family name we register the found font under and draw with.
pub(crate) const FONT: &str = "sans-serif";

/// Everything both charts show, in seconds since the first event.
pub(crate) struct ChartData {
    pub dur_s: f64,
    pub groups: Vec<String>,
    pub leaders: Vec<LeaderSpan>,
    pub faults: Vec<FaultSpan>,
    /// (bucket start in s, acked sends, p99 ack latency in ms if any ack in the bucket)
    pub buckets: Vec<(f64, u64, Option<f64>)>,
    pub t0: u64,
}

impl ChartData {
    pub fn new(events: &[TimelineEvent]) -> ChartData {
        let t0 = origin_ns(events);
        let end = events.iter().map(|e| e.ts_ns).max().unwrap_or(t0);
        let nb = ((end - t0) / BUCKET_NS + 1) as usize;
        let mut lat: Vec<Vec<u64>> = vec![Vec::new(); nb];
        let mut acked = vec![0u64; nb];
        for e in events {
            if let EventKind::Client { op } = &e.kind {
                if op.kind == OpKind::Send && op.op_type == OpType::Ok {
                    let b = ((e.ts_ns - t0) / BUCKET_NS) as usize;
                    acked[b] += 1;
                    if let Some(l) = op.latency_ns {
                        lat[b].push(l);
                    }
                }
            }
        }
        let buckets =
            (0..nb).map(|b| (b as f64 * BUCKET_NS as f64 / 1e9, acked[b], p99_ms(&mut lat[b]))).collect();
        ChartData {
            // At least a second wide, so a tiny timeline still gets a sane axis.
            dur_s: ((end - t0) as f64 / 1e9).max(1.0),
            groups: raft_groups(events),
            leaders: leader_spans(events),
            faults: fault_spans(events),
            buckets,
            t0,
        }
    }

    pub fn secs(&self, ts_ns: u64) -> f64 {
        ts_ns.saturating_sub(self.t0) as f64 / 1e9
    }
}

/// Nearest-rank p99 in milliseconds.
fn p99_ms(v: &mut [u64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((v.len() as f64) * 0.99).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1] as f64 / 1e6)
}

/// Register a TrueType font for chart text once per process; false if none could be found,
/// in which case charts are drawn without text rather than failing.
pub fn chart_fonts_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let mut candidates: Vec<PathBuf> =
            std::env::var_os("CLUSTERLAB_CHART_FONT").map(PathBuf::from).into_iter().collect();
        for p in [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
        ] {
            candidates.push(p.into());
        }
        candidates.extend(find_ttf(Path::new("/usr/share/fonts"), 4));
        candidates.into_iter().any(|p| {
            let Ok(bytes) = std::fs::read(&p) else { return false };
            // plotters keeps fonts for the life of the process; leak the one we use, once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Any .ttf under `dir` (bounded depth), as a last resort when the usual fonts are missing.
fn find_ttf(dir: &Path, depth: u32) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() && depth > 0 {
            found.extend(find_ttf(&p, depth - 1));
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("ttf")) {
            found.push(p);
        }
    }
    found
}

pub(crate) fn chart_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> LabError {
    move |e| LabError::Chart { what: what.into(), detail: e.to_string() }
}

/// Write `leaders.png`, `leaders.svg`, `produce.png` and `produce.svg` into `dir` (created if
/// missing); returns the paths written.
pub fn write_charts(events: &[TimelineEvent], dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| LabError::Io { what: format!("creating {}", dir.display()), source })?;
    let d = ChartData::new(events);
    let text = chart_fonts_available();
    let mut written = Vec::new();
    for (name, size) in [("leaders", LEADERS_SIZE), ("produce", PRODUCE_SIZE)] {
        let png = dir.join(format!("{name}.png"));
        {
            let root = BitMapBackend::new(&png, size).into_drawing_area();
            draw_named(name, &root, &d, text)?;
            root.present().map_err(chart_err("writing PNG"))?;
        }
        written.push(png);
        let svg = dir.join(format!("{name}.svg"));
        let body = render_svg(name, &d, text)?;
        std::fs::write(&svg, body)
            .map_err(|source| LabError::Io { what: format!("writing {}", svg.display()), source })?;
        written.push(svg);
    }
    Ok(written)
}

/// Both charts as SVG text: `[("leaders", svg), ("produce", svg)]` (for inlining in HTML).
pub fn render_svgs(events: &[TimelineEvent]) -> Result<Vec<(&'static str, String)>, LabError> {
    let d = ChartData::new(events);
    let text = chart_fonts_available();
    Ok(vec![("leaders", render_svg("leaders", &d, text)?), ("produce", render_svg("produce", &d, text)?)])
}

pub(crate) fn render_svg(name: &str, d: &ChartData, text: bool) -> Result<String, LabError> {
    let size = if name == "leaders" { LEADERS_SIZE } else { PRODUCE_SIZE };
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        draw_named(name, &root, d, text)?;
        root.present().map_err(chart_err("rendering SVG"))?;
    }
    Ok(s)
}

fn draw_named<DB: DrawingBackend>(
    name: &str,
    root: &DrawingArea<DB, plotters::coord::Shift>,
    d: &ChartData,
    text: bool,
) -> Result<(), LabError> {
    if name == "leaders" {
        draw::leaders(root, d, text)
    } else {
        draw::produce(root, d, text)
    }
}
