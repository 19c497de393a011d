// Raft groups: one row per group (controller + each partition), one column per node.

import { groupNames, leaderOf, termOf } from '../state/model';
import type { Ctx, View } from './context';
import { h, section } from './dom';

const ROLE_CLASS: Record<string, string> = { Leader: 'leader', Follower: 'follower', Candidate: 'candidate', Learner: 'learner', IsolatedLeader: 'isolated', Shutdown: 'shutdown' };

export function groupsView(ctx: Ctx): View {
  const table = h('table', { class: 'groups' });
  const showInternal = h('input', { type: 'checkbox', id: 'show-internal' });
  const el = section('groups', 'Raft groups',
    h('label', { class: 'opt' }, showInternal, ' internal topics'),
    h('div', { class: 'scroll' }, table),
    h('p', { class: 'hint' }, 'Cell: role · applied / last log index · matched (as the leader sees it). ', h('span', { class: 'role candidate' }, 'Candidate'), ' = election in progress; ', h('span', { class: 'role isolated' }, 'IsolatedLeader'), ' = believes it leads without a quorum.'));
  showInternal.addEventListener('change', () => update());

  function update(): void {
    const m = ctx.model();
    const nodes = [...m.nodes.keys()].sort((a, b) => a - b);
    const names = groupNames(m).filter((g) => showInternal.checked || !g.startsWith('__'));
    const head = h('tr', {}, h('th', {}, 'group'), h('th', {}, 'term'), h('th', {}, 'leader'), ...nodes.map((n) => h('th', {}, `node ${n}`)));
    const rows = names.map((name) => {
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
        const mt = matched[String(n)];
        return h('td', { 'data-node': n, 'data-role': g.role },
          role, h('span', { class: 'term-tag' }, ` t${g.term}`), h('div', { class: 'idx' }, idx, mt !== undefined ? h('span', { class: 'matched' }, ` · m${mt}`) : null));
      });
      return h('tr', { class: `${electing ? 'electing' : ''} ${isolated ? 'has-isolated' : ''}`, 'data-group': name },
        h('th', {}, name), h('td', { class: 'term' }, termOf(m, name)),
        h('td', { class: 'leader-cell', 'data-leader': lead?.node ?? '' }, lead ? `n${lead.node}` : electing ? 'electing…' : 'none'),
        ...cells);
    });
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 3 + nodes.length, class: 'empty' }, 'no groups yet')));
    table.replaceChildren(h('thead', {}, head), h('tbody', {}, ...rows));
  }
  return { el, update };
}
