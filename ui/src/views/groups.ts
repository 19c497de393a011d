// Raft groups: one row per group (controller + each partition), one column per node. Above the
// table, counts over every group (leaders per node, groups without a leader, elections running);
// at 1,000+ partitions the table shows one filtered page, never a row per group.

import { groupNames, leaderOf, termOf } from '../state/model';
import type { Ctx, View } from './context';
import { h, KeyedRows, section, setText } from './dom';
import { paging } from './paging';

const ROLE_CLASS: Record<string, string> = { Leader: 'leader', Follower: 'follower', Candidate: 'candidate', Learner: 'learner', IsolatedLeader: 'isolated', Shutdown: 'shutdown' };
/** Rows built per update. */
const PAGE_ROWS = 100;

interface Row { name: string; nodes: number[] }

export function groupsView(ctx: Ctx): View {
  const head = h('thead', {});
  const body = h('tbody', {});
  const table = h('table', { class: 'groups' }, head, body);
  const rows = new KeyedRows<Row>((r) => `${r.name}|${r.nodes.join(',')}`, (r) => rowKey(r), (r) => buildRow(r));
  const showInternal = h('input', { type: 'checkbox', id: 'show-internal' });
  const onlyTrouble = h('input', { type: 'checkbox', id: 'groups-trouble' });
  const summary = h('p', { class: 'groups-summary', id: 'groups-summary' });
  const pages = paging('groups', PAGE_ROWS, 'groups (name or topic)', () => update());
  const el = section('groups', 'Raft groups',
    h('div', { class: 'opts' }, h('label', {}, onlyTrouble, ' only leaderless / electing'), h('label', {}, showInternal, ' internal topics')),
    summary, pages.el,
    h('div', { class: 'scroll' }, table),
    h('p', { class: 'hint' }, 'Cell: role · applied / last log index · matched (as the leader sees it). ', h('span', { class: 'role candidate' }, 'Candidate'), ' = election in progress; ', h('span', { class: 'role isolated' }, 'IsolatedLeader'), ' = believes it leads without a quorum.'));
  showInternal.addEventListener('change', () => update());
  onlyTrouble.addEventListener('change', () => update());

  function update(): void {
    const m = ctx.model();
    const nodes = [...m.nodes.keys()].sort((a, b) => a - b);
    const all = groupNames(m).filter((g) => showInternal.checked || !g.startsWith('__'));
    // One pass over every group for the counts; rows only for the page shown.
    const led = new Map<number, number>();
    let leaderless = 0, electing = 0;
    const trouble = new Set<string>();
    for (const name of all) {
      const lead = leaderOf(m, name);
      if (lead) led.set(lead.node, (led.get(lead.node) ?? 0) + 1);
      else leaderless++;
      const per = [...m.groups.get(name)!.values()];
      const candidate = per.some((g) => g.role === 'Candidate');
      if (candidate) electing++;
      if (!lead || candidate || per.some((g) => g.role === 'IsolatedLeader')) trouble.add(name);
    }
    const hosted = Math.max(0, ...[...m.raftSummaries.values()].map((s) => s.groups));
    const known = hosted > m.groups.size ? ` · details for ${m.groups.size.toLocaleString('en')} of ${hosted.toLocaleString('en')} so far` : '';
    const silent = m.silentNodes.length ? ` · ${m.silentNodes.map((n) => `n${n}`).join(', ')} did not answer: last report shown` : '';
    setText(summary, all.length === 0 ? '' :
      `${all.length.toLocaleString('en')} groups · leaders ${nodes.map((n) => `n${n} ${led.get(n) ?? 0}`).join(' · ')} · without leader ${leaderless} · electing ${electing}${known}${silent}`);
    summary.classList.toggle('warn', leaderless > 0 || electing > 0);
    const q = pages.filter();
    const matching = all.filter((g) => (!onlyTrouble.checked || trouble.has(g)) && (!q || g.toLowerCase().includes(q)));
    const nodesKey = nodes.join(',');
    if (head.dataset.nodes !== nodesKey) {
      head.dataset.nodes = nodesKey;
      head.replaceChildren(h('tr', {}, h('th', {}, 'group'), h('th', {}, 'term'), h('th', {}, 'leader'), ...nodes.map((n) => h('th', {}, `node ${n}`))));
    }
    const shown = pages.page(matching, all.length);
    const empty = shown.length ? [] : [h('tr', {}, h('td', { colspan: 3 + nodes.length, class: 'empty' }, all.length ? 'no group matches' : 'no groups yet'))];
    rows.render(body, shown.map((name) => ({ name, nodes })), empty);
  }

  /** What a row shows, as a string: the row is rebuilt only when this changes. */
  function rowKey({ name, nodes }: Row): string {
    const m = ctx.model();
    const per = m.groups.get(name)!;
    return `${leaderOf(m, name)?.node}|${termOf(m, name)}|${nodes.map((n) => {
      const g = per.get(n);
      return g ? `${n}:${g.role}:${g.term}:${g.applied_index}:${g.last_log_index}:${JSON.stringify(g.matched ?? null)}` : `${n}:-`;
    }).join('|')}`;
  }

  function buildRow({ name, nodes }: Row): HTMLElement {
    const m = ctx.model();
    const per = m.groups.get(name)!;
    const lead = leaderOf(m, name);
    const matched = lead ? per.get(lead.node)?.matched ?? {} : {};
    const electing = [...per.values()].some((g) => g.role === 'Candidate');
    const isolated = [...per.values()].some((g) => g.role === 'IsolatedLeader');
    const cells = nodes.map((n) => {
      const g = per.get(n);
      if (!g) return h('td', { class: 'na' }, '—');
      const role = h('span', { class: `role ${ROLE_CLASS[g.role] ?? ''}` }, g.role === 'IsolatedLeader' ? '⚠ IsolatedLeader' : g.role);
      const idx = `${g.applied_index ?? '·'} / ${g.last_log_index ?? '·'}`;
      const mt = matched[n];
      return h('td', { 'data-node': n, 'data-role': g.role },
        role, h('span', { class: 'term-tag' }, ` t${g.term}`), h('div', { class: 'idx' }, idx, mt !== undefined ? h('span', { class: 'matched' }, ` · m${mt}`) : null));
    });
    return h('tr', { class: `${electing ? 'electing' : ''} ${isolated ? 'has-isolated' : ''}`, 'data-group': name },
      h('th', {}, name), h('td', { class: 'term' }, termOf(m, name)),
      h('td', { class: 'leader-cell', 'data-leader': lead?.node ?? '' }, lead ? `n${lead.node}` : electing ? 'electing…' : 'none'),
      ...cells);
  }
  return { el, update };
}
