import { describe, expect, it } from 'vitest';
import { emptyModel } from '../src/state/model';
import { applyTimeline } from '../src/state/reducer';
import { layout } from '../src/views/timeline_draw';
import { raft } from './fixtures';

describe('timeline layout', () => {
  it('a row per group for a few groups', () => {
    const m = emptyModel();
    for (const g of ['controller', 'lab-0', 'lab-1']) applyTimeline(m, raft(1, 1, g, 1, 'Leader'));
    const l = layout(m);
    expect(l.groups).toEqual(['controller', 'lab-0', 'lab-1']);
    expect(l.counted).toBe(0);
  });

  it('at 1,000 partitions: the controller row and one count per node, so the canvas stays small', () => {
    const m = emptyModel();
    applyTimeline(m, raft(1, 1, 'controller', 1, 'Leader'));
    for (let p = 0; p < 1000; p++) applyTimeline(m, raft(2, 1 + (p % 3), `big-${p}`, 1, 'Leader'));
    const l = layout(m);
    expect(l.nodes).toEqual([1, 2, 3]);
    expect(l.groups).toEqual(['controller']);
    expect(l.counted).toBe(1000);
    expect(l.height).toBeLessThan(400); // a row per group would be 42,000 px
  });
});
