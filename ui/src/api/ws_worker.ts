// The lab's event WebSocket, run in a worker. A busy lab pushes thousands of events a second, one
// WebSocket message each; on the page's main thread every message is a task of its own (dispatch,
// string decoding, a listener call), which at 2,000/s cost more than drawing the UI. Here they are
// batched, and the page gets one message per ~frame with all of them. They are not parsed here:
// that would be done twice (the page parses the batch in one go).

/** To the worker: where to connect. From it: connection status, or a batch of events. */
export type ToWorker = { url: string };
export type FromWorker =
  | { kind: 'status'; status: 'connecting' | 'open' | 'closed' }
  /** `texts`: the messages as received; `timeline`: how many are timeline events (for the benchmark). */
  | { kind: 'events'; texts: string[]; n: number; timeline: number };

const BATCH_MS = 16;
const BATCH_MAX = 5000;

const post = (m: FromWorker) => (self as unknown as Worker).postMessage(m);
let batch: string[] = [];
let timeline = 0;
let timer: ReturnType<typeof setTimeout> | null = null;

function flush(): void {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  if (!batch.length) return;
  post({ kind: 'events', texts: batch, n: batch.length, timeline });
  batch = [];
  timeline = 0;
}

function connect(url: string, retryMs: number): void {
  post({ kind: 'status', status: 'connecting' });
  const ws = new WebSocket(url);
  ws.onopen = () => {
    retryMs = 500;
    post({ kind: 'status', status: 'open' });
  };
  ws.onmessage = (m) => {
    if (typeof m.data !== 'string') return; // the lab sends text frames only
    const text = m.data;
    batch.push(text);
    if (text.startsWith('{"event":"timeline"')) timeline++;
    if (batch.length >= BATCH_MAX) flush();
    else timer ??= setTimeout(flush, BATCH_MS);
  };
  ws.onclose = () => {
    flush();
    post({ kind: 'status', status: 'closed' });
    setTimeout(() => connect(url, Math.min(retryMs * 2, 5000)), retryMs);
  };
}

self.onmessage = (e: MessageEvent<ToWorker>) => connect(e.data.url, 500);
