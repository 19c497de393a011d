import { describe, expect, it } from 'vitest';
import { parseBatch } from '../src/api/ws';

const ev = (seq: number) => JSON.stringify({ event: 'timeline', entry: { seq, ts_ns: seq, source: { kind: 'lab' }, type: 'narration', text: `n${seq}` } });

describe('batched socket messages', () => {
  it('parses a batch in order', () => {
    expect(parseBatch([ev(1), ev(2), ev(3)]).map((e) => (e as { entry: { seq: number } }).entry.seq)).toEqual([1, 2, 3]);
    expect(parseBatch([])).toEqual([]);
  });

  it('a bad message is dropped without losing its neighbours', () => {
    expect(parseBatch([ev(1), 'not json', '', ev(2)])).toHaveLength(2);
    expect(parseBatch([ev(1), '1,2', ev(2)])).toEqual([JSON.parse(ev(1)), JSON.parse(ev(2))]);
  });
});
