//! A [`DrillSpec`] written back as drill TOML, so a chaos run (or a shrunk one) is a file that
//! `clusterlab drill run` replays and a person can read. `parse_drill` of the text gives the
//! same spec again (up to source lines); a test holds that.

use crate::drill::{Action, Anomalies, DrillSpec, Fault, Outcome, Target, When};

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
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("name = {}", q(&spec.name)));
    line(format!("title = {}", q(&spec.title)));
    line(format!("description = {}", q(&spec.description)));
    let tags: Vec<String> = spec.tags.iter().map(|t| q(t)).collect();
    line(format!("tags = [{}]", tags.join(", ")));

    let st = &spec.setup;
    line("\n[setup]".into());
    line(format!("nodes = {}", st.nodes));
    line(format!("topic = {}", q(&st.topic)));
    if st.topics > 1 {
        line(format!("topics = {}", st.topics));
    }
    line(format!("partitions = {}", st.partitions));
    line(format!("replication_factor = {}", st.replication_factor));
    line(format!("fsync = {}", q(&st.fsync.to_string())));
    line(format!("acks = {}", q(&st.acks.to_string())));
    line(format!("idempotence = {}", st.idempotence));
    line(format!("election_timeout_ms = [{}, {}]", st.election_timeout_ms[0], st.election_timeout_ms[1]));
    line(format!("heartbeat_ms = {}", st.heartbeat_ms));
    if let Some(seed) = st.seed {
        line(format!("seed = {seed}"));
    }

    let w = &spec.workload;
    line("\n[workload]".into());
    line(format!("producers = {}", w.producers));
    line(format!("consumers = {}", w.consumers));
    if let Some(m) = w.messages {
        line(format!("messages = {m}"));
    }
    if let Some(d) = w.duration_ms {
        line(format!("duration_ms = {d}"));
    }
    if let Some(r) = w.rate_per_sec {
        line(format!("rate_per_sec = {r}"));
    }
    line(format!("message_bytes = {}", w.message_bytes));
    line(format!("consumer_group = {}", w.consumer_group));
    if let Some(c) = w.churn_ms {
        line(format!("churn_ms = {c}"));
    }
    line(format!("produce_via = {}", q(&w.produce_via.to_string())));
    line(format!("consume_via = {}", q(&w.consume_via.to_string())));
    let start = serde_json::to_value(w.consumers_start).ok();
    line(format!(
        "consumers_start = {}",
        q(start.as_ref().and_then(|v| v.as_str()).unwrap_or("with_producers"))
    ));

    for step in &spec.steps {
        line("\n[[steps]]".into());
        match step.when {
            When::BeforeStart => line("before_start = true".into()),
            When::AtMs(ms) => line(format!("at_ms = {ms}")),
            When::AfterMs(ms) => line(format!("after_ms = {ms}")),
        }
        match &step.action {
            Action::Fault(f) => fault_lines(f).into_iter().for_each(&mut line),
            Action::Wait { until, timeout_ms } => {
                line(format!("until = {}", q(&until.to_string())));
                line(format!("timeout_ms = {timeout_ms}"));
            }
            Action::Narrate => {}
        }
        if let Some(n) = &step.narrate {
            line(format!("narrate = {}", q(n)));
        }
    }

    let e = &spec.expect;
    line("\n[expect]".into());
    line(format!("lost = {}", q(outcome(e.lost))));
    line(format!("duplicates = {}", q(outcome(e.duplicates))));
    let other = if e.other_anomalies == Anomalies::Any { "any" } else { "none" };
    line(format!("other_anomalies = {}", q(other)));
    if let Some(m) = e.max_unavailability_ms {
        line(format!("max_unavailability_ms = {m}"));
    }
    if let Some(p) = e.min_term_plus_one_pct {
        line(format!("min_term_plus_one_pct = {p:?}"));
    }
    if let Some(f) = &e.start_fails_with {
        line(format!("start_fails_with = {}", q(f)));
    }
    s
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
