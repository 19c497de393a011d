// Timeline drawing on a canvas: fault bands, per-node swimlanes of leadership spans coloured by
// term, client rate and latency sparklines, anomaly marks. Returns hit boxes for hover.

import { groupNames, type Model } from '../state/model';
import { Rates } from '../state/rates';
import { type FaultSpan, type LeaderSpan, termColour } from '../state/spans';

export interface Hit { x0: number; x1: number; y0: number; y1: number; text: string }
export interface Window { from: number; to: number }

export interface Palette { bg: string; fg: string; dim: string; grid: string; fault: string; down: string; rate: string; latency: string; anomaly: string; cursor: string }

const LABEL_W = 110;
const ROW_H = 14;
const FAULT_H = 22;
const SPARK_H = 44;

/** Rows for a model: per node, one sub-row per group. */
export function layout(m: Model): { nodes: number[]; groups: string[]; height: number } {
  const nodes = [...new Set([...m.nodes.keys(), ...m.leadership.spans.map((s) => s.node)])].sort((a, b) => a - b);
  const groups = groupNames(m).filter((g) => !g.startsWith('__'));
  for (const s of m.leadership.spans) if (!groups.includes(s.group) && !s.group.startsWith('__')) groups.push(s.group);
  const height = FAULT_H + nodes.length * (groups.length * ROW_H + 8) + SPARK_H * 2 + 24;
  return { nodes, groups, height };
}

const fmtMs = (ns: number) => `${(ns / 1e6).toFixed(0)} ms`;

export function draw(cx: CanvasRenderingContext2D, m: Model, win: Window, width: number, cursor: number | null, pal: Palette, font: number): Hit[] {
  const hits: Hit[] = [];
  const { nodes, groups, height } = layout(m);
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

  // Swimlanes.
  let y = FAULT_H + 4;
  const spansBy = new Map<string, LeaderSpan[]>();
  for (const s of m.leadership.spans) if (visible(s)) {
    const k = `${s.node}|${s.group}`;
    if (!spansBy.has(k)) spansBy.set(k, []);
    spansBy.get(k)!.push(s);
  }
  for (const n of nodes) {
    const laneH = groups.length * ROW_H;
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
