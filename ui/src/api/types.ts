// The lab protocol as the UI sees it (mirror of labs/src/lab/protocol.rs and timeline/event.rs).

export interface ClusterSettings {
  nodes: number;
  fsync: string; // "always" | "interval:<ms>" | "never"
  partitions: number;
  replication_factor: number;
  election_timeout_min_ms: number;
  election_timeout_max_ms: number;
  heartbeat_ms: number;
  pre_vote: boolean;
  acks: string;
  idempotence: boolean;
}

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

export interface NodeView {
  id: number; state: string; pid: number | null; kafka: string; http: string;
  cpu_percent: number; memory_bytes: number; disk_bytes: number;
}

export type Role = 'Leader' | 'Follower' | 'Candidate' | 'Learner' | 'IsolatedLeader' | 'Shutdown' | string;

export interface GroupView {
  group: string; term: number; voted_for: number | null; vote_committed?: boolean; role: Role;
  leader: number | null; last_log_index: number | null; applied_index: number | null;
  matched?: Record<string, number>; voters?: number[];
}

/** A node's counts over every group it hosts (`/raft/summary`, exact at any group count). */
export interface RaftSummary {
  groups: number; leading: number; leading_unconfirmed: number; following: number; leaderless: number;
  candidates: number; leaders: Record<string, number>; max_term: number;
  topics: Record<string, { hosted: number; leading: number; leaderless: number }>; leaderless_sample: string[];
}

/**
 * One node's Raft report in a snapshot: every group (`complete`, or absent in older runs) or one
 * page of them from `offset` of `total` (labs/src/lab/detail.rs); the summary is always whole.
 */
export interface RaftReport {
  node: number;
  raft: { node_id?: number; controller_leader?: number | null; groups?: GroupView[]; summary?: RaftSummary } | null;
  complete?: boolean; offset?: number; total?: number;
}

export interface ReplicaOffsets {
  topic: string; partition: number; log_start_offset: number; log_end_offset: number;
  flushed_offset: number; high_watermark: number; appended_at_ns?: number; flushed_at_ns?: number;
}

/** A node's counts over its partitions: how many, records not yet fsynced, the one furthest behind. */
export interface PartitionSummary {
  partitions: number; unflushed_records: number;
  slowest: { topic: string; partition: number; unflushed_records: number } | null;
}

/** Like `RaftReport`: all of a node's partitions, or one page, with the summary. */
export interface PartitionReport {
  node: number; partitions: ReplicaOffsets[] | null; summary?: PartitionSummary | null;
  complete?: boolean; offset?: number; total?: number;
}

export type LinkEnd = { node: number } | string;
export interface LinkMode { kind: 'pass' | 'delay' | 'blackhole' | 'reset' | string; ms?: number }
export interface LinkView {
  from: LinkEnd; to: LinkEnd; mode: LinkMode; reverse_mode: LinkMode;
  bytes_forwarded: number; bytes_returned: number; connections: number;
}

export interface WorkloadCounters { sent: number; acked: number; failed: number; indeterminate: number; consumed: number }

export interface Verdict { ok: boolean; summary: string; [k: string]: unknown }

export interface DrillProgress {
  name: string; step: number; steps: number; narration: string | null; verdict: Verdict | null; done: boolean;
  /** A guided lesson: `watch` is its Raft group; `explanation` what the last step showed and why;
   * `awaiting` what the step waits for from the learner (`learner`: do its fault, `next`: press Next). */
  lesson?: boolean; watch?: string | null; explanation?: string | null; awaiting?: 'learner' | 'next' | null;
}

export interface LabState {
  running: boolean; settings: ClusterSettings | null; bootstrap: string | null;
  nodes: NodeView[]; raft: RaftReport[]; partitions: PartitionReport[]; links: LinkView[];
  workload: WorkloadCounters | null; drill: DrillProgress | null; timeline_len: number;
  /** The Raft group the nodes record message by message (`raft_trace` entries). */
  raft_watch?: string | null;
}

/** How an RPC ended, as its sender saw it (broker/src/raft/trace.rs `Outcome`). */
export type TraceOutcome =
  | { kind: 'ok' } | { kind: 'refused'; reason: string; term: number } | { kind: 'conflict' }
  | { kind: 'higher_vote'; term: number } | { kind: 'partial_success'; matched: number | null }
  | { kind: 'unreachable'; reason: string } | { kind: 'timeout' } | { kind: 'error'; reason: string };

type Tr<T extends string, F> = { seq: number; ts_ns: number; group: string | null; type: T } & F;
/** One message or decision a node recorded (broker/src/raft/trace.rs `TraceKind`); `ts_ns` = sent. */
export type TraceEvent =
  | Tr<'vote', { to: number; term: number; last_log: [number, number] | null; outcome: TraceOutcome; rtt_us: number }>
  | Tr<'append', { to: number; term: number; prev: [number, number] | null; entries: [number, number] | null; terms: [number, number][]; leader_commit: number | null; outcome: TraceOutcome; rtt_us: number }>
  | Tr<'node_heartbeat', { to: number; outcome: TraceOutcome; rtt_us: number }>
  | Tr<'leader_query', { to: number; groups: number; answer: string; rtt_us: number }>
  | Tr<'campaign', { reason: string; wait_ms: number; candidate: number }>
  | Tr<'commit', { index: number }>
  | Tr<'truncate', { from: number; discarded: number; terms: [number, number][] }>;

/** The watched group on one node: its log tail as runs [term, first, last], committed, flushed. */
export interface ReplicaLog {
  /** When the node read this state (wall clock ns). */
  at_ns?: number;
  group: string; term: number; role: Role; leader: number | null; voted_for: number | null; entries: number;
  tail: [number, number, number][]; committed: number | null; flushed: number | null;
  heard_leader_ms_ago: number | null; matched: Record<string, number | null>;
}

export interface NodeTrace { node: number; events: TraceEvent[]; replica?: ReplicaLog; missed: number; suspect_after_ms: number }

export type Source = { kind: 'lab' } | { kind: 'node'; id: number } | { kind: 'client'; id: number };

export interface ClientOp {
  index: number; process: number; time_ns: number; type: 'invoke' | 'ok' | 'fail' | 'info';
  f: 'send' | 'poll' | 'commit' | 'assign'; topic: string; value: string | null; partition: number | null;
  offset: number | null; latency_ns: number | null; error: string | null;
}

type Ev<T extends string, F> = { seq: number; ts_ns: number; source: Source; type: T } & F;
export type TimelineEvent =
  | Ev<'fault', { fault: string; target: string; detail: string | null }>
  | Ev<'process', { state: string; pid: number | null; detail: string | null }>
  | Ev<'raft', { group: string; term: number; role: Role; leader: number | null; last_log_index: number | null; applied_index: number | null; voted_for: number | null }>
  | Ev<'election', { group: string; term: number; phase: 'started' | 'won' | 'lost' | 'leader_known'; leader: number | null }>
  | Ev<'offsets', { topic: string; partition: number; log_end_offset: number; flushed_offset: number; high_watermark: number }>
  | Ev<'raft_trace', { group: string | null; nodes: NodeTrace[] }>
  | Ev<'telemetry', { data: unknown }>
  | Ev<'client', { op: ClientOp }>
  | Ev<'resources', { cpu_percent: number; memory_bytes: number; disk_bytes: number }>
  | Ev<'log', { stream: string; line: string }>
  | Ev<'step', { index: number; description: string }>
  | Ev<'narration', { text: string }>
  | Ev<'check', { anomaly: string; detail: string }>
  | Ev<'verdict', { ok: boolean; summary: string }>;

export interface LabFailure { code: string; message: string }

export interface Reply<R = unknown> { event: 'reply'; id: number | null; ok: boolean; result: R; error: LabFailure | null }

export type LabEvent =
  | { event: 'state'; state: LabState }
  | { event: 'timeline'; entry: TimelineEvent }
  | { event: 'runs_changed' }
  | Reply;

export type Command =
  | { command: 'start_cluster'; settings: Partial<ClusterSettings> }
  | { command: 'stop_cluster' }
  | { command: 'fault'; fault: string; target: string; param?: number }
  | { command: 'cut_link'; from: number; to: number; both: boolean }
  | { command: 'heal_link'; from: number; to: number }
  | { command: 'heal_all' }
  | { command: 'start_workload'; rate_per_sec?: number; messages?: number }
  | { command: 'stop_workload' }
  | { command: 'list_drills' }
  | { command: 'run_drill'; name: string; seed?: number }
  | { command: 'list_lessons' }
  | { command: 'run_lesson'; name: string }
  | { command: 'lesson_next' }
  | { command: 'run_chaos'; seed: number; duration_ms: number; faults?: string; topics?: number }
  | { command: 'export'; format: string; dir?: string }
  | { command: 'import_timeline'; jsonl: string }
  | { command: 'snapshot' }
  | { command: 'watch_raft_group'; group: string | null }
  | { command: 'get_preferences' }
  | { command: 'set_preferences'; patch: PreferencesPatch }
  | { command: 'list_runs' }
  | { command: 'open_run'; run: string }
  | { command: 'export_run'; run: string; format: string; dir?: string }
  | { command: 'delete_run'; run: string };

/** UI preferences the lab keeps for us (it stores them without reading them). */
export interface UiPreferences { theme?: 'dark' | 'light'; presentation?: boolean; collapsed?: string[] }

/** What the lab remembers between starts (labs/src/prefs.rs). */
export interface Preferences { cluster: ClusterSettings | null; ui: UiPreferences; runs_cap_mb: number }
export interface PreferencesPatch { cluster?: ClusterSettings; ui?: Partial<Record<keyof UiPreferences, unknown>>; runs_cap_mb?: number }

/** One recorded run (labs/src/runs/mod.rs, RunMeta). */
export interface RunMeta {
  id: string;
  kind: 'cluster' | 'drill' | 'lesson';
  title: string;
  started_ms: number;
  ended_ms: number | null;
  status: 'recording' | 'complete' | 'interrupted';
  pid: number;
  settings: ClusterSettings | null;
  ok: boolean | null;
  summary: string | null;
  events: number;
  bytes: number;
}
export interface RunList { runs: RunMeta[]; bytes: number; cap_mb: number; dir: string }

export interface DrillInfo { name: string; title: string; description: string; tags: string[]; steps: number }
export interface LessonInfo extends DrillInfo { watch: string }
