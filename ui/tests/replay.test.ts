import { describe, expect, it } from 'vitest';
import type { TimelineEvent } from '../src/api/types';
import type { Model } from '../src/state/model';
import { Replay } from '../src/state/replay';
import { Ring } from '../src/state/ring';
import { client, fault, op, proc, raft } from './fixtures';

/** A synthetic run: leadership changes, kills and restarts, and a steady produce/consume stream. */
function run(n: number): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  for (let i = 0; out.length < n; i++) {
    const ms = i * 3;
    if (i % 500 === 0) out.push(raft(ms, 1 + ((i / 500) % 3), 'lab-0', 1 + i / 500, 'Leader'));
    if (i % 1700 === 0) out.push(fault(ms, 'kill', 'node-2'), proc(ms + 1, 2, 'exited'));
    if (i % 1700 === 900) out.push(proc(ms, 2, 'started'));
    out.push(client(op(ms, 'ok', 'send', `v${i}`, i % 3, i, 2)));
    out.push(client(op(ms + 1, 'ok', 'poll', `v${i}`, i % 3, i % 97 === 0 ? i + 1 : i)));
  }
  return out.map((e, seq) => ({ ...e, seq }));
}

/** What the panels read from a replay model. */
const view = (m: Model) => ({
  nodes: [...m.nodes.values()], groups: [...m.groups].map(([g, per]) => [g, [...per]]), acked: [...m.ackedOffset],
  gauge: m.gauge.reading(), spans: m.leadership.spans, faults: m.faults.spans, anomalies: m.anomalies, len: m.timeline.length,
});

describe('replay checkpoints', () => {
  it('any sequence of seeks, back and forth, gives the model a fresh replay to that time gives', () => {
    const events = run(30_000);
    const ring = new Ring<TimelineEvent>(events.length);
    events.forEach((e) => ring.push(e));
    const last = events.at(-1)!.ts_ns;
    const r = new Replay(ring);
    let x = 12345;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const targets = [last, last / 2, 0, last, ...Array.from({ length: 12 }, () => rand() * last)];
    for (const ts of targets) {
      r.seek(ts);
      const fresh = new Replay(ring);
      fresh.seek(ts);
      expect(view(r.model)).toEqual(view(fresh.model));
    }
  });

  it('a rewind does not change the checkpoint it started from', () => {
    const events = run(20_000);
    const ring = new Ring<TimelineEvent>(events.length);
    events.forEach((e) => ring.push(e));
    const r = new Replay(ring);
    const mid = events[12_000].ts_ns;
    r.seek(events.at(-1)!.ts_ns);
    r.seek(mid);
    const once = structuredClone(view(r.model));
    r.seek(events.at(-1)!.ts_ns); // moves the restored copy on
    r.seek(mid);
    expect(view(r.model)).toEqual(once);
  });

  it('follows a live ring that drops its oldest events', () => {
    const events = run(8000);
    const ring = new Ring<TimelineEvent>(5000);
    events.slice(0, 5000).forEach((e) => ring.push(e));
    const r = new Replay(ring);
    r.seek(events[4999].ts_ns);
    events.slice(5000).forEach((e) => ring.push(e)); // the 3,000 oldest (already applied) drop out
    r.seek(events.at(-1)!.ts_ns);
    // Every event was applied exactly once: the gauge saw each acked value, none twice, none skipped.
    expect(r.model.gauge.reading().acked).toBe(events.filter((e) => e.type === 'client' && e.op.f === 'send').length);
  });
});
