// Keyboard shortcuts for common faults, and the help overlay that lists them.

import { topics } from '../state/model';
import type { Ctx } from './context';
import { h, toast } from './dom';

interface Shortcut { key: string; what: string; run(ctx: Ctx): void; control: boolean }

const p0 = (ctx: Ctx) => `leader:${topics(ctx.store.live)[0] ?? 'lab'}/0`;
const stopped = (ctx: Ctx, states: string[]) => [...ctx.store.live.nodes.values()].filter((n) => states.includes(n.state)).map((n) => n.id);

export function shortcuts(toggles: { help(): void; presentation(): void; play(): void }): Shortcut[] {
  return [
    { key: 'k', what: 'kill the leader of partition 0', control: true, run: (c) => c.run(`kill ${p0(c)}`, () => c.client.fault('kill', p0(c))) },
    { key: 'p', what: 'pause (SIGSTOP) the leader of partition 0', control: true, run: (c) => c.run(`pause ${p0(c)}`, () => c.client.fault('pause', p0(c))) },
    { key: 'c', what: 'kill the controller leader', control: true, run: (c) => c.run('kill controller', () => c.client.fault('kill', 'controller')) },
    { key: 'i', what: 'isolate the leader of partition 0', control: true, run: (c) => c.run(`isolate ${p0(c)}`, () => c.client.fault('isolate', p0(c))) },
    { key: 'h', what: 'heal all links', control: true, run: (c) => c.run('heal all', c.client.healAll) },
    { key: 'u', what: 'resume every paused node', control: true, run: (c) => stopped(c, ['paused']).forEach((id) => c.run(`resume ${id}`, () => c.client.fault('resume', `node:${id}`))) },
    { key: 'r', what: 'restart every stopped or dead node', control: true, run: (c) => stopped(c, ['stopped', 'died']).forEach((id) => c.run(`restart ${id}`, () => c.client.fault('restart', `node:${id}`))) },
    { key: 'w', what: 'start / stop the workload', control: true, run: (c) => (c.store.live.workload ? c.run('stop workload', c.client.stopWorkload) : c.run('start workload', () => c.client.startWorkload(200))) },
    // A presenter's clicker sends PageDown: the same Next as the Lessons panel's button.
    { key: 'n', what: 'Next in a guided lesson', control: true, run: (c) => c.run('next', c.client.lessonNext) },
    { key: 'PageDown', what: "Next in a guided lesson (a presenter's clicker)", control: true, run: (c) => c.run('next', c.client.lessonNext) },
    { key: ' ', what: 'play / pause the timeline replay', control: false, run: () => toggles.play() },
    { key: 'f', what: 'presentation mode (large type, high contrast)', control: false, run: () => toggles.presentation() },
    { key: '?', what: 'this help', control: false, run: () => toggles.help() },
  ];
}

export function bindShortcuts(ctx: Ctx, list: Shortcut[]): void {
  document.addEventListener('keydown', (e) => {
    const t = e.target as HTMLElement;
    if (e.ctrlKey || e.metaKey || e.altKey || ['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName)) return;
    const s = list.find((x) => x.key === e.key.toLowerCase() || x.key === e.key);
    if (!s) return;
    e.preventDefault();
    if (s.control && !ctx.canControl()) return toast('read-only: ask the instructor', true);
    s.run(ctx);
  });
}

export function helpOverlay(list: Shortcut[], close: () => void): HTMLElement {
  const label = (k: string) => (k === ' ' ? 'Space' : k.toUpperCase());
  return h('div', { class: 'overlay', id: 'help', hidden: true, onclick: ((e: Event) => e.target === e.currentTarget && close()) as EventListener },
    h('div', { class: 'dialog', role: 'dialog', 'aria-label': 'keyboard shortcuts' },
      h('h2', {}, 'Keyboard shortcuts'),
      h('table', {}, ...list.map((s) => h('tr', {}, h('td', {}, h('kbd', {}, label(s.key))), h('td', {}, s.what, s.control ? '' : h('span', { class: 'dim' }, ' (viewers too)'))))),
      h('p', { class: 'hint' }, 'Click a node for its fault menu, a link to cut it. Esc closes menus.'),
      h('button', { onclick: close }, 'Close')));
}
