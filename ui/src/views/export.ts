// Export: one button per format; shows the server paths written.

import type { Ctx, View } from './context';
import { control, h, section } from './dom';

const FORMATS = ['jsonl', 'perfetto', 'edn', 'csv', 'charts', 'html', 'all'];

export function exportView(ctx: Ctx): View {
  const out = h('ul', { class: 'export-files' });
  const buttons = FORMATS.map((f) => control(f, async () => {
    const r = await ctx.run(`export ${f}`, () => ctx.client.export(f));
    if (!r.ok) return;
    const files = (r.result as { files: string[] }).files;
    out.replaceChildren(...files.map((p) => h('li', { 'data-format': f }, h('code', {}, p), p.startsWith('/') ? '' : h('span', { class: 'hint' }, ' (relative to the lab server\'s working directory)'))));
  }, { 'data-export': f }));
  const el = section('export', 'Export timeline', h('div', { class: 'toolbar' }, ...buttons), h('p', { class: 'hint' }, 'Files are written on the lab server:'), out);
  return { el, update: () => undefined };
}
