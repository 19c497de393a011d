// Derived timeline geometry: who led which group when (per term), and fault bands.

import type { FaultName, TimelineEvent } from '../api/types';

export interface LeaderSpan {
  group: string;
  node: number;
  term: number;
  /** "Leader", or "IsolatedLeader" when it believes it leads without a quorum. */
  role: string;
  start: number;
  end: number | null;
}

const LEADERISH = new Set(['Leader', 'IsolatedLeader']);

/** Leadership spans per node and group from Raft role reports. */
export class Leadership {
  spans: LeaderSpan[] = [];
  private open = new Map<string, LeaderSpan>();

  apply(e: TimelineEvent): void {
    if (e.type === 'raft' && e.source.kind === 'node') {
      const node = e.source.id;
      const key = `${e.group}|${node}`;
      const cur = this.open.get(key);
      const leads = LEADERISH.has(e.role);
      if (cur && cur.term === e.term && cur.role === e.role && leads) return;
      if (cur) {
        cur.end = e.ts_ns;
        this.open.delete(key);
      }
      if (leads) {
        const span = { group: e.group, node, term: e.term, role: e.role, start: e.ts_ns, end: null };
        this.spans.push(span);
        this.open.set(key, span);
      }
    } else if (e.type === 'process' && e.source.kind === 'node' && (e.state === 'exited' || e.state === 'died')) {
      this.closeNode(e.source.id, e.ts_ns);
    }
  }

  /** An independent copy: spans are mutated when they close, so they are copied too. */
  clone(): Leadership {
    const c = new Leadership();
    const copy = new Map(this.spans.map((s) => [s, { ...s }]));
    c.spans = this.spans.map((s) => copy.get(s)!);
    for (const [k, s] of this.open) c.open.set(k, copy.get(s)!);
    return c;
  }

  private closeNode(node: number, ts: number): void {
    for (const [key, span] of this.open) {
      if (span.node === node) {
        span.end = ts;
        this.open.delete(key);
      }
    }
  }
}

export interface FaultSpan {
  fault: FaultName;
  target: string;
  detail: string | null;
  nodes: number[];
  start: number;
  /** null while it lasts; equal to start for instantaneous faults (restart, heal...). */
  end: number | null;
}

const LINK_FAULTS = new Set<FaultName>(['cut_link', 'isolate', 'split', 'blackhole_link', 'delay_link', 'bridge', 'toxic']);
const NODE_FAULTS = new Set<FaultName>(['kill', 'stop', 'power_cut', 'pause', 'slow_disk', 'fsync_fail']);
const DOWN_FAULTS = new Set<FaultName>(['kill', 'stop', 'power_cut']);

/** "node-1,node-3" -> [1, 3]; "all" -> []. */
export function targetNodes(target: string): number[] {
  return target.split(',').map((t) => /^node-(\d+)$/.exec(t.trim())).filter((m) => m !== null).map((m) => Number(m[1]));
}

const overlaps = (a: number[], b: number[]) => a.length === 0 || b.length === 0 || a.some((n) => b.includes(n));

/** Fault bands: a fault lasts until what undoes it (heal, resume, restart, the node starting again). */
export class Faults {
  spans: FaultSpan[] = [];
  private open: FaultSpan[] = [];

  apply(e: TimelineEvent): void {
    if (e.type === 'process' && e.source.kind === 'node' && (e.state === 'started' || e.state === 'ready')) {
      this.close((s) => DOWN_FAULTS.has(s.fault) && s.nodes.includes((e.source as { id: number }).id), e.ts_ns);
      return;
    }
    if (e.type !== 'fault') return;
    const nodes = targetNodes(e.target);
    if (e.fault === 'heal') this.close((s) => LINK_FAULTS.has(s.fault), e.ts_ns);
    // One link healed (the Raft view's link click): what cut exactly that pair ends.
    if (e.fault === 'heal_link') this.close((s) => LINK_FAULTS.has(s.fault) && s.nodes.length === 2 && nodes.every((n) => s.nodes.includes(n)), e.ts_ns);
    if (e.fault === 'resume') this.close((s) => s.fault === 'pause' && overlaps(s.nodes, nodes), e.ts_ns);
    if (e.fault === 'restart') this.close((s) => NODE_FAULTS.has(s.fault) && overlaps(s.nodes, nodes), e.ts_ns);
    // slow_disk with no delay is how a chaos run gives the disk back: it ends the band.
    const diskBack = e.fault === 'slow_disk' && /^0 ms/.test(e.detail ?? '');
    if (diskBack) this.close((s) => s.fault === 'slow_disk' && overlaps(s.nodes, nodes), e.ts_ns);
    const lasting = (LINK_FAULTS.has(e.fault) || NODE_FAULTS.has(e.fault)) && !diskBack;
    const span = { fault: e.fault, target: e.target, detail: e.detail, nodes, start: e.ts_ns, end: lasting ? null : e.ts_ns };
    this.spans.push(span);
    if (lasting) this.open.push(span);
  }

  /** An independent copy (open spans get their end later, so spans are copied). */
  clone(): Faults {
    const c = new Faults();
    const copy = new Map(this.spans.map((s) => [s, { ...s }]));
    c.spans = this.spans.map((s) => copy.get(s)!);
    c.open = this.open.map((s) => copy.get(s)!);
    return c;
  }

  private close(match: (s: FaultSpan) => boolean, ts: number): void {
    if (!this.open.length) return;
    for (const s of this.open) if (match(s)) s.end = ts;
    this.open = this.open.filter((s) => s.end === null);
  }

  openSpans(): FaultSpan[] {
    return [...this.open];
  }
}

/** A stable, well-spread colour per term. */
export function termColour(term: number, lightness = 55): string {
  return `hsl(${(term * 137.508) % 360}, 70%, ${lightness}%)`;
}
