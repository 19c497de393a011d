// Flush progress: per partition and replica, appended / flushed / committed bars and the client's
// highest acked offset, so an acked-but-not-fsynced gap is visible.

import type { Ctx, View } from './context';
import { h, section } from './dom';

export function flushView(ctx: Ctx): View {
  const body = h('div', { class: 'flush-list' });
  const el = section('flush', 'Flush progress',
    h('div', { class: 'legend' }, h('span', { class: 'sw appended' }, 'appended (log end)'), h('span', { class: 'sw flushed' }, 'flushed (fsynced)'),
      h('span', { class: 'sw committed' }, 'committed (high watermark)'), h('span', { class: 'sw acked' }, 'acked to the client')),
    body);

  function update(): void {
    const m = ctx.model();
    const keys = [...m.replicas.keys()].filter((k) => !k.startsWith('__')).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const blocks = keys.map((key) => {
      const per = m.replicas.get(key)!;
      const acked = m.ackedOffset.get(key);
      const ackedEnd = acked === undefined ? null : acked + 1; // offsets below this were acked
      // Zoom on the moving end so a gap of a few records stays visible next to thousands.
      const values = [...per.values()].flatMap((r) => [r.log_end_offset, r.flushed_offset, r.high_watermark]).concat(ackedEnd ?? []);
      const max = Math.max(1, ...values);
      const lo = Math.max(0, Math.floor(Math.min(...values) - Math.max(10, (max - Math.min(...values)) * 0.25)));
      const pct = (v: number) => `${Math.max(0, Math.min(100, ((v - lo) / (max - lo)) * 100))}%`;
      const rows = [...per.entries()].sort((a, b) => a[0] - b[0]).map(([node, r]) => {
        const gap = ackedEnd === null ? 0 : Math.max(0, ackedEnd - r.flushed_offset);
        return h('div', { class: 'replica', 'data-node': node },
          h('span', { class: 'rname' }, `n${node}`),
          h('div', { class: 'bar' },
            h('div', { class: 'b appended', style: `width:${pct(r.log_end_offset)}` }),
            h('div', { class: 'b committed', style: `width:${pct(r.high_watermark)}` }),
            h('div', { class: 'b flushed', style: `width:${pct(r.flushed_offset)}` }),
            ackedEnd === null ? null : h('div', { class: 'acked-mark', style: `left:${pct(ackedEnd)}`, title: `acked up to ${ackedEnd}` })),
          h('span', { class: 'nums' }, `end ${r.log_end_offset} · fsync ${r.flushed_offset} · hw ${r.high_watermark}`),
          h('span', { class: gap > 0 ? 'gap warn' : 'gap' }, gap > 0 ? `${gap} acked not fsynced` : 'acked ⊆ fsynced'));
      });
      return h('div', { class: 'partition', 'data-partition': key }, h('h3', {}, key, h('small', {}, `${ackedEnd === null ? '' : ` acked < ${ackedEnd}`} · scale ${lo}–${max}`)), ...rows);
    });
    if (!blocks.length) blocks.push(h('p', { class: 'empty' }, 'no partitions yet: start the workload (topic "lab") or a drill'));
    body.replaceChildren(...blocks);
  }
  return { el, update };
}
