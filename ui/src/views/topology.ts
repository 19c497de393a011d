// Topology: nodes on a circle with role, term and resources; links with their mode; click menus.

import type { LinkMode, LinkView } from '../api/types';
import { leaderOf, termOf, groupNames } from '../state/model';
import type { Ctx, View } from './context';
import { control, fmtBytes, h, s, section } from './dom';

const W = 440;
const R = 135;
const NODE_FAULTS: [string, string][] = [['kill', 'Kill'], ['stop', 'Stop'], ['pause', 'Pause'], ['resume', 'Resume'], ['restart', 'Restart'], ['power_cut', 'Power cut'], ['slow_disk', 'Slow disk'], ['isolate', 'Isolate']];

const linkEnd = (e: LinkView['from']) => (typeof e === 'object' && e !== null && 'node' in e ? e.node : null);
const modeLabel = (m: LinkMode) => (m.kind === 'delay' ? `delay ${m.ms ?? ''}ms` : m.kind);

export function topologyView(ctx: Ctx): View {
  const svg = s('svg', { viewBox: `0 0 ${W} ${W}`, class: 'topology', role: 'img', 'aria-label': 'cluster topology' }) as SVGSVGElement;
  const menu = h('div', { class: 'menu', hidden: true });
  const heal = control('Heal all links', () => ctx.run('heal all', ctx.client.healAll), { id: 'heal-all' });
  const legend = h('div', { class: 'legend' },
    h('span', { class: 'lk pass' }, 'pass'), h('span', { class: 'lk delay' }, 'delay'), h('span', { class: 'lk blackhole' }, 'blackhole'), h('span', { class: 'lk reset' }, 'reset / cut'),
    h('span', { class: 'ctrl-key' }, '◎ controller leader'));
  const el = section('topology', 'Topology', h('div', { class: 'toolbar' }, heal), h('div', { class: 'svgwrap' }, svg, menu), legend);

  const closeMenu = () => (menu.hidden = true);
  document.addEventListener('keydown', (e) => e.key === 'Escape' && closeMenu());
  el.addEventListener('click', (e) => {
    if (!(e.target as Element).closest('.menu, [data-node], [data-link]')) closeMenu();
  });

  function openMenu(x: number, y: number, title: string, items: HTMLElement[]): void {
    menu.replaceChildren(h('div', { class: 'menu-title' }, title), ...items, h('button', { class: 'menu-close', onclick: closeMenu }, 'Close'));
    menu.style.left = `${(x / W) * 100}%`;
    menu.style.top = `${(y / W) * 100}%`;
    menu.hidden = false;
    const ro = !ctx.canControl();
    menu.querySelectorAll<HTMLButtonElement>('[data-control]').forEach((b) => (b.disabled = ro));
    if (ro) menu.append(h('div', { class: 'ro-note' }, 'read-only: ask the instructor'));
  }

  function nodeMenu(id: number, x: number, y: number): void {
    const items = NODE_FAULTS.map(([f, label]) => control(label, () => { closeMenu(); ctx.run(`${label} node ${id}`, () => ctx.client.fault(f, `node:${id}`)); }, { 'data-fault': f }));
    openMenu(x, y, `Node ${id}`, items);
  }

  function linkMenu(a: number, b: number, x: number, y: number): void {
    openMenu(x, y, `Link ${a} ↔ ${b}`, [
      control(`Cut ${a} → ${b}`, () => { closeMenu(); ctx.run(`cut ${a}→${b}`, () => ctx.client.cutLink(a, b, false)); }, { 'data-cut': 'one' }),
      control(`Cut ${b} → ${a}`, () => { closeMenu(); ctx.run(`cut ${b}→${a}`, () => ctx.client.cutLink(b, a, false)); }),
      control('Cut both ways', () => { closeMenu(); ctx.run(`cut ${a}↔${b}`, () => ctx.client.cutLink(a, b, true)); }, { 'data-cut': 'both' }),
      control('Heal (all links)', () => { closeMenu(); ctx.run('heal all', ctx.client.healAll); }, { 'data-cut': 'heal' }),
    ]);
  }

  function update(): void {
    const m = ctx.model();
    const ids = [...m.nodes.keys()].sort((a, b) => a - b);
    const pos = new Map(ids.map((id, i) => {
      const a = -Math.PI / 2 + (i * 2 * Math.PI) / Math.max(ids.length, 1);
      return [id, { x: W / 2 + R * Math.cos(a), y: W / 2 + R * Math.sin(a) }];
    }));
    const layer: SVGElement[] = [];
    for (const l of m.links) {
      const a = linkEnd(l.from);
      const b = linkEnd(l.to);
      const pa = a === null ? undefined : pos.get(a);
      const pb = b === null ? undefined : pos.get(b);
      if (!pa || !pb || a === null || b === null) continue;
      const dx = pb.x - pa.x, dy = pb.y - pa.y, len = Math.hypot(dx, dy) || 1;
      const ox = (-dy / len) * 5, oy = (dx / len) * 5;
      const g = s('g', { class: 'link', 'data-link': `${a}-${b}` });
      g.append(
        s('line', { x1: pa.x + ox, y1: pa.y + oy, x2: pb.x + ox, y2: pb.y + oy, class: `lk-line ${l.mode.kind}` }),
        s('line', { x1: pa.x - ox, y1: pa.y - oy, x2: pb.x - ox, y2: pb.y - oy, class: `lk-line ${l.reverse_mode.kind}` }),
        s('line', { x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y, class: 'lk-hit' }),
      );
      const cut = l.mode.kind !== 'pass' || l.reverse_mode.kind !== 'pass';
      if (cut) {
        const label = l.mode.kind === l.reverse_mode.kind ? `${a}↔${b} ${modeLabel(l.mode)}` : [l.mode.kind !== 'pass' ? `${a}→${b} ${modeLabel(l.mode)}` : '', l.reverse_mode.kind !== 'pass' ? `${b}→${a} ${modeLabel(l.reverse_mode)}` : ''].filter(Boolean).join(' · ');
        g.append(s('text', { x: (pa.x + pb.x) / 2, y: (pa.y + pb.y) / 2 - 8, class: 'lk-label' }, label));
      }
      const mx = (pa.x + pb.x) / 2, my = (pa.y + pb.y) / 2;
      g.addEventListener('click', (e) => { e.stopPropagation(); linkMenu(a, b, mx, my); });
      layer.push(g);
    }
    const groups = groupNames(m);
    for (const id of ids) {
      const n = m.nodes.get(id)!;
      const p = pos.get(id)!;
      const leads = groups.filter((g) => g !== 'controller' && !g.startsWith('__') && leaderOf(m, g)?.node === id);
      const isolated = groups.filter((g) => m.groups.get(g)?.get(id)?.role === 'IsolatedLeader');
      const ctrl = m.controllerLeader === id && leaderOf(m, 'controller')?.node === id;
      const g = s('g', { class: `node ${n.state}${ctrl ? ' controller' : ''}`, 'data-node': id, transform: `translate(${p.x},${p.y})`, tabindex: 0 });
      g.append(
        s('circle', { r: 46, class: 'node-circle' }),
        ...(ctrl ? [s('circle', { r: 53, class: 'ctrl-ring' })] : []),
        s('text', { y: -16, class: 'node-id' }, `n${id}`),
        s('text', { y: 2, class: 'node-state' }, n.state),
        s('text', { y: 18, class: 'node-term' }, ctrl ? `controller t${termOf(m, 'controller')}` : `term ${termOf(m, 'controller')}`),
        s('text', { y: 33, class: 'node-res' }, `cpu ${n.cpu_percent.toFixed(0)}% · ${fmtBytes(n.memory_bytes)}`),
        ...leads.map((l, i) => s('text', { y: p.y < W / 2 ? -60 - (leads.length - 1 - i) * 15 : 62 + i * 15, class: 'node-leads' }, `leads ${l} t${termOf(m, l)}`)),
        ...isolated.map((l, i) => s('text', { y: p.y < W / 2 ? -60 - (leads.length + i) * 15 : 62 + (leads.length + i) * 15, class: 'node-isolated' }, `⚠ isolated leader ${l}`)),
      );
      g.addEventListener('click', (e) => { e.stopPropagation(); nodeMenu(id, p.x, p.y); });
      layer.push(g);
    }
    if (!ids.length) layer.push(s('text', { x: W / 2, y: W / 2, class: 'empty' }, m.running ? 'waiting for nodes…' : 'no cluster: start one in Settings'));
    svg.replaceChildren(...layer);
  }

  return { el, update };
}
