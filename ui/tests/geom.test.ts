import { describe, expect, it } from 'vitest';
import { crossedBy, segmentsIntersect } from '../src/views/geom';

const p = (x: number, y: number) => ({ x, y });

describe('segment intersection (drag to cut)', () => {
  it('crossing segments intersect, in either order and direction', () => {
    expect(segmentsIntersect(p(0, 0), p(10, 10), p(0, 10), p(10, 0))).toBe(true);
    expect(segmentsIntersect(p(10, 0), p(0, 10), p(10, 10), p(0, 0))).toBe(true);
  });

  it('segments that would cross only if extended do not', () => {
    expect(segmentsIntersect(p(0, 0), p(4, 4), p(0, 10), p(10, 0))).toBe(false);
    expect(segmentsIntersect(p(0, 0), p(10, 0), p(5, 1), p(5, 10))).toBe(false);
  });

  it('parallel segments do not intersect; collinear ones do only if they overlap', () => {
    expect(segmentsIntersect(p(0, 0), p(10, 0), p(0, 1), p(10, 1))).toBe(false);
    expect(segmentsIntersect(p(0, 0), p(10, 0), p(5, 0), p(15, 0))).toBe(true);
    expect(segmentsIntersect(p(0, 0), p(4, 0), p(5, 0), p(15, 0))).toBe(false);
  });

  it('touching at an end or in the middle counts', () => {
    expect(segmentsIntersect(p(0, 0), p(10, 0), p(10, 0), p(10, 10))).toBe(true);
    expect(segmentsIntersect(p(5, -5), p(5, 0), p(0, 0), p(10, 0))).toBe(true);
  });

  it('a zero-length drag (a click) crosses nothing it does not sit on', () => {
    expect(segmentsIntersect(p(3, 3), p(3, 3), p(0, 10), p(10, 0))).toBe(false);
  });

  it('a stroke across a triangle of links cuts the two sides it passes', () => {
    // Three nodes as the topology lays them out: top, lower right, lower left.
    const n1 = p(220, 85), n2 = p(337, 288), n3 = p(103, 288);
    const links = [{ key: '1-2', a: n1, b: n2 }, { key: '1-3', a: n1, b: n3 }, { key: '2-3', a: n2, b: n3 }];
    expect(crossedBy(p(100, 150), p(340, 150), links)).toEqual(['1-2', '1-3']);
    expect(crossedBy(p(220, 200), p(220, 400), links)).toEqual(['2-3']);
    expect(crossedBy(p(0, 0), p(50, 50), links)).toEqual([]);
  });
});
