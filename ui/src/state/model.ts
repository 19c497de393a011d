// The UI's model of the lab: the last snapshot, refined by every timeline event since.

import type { CheckName, DrillProgress, GroupView, LabState, LinkView, NodeView, PartitionSummary, RaftSummary, ReplicaOffsets, TimelineEvent, Verdict, WorkloadCounters } from '../api/types';
import { DuplicateGauge } from './gauge';
import { Rates } from './rates';
import { Ring } from './ring';
import { RaftTraceStore } from './raft_trace';
import { Faults, Leadership } from './spans';

export const TIMELINE_CAPACITY = 200_000;

/** A `check` event: an anomaly kind the checker found (`live:` while the run went), or a refused start. */
export interface Anomaly { ts: number; anomaly: CheckName; detail: string }

export interface Model {
  running: boolean;
  state: LabState | null;
  nodes: Map<number, NodeView>;
  /** group -> node -> that node's view of the group. */
  groups: Map<string, Map<number, GroupView>>;
  controllerLeader: number | null;
  /** node -> its own counts over every group it hosts (exact even while pages arrive). */
  raftSummaries: Map<number, RaftSummary>;
  /** node -> its counts over its partitions. */
  partitionSummaries: Map<number, PartitionSummary>;
  /** Running nodes that did not answer the lab for the last snapshot: their last report is shown. */
  silentNodes: number[];
  /** "topic-partition" -> node -> the replica's offsets. */
  replicas: Map<string, Map<number, ReplicaOffsets>>;
  /** "topic-partition" -> highest offset the client saw acked. */
  ackedOffset: Map<string, number>;
  links: LinkView[];
  workload: WorkloadCounters | null;
  drill: DrillProgress | null;
  narration: string | null;
  /** The last verdict line of the run (a `verdict` timeline event): pass or fail, and why. */
  verdict: Pick<Verdict, 'ok' | 'summary'> | null;
  timeline: Ring<TimelineEvent>;
  leadership: Leadership;
  faults: Faults;
  rates: Rates;
  gauge: DuplicateGauge;
  anomalies: Anomaly[];
  /** The watched Raft group's messages, states and logs (the Raft view). */
  raftTrace: RaftTraceStore;
  /** The group the nodes record in full, as the lab last said. */
  raftWatch: string | null;
  firstTs: number;
  lastTs: number;
  /** Bumped on every change: views redraw when it moved. */
  version: number;
}

export function emptyModel(capacity = TIMELINE_CAPACITY): Model {
  return {
    running: false, state: null, nodes: new Map(), groups: new Map(), controllerLeader: null,
    raftSummaries: new Map(), partitionSummaries: new Map(), silentNodes: [],
    replicas: new Map(), ackedOffset: new Map(), links: [], workload: null, drill: null,
    narration: null, verdict: null, timeline: new Ring(capacity), leadership: new Leadership(),
    faults: new Faults(), rates: new Rates(), gauge: new DuplicateGauge(), anomalies: [],
    raftTrace: new RaftTraceStore(), raftWatch: null, firstTs: 0, lastTs: 0, version: 0,
  };
}

/** A two-level map copy: the inner values are replaced, never mutated, by the reducers. */
export const copy2 = <K, J, V>(m: Map<K, Map<J, V>>) => new Map([...m].map(([k, inner]) => [k, new Map(inner)]));

/**
 * An independent copy of a model: applying events to one never changes the other. Replay keeps
 * these as checkpoints so scrubbing backwards does not rebuild from the first event.
 */
export function cloneModel(m: Model): Model {
  return {
    ...m,
    nodes: new Map(m.nodes), groups: copy2(m.groups), replicas: copy2(m.replicas), ackedOffset: new Map(m.ackedOffset),
    timeline: m.timeline.clone(), leadership: m.leadership.clone(), faults: m.faults.clone(), rates: m.rates.clone(),
    gauge: m.gauge.clone(), anomalies: m.anomalies.slice(), raftTrace: m.raftTrace.clone(),
  };
}

export const partitionKey = (topic: string, partition: number) => `${topic}-${partition}`;

/** Groups in display order: controller first, then partitions by topic and number. */
export function groupNames(m: Model): string[] {
  return byGroupOrder([...m.groups.keys()]);
}

/**
 * Group or partition names in display order: controller first, then by topic and partition
 * number ("lab-2" before "lab-10"). Each name's sort key is built once (thousands of names are
 * sorted several times a second).
 */
export function byGroupOrder(names: string[]): string[] {
  const rank = (g: string) => (g === 'controller' ? '' : g.replace(/-(\d+)$/, (_, p) => `-${String(p).padStart(6, '0')}`));
  return names.map((n) => [rank(n), n]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((p) => p[1]);
}

/** The node that leads a group in the highest term, as that node itself says. */
export function leaderOf(m: Model, group: string): { node: number; term: number } | null {
  let best: { node: number; term: number } | null = null;
  for (const [node, g] of m.groups.get(group) ?? []) {
    if (g.role === 'Leader' && (!best || g.term > best.term)) best = { node, term: g.term };
  }
  return best;
}

/** The highest term any node reports for a group. */
export function termOf(m: Model, group: string): number {
  let t = 0;
  for (const g of m.groups.get(group)?.values() ?? []) t = Math.max(t, g.term);
  return t;
}

/** Partition topics, user topics first (the lab's workload topic is "lab"). */
export function topics(m: Model): string[] {
  const ts = new Set<string>();
  for (const g of m.groups.keys()) if (g !== 'controller') ts.add(g.replace(/-\d+$/, ''));
  return [...ts].sort((a, b) => Number(a.startsWith('__')) - Number(b.startsWith('__')) || (a === 'lab' ? -1 : b === 'lab' ? 1 : a.localeCompare(b)));
}
