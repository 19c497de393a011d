// Timeline drawing on a canvas: fault bands, per-node swimlanes of leadership spans coloured by
// term, client rate and latency sparklines, anomaly marks, the Raft view's captions. Returns hit
// boxes for hover.

import { byGroupOrder, type Model } from '../state/model';
import { captions } from '../state/raft_trace';
import { Rates } from '../state/rates';
import { type FaultSpan, type LeaderSpan, termColour } from '../state/spans';

export interface Hit { x0: number; x1: number; y0: number; y1: number; text: string; kind?: 'raft' }
export interface Window { from: number; to: number }

export interface Palette { bg: string; fg: string; dim: string; grid: string; fault: string; down: string; rate: string; latency: string; anomaly: string; cursor: string }

const LABEL_W = 110;
const ROW_H = 14;
const FAULT_H = 22;
const SPARK_H = 44;
/** Past this many groups a node's lane shows the controller and one count of partitions led. */
const MAX_GROUP_ROWS = 12;
const COUNT_H = ROW_H * 3;

export interface Layout {
  nodes: number[];
  /** One row per group in each node's lane. */
  groups: string[];
  /** Partition groups drawn as one "partitions led" count per node instead of a row each. */
  counted: number;
  /** Height of one node's lane. */
  laneH: number;
  height: number;
}

/** Rows for a model: per node, one sub-row per group (or, at scale, the controller and a count). */
export function layout(m: Model): Layout {
  const nodes = [...new Set([...m.nodes.keys(), ...m.leadership.spans.map((s) => s.node)])].sort((a, b) => a - b);
  const all = new Set([...m.groups.keys()].filter((g) => !g.startsWith('__')));
  for (const s of m.leadership.spans) if (!s.group.startsWith('__')) all.add(s.group);
  let groups: string[];
  let counted = 0;
  if (all.size > MAX_GROUP_ROWS) {
    counted = all.size - (all.has('controller') ? 1 : 0);
    groups = all.has('controller') ? ['controller'] : [];
  } else groups = byGroupOrder([...all]);
  const laneH = groups.length * ROW_H + (counted ? COUNT_H : 0);
  const height = FAULT_H + nodes.length * (laneH + 8) + SPARK_H * 2 + 24;
  return { nodes, groups, counted, laneH, height };
}

/**
 * How many partition groups node `n` led over time, as steps [t, count]: +1 where a leadership
 * span starts, -1 where it ends.
 */
function ledSteps(spans: LeaderSpan[], n: number): [number, number][] {
  const edges: [number, number][] = [];
  for (const s of spans) if (s.node === n && s.group !== 'controller' && !s.group.startsWith('__')) {
    edges.push([s.start, 1]);
    if (s.end !== null) edges.push([s.end, -1]);
  }
  edges.sort((a, b) => a[0] - b[0]);
  let count = 0;
  return edges.map(([t, d]) => [t, (count += d)]);
}

/** A node's count of partitions led, as a filled step chart scaled to every partition group. */
function drawLedCount(cx: CanvasRenderingContext2D, m: Model, n: number, total: number, y0: number, x: (t: number) => number, win: Window, pal: Palette, hits: Hit[]): void {
  const steps = ledSteps(m.leadership.spans, n);
  cx.fillStyle = pal.dim;
  cx.fillText(`leads (of ${total})`, 50, y0 + COUNT_H / 2);
  cx.fillStyle = pal.rate;
  for (let i = 0; i < steps.length; i++) {
    const [t, count] = steps[i];
    const until = i + 1 < steps.length ? steps[i + 1][0] : win.to;
    if (until < win.from || t > win.to || count <= 0) continue;
    const x0 = Math.max(LABEL_W, x(t)), x1 = Math.max(x0 + 1, x(until));
    const h = (count / total) * (COUNT_H - 2);
    cx.fillRect(x0, y0 + COUNT_H - 1 - h, x1 - x0, h);
    if (x1 - x0 >= 2) hits.push({ x0, x1, y0, y1: y0 + COUNT_H, text: `node ${n} leads ${count} of ${total} partitions` });
  }
}

const fmtMs = (ns: number) => `${(ns / 1e6).toFixed(0)} ms`;

export function draw(cx: CanvasRenderingContext2D, m: Model, win: Window, width: number, cursor: number | null, pal: Palette, font: number): Hit[] {
  const hits: Hit[] = [];
  const { nodes, groups, counted, laneH, height } = layout(m);
  const span = Math.max(win.to - win.from, 1);
  const plotW = width - LABEL_W - 8;
  const x = (t: number) => LABEL_W + ((t - win.from) / span) * plotW;
  cx.fillStyle = pal.bg;
  cx.fillRect(0, 0, width, height);
  cx.font = `${font}px system-ui, sans-serif`;
  cx.textBaseline = 'middle';

  // Grid: one line per second (or per 10 s when zoomed out).
  const step = span > 120e9 ? 10e9 : span > 20e9 ? 5e9 : 1e9;
  cx.strokeStyle = pal.grid;
  cx.fillStyle = pal.dim;
  for (let t = Math.ceil(win.from / step) * step; t <= win.to; t += step) {
    cx.beginPath();
    cx.moveTo(x(t), 0);
    cx.lineTo(x(t), height);
    cx.stroke();
    cx.fillText(`${((t - m.firstTs) / 1e9).toFixed(0)}s`, x(t) + 2, height - 8);
  }

  // Fault bands.
  cx.fillStyle = pal.fg;
  cx.fillText('faults', 4, FAULT_H / 2);
  const visible = (s: { start: number; end: number | null }) => (s.end ?? win.to) >= win.from && s.start <= win.to;
  const faults = m.faults.spans.filter(visible);
  for (const f of faults) drawFault(cx, f, x(f.start), x(f.end ?? win.to), pal, hits);
  drawRaftCaptions(cx, m, win, x, pal, hits);

  // Swimlanes.
  let y = FAULT_H + 4;
  const spansBy = new Map<string, LeaderSpan[]>();
  for (const s of m.leadership.spans) if (visible(s)) {
    const k = `${s.node}|${s.group}`;
    if (!spansBy.has(k)) spansBy.set(k, []);
    spansBy.get(k)!.push(s);
  }
  for (const n of nodes) {
    cx.fillStyle = pal.grid;
    cx.fillRect(LABEL_W, y, plotW, laneH);
    for (const f of faults) if (f.nodes.includes(n) && f.end !== f.start) {
      cx.fillStyle = pal.down;
      cx.fillRect(x(f.start), y, Math.max(2, x(f.end ?? win.to) - x(f.start)), laneH);
    }
    cx.fillStyle = pal.fg;
    cx.fillText(`node ${n}`, 4, y + 6);
    groups.forEach((g, i) => {
      const ry = y + i * ROW_H;
      cx.fillStyle = pal.dim;
      cx.fillText(g, 50, ry + ROW_H / 2);
      for (const s of spansBy.get(`${n}|${g}`) ?? []) {
        const x0 = Math.max(LABEL_W, x(s.start));
        const x1 = Math.max(x0 + 2, x(s.end ?? win.to));
        cx.fillStyle = termColour(s.term);
        cx.fillRect(x0, ry + 1, x1 - x0, ROW_H - 2);
        if (s.role === 'IsolatedLeader') {
          cx.strokeStyle = pal.anomaly;
          cx.setLineDash([3, 3]);
          cx.strokeRect(x0 + 0.5, ry + 1.5, x1 - x0 - 1, ROW_H - 3);
          cx.setLineDash([]);
        }
        if (x1 - x0 > 24) {
          cx.fillStyle = '#000';
          cx.fillText(`t${s.term}`, x0 + 3, ry + ROW_H / 2);
        }
        const dur = (s.end ?? m.lastTs) - s.start;
        hits.push({ x0, x1, y0: ry, y1: ry + ROW_H, text: `${g} on node ${n}: ${s.role} in term ${s.term} for ${(dur / 1e9).toFixed(2)} s${s.end === null ? ' (ongoing)' : ''}` });
      }
    });
    if (counted) drawLedCount(cx, m, n, counted, y + groups.length * ROW_H, x, win, pal, hits);
    y += laneH + 8;
  }

  // Client rate (acks/s) and mean latency, per 100 ms bucket.
  const buckets = m.rates.range(win.from, win.to);
  const maxRate = Math.max(1, ...buckets.map(Rates.rate));
  const maxLat = Math.max(1, ...buckets.map(Rates.meanLatencyMs));
  cx.fillStyle = pal.fg;
  cx.fillText(`acks/s ≤${maxRate.toFixed(0)}`, 4, y + SPARK_H / 2);
  cx.fillText(`latency ≤${maxLat.toFixed(0)}ms`, 4, y + SPARK_H + SPARK_H / 2);
  const bw = Math.max(1, (100e6 / span) * plotW);
  for (const b of buckets) {
    const bx = x(b.start);
    const r = Rates.rate(b);
    cx.fillStyle = b.failed ? pal.anomaly : pal.rate;
    cx.fillRect(bx, y + SPARK_H - (r / maxRate) * (SPARK_H - 4), bw, (r / maxRate) * (SPARK_H - 4));
    hits.push({ x0: bx, x1: bx + bw, y0: y, y1: y + 2 * SPARK_H, text: `${new Date(b.start / 1e6).toISOString().slice(11, 23)}: ${b.sent} sent, ${b.acked} acked, ${b.failed} failed, ${b.polled} read; mean latency ${Rates.meanLatencyMs(b).toFixed(1)} ms, max ${fmtMs(b.latencyMax)}` });
  }
  cx.strokeStyle = pal.latency;
  cx.lineWidth = 2;
  cx.beginPath();
  buckets.forEach((b, i) => {
    const ly = y + 2 * SPARK_H - (Rates.meanLatencyMs(b) / maxLat) * (SPARK_H - 4);
    if (i === 0) cx.moveTo(x(b.start), ly);
    else cx.lineTo(x(b.start), ly);
  });
  cx.stroke();
  cx.lineWidth = 1;

  // Anomalies: a red mark through everything.
  for (const a of m.anomalies) if (a.ts >= win.from && a.ts <= win.to) {
    const ax = x(a.ts);
    cx.fillStyle = pal.anomaly;
    cx.fillRect(ax - 1, 0, 3, height - 16);
    cx.beginPath();
    cx.moveTo(ax - 7, 0);
    cx.lineTo(ax + 7, 0);
    cx.lineTo(ax, 10);
    cx.fill();
    hits.push({ x0: ax - 6, x1: ax + 6, y0: 0, y1: height, text: `anomaly ${a.anomaly}: ${a.detail}` });
  }
  if (cursor !== null && cursor >= win.from && cursor <= win.to) {
    cx.fillStyle = pal.cursor;
    cx.fillRect(x(cursor) - 1, 0, 2, height);
  }
  return hits;
}

/**
 * What the Raft view says in words about the group it watches (votes granted or refused, an
 * election won, a lost request, a rollback): a mark each along the bottom of the fault row, the
 * words on hover, so a replay shows where in the run each step of an election happened.
 */
function drawRaftCaptions(cx: CanvasRenderingContext2D, m: Model, win: Window, x: (t: number) => number, pal: Palette, hits: Hit[]): void {
  const group = m.raftTrace.group;
  if (!group) return;
  cx.fillStyle = pal.latency;
  for (const c of captions(m.raftTrace, win.from, win.to)) {
    const cx0 = x(c.ts);
    if (cx0 < LABEL_W) continue;
    cx.beginPath();
    cx.moveTo(cx0, FAULT_H - 9);
    cx.lineTo(cx0 + 4, FAULT_H - 1);
    cx.lineTo(cx0 - 4, FAULT_H - 1);
    cx.fill();
    // First in the list: hover takes the first box under the pointer, and a mark sits on top of
    // the fault band it may share the row with.
    hits.unshift({ x0: cx0 - 4, x1: cx0 + 4, y0: FAULT_H - 10, y1: FAULT_H, text: `${group}: ${c.text}`, kind: 'raft' });
  }
}

function drawFault(cx: CanvasRenderingContext2D, f: FaultSpan, x0: number, x1: number, pal: Palette, hits: Hit[]): void {
  const w = Math.max(3, x1 - x0);
  cx.fillStyle = pal.fault;
  cx.fillRect(x0, 2, w, FAULT_H - 4);
  const label = `${f.fault.replace('_', ' ')} ${f.target}`;
  cx.fillStyle = '#fff';
  if (w > 30) cx.fillText(label, x0 + 3, FAULT_H / 2, w - 4);
  else if (f.end === f.start) {
    cx.fillStyle = pal.fg;
    cx.fillText(f.fault.replace('_', ' '), x0 + 5, FAULT_H / 2, 70);
  }
  hits.push({ x0, x1: x0 + w, y0: 0, y1: FAULT_H, text: `${label}${f.detail ? ` (${f.detail})` : ''}${f.end === null ? ' — ongoing' : f.end === f.start ? '' : ` for ${((f.end - f.start) / 1e9).toFixed(2)} s`}` });
}
