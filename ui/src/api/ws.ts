// Browser transport: events over a reconnecting WebSocket (/api/ws), read in a worker that hands
// them over in batches (see ws_worker.ts); commands over POST /api/command. The server runs a
// socket's commands inline, so a long command sent on the socket (start_cluster, stop_workload)
// would hold back that socket's event stream; a separate HTTP request keeps events flowing. Both
// carry the token.

import { type ConnectionStatus, failure, Listeners, type Transport } from './transport';
import type { Command, LabEvent, Reply } from './types';
import type { FromWorker, ToWorker } from './ws_worker';

export class WsTransport implements Transport {
  readonly kind = 'server';
  private events = new Listeners<LabEvent>();
  private status = new Listeners<ConnectionStatus>();
  private nextId = 1;

  constructor(private origin: string, private token: string | null) {
    const url = new URL('/api/ws', this.origin.replace(/^http/, 'ws'));
    if (this.token) url.searchParams.set('token', this.token);
    const worker = new Worker(new URL('./ws_worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.kind === 'status') this.status.emit(m.status);
      else for (const ev of parseBatch(m.texts)) this.events.emit(ev);
    };
    worker.postMessage({ url: url.href } satisfies ToWorker);
  }

  send = (command: Command) => post(this.origin, this.token, this.nextId++, command);

  onEvent(listener: (event: LabEvent) => void): () => void {
    return this.events.add(listener);
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    return this.status.add(listener);
  }
}

/** Messages as events: one JSON.parse for the lot; one at a time only if some message is bad. */
export function parseBatch(texts: string[]): LabEvent[] {
  try {
    const all = JSON.parse(`[${texts.join(',')}]`) as LabEvent[];
    if (all.length === texts.length) return all; // else a message was a bare list like `1,2`
  } catch {
    // some message is not JSON: sort them out one by one
  }
  return texts.flatMap((t) => {
    try {
      return [JSON.parse(t) as LabEvent];
    } catch {
      return []; // not a lab event: ignore
    }
  });
}

async function post(origin: string, token: string | null, id: number, command: Command): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const r = await fetch(new URL('/api/command', origin), { method: 'POST', headers, body: JSON.stringify({ id, ...command }) });
    const text = await r.text();
    try {
      return JSON.parse(text) as Reply;
    } catch {
      return failure('bad_reply', `HTTP ${r.status}: ${text.slice(0, 200)}`);
    }
  } catch (e) {
    return failure('unreachable', `the lab server did not answer: ${String(e)}`);
  }
}
