// Starts a real `clusterlab serve` on a free port for the browser test, and stops it cleanly.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '../..');
// CI builds into a cached target dir and says where; locally it is the workspace's target/.
export const BIN = process.env.CLUSTERLAB_BIN ?? join(ROOT, 'target/debug/clusterlab');

/** Where screenshots go: docs/screenshots only when asked to refresh them
 * (CLUSTERLAB_REFRESH_SCREENSHOTS=1), else an untracked folder, so a test run changes no tracked file. */
export const SHOTS = process.env.CLUSTERLAB_REFRESH_SCREENSHOTS === '1' ? join(ROOT, 'docs/screenshots') : join(ROOT, 'ui/test-results/screenshots');

/** Screenshots the element `selector` into SHOTS/`name`. A live view re-renders several times a
 * second, so Playwright's element screenshot may wait forever for it to be "stable"; this clips a
 * screenshot of the viewport to the element's box instead (cut at the viewport's edge). Not a
 * full-page one, which makes Chromium lay out and paint the whole live page beyond the viewport
 * (captureBeyondViewport): in CI the click right after one, at 150 partitions under load, found
 * the renderer unresponsive for its whole 30 s (session 40). */
export async function shot(page: Page, selector: string, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  const el = page.locator(selector).first();
  await el.scrollIntoViewIfNeeded();
  const box = await el.boundingBox();
  const view = page.viewportSize();
  if (!box || !view) throw new Error(`screenshot ${name}: ${selector} is not visible`);
  const x = Math.max(0, box.x), y = Math.max(0, box.y);
  const clip = { x, y, width: Math.min(box.x + box.width, view.width) - x, height: Math.min(box.y + box.height, view.height) - y };
  if (clip.width <= 0 || clip.height <= 0) throw new Error(`screenshot ${name}: ${selector} is outside the viewport`);
  await page.screenshot({ path: join(SHOTS, name), clip });
}

/** Waits until the text of `selector` matches `want` and returns it; on timeout the error
 * quotes the text last seen, so a red run says how far the page got. */
export async function waitForText(page: Page, selector: string, want: RegExp, timeout: number): Promise<string> {
  try {
    // The text that matched, from the same read: the page may change before a second one.
    const matched = await page.waitForFunction(([sel, src, flags]) => {
      const text = document.querySelector(sel)?.textContent ?? '';
      return new RegExp(src, flags).test(text) ? text : null;
    }, [selector, want.source, want.flags] as const, { timeout });
    return (await matched.jsonValue()) as string;
  } catch {
    const seen = await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => null);
    throw new Error(`${selector} did not read ${want} within ${timeout} ms; last read: ${JSON.stringify(seen)}`);
  }
}

export interface Lab { url: string; token: string; proc: ChildProcess; log: string[]; dir: string }

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

/** `uiDir`: the built UI to serve (the benchmark compares builds); default ui/dist. */
export async function startLab(token: string, uiDir = join(ROOT, 'ui/dist')): Promise<Lab> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'clusterlab-ui-e2e-'));
  const args = ['serve', '--bind', `127.0.0.1:${port}`, '--ui-dir', uiDir, '--token', token, '--data-dir', join(dir, 'data'), '--drills', join(ROOT, 'labs/drills'), '--lessons', join(ROOT, 'labs/lessons')];
  // The benchmark may run the lab's nodes from another build (e.g. a release broker at scale).
  if (process.env.CLUSTERLAB_BROKER_BIN) args.push('--broker-bin', process.env.CLUSTERLAB_BROKER_BIN);
  const proc = spawn(BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const url = `http://127.0.0.1:${port}`;
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`lab did not start: ${log.join('\n')}`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      log.push(d.toString());
      if (d.toString().includes('"ready"')) {
        clearTimeout(timer);
        ok();
      }
    });
    proc.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
    proc.on('exit', (code) => fail(new Error(`lab exited (${code}): ${log.join('\n')}`)));
  });
  return { url, token, proc, log, dir };
}

/** Debian's chromium, headless, as every browser test and benchmark runs it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/** A page on the lab's UI, signed in with its token, once the lab can start a cluster. */
export async function openLabPage(browser: Browser, lab: Lab, viewport: { width: number; height: number }, acceptDownloads = false): Promise<Page> {
  const page = await (await browser.newContext({ viewport, acceptDownloads })).newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(`${lab.url}/?token=${lab.token}`);
  await page.locator('#start-cluster:not([disabled])').waitFor({ timeout: 15_000 });
  return page;
}

/** Stops the cluster, then the server (SIGTERM; SIGKILL after 30 s). */
export async function stopLab(lab: Lab): Promise<void> {
  await fetch(`${lab.url}/api/command`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${lab.token}` }, body: JSON.stringify({ command: 'stop_cluster' }) }).catch(() => undefined);
  if (lab.proc.exitCode !== null) return removeUnlessKept(lab.dir);
  const exited = new Promise((ok) => lab.proc.once('exit', ok));
  lab.proc.kill('SIGTERM');
  const timer = setTimeout(() => lab.proc.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
  removeUnlessKept(lab.dir);
}

/** CLUSTERLAB_E2E_KEEP=1 keeps the lab's directory (its recent runs hold every broker's log). */
function removeUnlessKept(dir: string): void {
  if (process.env.CLUSTERLAB_E2E_KEEP === '1') console.warn(`kept the lab's directory: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
