// The store: transport events are queued and folded into the model once per animation frame,
// so a burst of 1,000 events/s costs one redraw per frame, not one per event.

import type { LabEvent } from '../api/types';
import { emptyModel, type Model } from './model';
import { applyEvent } from './reducer';

type Listener = () => void;
const frame = (f: () => void) => (typeof requestAnimationFrame === 'function' ? requestAnimationFrame(f) : setTimeout(f, 16));

export class Store {
  live: Model = emptyModel();
  /** An imported run shown instead of the live one (null: live). */
  imported: Model | null = null;
  private queue: LabEvent[] = [];
  private scheduled = false;
  private listeners = new Set<Listener>();

  /** The model the timeline shows in full. */
  get full(): Model {
    return this.imported ?? this.live;
  }

  push(ev: LabEvent): void {
    this.queue.push(ev);
    if (!this.scheduled) {
      this.scheduled = true;
      frame(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    for (const ev of q) applyEvent(this.live, ev);
    if (q.length) this.notify();
  }

  /** Shows an imported run (see importer.ts) instead of the live one. */
  showImported(m: Model): void {
    this.imported = m;
    this.notify();
  }

  backToLive(): void {
    this.imported = null;
    this.notify();
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  notify(): void {
    for (const l of this.listeners) l();
  }
}
