// Timeline: the canvas, hover details, scrub / replay controls, zoom, and JSON Lines import.

import { buildModel, yieldToPage } from '../state/importer';
import type { Model } from '../state/model';
import { Replay } from '../state/replay';
import type { Ctx, View } from './context';
import { control, h, section, toast } from './dom';
import { draw, type Hit, layout, type Palette } from './timeline_draw';

const SPANS: [string, number][] = [['auto', -1], ['30 s', 30e9], ['2 min', 120e9], ['10 min', 600e9], ['all', 0]];

/**
 * Colours and font size from the stylesheet, read again only when the body's classes change
 * (presentation mode). getComputedStyle on every frame forced a style recalculation each time
 * the panels had changed the DOM.
 */
let theme: { key: string; pal: Palette; font: number } | null = null;
function style(): { pal: Palette; font: number } {
  if (theme?.key === document.body.className) return theme;
  const css = getComputedStyle(document.body);
  const v = (name: string) => css.getPropertyValue(name).trim() || '#888';
  const pal = { bg: v('--tl-bg'), fg: v('--fg'), dim: v('--dim'), grid: v('--tl-grid'), fault: v('--fault'), down: v('--tl-down'), rate: v('--rate'), latency: v('--latency'), anomaly: v('--bad'), cursor: v('--cursor') };
  theme = { key: document.body.className, pal, font: parseFloat(css.fontSize) * 0.72 };
  return theme;
}

export interface TimelineView extends View {
  /** The replay model at the cursor, or null when following live. */
  cursorModel(): Model | null;
  togglePlay(): void;
  playing(): boolean;
  /** Replays a JSON Lines run from its start (resolves false when it could not). */
  replayText(name: string, text: () => Promise<string>): Promise<boolean>;
}

export function timelineView(ctx: Ctx, onCursor: () => void): TimelineView {
  const canvas = h('canvas', { class: 'timeline-canvas', 'aria-label': 'timeline' });
  const tip = h('div', { class: 'tip', hidden: true });
  const slider = h('input', { type: 'range', min: 0, max: 1000, value: 1000, class: 'scrub', 'aria-label': 'scrub' });
  const play = h('button', { class: 'play' }, '▶ Play');
  const live = h('button', { class: 'live on' }, '● Live');
  const speed = h('select', { 'aria-label': 'replay speed' }, ...[0.25, 0.5, 1, 2, 5, 10].map((s) => h('option', { value: s, selected: s === 1 }, `${s}×`)));
  const zoom = h('select', { 'aria-label': 'window' }, ...SPANS.map(([l, v]) => h('option', { value: v, selected: v === -1 }, l)));
  const file = h('input', { type: 'file', accept: '.jsonl,.json,application/x-ndjson', class: 'import-file', 'aria-label': 'import JSON Lines' });
  const sendImport = control('Send to lab (import_timeline)', () => void 0, { class: 'send-import', 'data-off': '1' });
  const status = h('span', { class: 'tl-status' });
  const el = section('timeline', 'Timeline',
    h('div', { class: 'toolbar' }, play, speed, live, h('label', {}, 'window ', zoom), slider, status),
    h('div', { class: 'canvas-wrap' }, canvas, tip),
    h('div', { class: 'toolbar' }, h('label', {}, 'Replay a run (JSON Lines): ', file), sendImport));

  let replay: Replay | null = null;
  let replaySource: Model | null = null;
  let hits: Hit[] = [];
  let importedText: string | null = null;
  let lastFrame = 0;
  let importing: string | null = null; // progress while a file loads
  // The canvas width, kept by an observer: reading clientWidth on every frame forced a layout
  // whenever the panels had just changed the DOM.
  let width = 800;
  new ResizeObserver(([e]) => {
    width = Math.round(e.contentRect.width) || 800;
    onCursor();
  }).observe(canvas.parentElement ?? canvas);

  const full = () => ctx.store.full;
  const following = () => replay === null;

  function ensureReplay(): Replay {
    if (!replay || replaySource !== full()) {
      replay = new Replay(full().timeline);
      replaySource = full();
    }
    return replay;
  }

  function setCursor(ts: number | null): void {
    if (ts === null) {
      replay = null;
      live.classList.add('on');
    } else {
      ensureReplay().seek(ts);
      live.classList.remove('on');
    }
    onCursor();
  }

  slider.addEventListener('input', () => {
    const m = full();
    if (Number(slider.value) >= 1000 && !ctx.store.imported) return setCursor(null);
    setCursor(m.firstTs + (Number(slider.value) / 1000) * (m.lastTs - m.firstTs));
  });
  live.addEventListener('click', () => {
    if (ctx.store.imported) ctx.store.backToLive();
    importedText = null;
    sendImport.dataset.off = '1';
    setCursor(null);
  });
  function togglePlay(): void {
    const r = replay ?? (setCursor(full().firstTs), replay!);
    r.playing = !r.playing;
    if (r.playing && r.cursor >= full().lastTs) r.seek(full().firstTs);
    lastFrame = performance.now();
  }
  play.addEventListener('click', togglePlay);
  speed.addEventListener('change', () => replay && (replay.speed = Number(speed.value)));
  zoom.addEventListener('change', onCursor);
  /** Replays a JSON Lines run (an imported file or a recent run) from its start. */
  async function replayText(name: string, text: () => Promise<string>): Promise<boolean> {
    if (importing !== null) return false;
    importing = `importing ${name}…`;
    status.textContent = importing;
    try {
      const jsonl = await text();
      const progress = (done: number) => (status.textContent = importing = `importing ${name}: ${Math.round(done * 100)} %`);
      const { model, events } = await buildModel(jsonl, { pause: yieldToPage, progress });
      importedText = jsonl;
      ctx.store.showImported(model);
      sendImport.dataset.off = '0';
      setCursor(ctx.store.full.firstTs);
      toast(`replaying ${events} events from ${name}`);
      return true;
    } catch (e) {
      toast(`not a JSON Lines timeline: ${String(e)}`, true);
      return false;
    } finally {
      importing = null;
    }
  }
  file.addEventListener('change', async () => {
    const f = file.files?.[0];
    if (!f) return;
    await replayText(f.name, () => f.text());
    file.value = ''; // choosing the same file again is a new import
  });
  sendImport.addEventListener('click', () => importedText && ctx.run('import_timeline', () => ctx.client.importTimeline(importedText!)));

  canvas.addEventListener('mousemove', (e) => {
    const r = canvas.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    const hit = hits.find((b) => px >= b.x0 && px <= b.x1 && py >= b.y0 && py <= b.y1);
    tip.hidden = !hit;
    if (hit) {
      tip.textContent = hit.text;
      tip.style.left = `${Math.min(px + 12, r.width - 320)}px`;
      tip.style.top = `${py + 12}px`;
    }
  });
  canvas.addEventListener('mouseleave', () => (tip.hidden = true));

  function update(): void {
    const m = full();
    const now = performance.now();
    if (replay?.playing) {
      replay.speed = Number(speed.value);
      replay.tick(now - lastFrame, m.lastTs);
      onCursor();
    }
    lastFrame = now;
    play.textContent = replay?.playing ? '❚❚ Pause' : '▶ Play';
    const cursor = replay ? replay.cursor : null;
    const { height } = layout(m);
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.height = `${height}px`;
    }
    const cx = canvas.getContext('2d');
    if (!cx) return;
    cx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const runNs = Math.max(m.lastTs - m.firstTs, 1e9);
    const z = Number(zoom.value);
    // auto: the whole run while it is short, then the last 2 minutes.
    const spanNs = z > 0 ? z : z < 0 ? Math.min(runNs * 1.02, 120e9) : runNs * 1.02;
    let to = m.lastTs;
    if (cursor !== null) to = Math.min(m.lastTs, Math.max(cursor + spanNs * 0.1, m.firstTs + spanNs));
    const { pal, font } = style();
    hits = m.lastTs ? draw(cx, m, { from: to - spanNs, to }, width, cursor, pal, font) : [];
    canvas.dataset.raftCaptions = String(hits.filter((x) => x.kind === 'raft').length);
    if (!m.lastTs) {
      cx.fillStyle = pal.dim;
      cx.fillText('no events yet', 20, 30);
    }
    if (cursor !== null && m.lastTs > m.firstTs) slider.value = String(Math.round(((cursor - m.firstTs) / (m.lastTs - m.firstTs)) * 1000));
    else if (following()) slider.value = '1000';
    const dropped = m.timeline.dropped ? ` (oldest ${m.timeline.dropped} dropped)` : '';
    status.textContent = importing ?? `${ctx.store.imported ? 'imported run' : following() ? 'live' : 'replay'} · ${m.timeline.length} events${dropped}` +
      (cursor !== null ? ` · at +${((cursor - m.firstTs) / 1e9).toFixed(1)} s` : '');
  }

  return { el, update, cursorModel: () => (replay ? replay.model : null), togglePlay, playing: () => !!replay?.playing, replayText };
}
