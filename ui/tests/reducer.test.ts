import { describe, expect, it } from 'vitest';
import type { GroupView, LabState } from '../src/api/types';
import { emptyModel, groupNames, leaderOf, termOf, topics } from '../src/state/model';
import { applyEvent, applyState, applyTimeline, parseJsonl } from '../src/state/reducer';
import { Replay } from '../src/state/replay';
import { Ring } from '../src/state/ring';
import { client, fault, noLag, op, partitionState, proc, raft, raftReport, raftSummary } from './fixtures';

const state = (over: Partial<LabState> = {}): LabState => ({
  running: true, settings: null, bootstrap: 'b', links: [], workload: null, drill: null, timeline_len: 0, raft_watch: null,
  nodes: [1, 2, 3].map((id) => ({ id, state: 'running', pid: id, kafka: '', http: '', cpu_percent: 1, memory_bytes: 1, disk_bytes: 1 })),
  raft: [1, 2].map((node) => raftReport(node, 1, [
    { group: 'controller', term: 2, role: node === 1 ? 'Leader' : 'Follower', leader: 1, voted_for: 1, last_log_index: 5, applied_index: 5 },
    { group: 'lab-0', term: 1, role: node === 2 ? 'Leader' : 'Follower', leader: 2, voted_for: 2, last_log_index: 3, applied_index: 3 },
  ])),
  partitions: [{ node: 1, partitions: [partitionState({ topic: 'lab', partition: 0, log_start_offset: 0, log_end_offset: 10, flushed_offset: 8, high_watermark: 9 })],
    summary: noLag, complete: true, offset: 0, total: 1 }],
  ...over,
});

describe('reducer', () => {
  it('a snapshot sets nodes, per-node group views, replicas and the controller leader', () => {
    const m = emptyModel();
    applyEvent(m, { event: 'state', state: state() });
    expect(m.nodes.size).toBe(3);
    expect(groupNames(m)).toEqual(['controller', 'lab-0']);
    expect(leaderOf(m, 'lab-0')).toEqual({ node: 2, term: 1 });
    expect(m.controllerLeader).toBe(1);
    expect(m.replicas.get('lab-0')!.get(1)!.flushed_offset).toBe(8);
    expect(topics(m)).toEqual(['lab']);
  });

  it('raft events refine a group between snapshots; a higher-term leader wins', () => {
    const m = emptyModel();
    applyState(m, state());
    applyTimeline(m, raft(10, 3, 'lab-0', 2, 'Candidate'));
    expect(m.groups.get('lab-0')!.get(3)!.role).toBe('Candidate');
    applyTimeline(m, raft(20, 3, 'lab-0', 2, 'Leader'));
    expect(leaderOf(m, 'lab-0')).toEqual({ node: 3, term: 2 });
    expect(termOf(m, 'lab-0')).toBe(2);
    expect(m.leadership.spans.map((s) => s.node)).toEqual([3]);
  });

  it('process events change node state; acks raise the acked offset per partition', () => {
    const m = emptyModel();
    applyState(m, state());
    applyTimeline(m, proc(5, 2, 'exited'));
    expect(m.nodes.get(2)!.state).toBe('stopped');
    applyTimeline(m, client(op(6, 'ok', 'send', 'x', 0, 12, 3)));
    applyTimeline(m, client(op(7, 'ok', 'send', 'y', 0, 11, 3)));
    expect(m.ackedOffset.get('lab-0')).toBe(12);
  });

  it('a running node missing from a snapshot keeps its last report; a stopped one loses it', () => {
    const m = emptyModel();
    applyState(m, state());
    const onlyNode1 = state({ raft: state().raft.filter((r) => r.node === 1) });
    applyState(m, onlyNode1); // node 2 (leader of lab-0) did not answer the lab in time
    expect(leaderOf(m, 'lab-0')).toEqual({ node: 2, term: 1 });
    expect(m.silentNodes).toEqual([2, 3]); // node 3 reports no Raft groups at all here
    expect(m.replicas.get('lab-0')!.get(1)!.flushed_offset).toBe(8);
    const stopped = state({ raft: onlyNode1.raft, nodes: state().nodes.map((n) => (n.id === 2 ? { ...n, state: 'stopped' } : n)) });
    applyState(m, stopped);
    expect(leaderOf(m, 'lab-0')).toBeNull();
    expect(m.silentNodes).toEqual([3]);
  });

  it('the workload ending (counters gone) makes the gauge final', () => {
    const m = emptyModel();
    applyState(m, state({ workload: { sent: 1, acked: 1, failed: 0, indeterminate: 0, consumed: 0 } }));
    applyState(m, state({ workload: null }));
    expect(m.gauge.final).toBe(true);
  });

  it('a new cluster (each drill starts one) starts a new run for the gauge: reused values are not duplicates', () => {
    const m = emptyModel();
    applyTimeline(m, client(op(1, 'ok', 'poll', 'p0-1', 0, 5)));
    applyTimeline(m, { seq: 99, ts_ns: 2, source: { kind: 'lab' }, type: 'process', state: 'cluster_started', pid: null, detail: null });
    applyTimeline(m, client(op(3, 'ok', 'poll', 'p0-1', 1, 0)));
    expect(m.gauge.reading().duplicates).toBe(0);
    expect(m.ackedOffset.size).toBe(0);
  });

  it('a replay learns nodes and their resources from events alone', () => {
    const m = emptyModel();
    applyTimeline(m, raft(1, 2, 'lab-0', 1, 'Leader'));
    applyTimeline(m, { seq: 7, ts_ns: 2, source: { kind: 'node', id: 2 }, type: 'resources', cpu_percent: 12, memory_bytes: 5, disk_bytes: 6 });
    expect(m.nodes.get(2)).toMatchObject({ id: 2, state: 'running', cpu_percent: 12 });
  });

  it('keeps 100k+ events in the ring, dropping the oldest beyond capacity', () => {
    const m = emptyModel(100_000);
    for (let i = 0; i < 120_000; i++) applyTimeline(m, { ...fault(i, 'restart', 'node-1'), seq: i });
    expect(m.timeline.length).toBe(100_000);
    expect(m.timeline.at(0)!.seq).toBe(20_000);
    expect(m.timeline.dropped).toBe(20_000);
  });

  it('parses JSON Lines and replays to a cursor, backwards too', () => {
    const lines = [raft(0, 1, 'lab-0', 1, 'Leader'), raft(100, 2, 'lab-0', 2, 'Leader'), raft(101, 1, 'lab-0', 2, 'Follower')].map((e) => JSON.stringify(e)).join('\n');
    const events = parseJsonl(lines + '\n');
    const ring = new Ring<(typeof events)[0]>(10);
    events.forEach((e) => ring.push(e));
    const r = new Replay(ring);
    r.seek(50e6);
    expect(leaderOf(r.model, 'lab-0')).toEqual({ node: 1, term: 1 });
    r.seek(200e6);
    expect(leaderOf(r.model, 'lab-0')).toEqual({ node: 2, term: 2 });
    r.seek(10e6);
    expect(leaderOf(r.model, 'lab-0')!.term).toBe(1);
    r.playing = true;
    r.speed = 10;
    r.tick(100, 150e6);
    expect(r.cursor).toBe(150e6);
    expect(r.playing).toBe(false);
  });

  it('pages of a large cluster refine the model; a whole report replaces it; deleted topics go', () => {
    const summary = (topics: string[]) => raftSummary({ groups: 1001, max_term: 1,
      topics: Object.fromEntries(topics.map((t) => [t, { hosted: 1, leading: 0, leaderless: 0 }])) });
    const g = (group: string, node: number): GroupView => ({ group, term: 1, role: node === 1 ? 'Leader' : 'Follower', leader: 1, voted_for: 1, last_log_index: 1, applied_index: 1 });
    const page = (groups: string[], topics: string[], offset: number) => state({
      raft: [1, 2].map((node) => raftReport(node, 1, groups.map((n) => g(n, node)), summary(topics), { complete: false, offset, total: 1001 })),
      partitions: [{ node: 1, partitions: groups.filter((n) => n !== 'controller').map((n) => partitionState({ topic: n.replace(/-\d+$/, ''), partition: Number(n.split('-').pop()), log_start_offset: 0, log_end_offset: 5, flushed_offset: 5, high_watermark: 5 })),
        summary: { partitions: 1000, unflushed_records: 0, slowest: null }, complete: false, offset, total: 1000 }],
    });
    const m = emptyModel();
    applyState(m, page(['controller', 'big-0', 'old-0'], ['big', 'old'], 0));
    applyState(m, page(['big-1', 'big-2'], ['big', 'old'], 3));
    expect(groupNames(m)).toEqual(['controller', 'big-0', 'big-1', 'big-2', 'old-0']);
    expect(m.raftSummaries.get(2)!.groups).toBe(1001);
    expect(m.partitionSummaries.get(1)!.partitions).toBe(1000);
    expect([...m.replicas.keys()].sort()).toEqual(['big-0', 'big-1', 'big-2', 'old-0']);
    // "old" was deleted: no node's summary lists it any more.
    applyState(m, page(['big-3'], ['big'], 5));
    expect(groupNames(m)).toEqual(['controller', 'big-0', 'big-1', 'big-2', 'big-3']);
    expect(m.replicas.has('old-0')).toBe(false);
    // A whole report (a small cluster again) replaces everything.
    applyState(m, state());
    expect(groupNames(m)).toEqual(['controller', 'lab-0']);
    expect([...m.replicas.keys()]).toEqual(['lab-0']);
  });
});
