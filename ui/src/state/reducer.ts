// Reducers: LabEvents applied to the model. No DOM, no I/O: unit-testable and replayable.

import type { LabEvent, LabState, NodeView, TimelineEvent } from '../api/types';
import { DuplicateGauge } from './gauge';
import { copy2, type Model, partitionKey } from './model';

/** A full state snapshot replaces what the snapshot covers. */
export function applyState(m: Model, s: LabState): void {
  const wasRunningWorkload = m.workload !== null;
  m.state = s;
  m.running = s.running;
  m.nodes = new Map(s.nodes.map((n) => [n.id, n]));
  // A running node that did not answer the lab in time (1 s: loaded, or busy electing) is left
  // out of this snapshot. Its last report stands: dropping it showed its groups leaderless and
  // its partitions gone for one snapshot. A node that is not running loses its report.
  const silent = (reports: { node: number }[]) =>
    s.nodes.filter((n) => n.state === 'running' && !reports.some((r) => r.node === n.id)).map((n) => n.id);
  const silentRaft = silent(s.raft), silentParts = silent(s.partitions);
  m.silentNodes = [...new Set([...silentRaft, ...silentParts])].sort((a, b) => a - b);
  // Whole reports replace what the model knew; pages (large clusters) refine it.
  const raftWhole = s.raft.every((r) => r.complete !== false);
  m.groups = raftWhole ? keepNodes(m.groups, silentRaft) : copy2(m.groups);
  m.controllerLeader = null;
  m.raftSummaries = keepKeys(m.raftSummaries, silentRaft);
  for (const r of s.raft) {
    if (r.raft?.controller_leader != null) m.controllerLeader = r.raft.controller_leader;
    if (r.raft?.summary) m.raftSummaries.set(r.node, r.raft.summary);
    for (const g of r.raft?.groups ?? []) {
      if (!m.groups.has(g.group)) m.groups.set(g.group, new Map());
      m.groups.get(g.group)!.set(r.node, g);
    }
  }
  const partsWhole = s.partitions.every((p) => p.complete !== false);
  m.replicas = partsWhole ? keepNodes(m.replicas, silentParts) : copy2(m.replicas);
  m.partitionSummaries = keepKeys(m.partitionSummaries, silentParts);
  for (const p of s.partitions) {
    if (p.summary) m.partitionSummaries.set(p.node, p.summary);
    for (const o of p.partitions ?? []) {
      const key = partitionKey(o.topic, o.partition);
      if (!m.replicas.has(key)) m.replicas.set(key, new Map());
      m.replicas.get(key)!.set(p.node, o);
    }
  }
  if (!raftWhole) dropDeletedTopics(m);
  m.links = s.links;
  m.workload = s.workload;
  if (wasRunningWorkload && s.workload === null) m.gauge.stop();
  m.drill = s.drill;
  if (s.raft_watch !== undefined) m.raftWatch = s.raft_watch;
  if (s.drill?.narration) m.narration = s.drill.narration;
  m.version++;
}

/** The entries of `nodes` only, per key (a group or partition, then node), in new maps. */
function keepNodes<V>(by: Map<string, Map<number, V>>, nodes: number[]): Map<string, Map<number, V>> {
  const kept = new Map<string, Map<number, V>>();
  if (!nodes.length) return kept;
  for (const [key, per] of by) {
    const mine = [...per].filter(([n]) => nodes.includes(n));
    if (mine.length) kept.set(key, new Map(mine));
  }
  return kept;
}

/** The entries of `keys` only, in a new map. */
function keepKeys<V>(by: Map<number, V>, keys: number[]): Map<number, V> {
  return new Map([...by].filter(([k]) => keys.includes(k)));
}

/** After a page: groups and replicas of topics that no node's summary lists any more (deleted). */
function dropDeletedTopics(m: Model): void {
  if (m.raftSummaries.size === 0) return;
  const hosted = new Set<string>();
  for (const sum of m.raftSummaries.values()) for (const t of Object.keys(sum.topics)) hosted.add(t);
  const gone = (name: string) => !name.startsWith('__') && !hosted.has(name.replace(/-\d+$/, ''));
  for (const g of [...m.groups.keys()]) if (g !== 'controller' && gone(g)) m.groups.delete(g);
  for (const k of [...m.replicas.keys()]) if (gone(k)) m.replicas.delete(k);
}

/** One timeline event: appended to the ring and folded into live views and derived spans. */
export function applyTimeline(m: Model, e: TimelineEvent): void {
  m.timeline.push(e);
  if (!m.firstTs || e.ts_ns < m.firstTs) m.firstTs = e.ts_ns;
  if (e.ts_ns > m.lastTs) m.lastTs = e.ts_ns;
  m.leadership.apply(e);
  m.faults.apply(e);
  if (e.type === 'raft_trace' || e.type === 'raft' || e.type === 'process') m.raftTrace.apply(e);
  const node = e.source.kind === 'node' ? e.source.id : null;
  if (node !== null && !m.nodes.has(node)) m.nodes.set(node, newNode(node)); // replays know nodes only from events
  switch (e.type) {
    case 'raft': {
      if (node === null) break;
      if (!m.groups.has(e.group)) m.groups.set(e.group, new Map());
      const per = m.groups.get(e.group)!;
      const prev = per.get(node);
      per.set(node, { ...prev, group: e.group, term: e.term, role: e.role, leader: e.leader, voted_for: e.voted_for,
        last_log_index: e.last_log_index ?? prev?.last_log_index ?? null, applied_index: e.applied_index ?? prev?.applied_index ?? null });
      if (e.group === 'controller' && e.role === 'Leader') m.controllerLeader = node;
      break;
    }
    case 'offsets': {
      if (node === null) break;
      const key = partitionKey(e.topic, e.partition);
      if (!m.replicas.has(key)) m.replicas.set(key, new Map());
      const per = m.replicas.get(key)!;
      const prev = per.get(node);
      per.set(node, { ...prev, topic: e.topic, partition: e.partition, log_start_offset: prev?.log_start_offset ?? 0,
        log_end_offset: e.log_end_offset, flushed_offset: e.flushed_offset, high_watermark: e.high_watermark });
      break;
    }
    case 'process': {
      const n = node === null ? undefined : m.nodes.get(node);
      const states: Record<string, string> = { started: 'starting', ready: 'running', exited: 'stopped', died: 'died' };
      if (n && states[e.state]) m.nodes.set(n.id, { ...n, state: states[e.state] });
      if (node === null && e.state === 'cluster_stopped') m.running = false;
      if (node === null && e.state === 'cluster_started') newRun(m);
      break;
    }
    case 'resources': {
      const n = node === null ? undefined : m.nodes.get(node);
      if (n) m.nodes.set(n.id, { ...n, cpu_percent: e.cpu_percent, memory_bytes: e.memory_bytes, disk_bytes: e.disk_bytes });
      break;
    }
    case 'client': {
      m.rates.apply(e.op);
      m.gauge.apply(e.op);
      const op = e.op;
      if (op.f === 'send' && op.type === 'ok' && op.partition !== null && op.offset !== null) {
        const key = partitionKey(op.topic, op.partition);
        m.ackedOffset.set(key, Math.max(m.ackedOffset.get(key) ?? -1, op.offset));
      }
      break;
    }
    case 'narration':
      m.narration = e.text;
      break;
    case 'step':
      m.narration = e.description;
      if (e.index === 0 && e.source.kind === 'lab' && e.description.startsWith('drill ')) newRun(m);
      break;
    case 'check':
      m.anomalies.push({ ts: e.ts_ns, anomaly: e.anomaly, detail: e.detail });
      break;
    case 'verdict':
      m.verdict = { ok: e.ok, summary: e.summary };
      m.gauge.stop();
      // The drill's own verdict ends it even if no later snapshot says so (the lab stops its cluster).
      if (m.drill && !m.drill.done) m.drill = { ...m.drill, step: m.drill.steps, done: true };
      break;
  }
  m.version++;
}

/** A new cluster (start_cluster, or a drill's own): client values and offsets start again. */
function newRun(m: Model): void {
  m.gauge = new DuplicateGauge();
  m.ackedOffset = new Map();
}

function newNode(id: number): NodeView {
  return { id, state: 'running', pid: null, kafka: '', http: '', cpu_percent: 0, memory_bytes: 0, disk_bytes: 0 };
}

export function applyEvent(m: Model, ev: LabEvent): void {
  if (ev.event === 'state') applyState(m, ev.state);
  else if (ev.event === 'timeline') applyTimeline(m, ev.entry);
}

/** Parses a JSON Lines timeline (an export) into events, skipping blank lines. */
export function parseJsonl(text: string): TimelineEvent[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as TimelineEvent);
}
