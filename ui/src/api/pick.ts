// Which transport this page talks through. Kept apart from transport.ts, which both transports
// import: the interface module must not import its implementations (that was a module cycle).

import type { Transport } from './transport';

/** The desktop shell when Tauri is present, the lab server's WebSocket otherwise. */
export async function pickTransport(token: string | null): Promise<Transport> {
  if ('__TAURI__' in window) {
    const { TauriTransport } = await import('./tauri');
    return new TauriTransport();
  }
  const { WsTransport } = await import('./ws');
  return new WsTransport(location.origin, token);
}
