// Topology: nodes on a circle with role, term and resources; links with their mode; click menus;
// drag a stroke across links to cut them.
//
// The SVG is updated in place (one <g> per node and per link, keyed by id; only attributes and text
// change, elements come and go only when the set does). Rebuilding it on every update lost clicks
// that landed between two frames and made hover and keyboard focus flicker.

import type { LinkMode, LinkView } from '../api/types';
import { type Model, groupNames, leaderOf, termOf } from '../state/model';
import type { Ctx, View } from './context';
import { control, fmtBytes, h, s, section, setText } from './dom';
import { crossedBy, type Pt, type Segment } from './geom';

const W = 440;
const R = 135;
/** A press that moves less than this (viewBox units) is a click, not a cut stroke. */
const DRAG_MIN = 8;
/** Leader labels drawn under a node before they collapse into one count. */
const LABELS_PER_NODE = 6;
const NODE_FAULTS: [string, string][] = [['kill', 'Kill'], ['stop', 'Stop'], ['pause', 'Pause'], ['resume', 'Resume'], ['restart', 'Restart'], ['power_cut', 'Power cut'], ['slow_disk', 'Slow disk'], ['fsync_fail', 'Fail disk'], ['isolate', 'Isolate']];

const linkEnd = (e: LinkView['from']) => (typeof e === 'object' && e !== null && 'node' in e ? e.node : null);
const modeLabel = (m: LinkMode) => (m.kind === 'delay' ? `delay ${m.ms ?? ''}ms` : m.kind);

/** Setters that touch the DOM only on a real change (no style recalc, no lost hover). */
function attr(el: Element, k: string, v: string | number | null): void {
  if (v === null) return void (el.hasAttribute(k) && el.removeAttribute(k));
  const str = String(v);
  if (el.getAttribute(k) !== str) el.setAttribute(k, str);
}
function line(el: Element, a: Pt, b: Pt): void {
  attr(el, 'x1', a.x); attr(el, 'y1', a.y); attr(el, 'x2', b.x); attr(el, 'y2', b.y);
}

interface NodeEls { g: SVGElement; ring: SVGElement; state: SVGElement; term: SVGElement; res: SVGElement; labels: SVGElement }
interface LinkEls { g: SVGElement; fwd: SVGElement; rev: SVGElement; hit: SVGElement; label: SVGElement | null }

/** Node positions on the circle, first node at the top. */
function layoutNodes(ids: number[]): Map<number, Pt> {
  return new Map(ids.map((id, i) => {
    const a = -Math.PI / 2 + (i * 2 * Math.PI) / Math.max(ids.length, 1);
    return [id, { x: W / 2 + R * Math.cos(a), y: W / 2 + R * Math.sin(a) }];
  }));
}

/** Links between two placed nodes, with the key their <g> is kept under. */
function placedLinks(m: Model, pos: Map<number, Pt>): { key: string; a: number; b: number; pa: Pt; pb: Pt; l: LinkView }[] {
  const out = [];
  for (const l of m.links) {
    const a = linkEnd(l.from), b = linkEnd(l.to);
    const pa = a === null ? undefined : pos.get(a), pb = b === null ? undefined : pos.get(b);
    if (a !== null && b !== null && pa && pb) out.push({ key: `${a}-${b}`, a, b, pa, pb, l });
  }
  return out;
}

export function topologyView(ctx: Ctx): View {
  const svg = s('svg', { viewBox: `0 0 ${W} ${W}`, class: 'topology', role: 'img', 'aria-label': 'cluster topology' }) as SVGSVGElement;
  const linkLayer = s('g', { class: 'links' });
  const nodeLayer = s('g', { class: 'nodes' });
  const empty = s('text', { x: W / 2, y: W / 2, class: 'empty' });
  const stroke = s('line', { class: 'cut-stroke', display: 'none' });
  svg.append(linkLayer, nodeLayer, empty, stroke);
  const menu = h('div', { class: 'menu', hidden: true });
  const heal = control('Heal all links', () => ctx.run('heal all', ctx.client.healAll), { id: 'heal-all' });
  const legend = h('div', { class: 'legend' },
    h('span', { class: 'lk pass' }, 'pass'), h('span', { class: 'lk delay' }, 'delay'), h('span', { class: 'lk blackhole' }, 'blackhole'), h('span', { class: 'lk reset' }, 'reset / cut'),
    h('span', { class: 'ctrl-key' }, '◎ controller leader'), h('span', { class: 'hint' }, 'drag across links to cut them'));
  const el = section('topology', 'Topology', h('div', { class: 'toolbar' }, heal), h('div', { class: 'svgwrap' }, svg, menu), legend);

  const nodes = new Map<number, NodeEls>();
  const links = new Map<string, LinkEls>();
  let pos = new Map<number, Pt>();
  let segments: Segment<[number, number]>[] = [];

  const closeMenu = () => (menu.hidden = true);
  document.addEventListener('keydown', (e) => e.key === 'Escape' && closeMenu());
  el.addEventListener('click', (e) => {
    if (!(e.target as Element).closest('.menu, [data-node], [data-link]')) closeMenu();
  });

  function openMenu(p: Pt, title: string, items: HTMLElement[]): void {
    menu.replaceChildren(h('div', { class: 'menu-title' }, title), ...items, h('button', { class: 'menu-close', onclick: closeMenu }, 'Close'));
    menu.style.left = `${(p.x / W) * 100}%`;
    menu.style.top = `${(p.y / W) * 100}%`;
    menu.hidden = false;
    const ro = !ctx.canControl();
    menu.querySelectorAll<HTMLButtonElement>('[data-control]').forEach((b) => (b.disabled = ro));
    if (ro) menu.append(h('div', { class: 'ro-note' }, 'read-only: ask the instructor'));
  }

  const cutBoth = (a: number, b: number) => ctx.run(`cut ${a}↔${b}`, () => ctx.client.cutLink(a, b, true));

  function nodeMenu(id: number): void {
    const items = NODE_FAULTS.map(([f, label]) => control(label, () => { closeMenu(); ctx.run(`${label} node ${id}`, () => ctx.client.fault(f, `node:${id}`)); }, { 'data-fault': f }));
    openMenu(pos.get(id) ?? { x: W / 2, y: W / 2 }, `Node ${id}`, items);
  }

  function linkMenu(a: number, b: number): void {
    const pa = pos.get(a), pb = pos.get(b);
    const mid = pa && pb ? { x: (pa.x + pb.x) / 2, y: (pa.y + pb.y) / 2 } : { x: W / 2, y: W / 2 };
    openMenu(mid, `Link ${a} ↔ ${b}`, [
      control(`Cut ${a} → ${b}`, () => { closeMenu(); ctx.run(`cut ${a}→${b}`, () => ctx.client.cutLink(a, b, false)); }, { 'data-cut': 'one' }),
      control(`Cut ${b} → ${a}`, () => { closeMenu(); ctx.run(`cut ${b}→${a}`, () => ctx.client.cutLink(b, a, false)); }),
      control('Cut both ways', () => { closeMenu(); cutBoth(a, b); }, { 'data-cut': 'both' }),
      control('Heal (all links)', () => { closeMenu(); ctx.run('heal all', ctx.client.healAll); }, { 'data-cut': 'heal' }),
    ]);
  }

  function newNode(id: number): NodeEls {
    const els: NodeEls = {
      g: s('g', { 'data-node': id, tabindex: 0 }),
      ring: s('circle', { r: 53, class: 'ctrl-ring' }),
      state: s('text', { y: 2, class: 'node-state' }),
      term: s('text', { y: 18, class: 'node-term' }),
      res: s('text', { y: 33, class: 'node-res' }),
      labels: s('g', { class: 'node-labels' }),
    };
    els.g.append(s('circle', { r: 46, class: 'node-circle' }), els.ring, s('text', { y: -16, class: 'node-id' }, `n${id}`), els.state, els.term, els.res, els.labels);
    els.g.addEventListener('click', (e) => { e.stopPropagation(); nodeMenu(id); });
    els.g.addEventListener('keydown', (e) => (e as KeyboardEvent).key === 'Enter' && nodeMenu(id));
    return els;
  }

  function newLink(a: number, b: number): LinkEls {
    const els: LinkEls = { g: s('g', { class: 'link', 'data-link': `${a}-${b}` }), fwd: s('line', {}), rev: s('line', {}), hit: s('line', { class: 'lk-hit' }), label: null };
    els.g.append(els.fwd, els.rev, els.hit);
    els.g.addEventListener('click', (e) => { e.stopPropagation(); linkMenu(a, b); });
    return els;
  }

  function updateNode(m: Model, id: number, p: Pt, groups: string[], els: NodeEls): void {
    const n = m.nodes.get(id)!;
    const ctrl = m.controllerLeader === id && leaderOf(m, 'controller')?.node === id;
    attr(els.g, 'class', `node ${n.state}${ctrl ? ' controller' : ''}`);
    attr(els.g, 'transform', `translate(${p.x},${p.y})`);
    attr(els.ring, 'display', ctrl ? null : 'none');
    setText(els.state, n.state);
    setText(els.term, ctrl ? `controller t${termOf(m, 'controller')}` : `term ${termOf(m, 'controller')}`);
    // A stopped or killed node has no process: its last sample would be a stale reading.
    setText(els.res, n.state === 'stopped' || n.state === 'died' ? 'no process' : `cpu ${n.cpu_percent.toFixed(0)}% · ${fmtBytes(n.memory_bytes)}`);
    // Leader labels stack away from the centre: above nodes in the top half, below the others.
    const led = groups.filter((g) => g !== 'controller' && !g.startsWith('__') && leaderOf(m, g)?.node === id);
    const isolatedIn = groups.filter((g) => m.groups.get(g)?.get(id)?.role === 'IsolatedLeader');
    // A label per partition up to a few; past that one count (a node may lead thousands).
    const leads = led.length <= LABELS_PER_NODE ? led.map((g) => ['node-leads', `leads ${g} t${termOf(m, g)}`]) : [['node-leads', `leads ${led.length} partitions`]];
    const isolated = isolatedIn.length <= LABELS_PER_NODE ? isolatedIn.map((g) => ['node-isolated', `⚠ isolated leader ${g}`]) : [['node-isolated', `⚠ isolated leader of ${isolatedIn.length} groups`]];
    const rows = [...leads, ...isolated];
    const up = p.y < W / 2;
    const key = `${up}|${rows.join('|')}`;
    if (els.labels.dataset.key === key) return;
    els.labels.dataset.key = key;
    els.labels.replaceChildren(...rows.map(([cls, t], i) =>
      s('text', { y: up ? -60 - (leads.length - 1 - i) * 15 : 62 + i * 15, class: cls }, t)));
  }

  function updateLink(pa: Pt, pb: Pt, a: number, b: number, l: LinkView, els: LinkEls): void {
    const dx = pb.x - pa.x, dy = pb.y - pa.y, len = Math.hypot(dx, dy) || 1;
    const ox = (-dy / len) * 5, oy = (dx / len) * 5;
    line(els.fwd, { x: pa.x + ox, y: pa.y + oy }, { x: pb.x + ox, y: pb.y + oy });
    line(els.rev, { x: pa.x - ox, y: pa.y - oy }, { x: pb.x - ox, y: pb.y - oy });
    line(els.hit, pa, pb);
    attr(els.fwd, 'class', `lk-line ${l.mode.kind}`);
    attr(els.rev, 'class', `lk-line ${l.reverse_mode.kind}`);
    const cut = l.mode.kind !== 'pass' || l.reverse_mode.kind !== 'pass';
    if (!cut) {
      els.label?.remove();
      els.label = null;
      return;
    }
    const label = l.mode.kind === l.reverse_mode.kind ? `${a}↔${b} ${modeLabel(l.mode)}` : [l.mode.kind !== 'pass' ? `${a}→${b} ${modeLabel(l.mode)}` : '', l.reverse_mode.kind !== 'pass' ? `${b}→${a} ${modeLabel(l.reverse_mode)}` : ''].filter(Boolean).join(' · ');
    if (!els.label) els.g.append((els.label = s('text', { class: 'lk-label' })));
    attr(els.label, 'x', (pa.x + pb.x) / 2);
    attr(els.label, 'y', (pa.y + pb.y) / 2 - 8);
    setText(els.label, label);
  }

  /** Creates what is new, removes what is gone, keeps the rest (in key order). */
  function reconcile<K, E extends { g: SVGElement }>(have: Map<K, E>, want: K[], make: (k: K) => E, layer: SVGElement): void {
    const keep = new Set(want);
    for (const [k, e] of have) if (!keep.has(k)) { e.g.remove(); have.delete(k); }
    want.forEach((k, i) => {
      let e = have.get(k);
      if (!e) have.set(k, (e = make(k)));
      if (layer.children[i] !== e.g) layer.insertBefore(e.g, layer.children[i] ?? null);
    });
  }

  function update(): void {
    const m = ctx.model();
    const ids = [...m.nodes.keys()].sort((a, b) => a - b);
    pos = layoutNodes(ids);
    const placed = placedLinks(m, pos);
    segments = placed.map((p) => ({ key: [p.a, p.b], a: p.pa, b: p.pb }));
    reconcile(links, placed.map((p) => p.key), (k) => newLink(...(k.split('-').map(Number) as [number, number])), linkLayer);
    for (const p of placed) updateLink(p.pa, p.pb, p.a, p.b, p.l, links.get(p.key)!);
    reconcile(nodes, ids, newNode, nodeLayer);
    const groups = groupNames(m);
    for (const id of ids) updateNode(m, id, pos.get(id)!, groups, nodes.get(id)!);
    attr(empty, 'display', ids.length ? 'none' : null);
    setText(empty, m.running ? 'waiting for nodes…' : 'no cluster: start one in Settings');
  }

  bindCutStroke(svg, stroke, () => ctx.canControl(), closeMenu, (from, to) => {
    // One command per unordered pair: a link may be listed once per direction.
    const pairs = new Map(crossedBy(from, to, segments).map(([a, b]) => [`${Math.min(a, b)}-${Math.max(a, b)}`, [a, b] as const]));
    void (async () => { for (const [a, b] of pairs.values()) await cutBoth(a, b); })();
  });

  return { el, update };
}

/**
 * Drag to cut: press, drag a stroke across the diagram, release; `onCut` gets the stroke in
 * viewBox units. A press that barely moves stays a click (node and link menus). Read-only
 * viewers get no stroke at all.
 */
function bindCutStroke(svg: SVGSVGElement, stroke: SVGElement, allowed: () => boolean, started: () => void, onCut: (from: Pt, to: Pt) => void): void {
  let drag: { id: number; from: Pt; to: Pt; moved: boolean } | null = null;
  let swallowClick = false;
  const toSvg = (e: PointerEvent): Pt => {
    const ctm = svg.getScreenCTM();
    if (!ctm) return { x: 0, y: 0 };
    const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
    return { x: p.x, y: p.y };
  };
  const end = () => {
    drag = null;
    attr(stroke, 'display', 'none');
  };
  svg.addEventListener('pointerdown', (e) => {
    swallowClick = false;
    if (e.button !== 0 || !allowed()) return;
    const p = toSvg(e);
    drag = { id: e.pointerId, from: p, to: p, moved: false };
  });
  svg.addEventListener('pointermove', (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    drag.to = toSvg(e);
    if (!drag.moved) {
      if (Math.hypot(drag.to.x - drag.from.x, drag.to.y - drag.from.y) < DRAG_MIN) return;
      drag.moved = true;
      svg.setPointerCapture(e.pointerId); // keep the stroke when the pointer leaves the diagram
      started();
      attr(stroke, 'display', null);
    }
    line(stroke, drag.from, drag.to);
  });
  svg.addEventListener('pointerup', (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    const { from, to, moved } = drag;
    end();
    if (!moved) return;
    swallowClick = true; // the release of a stroke is not a click on what it ended over
    onCut(from, to);
  });
  svg.addEventListener('pointercancel', end);
  svg.addEventListener('click', (e) => {
    if (!swallowClick) return;
    swallowClick = false;
    e.stopPropagation();
  }, true);
}
