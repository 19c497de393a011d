// Replay: a model rebuilt from a run's timeline up to a cursor time; plays forward at a speed.

import type { TimelineEvent } from '../api/types';
import { emptyModel, type Model } from './model';
import { applyTimeline } from './reducer';

export interface EventSource {
  length: number;
  at(i: number): TimelineEvent | undefined;
}

export class Replay {
  model: Model = emptyModel(1000);
  cursor = 0;
  private next = 0; // index of the next event to apply
  playing = false;
  speed = 1;

  constructor(private source: EventSource) {}

  /** Moves the cursor to `ts` (ns); backwards rebuilds from the start. */
  seek(ts: number): void {
    if (ts < this.cursor) {
      this.model = emptyModel(1000);
      this.next = 0;
    }
    this.cursor = ts;
    const n = this.source.length;
    while (this.next < n) {
      const e = this.source.at(this.next)!;
      if (e.ts_ns > ts) break;
      applyTimeline(this.model, e);
      this.next++;
    }
  }

  /** Advances by wall-clock `ms` times the speed; stops at `end`. */
  tick(ms: number, end: number): void {
    if (!this.playing) return;
    const to = Math.min(end, this.cursor + ms * 1e6 * this.speed);
    this.seek(to);
    if (to >= end) this.playing = false;
  }
}
