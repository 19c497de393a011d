//! A chaos run on the lab: the seed's schedule as a drill through the drill runner, the schedule
//! saved with the exports, and the drill saved as a file when the checker found anomalies.

use std::path::Path;
use std::sync::Arc;

use super::Lab;
use crate::chaos::run::{report, write_drill, ChaosReport, RunEnd};
use crate::chaos::{build_drill, ChaosOptions, TOPIC};
use crate::error::LabError;

impl Lab {
    /// Runs the chaos drill of `opts`. With anomalies, the drill is written to
    /// `save_dir/chaos-<seed>.toml` (replay: `clusterlab drill run <that file>`).
    pub async fn run_chaos(
        self: &Arc<Self>,
        opts: &ChaosOptions,
        export: Option<&Path>,
        save_dir: &Path,
    ) -> Result<ChaosReport, LabError> {
        let spec = build_drill(opts);
        tracing::info!(seed = opts.seed, steps = spec.steps.len(), topic = TOPIC, "chaos run starting");
        let outcome = self.run_drill_spec(spec.clone(), Some(opts.seed), export).await.map_err(|e| {
            LabError::Process { what: format!("chaos seed {}", opts.seed), detail: e.message }
        })?;
        if let Some(dir) = export {
            // The schedule itself travels with the run's exports.
            write_drill(&spec, &dir.join(&spec.name).join("drill.toml"))?;
        }
        let saved = match outcome.verdict.as_ref().is_some_and(|v| !v.anomalies.is_empty()) {
            true => {
                let path = save_dir.join(format!("{}.toml", spec.name));
                write_drill(&spec, &path)?;
                Some(path)
            }
            false => None,
        };
        let end = RunEnd {
            passed: outcome.passed,
            reason: outcome.reason.clone(),
            verdict: outcome.verdict.as_ref(),
            seconds: outcome.seconds,
        };
        let mut r = report(opts.seed, &spec, &end, saved);
        r.resources =
            crate::chaos::resources::summarise(&self.timeline.since(outcome.first_seq.checked_sub(1)));
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use crate::lab::protocol::Command;
    use crate::lab::{Lab, LabConfig};

    /// Bad requests are refused before anything starts, with the reason.
    #[tokio::test]
    async fn a_chaos_command_with_a_bad_family_or_duration_says_what_is_wrong() {
        let root = std::env::temp_dir().join(format!("clusterlab-chaos-cmd-{}", std::process::id()));
        let lab = Lab::new(LabConfig::for_tests(&root));
        let bad = Command::RunChaos {
            seed: 1,
            duration_ms: 60_000,
            faults: Some("kill,paus".into()),
            topics: None,
        };
        let e = lab.handle(bad).await.unwrap_err();
        assert_eq!(e.code, "bad_request");
        assert!(e.message.contains("unknown fault family 'paus'"), "{}", e.message);
        let short = Command::RunChaos { seed: 1, duration_ms: 500, faults: None, topics: None };
        let e = lab.handle(short).await.unwrap_err();
        assert!(e.message.contains("duration_ms must be"), "{}", e.message);
        lab.close().await;
    }
}
