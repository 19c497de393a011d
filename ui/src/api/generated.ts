// Generated from the Rust types by labs/src/lab/ts_export.rs (ts-rs). Do not edit: change the
// Rust type, then `CLUSTERLAB_WRITE_TS=1 cargo test -p labs --lib ts_export`.
/* eslint-disable */

export type Role = "Leader" | "Follower" | "Candidate" | "Learner" | "Shutdown" | "IsolatedLeader";

export type ElectionPhase = "started" | "won" | "lost" | "leader_known";

export type GroupId = string;

export type GroupState = { group: GroupId, term: number, 
/**
 * Who this node voted for in `term`, and whether that vote is committed (a leader exists).
 */
voted_for: number | null, vote_committed: boolean, role: Role, leader: number | null, last_log_index: number | null, applied_index: number | null, 
/**
 * On the leader: each member's matched log index.
 */
matched: { [key in number]: number | null }, voters: Array<number>, };

export type RaftSummary = { node_id: number, controller_leader: number | null, 
/**
 * Groups hosted here, the controller included.
 */
groups: number, 
/**
 * Groups this node leads, confirmed by a majority.
 */
leading: number, 
/**
 * Groups where openraft says Leader but the majority does not answer (or never did).
 */
leading_unconfirmed: number, 
/**
 * Groups following a leader this node can hear.
 */
following: number, 
/**
 * Groups with no leader this node can hear (none known, or its node is suspected).
 */
leaderless: number, candidates: number, 
/**
 * Groups by the leader this node believes in (confirmed or not).
 */
leaders: { [key in number]: number }, max_term: number, topics: { [key in string]: TopicSummary }, 
/**
 * Up to 20 leaderless group names, to look at.
 */
leaderless_sample: Array<string>, peers: Array<PeerLiveness>, };

export type TopicSummary = { hosted: number, leading: number, leaderless: number, };

export type PeerLiveness = { id: number, live: boolean, 
/**
 * Milliseconds since anything was heard from it, this node's own stalls left out (None:
 * never).
 */
heard_ms_ago: number | null, acked_ms_ago: number | null, };

export type PeerStatus = { id: number, addr: string, connected: boolean, requests_sent: number, replies_received: number, 
/**
 * Successful dials after the first one.
 */
reconnects: number, last_error: string | null, 
/**
 * Wall-clock time of the latest successful dial, nanoseconds since the Unix epoch.
 */
last_connected_ns: number | null, };

export type ClusterSnapshot = { node_id: number, controller_leader: number | null, 
/**
 * Every group's state (empty when `/state?raft=summary` asked for the summary only).
 */
groups: Array<GroupState>, summary: RaftSummary, peers: Array<PeerStatus>, };

export type PartitionOffsets = { log_start_offset: number, log_end_offset: number, flushed_offset: number, 
/**
 * Always: = flushed_offset (a consumer never sees what a power cut could take back).
 * Interval/Never: = log_end_offset.
 */
high_watermark: number, appended_at_ns: number, flushed_at_ns: number, };

export type PartitionState = { topic: string, partition: number, log_start_offset: number, log_end_offset: number, flushed_offset: number, 
/**
 * Always: = flushed_offset (a consumer never sees what a power cut could take back).
 * Interval/Never: = log_end_offset.
 */
high_watermark: number, appended_at_ns: number, flushed_at_ns: number, };

export type PartitionSummary = { partitions: number, 
/**
 * Records appended but not yet fsynced, summed over the partitions.
 */
unflushed_records: number, 
/**
 * The partition furthest behind on fsync here (None when every one is flushed).
 */
slowest: SlowestReplica | null, };

export type SlowestReplica = { topic: string, partition: number, unflushed_records: number, };

export type Outcome = { "kind": "ok" } | { "kind": "refused", reason: string, term: number, } | { "kind": "conflict" } | { "kind": "higher_vote", term: number, } | { "kind": "partial_success", matched: number | null, } | { "kind": "unreachable", reason: string, } | { "kind": "timeout" } | { "kind": "error", reason: string, };

export type TraceKind = { "type": "vote", to: number, term: number, last_log: [number, number] | null, outcome: Outcome, rtt_us: number, } | { "type": "append", to: number, term: number, prev: [number, number] | null, entries: [number, number] | null, terms: Array<[number, number]>, leader_commit: number | null, outcome: Outcome, rtt_us: number, } | { "type": "node_heartbeat", to: number, outcome: Outcome, rtt_us: number, } | { "type": "leader_query", to: number, groups: number, answer: string, rtt_us: number, } | { "type": "campaign", reason: string, wait_ms: number, candidate: number, } | { "type": "commit", index: number, } | { "type": "truncate", from: number, discarded: number, terms: Array<[number, number]>, };

export type TraceEvent = { seq: number, 
/**
 * Wall-clock Unix nanoseconds when the message was sent (or the decision taken).
 */
ts_ns: number, 
/**
 * The group, `None` for node-level messages (heartbeats, pre-vote queries).
 */
group: GroupId | null, } & ({ "type": "vote", to: number, term: number, last_log: [number, number] | null, outcome: Outcome, rtt_us: number, } | { "type": "append", to: number, term: number, prev: [number, number] | null, entries: [number, number] | null, terms: Array<[number, number]>, leader_commit: number | null, outcome: Outcome, rtt_us: number, } | { "type": "node_heartbeat", to: number, outcome: Outcome, rtt_us: number, } | { "type": "leader_query", to: number, groups: number, answer: string, rtt_us: number, } | { "type": "campaign", reason: string, wait_ms: number, candidate: number, } | { "type": "commit", index: number, } | { "type": "truncate", from: number, discarded: number, terms: Array<[number, number]>, });

export type ReplicaLog = { 
/**
 * When this state was read, wall-clock Unix nanoseconds (None only in runs recorded before
 * nodes said it).
 */
at_ns?: number, group: GroupId, term: number, role: Role, leader: number | null, voted_for: number | null, 
/**
 * Entries in the log (the next index).
 */
entries: number, 
/**
 * Runs `(term, first index, last index)` of the last entries, oldest first.
 */
tail: Array<[number, number, number]>, 
/**
 * Applied index (openraft applies as soon as it knows an entry is committed).
 */
committed: number | null, 
/**
 * Last index known to be fsynced on this node.
 */
flushed: number | null, 
/**
 * Milliseconds since this node last heard from the leader's node (None: it leads, or no
 * leader is known).
 */
heard_leader_ms_ago: number | null, 
/**
 * On the leader: each member's matched index.
 */
matched: { [key in number]: number | null }, };

export type MemoryReport = { 
/**
 * Bytes the allocator has handed out and not had back: what the process really uses.
 * `None` where jemalloc is not the process's allocator (a broker run inside a test).
 */
heap_in_use_bytes: number | null, 
/**
 * Bytes of the allocator's pages in RAM: in use, freed and not yet returned, and the
 * allocator's own metadata. The process's RSS is this plus code, stacks and C libraries.
 */
heap_resident_bytes: number | null, 
/**
 * Resident but not in use: freed pages the allocator returns to the system about a second
 * after the free (its decay, on a background thread), partly used pages and its metadata.
 */
heap_free_held_bytes: number | null, 
/**
 * Entries of every partition log's in-memory index (one per stored batch).
 */
log_index_entries: number, 
/**
 * Bytes the index vectors hold (their capacity): grows with the batches kept, not a leak.
 */
log_index_bytes: number, };

export type ClusterSettings = { nodes: number, 
/**
 * "always", "interval:<ms>" or "never".
 */
fsync: string, partitions: number, replication_factor: number, election_timeout_min_ms: number, election_timeout_max_ms: number, heartbeat_ms: number, 
/**
 * Refused by the broker (openraft 0.9 has none); kept so the UI can show why.
 */
pre_vote: boolean, 
/**
 * Workload defaults.
 */
acks: string, idempotence: boolean, };

export type NodeView = { id: number, state: string, pid: number | null, kafka: string, http: string, cpu_percent: number, memory_bytes: number, disk_bytes: number, };

export type RaftReport = { node: number, raft: ClusterSnapshot | null, complete: boolean, offset: number, total: number, };

export type PartitionReport = { node: number, partitions: Array<PartitionState>, summary: PartitionSummary, complete: boolean, offset: number, total: number, };

export type WorkloadCounters = { sent: number, acked: number, failed: number, indeterminate: number, consumed: number, };

export type DrillProgress = { name: string, step: number, steps: number, narration: string | null, 
/**
 * The checker's verdict: `ok`, `summary` and the findings.
 */
verdict: Verdict | null, done: boolean, 
/**
 * A guided lesson rather than a drill.
 */
lesson: boolean, 
/**
 * The Raft group the run is about (the Raft view shows it).
 */
watch: string | null, 
/**
 * Lessons: what the step that just ended showed, and why; while a step waits for the
 * learner, why what they did was not what it asks.
 */
explanation: string | null, 
/**
 * Lessons in the window: `learner` (do the step's fault yourself) or `next` (press Next).
 */
awaiting: string | null, };

export type LinkEnd = { "node": number } | "client";

export type Toxic = string;

export type LinkMode = { "kind": "pass" } | { "kind": "delay", "ms": number } | { "kind": "blackhole" } | { "kind": "reset" } | { "kind": "toxic", "ms": Toxic };

export type LinkView = { from: LinkEnd, to: LinkEnd, 
/**
 * Mode of the bytes `from` sends to `to`.
 */
mode: LinkMode, 
/**
 * Mode of the bytes `to` sends to `from`.
 */
reverse_mode: LinkMode, 
/**
 * Bytes forwarded from `from` to `to` (all connections, since the fabric started).
 */
bytes_forwarded: number, 
/**
 * Bytes forwarded from `to` to `from`.
 */
bytes_returned: number, 
/**
 * Connections open between the two right now.
 */
connections: number, 
/**
 * Connections accepted between the two since the fabric started.
 */
connections_total: number, };

export type Counts = { 
/**
 * Distinct values whose send was invoked.
 */
sent_invoked: number, acked: number, failed: number, 
/**
 * `info` completions plus sends never completed.
 */
indeterminate: number, 
/**
 * Successful poll ops (re-reads included).
 */
read: number, 
/**
 * Distinct values read.
 */
distinct_read: number, };

export type Window = { topic?: string | null, partition: number | null, start_ns: number, end_ns: number, duration_ns: number, };

export type TopicCounts = { acked: number, lost: number, 
/**
 * Distinct duplicated values.
 */
duplicates: number, 
/**
 * Every other anomaly.
 */
other: number, };

export type Anomaly = { "kind": "lost_write", value: string, partition: number, offset: number, acked_at_ns: number, } | { "kind": "duplicate", value: string, partition: number, offsets: Array<number>, } | { "kind": "reordered", partition: number, first_value: string, second_value: string, first_offset: number, second_offset: number, } | { "kind": "inconsistent_offset", value: string, partition: number, acked_offset: number | null, read_offset: number, other_value?: string | null, } | { "kind": "phantom_read", value: string, partition: number, offset: number, } | { "kind": "replica_divergence", topic: string, partition: number, nodes: Array<[number, number, number]>, } | { "kind": "failed_but_present", value: string, partition: number, offset: number, } | { "kind": "nonmonotonic_send", process: number, partition: number, first_value: string, first_offset: number, second_value: string, second_offset: number, } | { "kind": "poll_skip", process: number, 
/**
 * The topic (empty in anomalies saved before several topics were checked).
 */
topic: string, partition: number, from_offset: number, to_offset: number, skipped: number, first_skipped: number, first_value: string, after_rebalance: boolean, at_ns: number, } | { "kind": "nonmonotonic_poll", process: number, topic: string, partition: number, previous_offset: number, offset: number, at_ns: number, } | { "kind": "unseen", value: string, topic: string, partition: number, offset: number, acked_at_ns: number, } | { "kind": "committed_offset_backwards", process: number, topic: string, partition: number, committed: number, committed_at_ns: number, resumed_at: number, at_ns: number, };

export type Verdict = { 
/**
 * No anomaly the configured guarantees forbid. Unavailability never fails a verdict.
 */
ok: boolean, summary: string, counts: Counts, anomalies: Array<Anomaly>, unavailability: Array<Window>, 
/**
 * Acknowledged, lost, duplicated and other anomalies per topic.
 */
by_topic: { [key in string]: TopicCounts }, };

export type LabState = { running: boolean, settings: ClusterSettings | null, bootstrap: string | null, nodes: Array<NodeView>, raft: Array<RaftReport>, partitions: Array<PartitionReport>, 
/**
 * The fabric's links, both directions of each endpoint pair.
 */
links: Array<LinkView>, workload: WorkloadCounters | null, drill: DrillProgress | null, timeline_len: number, 
/**
 * The Raft group whose messages the nodes record in full (`raft_trace` timeline entries).
 */
raft_watch: string | null, };

export type LabFailure = { 
/**
 * Stable machine code: bad_request, not_running, already_running, forbidden, fault_failed,
 * no_leader (a fault's role target is electing), drill_failed, export_failed, internal.
 */
code: string, message: string, };

export type LabEvent = { "event": "timeline", entry: TimelineEvent, } | { "event": "state", state: LabState, } | { "event": "runs_changed" } | { "event": "reply", id: number | null, ok: boolean, 
/**
 * Each command's own answer (`ui/src/api/types.ts` types `Reply<R>` per command).
 */
result: unknown, error: LabFailure | null, };

export type Command = { "command": "start_cluster", 
/**
 * Settings left out take their defaults.
 */
settings: Partial<ClusterSettings>, } | { "command": "stop_cluster" } | { "command": "fault", fault: string, target: string, param?: number, } | { "command": "cut_link", from: number, to: number, both: boolean, } | { "command": "heal_link", from: number, to: number, } | { "command": "heal_all" } | { "command": "start_workload", rate_per_sec?: number, messages?: number, } | { "command": "stop_workload" } | { "command": "list_drills" } | { "command": "run_drill", name: string, seed?: number, } | { "command": "list_lessons" } | { "command": "run_lesson", name: string, } | { "command": "lesson_next" } | { "command": "run_chaos", seed: number, duration_ms: number, faults?: string, topics?: number, } | { "command": "export", format: string, dir?: string, } | { "command": "import_timeline", jsonl: string, } | { "command": "snapshot" } | { "command": "watch_raft_group", group: string | null, } | { "command": "get_preferences" } | { "command": "set_preferences", patch: PreferencesPatch, } | { "command": "list_runs" } | { "command": "open_run", run: string, } | { "command": "export_run", run: string, format: string, dir?: string, } | { "command": "delete_run", run: string, };

export type PreferencesPatch = { cluster?: ClusterSettings, ui?: Record<string, unknown>, runs_cap_mb?: number, };

export type Source = { "kind": "lab" } | { "kind": "node", "id": number } | { "kind": "client", "id": number };

export type OpType = "invoke" | "ok" | "fail" | "info";

export type OpKind = "send" | "poll" | "commit" | "assign";

export type Op = { 
/**
 * Position in the history (assigned by `History::push`).
 */
index: number, 
/**
 * Which client (producer or consumer instance) did it.
 */
process: number, 
/**
 * Wall-clock Unix nanoseconds, comparable with broker telemetry.
 */
time_ns: number, type: OpType, f: OpKind, topic: string, 
/**
 * The unique payload (every sent value is distinct within a run).
 */
value: string | null, partition: number | null, offset: number | null, 
/**
 * For completions: time since the matching invocation.
 */
latency_ns: number | null, 
/**
 * For `fail` / `info`: what the client reported.
 */
error: string | null, };

export type ProcessPhase = "started" | "ready" | "exited" | "died" | "cluster_started" | "cluster_stopped";

export type FaultName = "kill" | "stop" | "pause" | "resume" | "restart" | "power_cut" | "slow_disk" | "fsync_fail" | "corrupt_segment" | "take_port" | "isolate" | "split" | "bridge" | "cut_link" | "delay_link" | "blackhole_link" | "toxic" | "heal" | "heal_link";

export type AnomalyKind = "lost_write" | "replica_divergence" | "committed_offset_backwards" | "unseen" | "poll_skip" | "phantom_read" | "failed_but_present" | "inconsistent_offset" | "duplicate" | "nonmonotonic_poll" | "nonmonotonic_send" | "reordered";

export type CheckName = AnomalyKind | `live:${AnomalyKind}` | "start_refused";

export type NodeTrace = { node: number, 
/**
 * Its events (votes, appends, node heartbeats, campaigns, commits, truncations), in seq order.
 */
events: Array<TraceEvent>, 
/**
 * Its replica of the group (log tail by term, committed, flushed, role), when it changed.
 */
replica?: ReplicaLog | null, 
/**
 * Events the node dropped from its ring before the lab read them.
 */
missed: number, 
/**
 * Milliseconds of silence after which the node suspects a peer (the election deadline).
 */
suspect_after_ms: number, };

export type EventKind = { "type": "fault", fault: FaultName, target: string, detail: string | null, } | { "type": "process", state: ProcessPhase, pid: number | null, detail: string | null, } | { "type": "raft", group: GroupId, term: number, role: Role, leader: number | null, last_log_index: number | null, applied_index: number | null, voted_for: number | null, } | { "type": "election", group: GroupId, term: number, phase: ElectionPhase, leader: number | null, } | { "type": "offsets", topic: string, partition: number, log_end_offset: number, flushed_offset: number, high_watermark: number, } | { "type": "raft_trace", group: GroupId | null, nodes: Array<NodeTrace>, } | { "type": "telemetry", data: unknown, } | { "type": "client", op: Op, } | { "type": "resources", cpu_percent: number, 
/**
 * Resident set size.
 */
memory_bytes: number, disk_bytes: number, 
/**
 * The node's own account (heap in use, held free, log index), when it answered;
 * timelines written before it existed have none.
 */
node_memory?: MemoryReport | null, } | { "type": "log", stream: string, line: string, } | { "type": "step", index: number, description: string, } | { "type": "narration", text: string, } | { "type": "check", anomaly: CheckName, detail: string, } | { "type": "verdict", ok: boolean, summary: string, };

export type TimelineEvent = { 
/**
 * Position in the timeline (assigned on append; strictly increasing).
 */
seq: number, 
/**
 * Wall-clock Unix nanoseconds.
 */
ts_ns: number, source: Source, } & ({ "type": "fault", fault: FaultName, target: string, detail: string | null, } | { "type": "process", state: ProcessPhase, pid: number | null, detail: string | null, } | { "type": "raft", group: GroupId, term: number, role: Role, leader: number | null, last_log_index: number | null, applied_index: number | null, voted_for: number | null, } | { "type": "election", group: GroupId, term: number, phase: ElectionPhase, leader: number | null, } | { "type": "offsets", topic: string, partition: number, log_end_offset: number, flushed_offset: number, high_watermark: number, } | { "type": "raft_trace", group: GroupId | null, nodes: Array<NodeTrace>, } | { "type": "telemetry", data: unknown, } | { "type": "client", op: Op, } | { "type": "resources", cpu_percent: number, 
/**
 * Resident set size.
 */
memory_bytes: number, disk_bytes: number, 
/**
 * The node's own account (heap in use, held free, log index), when it answered;
 * timelines written before it existed have none.
 */
node_memory?: MemoryReport | null, } | { "type": "log", stream: string, line: string, } | { "type": "step", index: number, description: string, } | { "type": "narration", text: string, } | { "type": "check", anomaly: CheckName, detail: string, } | { "type": "verdict", ok: boolean, summary: string, });

export type RunKind = "cluster" | "drill" | "lesson";

export type RunStatus = "recording" | "complete" | "interrupted";

export type RunMeta = { 
/**
 * Time-ordered and unique: `YYYYmmdd-HHMMSS-<kind>-<name>`.
 */
id: string, kind: RunKind, 
/**
 * The drill's name, or "cluster".
 */
title: string, started_ms: number, ended_ms: number | null, status: RunStatus, 
/**
 * The process that records it (to tell a crash from a run still going).
 */
pid: number, 
/**
 * The cluster settings it ran with (as JSON: a run recorded by an older lab may hold
 * settings this one no longer reads).
 */
settings: ClusterSettings | null, 
/**
 * The verdict: passed or not, in one line, and the checker's full verdict if there was one.
 */
ok: boolean | null, summary: string | null, verdict: unknown, 
/**
 * Events and bytes of `timeline.jsonl` so far.
 */
events: number, bytes: number, };
