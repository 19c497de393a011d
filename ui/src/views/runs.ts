// Recent runs: every cluster session and drill the lab recorded (labs/src/runs), newest first.
// Open replays one on the timeline; Export writes every format; Delete removes it. The size cap
// (MB) is a remembered preference: beyond it, the lab deletes the oldest runs first.

import type { RunList, RunMeta } from '../api/types';
import type { Ctx, View } from './context';
import { control, fmtBytes, h, section, setText } from './dom';

/** Today's runs by time of day, older ones by date too. */
function fmtTime(ms: number): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}
const fmtVerdict = (r: RunMeta) => r.summary ?? (r.ok === true ? 'passed' : r.ok === false ? 'failed' : '—');

export function runsView(ctx: Ctx, replay: (name: string, text: () => Promise<string>) => Promise<boolean>): View & { refresh(): void } {
  const body = h('tbody');
  const summary = h('p', { class: 'hint', id: 'runs-summary' }, 'loading…');
  const cap = h('input', { type: 'number', min: 1, name: 'runs_cap_mb', 'aria-label': 'size cap (MB)', 'data-control': '' });
  const saveCap = control('Set cap', async () => {
    const r = await ctx.run('recent runs cap', () => ctx.client.setPreferences({ runs_cap_mb: Number(cap.value) }));
    if (r.ok) refresh();
  }, { id: 'runs-cap-save' });
  const table = h('table', { id: 'runs-table', class: 'runs' },
    h('thead', {}, h('tr', {}, ...['started', 'run', 'status', 'verdict'].map((c) => h('th', {}, c)))), body);
  const el = section('runs', 'Recent runs', h('div', { class: 'table-wrap' }, table), summary,
    h('div', { class: 'toolbar' }, h('label', {}, 'keep at most ', cap, ' MB'), saveCap));

  // One listing at a time; a change announced meanwhile is listed once the current one ends.
  let loading = false;
  let again = false;
  async function refresh(): Promise<void> {
    if (loading) return void (again = true);
    loading = true;
    try {
      const r = await ctx.client.listRuns();
      if (!r.ok) return setText(summary, `recent runs: ${r.error?.message ?? 'unavailable'}`);
      render(r.result);
    } finally {
      loading = false;
      if (again) {
        again = false;
        void refresh();
      }
    }
  }

  function render(list: RunList): void {
    body.replaceChildren(...list.runs.map((r) => {
      const open = control('Open', async () => {
        await replay(r.id, async () => {
          const o = await ctx.client.openRun(r.id);
          if (!o.ok) throw new Error(o.error?.message ?? 'could not open the run');
          return o.result.jsonl;
        });
      }, { class: 'run-open' });
      const exp = control('Export', () => void ctx.run(`export ${r.id}`, () => ctx.client.exportRun(r.id, 'all')), { class: 'run-export' });
      const del = control('Delete', async () => {
        if ((await ctx.run(`delete ${r.id}`, () => ctx.client.deleteRun(r.id))).ok) refresh();
      }, { class: 'run-delete' });
      if (r.status === 'recording') exp.dataset.off = del.dataset.off = '1';
      // Two lines per run: what it was, then what can be done with it (a narrow column fits).
      return h('tr', { 'data-run': r.id, 'data-status': r.status },
        h('td', {}, fmtTime(r.started_ms)),
        h('td', { title: `${r.id} · ${r.events} events` }, r.kind === 'cluster' ? 'cluster' : r.kind === 'lesson' ? `lesson ${r.title}` : r.title, h('div', { class: 'actions' }, open, exp, del)),
        h('td', { class: `run-status ${r.status}` }, r.status),
        h('td', { class: `verdict ${r.ok === false ? 'bad' : r.ok ? 'good' : ''}` }, fmtVerdict(r)));
    }));
    if (document.activeElement !== cap) cap.value = String(list.cap_mb);
    setText(summary, `${list.runs.length} run${list.runs.length === 1 ? '' : 's'} · ${fmtBytes(list.bytes)} of ${list.cap_mb} MB · ${list.dir}`);
  }

  return { el, update: () => undefined, refresh: () => void refresh() };
}
