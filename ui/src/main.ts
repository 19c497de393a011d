// Cluster Lab UI: picks a transport, feeds the store, lays out the views, runs the render loop.
//
// Dependency direction: main.ts -> views/ -> state/ -> api/ (api/generated.ts is written from the
// Rust types; api/ imports nothing of state/ or views/, state/ nothing of views/). `npm run
// check:cycles` (dpdm, in CI) fails on any import cycle.

import './styles.css';
import { LabClient } from './api/lab';
import { pickTransport } from './api/pick';
import { Store } from './state/store';
import { runner, type Ctx, type View } from './views/context';
import { h, syncControls } from './views/dom';
import { drillView } from './views/drill';
import { exportView } from './views/export';
import { flushView } from './views/flush';
import { lessonView } from './views/lesson';
import { groupsView } from './views/groups';
import { preferences } from './views/prefs';
import { raftView } from './views/raft';
import { runsView } from './views/runs';
import { settingsView } from './views/settings';
import { bindShortcuts, helpOverlay, shortcuts } from './views/shortcuts';
import { timelineView } from './views/timeline';
import { topologyView } from './views/topology';
import { workloadView } from './views/workload';

const PANEL_EVERY_MS = 250;
/**
 * New live events redraw the timeline canvas at most this often (its rate buckets are 100 ms
 * wide anyway). Redrawing it on every frame at 2,000 events/s cost a quarter of the main thread
 * in canvas rasterisation. What the user does (scrub, play, zoom, import, resize) redraws at once.
 */
const TIMELINE_LIVE_MS = 100;

async function main(): Promise<void> {
  const token = new URLSearchParams(location.search).get('token');
  const transport = await pickTransport(token);
  const client = new LabClient(transport);
  const store = new Store();
  let canControl = false;
  let cursorMoved = 0;

  const ctx: Ctx = { client, store, model: () => timeline.cursorModel() ?? store.full, canControl: () => canControl, run: runner() };
  const timeline = timelineView(ctx, () => cursorMoved++);
  const settings = settingsView(ctx);
  const runs = runsView(ctx, timeline.replayText);
  const panels: View[] = [settings, topologyView(ctx), groupsView(ctx), flushView(ctx), workloadView(ctx), drillView(ctx), lessonView(ctx), exportView(ctx), runs];
  const [, topology, groups, flush, workload, drill, lesson, exporter] = panels;
  const raft = raftView(ctx);
  panels.push(raft);
  const prefs = preferences(client, settings.apply);

  const conn = h('span', { class: 'conn', id: 'conn' }, 'connecting…');
  const roNote = h('span', { class: 'ro-note', id: 'read-only', hidden: true }, 'read-only: ask the instructor');
  const togglePresentation = () => prefs.togglePresentation();
  const toggleHelp = () => (help.hidden = !help.hidden);
  const list = shortcuts({ help: toggleHelp, presentation: togglePresentation, play: () => timeline.togglePlay() });
  const help = helpOverlay(list, toggleHelp);
  const header = h('header', {},
    h('h1', {}, 'Cluster Lab'), conn, roNote, h('span', { class: 'grow' }),
    h('button', { id: 'presentation', onclick: togglePresentation, title: 'F' }, 'Presentation (F)'),
    h('button', { id: 'theme', onclick: () => prefs.toggleTheme() }, 'Light theme'),
    h('button', { id: 'help-button', onclick: toggleHelp, title: '?' }, 'Shortcuts (?)'));
  const app = document.getElementById('app')!;
  app.append(header,
    h('main', { class: 'grid' },
      h('div', { class: 'col' }, topology.el, settings.el),
      h('div', { class: 'col' }, groups.el, flush.el),
      h('div', { class: 'col' }, drill.el, lesson.el, workload.el, exporter.el, runs.el)),
    raft.el, timeline.el, help);
  bindShortcuts(ctx, list);
  // A panel's title folds it (remembered, like the theme and presentation mode).
  app.querySelectorAll<HTMLElement>('section.panel > h2').forEach((title) => {
    title.classList.add('fold');
    title.title = 'fold / unfold';
    title.addEventListener('click', () => prefs.toggleFolded(title.parentElement!.id));
  });

  transport.onEvent((e) => {
    store.push(e);
    // Snapshots stream only while a cluster runs: fetch one when it stops so nothing stays stale.
    if (e.event === 'timeline' && e.entry.type === 'process' && e.entry.state === 'cluster_stopped') {
      void client.snapshot().then((r) => r.ok && store.push({ event: 'state', state: r.result }));
    }
    // The lab says when a run began or finished recording (or one was deleted or pruned).
    if (e.event === 'runs_changed') runs.refresh();
  });
  transport.onStatus(async (s) => {
    conn.textContent = s === 'open' ? 'connected' : s === 'connecting' ? 'connecting…' : 'disconnected — retrying';
    conn.dataset.status = s;
    if (s === 'open') {
      canControl = await client.probeControl();
      roNote.hidden = canControl;
      document.body.classList.toggle('readonly', !canControl);
      seen = -1;
      await prefs.load(() => store.live.running);
      runs.refresh();
    }
  });

  let seen = -1;
  let lastPanels = 0;
  let drawnData = -1;
  let drawnUser = -1;
  let lastDraw = 0;
  const loop = (now: number) => {
    const data = store.full.version;
    const user = cursorMoved * 2 + (store.imported ? 1 : 0);
    const version = data + user * 1e9;
    if (user !== drawnUser || timeline.playing() || (data !== drawnData && now - lastDraw >= TIMELINE_LIVE_MS)) {
      timeline.update();
      drawnData = data;
      drawnUser = user;
      lastDraw = now;
    }
    raft.frame(now); // its own slow-motion clock; redraws only when something moved
    if (version !== seen && now - lastPanels >= PANEL_EVERY_MS) {
      for (const p of panels) p.update();
      syncControls(app, canControl);
      seen = version;
      lastPanels = now;
    }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}

void main();
