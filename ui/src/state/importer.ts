// Building a model from a JSON Lines run in slices. A 100k-event file is ~0.5 s of parsing and
// folding; done in one go it freezes the page (no frames, no input) for all of it. Here the work
// pauses every few milliseconds so the page keeps drawing and answering while it loads.

import type { TimelineEvent } from '../api/types';
import { emptyModel, type Model } from './model';
import { applyTimeline } from './reducer';

export interface Slicing {
  /** Lets the page run (draw a frame, handle input) before the next slice. */
  pause(): Promise<void>;
  /** Milliseconds of work per slice. */
  budgetMs?: number;
  /** Progress from 0 to 1. */
  progress?(fraction: number): void;
}

const CHECK_EVERY = 128; // steps between clock reads

/** Calls `step` until it returns false, pausing whenever a slice has used its budget. */
async function sliced(step: () => boolean, s: Slicing, progress: () => number): Promise<void> {
  const budget = s.budgetMs ?? 8;
  let start = performance.now();
  for (let i = 1; step(); i++) {
    if (i % CHECK_EVERY === 0 && performance.now() - start > budget) {
      s.progress?.(progress());
      await s.pause();
      start = performance.now();
    }
  }
}

/** Parses a JSON Lines timeline and folds it, in seq order, into a model sized to hold it all. */
export async function buildModel(text: string, s: Slicing): Promise<{ model: Model; events: number }> {
  const events: TimelineEvent[] = [];
  // Lines are cut as they are parsed: splitting 30 MB up front was itself a ~50 ms block.
  let pos = 0;
  await sliced(() => {
    if (pos >= text.length) return false;
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl;
    const line = text.slice(pos, end);
    pos = end + 1;
    if (line.trim()) events.push(JSON.parse(line) as TimelineEvent);
    return true;
  }, s, () => pos / text.length / 2); // parsing and folding are about equal halves of the work
  if (events.some((e, i) => i > 0 && e.seq < events[i - 1].seq)) events.sort((a, b) => a.seq - b.seq);
  const model = emptyModel(Math.max(events.length, 1));
  let i = 0;
  await sliced(() => {
    if (i >= events.length) return false;
    applyTimeline(model, events[i++]);
    return true;
  }, s, () => 0.5 + i / events.length / 2);
  return { model, events: events.length };
}

/**
 * A pause that lets a frame and input through: a message to ourselves, queued behind whatever
 * the page has to do. (Measured on a 135k-event import: scheduler.yield resumes ahead of rendering,
 * so frames came only every ~100 ms; setTimeout is clamped to 4 ms once nested; pausing until the
 * next animation frame drew every frame but took 40 % longer. This: frame gaps <= 33 ms, +10 %.)
 */
export function yieldToPage(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}
