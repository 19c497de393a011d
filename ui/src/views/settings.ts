// Settings before start: fsync, acks, idempotence, election timeouts, heartbeat, pre-vote, partitions.

import { type ClusterSettings, DEFAULT_SETTINGS, TEACHING_TEMPO } from '../api/types';
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

export interface SettingsView extends View {
  /** Fills the form (e.g. with the remembered settings of the last cluster started). */
  apply(settings: Partial<ClusterSettings>): void;
}

export function settingsView(ctx: Ctx): SettingsView {
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
  // Presets for the Raft timing fields: a room follows an election at a tenth of the speed.
  const tempo = (values: Partial<ClusterSettings>) => () => {
    for (const [k, v] of Object.entries(values)) {
      inputs.get(k as keyof ClusterSettings)!.value = String(v);
      edited.add(k as keyof ClusterSettings);
    }
  };
  const teaching = control('Teaching tempo', tempo(TEACHING_TEMPO), { id: 'teaching-tempo', title: `heartbeat ${TEACHING_TEMPO.heartbeat_ms} ms, election timeout ${TEACHING_TEMPO.election_timeout_min_ms}–${TEACHING_TEMPO.election_timeout_max_ms} ms` });
  const normal = control('Normal tempo', tempo({ election_timeout_min_ms: DEFAULT_SETTINGS.election_timeout_min_ms, election_timeout_max_ms: DEFAULT_SETTINGS.election_timeout_max_ms, heartbeat_ms: DEFAULT_SETTINGS.heartbeat_ms }), { id: 'normal-tempo' });
  const el = section('settings', 'Cluster', h('form', { class: 'settings', onsubmit: ((e: Event) => e.preventDefault()) as EventListener }, ...rows), note, h('div', { class: 'toolbar' }, start, stop, teaching, normal), current);
  inputs.get('pre_vote')!.addEventListener('change', () => update());
  const edited = new Set<keyof ClusterSettings>();
  for (const [key, input] of inputs) {
    input.addEventListener('input', () => edited.add(key));
    input.addEventListener('change', () => edited.add(key));
  }

  function read(): ClusterSettings {
    const s = { ...DEFAULT_SETTINGS } as Record<string, unknown>;
    for (const [key, , kind] of FIELDS) {
      const el = inputs.get(key)!;
      s[key] = kind === 'bool' ? (el as HTMLInputElement).checked : kind === 'number' ? Number(el.value) : el.value;
    }
    return s as unknown as ClusterSettings;
  }

  // The running cluster's settings last shown in the (then disabled) form; every snapshot
  // carries a new copy, so they are compared by value.
  let shown = '';

  function update(): void {
    const m = ctx.store.live;
    const running = m.running ? m.state?.settings : undefined;
    // While a cluster runs the form shows its settings, not the defaults or the remembered ones
    // (which of those a reload showed depended on whether the first snapshot came first).
    const key = running ? JSON.stringify(running) : '';
    if (running && key !== shown) fill(running, false);
    shown = key;
    const preVote = (inputs.get('pre_vote') as HTMLInputElement).checked;
    note.hidden = !preVote;
    start.dataset.off = m.running || preVote ? '1' : '0';
    stop.dataset.off = m.running ? '0' : '1';
    teaching.dataset.off = normal.dataset.off = m.running ? '1' : '0';
    for (const i of inputs.values()) i.disabled = m.running || !ctx.canControl();
    current.textContent = running ? `running: ${running.nodes} nodes · fsync ${running.fsync} · acks ${running.acks} · election ${running.election_timeout_min_ms}–${running.election_timeout_max_ms} ms · bootstrap ${m.state?.bootstrap ?? ''}` : 'not running';
  }
  function fill(settings: Partial<ClusterSettings>, keepEdited: boolean): void {
    for (const [key, , kind] of FIELDS) {
      const v = settings[key];
      if (v === undefined || (keepEdited && edited.has(key))) continue;
      const input = inputs.get(key)!;
      if (kind === 'bool') (input as HTMLInputElement).checked = v === true;
      else input.value = String(v);
    }
  }
  function apply(settings: Partial<ClusterSettings>): void {
    // Remembered settings arrive a moment after the page: what the user typed meanwhile wins.
    fill(settings, true);
    update();
  }
  return { el, update, apply };
}
