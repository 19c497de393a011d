// Lessons panel: pick a guided lesson, read the current step large enough for a projector, do
// what it asks from the node menu (the lab notices) or press Next, read what happened and why,
// and finally the verdict. The lab runs the lesson (labs/lessons/*.toml) and selects its Raft
// group, so the Raft view shows the group the lesson is about.

import type { LessonInfo } from '../api/types';
import type { Ctx, View } from './context';
import { control, h, section, setText } from './dom';
import { badge } from './workload';

/** What the learner is asked to do while a step waits, in words. */
const AWAITING: Record<string, string> = {
  learner: 'Your turn: do it from the node menu in the topology (or press Next and the lab does it).',
  next: 'Press Next when you are ready.',
};

export function lessonView(ctx: Ctx): View {
  let lessons: LessonInfo[] = [];
  const select = h('select', { id: 'lesson-select', 'aria-label': 'lesson', 'data-control': '' });
  const about = h('p', { class: 'drill-about', id: 'lesson-about' });
  const start = control('Start lesson', () => {
    ctx.store.live.verdict = null;
    void ctx.run(`lesson ${select.value}`, () => ctx.client.runLesson(select.value));
  }, { id: 'run-lesson' });
  const next = control('Next ▸', () => void ctx.run('next', () => ctx.client.lessonNext()), { id: 'lesson-next', class: 'lesson-next' });
  const counter = h('div', { id: 'lesson-counter', class: 'lesson-counter' });
  const stepText = h('p', { id: 'lesson-step', class: 'lesson-text', 'aria-live': 'polite' });
  const explain = h('p', { id: 'lesson-explain', class: 'lesson-text lesson-explain', 'aria-live': 'polite' });
  const waiting = h('p', { id: 'lesson-awaiting', class: 'lesson-awaiting' });
  const verdict = h('div', { id: 'lesson-verdict', class: 'drill-verdict' });
  const stage = h('div', { class: 'lesson-stage' }, counter, stepText, explain, waiting, h('div', { class: 'toolbar' }, next), verdict);
  const el = section('lesson', 'Lessons', h('div', { class: 'toolbar' }, select, start), about, stage);

  const describe = () => {
    const l = lessons.find((x) => x.name === select.value);
    about.textContent = l ? `${l.title} — ${l.description}` : '';
  };
  select.addEventListener('change', describe);
  async function load(): Promise<void> {
    const r = await ctx.client.listLessons();
    if (!r.ok) return void setTimeout(load, 2000);
    lessons = r.result;
    select.replaceChildren(...lessons.map((l) => h('option', { value: l.name }, `${l.title}`)));
    describe();
  }
  void load();

  function update(): void {
    const d = ctx.model().drill;
    const lesson = d?.lesson ? d : null;
    start.dataset.off = d && !d.done ? '1' : '0';
    select.dataset.off = start.dataset.off;
    next.dataset.off = lesson?.awaiting && !lesson.done ? '0' : '1';
    stage.hidden = !lesson;
    el.classList.toggle('running', !!lesson && !lesson.done);
    if (!lesson) return;
    const title = lessons.find((l) => l.name === lesson.name)?.title ?? lesson.name;
    setText(counter, `${title}: step ${Math.min(lesson.step, lesson.steps)} of ${lesson.steps}${lesson.done ? ' — done' : ''}`);
    setText(stepText, lesson.done ? '' : lesson.narration ?? '');
    setText(explain, lesson.done ? '' : lesson.explanation ?? '');
    explain.hidden = !explain.textContent;
    setText(waiting, lesson.done ? '' : AWAITING[lesson.awaiting ?? ''] ?? '');
    waiting.dataset.awaiting = lesson.awaiting ?? '';
    const v = lesson.done ? ctx.model().verdict ?? lesson.verdict : null;
    verdict.dataset.ok = v ? String(v.ok) : '';
    if (v) verdict.replaceChildren(badge(v.ok), h('span', { class: 'summary' }, ` ${v.summary}`));
    else verdict.replaceChildren();
  }
  return { el, update };
}
