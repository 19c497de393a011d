// Export: one button per format; after an export, the directory and files the lab wrote.
//
// The UI cannot know the export directory before the lab answers (it is the server's or the app's
// setting, not in the state), so until then the panel says only who writes the files.

import type { Ctx, View } from './context';
import { control, h, section } from './dom';

const FORMATS = ['jsonl', 'perfetto', 'edn', 'csv', 'charts', 'html', 'all'];

/** The deepest directory holding every path ('' when they share none, e.g. relative names). */
export function commonDir(paths: string[]): string {
  const dirs = paths.map((p) => p.split('/').slice(0, -1));
  if (!dirs.length) return '';
  let n = dirs[0].length;
  for (const d of dirs) {
    let i = 0;
    while (i < n && i < d.length && d[i] === dirs[0][i]) i++;
    n = i;
  }
  const dir = dirs[0].slice(0, n).join('/');
  return dir === '' && paths[0].startsWith('/') ? '/' : dir;
}

/** Before any export: who writes the files, for this transport. */
export function whereNote(kind: 'desktop' | 'server'): string {
  return kind === 'desktop'
    ? 'Files are written on this computer, in the desktop app\'s data directory; their paths show here after an export.'
    : 'Files are written by the lab server, on the machine it runs on; their paths show here after an export.';
}

export function exportView(ctx: Ctx): View {
  const note = h('p', { class: 'hint export-where' }, whereNote(ctx.client.transport.kind));
  const out = h('ul', { class: 'export-files' });
  const buttons = FORMATS.map((f) => control(f, async () => {
    const r = await ctx.run(`export ${f}`, () => ctx.client.export(f));
    if (!r.ok) return;
    const files = (r.result as { files: string[] }).files;
    const dir = commonDir(files);
    const host = ctx.client.transport.kind === 'desktop' ? '' : ' on the lab server';
    note.textContent = files.length === 0 ? `export ${f}: the lab wrote no files.`
      : dir ? `export ${f}: ${files.length} file${files.length === 1 ? '' : 's'} written${host} in ${dir}`
      : `export ${f}: ${files.length} file${files.length === 1 ? '' : 's'} written${host}, relative to its working directory`;
    out.replaceChildren(...files.map((p) => h('li', { 'data-format': f }, h('code', {}, p))));
  }, { 'data-export': f }));
  const el = section('export', 'Export timeline', h('div', { class: 'toolbar' }, ...buttons), note, out);
  return { el, update: () => undefined };
}
