// Browser end-to-end of a guided lesson on a real lab: pick "leader crash", do what each step
// asks from the node menu, press Next after each explanation, and get the lesson's verdict.

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, launchChromium, openLabPage, shot, startLab, stopLab } from './server';

const TOKEN = 'e2e-lesson';
let lab: Lab;
let browser: Browser;
let page: Page;

/** What the lesson panel shows: the step, its explanation (or hint), and the verdict. */
async function shown(p: Page): Promise<string> {
  return p.evaluate(() => ['#lesson-counter', '#lesson-step', '#lesson-explain', '#lesson-verdict']
    .map((s) => document.querySelector(s)?.textContent ?? '').join(' | '));
}

/** Waits until the lesson waits for `what` (`learner` or `next`) at a step whose text matches. */
async function awaiting(p: Page, what: 'learner' | 'next', text: RegExp, timeout = 30_000): Promise<void> {
  try {
    await p.waitForFunction(({ what, src }) => {
      const waiting = document.querySelector('#lesson-awaiting')?.getAttribute('data-awaiting');
      const shown = `${document.querySelector('#lesson-step')?.textContent} ${document.querySelector('#lesson-explain')?.textContent}`;
      return waiting === what && new RegExp(src).test(shown);
    }, { what, src: text.source }, { timeout });
  } catch {
    throw new Error(`the lesson did not await ${what} at ${text} within ${timeout} ms; it shows: ${await shown(p)}`);
  }
}

/** The node menu's `fault` on node `id` of the topology. */
async function fromNodeMenu(p: Page, id: string, fault: string): Promise<void> {
  await p.click(`#topology g.node[data-node="${id}"]`);
  await p.click(`.menu button[data-fault="${fault}"]`);
}

/**
 * Kills the leader of orders/0 as a learner would: the node the table shows. If the lesson answers
 * "Not quite" (leadership moved between the look and the click), the node killed by mistake comes
 * back and the node the lesson names is killed. Returns the node killed as the leader.
 */
async function killTheLeader(p: Page, shownLeader: string): Promise<string> {
  await fromNodeMenu(p, shownLeader, 'kill');
  let named: string;
  try {
    const h = await p.waitForFunction(() => {
      const waiting = document.querySelector('#lesson-awaiting')?.getAttribute('data-awaiting');
      const explain = document.querySelector('#lesson-explain')?.textContent ?? '';
      if (waiting === 'next' && /won 2 of 3 votes in a higher term/.test(explain)) return 'elected';
      return /Not quite: the lesson waits for kill on n(\d)/.exec(explain)?.[1] ?? false;
    }, null, { timeout: 30_000 });
    named = String(await h.jsonValue());
  } catch {
    throw new Error(`no election explained and no hint within 30 s; the lesson shows: ${await shown(p)}`);
  }
  if (named === 'elected') return shownLeader;
  console.warn(`the lesson wanted n${named}, not n${shownLeader}: leadership moved before the click`);
  await fromNodeMenu(p, shownLeader, 'restart');
  await p.waitForFunction(() => document.querySelectorAll('#topology g.node.running').length === 3, null, { timeout: 30_000 });
  await fromNodeMenu(p, named, 'kill');
  await awaiting(p, 'next', /won 2 of 3 votes in a higher term/);
  return named;
}

beforeAll(async () => {
  lab = await startLab(TOKEN);
  browser = await launchChromium();
  page = await openLabPage(browser, lab, { width: 1600, height: 1400 });
});

afterAll(async () => {
  await browser?.close();
  if (lab) await stopLab(lab);
});

describe('a guided lesson', () => {
  it('walks "leader crash" by clicking: kill the leader, read why, restart it, and passes', async () => {
    await page.locator('#lesson-select option[value="leader-crash"]').waitFor({ state: 'attached', timeout: 15_000 });
    await page.selectOption('#lesson-select', 'leader-crash');
    expect(await page.locator('#lesson-about').textContent()).toContain('SIGKILL the leader of orders/0');
    await page.click('#run-lesson');

    // Step 1 waits for the learner: the lab has started its cluster and watches orders-0.
    await awaiting(page, 'learner', /Kill the leader of orders\/0/, 60_000);
    const cell = '#groups tr[data-group="orders-0"] .leader-cell';
    await page.waitForFunction((sel) => !!document.querySelector(sel)?.getAttribute('data-leader'), cell, { timeout: 30_000 });
    const leader = (await page.locator(cell).getAttribute('data-leader'))!;
    // The Raft view shows the lesson's group (the lab selected it).
    await page.waitForFunction(() => (document.querySelector('#raft-group') as HTMLSelectElement | null)?.value === 'orders-0', null, { timeout: 15_000 });
    expect(await page.locator('#lesson-next').isEnabled()).toBe(true); // Next would let the lab do it
    // The lab saw the right action: the election follows, then its explanation, then Next.
    const killed = await killTheLeader(page, leader);
    expect(await page.locator('#lesson-counter').textContent()).toMatch(/step 2 of 4/);
    await shot(page, '#lesson', 'lesson.png');
    await page.click('#lesson-next');

    await awaiting(page, 'learner', /Bring the old leader back/);
    await fromNodeMenu(page, killed, 'restart');
    await awaiting(page, 'next', /restarts as a follower of the new term/);
    await page.keyboard.press('PageDown'); // a presenter's clicker: the same Next

    // The verdict: nothing acknowledged lost, and the Raft trace showed the election.
    await page.waitForFunction(() => document.querySelector('#lesson-verdict')?.getAttribute('data-ok') === 'true', null, { timeout: 60_000 });
    expect(await page.locator('#lesson-verdict').textContent()).toMatch(/PASS.*0 lost/);
    expect(await page.locator('#lesson-counter').textContent()).toMatch(/done/);
  });
});
