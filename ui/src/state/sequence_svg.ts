// The message-sequence (Lamport) diagram of the watched group for a time window, as a
// self-contained SVG string: one lane per node (time flows down), an arrow per message from its
// sending to its arrival time, lost messages ending in a cross, elections and truncations marked
// on their lane, and the time a node was down as a red band. DOM-free: the window shows it and
// the export button saves the same text.

import { flightOf, latestAt, type Msg, type MsgKind, type RaftTraceStore } from './raft_trace';

const LANE_GAP = 190;
const LEFT = 130;
const TOP = 56;
const HEIGHT = 560;
/** Above this many arrows only votes keep their labels. */
const MAX_LABELLED = 40;
const COLOUR: Record<MsgKind, string> = {
  vote: '#d29922', vote_reply: '#3fb950', append: '#4da3ff', append_ack: '#9ecbff', empty_append: '#4da3ff',
  empty_append_ack: '#9ecbff', node_heartbeat: '#8b98a5', node_heartbeat_ack: '#8b98a5', prevote: '#a371f7', prevote_reply: '#a371f7',
};

const REFUSED = '#f85149';
const markerId = (colour: string) => `arrow-${colour.slice(1)}`;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface SequenceOptions {
  /** Node heartbeats are drawn faint; leave them out for a quieter picture. */
  heartbeats?: boolean;
}

/** The diagram of (from, to] (ns). */
export function sequenceSvg(s: RaftTraceStore, from: number, to: number, opts: SequenceOptions = {}): string {
  const nodes = s.nodes();
  const span = Math.max(to - from, 1);
  const width = LEFT * 2 + LANE_GAP * Math.max(nodes.length - 1, 1);
  const height = TOP + HEIGHT + 40;
  const x = new Map(nodes.map((n, i) => [n, LEFT + i * LANE_GAP]));
  const y = (ts: number) => TOP + ((Math.min(Math.max(ts, from), to) - from) / span) * HEIGHT;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="sequence" data-group="${esc(s.group ?? '')}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, sans-serif" font-size="11">`);
  out.push(`<title>Raft messages of ${esc(s.group ?? 'no group')}, ${new Date(from / 1e6).toISOString()} + ${(span / 1e6).toFixed(0)} ms</title>`);
  // One arrow head per colour (context-stroke is not understood by every SVG viewer).
  const heads = [...new Set([...Object.values(COLOUR), REFUSED])].map((c) =>
    `<marker id="${markerId(c)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${c}"/></marker>`);
  out.push(`<defs>${heads.join('')}</defs>`);
  out.push(`<rect width="${width}" height="${height}" fill="#10151c"/>`);
  out.push(`<text x="${LEFT - 60}" y="20" fill="#e6edf3" font-size="13" font-weight="700">${esc(s.group ?? '')}: messages from ${new Date(from / 1e6).toISOString().slice(11, 23)} (${(span / 1e6).toFixed(0)} ms)</text>`);
  // Time ticks.
  const step = niceStep(span / 8);
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    out.push(`<line x1="${LEFT - 50}" x2="${width - 20}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#1b2430"/>`);
    out.push(`<text x="${LEFT - 52}" y="${(y(t) + 4).toFixed(1)}" fill="#8b98a5" text-anchor="end">+${((t - from) / 1e6).toFixed(0)} ms</text>`);
  }
  for (const n of nodes) {
    const lx = x.get(n)!;
    // Down bands: from each "down" change to the next "up" (or the window's end).
    const ups = s.up.get(n) ?? [];
    let downSince: number | null = latestAt(ups, from)?.up === false ? from : null;
    for (const u of ups) {
      if (u.ts <= from || u.ts > to) continue;
      if (!u.up && downSince === null) downSince = u.ts;
      if (u.up && downSince !== null) { out.push(band(lx, y(downSince), y(u.ts))); downSince = null; }
    }
    if (downSince !== null) out.push(band(lx, y(downSince), y(to)));
    out.push(`<line class="lane" data-node="${n}" x1="${lx}" x2="${lx}" y1="${TOP}" y2="${TOP + HEIGHT}" stroke="#56687a" stroke-width="2"/>`);
    out.push(`<text x="${lx}" y="${TOP - 14}" fill="#e6edf3" text-anchor="middle" font-size="14" font-weight="700">n${n}</text>`);
    // Role changes on the lane (a node reports its state on every change of its indexes too).
    let prev = latestAt(s.states.get(n), from);
    for (const st of s.states.get(n) ?? []) {
      if (st.ts <= from || st.ts > to) continue;
      const same = prev && prev.role === st.role && prev.term === st.term;
      prev = st;
      if (same) continue;
      const fill = st.role === 'Leader' ? '#2ea043' : st.role === 'Candidate' ? '#d29922' : '#8b98a5';
      out.push(`<circle cx="${lx}" cy="${y(st.ts).toFixed(1)}" r="4" fill="${fill}"/><text x="${lx + 8}" y="${(y(st.ts) - 6).toFixed(1)}" fill="${fill}">${esc(st.role)} t${st.term}</text>`);
    }
  }
  for (const d of s.decisions) {
    if (d.ts <= from || d.ts > to || d.event.type === 'commit' || !x.has(d.node)) continue;
    const lx = x.get(d.node)!, dy = y(d.ts);
    const text = d.event.type === 'campaign' ? `campaign (${d.event.candidate === d.node ? 'self' : `asks n${d.event.candidate}`})` : d.event.type === 'truncate' ? `truncated ${d.event.discarded} from index ${d.event.from}` : '';
    out.push(`<rect x="${lx - 5}" y="${(dy - 5).toFixed(1)}" width="10" height="10" fill="${d.event.type === 'truncate' ? '#f85149' : '#d29922'}"/><text x="${lx - 9}" y="${(dy + 4).toFixed(1)}" fill="#e6edf3" text-anchor="end">${esc(text)}</text>`);
  }
  const shown = s.msgs.filter((m) => flightOf(m).to > from && m.sent <= to && x.has(m.from) && x.has(m.to)
    && (opts.heartbeats || !m.kind.startsWith('node_heartbeat')));
  // Labels only while they can be read; a busy window keeps its arrows and their tooltips.
  const labels = shown.length <= MAX_LABELLED;
  for (const m of shown) out.push(arrow(m, x.get(m.from)!, x.get(m.to)!, y(m.sent), y(m.arrive), labels));
  out.push('</svg>');
  return out.join('\n');
}

function band(lx: number, y1: number, y2: number): string {
  return `<rect class="down" x="${lx - 16}" y="${y1.toFixed(1)}" width="32" height="${Math.max(y2 - y1, 1).toFixed(1)}" fill="#f85149" fill-opacity="0.3"/>`;
}

/** One message: a line with an arrow head, or half a line ending in a cross when it was lost. */
function arrow(m: Msg, x1: number, x2: number, y1: number, y2: number, labelled: boolean): string {
  const colour = m.kind === 'vote_reply' && !m.ok ? REFUSED : COLOUR[m.kind];
  const faint = m.kind.startsWith('node_heartbeat') || m.kind.startsWith('empty_append');
  const attrs = `class="msg ${m.kind}" data-from="${m.from}" data-to="${m.to}" stroke="${colour}" stroke-width="${faint ? 1 : 1.8}"${faint ? ' stroke-opacity="0.5"' : ''}`;
  const label = !labelled && m.kind !== 'vote' && m.kind !== 'vote_reply' ? '' : m.kind === 'vote' ? `vote t${m.term}` : m.kind === 'vote_reply' ? (m.ok ? '✓ granted' : '✗ refused') : m.kind === 'append' ? m.detail : m.kind === 'prevote' ? 'leader?' : '';
  const text = label ? `<text x="${(x1 + (x2 - x1) * 0.25).toFixed(1)}" y="${(y1 + (y2 - y1) * 0.25 - 4).toFixed(1)}" fill="${colour}" stroke="none">${esc(label)}</text>` : '';
  if (m.dropped) {
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
    return `<g ${attrs}><line x1="${x1}" y1="${y1.toFixed(1)}" x2="${mx}" y2="${my.toFixed(1)}" stroke-dasharray="4 3"/><text x="${mx}" y="${(my + 4).toFixed(1)}" fill="#f85149" stroke="none" text-anchor="middle" font-size="14">✗</text>${text}<title>${esc(`${m.kind} n${m.from}→n${m.to} lost: ${m.detail}`)}</title></g>`;
  }
  return `<g ${attrs}><line x1="${x1}" y1="${y1.toFixed(1)}" x2="${x2}" y2="${y2.toFixed(1)}" marker-end="url(#${markerId(colour)})"/>${text}<title>${esc(`${m.kind} n${m.from}→n${m.to}: ${m.detail}`)}</title></g>`;
}

/** 1, 2 or 5 times a power of ten (ns), at least `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  return [1, 2, 5, 10].map((k) => k * p).find((v) => v >= raw) ?? 10 * p;
}
