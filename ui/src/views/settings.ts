// Settings before start: fsync, acks, idempotence, election timeouts, heartbeat, pre-vote, partitions.

import { type ClusterSettings, DEFAULT_SETTINGS } from '../api/types';
import type { Ctx, View } from './context';
import { control, h, section } from './dom';

type Field = [keyof ClusterSettings, string, 'number' | 'text' | 'bool' | 'select', string[]?];
const FIELDS: Field[] = [
  ['nodes', 'nodes', 'number'],
  ['partitions', 'partitions', 'number'],
  ['replication_factor', 'replication factor', 'number'],
  ['fsync', 'fsync', 'select', ['always', 'interval:100', 'interval:1000', 'never']],
  ['acks', 'acks', 'select', ['all', '1', '0']],
  ['idempotence', 'idempotent producer', 'bool'],
  ['election_timeout_min_ms', 'election timeout min (ms)', 'number'],
  ['election_timeout_max_ms', 'election timeout max (ms)', 'number'],
  ['heartbeat_ms', 'heartbeat (ms)', 'number'],
  ['pre_vote', 'pre-vote', 'bool'],
];

export function settingsView(ctx: Ctx): View {
  const inputs = new Map<keyof ClusterSettings, HTMLInputElement | HTMLSelectElement>();
  const rows = FIELDS.map(([key, label, kind, options]) => {
    const v = DEFAULT_SETTINGS[key];
    const input = kind === 'select'
      ? h('select', { name: key }, ...options!.map((o) => h('option', { value: o, selected: o === v }, o)))
      : h('input', { name: key, type: kind === 'bool' ? 'checkbox' : kind, value: String(v), checked: kind === 'bool' && v === true });
    inputs.set(key, input);
    return h('label', { class: `field ${kind}` }, h('span', {}, label), input);
  });
  const note = h('p', { class: 'prevote-note', hidden: true }, 'Refused by the broker: openraft 0.9 has no pre-vote. Untick it to start.');
  const start = control('Start cluster', () => ctx.run('start cluster', () => ctx.client.startCluster(read())), { id: 'start-cluster' });
  const stop = control('Stop cluster', () => ctx.run('stop cluster', ctx.client.stopCluster), { id: 'stop-cluster' });
  const current = h('p', { class: 'hint' });
  const el = section('settings', 'Cluster', h('form', { class: 'settings', onsubmit: ((e: Event) => e.preventDefault()) as EventListener }, ...rows), note, h('div', { class: 'toolbar' }, start, stop), current);
  inputs.get('pre_vote')!.addEventListener('change', () => update());

  function read(): ClusterSettings {
    const s = { ...DEFAULT_SETTINGS } as Record<string, unknown>;
    for (const [key, , kind] of FIELDS) {
      const el = inputs.get(key)!;
      s[key] = kind === 'bool' ? (el as HTMLInputElement).checked : kind === 'number' ? Number(el.value) : el.value;
    }
    return s as unknown as ClusterSettings;
  }

  function update(): void {
    const m = ctx.store.live;
    const preVote = (inputs.get('pre_vote') as HTMLInputElement).checked;
    note.hidden = !preVote;
    start.dataset.off = m.running || preVote ? '1' : '0';
    stop.dataset.off = m.running ? '0' : '1';
    for (const i of inputs.values()) i.disabled = m.running || !ctx.canControl();
    const s = m.state?.settings;
    current.textContent = m.running && s ? `running: ${s.nodes} nodes · fsync ${s.fsync} · acks ${s.acks} · election ${s.election_timeout_min_ms}–${s.election_timeout_max_ms} ms · bootstrap ${m.state?.bootstrap ?? ''}` : 'not running';
  }
  return { el, update };
}
