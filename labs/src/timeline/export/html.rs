//! A self-contained HTML report of a run: verdict, counts, the two charts as inline SVG, the
//! watched Raft group's elections as sequence diagrams, faults, anomalies and the narration.
//! Inline CSS only and no external URLs, so it can be mailed, archived or opened offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use crate::error::LabError;
use crate::history::OpType;
use crate::timeline::event::{EventKind, TimelineEvent};

use super::{esc, fault_spans, io_err, origin_ns, render_svgs, time_ordered, type_name};

const CSS: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px auto;max-width:1280px;\
color:#222;padding:0 16px}h1{margin-bottom:4px}h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}\
.meta{color:#666}.badge{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:bold;color:#fff}\
.ok{background:#2a8a2a}.fail{background:#c0392b}.unknown{background:#888}table{border-collapse:collapse;margin:8px 0}\
td,th{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}th{background:#f4f4f4}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
pre{background:#f7f7f7;padding:12px;overflow:auto;max-height:400px}\
figure{margin:16px 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}.none{color:#888;font-style:italic}\
.grid{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}";

/// Elections drawn message by message in a report: a drill has a few; a long run keeps its first.
const MAX_ELECTION_DIAGRAMS: usize = 5;

/// Write the report. `verdict_json` is the checker's result (shown verbatim; its `ok`,
/// `valid` or `valid?` field picks the badge), else the last `Verdict` event decides.
pub fn write_html_report(
    events: &[TimelineEvent],
    verdict_json: Option<&serde_json::Value>,
    title: &str,
    out: &mut impl Write,
) -> Result<(), LabError> {
    let html = render(events, verdict_json, title)?;
    out.write_all(html.as_bytes()).map_err(io_err("writing HTML report"))
}

/// The whole page, section by section in reading order. `write!` into a String cannot fail, so
/// the sections ignore its results.
fn render(
    events: &[TimelineEvent],
    verdict_json: Option<&serde_json::Value>,
    title: &str,
) -> Result<String, LabError> {
    let ordered = time_ordered(events);
    let clock = Clock(origin_ns(events));
    let mut h = String::with_capacity(256 * 1024);
    head(&mut h, events, title);
    verdict(&mut h, &ordered, verdict_json)?;
    counts(&mut h, events);
    charts(&mut h, events)?;
    elections(&mut h, events);
    faults(&mut h, events, clock);
    anomalies(&mut h, &ordered, clock);
    narration(&mut h, &ordered, clock);
    h.push_str("\n</body></html>\n");
    Ok(h)
}

/// Seconds since the first event, as every table of the report shows times.
#[derive(Clone, Copy)]
struct Clock(u64);

impl Clock {
    fn secs(self, ts: u64) -> String {
        format!("{:.3}", ts.saturating_sub(self.0) as f64 / 1e9)
    }
}

/// Drops the SVG namespace attribute: HTML puts <svg> in the SVG namespace by itself, and the
/// report then holds no URL at all.
fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

/// Document head, title and how many events over how long.
fn head(h: &mut String, events: &[TimelineEvent], title: &str) {
    let t0 = origin_ns(events);
    let end = events.iter().map(|e| e.ts_ns).max().unwrap_or(t0);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n\
         <html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{CSS}</style></head><body>\n\
         <h1>{t}</h1><p class=\"meta\">{n} events over {d:.1} s</p>\n",
        t = esc(title),
        n = events.len(),
        d = (end - t0) as f64 / 1e9
    );
}

/// The badge (from the checker's result, else the last `Verdict` event), the last verdict's
/// summary and the checker's result verbatim.
fn verdict(
    h: &mut String,
    ordered: &[&TimelineEvent],
    verdict_json: Option<&serde_json::Value>,
) -> Result<(), LabError> {
    let last_verdict = ordered.iter().rev().find_map(|e| match &e.kind {
        EventKind::Verdict { ok, summary } => Some((*ok, summary.clone())),
        _ => None,
    });
    let ok = verdict_json
        .and_then(|v| ["ok", "valid", "valid?"].iter().find_map(|k| v.get(*k).and_then(|b| b.as_bool())))
        .or(last_verdict.as_ref().map(|v| v.0));
    let (class, word) = match ok {
        Some(true) => ("ok", "PASSED"),
        Some(false) => ("fail", "FAILED"),
        None => ("unknown", "NO VERDICT"),
    };
    let _ = write!(h, "<h2>Verdict</h2><p><span class=\"badge {class}\">{word}</span>");
    if let Some((_, summary)) = &last_verdict {
        let _ = write!(h, " {}", esc(summary));
    }
    h.push_str("</p>\n");
    if let Some(v) = verdict_json {
        let pretty = serde_json::to_string_pretty(v)
            .map_err(|source| LabError::Json { what: "formatting verdict".into(), source })?;
        let _ = writeln!(h, "<pre>{}</pre>", esc(&pretty));
    }
    Ok(())
}

/// Two tables side by side: events per type, and client ops per kind and outcome.
fn counts(h: &mut String, events: &[TimelineEvent]) {
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ops: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for e in events {
        *by_type.entry(type_name(&e.kind)).or_default() += 1;
        if let EventKind::Client { op } = &e.kind {
            let t = match op.op_type {
                OpType::Invoke => "invoke",
                OpType::Ok => "ok",
                OpType::Fail => "fail",
                OpType::Info => "info",
            };
            *ops.entry((format!("{:?}", op.kind).to_lowercase(), t)).or_default() += 1;
        }
    }
    h.push_str("<h2>Counts</h2><div class=\"grid\"><table><tr><th>event type</th><th>count</th></tr>");
    for (t, n) in &by_type {
        let _ = write!(h, "<tr><td>{t}</td><td class=\"n\">{n}</td></tr>");
    }
    h.push_str(
        "</table><table><tr><th>client op</th><th>invoke</th><th>ok</th><th>fail</th><th>info</th></tr>",
    );
    let mut kinds: Vec<&String> = ops.keys().map(|k| &k.0).collect();
    kinds.dedup();
    for k in kinds {
        let _ = write!(h, "<tr><td>{}</td>", esc(k));
        for t in ["invoke", "ok", "fail", "info"] {
            let _ = write!(h, "<td class=\"n\">{}</td>", ops.get(&(k.clone(), t)).copied().unwrap_or(0));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></div>\n");
}

/// The charts, inline.
fn charts(h: &mut String, events: &[TimelineEvent]) -> Result<(), LabError> {
    h.push_str("<h2>Charts</h2>\n");
    for (name, svg) in render_svgs(events)? {
        let _ = writeln!(h, "<figure id=\"chart-{name}\">{}</figure>", inline_svg(&svg));
    }
    Ok(())
}

/// Elections of the watched Raft group, message by message.
fn elections(h: &mut String, events: &[TimelineEvent]) {
    h.push_str("<h2>Raft elections, message by message</h2>\n");
    let diagrams = super::sequence::election_diagrams(events, MAX_ELECTION_DIAGRAMS);
    if diagrams.is_empty() {
        h.push_str("<p class=\"none\">No election of the watched Raft group was recorded.</p>");
    }
    for (caption, svg) in diagrams {
        let _ = writeln!(
            h,
            "<figure class=\"election\">{}<figcaption>{}</figcaption></figure>",
            inline_svg(&svg),
            esc(&caption)
        );
    }
}

/// Each fault with when it was healed and how long it lasted.
fn faults(h: &mut String, events: &[TimelineEvent], clock: Clock) {
    h.push_str("<h2>Faults</h2>");
    let spans = fault_spans(events);
    if spans.is_empty() {
        h.push_str("<p class=\"none\">No faults.</p>");
        return;
    }
    h.push_str("<table><tr><th>at (s)</th><th>fault</th><th>until (s)</th><th>duration (s)</th></tr>");
    for f in &spans {
        let (until, dur) = match f.end_ns {
            None => ("instant".to_string(), String::new()),
            Some(e) if f.healed => (clock.secs(e), format!("{:.3}", (e - f.start_ns) as f64 / 1e9)),
            Some(_) => ("not healed".to_string(), String::new()),
        };
        let _ = write!(
            h,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{until}</td><td class=\"n\">{dur}</td></tr>",
            clock.secs(f.start_ns),
            esc(&f.label)
        );
    }
    h.push_str("</table>");
}

/// The checker's findings, in time order.
fn anomalies(h: &mut String, ordered: &[&TimelineEvent], clock: Clock) {
    h.push_str("\n<h2>Anomalies</h2>");
    let checks: Vec<_> = ordered.iter().filter(|e| matches!(e.kind, EventKind::Check { .. })).collect();
    if checks.is_empty() {
        h.push_str("<p class=\"none\">No anomalies reported.</p>");
        return;
    }
    h.push_str("<table><tr><th>at (s)</th><th>anomaly</th><th>detail</th></tr>");
    for e in checks {
        if let EventKind::Check { anomaly, detail } = &e.kind {
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                clock.secs(e.ts_ns),
                esc(&anomaly.to_string()),
                esc(detail)
            );
        }
    }
    h.push_str("</table>");
}

/// The drill's steps and the lines written for the audience.
fn narration(h: &mut String, ordered: &[&TimelineEvent], clock: Clock) {
    h.push_str("\n<h2>Narration</h2>");
    let lines: Vec<_> = ordered
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Step { index, description } => {
                Some((e.ts_ns, format!("<b>Step {index}:</b> {}", esc(description))))
            }
            EventKind::Narration { text } => Some((e.ts_ns, esc(text).into_owned())),
            _ => None,
        })
        .collect();
    if lines.is_empty() {
        h.push_str("<p class=\"none\">No narration.</p>");
        return;
    }
    h.push_str("<table><tr><th>at (s)</th><th>what</th></tr>");
    for (ts, line) in lines {
        let _ = write!(h, "<tr><td class=\"n\">{}</td><td>{line}</td></tr>", clock.secs(ts));
    }
    h.push_str("</table>");
}
