// Flush progress: per partition and replica, appended / flushed / committed bars and the client's
// highest acked offset, so an acked-but-not-fsynced gap is visible. Past one page of partitions,
// those furthest behind on fsync come first, with each node's own counts above.

import { byGroupOrder, type Model } from '../state/model';
import type { Ctx, View } from './context';
import { h, KeyedRows, section, setText } from './dom';
import { paging } from './paging';

/** Partitions drawn per update; past this, the ones furthest behind on fsync come first. */
const PAGE_PARTITIONS = 24;

/** Records appended but not fsynced on the replica furthest behind (acked ones count double). */
function behind(m: Model, key: string): number {
  const acked = m.ackedOffset.get(key);
  let worst = 0;
  for (const r of m.replicas.get(key)!.values()) {
    const ackedGap = acked === undefined ? 0 : Math.max(0, acked + 1 - r.flushed_offset);
    worst = Math.max(worst, r.log_end_offset - r.flushed_offset + ackedGap);
  }
  return worst;
}

export function flushView(ctx: Ctx): View {
  const body = h('div', { class: 'flush-list' });
  const summary = h('p', { class: 'flush-summary', id: 'flush-summary' });
  const pages = paging('flush', PAGE_PARTITIONS, 'partitions', () => update());
  const blocks = new KeyedRows<string>((k) => k, (k) => blockKey(k), (k) => buildBlock(k));
  const el = section('flush', 'Flush progress',
    h('div', { class: 'legend' }, h('span', { class: 'sw appended' }, 'appended (log end)'), h('span', { class: 'sw flushed' }, 'flushed (fsynced)'),
      h('span', { class: 'sw committed' }, 'committed (high watermark)'), h('span', { class: 'sw acked' }, 'acked to the client')),
    summary, pages.el, body);

  function update(): void {
    const m = ctx.model();
    const all = [...m.replicas.keys()].filter((k) => !k.startsWith('__'));
    setText(summary, [...m.partitionSummaries].sort((a, b) => a[0] - b[0]).map(([node, s]) =>
      `n${node}: ${s.partitions.toLocaleString('en')} partitions, ${s.unflushed_records.toLocaleString('en')} records not fsynced${s.slowest ? ` (most: ${s.slowest.topic}-${s.slowest.partition}, ${s.slowest.unflushed_records})` : ''}${m.silentNodes.includes(node) ? ' (last report: no answer)' : ''}`).join(' · '));
    const q = pages.filter();
    let matching = byGroupOrder(all.filter((k) => !q || k.toLowerCase().includes(q)));
    if (all.length > PAGE_PARTITIONS) {
      // Furthest behind first; Array.sort is stable, so equal ones stay in name order.
      const lag = new Map(matching.map((k) => [k, behind(m, k)]));
      matching = matching.sort((a, b) => lag.get(b)! - lag.get(a)!);
    }
    const keys = pages.page(matching, all.length);
    const empty = keys.length ? [] : [h('p', { class: 'empty' }, all.length ? 'no partition matches' : 'no partitions yet: start the workload (topic "lab") or a drill')];
    blocks.render(body, keys, empty);
  }

  /** What a partition's block shows: rebuilt only when an offset or the acked mark moved. */
  function blockKey(key: string): string {
    const m = ctx.model();
    const per = [...m.replicas.get(key)!].map(([n, r]) => `${n}:${r.log_end_offset}:${r.flushed_offset}:${r.high_watermark}`);
    return `${m.ackedOffset.get(key)}|${per.join('|')}`;
  }

  function buildBlock(key: string): HTMLElement {
    const m = ctx.model();
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
  }
  return { el, update };
}
