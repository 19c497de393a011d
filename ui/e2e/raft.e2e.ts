// Browser end-to-end of the Raft view: a live election after a leader kill, drawn from the
// messages the real broker processes recorded; pause and step.

import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, launchChromium, openLabPage, shot, startLab, stopLab } from './server';

const TOKEN = 'e2e-raft';
let lab: Lab;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  lab = await startLab(TOKEN);
  browser = await launchChromium();
  page = await openLabPage(browser, lab, { width: 1600, height: 1500 }, true);
});

afterAll(async () => {
  await browser?.close();
  if (lab) await stopLab(lab);
});

describe('the Raft view', () => {
  it('shows a live election after the leader of lab-0 is killed: vote requests and replies, a new term', async () => {
    await page.click('#start-cluster');
    await page.waitForFunction(() => document.querySelectorAll('#topology g.node.running').length === 3, null, { timeout: 30_000 });
    await page.locator('#start-workload:not([disabled])').click(); // creates topic "lab"
    await page.locator('#raft-group option[value="lab-0"]').waitFor({ state: 'attached', timeout: 30_000 });
    await page.selectOption('#raft-group', 'lab-0');
    // The nodes record lab-0 now: the ring shows its three replicas and a leader.
    await page.waitForFunction(() => document.querySelector('#raft svg.raft-ring')?.getAttribute('data-group') === 'lab-0'
      && document.querySelectorAll('#raft g.rnode').length === 3 && !!document.querySelector('#raft g.rnode.leader'), null, { timeout: 30_000 });
    // Appends of the workload's records travel along the links (polled every animation frame).
    await page.waitForFunction(() => !!document.querySelector('#raft .msg.append'), null, { timeout: 30_000, polling: 'raf' });
    expect(await page.locator('#raft .log-row').count()).toBe(3);
    // The leader's next index for its followers, read off its AppendEntries: in the row heads and
    // as an outlined cell.
    await page.waitForFunction(() => [...document.querySelectorAll('#raft .log-head')].filter((h) => /· next \d+/.test(h.textContent ?? '')).length === 2
      && !!document.querySelector('#raft .entry.next-mark'), null, { timeout: 30_000, polling: 'raf' });
    // The live leader (the Raft view plays behind live, and a loaded machine may have re-elected
    // since the moment it shows).
    const cell = '#groups tr[data-group="lab-0"]';
    await page.waitForFunction((sel) => !!document.querySelector(`${sel} .leader-cell`)?.getAttribute('data-leader'), cell, { timeout: 30_000 });
    const before = { node: Number(await page.locator(`${cell} .leader-cell`).getAttribute('data-leader')), term: Number(await page.locator(`${cell} td.term`).textContent()) };
    expect(before.term).toBeGreaterThan(0);

    await page.click(`#topology g.node[data-node="${before.node}"]`);
    await page.click('.menu button[data-fault="kill"]');
    // Following live, the view jumps to the election and plays it in slow motion.
    await page.waitForFunction(() => !!document.querySelector('#raft .msg.vote'), null, { timeout: 30_000, polling: 'raf' });
    // From the first vote request on the test walks the election with Step, the view paused, so
    // that neither the machine's speed nor Follow skipping ahead decides what it sees (two CI runs
    // failed on that: 30 s of 1/25x playback not reaching the granted reply, and the view moving
    // past the won election before the check saw it).
    await page.click('#raft-play');
    const wonWithOldDown = (old: { node: number; term: number }) => page.evaluate((old) => {
      const tally = document.querySelector('#raft-tally');
      return tally?.getAttribute('data-won') === 'true' && Number(tally.getAttribute('data-term')) > old.term
        && Number(tally.getAttribute('data-candidate')) !== old.node
        && document.querySelector(`#raft g.rnode[data-node="${old.node}"]`)?.getAttribute('data-role') === 'Down'
        && /granted n\d its vote in term \d+/.test(document.querySelector('#raft-captions')?.textContent ?? '');
    }, old);
    const viewTime = async () => Number(await page.locator('#raft-status').getAttribute('data-t'));
    const end = Date.now() + 90_000;
    while (!(await wonWithOldDown(before))) {
      if (Date.now() > end) {
        // Say what the view showed instead: which election, which roles, how far behind live.
        const seen = await page.evaluate(() => ({
          tally: document.querySelector('#raft-tally')?.textContent,
          roles: [...document.querySelectorAll('#raft g.rnode')].map((n) => `n${n.getAttribute('data-node')} ${n.getAttribute('data-role')} t${n.getAttribute('data-term')}`),
          status: document.querySelector('#raft-status')?.textContent,
          captions: document.querySelector('#raft-captions')?.textContent,
        }));
        throw new Error(`stepping for 90 s never showed the election after killing n${before.node} (term ${before.term}) won with n${before.node} down: ${JSON.stringify(seen)}`);
      }
      const t = await viewTime();
      await page.click('#raft-step');
      // The next message or decision; at the live edge the step waits for new messages.
      await page.waitForFunction((t) => Number(document.querySelector('#raft-status')?.getAttribute('data-t')) > t, t, { timeout: 5_000 }).catch(() => undefined);
    }
    expect(await page.locator('#raft-play').textContent()).toContain('Play');
    expect(await page.locator(`#raft g.rnode[data-node="${before.node}"]`).getAttribute('data-role')).toBe('Down');
    expect((await page.locator('#raft-captions').textContent()) ?? '').toMatch(/granted n\d its vote in term \d+/);
    // The live dashboard agrees: another node leads lab-0 in a higher term.
    await page.waitForFunction(({ sel, old }) => {
      const l = document.querySelector(`${sel} .leader-cell`)?.getAttribute('data-leader');
      return !!l && Number(l) !== old.node && Number(document.querySelector(`${sel} td.term`)?.textContent) > old.term;
    }, { sel: cell, old: before }, { timeout: 30_000 });
    // The timeline marks the same captions along the fault row (words on hover).
    expect(Number(await page.locator('canvas.timeline-canvas').getAttribute('data-raft-captions'))).toBeGreaterThan(0);
    await shot(page, '#raft', 'raft-view.png');
  });

  it('shows the election as a sequence diagram and exports it as SVG with one lane per node', async () => {
    await page.click('#raft .raft-seq summary');
    await page.waitForFunction(() => document.querySelectorAll('#raft-sequence svg line.lane').length === 3, null, { timeout: 10_000 });
    // A paused view still redraws the diagram for another window.
    await page.selectOption('#raft-seq-window', '0.5');
    await page.waitForFunction(() => / \(500 ms\)/.test(document.querySelector('#raft-sequence svg text')?.textContent ?? ''), null, { timeout: 5_000 });
    await page.selectOption('#raft-seq-window', '2');
    await page.waitForFunction(() => / \(2000 ms\)/.test(document.querySelector('#raft-sequence svg text')?.textContent ?? ''), null, { timeout: 5_000 });
    expect(await page.locator('#raft-sequence g.msg.vote').count()).toBeGreaterThan(0); // the election just shown
    const download = page.waitForEvent('download');
    await page.click('#raft-seq-export');
    const file = await (await download).path();
    const svg = readFileSync(file, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/class="lane"/g)).toHaveLength(3);
    // The browser's own XML parser accepts it as SVG.
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      return { error: doc.querySelector('parsererror')?.textContent ?? null, root: doc.documentElement.nodeName, lanes: doc.querySelectorAll('line.lane').length };
    }, svg);
    expect(parsed).toEqual({ error: null, root: 'svg', lanes: 3 });
    await shot(page, '#raft', 'raft-sequence.png');
    await page.click('#raft .raft-seq summary');
  });

  it('pause holds the picture still; step moves to the next message', async () => {
    expect(await page.locator(`#raft .log-row.down`).count()).toBe(1); // the killed node's last report, faded
    expect(await page.locator('#raft-play').textContent()).toContain('Play'); // paused since the election
    const at = Number(await page.locator('#raft-status').getAttribute('data-t'));
    await page.waitForTimeout(2_000); // many frames, and seconds of new messages: a paused view must not move
    expect(Number(await page.locator('#raft-status').getAttribute('data-t'))).toBe(at);
    await page.click('#raft-step');
    await page.waitForFunction((t) => Number(document.querySelector('#raft-status')?.getAttribute('data-t')) > t, at, { timeout: 5_000 });
    await page.click('#raft-follow');
    expect(await page.locator('#raft-play').textContent()).toContain('Pause');
  });

  it("shows an isolated leader's uncommitted entries rolled back once the partition heals", async () => {
    await page.selectOption('#raft-speed', '1'); // real time: the heal follows the isolation by seconds
    await page.keyboard.press('r'); // restart the node killed above
    await page.waitForFunction(() => document.querySelectorAll('#topology g.node.running').length === 3, null, { timeout: 30_000 });
    const cell = '#groups tr[data-group="lab-0"]';
    // The workload keeps producing through the isolated leader's client link for the moments it
    // still believes it leads: those entries cannot commit. Rarely none arrive in that window;
    // then the isolation is repeated.
    for (let attempt = 1; ; attempt++) {
      await page.waitForFunction((sel) => !!document.querySelector(`${sel} .leader-cell`)?.getAttribute('data-leader'), cell, { timeout: 30_000 });
      const old = { leader: (await page.locator(`${cell} .leader-cell`).getAttribute('data-leader')) ?? '', term: Number(await page.locator(`${cell} td.term`).textContent()) };
      await page.click(`#topology g.node[data-node="${old.leader}"]`);
      await page.click('.menu button[data-fault="isolate"]');
      await page.waitForFunction(({ sel, o }) => {
        const l = document.querySelector(`${sel} .leader-cell`)?.getAttribute('data-leader');
        return !!l && l !== o.leader && Number(document.querySelector(`${sel} td.term`)?.textContent) > o.term;
      }, { sel: cell, o: old }, { timeout: 30_000 });
      await page.click('#heal-all');
      // The isolated leader's row; the node restarted above may show a rollback of its own (the
      // uncommitted tail it had when it was killed), which is not the one this test is after.
      const mine = `#raft .log-row.rolled-back[data-node="${old.leader}"]`;
      const rolled = await page.waitForFunction((sel) => !!document.querySelector(sel), mine, { timeout: 20_000, polling: 'raf' }).then(() => true, () => false);
      if (rolled) {
        const row = page.locator(mine).first();
        // Entries of the isolated leader's term: the one the groups table showed or a later one
        // (the table can lag a re-election the view already played).
        const note = (await row.locator('.rollback-note').textContent()) ?? '';
        const term = Number(/discarded \d+ from index \d+ \(\d+× term (\d+)/.exec(note)?.[1]);
        expect(term, `rollback note "${note}"`).toBeGreaterThanOrEqual(old.term);
        await page.click('#raft-play'); // hold it for the picture
        await shot(page, '#raft', 'raft-rollback.png');
        await page.click('#raft-play');
        return;
      }
      expect(attempt, 'three isolations and the isolated leader never rolled back an entry').toBeLessThan(3);
    }
  });
  it('a click on a link of the ring cuts it both ways and its messages are drawn lost; a second click heals it', async () => {
    await page.waitForFunction(() => !!document.querySelector('#raft g.rnode.leader'), null, { timeout: 30_000 });
    const leader = Number(await page.locator('#raft g.rnode.leader').getAttribute('data-node'));
    const other = leader === 1 ? 2 : 1;
    const key = `${Math.min(leader, other)}-${Math.max(leader, other)}`;
    const link = `#raft g.rlink-g[data-link="${key}"]`;
    await page.click(`${link} .rlink-hit`);
    await page.waitForFunction((sel) => !!document.querySelector(`${sel}.cut`), link, { timeout: 15_000 });
    // The lab's proxy now drops what the link carries: the topology shows the same cut, and the
    // leader's messages to that follower are drawn lost.
    await page.waitForFunction((k) => !!document.querySelector(`#topology g.link[data-link="${k}"] .lk-label`), key, { timeout: 15_000 });
    await page.waitForFunction(() => !!document.querySelector('#raft .msg.dropped'), null, { timeout: 30_000, polling: 'raf' });
    await page.click(`${link} .rlink-hit`);
    await page.waitForFunction((sel) => !document.querySelector(`${sel}.cut`), link, { timeout: 15_000 });
    await page.waitForFunction((k) => !document.querySelector(`#topology g.link[data-link="${k}"] .lk-label`), key, { timeout: 15_000 });
  });
});
