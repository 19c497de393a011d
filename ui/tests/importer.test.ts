import { describe, expect, it } from 'vitest';
import { buildModel } from '../src/state/importer';
import { leaderOf } from '../src/state/model';
import { fault, raft } from './fixtures';

describe('sliced import', () => {
  it('gives the model a plain fold gives, pausing between slices, in seq order', async () => {
    const events = Array.from({ length: 5000 }, (_, i) => ({ ...raft(i, 1 + (i % 3), 'lab-0', 1 + i, 'Leader'), seq: i }));
    const shuffled = [...events.slice(2500), ...events.slice(0, 2500)]; // an export is not always in seq order
    const text = `${shuffled.map((e) => JSON.stringify(e)).join('\n')}\n\n`;
    let pauses = 0;
    const seen: number[] = [];
    const { model, events: n } = await buildModel(text, { pause: async () => void pauses++, budgetMs: 0, progress: (f) => seen.push(f) });
    expect(n).toBe(5000);
    expect(pauses).toBeGreaterThan(10);
    expect(seen.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= seen[i - 1]))).toBe(true);
    expect(model.timeline.length).toBe(5000);
    expect(model.timeline.at(0)!.seq).toBe(0);
    expect(leaderOf(model, 'lab-0')).toEqual({ node: 2, term: 5000 }); // the last event, applied last
  });

  it('a line that is not JSON fails the import', async () => {
    const text = `${JSON.stringify(fault(1, 'kill', 'node-1'))}\nnot json\n`;
    await expect(buildModel(text, { pause: async () => undefined })).rejects.toThrow();
  });
});
