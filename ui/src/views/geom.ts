// Plane geometry for the topology's drag-to-cut gesture. Pure: unit-tested without a DOM.

export interface Pt { x: number; y: number }

/** Twice the signed area of (a, b, c): > 0 counter-clockwise, < 0 clockwise, 0 collinear. */
const cross = (a: Pt, b: Pt, c: Pt) => (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);

/** c lies within the bounding box of a–b (only meaningful when the three are collinear). */
const within = (a: Pt, b: Pt, c: Pt) =>
  Math.min(a.x, b.x) <= c.x && c.x <= Math.max(a.x, b.x) && Math.min(a.y, b.y) <= c.y && c.y <= Math.max(a.y, b.y);

/**
 * Whether segment p1–p2 meets segment q1–q2 (touching counts). Orientation test: each segment's
 * ends lie on opposite sides of the other's line, or one end lies on the other segment.
 */
export function segmentsIntersect(p1: Pt, p2: Pt, q1: Pt, q2: Pt): boolean {
  const d1 = cross(q1, q2, p1);
  const d2 = cross(q1, q2, p2);
  const d3 = cross(p1, p2, q1);
  const d4 = cross(p1, p2, q2);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  return (d1 === 0 && within(q1, q2, p1)) || (d2 === 0 && within(q1, q2, p2))
    || (d3 === 0 && within(p1, p2, q1)) || (d4 === 0 && within(p1, p2, q2));
}

export interface Segment<K> { key: K; a: Pt; b: Pt }

/** The keys of the segments that the dragged segment from–to crosses, in input order. */
export function crossedBy<K>(from: Pt, to: Pt, segments: Segment<K>[]): K[] {
  return segments.filter((s) => segmentsIntersect(from, to, s.a, s.b)).map((s) => s.key);
}
