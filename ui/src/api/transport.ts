// One client interface, two transports: WebSocket (browsers) and Tauri IPC (the desktop shell).

import type { Command, LabEvent, Reply } from './types';

export type ConnectionStatus = 'connecting' | 'open' | 'closed';

export interface Transport {
  /** Where the lab runs: inside the desktop app on this computer, or behind a lab server. */
  readonly kind: 'desktop' | 'server';
  /** Sends one command; resolves with its reply (errors are replies with ok=false, not rejections). */
  send(command: Command): Promise<Reply>;
  /** Every event the lab pushes (state snapshots, timeline entries). Returns an unsubscribe. */
  onEvent(listener: (event: LabEvent) => void): () => void;
  onStatus(listener: (status: ConnectionStatus) => void): () => void;
}

/** A small listener set shared by both transports. */
export class Listeners<T> {
  private set = new Set<(v: T) => void>();
  add(l: (v: T) => void): () => void {
    this.set.add(l);
    return () => this.set.delete(l);
  }
  emit(v: T): void {
    for (const l of this.set) l(v);
  }
}

export function failure(code: string, message: string): Reply {
  return { event: 'reply', id: null, ok: false, result: null, error: { code, message } };
}
