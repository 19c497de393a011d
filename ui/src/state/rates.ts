// Client produce rate and latency per 100 ms bucket, from client operations.

import type { ClientOp } from '../api/types';

export const BUCKET_NS = 100_000_000;

export interface Bucket {
  start: number; // ns
  sent: number;
  acked: number;
  failed: number;
  polled: number;
  latencySum: number; // ns, over acked sends
  latencyMax: number;
}

export class Rates {
  private buckets = new Map<number, Bucket>();
  first = Infinity;
  last = -Infinity;

  apply(op: ClientOp): void {
    const k = Math.floor(op.time_ns / BUCKET_NS);
    let b = this.buckets.get(k);
    if (!b) {
      b = { start: k * BUCKET_NS, sent: 0, acked: 0, failed: 0, polled: 0, latencySum: 0, latencyMax: 0 };
      this.buckets.set(k, b);
      this.first = Math.min(this.first, k);
      this.last = Math.max(this.last, k);
    }
    if (op.f === 'send') {
      if (op.type === 'invoke') b.sent++;
      else if (op.type === 'ok') {
        b.acked++;
        const l = op.latency_ns ?? 0;
        b.latencySum += l;
        b.latencyMax = Math.max(b.latencyMax, l);
      } else b.failed++;
    } else if (op.f === 'poll' && op.type === 'ok') b.polled++;
  }

  /** An independent copy (buckets are counted into, so they are copied). */
  clone(): Rates {
    const c = new Rates();
    for (const [k, b] of this.buckets) c.buckets.set(k, { ...b });
    c.first = this.first;
    c.last = this.last;
    return c;
  }

  get(startNs: number): Bucket | undefined {
    return this.buckets.get(Math.floor(startNs / BUCKET_NS));
  }

  /** Buckets covering [from, to] in order (missing ones as empty). */
  range(from: number, to: number): Bucket[] {
    const out: Bucket[] = [];
    const a = Math.max(Math.floor(from / BUCKET_NS), this.first);
    const z = Math.min(Math.floor(to / BUCKET_NS), this.last);
    for (let k = a; k <= z; k++) {
      out.push(this.buckets.get(k) ?? { start: k * BUCKET_NS, sent: 0, acked: 0, failed: 0, polled: 0, latencySum: 0, latencyMax: 0 });
    }
    return out;
  }

  /** Acks per second and mean latency (ms) of one bucket. */
  static rate(b: Bucket): number {
    return (b.acked * 1e9) / BUCKET_NS;
  }

  static meanLatencyMs(b: Bucket): number {
    return b.acked ? b.latencySum / b.acked / 1e6 : 0;
  }
}
