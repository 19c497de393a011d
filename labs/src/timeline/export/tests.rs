//! Tests of every export on the sample run; they also leave the outputs in
//! `$TMPDIR/timeline-samples/` for a person to look at.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::sample::sample_timeline;
use super::*;
use crate::history::{Op, OpKind, OpType};
use crate::timeline::event::{EventKind, Source, TimelineEvent};

fn samples_dir() -> PathBuf {
    let d = std::env::temp_dir().join("timeline-samples");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bytes(f: impl FnOnce(&mut Vec<u8>) -> Result<(), LabError>) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v).unwrap();
    v
}

#[test]
fn jsonl_round_trip_and_line_numbers_in_errors() {
    let events = sample_timeline().snapshot();
    let out = bytes(|o| write_jsonl(&events, o));
    std::fs::write(samples_dir().join("timeline.jsonl"), &out).unwrap();
    assert_eq!(read_jsonl(&out[..]).unwrap(), events);

    let mut lines: Vec<String> = String::from_utf8(out).unwrap().lines().take(3).map(String::from).collect();
    lines[2] = lines[2].replace("\"ts_ns\"", "\"when\"");
    let err = read_jsonl(lines.join("\n").as_bytes()).unwrap_err().to_string();
    assert!(err.contains("line 3") && err.contains("ts_ns") && !err.contains("line 1"), "{err}");
    let err = read_jsonl("\n{\"seq\":1}\nnot json\n".as_bytes()).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn perfetto_trace_has_processes_terms_faults_and_counters() {
    let events = sample_timeline().snapshot();
    let out = bytes(|o| write_perfetto(&events, o));
    std::fs::write(samples_dir().join("trace.json"), &out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    let phases: BTreeSet<&str> = evs.iter().map(|e| e["ph"].as_str().unwrap()).collect();
    assert_eq!(phases, ["C", "M", "X", "i"].into_iter().collect());
    let names: BTreeSet<&str> = evs
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["clients", "lab", "node 1", "node 2", "node 3"].into_iter().collect());
    let terms: Vec<(i64, &str)> = evs
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| (e["pid"].as_i64().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    assert!(
        terms.contains(&(2, "term 2")) && terms.contains(&(1, "term 1")) && terms.contains(&(3, "term 3")),
        "{terms:?}"
    );
    let faults: Vec<_> = evs.iter().filter(|e| e["cat"] == "fault").collect();
    assert_eq!(faults.len(), 3);
    assert!(faults.iter().all(|f| f["ph"] == "i" && f["s"] == "g" && f["pid"] == 0));
    let min_ts = evs.iter().filter_map(|e| e["ts"].as_f64()).fold(f64::MAX, f64::min);
    assert_eq!(min_ts, 0.0);
    let rate: u64 = evs
        .iter()
        .filter(|e| e["name"] == "produce rate (acked/s)")
        .map(|e| e["args"]["ops"].as_u64().unwrap())
        .sum();
    let acked = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Client { op } if op.op_type == OpType::Ok))
        .count();
    assert_eq!(rate as usize, acked);
}

/// A tiny EDN reader for one flat map of keyword keys to keyword/string/integer/nil values.
fn parse_edn_map(line: &str) -> Result<BTreeMap<String, String>, String> {
    let s: Vec<char> = line.chars().collect();
    let (mut i, mut map) = (0, BTreeMap::new());
    let ws = |i: &mut usize| {
        while *i < s.len() && (s[*i].is_whitespace() || s[*i] == ',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let st = *i;
        while *i < s.len() && !s[*i].is_whitespace() && s[*i] != ',' && s[*i] != '}' {
            *i += 1;
        }
        s[st..*i].iter().collect::<String>()
    };
    if s.first() != Some(&'{') {
        return Err("no {".into());
    }
    i += 1;
    loop {
        ws(&mut i);
        match s.get(i) {
            Some('}') if i + 1 == s.len() => return Ok(map),
            Some(':') => {}
            other => return Err(format!("expected key at {i}: {other:?}")),
        }
        let key = token(&mut i);
        ws(&mut i);
        let val = if s.get(i) == Some(&'"') {
            let mut v = String::new();
            i += 1;
            loop {
                match s.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('"') => break,
                    Some('\\') => {
                        i += 1;
                        v.push(match s.get(i) {
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some('r') => '\r',
                            Some('"') => '"',
                            Some('\\') => '\\',
                            Some('u') => {
                                let hex: String = s[i + 1..i + 5].iter().collect();
                                i += 4;
                                char::from_u32(u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?)
                                    .ok_or("bad \\u")?
                            }
                            c => return Err(format!("bad escape {c:?}")),
                        });
                    }
                    Some(c) => v.push(*c),
                }
                i += 1;
            }
            i += 1;
            format!("\"{v}")
        } else {
            let t = token(&mut i);
            if !(t == "nil" || t.starts_with(':') || t.parse::<i64>().is_ok()) {
                return Err(format!("bad value {t}"));
            }
            t
        };
        if map.insert(key.clone(), val).is_some() {
            return Err(format!("duplicate key {key}"));
        }
    }
}

#[test]
fn edn_history_lines_are_well_formed_maps() {
    let mut events = sample_timeline().snapshot();
    let nasty = "a \"quoted\", back\\slash\nnew\tline \u{1}";
    let op = Op::new(7, OpType::Info, OpKind::Send, "t").value(nasty).time(events[0].ts_ns + 5).error("x");
    events.push(TimelineEvent {
        seq: 1_000_000,
        ts_ns: events[0].ts_ns + 5,
        source: Source::Client(7),
        kind: EventKind::Client { op },
    });
    let out = String::from_utf8(bytes(|o| write_edn(&events, o))).unwrap();
    std::fs::write(samples_dir().join("history.edn"), &out).unwrap();
    let maps: Vec<_> = out.lines().map(|l| parse_edn_map(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(maps.len(), 2001);
    for (i, m) in maps.iter().enumerate() {
        assert_eq!(m[":index"], i.to_string());
        assert!([":invoke", ":ok", ":fail", ":info"].contains(&m[":type"].as_str()));
        assert_eq!(m[":f"], ":send");
        if m[":type"] == ":ok" {
            assert!(m.contains_key(":partition") && m.contains_key(":offset"), "{m:?}");
        }
    }
    assert_eq!(maps[0][":time"], "0");
    assert!(maps.iter().any(|m| m[":value"] == format!("\"{nasty}")), "escaped string did not survive");
}

/// RFC 4180 reader for the test: quoted fields, doubled quotes, CRLF rows.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field, mut q) = (Vec::new(), Vec::new(), String::new(), false);
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match (q, c) {
            (true, '"') if it.peek() == Some(&'"') => {
                it.next();
                field.push('"');
            }
            (true, '"') => q = false,
            (true, c) => field.push(c),
            (false, '"') => q = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[test]
fn csv_quotes_commas_quotes_and_newlines() {
    let mut events = sample_timeline().snapshot();
    let line = "a,b \"c\"\nd";
    events.push(TimelineEvent {
        seq: 99,
        ts_ns: 1,
        source: Source::Node(2),
        kind: EventKind::Log { stream: "stderr".into(), line: line.into() },
    });
    let out = String::from_utf8(bytes(|o| write_csv(&events, o))).unwrap();
    std::fs::write(samples_dir().join("timeline.csv"), &out).unwrap();
    let rows = parse_csv(&out);
    assert_eq!(rows.len(), events.len() + 1);
    assert_eq!(rows[0], csv::HEADER);
    assert!(rows.iter().all(|r| r.len() == 6));
    let last = rows.last().unwrap();
    assert_eq!(&last[..5], ["99", "1", "node:2", "log", line]);
    let details: serde_json::Value = serde_json::from_str(&last[5]).unwrap();
    assert_eq!(details["line"], line);
    assert!(out.contains("\"a,b \"\"c\"\"\nd\""));
}

#[test]
fn charts_write_png_and_svg_with_and_without_text() {
    let events = sample_timeline().snapshot();
    assert!(charts::chart_fonts_available(), "no font found under /usr/share/fonts");
    let paths = write_charts(&events, &samples_dir()).unwrap();
    assert_eq!(paths.len(), 4);
    for p in &paths {
        let b = std::fs::read(p).unwrap();
        if p.extension().unwrap() == "png" {
            assert!(b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"), "{p:?}");
        } else {
            let s = String::from_utf8(b).unwrap();
            assert!(s.contains("<svg") && s.contains("<text"), "{p:?}");
        }
    }
    // Without a font the charts still draw, just without text.
    let d = charts::ChartData::new(&events);
    let svg = charts::render_svg("leaders", &d, false).unwrap();
    assert!(svg.contains("<svg") && !svg.contains("<text") && svg.contains("<rect"));
    assert!(charts::render_svg("produce", &d, false).unwrap().contains("<polyline"));
    // Empty timelines do not panic.
    assert!(render_svgs(&[]).unwrap().len() == 2);
}

#[test]
fn html_report_is_self_contained() {
    let events = sample_timeline().snapshot();
    let verdict = serde_json::json!({"valid?": true, "lost": [], "note": "<b>not markup</b>"});
    let out = String::from_utf8(bytes(|o| {
        write_html_report(&events, Some(&verdict), "Kill the leader & cut a link", o)
    }))
    .unwrap();
    std::fs::write(samples_dir().join("report.html"), &out).unwrap();
    assert!(!out.contains("http://") && !out.contains("https://"));
    assert!(!out.contains(" src=") && !out.contains("<link") && !out.contains("<script"));
    assert_eq!(out.matches("<svg").count(), 2);
    assert!(
        out.contains("PASSED")
            && out.contains("Kill the leader &amp; cut a link")
            && out.contains("&lt;b&gt;not markup")
    );
    assert!(
        out.contains("cut_link node-2&lt;-&gt;node-3")
            && out.contains("live:duplicate")
            && out.contains("Node 2 won term 2")
    );
}

#[test]
fn fault_spans_and_leaders_are_derived() {
    let events = sample_timeline().snapshot();
    let f = fault_spans(&events);
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].label.as_str(), f[0].end_ns), ("kill node-1", None));
    assert!(f[1].healed && f[1].end_ns.unwrap() - f[1].start_ns == 3_000_000_000);
    let l = leader_spans(&events);
    let ctl: Vec<(i64, u64)> =
        l.iter().filter(|s| s.group == "controller").map(|s| (s.node, s.term)).collect();
    assert_eq!(ctl, [(1, 1), (2, 2)]);
    let t1: Vec<(i64, u64)> = l.iter().filter(|s| s.group == "t-1").map(|s| (s.node, s.term)).collect();
    assert_eq!(t1, [(3, 1), (2, 2), (3, 3)]);
    // Node 1's controller term ends when it dies, before node 2 wins.
    assert_eq!(
        l.iter().find(|s| s.group == "controller").unwrap().end_ns,
        super::sample::T0 + 8_000_000_000 + 2_000_000
    );
}

#[test]
fn a_heal_link_ends_the_cut_of_the_same_link() {
    use crate::timeline::event::FaultName;
    let t = crate::timeline::Timeline::new();
    let fault = |ts: u64, fault: FaultName| {
        t.append(Source::Lab, ts, EventKind::Fault { fault, target: "node-2,node-3".into(), detail: None })
    };
    fault(1_000, FaultName::CutLink);
    fault(5_000, FaultName::HealLink);
    fault(6_000, FaultName::Pause);
    let f = fault_spans(&t.snapshot());
    assert_eq!(f.len(), 2, "the heal is no fault of its own: {f:?}");
    assert!(f[0].healed && f[0].end_ns == Some(5_000), "{:?}", f[0]);
    assert!(!f[1].healed, "a pause nobody resumed lasts to the end: {:?}", f[1]);
}

#[test]
fn export_one_million_events_to_jsonl() {
    let t = crate::timeline::Timeline::new();
    for i in 0..1_000_000u64 {
        let op = Op::new((i % 4) as u32, OpType::Ok, OpKind::Send, "t")
            .value(format!("v-{i}"))
            .time(i)
            .at(0, i as i64)
            .latency(3_000_000);
        t.append(
            Source::Client((i % 4) as u32),
            1_700_000_000_000_000_000 + i * 1000,
            EventKind::Client { op },
        );
    }
    let events = t.snapshot();
    let path = std::env::temp_dir().join("timeline-1m.jsonl");
    let start = std::time::Instant::now();
    write_to_path(&path, |o| write_jsonl(&events, o)).unwrap();
    let took = start.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "exported 1,000,000 events to JSON Lines ({:.0} MB) in {:.2} s",
        size as f64 / 1e6,
        took.as_secs_f64()
    );
    // What an export of a long run must be: every event, in order, each one readable back.
    // (Its time is printed, not asserted: speed is the benchmarks' business.)
    let back = read_jsonl(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back.len(), 1_000_000);
    assert!(back.windows(2).all(|w| w[0].seq < w[1].seq), "events out of order");
    assert_eq!((back[0].clone(), back[999_999].clone()), (events[0].clone(), events[999_999].clone()));
}
