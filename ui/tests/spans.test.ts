import { describe, expect, it } from 'vitest';
import { Faults, Leadership, targetNodes } from '../src/state/spans';
import { fault, MS, proc, raft } from './fixtures';

describe('leadership spans', () => {
  it('opens on Leader, continues while the term holds, closes on a role or term change', () => {
    const l = new Leadership();
    [raft(0, 1, 'lab-0', 1, 'Candidate'), raft(10, 1, 'lab-0', 1, 'Leader'), raft(20, 1, 'lab-0', 1, 'Leader'),
      raft(50, 2, 'lab-0', 2, 'Leader'), raft(60, 1, 'lab-0', 2, 'Follower')].forEach((e) => l.apply(e));
    expect(l.spans).toEqual([
      { group: 'lab-0', node: 1, term: 1, role: 'Leader', start: 10 * MS, end: 60 * MS },
      { group: 'lab-0', node: 2, term: 2, role: 'Leader', start: 50 * MS, end: null },
    ]);
  });

  it('an isolated leader is its own span; a dead node ends all its spans', () => {
    const l = new Leadership();
    [raft(0, 1, 'controller', 3, 'Leader'), raft(5, 1, 'lab-1', 3, 'Leader'), raft(10, 1, 'controller', 3, 'IsolatedLeader'), proc(30, 1, 'exited')].forEach((e) => l.apply(e));
    expect(l.spans.map((s) => [s.group, s.role, s.start / MS, s.end! / MS])).toEqual([
      ['controller', 'Leader', 0, 10], ['lab-1', 'Leader', 5, 30], ['controller', 'IsolatedLeader', 10, 30],
    ]);
  });

  it('keeps groups apart on the same node', () => {
    const l = new Leadership();
    [raft(0, 1, 'lab-0', 1, 'Leader'), raft(1, 1, 'lab-1', 1, 'Leader'), raft(2, 1, 'lab-0', 1, 'Leader')].forEach((e) => l.apply(e));
    expect(l.spans).toHaveLength(2);
  });
});

describe('fault spans', () => {
  it('parses targets', () => {
    expect(targetNodes('node-1,node-3')).toEqual([1, 3]);
    expect(targetNodes('all')).toEqual([]);
  });

  it('pause lasts until resume of that node; kill until the node starts again', () => {
    const f = new Faults();
    [fault(0, 'pause', 'node-2'), fault(5, 'kill', 'node-1'), fault(10, 'resume', 'node-3'), fault(20, 'resume', 'node-2'), proc(40, 1, 'started')].forEach((e) => f.apply(e));
    const pause = f.spans.find((s) => s.fault === 'pause')!;
    expect(pause.end).toBe(20 * MS);
    expect(f.spans.find((s) => s.fault === 'kill')!.end).toBe(40 * MS);
    expect(f.spans.filter((s) => s.fault === 'resume').every((s) => s.start === s.end)).toBe(true);
  });

  it('heal closes link faults only; restart closes node faults on its target', () => {
    const f = new Faults();
    [fault(0, 'cut_link', 'node-1,node-2'), fault(1, 'isolate', 'node-3'), fault(2, 'power_cut', 'node-2'), fault(10, 'heal', 'all')].forEach((e) => f.apply(e));
    expect(f.openSpans().map((s) => s.fault)).toEqual(['power_cut']);
    f.apply(fault(20, 'restart', 'node-2'));
    expect(f.openSpans()).toEqual([]);
  });

  it('a toxic lasts until heal; slow_disk with no delay gives that disk back', () => {
    const f = new Faults();
    const slow = (ms: number, target: string, detail: string) => ({ ...fault(ms, 'slow_disk', target), detail });
    [fault(0, 'toxic', 'node-1,node-3'), slow(1, 'node-2', '300 ms per fsync'), slow(2, 'node-1', '50 ms per fsync')].forEach((e) => f.apply(e));
    f.apply(slow(5, 'node-2', '0 ms per fsync'));
    expect(f.openSpans().map((s) => `${s.fault} ${s.target}`)).toEqual(['toxic node-1,node-3', 'slow_disk node-1']);
    expect(f.spans.find((s) => s.target === 'node-2')!.end).toBe(5 * MS);
    f.apply(fault(9, 'heal', 'all'));
    expect(f.openSpans().map((s) => s.fault)).toEqual(['slow_disk']);
  });
});
