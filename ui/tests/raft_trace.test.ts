import { describe, expect, it } from 'vitest';
import type { NodeTrace, ReplicaLog, Role, TimelineEvent, TraceEvent } from '../src/api/types';
import { cloneModel, emptyModel } from '../src/state/model';
import { captions, flightOf, messagesOf, MIN_FLIGHT_NS, nextIndexAt, nextInteresting, nextMoment, RaftTraceStore, scene, tallyAt } from '../src/state/raft_trace';
import { applyTimeline } from '../src/state/reducer';
import { MS, proc, raft } from './fixtures';

let seq = 1000;
const batch = (ms: number, group: string, nodes: NodeTrace[]): TimelineEvent =>
  ({ seq: seq++, ts_ns: ms * MS, source: { kind: 'lab' }, type: 'raft_trace', group, nodes });
const node = (id: number, events: TraceEvent[], replica?: ReplicaLog): NodeTrace => ({ node: id, events, replica, missed: 0, suspect_after_ms: 300 });
const ev = (ms: number, e: Record<string, unknown>): TraceEvent => ({ seq: seq++, ts_ns: ms * MS, group: 'lab-0', ...e }) as TraceEvent;
const ok = { kind: 'ok' } as const;
const replica = (role: Role, term: number, tail: [number, number, number][], committed: number, flushed: number): ReplicaLog =>
  ({ group: 'lab-0', term, role, leader: role === 'Leader' ? 2 : null, voted_for: 2, entries: tail.at(-1)![2] + 1, tail, committed, flushed, heard_leader_ms_ago: null, matched: {} });

/** n1 led term 4 and died at 1,000 ms; n2 campaigns for term 5: n3 grants, n1 is unreachable. */
function election(): RaftTraceStore {
  const s = new RaftTraceStore();
  s.apply(batch(900, 'lab-0', [node(1, [ev(800, { type: 'append', to: 2, term: 4, prev: [4, 9], entries: null, terms: [], leader_commit: 9, outcome: ok, rtt_us: 1000 }),
    ev(850, { type: 'node_heartbeat', to: 3, outcome: ok, rtt_us: 600 })])]));
  s.apply(raft(800, 2, 'lab-0', 4, 'Follower'));
  s.apply({ ...raft(800, 3, 'lab-0', 4, 'Follower'), leader: 1 } as TimelineEvent);
  s.apply(proc(1000, 1, 'died'));
  s.apply(batch(1500, 'lab-0', [node(2, [
    ev(1400, { type: 'campaign', reason: 'leader n1 went silent (no heartbeat within the suspicion timeout)', wait_ms: 0, candidate: 2 }),
    ev(1401, { type: 'vote', to: 1, term: 5, last_log: [4, 9], outcome: { kind: 'unreachable', reason: 'connection refused' }, rtt_us: 300 }),
    ev(1401, { type: 'vote', to: 3, term: 5, last_log: [4, 9], outcome: ok, rtt_us: 2000 }),
  ], replica('Leader', 5, [[4, 0, 9], [5, 10, 10]], 9, 10))]));
  s.apply(raft(1420, 2, 'lab-0', 5, 'Leader'));
  return s;
}

describe('raft trace model', () => {
  it('a recorded RPC is a request and a reply; a lost one is a dropped request', () => {
    const [req, rep] = messagesOf(2, ev(10, { type: 'vote', to: 3, term: 5, last_log: null, outcome: ok, rtt_us: 2000 }));
    expect([req.kind, req.from, req.to, rep.kind, rep.from, rep.to, rep.ok]).toEqual(['vote', 2, 3, 'vote_reply', 3, 2, true]);
    expect(rep.arrive - req.sent).toBe(2 * MS);
    const lost = messagesOf(2, ev(10, { type: 'vote', to: 1, term: 5, last_log: null, outcome: { kind: 'timeout' }, rtt_us: 225_000 }));
    expect(lost).toHaveLength(1);
    expect(lost[0].dropped).toBe(true);
    const beat = messagesOf(1, ev(10, { type: 'append', to: 2, term: 4, prev: null, entries: null, terms: [], leader_commit: null, outcome: ok, rtt_us: 10 }));
    expect(beat.map((m) => m.kind)).toEqual(['empty_append', 'empty_append_ack']);
    expect(messagesOf(1, ev(10, { type: 'commit', index: 3 }))).toEqual([]);
  });

  it('flights last at least MIN_FLIGHT_NS and a reply leaves when its stretched request arrives', () => {
    const [req, rep] = messagesOf(2, ev(10, { type: 'vote', to: 3, term: 5, last_log: null, outcome: ok, rtt_us: 200 }));
    expect(flightOf(req)).toEqual({ from: 10 * MS, to: 10 * MS + MIN_FLIGHT_NS });
    expect(flightOf(rep)).toEqual({ from: 10 * MS + MIN_FLIGHT_NS, to: 10 * MS + 2 * MIN_FLIGHT_NS });
  });

  it('the scene: votes in flight, then a tally that wins once the granted reply arrives', () => {
    const s = election();
    const during = scene(s, 1401 * MS + 1);
    expect(during.flights.map((f) => `${f.msg.kind} ${f.msg.from}>${f.msg.to}`).sort()).toEqual(['vote 2>1', 'vote 2>3']);
    expect(during.tally).toMatchObject({ candidate: 2, term: 5, granted: [], won: false, needed: 2 });
    expect(during.nodes.find((n) => n.id === 1)!.role).toBe('Down');
    const after = scene(s, 1421 * MS); // the reply arrived at 1,417 ms; n2 says Leader at 1,420
    expect(after.tally).toMatchObject({ candidate: 2, granted: [3], lost: [1], won: true });
    expect(after.nodes.find((n) => n.id === 2)).toMatchObject({ role: 'Leader', term: 5 });
    expect(after.logs.get(2)).toBeUndefined(); // replica states count from the poll that brought them
    expect(scene(s, 1500 * MS).logs.get(2)!.tail.at(-1)).toEqual([5, 10, 10]);
  });

  it("a follower's election deadline drains after its leader's last message and is gone once it campaigns", () => {
    const s = election();
    // n3 follows n1 (term 4); n1's heartbeat reached n3 at 850 ms + flight.
    const heard = 850 * MS + MIN_FLIGHT_NS;
    const n3 = (t: number) => scene(s, t).nodes.find((n) => n.id === 3)!;
    expect(n3(heard + 1)?.deadline).toBeCloseTo(1, 2);
    expect(n3(heard + 150 * MS).deadline).toBeCloseTo(0.5, 2);
    expect(n3(heard + 400 * MS).deadline).toBe(0);
  });

  it("the leader's next index per follower: the entry after prev in flight, after the last once acked, prev after a conflict", () => {
    const append = (ms: number, to: number, prev: number | null, entries: [number, number] | null, outcome: Record<string, unknown>) =>
      messagesOf(2, ev(ms, { type: 'append', to, term: 5, prev: prev === null ? null : [5, prev], entries, terms: [], leader_commit: 9, outcome, rtt_us: 2000 }));
    const msgs = [...append(100, 1, 9, [10, 12], ok), ...append(100, 3, 9, [10, 12], { kind: 'conflict' }), ...append(200, 1, 12, null, ok)]
      .sort((a, b) => a.sent - b.sent);
    const flight = 2 * MIN_FLIGHT_NS; // request and reply, each drawn at least MIN_FLIGHT_NS
    expect([...nextIndexAt(msgs, 2, 100 * MS + 1)].sort()).toEqual([[1, 10], [3, 10]]);
    expect([...nextIndexAt(msgs, 2, 100 * MS + flight)].sort()).toEqual([[1, 13], [3, 9]]);
    expect(nextIndexAt(msgs, 2, 200 * MS + flight).get(1)).toBe(13); // a heartbeat after prev 12 keeps it
    expect(nextIndexAt(msgs, 3, 300 * MS).size).toBe(0); // only the leader's own requests count
    const lost = messagesOf(2, ev(400, { type: 'append', to: 1, term: 5, prev: [5, 12], entries: [13, 13], terms: [], leader_commit: 12, outcome: { kind: 'timeout' }, rtt_us: 225_000 }));
    expect(nextIndexAt(lost, 2, 700 * MS).get(1)).toBe(13); // lost: it sends from 13 again
    expect(nextIndexAt(messagesOf(2, ev(10, { type: 'append', to: 3, term: 5, prev: null, entries: [0, 4], terms: [], leader_commit: null, outcome: ok, rtt_us: 10 })), 2, 10 * MS).get(3)).toBe(0);
  });

  it('captions say what happened in plain words', () => {
    const text = captions(election(), 0, 2000 * MS).map((c) => c.text);
    expect(text).toEqual([
      'n2: leader n1 went silent (no heartbeat within the suspicion timeout); it campaigns in term 5 and asks n1 and n3 for votes',
      "n2's vote request to n1 was lost (unreachable)",
      'n3 granted n2 its vote in term 5',
      'n2 has 2 of 3 votes: it leads term 5',
    ]);
    const s = new RaftTraceStore();
    s.apply(batch(10, 'lab-0', [node(3, [ev(5, { type: 'truncate', from: 7, discarded: 2, terms: [[4, 2]] })])]));
    expect(captions(s, 0, 20 * MS)[0].text).toBe("n3 discarded 2 uncommitted entries (2 from term 4) that the leader's log does not have");
    expect(scene(s, 6 * MS).rollbacks.get(3)).toMatchObject({ from: 7, discarded: 2 }); // its log row is marked
    expect(scene(s, 4 * MS).rollbacks.size).toBe(0);
    expect(scene(s, 5 * MS + 2.1e9).rollbacks.size).toBe(0); // and not forever
  });

  it("a refused append says why: a log that lacks the previous entry, or a newer term", () => {
    const s = new RaftTraceStore();
    s.apply(batch(100, 'lab-0', [node(3, [
      ev(10, { type: 'append', to: 1, term: 3, prev: [3, 9], entries: [10, 11], terms: [[3, 2]], leader_commit: 9, outcome: { kind: 'higher_vote', term: 4 }, rtt_us: 100 }),
      ev(20, { type: 'append', to: 2, term: 4, prev: [3, 9], entries: [10, 10], terms: [[4, 1]], leader_commit: 9, outcome: { kind: 'conflict' }, rtt_us: 100 }),
    ])]));
    expect(captions(s, 0, 100 * MS).map((c) => c.text)).toEqual([
      "n1 refused n3's append: it has seen term 4, so n3 (term 3) no longer leads",
      "n2 refused n3's entries (entries 10–10): its log does not hold the entry before them; the leader backs up and retries",
    ]);
  });

  it('step goes to the next start or arrival (node heartbeats skipped); live views jump to elections', () => {
    const s = election();
    const t0 = 1300 * MS;
    expect(nextMoment(s, t0)).toBe(1400 * MS); // the campaign decision
    expect(nextMoment(s, 1400 * MS)).toBe(1401 * MS); // the vote requests leave
    expect(nextMoment(s, 1401 * MS)).toBe(1401 * MS + MIN_FLIGHT_NS);
    expect(nextInteresting(s, 0, 2000 * MS)).toBe(1400 * MS);
    expect(nextInteresting(s, 1400 * MS, 2000 * MS)).toBe(1401 * MS);
  });

  it('tallies refusals with their reason; a refused candidate does not win', () => {
    const msgs = messagesOf(2, ev(10, { type: 'vote', to: 3, term: 5, last_log: null, outcome: { kind: 'refused', reason: 'its log is more up to date', term: 5 }, rtt_us: 100 }));
    const t = tallyAt(msgs, 3, 10 * MS + 3 * MIN_FLIGHT_NS);
    expect(t).toMatchObject({ granted: [], refused: [3], won: false });
    expect(msgs[1].detail).toBe('refused: its log is more up to date');
  });

  it('another group starts afresh; the model folds batches in and clones independently', () => {
    const m = emptyModel();
    applyTimeline(m, batch(900, 'lab-0', [node(1, [ev(800, { type: 'node_heartbeat', to: 2, outcome: ok, rtt_us: 100 })])]));
    expect(m.raftTrace.group).toBe('lab-0');
    expect(m.raftTrace.msgs).toHaveLength(2);
    const copy = cloneModel(m);
    applyTimeline(m, batch(1000, 'lab-1', [node(1, [])]));
    expect(m.raftTrace.group).toBe('lab-1');
    expect(m.raftTrace.msgs).toHaveLength(0);
    expect(copy.raftTrace.msgs).toHaveLength(2);
    // Events of another group inside a batch are not this group's.
    applyTimeline(m, batch(1100, 'lab-1', [node(2, [ev(1050, { type: 'vote', to: 1, term: 2, last_log: null, outcome: ok, rtt_us: 100 })])]));
    expect(m.raftTrace.msgs).toHaveLength(0);
  });
});

describe('raft trace in a replay', () => {
  it('a replayed run has the messages up to its cursor, and rewinding takes them back', async () => {
    const { Replay } = await import('../src/state/replay');
    const events: TimelineEvent[] = [
      batch(100, 'lab-0', [node(1, [ev(50, { type: 'node_heartbeat', to: 2, outcome: ok, rtt_us: 100 })])]),
      batch(200, 'lab-0', [node(2, [ev(150, { type: 'vote', to: 3, term: 5, last_log: null, outcome: ok, rtt_us: 100 })])]),
    ];
    const replay = new Replay({ length: events.length, at: (i) => events[i] });
    replay.seek(150 * MS);
    expect(replay.model.raftTrace.msgs.map((m) => m.kind)).toEqual(['node_heartbeat', 'node_heartbeat_ack']);
    replay.seek(250 * MS);
    expect(replay.model.raftTrace.msgs.filter((m) => m.kind === 'vote')).toHaveLength(1);
    expect(replay.model.raftTrace.nodes()).toEqual([1, 2, 3]);
    replay.seek(120 * MS);
    expect(replay.model.raftTrace.msgs.filter((m) => m.kind === 'vote')).toHaveLength(0);
  });
});
