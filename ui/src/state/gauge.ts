// A live lost / duplicate gauge from the client operation stream.
//
// Duplicate: one value read at two different positions (partition, offset). Re-reading the same
// position (a consumer rebalance) is not a duplicate. "Acked, not read yet" is not a loss while the
// workload runs: the consumer may simply lag. Only once the workload stopped do those become
// "acked, never read" — a suspected loss; the checker's verdict is the authority.

import type { ClientOp } from '../api/types';

export interface GaugeReading {
  acked: number;
  read: number;
  duplicates: number;
  unread: number;
  /** True once the workload stopped: unread acked values are suspected lost. */
  final: boolean;
}

export class DuplicateGauge {
  private ackedValues = new Set<string>();
  private positions = new Map<string, string>(); // value -> first "p:o" it was read at
  private dupValues = new Set<string>();
  private readAcked = 0;
  final = false;

  apply(op: ClientOp): void {
    if (op.type !== 'ok' || op.value === null) return;
    const v = `${op.topic}/${op.value}`; // values are unique within one topic of one run
    if (op.f === 'send') {
      if (this.ackedValues.has(v)) return;
      this.ackedValues.add(v);
      if (this.positions.has(v)) this.readAcked++;
      this.final = false;
    } else {
      const pos = `${op.partition}:${op.offset}`;
      const first = this.positions.get(v);
      if (first === undefined) {
        this.positions.set(v, pos);
        if (this.ackedValues.has(v)) this.readAcked++;
      } else if (first !== pos) this.dupValues.add(v);
    }
  }

  /** An independent copy. */
  clone(): DuplicateGauge {
    const c = new DuplicateGauge();
    c.ackedValues = new Set(this.ackedValues);
    c.positions = new Map(this.positions);
    c.dupValues = new Set(this.dupValues);
    c.readAcked = this.readAcked;
    c.final = this.final;
    return c;
  }

  /** The workload ended: from now on unread acked values count as suspected losses. */
  stop(): void {
    this.final = true;
  }

  reading(): GaugeReading {
    return {
      acked: this.ackedValues.size,
      read: this.positions.size,
      duplicates: this.dupValues.size,
      unread: this.ackedValues.size - this.readAcked,
      final: this.final,
    };
  }
}
