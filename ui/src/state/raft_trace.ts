// The Raft view's data, DOM-free: the watched group's messages (from `raft_trace` timeline
// entries), each node's role and term (`raft` entries), its replica log, and what the group
// looked like at any moment `t` — nodes, messages in flight, the vote tally, election deadlines,
// logs and plain-language captions. Replays and live runs use the same code.

import type { NodeTrace, ReplicaLog, Role, TimelineEvent, TraceEvent, TraceOutcome } from '../api/types';

/** What travels along a link. Replies have their own kinds so each can be drawn its own way. */
export type MsgKind = 'vote' | 'vote_reply' | 'append' | 'append_ack' | 'empty_append' | 'empty_append_ack' | 'node_heartbeat' | 'node_heartbeat_ack' | 'prevote' | 'prevote_reply';

export interface Msg {
  kind: MsgKind; from: number; to: number;
  /** Sent and arrived, ns (wall clock). A reply leaves when its request arrived. */
  sent: number; arrive: number;
  term: number | null;
  /** Replies: granted / acknowledged. Requests: true unless refused. */
  ok: boolean;
  /** Never arrived: the link is cut, the peer is down or it timed out. */
  dropped: boolean;
  /** A short description ("entries 5–7", "refused: its log is more up to date"). */
  detail: string;
  /** AppendEntries requests: the index before the first entry sent (null: from the log start),
   * the last entry sent (null: a heartbeat) and how the follower answered. */
  log?: { prev: number | null; last: number | null; answer: 'ok' | 'conflict' | 'other' };
}

export interface Decision { ts: number; node: number; event: TraceEvent }
interface StateAt { ts: number; role: Role; term: number; leader: number | null; votedFor: number | null }
interface ReplicaAt { ts: number; r: ReplicaLog }
interface UpAt { ts: number; up: boolean }

/** Messages are drawn at least this long (cluster time): loopback round trips take ~1 ms. */
export const MIN_FLIGHT_NS = 8e6;
/** Messages and decisions kept: minutes of a quiet group, tens of seconds under load. */
const MAX_MSGS = 30_000;
const MAX_PER_NODE = 4_000;

const ok = (o: TraceOutcome) => o.kind === 'ok';
const failed = (o: TraceOutcome) => o.kind === 'unreachable' || o.kind === 'timeout' || o.kind === 'error';
/** Why a message was lost, in words: the kind, then the transport's reason. */
const lossOf = (o: TraceOutcome) => ('reason' in o && o.kind !== 'refused' ? `${o.kind}: ${o.reason}` : o.kind);

/** Insert keeping `arr` sorted by `key` (batches arrive nearly in order: search from the end). */
function insertSorted<T>(arr: T[], item: T, key: (t: T) => number): void {
  let i = arr.length;
  while (i > 0 && key(arr[i - 1]) > key(item)) i--;
  arr.splice(i, 0, item);
}

/** The last element with `ts <= t` of an array sorted by ts. */
export function latestAt<T extends { ts: number }>(arr: T[] | undefined, t: number): T | undefined {
  if (!arr?.length) return undefined;
  let lo = 0, hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid].ts <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? arr[lo - 1] : undefined;
}

/** First index in `msgs` (sorted by sent) with sent >= t. */
function firstSentFrom(msgs: Msg[], t: number): number {
  let lo = 0, hi = msgs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (msgs[mid].sent < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The messages one recorded event stands for: a request and, unless it got lost, its reply. */
export function messagesOf(node: number, e: TraceEvent): Msg[] {
  if (e.type === 'campaign' || e.type === 'commit' || e.type === 'truncate') return [];
  const half = (e.rtt_us * 1000) / 2;
  const sent = e.ts_ns;
  let kinds: [MsgKind, MsgKind];
  let term: number | null = null, detail = '', replyOk = true, lost = false;
  if (e.type === 'vote') {
    kinds = ['vote', 'vote_reply'];
    term = e.term;
    replyOk = ok(e.outcome);
    lost = failed(e.outcome);
    detail = e.outcome.kind === 'refused' ? `refused: ${e.outcome.reason}` : e.outcome.kind === 'higher_vote' ? `refused: has term ${e.outcome.term}` : lossOf(e.outcome);
  } else if (e.type === 'append') {
    kinds = e.entries ? ['append', 'append_ack'] : ['empty_append', 'empty_append_ack'];
    term = e.term;
    replyOk = ok(e.outcome) || e.outcome.kind === 'partial_success';
    lost = failed(e.outcome);
    detail = e.entries ? `entries ${e.entries[0]}–${e.entries[1]}` : 'no entries';
    if (e.outcome.kind === 'conflict') detail += ': conflict';
    if (e.outcome.kind === 'higher_vote') detail += `: has term ${e.outcome.term}`;
    if (lost) detail += ` lost (${lossOf(e.outcome)})`;
  } else if (e.type === 'node_heartbeat') {
    kinds = ['node_heartbeat', 'node_heartbeat_ack'];
    lost = !ok(e.outcome);
    detail = lost ? `all groups, lost (${lossOf(e.outcome)})` : 'all groups';
  } else {
    kinds = ['prevote', 'prevote_reply'];
    lost = e.answer === 'no answer';
    detail = e.answer;
  }
  const req: Msg = { kind: kinds[0], from: node, to: e.to, sent, arrive: sent + half, term, ok: true, dropped: lost, detail };
  if (e.type === 'append') {
    const answer = ok(e.outcome) || e.outcome.kind === 'partial_success' ? 'ok' : e.outcome.kind === 'conflict' ? 'conflict' : 'other';
    req.log = { prev: e.prev?.[1] ?? null, last: e.entries?.[1] ?? null, answer };
  }
  if (lost) return [req];
  return [req, { kind: kinds[1], from: e.to, to: node, sent: sent + half, arrive: sent + 2 * half, term, ok: replyOk, dropped: false, detail }];
}

export class RaftTraceStore {
  group: string | null = null;
  msgs: Msg[] = [];
  decisions: Decision[] = [];
  states = new Map<number, StateAt[]>();
  replicas = new Map<number, ReplicaAt[]>();
  up = new Map<number, UpAt[]>();
  suspectAfterMs = 300;
  missed = 0;
  private nodeIds: number[] = [];
  firstTs = 0;
  lastTs = 0;

  clone(): RaftTraceStore {
    const c = new RaftTraceStore();
    Object.assign(c, this);
    c.msgs = this.msgs.slice();
    c.decisions = this.decisions.slice();
    c.states = new Map([...this.states].map(([k, v]) => [k, v.slice()]));
    c.replicas = new Map([...this.replicas].map(([k, v]) => [k, v.slice()]));
    c.up = new Map([...this.up].map(([k, v]) => [k, v.slice()]));
    return c;
  }

  /** Forgets everything: another group is watched now. */
  private reset(group: string | null): void {
    Object.assign(this, new RaftTraceStore(), { group });
  }

  /** Every node seen in the group's states, replicas or messages, in id order (kept as they come:
   * the view asks for them every frame). */
  nodes(): number[] {
    return this.nodeIds;
  }

  private saw(id: number): void {
    if (!this.nodeIds.includes(id)) this.nodeIds = [...this.nodeIds, id].sort((a, b) => a - b);
  }

  apply(e: TimelineEvent): void {
    const node = e.source.kind === 'node' ? e.source.id : null;
    if (e.type === 'raft_trace') {
      if (e.group !== this.group) this.reset(e.group);
      for (const n of e.nodes) this.applyNode(e.ts_ns, n);
    } else if (e.type === 'raft' && node !== null && e.group === this.group) {
      this.saw(node);
      push(this.states, node, { ts: e.ts_ns, role: e.role, term: e.term, leader: e.leader, votedFor: e.voted_for });
    } else if (e.type === 'process' && node !== null) {
      const up = e.state === 'ready' ? true : e.state === 'exited' || e.state === 'died' ? false : null;
      if (up !== null) push(this.up, node, { ts: e.ts_ns, up });
    } else return;
    if (!this.firstTs || e.ts_ns < this.firstTs) this.firstTs = e.ts_ns;
    if (e.ts_ns > this.lastTs) this.lastTs = e.ts_ns;
  }

  private applyNode(batchTs: number, n: NodeTrace): void {
    if (n.suspect_after_ms) this.suspectAfterMs = n.suspect_after_ms;
    this.missed += n.missed;
    if (n.replica) {
      this.saw(n.node);
      push(this.replicas, n.node, { ts: n.replica.at_ns ?? batchTs, r: n.replica });
    }
    for (const ev of n.events) {
      if (ev.group !== null && ev.group !== this.group) continue;
      if (ev.type === 'campaign' || ev.type === 'commit' || ev.type === 'truncate') {
        insertSorted(this.decisions, { ts: ev.ts_ns, node: n.node, event: ev }, (d) => d.ts);
      } else {
        for (const m of messagesOf(n.node, ev)) {
          this.saw(m.from);
          this.saw(m.to);
          insertSorted(this.msgs, m, (x) => x.sent);
        }
      }
      if (!this.firstTs || ev.ts_ns < this.firstTs) this.firstTs = ev.ts_ns;
    }
    if (this.msgs.length > MAX_MSGS) this.msgs.splice(0, this.msgs.length - MAX_MSGS);
    if (this.decisions.length > MAX_MSGS) this.decisions.splice(0, this.decisions.length - MAX_MSGS);
  }
}

function push<T extends { ts: number }>(m: Map<number, T[]>, node: number, v: T): void {
  const arr = m.get(node) ?? [];
  insertSorted(arr, v, (x) => x.ts);
  if (arr.length > MAX_PER_NODE) arr.splice(0, arr.length - MAX_PER_NODE);
  m.set(node, arr);
}

// ---------------------------------------------------------------- the scene at time t

/** When a message is on screen: at least MIN_FLIGHT_NS, a reply after its request's flight. */
export function flightOf(m: Msg): { from: number; to: number } {
  const isReply = m.kind.endsWith('_reply') || m.kind.endsWith('_ack');
  const dur = Math.max(m.arrive - m.sent, MIN_FLIGHT_NS);
  const start = isReply ? m.sent - (m.arrive - m.sent) + dur : m.sent; // replies follow the stretched request
  return { from: start, to: start + dur };
}

export interface SceneNode {
  id: number; role: Role | 'Down'; term: number; leader: number | null; votedFor: number | null;
  /** Followers: fraction of the election timeout left (1 = just heard from the leader). */
  deadline: number | null;
}
export interface Flight { msg: Msg; progress: number }
export interface Tally { candidate: number; term: number; granted: number[]; refused: number[]; lost: number[]; needed: number; won: boolean }
export interface Scene {
  t: number; nodes: SceneNode[]; flights: Flight[]; tally: Tally | null; logs: Map<number, ReplicaLog>; captions: Caption[];
  /** The leader's nextIndex per follower (see `nextIndexAt`). */
  next: Map<number, number>;
  /** Per node, its latest log truncation if it happened within the last ROLLBACK_SHOWN_NS. */
  rollbacks: Map<number, { from: number; discarded: number; terms: [number, number][] }>;
}
export interface Caption { ts: number; text: string }

/** A replica's log row stays marked this long (cluster time) after a truncation. */
export const ROLLBACK_SHOWN_NS = 2e9;
/** How far back messages are looked at (a flight, a tally, a heartbeat heard). */
export const LOOKBACK_NS = 3e9;

export function scene(s: RaftTraceStore, t: number): Scene {
  const ids = s.nodes();
  const start = firstSentFrom(s.msgs, t - LOOKBACK_NS);
  const recent = s.msgs.slice(start, firstSentFrom(s.msgs, t + 1));
  const flights: Flight[] = [];
  for (const m of recent) {
    const f = flightOf(m);
    if (f.from <= t && t < f.to) flights.push({ msg: m, progress: (t - f.from) / (f.to - f.from) });
  }
  const suspect = s.suspectAfterMs * 1e6;
  const nodes: SceneNode[] = ids.map((id) => {
    const st = latestAt(s.states.get(id), t);
    const rep = latestAt(s.replicas.get(id), t)?.r;
    const up = latestAt(s.up.get(id), t)?.up ?? true;
    // Both are stamped by the node: the later one is the truth at t.
    const repTs = latestAt(s.replicas.get(id), t)?.ts ?? -1;
    const useRep = rep && (!st || repTs > st.ts);
    const role = !up ? 'Down' : useRep ? rep.role : st?.role ?? 'Follower';
    const term = useRep ? rep.term : st?.term ?? 0;
    const leader = useRep ? rep.leader : st?.leader ?? null;
    const votedFor = useRep ? rep.voted_for : st?.votedFor ?? null;
    let deadline: number | null = null;
    if (up && role === 'Follower' && leader !== null && leader !== id) {
      let heard = -Infinity;
      for (const m of recent) {
        const f = flightOf(m);
        if (m.from === leader && m.to === id && !m.dropped && f.to <= t && f.to > heard) heard = f.to;
      }
      if (heard > -Infinity) deadline = Math.max(0, Math.min(1, 1 - (t - heard) / suspect));
    }
    return { id, role, term, leader, votedFor, deadline };
  });
  const logs = new Map<number, ReplicaLog>();
  for (const id of ids) {
    const r = latestAt(s.replicas.get(id), t)?.r;
    if (r) logs.set(id, r);
  }
  const rollbacks: Scene['rollbacks'] = new Map();
  for (const d of s.decisions) {
    if (d.event.type === 'truncate' && d.ts <= t && d.ts > t - ROLLBACK_SHOWN_NS) rollbacks.set(d.node, d.event);
  }
  const leader = nodes.find((n) => n.role === 'Leader')?.id;
  const next = leader === undefined ? new Map<number, number>() : nextIndexAt(recent, leader, t);
  return { t, nodes, flights, tally: tallyAt(recent, ids.length, t), logs, captions: captions(s, t - LOOKBACK_NS, t), rollbacks, next };
}

/**
 * The leader's nextIndex per follower at `t`, as Raft defines it: the index of the next entry it
 * will send. openraft does not report it, so it is read off the leader's latest AppendEntries to
 * each follower: while one is in flight, the entry after its `prev`; once acknowledged, the entry
 * after its last one; after a conflict, `prev` itself (the leader backs up to probe an earlier
 * entry). Timing follows the drawn flights, so the number changes as the reply lands.
 */
export function nextIndexAt(recent: Msg[], leader: number, t: number): Map<number, number> {
  const latest = new Map<number, Msg>();
  for (const m of recent) if (m.from === leader && m.log && m.sent <= t) latest.set(m.to, m);
  const next = new Map<number, number>();
  for (const [to, m] of latest) {
    const { prev, last, answer } = m.log!;
    const from = prev === null ? 0 : prev + 1;
    const answered = !m.dropped && t >= m.sent + 2 * Math.max(m.arrive - m.sent, MIN_FLIGHT_NS);
    if (!answered || answer === 'other') next.set(to, from);
    else if (answer === 'ok') next.set(to, last === null ? from : last + 1);
    else next.set(to, Math.max(0, from - 1));
  }
  return next;
}

/** The latest election seen by `t`: its candidate's votes as the replies arrived. */
export function tallyAt(msgs: Msg[], voters: number, t: number): Tally | null {
  let req: Msg | undefined;
  for (const m of msgs) if (m.kind === 'vote' && m.sent <= t && (!req || (m.term ?? 0) >= (req.term ?? 0))) req = m;
  if (!req) return null;
  const { from: candidate, term } = req;
  const granted = new Set<number>(), refused = new Set<number>(), lost = new Set<number>();
  for (const m of msgs) {
    if (m.term !== term) continue;
    const arrived = flightOf(m).to <= t;
    if (m.kind === 'vote_reply' && m.to === candidate && arrived) (m.ok ? granted : refused).add(m.from);
    if (m.kind === 'vote' && m.from === candidate && m.dropped && arrived) lost.add(m.to);
  }
  const needed = Math.floor(Math.max(voters, 1) / 2) + 1;
  return { candidate, term: term ?? 0, granted: [...granted], refused: [...refused], lost: [...lost], needed, won: granted.size + 1 >= needed };
}

/** Plain-language lines for what happened in (from, to], oldest first; heartbeats and routine appends left out. */
export function captions(s: RaftTraceStore, from: number, to: number): Caption[] {
  const out: Caption[] = [];
  const n = (id: number) => `n${id}`;
  for (const d of s.decisions) {
    if (d.ts <= from || d.ts > to) continue;
    const e = d.event;
    if (e.type === 'campaign') {
      const after = s.msgs.slice(firstSentFrom(s.msgs, d.ts), firstSentFrom(s.msgs, d.ts + 2e9));
      const term = after.find((m) => m.kind === 'vote' && m.from === e.candidate)?.term;
      const others = s.nodes().filter((x) => x !== e.candidate).map(n).join(' and ');
      out.push({ ts: d.ts, text: e.candidate === d.node
        ? `${n(d.node)}: ${e.reason}; it campaigns${term ? ` in term ${term}` : ''} and asks ${others} for votes`
        : `${n(d.node)}: ${e.reason}; it asks the more up-to-date ${n(e.candidate)} to campaign` });
    } else if (e.type === 'truncate') {
      const terms = e.terms.map(([t, c]) => `${c} from term ${t}`).join(', ');
      out.push({ ts: d.ts, text: `${n(d.node)} discarded ${e.discarded} uncommitted entr${e.discarded === 1 ? 'y' : 'ies'} (${terms}) that the leader's log does not have` });
    }
  }
  const wins = new Set<string>();
  // A message arrives within its round trip (at most a vote's timeout) of being sent.
  const recent = s.msgs.slice(firstSentFrom(s.msgs, from - 1e9), firstSentFrom(s.msgs, to + 1));
  for (const m of recent) {
    const at = flightOf(m).to;
    if (at <= from || at > to) continue;
    if (m.kind === 'vote_reply') {
      out.push({ ts: at, text: m.ok ? `${n(m.from)} granted ${n(m.to)} its vote in term ${m.term}` : `${n(m.from)} ${m.detail.replace(/^refused/, 'refused ' + n(m.to))} (term ${m.term})` });
      const key = `${m.to}:${m.term}`;
      if (m.ok && !wins.has(key)) {
        const tally = tallyAt(recent.filter((x) => x.term === m.term), s.nodes().length, at);
        if (tally?.won && tally.candidate === m.to) {
          wins.add(key);
          out.push({ ts: at + 1, text: `${n(m.to)} has ${tally.granted.length + 1} of ${s.nodes().length} votes: it leads term ${m.term}` });
        }
      }
    } else if (m.kind === 'vote' && m.dropped) {
      out.push({ ts: at, text: `${n(m.from)}'s vote request to ${n(m.to)} was lost (${m.detail.split(':')[0]})` });
    } else if (m.kind === 'append_ack' && !m.ok) {
      const higher = /has term (\d+)/.exec(m.detail);
      out.push({ ts: at, text: higher
        ? `${n(m.from)} refused ${n(m.to)}'s append: it has seen term ${higher[1]}, so ${n(m.to)} (term ${m.term}) no longer leads`
        : `${n(m.from)} refused ${n(m.to)}'s entries (${m.detail.replace(/: conflict$/, '')}): its log does not hold the entry before them; the leader backs up and retries` });
    }
  }
  return out.sort((a, b) => a.ts - b.ts);
}

/** The next moment after `t` at which something starts or arrives (for the Step button). */
export function nextMoment(s: RaftTraceStore, t: number, skipHeartbeats = true): number | null {
  let best = Infinity;
  for (let i = firstSentFrom(s.msgs, t - 2 * MIN_FLIGHT_NS - LOOKBACK_NS); i < s.msgs.length; i++) {
    const m = s.msgs[i];
    if (skipHeartbeats && m.kind.startsWith('node_heartbeat')) continue;
    const f = flightOf(m);
    if (f.from > t + 1 && f.from < best) best = f.from;
    if (f.to > t + 1 && f.to < best) best = f.to;
    if (f.from > best) break;
  }
  for (const d of s.decisions) if (d.ts > t + 1 && d.ts < best) best = d.ts;
  return best === Infinity ? null : best;
}

/** The first election-related event in (after, upTo]: where a live view should jump to. */
export function nextInteresting(s: RaftTraceStore, after: number, upTo: number): number | null {
  for (const d of s.decisions) if (d.ts > after && d.ts <= upTo && d.event.type !== 'commit') return d.ts;
  for (let i = firstSentFrom(s.msgs, after + 1); i < s.msgs.length && s.msgs[i].sent <= upTo; i++) {
    const k = s.msgs[i].kind;
    if (k === 'vote' || k === 'prevote') return s.msgs[i].sent;
  }
  return null;
}

/** A term's colour, the same in every row and replay. */
export const termColour = (term: number) => `hsl(${(term * 67) % 360} 60% 45%)`;
