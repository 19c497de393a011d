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
}

export interface LabState {
  running: boolean; settings: ClusterSettings | null; bootstrap: string | null;
  nodes: NodeView[]; raft: RaftReport[]; partitions: PartitionReport[]; links: LinkView[];
  workload: WorkloadCounters | null; drill: DrillProgress | null; timeline_len: number;
}

export type Source = { kind: 'lab' } | { kind: 'node'; id: number } | { kind: 'client'; id: number };

export interface ClientOp {
  index: number; process: number; time_ns: number; type: 'invoke' | 'ok' | 'fail' | 'info';
  f: 'send' | 'poll'; topic: string; value: string | null; partition: number | null;
  offset: number | null; latency_ns: number | null; error: string | null;
}

type Ev<T extends string, F> = { seq: number; ts_ns: number; source: Source; type: T } & F;
export type TimelineEvent =
  | Ev<'fault', { fault: string; target: string; detail: string | null }>
  | Ev<'process', { state: string; pid: number | null; detail: string | null }>
  | Ev<'raft', { group: string; term: number; role: Role; leader: number | null; last_log_index: number | null; applied_index: number | null; voted_for: number | null }>
  | Ev<'election', { group: string; term: number; phase: 'started' | 'won' | 'lost' | 'leader_known'; leader: number | null }>
  | Ev<'offsets', { topic: string; partition: number; log_end_offset: number; flushed_offset: number; high_watermark: number }>
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
  | Reply;

export type Command =
  | { command: 'start_cluster'; settings: Partial<ClusterSettings> }
  | { command: 'stop_cluster' }
  | { command: 'fault'; fault: string; target: string; param?: number }
  | { command: 'cut_link'; from: number; to: number; both: boolean }
  | { command: 'heal_all' }
  | { command: 'start_workload'; rate_per_sec?: number; messages?: number }
  | { command: 'stop_workload' }
  | { command: 'list_drills' }
  | { command: 'run_drill'; name: string; seed?: number }
  | { command: 'export'; format: string; dir?: string }
  | { command: 'import_timeline'; jsonl: string }
  | { command: 'snapshot' };

export interface DrillInfo { name: string; title: string; description: string; tags: string[]; steps: number }
