//! `ui/src/api/generated.ts`: TypeScript declarations of every Rust type the UI reads (decision
//! 37), written by `ts-rs` from the types themselves, so the UI cannot drift from the lab or the
//! node. The test below fails when the checked-in file is not what these types give; to write
//! it again: `CLUSTERLAB_WRITE_TS=1 cargo test -p labs --lib ts_export`.
//!
//! Integers are declared `number`, not ts-rs's default `bigint`: serde_json writes them as JSON
//! numbers and the UI parses them with `JSON.parse` (ids, offsets and nanosecond times stay below
//! 2^53 in practice; times lose sub-microsecond precision, as they always did in the UI).

use ts_rs::{Config, TS};

/// Where the file lives, from the workspace root.
pub const PATH: &str = "ui/src/api/generated.ts";

/// One declaration per type, in this order (dependencies need not come first in TypeScript).
fn declarations(cfg: &Config) -> Vec<String> {
    [node_telemetry(cfg), lab_protocol(cfg), timeline(cfg), recent_runs(cfg)].concat()
}

/// The node's telemetry (`broker::telemetry::wire` and the types it carries).
fn node_telemetry(cfg: &Config) -> Vec<String> {
    use broker::cluster::rpc_trace::ReplicaLog;
    use broker::cluster::summary::{ClusterSnapshot, RaftSummary, TopicSummary};
    use broker::cluster::{liveness::PeerLiveness, watch::GroupState};
    use broker::log::PartitionOffsets;
    use broker::raft::trace::{Outcome, TraceEvent, TraceKind};
    use broker::raft::transport::PeerStatus;
    use broker::state::{PartitionState, PartitionSummary, SlowestReplica};
    use broker::telemetry::memory::MemoryReport;
    use broker::telemetry::wire::{ElectionPhase, GroupId, Role};
    vec![
        Role::decl(cfg),
        ElectionPhase::decl(cfg),
        GroupId::decl(cfg),
        GroupState::decl(cfg),
        RaftSummary::decl(cfg),
        TopicSummary::decl(cfg),
        PeerLiveness::decl(cfg),
        PeerStatus::decl(cfg),
        ClusterSnapshot::decl(cfg),
        PartitionOffsets::decl(cfg),
        PartitionState::decl(cfg),
        PartitionSummary::decl(cfg),
        SlowestReplica::decl(cfg),
        Outcome::decl(cfg),
        TraceKind::decl(cfg),
        TraceEvent::decl(cfg),
        ReplicaLog::decl(cfg),
        MemoryReport::decl(cfg),
    ]
}

/// The lab protocol (`labs::lab::protocol` and the types it carries).
fn lab_protocol(cfg: &Config) -> Vec<String> {
    use crate::checker::{Anomaly, Counts, TopicCounts, Verdict, Window};
    use crate::fabric::{Endpoint, LinkState, Mode, Toxic};
    use crate::lab::protocol::{
        Command, DrillProgress, LabEvent, LabFailure, LabState, NodeView, PartitionReport, RaftReport,
    };
    use crate::prefs::PreferencesPatch;
    use crate::settings::ClusterSettings;
    use crate::workload::CounterValues;
    vec![
        ClusterSettings::decl(cfg),
        NodeView::decl(cfg),
        RaftReport::decl(cfg),
        PartitionReport::decl(cfg),
        CounterValues::decl(cfg),
        DrillProgress::decl(cfg),
        Endpoint::decl(cfg),
        Toxic::decl(cfg),
        Mode::decl(cfg),
        LinkState::decl(cfg),
        Counts::decl(cfg),
        Window::decl(cfg),
        TopicCounts::decl(cfg),
        Anomaly::decl(cfg),
        Verdict::decl(cfg),
        LabState::decl(cfg),
        LabFailure::decl(cfg),
        LabEvent::decl(cfg),
        Command::decl(cfg),
        PreferencesPatch::decl(cfg),
    ]
}

/// The timeline (`labs::timeline`).
fn timeline(cfg: &Config) -> Vec<String> {
    use crate::checker::AnomalyKind;
    use crate::history::{Op, OpKind, OpType};
    use crate::timeline::event::{
        CheckName, EventKind, FaultName, NodeTrace, ProcessPhase, Source, TimelineEvent,
    };
    vec![
        Source::decl(cfg),
        OpType::decl(cfg),
        OpKind::decl(cfg),
        Op::decl(cfg),
        ProcessPhase::decl(cfg),
        FaultName::decl(cfg),
        AnomalyKind::decl(cfg),
        CheckName::decl(cfg),
        NodeTrace::decl(cfg),
        EventKind::decl(cfg),
        TimelineEvent::decl(cfg),
    ]
}

/// Recent runs (`labs::runs`).
fn recent_runs(cfg: &Config) -> Vec<String> {
    use crate::runs::{RunKind, RunMeta, RunStatus};
    vec![RunKind::decl(cfg), RunStatus::decl(cfg), RunMeta::decl(cfg)]
}

/// The whole file.
pub fn typescript() -> String {
    let cfg = Config::default().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types by labs/src/lab/ts_export.rs (ts-rs). Do not edit: change the\n\
         // Rust type, then `CLUSTERLAB_WRITE_TS=1 cargo test -p labs --lib ts_export`.\n\
         /* eslint-disable */\n",
    );
    for d in declarations(&cfg) {
        out.push('\n');
        out.push_str("export ");
        out.push_str(d.trim());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn generated_typescript_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(PATH);
        let want = typescript();
        if std::env::var_os("CLUSTERLAB_WRITE_TS").is_some() {
            std::fs::write(&path, &want).expect("generated.ts written");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is not what the Rust types give: run `CLUSTERLAB_WRITE_TS=1 cargo test -p labs --lib \
             ts_export` and commit it",
            path.display()
        );
    }
}
