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
      else for (const ev of JSON.parse(m.json) as LabEvent[]) this.events.emit(ev);
    };
    worker.postMessage({ url: url.href } satisfies ToWorker);
  }

  async send(command: Command): Promise<Reply> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    try {
      const r = await fetch(new URL('/api/command', this.origin), { method: 'POST', headers, body: JSON.stringify({ id: this.nextId++, ...command }) });
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

  onEvent(listener: (event: LabEvent) => void): () => void {
    return this.events.add(listener);
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    return this.status.add(listener);
  }
}
