// Real-window test: the built clusterlab-desktop under tauri-driver (WebKitWebDriver), driven over
// plain WebDriver HTTP with fetch (no npm deps). Run via run.sh, which provides Xvfb and the builds.
// Env: APP (desktop binary), TAURI_DRIVER, SHOT (png path), XDG_DATA_HOME (private run dirs and
// recent runs), XDG_CONFIG_HOME (private preferences and window state).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, mkdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';

const { APP, TAURI_DRIVER = 'tauri-driver', SHOT, XDG_DATA_HOME } = process.env;
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const t0 = Date.now();
const log = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on('error', fail);
  });
}

let base; // http://127.0.0.1:<port>
async function wd(method, path, body, timeoutMs = 60_000) {
  const res = await fetch(base + path, {
    method, headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json.value ?? json).slice(0, 300)}`);
  return json.value;
}

/** Polls fn until it returns a truthy value; fails with `what` after ms. */
async function until(what, ms, fn) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; last = v; } catch (e) { last = e.message; }
    await sleep(250);
  }
  throw new Error(`timed out after ${ms / 1000}s waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** Processes whose command line or environment mentions our private data dir (root sees all). */
function ourProcesses(name) {
  const found = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readlinkSync(`/proc/${pid}/exe`).endsWith(name)) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (cmd.includes(XDG_DATA_HOME) || env.includes(`XDG_DATA_HOME=${XDG_DATA_HOME}\0`)) found.push(Number(pid));
    } catch { /* gone or not ours */ }
  }
  return found;
}

let driver, session, js, click;

/** Opens a WebDriver session on a new app process (`args`: its command line). */
async function openApp(args) {
  const s = await wd('POST', '/session', { capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application: APP, args } } } });
  session = `/session/${s.sessionId}`;
  js = (script, ...a) => wd('POST', `${session}/execute/sync`, { script, args: a });
  click = async (css) => {
    // Panels re-render every state tick, so an element can go stale between find and click: retry.
    await until(`a click on ${css}`, 10_000, async () => {
      const el = await wd('POST', `${session}/element`, { using: 'css selector', value: css });
      await wd('POST', `${session}/element/${el[ELEMENT]}/click`, {});
      return true;
    });
  };
}

/** Closes the window the way its title bar does and waits for the app and its brokers to end. */
async function closeApp() {
  // Tauri CloseRequested -> Lab::close -> exit. Not WebDriver's close-window/delete-session:
  // WebKitWebDriver then SIGKILLs the app, which would prove only PDEATHSIG, not the app's own
  // shutdown.
  // The window may be gone before WebKitWebDriver answers the script (HTTP 500, seen once in CI
  // after the lesson): the wait below, not that answer, decides whether the app closed itself.
  await js('window.__TAURI__.window.getCurrentWindow().close(); return true;')
    .catch((e) => log(`close script answered ${e.message.slice(0, 120)}; waiting for the exit anyway`));
  log('window close requested; waiting for the app to stop its cluster and exit');
  await until('the app to exit by itself', 30_000, () => ourProcesses('clusterlab-desktop').length === 0);
  log('app exited');
  await until('no clusterlab-broker left', 10_000, () => ourProcesses('clusterlab-broker').length === 0);
  await wd('DELETE', session, undefined, 20_000).catch((e) => log(`delete session after the app exited: ${e.message.slice(0, 120)}`));
  session = undefined;
}

async function main() {
  if (!APP || !SHOT || !XDG_DATA_HOME) throw new Error('set APP, SHOT and XDG_DATA_HOME (run.sh does)');
  const port = await freePort();
  const nativePort = await freePort();
  base = `http://127.0.0.1:${port}`;
  driver = spawn(TAURI_DRIVER, ['--port', String(port), '--native-port', String(nativePort)], { stdio: ['ignore', 'inherit', 'inherit'] });
  driver.on('exit', (code, sig) => log(`tauri-driver exited (${code ?? sig})`));
  await until('tauri-driver and WebKitWebDriver to answer /status', 15_000, async () => (await fetch(`${base}/status`).catch(() => null))?.ok);
  log(`tauri-driver on :${port}`);

  await openApp(['--start']);
  log('session open; waiting for the UI');

  // Launched as scripts/run.sh launches it (--start): the window opens on a starting cluster.
  await until('three running nodes', 60_000, () => js("return document.querySelectorAll('#topology g.node.running').length === 3;"));
  const brokers = ourProcesses('clusterlab-broker');
  if (brokers.length !== 3) throw new Error(`expected 3 brokers under ${XDG_DATA_HOME}, found ${brokers.length}: the process check would be meaningless`);
  // Partition groups exist once the topic does; the workload creates it (as ui/e2e does).
  await click('#start-workload:not([disabled])');
  log('start workload pressed');
  const leaders = () => js(`return ['lab-0','lab-1','lab-2'].map((g) => {
      const row = document.querySelector('#groups tr[data-group="' + g + '"]');
      return { leader: row?.querySelector('.leader-cell')?.getAttribute('data-leader') || '', term: Number(row?.querySelector('td.term')?.textContent) };
    });`);
  const before = await until('a leader for every partition', 60_000, async () => { const l = await leaders(); return l.every((x) => x.leader) && l; });
  log(`3 nodes (broker pids ${brokers.join(',')}); leaders ${JSON.stringify(before)}`);

  // The Raft view, in WebKitGTK as users see it: watch lab-0 (the lab then records its messages).
  await until('lab-0 in the Raft view\'s group list', 30_000, () => js("return !!document.querySelector('#raft-group option[value=\"lab-0\"]');"));
  await js("const s = document.querySelector('#raft-group'); s.value = 'lab-0'; s.dispatchEvent(new Event('change')); return true;");
  const ring = await until('the Raft view to draw lab-0 with three replicas and a leader', 30_000, () => js(`
    const svg = document.querySelector('#raft svg.raft-ring'), l = document.querySelector('#raft g.rnode.leader');
    return svg?.getAttribute('data-group') === 'lab-0' && document.querySelectorAll('#raft g.rnode').length === 3 && l
      && { node: l.getAttribute('data-node'), term: Number(l.getAttribute('data-term')) };`));
  log(`Raft view: lab-0 led by n${ring.node} in term ${ring.term}`);

  // WebKitWebDriver finds an SVG <g> "not interactable" (no box of its own): click its circle.
  // The topology SVG is rebuilt on every state tick; a click whose press and release straddle a
  // rebuild is lost, so click again until the node menu is open.
  await until('the node menu to open', 20_000, async () => {
    await click(`#topology g.node[data-node="${before[0].leader}"] circle.node-circle`);
    await sleep(300);
    return js(`return !!document.querySelector('.menu:not([hidden]) button[data-fault="kill"]');`);
  });
  await click('.menu button[data-fault="kill"]');
  log(`kill pressed on node ${before[0].leader} (leader of partition 0, term ${before[0].term})`);
  const after = await until('a new leader of partition 0 with a higher term', 60_000, async () => {
    const [p0] = await leaders();
    return p0.leader && p0.leader !== before[0].leader && p0.term > before[0].term && p0;
  });
  log(`new leader of partition 0: node ${after.leader}, term ${after.term}`);
  // The Raft view plays the election it recorded: a won tally in a higher term, a new leader.
  const won = await until('the Raft view to show the election won in a higher term', 60_000, async () => {
    const r = await js(`
      const t = document.querySelector('#raft-tally'), l = document.querySelector('#raft g.rnode.leader');
      const done = t?.getAttribute('data-won') === 'true' && Number(t.getAttribute('data-term')) > ${ring.term} && l
        && Number(l.getAttribute('data-term')) > ${ring.term};
      return { done, node: l?.getAttribute('data-node'), term: l?.getAttribute('data-term'), tally: t?.textContent,
        status: document.querySelector('#raft .toolbar span:last-child')?.textContent, msgs: document.querySelectorAll('#raft .msg').length };`);
    if (!r.done) throw new Error(JSON.stringify(r)); // the last state shows in the timeout message
    return r;
  });
  log(`Raft view: election won by n${won.node} in term ${won.term}`);

  await sleep(1500); // let the panels redraw the new leader before the picture
  const png = await wd('GET', `${session}/screenshot`);
  mkdirSync(dirname(SHOT), { recursive: true });
  writeFileSync(SHOT, Buffer.from(png, 'base64'));
  log(`screenshot: ${SHOT}`);

  // What the next start must remember: a cluster started with other settings, the light
  // theme, a folded panel, the window's size.
  // Plain buttons, pressed from the page: a WebDriver click at the window's bottom edge was lost.
  const press = (css) => js(`const b = document.querySelector(${JSON.stringify(css)}); if (!b || b.disabled) return false; b.click(); return true;`);
  await until('Stop cluster to be pressed', 10_000, () => press('#stop-cluster'));
  await until('the cluster to stop', 30_000, () => js("return !!document.querySelector('#start-cluster:not([disabled])');"));
  await js("const i = document.querySelector('#settings input[name=partitions]'); i.value = '5'; return true;");
  await until('Start cluster to be pressed', 10_000, () => press('#start-cluster'));
  await until('three running nodes again', 60_000, () => js("return document.querySelectorAll('#topology g.node.running').length === 3;"));
  await press('#theme');
  await js("document.querySelector('#export > h2').click(); return true;");
  await until('the light theme and a folded export panel', 5_000, () => js("return document.body.classList.contains('light') && document.querySelector('#export').classList.contains('folded');"));
  const rect = await wd('POST', `${session}/window/rect`, { width: 1200, height: 760 });
  log(`window set to ${rect.width}x${rect.height}; theme light; export panel folded; partitions 5`);
  await closeApp();
  log('PASS: no clusterlab-broker process of this test remains');

  // A second start of the real app, without --start: it remembers.
  await openApp([]);
  await until('the UI to connect', 30_000, () => js("return document.querySelector('#conn')?.dataset.status === 'open';"));
  const again = await until('the remembered preferences to apply', 15_000, () => js(`return document.body.classList.contains('light') && {
      partitions: document.querySelector('#settings input[name=partitions]').value,
      folded: document.querySelector('#export').classList.contains('folded'),
    };`));
  if (again.partitions !== '5' || !again.folded) throw new Error(`after a restart: ${JSON.stringify(again)}; expected partitions 5 and the export panel folded`);
  const runs = await until('both cluster runs in Recent runs', 15_000, async () => {
    const r = await js("return [...document.querySelectorAll('#runs-table tr[data-run]')].map((r) => r.dataset.status + ' ' + r.dataset.run);");
    return r.filter((x) => /^complete .*-cluster$/.test(x)).length >= 2 && r;
  });
  const rect2 = await wd('GET', `${session}/window/rect`);
  if (rect2.width !== rect.width || rect2.height !== rect.height) throw new Error(`window reopened at ${rect2.width}x${rect2.height}, closed at ${rect.width}x${rect.height}`);
  log(`after a restart: light theme, partitions 5, export folded, window ${rect2.width}x${rect2.height}, recent runs ${JSON.stringify(runs)}`);

  // A guided lesson in the real window, from a stopped lab: the lesson starts its own cluster,
  // and a presenter presses Next at each step (at a learner's step the lab then does the fault).
  const LESSON = 'minority-leader-rollback';
  await until(`${LESSON} in the lesson list`, 15_000, () => js(`return !!document.querySelector('#lesson-select option[value="${LESSON}"]');`));
  await js(`const s = document.querySelector('#lesson-select'); s.value = '${LESSON}'; s.dispatchEvent(new Event('change')); return true;`);
  await until('Start lesson to be pressed', 10_000, () => press('#run-lesson'));
  const steps = new Set();
  const verdict = await until(`the verdict of ${LESSON}`, 120_000, async () => {
    const now = await js(`const v = document.querySelector('#lesson-verdict'), a = document.querySelector('#lesson-awaiting');
      return { ok: v?.dataset.ok || '', summary: v?.textContent, awaiting: a?.dataset.awaiting || '',
        counter: document.querySelector('#lesson-counter')?.textContent };`);
    if (now.awaiting && (await press('#lesson-next'))) steps.add(now.counter);
    return now.ok && now;
  });
  if (verdict.ok !== 'true') throw new Error(`${LESSON} in the window: ${verdict.summary}`);
  log(`lesson ${LESSON}: Next pressed at ${steps.size} steps; verdict ${verdict.summary.trim()}`);
  await closeApp();
  log('PASS: the restarted app remembered its settings, window and runs, and ran a guided lesson');
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.message}`);
  if (session) {
    // What the window showed when it failed: the groups table and a picture next to the real one.
    const groups = await js?.("return [...document.querySelectorAll('#groups tr[data-group]')].map((r) => r.textContent);").catch(() => null);
    console.error(`groups table: ${JSON.stringify(groups)}`);
    const png = await wd('GET', `${session}/screenshot`).catch(() => null);
    if (png) { writeFileSync(SHOT.replace(/\.png$/, '-failed.png'), Buffer.from(png, 'base64')); console.error(`failure screenshot: ${SHOT.replace(/\.png$/, '-failed.png')}`); }
  }
} finally {
  if (session) await wd('DELETE', session, undefined, 30_000).catch(() => {});
  if (driver && driver.exitCode === null) driver.kill('SIGTERM');
  // Whatever we started and is still around after a failure: stop it, then report it.
  for (const pid of [...ourProcesses('clusterlab-desktop'), ...ourProcesses('clusterlab-broker')]) {
    failed = true;
    console.error(`leftover process ${pid}: killing it`);
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}
process.exit(failed ? 1 : 0);
