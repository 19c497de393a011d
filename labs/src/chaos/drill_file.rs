//! A [`DrillSpec`] written back as drill TOML, so a chaos run (or a shrunk one) is a file that
//! `clusterlab drill run` replays and a person can read. `parse_drill` of the text gives the
//! same spec again (up to source lines); a test holds that.

use crate::drill::{
    Action, Anomalies, DrillSpec, Expect, Fault, Outcome, Setup, Step, Target, When, Workload,
};

/// A TOML string, quoted and escaped by the `toml` crate.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::None => "none",
        Outcome::Some => "some",
        Outcome::Any => "any",
    }
}

/// The fault's `fault = ..` name and its parameters as `key = value` lines.
fn fault_lines(f: &Fault) -> Vec<String> {
    let t = |k: &str, t: &Target| format!("{k} = {}", q(&t.to_string()));
    let name = |n: &str| format!("fault = {}", q(n));
    match f {
        Fault::Kill { target } => vec![name("kill"), t("target", target)],
        Fault::Stop { target } => vec![name("stop"), t("target", target)],
        Fault::Pause { target } => vec![name("pause"), t("target", target)],
        Fault::Resume { target } => vec![name("resume"), t("target", target)],
        Fault::Restart { target } => vec![name("restart"), t("target", target)],
        Fault::PowerCut { target } => vec![name("power_cut"), t("target", target)],
        Fault::CorruptSegment { target } => vec![name("corrupt_segment"), t("target", target)],
        Fault::FsyncFail { target } => vec![name("fsync_fail"), t("target", target)],
        Fault::Isolate { target } => vec![name("isolate"), t("target", target)],
        Fault::Bridge { target } => vec![name("bridge"), t("target", target)],
        Fault::TakePort { target } => vec![name("take_port"), t("target", target)],
        Fault::SlowDisk { target, delay_ms } => {
            vec![name("slow_disk"), t("target", target), format!("delay_ms = {delay_ms}")]
        }
        Fault::Split { minority } => {
            let list: Vec<String> = minority.iter().map(|m| q(&m.to_string())).collect();
            vec![name("split"), format!("minority = [{}]", list.join(", "))]
        }
        Fault::CutLink { from, to, direction } => vec![
            name("cut_link"),
            t("from", from),
            t("to", to),
            format!(
                "direction = {}",
                q(&format!("{direction:?}").replace("OneWay", "one_way").to_lowercase())
            ),
        ],
        Fault::DelayLink { from, to, delay_ms } => {
            vec![name("delay_link"), t("from", from), t("to", to), format!("delay_ms = {delay_ms}")]
        }
        Fault::BlackholeLink { from, to } => vec![name("blackhole_link"), t("from", from), t("to", to)],
        Fault::HealLink { from, to } => vec![name("heal_link"), t("from", from), t("to", to)],
        Fault::Toxic { from, to, toxic } => {
            vec![name("toxic"), t("from", from), t("to", to), format!("toxic = {}", q(&toxic.to_string()))]
        }
        Fault::Heal => vec![name("heal")],
    }
}

/// The drill as TOML text, keys in the order the catalog's files use.
pub fn render(spec: &DrillSpec) -> String {
    let mut lines = header_lines(spec);
    lines.extend(setup_lines(&spec.setup));
    lines.extend(workload_lines(&spec.workload));
    for step in &spec.steps {
        lines.extend(step_lines(step));
    }
    lines.extend(expect_lines(&spec.expect));
    lines.into_iter().map(|l| l + "\n").collect()
}

/// The top-level keys: name, title, description, tags.
fn header_lines(spec: &DrillSpec) -> Vec<String> {
    let tags: Vec<String> = spec.tags.iter().map(|t| q(t)).collect();
    vec![
        format!("name = {}", q(&spec.name)),
        format!("title = {}", q(&spec.title)),
        format!("description = {}", q(&spec.description)),
        format!("tags = [{}]", tags.join(", ")),
    ]
}

/// The `[setup]` table; `topics` and `seed` only when they differ from the parser's default.
fn setup_lines(st: &Setup) -> Vec<String> {
    let mut out =
        vec!["\n[setup]".to_string(), format!("nodes = {}", st.nodes), format!("topic = {}", q(&st.topic))];
    if st.topics > 1 {
        out.push(format!("topics = {}", st.topics));
    }
    out.extend([
        format!("partitions = {}", st.partitions),
        format!("replication_factor = {}", st.replication_factor),
        format!("fsync = {}", q(&st.fsync.to_string())),
        format!("acks = {}", q(&st.acks.to_string())),
        format!("idempotence = {}", st.idempotence),
        format!("election_timeout_ms = [{}, {}]", st.election_timeout_ms[0], st.election_timeout_ms[1]),
        format!("heartbeat_ms = {}", st.heartbeat_ms),
    ]);
    if let Some(seed) = st.seed {
        out.push(format!("seed = {seed}"));
    }
    out
}

/// The `[workload]` table; optional keys only when set.
fn workload_lines(w: &Workload) -> Vec<String> {
    let mut out = vec![
        "\n[workload]".to_string(),
        format!("producers = {}", w.producers),
        format!("consumers = {}", w.consumers),
    ];
    if let Some(m) = w.messages {
        out.push(format!("messages = {m}"));
    }
    if let Some(d) = w.duration_ms {
        out.push(format!("duration_ms = {d}"));
    }
    if let Some(r) = w.rate_per_sec {
        out.push(format!("rate_per_sec = {r}"));
    }
    out.push(format!("message_bytes = {}", w.message_bytes));
    out.push(format!("consumer_group = {}", w.consumer_group));
    if let Some(c) = w.churn_ms {
        out.push(format!("churn_ms = {c}"));
    }
    out.push(format!("produce_via = {}", q(&w.produce_via.to_string())));
    out.push(format!("consume_via = {}", q(&w.consume_via.to_string())));
    let start = serde_json::to_value(w.consumers_start).ok();
    out.push(format!(
        "consumers_start = {}",
        q(start.as_ref().and_then(|v| v.as_str()).unwrap_or("with_producers"))
    ));
    out
}

/// One `[[steps]]` entry: when, then what (a fault's keys, a wait's condition), then narration.
fn step_lines(step: &Step) -> Vec<String> {
    let mut out = vec!["\n[[steps]]".to_string()];
    out.push(match step.when {
        When::BeforeStart => "before_start = true".into(),
        When::AtMs(ms) => format!("at_ms = {ms}"),
        When::AfterMs(ms) => format!("after_ms = {ms}"),
    });
    match &step.action {
        Action::Fault(f) => out.extend(fault_lines(f)),
        Action::Wait { until, timeout_ms } => {
            out.push(format!("until = {}", q(&until.to_string())));
            out.push(format!("timeout_ms = {timeout_ms}"));
        }
        Action::Narrate => {}
    }
    if let Some(n) = &step.narrate {
        out.push(format!("narrate = {}", q(n)));
    }
    out
}

/// The `[expect]` table; optional keys only when set.
fn expect_lines(e: &Expect) -> Vec<String> {
    let other = if e.other_anomalies == Anomalies::Any { "any" } else { "none" };
    let mut out = vec![
        "\n[expect]".to_string(),
        format!("lost = {}", q(outcome(e.lost))),
        format!("duplicates = {}", q(outcome(e.duplicates))),
        format!("other_anomalies = {}", q(other)),
    ];
    if let Some(m) = e.max_unavailability_ms {
        out.push(format!("max_unavailability_ms = {m}"));
    }
    if let Some(p) = e.min_term_plus_one_pct {
        out.push(format!("min_term_plus_one_pct = {p:?}"));
    }
    if let Some(f) = &e.start_fails_with {
        out.push(format!("start_fails_with = {}", q(f)));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::drill::parse_drill;

    fn without_lines(mut spec: DrillSpec) -> DrillSpec {
        spec.steps.iter_mut().for_each(|s| s.line = 0);
        spec
    }

    #[test]
    fn every_catalog_drill_survives_render_and_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("drills");
        let catalog = crate::drill::load_catalog(&dir).expect("catalog parses");
        assert!(catalog.len() > 10);
        for spec in catalog {
            let text = render(&spec);
            let back =
                parse_drill(&text, &spec.file).unwrap_or_else(|e| panic!("{}: {e}\n{text}", spec.name));
            assert_eq!(without_lines(back), without_lines(spec.clone()), "{text}");
        }
    }

    #[test]
    fn a_chaos_drill_with_every_family_survives_render_and_parse() {
        let opts = crate::chaos::ChaosOptions { duration_ms: 120_000, ..Default::default() };
        for seed in 0..20 {
            let spec = crate::chaos::build_drill(&crate::chaos::ChaosOptions { seed, ..opts.clone() });
            let text = render(&spec);
            let back = parse_drill(&text, &spec.file).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            assert_eq!(without_lines(back), without_lines(spec), "{text}");
        }
    }

    #[test]
    fn a_multi_topic_chaos_drill_survives_render_and_parse_and_bad_counts_are_refused() {
        let spec = crate::chaos::build_drill(&crate::chaos::ChaosOptions { topics: 3, ..Default::default() });
        assert_eq!(spec.setup.topic_names(), ["chaos", "chaos2", "chaos3"]);
        let text = render(&spec);
        assert!(text.contains("\ntopics = 3\n"), "{text}");
        let back = parse_drill(&text, &spec.file).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(without_lines(back), without_lines(spec.clone()));
        // A role may name any of the drill's topics, and only those.
        let with_target = |target: &str| {
            text.replacen(
                "\n[[steps]]\n",
                &format!("\n[[steps]]\nat_ms = 1\nfault = \"kill\"\ntarget = \"{target}\"\n\n[[steps]]\n"),
                1,
            )
        };
        assert!(parse_drill(&with_target("leader:chaos3/2"), &spec.file).is_ok());
        let e = parse_drill(&with_target("leader:chaos4/0"), &spec.file).unwrap_err().to_string();
        assert!(e.contains("topic 'chaos4' is not this drill's topic"), "{e}");
        let e = parse_drill(&text.replace("topics = 3", "topics = 0"), &spec.file).unwrap_err().to_string();
        assert!(e.contains("topics must be 1 to 16"), "{e}");
    }
}
