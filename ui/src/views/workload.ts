// Workload panel: start / stop, counters, and the live lost / duplicate gauge.

import type { Ctx, View } from './context';
import { control, h, section } from './dom';

export function workloadView(ctx: Ctx): View {
  const rate = h('input', { type: 'number', min: 1, max: 5000, value: 200, 'aria-label': 'rate per second', 'data-control': '' });
  const start = control('Start workload', () => ctx.run('start workload', () => ctx.client.startWorkload(Number(rate.value) || undefined)), { id: 'start-workload' });
  const stop = control('Stop workload', async () => {
    const r = await ctx.run('stop workload', ctx.client.stopWorkload);
    const v = r.result as { verdict?: { ok: boolean; summary: string } } | null;
    if (v?.verdict) verdict.replaceChildren(badge(v.verdict.ok), ` ${v.verdict.summary}`);
  }, { id: 'stop-workload' });
  const counters = h('dl', { class: 'counters' });
  const gauge = h('div', { class: 'gauge' });
  const verdict = h('div', { class: 'verdict-line' });
  const el = section('workload', 'Workload (topic "lab")', h('div', { class: 'toolbar' }, h('label', {}, 'msgs/s ', rate), start, stop), counters, gauge, verdict);

  function update(): void {
    const m = ctx.model();
    const w = m.workload;
    start.dataset.off = !m.running || w ? '1' : '0';
    stop.dataset.off = w ? '0' : '1';
    const c = w ?? { sent: 0, acked: 0, failed: 0, indeterminate: 0, consumed: 0 };
    counters.replaceChildren(...Object.entries(c).flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-counter': k }, v)]));
    const g = m.gauge.reading();
    const unreadLabel = g.final
      ? g.unread
        ? h('span', { class: 'bad' }, `${g.unread} acked, never read — suspected lost (the checker's verdict decides)`)
        : h('span', { class: 'good' }, 'every acked value was read back')
      : h('span', { class: 'dim' }, `${g.unread} acked, not read yet — not lost while the workload runs (the consumer may lag)`);
    gauge.replaceChildren(
      h('div', { class: `big ${g.duplicates ? 'bad' : 'good'}`, 'data-gauge': 'duplicates' }, `${g.duplicates} duplicate${g.duplicates === 1 ? '' : 's'}`),
      h('div', { class: 'small' }, 'a value read at two different offsets'),
      h('div', { 'data-gauge': 'unread' }, unreadLabel),
      h('div', { class: 'small' }, `${g.acked} acked · ${g.read} distinct values read (seen in this browser's stream)`));
  }
  return { el, update };
}

export function badge(ok: boolean): HTMLElement {
  return h('span', { class: `badge ${ok ? 'ok' : 'fail'}`, 'data-verdict': ok ? 'ok' : 'fail' }, ok ? 'PASS' : 'FAIL');
}
