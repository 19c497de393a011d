// Desktop transport: Tauri IPC. The shell provides `lab_command {request}` (answers a Reply) and
// `lab_subscribe {channel}` (streams LabEvents into the channel).

import { describeError, toFailure } from './errors';
import { type ConnectionStatus, failure, Listeners, type Transport } from './transport';
import type { Command, LabEvent, Reply } from './types';

interface TauriChannel<T> { onmessage: (message: T) => void }
interface TauriCore {
  invoke<R>(cmd: string, args?: Record<string, unknown>): Promise<R>;
  Channel: new <T>() => TauriChannel<T>;
}
declare global {
  interface Window { __TAURI__?: { core: TauriCore } }
}

export class TauriTransport implements Transport {
  readonly kind = 'desktop';
  private events = new Listeners<LabEvent>();
  private status = new Listeners<ConnectionStatus>();
  private nextId = 1;
  private core: TauriCore;

  constructor() {
    this.core = window.__TAURI__!.core;
    const channel = new this.core.Channel<LabEvent>();
    channel.onmessage = (e) => this.events.emit(e);
    this.core.invoke('lab_subscribe', { channel }).then(
      () => this.status.emit('open'),
      (e) => {
        console.error('lab_subscribe failed:', describeError(e));
        this.status.emit('closed');
      },
    );
  }

  async send(command: Command): Promise<Reply> {
    try {
      return await this.core.invoke<Reply>('lab_command', { request: { id: this.nextId++, ...command } });
    } catch (e) {
      const f = toFailure(e, 'ipc');
      return failure(f.code, f.message);
    }
  }

  onEvent(listener: (event: LabEvent) => void): () => void {
    return this.events.add(listener);
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    listener('connecting');
    return this.status.add(listener);
  }
}
