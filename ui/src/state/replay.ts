// Replay: a model rebuilt from a run's timeline up to a cursor time; plays forward at a speed.
//
// Moving the cursor forward applies the events in between. Moving it back used to rebuild from
// the first event, ~100 ms per scrub step on a 100k-event run; now it starts from the nearest
// saved checkpoint (a model copy every few thousand events) at or before the target.

import type { TimelineEvent } from '../api/types';
import { cloneModel, emptyModel, type Model } from './model';
import { applyTimeline } from './reducer';

export interface EventSource {
  length: number;
  at(i: number): TimelineEvent | undefined;
  /** Events dropped from the front so far (a live ring): indices here are absolute past them. */
  dropped?: number;
}

/** At most this many checkpoints per replay (memory), each at least MIN_SPACING events apart. */
const CHECKPOINTS = 24;
const MIN_SPACING = 4000;

interface Checkpoint { next: number; maxTs: number; model: Model }

export class Replay {
  model: Model = emptyModel(1000);
  cursor = 0;
  private next = 0; // absolute index of the next event to apply
  private maxTs = -Infinity; // latest timestamp applied (events are only nearly in time order)
  private checkpoints: Checkpoint[] = [];
  playing = false;
  speed = 1;

  constructor(private source: EventSource) {}

  /** Moves the cursor to `ts` (ns); backwards restarts from the latest checkpoint before it. */
  seek(ts: number): void {
    if (ts < this.cursor) this.rewind(ts);
    this.cursor = ts;
    const base = this.source.dropped ?? 0;
    const end = base + this.source.length;
    const spacing = Math.max(MIN_SPACING, Math.ceil(end / CHECKPOINTS));
    if (this.next < base) this.next = base; // those events are gone from a live ring
    while (this.next < end) {
      const e = this.source.at(this.next - base)!;
      if (e.ts_ns > ts) break;
      applyTimeline(this.model, e);
      this.next++;
      if (e.ts_ns > this.maxTs) this.maxTs = e.ts_ns;
      const last = this.checkpoints.at(-1)?.next ?? 0;
      if (this.next - last >= spacing) this.checkpoints.push({ next: this.next, maxTs: this.maxTs, model: cloneModel(this.model) });
    }
  }

  /** Back to the state of the latest checkpoint whose events all lie at or before `ts`. */
  private rewind(ts: number): void {
    let cp: Checkpoint | undefined;
    for (const c of this.checkpoints) if (c.maxTs <= ts) cp = c;
    this.model = cp ? cloneModel(cp.model) : emptyModel(1000);
    this.next = cp?.next ?? 0;
    this.maxTs = cp?.maxTs ?? -Infinity;
  }

  /** Advances by wall-clock `ms` times the speed; stops at `end`. */
  tick(ms: number, end: number): void {
    if (!this.playing) return;
    const to = Math.min(end, this.cursor + ms * 1e6 * this.speed);
    this.seek(to);
    if (to >= end) this.playing = false;
  }
}
