import { describe, expect, it } from 'vitest';
import type { NodeTrace, TimelineEvent, TraceEvent } from '../src/api/types';
import { RaftTraceStore } from '../src/state/raft_trace';
import { sequenceSvg } from '../src/state/sequence_svg';
import { MS, proc } from './fixtures';

let seq = 5000;
const ev = (ms: number, e: Record<string, unknown>): TraceEvent => ({ seq: seq++, ts_ns: ms * MS, group: 'lab-0', ...e }) as TraceEvent;
const batch = (ms: number, nodes: NodeTrace[]): TimelineEvent => ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'lab' }, type: 'raft_trace', group: 'lab-0', nodes });
const node = (id: number, events: TraceEvent[]): NodeTrace => ({ node: id, events, missed: 0, suspect_after_ms: 300 });

/** Tags balance and every attribute is quoted: what an XML parser (and an SVG viewer) needs. */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self) continue;
    if (close) { if (stack.pop() !== name) return false; } else stack.push(name);
  }
  const stray = xml.replace(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g, '');
  return stack.length === 0 && !/[<>]/.test(stray);
}

describe('sequence diagram', () => {
  const s = new RaftTraceStore();
  s.apply(batch(100, [node(2, [
    ev(10, { type: 'campaign', reason: 'no leader known', wait_ms: 0, candidate: 2 }),
    ev(11, { type: 'vote', to: 1, term: 5, last_log: null, outcome: { kind: 'unreachable', reason: 'refused <conn>' }, rtt_us: 300 }),
    ev(11, { type: 'vote', to: 3, term: 5, last_log: null, outcome: { kind: 'ok' }, rtt_us: 2000 }),
    ev(20, { type: 'append', to: 3, term: 5, prev: [4, 9], entries: [10, 12], terms: [[5, 3]], leader_commit: 9, outcome: { kind: 'ok' }, rtt_us: 900 }),
    ev(30, { type: 'node_heartbeat', to: 3, outcome: { kind: 'ok' }, rtt_us: 100 }),
  ]), node(3, [ev(40, { type: 'truncate', from: 10, discarded: 2, terms: [[4, 2]] })])]));
  s.apply(proc(5, 1, 'died'));

  it('is well-formed SVG with one lane per node, an arrow per message and the lost one crossed', () => {
    const svg = sequenceSvg(s, 0, 100 * MS);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(wellFormed(svg)).toBe(true);
    expect([...svg.matchAll(/class="lane" data-node="(\d+)"/g)].map((m) => m[1])).toEqual(['1', '2', '3']);
    expect(svg.match(/class="msg vote"/g)).toHaveLength(2);
    expect(svg.match(/class="msg vote_reply"/g)).toHaveLength(1); // the lost request got none
    expect(svg).toContain('✗');
    expect(svg).toContain('refused &lt;conn&gt;'); // escaped
    expect(svg).toContain('entries 10–12');
    expect(svg).toContain('truncated 2 from index 10');
    expect(svg).toContain('class="down"'); // n1 was down the whole window
    expect(svg).not.toContain('node_heartbeat'); // left out unless asked for
    expect(sequenceSvg(s, 0, 100 * MS, { heartbeats: true })).toContain('class="msg node_heartbeat"');
  });

  it('a window leaves out what happened outside it', () => {
    const svg = sequenceSvg(s, 25 * MS, 100 * MS);
    expect(svg).not.toContain('class="msg vote"');
    expect(svg).toContain('truncated 2');
  });
});
