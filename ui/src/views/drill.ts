// Drill runner: the catalog, run one, steps advancing, narration captions, verdict badge; and a
// seeded chaos run (seed, duration, fault families) whose schedule runs as a drill.

import type { DrillInfo } from '../api/types';
import type { Ctx, View } from './context';
import { control, h, section } from './dom';
import { badge } from './workload';

export function drillView(ctx: Ctx): View {
  let drills: DrillInfo[] = [];
  const select = h('select', { 'aria-label': 'drill', class: 'drill-select' });
  const seed = h('input', { type: 'number', placeholder: 'seed (optional)', 'aria-label': 'seed', 'data-control': '' });
  const about = h('p', { class: 'drill-about' });
  const run = control('Run drill', () => {
    ctx.store.live.verdict = null;
    ctx.run(`drill ${select.value}`, () => ctx.client.runDrill(select.value, seed.value ? Number(seed.value) : undefined));
  }, { id: 'run-drill' });
  const progress = h('div', { class: 'drill-progress' });
  const caption = h('div', { class: 'caption', 'aria-live': 'polite' });
  const verdict = h('div', { class: 'drill-verdict' });
  const chaos = chaosForm(ctx);
  const el = section('drill', 'Drill', h('div', { class: 'toolbar' }, select, seed, run), chaos.el, about, progress, caption, verdict);

  const describe = () => {
    const d = drills.find((x) => x.name === select.value);
    about.textContent = d ? `${d.title} — ${d.description}` : '';
  };
  select.addEventListener('change', describe);
  async function load(): Promise<void> {
    const r = await ctx.client.listDrills();
    if (!r.ok) return void setTimeout(load, 2000);
    drills = r.result;
    select.replaceChildren(...drills.map((d) => h('option', { value: d.name }, `${d.name} (${d.steps} steps)`)));
    describe();
  }
  void load();

  function update(): void {
    const m = ctx.model();
    // A lesson's progress belongs to the Lessons panel; the drill runner stays free of it.
    const d = m.drill?.lesson ? null : m.drill;
    run.dataset.off = d && !d.done ? '1' : '0';
    chaos.run.dataset.off = run.dataset.off;
    if (d) {
      const pct = d.steps ? (Math.min(d.step, d.steps) / d.steps) * 100 : 0;
      progress.replaceChildren(h('div', { class: 'steps-label' }, `${d.name}: step ${Math.min(d.step, d.steps)} of ${d.steps}${d.done ? ' — done' : ''}`),
        h('div', { class: 'bar' }, h('div', { class: 'b committed', style: `width:${pct}%` })),
        h('ol', { class: 'steps' }, ...Array.from({ length: d.steps }, (_, i) => h('li', { class: i < d.step ? 'done' : i === d.step && !d.done ? 'now' : '' }, `${i + 1}`))));
    } else progress.replaceChildren();
    caption.textContent = m.narration ?? '';
    caption.hidden = !m.narration || !!m.drill?.lesson;
    const v = d?.done ? m.verdict ?? d.verdict : null;
    if (v) verdict.replaceChildren(badge(v.ok), h('span', { class: 'summary' }, ` ${v.summary}`));
    else verdict.replaceChildren();
  }
  return { el, update };
}

const FAMILIES = ['kill', 'pause', 'stop', 'restart', 'power_cut', 'partition', 'link', 'disk'];

/** Seed, duration, topics and families of a chaos run; the drawn schedule is listed once it
 * starts (a companion episode, drawn inside another, is listed with a leading `+`). */
function chaosForm(ctx: Ctx): { el: HTMLElement; run: HTMLButtonElement } {
  const seed = h('input', { type: 'number', value: '1', min: '0', 'aria-label': 'chaos seed', 'data-control': '' });
  const secs = h('input', { type: 'number', value: '60', min: '10', max: '600', 'aria-label': 'chaos seconds', 'data-control': '' });
  const topics = h('input', { type: 'number', value: '1', min: '1', max: '16', 'aria-label': 'chaos topics', 'data-control': '' });
  const boxes = FAMILIES.map((f) => h('input', { type: 'checkbox', checked: true, value: f, 'aria-label': f, 'data-control': '' }));
  const schedule = h('ol', { class: 'chaos-schedule' });
  const run = control('Run chaos', () => {
    const faults = boxes.filter((b) => b.checked).map((b) => b.value).join(',');
    if (!faults) return;
    ctx.store.live.verdict = null;
    void ctx.run(`chaos seed ${seed.value}`, async () => {
      const r = await ctx.client.runChaos(Number(seed.value), Number(secs.value) * 1000, faults, Number(topics.value));
      if (r.ok) schedule.replaceChildren(...r.result.schedule.map((line) => h('li', {}, line.replace(/^\s*\d+\.\s*/, ''))));
      return r;
    });
  }, { id: 'run-chaos' });
  const families = h('span', { class: 'chaos-families' }, ...boxes.map((b) => h('label', {}, b, ` ${b.value}`)));
  const el = h('div', { class: 'chaos' }, h('div', { class: 'toolbar' }, h('span', {}, 'Chaos: seed'), seed, h('span', {}, 's'), secs, h('span', {}, 'topics'), topics, families, run), schedule);
  return { el, run };
}
