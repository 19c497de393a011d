// The Raft view: one group (the controller or a partition), its nodes on a ring, its messages
// travelling along the links as the nodes recorded them, role and term on each node, the vote
// tally of the latest election, an arc draining towards each follower's election deadline, each
// replica's log coloured by term with the commit point, and captions in plain words.
//
// It plays the recorded messages back in slow motion on its own clock (loopback round trips
// take about a millisecond): pause, step to the next message, change speed. Following live, it
// skips quiet stretches and jumps to the start of an election when one happens.

import type { LinkView } from '../api/types';
import { groupNames } from '../state/model';
import { sequenceSvg } from '../state/sequence_svg';
import { type Flight, LOOKBACK_NS, type MsgKind, nextInteresting, nextMoment, type RaftTraceStore, scene, type Scene, termColour } from '../state/raft_trace';
import type { Ctx, View } from './context';
import { h, s, section, setText } from './dom';

const W = 440;
const R = 150;
const NODE_R = 40;
const ARC_R = 49;
const ARC_LEN = 2 * Math.PI * ARC_R;
/** Log columns shown: the latest entries of the longest log. */
const LOG_COLUMNS = 24;
/** The sequence diagram is rebuilt at most this often (it walks every message of its window). */
const SEQ_EVERY_MS = 250;
/** The select's value for "record no group". */
const NONE = '';
/** Playback speeds (fractions of real time); loopback messages need slow motion to be seen. */
const SPEEDS: [string, number][] = [['1/100×', 0.01], ['1/25×', 0.04], ['1/5×', 0.2], ['1×', 1]];
/** Following live, the view falls behind in slow motion; past this it skips ahead... */
const MAX_LAG_NS = 1.5e9;
/** ...unless an election is being shown, which plays to its end unless this far behind. */
const MAX_LAG_ELECTION_NS = 30e9;
/** A jump lands this long before the election it jumps to. */
const LEAD_IN_NS = 60e6;

const LABEL: Record<MsgKind, string> = {
  vote: 'vote request', vote_reply: 'vote reply', append: 'append (entries)', append_ack: 'append ack',
  empty_append: 'empty append', empty_append_ack: 'empty append ack', node_heartbeat: 'node heartbeat (all groups)',
  node_heartbeat_ack: 'node heartbeat ack', prevote: 'pre-vote: leader query', prevote_reply: 'pre-vote answer',
};

export interface RaftView extends View {
  /** Advances the playback clock and redraws; called every animation frame. */
  frame(now: number): void;
}

function ringPositions(ids: number[]): Map<number, { x: number; y: number }> {
  return new Map(ids.map((id, i) => {
    const a = -Math.PI / 2 + (i * 2 * Math.PI) / Math.max(ids.length, 1);
    return [id, { x: W / 2 + R * Math.cos(a), y: W / 2 + R * Math.sin(a) }];
  }));
}

/** One message's shape at its place along the link. */
function msgShape(f: Flight, a: { x: number; y: number }, b: { x: number; y: number }): SVGElement {
  const m = f.msg;
  const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
  // Requests and replies on either side of the link, so a pair never overlaps.
  const nx = -(b.y - a.y) / len * 7, ny = (b.x - a.x) / len * 7;
  const startFrac = NODE_R / len, endFrac = 1 - NODE_R / len;
  const p = m.dropped ? Math.min(f.progress, 0.5) : f.progress;
  const along = startFrac + (endFrac - startFrac) * p;
  const x = a.x + (b.x - a.x) * along + nx, y = a.y + (b.y - a.y) * along + ny;
  const attrs = { class: `msg ${m.kind}${m.ok ? '' : ' refused'}${m.dropped ? ' dropped' : ''}`, 'data-from': m.from, 'data-to': m.to, 'data-term': m.term ?? '' };
  const g = s('g', { ...attrs, transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})` });
  const title = s('title', {}, `${LABEL[m.kind]} n${m.from}→n${m.to}${m.term ? ` term ${m.term}` : ''}: ${m.detail}`);
  if (m.dropped && f.progress >= 0.5) {
    g.append(s('text', { class: 'drop-mark' }, '✗'), title);
    return g;
  }
  switch (m.kind) {
    case 'vote': g.append(s('circle', { r: 10 }), s('text', {}, '?')); break;
    case 'vote_reply': g.append(s('circle', { r: 10 }), s('text', {}, m.ok ? '✓' : '✗')); break;
    case 'append': g.append(s('rect', { x: -11, y: -7, width: 22, height: 14, rx: 2 }), s('text', {}, m.detail.match(/\d+–\d+/)?.[0] ?? '')); break;
    case 'append_ack': case 'empty_append_ack': g.append(s('rect', { x: -6, y: -4, width: 12, height: 8, rx: 2 })); break;
    case 'empty_append': g.append(s('rect', { x: -8, y: -5, width: 16, height: 10, rx: 2 })); break;
    case 'node_heartbeat': case 'node_heartbeat_ack': g.append(s('circle', { r: 4 })); break;
    case 'prevote': case 'prevote_reply': g.append(s('path', { d: 'M0,-8 L7,6 L-7,6 Z' })); break;
  }
  g.append(title);
  return g;
}

/** A link is cut when the lab's proxy does anything but pass in either direction. */
function cutLinks(links: LinkView[]): Set<string> {
  const out = new Set<string>();
  for (const l of links) {
    const a = typeof l.from === 'object' ? l.from.node : null, b = typeof l.to === 'object' ? l.to.node : null;
    if (a === null || b === null) continue;
    if (l.mode.kind !== 'pass' || l.reverse_mode.kind !== 'pass') out.add(`${Math.min(a, b)}-${Math.max(a, b)}`);
  }
  return out;
}

export function raftView(ctx: Ctx): RaftView {
  const groupSel = h('select', { id: 'raft-group', 'data-control': '', 'aria-label': 'Raft group to show' });
  const playBtn = h('button', { id: 'raft-play', title: 'pause / play the Raft view' }, 'Pause');
  const stepBtn = h('button', { id: 'raft-step', title: 'pause and go to the next message or decision' }, 'Step ▸');
  const speedSel = h('select', { id: 'raft-speed', 'aria-label': 'playback speed' }, ...SPEEDS.map(([l, v]) => h('option', { value: String(v) }, l)));
  speedSel.value = '0.04';
  const followBtn = h('button', { id: 'raft-follow', class: 'on', title: 'follow the live run, jumping to elections' }, '● Follow');
  const status = h('span', { id: 'raft-status', class: 'dim' });
  const svg = s('svg', { viewBox: `0 0 ${W} ${W}`, class: 'raft-ring', role: 'img', 'aria-label': 'Raft group messages' }) as SVGSVGElement;
  const linkLayer = s('g', { class: 'links' }), nodeLayer = s('g', { class: 'nodes' }), msgLayer = s('g', { class: 'msgs' });
  svg.append(linkLayer, nodeLayer, msgLayer);
  // RaftScope drops a message by clicking it; on real processes the lab's proxy drops what a
  // link carries, so a click on a link cuts it both ways (its messages then show as lost), and
  // a click on a cut link heals it.
  linkLayer.addEventListener('click', (ev) => {
    const link = (ev.target as Element).closest('[data-link]')?.getAttribute('data-link');
    if (!link || !ctx.canControl()) return;
    const [a, b] = link.split('-').map(Number);
    if ((ev.target as Element).closest('.cut')) void ctx.run(`heal ${a}↔${b}`, () => ctx.client.healLink(a, b));
    else void ctx.run(`cut ${a}↔${b}`, () => ctx.client.cutLink(a, b, true));
  });
  const tallyEl = h('div', { id: 'raft-tally', class: 'raft-tally' });
  const logsEl = h('div', { id: 'raft-logs', class: 'raft-logs' });
  const capsEl = h('ol', { id: 'raft-captions', class: 'raft-captions' });
  const legend = h('div', { class: 'legend raft-legend' },
    ...(['vote', 'vote_reply', 'append', 'empty_append', 'node_heartbeat', 'prevote'] as MsgKind[]).map((k) => h('span', { class: `key ${k}` }, LABEL[k])),
    h('span', { class: 'key dropped' }, '✗ lost at a cut link / dead node'),
    h('span', {}, 'arc: time left before the follower suspects its leader'));
  const seqWindow = h('select', { id: 'raft-seq-window', 'aria-label': 'sequence diagram window' },
    ...[['0.5', '0.5 s'], ['2', '2 s'], ['10', '10 s']].map(([v, l]) => h('option', { value: v }, l)));
  seqWindow.value = '2';
  const seqHeartbeats = h('input', { type: 'checkbox', id: 'raft-seq-heartbeats' });
  const seqBox = h('div', { id: 'raft-sequence', class: 'raft-sequence' });
  const seqExport = h('button', { id: 'raft-seq-export', title: 'save this diagram as an SVG file' }, 'Export SVG');
  const seq = h('details', { class: 'raft-seq' },
    h('summary', {}, 'Message sequence diagram (one lane per node, time flows down)'),
    h('div', { class: 'toolbar' }, 'the last ', seqWindow, ' before the view time ', h('label', {}, seqHeartbeats, ' node heartbeats'), seqExport),
    seqBox);
  const seqText = () => {
    const st = ctx.model().raftTrace;
    return sequenceSvg(st, t - Number(seqWindow.value) * 1e9, t, { heartbeats: seqHeartbeats.checked });
  };
  const redrawSeq = () => { if (seq.open) seqBox.innerHTML = seqText(); };
  seq.addEventListener('toggle', redrawSeq);
  seqWindow.addEventListener('change', redrawSeq);
  seqHeartbeats.addEventListener('change', redrawSeq);
  seqExport.addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([seqText()], { type: 'image/svg+xml' }));
    const a = h('a', { href: url, download: `raft-${ctx.model().raftTrace.group ?? 'group'}-${new Date(t / 1e6).toISOString().replace(/[:.]/g, '-')}.svg` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  const el = section('raft', 'Raft view',
    h('div', { class: 'toolbar' }, h('label', {}, 'group ', groupSel), playBtn, stepBtn, speedSel, followBtn, status),
    h('div', { class: 'raft-body' }, h('div', { class: 'svgwrap' }, svg), h('div', { class: 'raft-side' }, tallyEl, logsEl, capsEl)),
    seq,
    legend,
    h('p', { class: 'hint' }, 'Messages as the nodes recorded them, slowed down; each flight is drawn at least 8 ms (cluster time) long. Quiet groups are kept alive by one node heartbeat per peer pair, not per group.'));

  let t = 0;
  let playing = true;
  let follow = true;
  let lastFrame = 0;
  let drawnKey = '';
  let optionsKey = '';
  let logsKey = '';
  let seqDrawn = 0;
  const nodeEls = new Map<number, { g: SVGElement; circle: SVGElement; arc: SVGElement; role: SVGElement; term: SVGElement; vote: SVGElement }>();

  const setPlaying = (p: boolean) => { playing = p; setText(playBtn, p ? 'Pause' : '▶ Play'); };
  playBtn.addEventListener('click', () => setPlaying(!playing));
  stepBtn.addEventListener('click', () => {
    setPlaying(false);
    follow = false;
    followBtn.classList.remove('on');
    const next = nextMoment(ctx.model().raftTrace, t);
    if (next !== null) t = next;
    drawnKey = '';
  });
  followBtn.addEventListener('click', () => { follow = !follow; followBtn.classList.toggle('on', follow); if (follow) setPlaying(true); });
  groupSel.addEventListener('change', () => {
    const g = groupSel.value === NONE ? null : groupSel.value;
    void ctx.run(g ? `watch ${g}` : 'record no group', () => ctx.client.watchRaftGroup(g));
    t = 0;
  });

  function update(): void {
    const m = ctx.model();
    const names = groupNames(m).filter((g) => !g.startsWith('__')).slice(0, 500);
    const watched = m.state?.running ? m.raftWatch : m.raftTrace.group;
    const current = watched ?? NONE;
    if (watched && !names.includes(watched)) names.unshift(watched);
    const key = names.join('\n');
    if (key !== optionsKey) {
      optionsKey = key;
      groupSel.replaceChildren(...names.map((n) => h('option', { value: n }, n)), h('option', { value: NONE }, 'none (counters only)'));
    }
    if (groupSel.value !== current && document.activeElement !== groupSel) groupSel.value = current;
  }

  function advance(st: RaftTraceStore, now: number): void {
    const dt = lastFrame ? Math.min(now - lastFrame, 100) : 0;
    lastFrame = now;
    if (!st.lastTs) return;
    if (t === 0 || t < st.firstTs) t = Math.max(st.firstTs, st.lastTs - 300e6);
    if (playing) t += dt * 1e6 * Number(speedSel.value);
    if (follow && playing) { // a paused picture holds, whatever arrives meanwhile
      const lag = st.lastTs - t;
      // Just before or inside an election (a jump lands LEAD_IN_NS before one): let it play.
      const inElection = nextInteresting(st, t - 1.5e9, t + 2 * LEAD_IN_NS) !== null;
      if (lag > (inElection ? MAX_LAG_ELECTION_NS : MAX_LAG_NS)) {
        const jump = nextInteresting(st, t, st.lastTs);
        t = jump !== null ? jump - LEAD_IN_NS : st.lastTs - 300e6;
      }
    }
    if (playing) t = Math.min(t, st.lastTs); // a step may land on a reply drawn past the last poll
  }

  function frame(now: number): void {
    const m = ctx.model();
    const st = m.raftTrace;
    advance(st, now);
    const key = `${st.group}|${t}|${st.msgs.length}|${st.lastTs}|${m.links.length}`;
    if (key === drawnKey) return;
    drawnKey = key;
    draw(scene(st, t), st, m.links);
    // The diagram follows the view time (play, step, new data), at most every SEQ_EVERY_MS and
    // only while it is open.
    if (seq.open && now - seqDrawn >= SEQ_EVERY_MS) {
      seqBox.innerHTML = seqText();
      seqDrawn = now;
    }
  }

  function draw(sc: Scene, st: RaftTraceStore, links: LinkView[]): void {
    const ids = sc.nodes.map((n) => n.id);
    const pos = ringPositions(ids);
    svg.dataset.group = st.group ?? '';
    setText(status, st.lastTs ? `${st.group ?? ''} · ${follow ? 'following live' : playing ? 'playing' : 'paused'} · ${((st.lastTs - t) / 1e6).toFixed(0)} ms behind the latest message` : 'no Raft messages yet: start a cluster');
    status.dataset.t = String(t);
    // Links: every pair, cut ones dashed.
    const cut = cutLinks(links);
    const linkKey = `${ids.join(',')}|${[...cut].join(',')}`;
    if (linkLayer.getAttribute('data-key') !== linkKey) {
      linkLayer.setAttribute('data-key', linkKey);
      const lines: SVGElement[] = [];
      for (const a of ids) for (const b of ids) if (a < b) {
        const pa = pos.get(a)!, pb = pos.get(b)!;
        const cls = cut.has(`${a}-${b}`) ? ' cut' : '';
        const title = s('title', {}, cls ? `n${a}↔n${b} is cut: click to heal it` : `click to cut n${a}↔n${b} (its messages are dropped)`);
        // A wide transparent line takes the click; the thin one shows the link.
        lines.push(s('g', { class: `rlink-g${cls}`, 'data-link': `${a}-${b}` }, title,
          s('line', { x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y, class: `rlink${cls}` }),
          s('line', { x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y, class: 'rlink-hit' })));
      }
      linkLayer.replaceChildren(...lines);
    }
    // Nodes, kept by id.
    for (const n of sc.nodes) {
      let e = nodeEls.get(n.id);
      if (!e) {
        const p = pos.get(n.id)!;
        const circle = s('circle', { r: NODE_R, class: 'rnode-circle' });
        const arc = s('circle', { r: ARC_R, class: 'deadline', transform: 'rotate(-90)' });
        const id = s('text', { class: 'rnode-id', y: -14 }, `n${n.id}`);
        const role = s('text', { y: 4 }), term = s('text', { y: 20, class: 'rnode-term' }), vote = s('text', { y: 60, class: 'rnode-vote' });
        const g = s('g', { class: 'rnode', 'data-node': n.id, transform: `translate(${p.x} ${p.y})` }, arc, circle, id, role, term, vote);
        nodeLayer.append(g);
        e = { g, circle, arc, role, term, vote };
        nodeEls.set(n.id, e);
      }
      const p = pos.get(n.id)!;
      e.g.setAttribute('transform', `translate(${p.x} ${p.y})`);
      e.g.setAttribute('class', `rnode ${n.role.toLowerCase()}`);
      e.g.setAttribute('data-role', n.role);
      e.g.setAttribute('data-term', String(n.term));
      setText(e.role, n.role);
      setText(e.term, `term ${n.term}`);
      setText(e.vote, n.role === 'Candidate' || n.role === 'Down' ? '' : n.votedFor !== null ? `voted n${n.votedFor}` : '');
      if (n.deadline === null) e.arc.setAttribute('display', 'none');
      else {
        e.arc.removeAttribute('display');
        e.arc.setAttribute('stroke-dasharray', `${(n.deadline * ARC_LEN).toFixed(1)} ${ARC_LEN.toFixed(1)}`);
        e.arc.setAttribute('data-left', n.deadline.toFixed(2));
      }
    }
    for (const [id, e] of nodeEls) if (!pos.has(id)) { e.g.remove(); nodeEls.delete(id); }
    msgLayer.replaceChildren(...sc.flights.filter((f) => pos.has(f.msg.from) && pos.has(f.msg.to)).map((f) => msgShape(f, pos.get(f.msg.from)!, pos.get(f.msg.to)!)));
    drawTally(sc);
    drawLogs(sc);
    const caps = sc.captions.slice(-4);
    capsEl.replaceChildren(...caps.map((c) => h('li', { 'data-ts': c.ts }, h('span', { class: 'dim' }, `${((c.ts - t) / 1e6).toFixed(0)} ms `), c.text)));
  }

  function drawTally(sc: Scene): void {
    const tl = sc.tally;
    if (!tl) {
      tallyEl.replaceChildren(h('span', { class: 'dim' }, `no election in the ${LOOKBACK_NS / 1e9} s before the view time`));
      tallyEl.removeAttribute('data-term');
      return;
    }
    tallyEl.dataset.term = String(tl.term);
    tallyEl.dataset.won = String(tl.won);
    tallyEl.dataset.candidate = String(tl.candidate);
    const names = (xs: number[]) => xs.map((x) => `n${x}`).join(', ') || '—';
    const parts: HTMLElement[] = [
      h('b', {}, `Election, term ${tl.term}: n${tl.candidate} `), h('span', { class: tl.won ? 'good' : 'warn' }, tl.won ? 'won' : 'collecting votes'),
      h('div', {}, `votes ${tl.granted.length + 1} of ${tl.needed} needed (its own + ${names(tl.granted)})`)];
    if (tl.refused.length) parts.push(h('div', { class: 'bad' }, `refused: ${names(tl.refused)}`));
    if (tl.lost.length) parts.push(h('div', { class: 'bad' }, `lost: ${names(tl.lost)}`));
    tallyEl.replaceChildren(...parts);
  }

  function drawLogs(sc: Scene): void {
    const logs = [...sc.logs.entries()].sort((a, b) => a[0] - b[0]);
    const key = JSON.stringify(logs) + sc.nodes.map((n) => n.role).join() + JSON.stringify([...sc.rollbacks]) + JSON.stringify([...sc.next]);
    if (key === logsKey) return;
    logsKey = key;
    if (!logs.length) {
      logsEl.replaceChildren(h('p', { class: 'dim' }, 'replica logs appear with the first poll'));
      return;
    }
    // One column past the longest log when a follower's next index points there.
    const last = Math.max(...logs.map(([, r]) => r.entries - 1), ...sc.next.values());
    const first = Math.max(0, last - LOG_COLUMNS + 1);
    // The matched indexes are the current leader's (a dead node's last report may say Leader too).
    const leadNode = sc.nodes.find((n) => n.role === 'Leader')?.id;
    const leader = leadNode === undefined ? undefined : sc.logs.get(leadNode);
    const down = new Set(sc.nodes.filter((n) => n.role === 'Down').map((n) => n.id));
    // The role as the ring shows it (a role change may be newer than the last replica report).
    const roleOf = new Map(sc.nodes.map((n) => [n.id, n.role]));
    const rows = logs.map(([node, r]) => {
      const cells = [];
      for (let i = first; i <= last; i++) {
        const run = r.tail.find(([, a, b]) => a <= i && i <= b);
        const nextMark = i === sc.next.get(node) ? ' next-mark' : '';
        if (!run) { cells.push(h('span', { class: `${i < r.entries ? 'entry unknown' : 'entry none'}${nextMark}` })); continue; }
        const committed = r.committed !== null && i <= r.committed;
        const flushed = r.flushed !== null && i <= r.flushed;
        const cls = `entry${committed ? '' : ' uncommitted'}${flushed ? '' : ' unflushed'}${i === r.committed ? ' commit-mark' : ''}${nextMark}`;
        cells.push(h('span', { class: cls, style: `--term: ${termColour(run[0])}`, 'data-index': i, 'data-term': run[0], title: `index ${i}, term ${run[0]}${committed ? ', committed' : ', not committed'}${flushed ? ', fsynced' : ', not fsynced'}` }, run[0]));
      }
      const matched = leader && leader !== r ? leader.matched[node] : undefined;
      const next = leader && leader !== r ? sc.next.get(node) : undefined;
      const rb = sc.rollbacks.get(node);
      const rolled = rb ? h('span', { class: 'rollback-note' }, ` rolled back: discarded ${rb.discarded} from index ${rb.from} (${rb.terms.map(([tm, c]) => `${c}× term ${tm}`).join(', ')})`) : null;
      return h('div', { class: `log-row${down.has(node) ? ' down' : ''}${rb ? ' rolled-back' : ''}`, 'data-node': node },
        h('span', { class: 'log-head' }, `n${node} `, h('span', { class: 'dim' }, `${down.has(node) ? `down; last report: ${r.role}` : roleOf.get(node) ?? r.role} · ${r.entries} entries · commit ${r.committed ?? '—'}${matched !== undefined ? ` · matched ${matched ?? '—'}` : ''}${next !== undefined ? ` · next ${next}` : ''}`), rolled),
        h('div', { class: 'log-cells' }, ...cells));
    });
    logsEl.replaceChildren(h('div', { class: 'dim small' }, `log entries ${first}–${last} (coloured by term; faded: not committed; hatched: not fsynced; bar: commit index; outline: the leader's next index for that follower)`), ...rows);
  }

  return { el, update, frame };
}
