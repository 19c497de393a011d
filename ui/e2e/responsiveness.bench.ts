// UI responsiveness under a real lab load (`npm run bench:ui`; not part of `npm test` or e2e).
//
// (a) live: a real `clusterlab serve`, a cluster and a workload started from the UI; for
//     BENCH_SECONDS it samples requestAnimationFrame gaps, long tasks, and click → next paint of
//     the Raft groups "internal topics" checkbox (~50 real mouse clicks), with the event rate and
//     the CPU of the browser and the lab; then an 8 s trace of the page's main thread.
// (b) replay: a JSON Lines timeline of >= BENCH_EVENTS real events (a restart-storm drill export,
//     repeated) imported through the UI's file input; import time, then scrub (a real mouse drag
//     on the slider, both ways; once more traced) and hover over the canvas, each with its rAF
//     gaps and long tasks.
// Prints tables; no timing assertions. Env: CLUSTERLAB_BIN; CLUSTERLAB_BROKER_BIN (the nodes' binary); BENCH_SECONDS (20); BENCH_RATE
// (workload msgs/s, 200: the panel's default); BENCH_PARTITIONS (of the workload topic, 3);
// BENCH_EVENTS (100000); BENCH_TIMELINE (reuse a
// drill's timeline.jsonl); BENCH_OUT (also write the figures as JSON); BENCH_UI_DIR (serve another
// build, e.g. an older commit's, to compare); BENCH_PROFILE (a directory: write a V8 CPU profile of
// each phase there, to open in Chrome DevTools).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, it } from 'vitest';
import { installProbe, type Probe } from './bench_probe';
import { bigTimeline } from './bench_timeline';
import { type MainThread, traceMainThread, treeCpuSeconds } from './bench_trace';
import { type Lab, startLab, stopLab } from './server';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 3);
const TOKEN = 'bench-secret';
const CHROMIUM = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

let lab: Lab;
let browser: Browser;
const scratch = mkdtempSync(join(tmpdir(), 'clusterlab-ui-bench-'));
const rows: Row[] = [];
const notes: string[] = [];

interface Row { phase: string; seconds: number; raf: Stats; longN: number; longMs: number; input?: string; lat?: Stats; extra?: string }
const traced: { phase: string; main: MainThread }[] = [];
interface Stats { n: number; p50: number; p90: number; p99: number; max: number }

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s.length ? s[s.length - 1] : NaN };
}

/** Values of a flat [t, v, t, v...] series whose t falls in [from, to]. */
const within = (flat: number[], from: number, to: number) => {
  const out: number[] = [];
  for (let i = 0; i < flat.length; i += 2) if (flat[i] >= from && flat[i] <= to) out.push(flat[i + 1]);
  return out;
};

const probe = (p: Page) => p.evaluate(() => (window as unknown as { __bench: Probe }).__bench);
const now = (p: Page) => p.evaluate(() => performance.now());

/** Measures what happened in the page between `from` and `to` (page clock). */
async function row(p: Page, phase: string, from: number, to: number, input?: string, extra?: string): Promise<Row> {
  const b = await probe(p);
  const long = [];
  for (let i = 0; i < b.longtasks.length; i += 2) if (b.longtasks[i] >= from && b.longtasks[i] <= to) long.push(b.longtasks[i + 1]);
  const r: Row = { phase, seconds: (to - from) / 1000, raf: stats(within(b.gaps, from, to)), longN: long.length, longMs: long.reduce((a, c) => a + c, 0), extra };
  if (input) Object.assign(r, { input, lat: stats(within(b.lat[input] ?? [], from, to)) });
  rows.push(r);
  return r;
}

/** Starts a CPU profile of the page when BENCH_PROFILE is set; the returned stop() writes it. */
async function profile(p: Page, name: string): Promise<() => Promise<void>> {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return async () => undefined;
  const cdp = await p.context().newCDPSession(p);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.start');
  return async () => {
    const { profile: prof } = await cdp.send('Profiler.stop');
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(prof));
  };
}

async function command(body: object): Promise<{ ok: boolean; result: Record<string, unknown> }> {
  const r = await fetch(`${lab.url}/api/command`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
  return r.json();
}

async function newPage(): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1600, height: 1300 } })).newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.addInitScript(installProbe);
  await page.goto(`${lab.url}/?token=${TOKEN}`);
  await page.locator('#start-cluster:not([disabled])').waitFor({ timeout: 15_000 });
  return page;
}

beforeAll(async () => {
  lab = await startLab(TOKEN, process.env.BENCH_UI_DIR);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM });
});

afterAll(async () => {
  await browser?.close();
  if (lab) await stopLab(lab);
  rmSync(scratch, { recursive: true, force: true });
});

it('live: cluster + workload started from the UI', async () => {
  const page = await newPage();
  await page.fill('#settings input[name=partitions]', String(PARTITIONS));
  await page.click('#start-cluster');
  await page.waitForFunction(() => document.querySelectorAll('#topology g.node.running').length === 3, null, { timeout: 60_000 });
  await page.fill('#workload input[type=number]', String(RATE));
  await page.locator('#start-workload:not([disabled])').click();
  await page.waitForFunction(() => Number(document.querySelector('[data-counter="acked"]')?.textContent) > 100, null, { timeout: 30_000 });
  await page.waitForTimeout(5000); // past the start-up burst
  // The workload can stall for ~30 s (a producer request timing out); start measuring once the
  // lab's timeline grows at >= 1,000 events/s again. The rate over the window is reported anyway.
  const labLen = async () => Number((await command({ command: 'snapshot' })).result.timeline_len);
  for (let waited = 0; waited < 90; waited += 2) {
    const a = await labLen();
    await page.waitForTimeout(2000);
    if ((await labLen()) - a >= 2000) break;
  }

  const stopProfile = await profile(page, 'live');
  const cpu0 = { browser: treeCpuSeconds(process.pid, 'chrom'), lab: treeCpuSeconds(process.pid, 'clusterlab') };
  const acked0 = Number(await page.locator('[data-counter="acked"]').textContent());
  const lab0 = await labLen();
  const b0 = await probe(page);
  const t0 = await now(page);
  const box = (await page.locator('#show-internal').boundingBox())!;
  const clicks = 50;
  const every = (SECONDS * 1000) / clicks;
  for (let i = 0; i < clicks; i++) {
    const started = Date.now();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForTimeout(Math.max(0, every - (Date.now() - started)));
  }
  const t1 = await now(page);
  const b1 = await probe(page);
  const lab1 = await labLen();
  const cpu1 = { browser: treeCpuSeconds(process.pid, 'chrom'), lab: treeCpuSeconds(process.pid, 'clusterlab') };
  await stopProfile();
  const s = (t1 - t0) / 1000;
  const labRate = (lab1 - lab0) / s;
  const pageRate = (b1.timelineMsgs - b0.timelineMsgs) / s;
  const acked = Number(await page.locator('[data-counter="acked"]').textContent()) - acked0;
  const pct = (k: 'browser' | 'lab') => `${((100 * (cpu1[k] - cpu0[k])) / s).toFixed(0)} %`;
  await row(page, 'live workload', t0, t1, 'click', `lab ${labRate.toFixed(0)} ev/s, page got ${pageRate.toFixed(0)} timeline ev/s; CPU (of one core): browser ${pct('browser')}, lab + brokers ${pct('lab')}`);
  notes.push(`live: workload ${RATE} msgs/s requested, ${acked} acked in the window; lab timeline grew ${lab1 - lab0} events in ${s.toFixed(1)} s (${labRate.toFixed(0)}/s); the page received ${b1.msgs - b0.msgs} messages, ${b1.timelineMsgs - b0.timelineMsgs} of them timeline events (${pageRate.toFixed(0)}/s)`);
  // A separate traced window: main-thread wall and CPU time (tracing would skew the figures above).
  traced.push({ phase: 'live workload', main: await traceMainThread(browser, page, () => page.waitForTimeout(8000)) });
  await command({ command: 'stop_workload' });
  await command({ command: 'stop_cluster' });
  await page.context().close();
});

it('replay: import a 100k-event timeline, scrub, hover', async () => {
  const file = join(scratch, 'big-timeline.jsonl');
  const made = await bigTimeline('restart-storm', scratch, file, EVENTS, process.env.BENCH_TIMELINE);
  notes.push(`replay: ${made.events} events (${(made.bytes / 1e6).toFixed(1)} MB) = a restart-storm run of ${made.runEvents} events repeated with shifted seq/timestamps`);
  const page = await newPage();
  await page.waitForTimeout(1000);

  const stopImportProfile = await profile(page, 'import');
  await page.setInputFiles('.import-file', file);
  await page.waitForFunction(() => (window as unknown as { __bench: Probe }).__bench.importDone > 0, null, { timeout: 300_000, polling: 100 });
  await stopImportProfile();
  const b = await probe(page);
  const heap = await page.evaluate(() => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0);
  await row(page, 'import', b.importStart, b.importDone, undefined, `import ${(b.importDone - b.importStart).toFixed(0)} ms to first paint; JS heap ${(heap / 1e6).toFixed(0)} MB`);
  await page.waitForTimeout(1000);

  // Scrub: press on the slider's track and drag it to 90 % and back to 10 % in 50 moves (~20 Hz).
  const track = (await page.locator('.scrub').boundingBox())!;
  const at = (f: number) => ({ x: track.x + 8 + f * (track.width - 16), y: track.y + track.height / 2 });
  const sweep = async () => {
    await page.mouse.move(at(0.1).x, at(0.1).y);
    await page.mouse.down();
    for (let i = 1; i <= 50; i++) {
      const f = i <= 25 ? 0.1 + (0.8 * i) / 25 : 0.9 - (0.8 * (i - 25)) / 25;
      await page.mouse.move(at(f).x, at(f).y);
      await page.waitForTimeout(50);
    }
    await page.mouse.up();
    await page.waitForTimeout(500);
  };
  const stopScrubProfile = await profile(page, 'scrub');
  const t0 = await now(page);
  await sweep();
  const t1 = await now(page);
  await row(page, 'scrub (drag slider)', t0, t1, 'scrub');
  await stopScrubProfile();
  traced.push({ phase: 'scrub (drag slider)', main: await traceMainThread(browser, page, sweep) });

  // Hover: 50 moves across the swimlanes, 50 ms apart.
  const canvas = (await page.locator('.timeline-canvas').boundingBox())!;
  const sweepHover = async (phase: string) => {
    const from = await now(page);
    for (let i = 0; i < 50; i++) {
      await page.mouse.move(canvas.x + 120 + ((canvas.width - 140) * i) / 49, canvas.y + 40 + (i % 5) * 14);
      await page.waitForTimeout(50);
    }
    await row(page, phase, from, await now(page), 'hover');
  };
  await sweepHover('hover (canvas)');

  // Play the imported run at 10x while hovering: the canvas and panels move every frame.
  await page.selectOption('select[aria-label="replay speed"]', '10');
  await page.click('button.play');
  await sweepHover('replay 10x + hover');
  await page.context().close();
});

afterAll(() => {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  // About 50 inputs per phase: their p99 is their max, so inputs show p90 instead.
  const head = 'phase                  secs | rAF gap ms p50   p99    max | long tasks  n     ms | input   n   p50    p90    max | notes';
  const lines = rows.map((r) => `${r.phase.padEnd(22)} ${f(r.seconds).padStart(4)} | ${f(r.raf.p50).padStart(14)} ${f(r.raf.p99).padStart(6)} ${f(r.raf.max).padStart(6)} | ${String(r.longN).padStart(12)} ${f(r.longMs).padStart(6)} | `
    + `${(r.input ?? '-').padEnd(5)} ${String(r.lat?.n ?? '-').padStart(3)} ${f(r.lat?.p50 ?? NaN).padStart(5)} ${f(r.lat?.p90 ?? NaN).padStart(6)} ${f(r.lat?.max ?? NaN).padStart(6)} | ${r.extra ?? ''}`);
  const setup = [`ui: ${process.env.BENCH_UI_DIR ?? 'ui/dist'}`, `machine: ${cpus().length} vCPU (${cpus()[0]?.model.trim()}), load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`, `browser: /usr/bin/chromium ${CHROMIUM.join(' ')}, viewport 1600x1300`, ...notes];
  const head2 = 'main thread (traced)   secs | busy ms    %  | CPU ms     % | tasks >= 50 ms';
  const lines2 = traced.map(({ phase, main: m }) => `${phase.padEnd(22)} ${f(m.windowMs / 1000).padStart(4)} | ${f(m.busyMs).padStart(7)} ${f((100 * m.busyMs) / m.windowMs).padStart(5)} | ${f(m.cpuMs).padStart(7)} ${f((100 * m.cpuMs) / m.windowMs).padStart(5)} | ${m.over50}`);
  console.log(['', ...setup, '', head, '-'.repeat(head.length), ...lines, '', head2, '-'.repeat(head2.length), ...lines2, ''].join('\n'));
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify({ setup, rows, traced }, null, 2));
});
