import type { ClientOp, FaultName, GroupView, PartitionSummary, ProcessPhase, RaftReport, RaftSummary, ReplicaOffsets, Role, TimelineEvent } from '../src/api/types';
import type { GroupState, PartitionState } from '../src/api/generated';

let seq = 0;
const MS = 1_000_000;

export const raft = (ms: number, node: number, group: string, term: number, role: Role): TimelineEvent =>
  ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'node', id: node }, type: 'raft', group, term, role, leader: role === 'Leader' ? node : null, last_log_index: 1, applied_index: 1, voted_for: null });

export const fault = (ms: number, f: FaultName, target: string): TimelineEvent =>
  ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'lab' }, type: 'fault', fault: f, target, detail: null });

export const proc = (ms: number, node: number, state: ProcessPhase): TimelineEvent =>
  ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'node', id: node }, type: 'process', state, pid: 1, detail: null });

export const op = (ms: number, type: ClientOp['type'], f: ClientOp['f'], value: string, partition: number | null = null, offset: number | null = null, latencyMs: number | null = null): ClientOp =>
  ({ index: seq++, process: f === 'send' ? 0 : 100, time_ns: ms * MS, type, f, topic: 'lab', value, partition, offset, latency_ns: latencyMs === null ? null : latencyMs * MS, error: null });

export const client = (o: ClientOp): TimelineEvent =>
  ({ seq: seq++, ts_ns: o.time_ns, source: { kind: 'client', id: o.process }, type: 'client', op: o });

export { MS };

/** A group as a node's `/state` reports it, from the fields a test cares about. */
export const groupState = (g: GroupView): GroupState => ({ vote_committed: true, matched: {}, voters: [1, 2, 3], ...g });

export const raftSummary = (over: Partial<RaftSummary> = {}): RaftSummary => ({
  node_id: 1, controller_leader: 1, groups: 0, leading: 0, leading_unconfirmed: 0, following: 0, leaderless: 0, candidates: 0,
  leaders: {}, max_term: 0, topics: {}, leaderless_sample: [], peers: [], ...over,
});

/** A node's whole Raft report (override `complete`, `offset`, `total` for a page). */
export const raftReport = (node: number, controllerLeader: number, groups: GroupView[], summary = raftSummary(), over: Partial<RaftReport> = {}): RaftReport => ({
  node, raft: { node_id: node, controller_leader: controllerLeader, groups: groups.map(groupState), summary, peers: [] },
  complete: true, offset: 0, total: groups.length, ...over,
});

export const partitionState = (p: ReplicaOffsets): PartitionState => ({ appended_at_ns: 0, flushed_at_ns: 0, ...p });

export const noLag: PartitionSummary = { partitions: 0, unflushed_records: 0, slowest: null };
