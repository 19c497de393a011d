// The lab protocol as the UI sees it. The types the lab and the nodes define in Rust come from
// `generated.ts` (written from them by labs/src/lab/ts_export.rs; a Rust test fails when it is
// stale); this file names them as the UI does and types by hand only what Rust keeps as raw JSON
// (a reply's result) and the UI's own preferences.
import type * as Generated from './generated';
import type { ClusterSettings, LabFailure, LabState, RunMeta } from './generated';

export type {
  ClusterSettings, NodeView, Role, RaftSummary, RaftReport, PartitionSummary, PartitionReport,
  WorkloadCounters, DrillProgress, TraceEvent, ReplicaLog, NodeTrace, Source, TimelineEvent, LabFailure,
  ElectionPhase, ClusterSnapshot, ProcessPhase, RunMeta, FaultName, AnomalyKind, CheckName,
  LinkEnd, LinkMode, LinkView, LabState, Verdict, Anomaly,
} from './generated';
type Optional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;
/** One Raft group on one node (`broker::cluster::watch::GroupState`) as the model keeps it: a
 * `raft` timeline event carries no vote_committed, matched or voters. */
export type GroupView = Optional<Generated.GroupState, 'vote_committed' | 'matched' | 'voters'>;
/** One partition replica's offsets on one node (`broker::state::PartitionState`) as the model keeps
 * it: an `offsets` timeline event carries no times. */
export type ReplicaOffsets = Optional<Generated.PartitionState, 'appended_at_ns' | 'flushed_at_ns'>;
/** How an RPC ended, as its sender saw it (`broker::raft::trace::Outcome`). */
export type TraceOutcome = Generated.Outcome;
/** One client operation of the history (`labs::history::Op`). */
export type ClientOp = Generated.Op;

/** The lab's own defaults (`impl Default for ClusterSettings` in labs/src/lab/protocol.rs; a test checks). */
export const DEFAULT_SETTINGS: ClusterSettings = {
  nodes: 3, fsync: 'always', partitions: 3, replication_factor: 3,
  election_timeout_min_ms: 150, election_timeout_max_ms: 300, heartbeat_ms: 50,
  pre_vote: false, acks: 'all', idempotence: true,
};

/** `ClusterSettings::teaching_tempo()` in labs/src/lab/protocol.rs (a test checks): Raft ten times slower. */
export const TEACHING_TEMPO: Pick<ClusterSettings, 'election_timeout_min_ms' | 'election_timeout_max_ms' | 'heartbeat_ms'> = {
  election_timeout_min_ms: 1500, election_timeout_max_ms: 3000, heartbeat_ms: 500,
};

/** A lesson's awaited action: `learner` (do the step's fault), `next` (press Next). */
export type Awaiting = 'learner' | 'next';

export interface Reply<R = unknown> { event: 'reply'; id: number | null; ok: boolean; result: R; error: LabFailure | null }

export type LabEvent =
  | { event: 'state'; state: LabState }
  | Exclude<Generated.LabEvent, { event: 'state' } | { event: 'reply' }>
  | Reply;

/** Everything the UI can ask (`labs::lab::protocol::Command`). */
export type Command = Generated.Command;

/** UI preferences the lab keeps for us (it stores them without reading them). */
export interface UiPreferences { theme?: 'dark' | 'light'; presentation?: boolean; collapsed?: string[] }

/** What the lab remembers between starts (labs/src/prefs.rs). */
export interface Preferences { cluster: ClusterSettings | null; ui: UiPreferences; runs_cap_mb: number }
/** A change of preferences (`labs::prefs::PreferencesPatch`), its `ui` keys the UI's own. */
export type PreferencesPatch = Omit<Generated.PreferencesPatch, 'ui'> & { ui?: Partial<Record<keyof UiPreferences, unknown>> };

export interface RunList { runs: RunMeta[]; bytes: number; cap_mb: number; dir: string }

export interface DrillInfo { name: string; title: string; description: string; tags: string[]; steps: number }
export interface LessonInfo extends DrillInfo { watch: string }
