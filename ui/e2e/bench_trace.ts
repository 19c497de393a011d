// Main-thread load of a page from a Chrome trace: how much of a window its renderer's main
// thread spent in tasks, by the wall clock and on the CPU. On a shared 2-vCPU machine the two
// differ a lot: a task that takes 50 ms of wall time may hold the CPU for 5 ms of it, the rest
// being other processes (the lab, the brokers, builds) running instead.

import type { Browser, Page } from 'playwright-core';

export interface MainThread { windowMs: number; busyMs: number; cpuMs: number; tasks: number; over50: number }

interface TraceEvent { name: string; ph: string; pid: number; tid: number; ts: number; dur?: number; tdur?: number; args?: { name?: string } }

/** Traces `page` while `during` runs and sums its main thread's tasks. */
export async function traceMainThread(browser: Browser, page: Page, during: () => Promise<void>): Promise<MainThread> {
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] });
  const t0 = Date.now();
  await during();
  const windowMs = Date.now() - t0;
  const events = (JSON.parse((await browser.stopTracing()).toString()) as { traceEvents: TraceEvent[] }).traceEvents;
  const mains = new Set(events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  // One renderer per open page; the busiest main thread is the page under test.
  const per = new Map<string, MainThread>();
  for (const e of events) {
    const key = `${e.pid}:${e.tid}`;
    if (e.name !== 'RunTask' || e.ph !== 'X' || !mains.has(key)) continue;
    const m = per.get(key) ?? { windowMs, busyMs: 0, cpuMs: 0, tasks: 0, over50: 0 };
    m.busyMs += (e.dur ?? 0) / 1000;
    m.cpuMs += (e.tdur ?? 0) / 1000;
    m.tasks++;
    if ((e.dur ?? 0) >= 50_000) m.over50++;
    per.set(key, m);
  }
  return [...per.values()].sort((a, b) => b.busyMs - a.busyMs)[0] ?? { windowMs, busyMs: 0, cpuMs: 0, tasks: 0, over50: 0 };
}
