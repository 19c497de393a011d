// What every view gets: the client, the store, the model to show, and a way to run commands.

import type { LabClient } from '../api/lab';
import type { Reply } from '../api/types';
import type { Model } from '../state/model';
import type { Store } from '../state/store';
import { toast } from './dom';

export interface Ctx {
  client: LabClient;
  store: Store;
  /** The model shown now: live, or the replay at the timeline cursor. */
  model(): Model;
  canControl(): boolean;
  /** Runs a command, toasting its failure; resolves with the reply. */
  run(label: string, call: () => Promise<Reply>): Promise<Reply>;
}

export function runner() {
  return async (label: string, call: () => Promise<Reply>): Promise<Reply> => {
    const r = await call();
    if (r.ok) toast(`${label}: ok`);
    else toast(`${label}: ${r.error?.code ?? 'error'} — ${r.error?.message ?? ''}`, true);
    return r;
  };
}

/** A view: built once, then `update` whenever the model moved. */
export interface View {
  el: HTMLElement;
  update(): void;
}
