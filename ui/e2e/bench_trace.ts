// Main-thread load of a page from a Chrome trace: how much of a window its renderer's main
// thread spent in tasks, by the wall clock and on the CPU. On a shared 2-vCPU machine the two
// differ a lot: a task that takes 50 ms of wall time may hold the CPU for 5 ms of it, the rest
// being other processes (the lab, the brokers, builds) running instead.

import { readdirSync, readFileSync } from 'node:fs';
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

/**
 * CPU seconds used so far by `root`'s descendants whose command name starts with `name` (Linux
 * /proc; 0 elsewhere). Counts every process of a kind: for the browser, the renderer with its
 * worker and raster threads, the GPU (software) and network processes.
 */
export function treeCpuSeconds(root: number, name: string): number {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  const procs = new Map<number, { ppid: number; comm: string; cpu: number }>();
  for (const d of entries) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')'); // the command name may hold spaces and parentheses
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' '); // f[0] = state, f[1] = ppid, f[11] = utime, f[12] = stime
      procs.set(Number(d), { ppid: Number(f[1]), comm, cpu: (Number(f[11]) + Number(f[12])) / TICKS });
    } catch {
      // exited while we looked
    }
  }
  const under = (pid: number): boolean => {
    for (let p = procs.get(pid)?.ppid; p !== undefined && p > 1; p = procs.get(p)?.ppid) if (p === root) return true;
    return false;
  };
  let total = 0;
  for (const [pid, p] of procs) if (p.comm.startsWith(name) && under(pid)) total += p.cpu;
  return total;
}

const TICKS = 100; // USER_HZ: /proc times are in 1/100 s on Linux
