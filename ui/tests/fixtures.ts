import type { ClientOp, TimelineEvent } from '../src/api/types';

let seq = 0;
const MS = 1_000_000;

export const raft = (ms: number, node: number, group: string, term: number, role: string): TimelineEvent =>
  ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'node', id: node }, type: 'raft', group, term, role, leader: role === 'Leader' ? node : null, last_log_index: 1, applied_index: 1, voted_for: null });

export const fault = (ms: number, f: string, target: string): TimelineEvent =>
  ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'lab' }, type: 'fault', fault: f, target, detail: null });

export const proc = (ms: number, node: number, state: string): TimelineEvent =>
  ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'node', id: node }, type: 'process', state, pid: 1, detail: null });

export const op = (ms: number, type: ClientOp['type'], f: ClientOp['f'], value: string, partition: number | null = null, offset: number | null = null, latencyMs: number | null = null): ClientOp =>
  ({ index: seq++, process: f === 'send' ? 0 : 100, time_ns: ms * MS, type, f, topic: 'lab', value, partition, offset, latency_ns: latencyMs === null ? null : latencyMs * MS, error: null });

export const client = (o: ClientOp): TimelineEvent =>
  ({ seq: seq++, ts_ns: o.time_ns, source: { kind: 'client', id: o.process }, type: 'client', op: o });

export { MS };
