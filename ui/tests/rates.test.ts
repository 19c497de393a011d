import { describe, expect, it } from 'vitest';
import { DuplicateGauge } from '../src/state/gauge';
import { Rates } from '../src/state/rates';
import { op } from './fixtures';

describe('rate buckets', () => {
  it('counts per 100 ms with mean and max latency of acks', () => {
    const r = new Rates();
    [op(1000, 'invoke', 'send', 'a'), op(1050, 'ok', 'send', 'a', 0, 0, 10), op(1099, 'ok', 'send', 'b', 0, 1, 30),
      op(1100, 'fail', 'send', 'c'), op(1350, 'ok', 'poll', 'a', 0, 0)].forEach((o) => r.apply(o));
    const bs = r.range(1000e6, 1400e6);
    expect(bs.map((b) => b.start / 1e6)).toEqual([1000, 1100, 1200, 1300]);
    expect(bs[0]).toMatchObject({ sent: 1, acked: 2, latencyMax: 30e6 });
    expect(Rates.meanLatencyMs(bs[0])).toBe(20);
    expect(Rates.rate(bs[0])).toBe(20);
    expect(bs[1].failed).toBe(1);
    expect(bs[2].acked).toBe(0);
    expect(bs[3].polled).toBe(1);
  });
});

describe('lost / duplicate gauge', () => {
  it('a value read at two different offsets is a duplicate; a re-read of the same offset is not', () => {
    const g = new DuplicateGauge();
    [op(0, 'ok', 'send', 'v1', 0, 0), op(1, 'ok', 'send', 'v2', 0, 1), op(2, 'ok', 'poll', 'v1', 0, 0),
      op(3, 'ok', 'poll', 'v1', 0, 0), op(4, 'ok', 'poll', 'v2', 0, 1), op(5, 'ok', 'poll', 'v2', 0, 7)].forEach((o) => g.apply(o));
    expect(g.reading()).toEqual({ acked: 2, read: 2, duplicates: 1, unread: 0, final: false });
  });

  it('acked values not yet read are unread, not lost, until the workload stops', () => {
    const g = new DuplicateGauge();
    [op(0, 'ok', 'send', 'v1', 0, 0), op(1, 'ok', 'send', 'v2', 0, 1), op(2, 'ok', 'poll', 'v2', 0, 1), op(3, 'invoke', 'send', 'v3')].forEach((o) => g.apply(o));
    expect(g.reading()).toMatchObject({ unread: 1, final: false });
    g.stop();
    expect(g.reading()).toMatchObject({ unread: 1, final: true });
  });

  it('a read before its ack (the ack was slow) still counts as read', () => {
    const g = new DuplicateGauge();
    g.apply(op(0, 'ok', 'poll', 'v1', 0, 0));
    g.apply(op(1, 'ok', 'send', 'v1', 0, 0));
    expect(g.reading().unread).toBe(0);
  });
});
