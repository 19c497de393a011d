// In-page instruments for the responsiveness benchmark, installed before the app loads
// (page.addInitScript). Everything is stored as flat arrays of [time, value] so reading them
// costs the page nothing while it runs; the benchmark windows and summarises them in Node.

export interface Probe {
  /** [frame time, gap since the previous frame (ms)]... */
  gaps: number[];
  /** [start, duration]... of long tasks (>= 50 ms, as Chrome reports them). */
  longtasks: number[];
  /** Per input kind: [event time, event → next paint (ms)]... */
  lat: Record<string, number[]>;
  /** WebSocket messages received, and those that were timeline events. */
  msgs: number;
  timelineMsgs: number;
  /** Import of a timeline file: 'change' event time and the paint after the app said it loaded. */
  importStart: number;
  importDone: number;
}

/** Runs in the page: must not reference anything outside itself. */
export function installProbe(): void {
  const b: Probe = { gaps: [], longtasks: [], lat: {}, msgs: 0, timelineMsgs: 0, importStart: 0, importDone: 0 };
  (window as unknown as { __bench: Probe }).__bench = b;

  // After the next paint: a message posted from requestAnimationFrame runs once the frame is out.
  const afterPaint = (cb: (t: number) => void) => requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => cb(performance.now());
    ch.port2.postMessage(null);
  });

  let last = 0;
  const frame = (t: number) => {
    if (last) b.gaps.push(t, t - last);
    last = t;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);

  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) b.longtasks.push(e.startTime, e.duration);
  }).observe({ type: 'longtask', buffered: true });

  // Input latency: from the event's own timestamp (when the browser received it, so time spent
  // queued behind a busy main thread counts) to the paint that follows its handling.
  const track = (label: string, type: string, selector: string) => addEventListener(type, (e) => {
    if (!(e.target instanceof Element) || !e.target.closest(selector)) return;
    const t0 = e.timeStamp;
    afterPaint((t) => (b.lat[label] ??= []).push(t0, t - t0));
  }, true);
  track('click', 'click', '#show-internal');
  track('scrub', 'input', '.scrub');
  track('hover', 'mousemove', '.timeline-canvas');

  addEventListener('change', (e) => {
    if (!(e.target instanceof Element) || !e.target.matches('.import-file')) return;
    b.importStart = e.timeStamp;
    b.importDone = 0;
    // The timeline view toasts "replaying N events" once the run is loaded.
    const seen = new MutationObserver(() => {
      if (![...document.querySelectorAll('#toasts .toast')].some((t) => t.textContent?.startsWith('replaying'))) return;
      seen.disconnect();
      afterPaint((t) => (b.importDone = t));
    });
    seen.observe(document.body, { childList: true, subtree: true });
  }, true);

  // Count what the lab pushes to this page: on the page's own sockets, or in the batches the
  // UI's socket worker posts ({kind: 'events', n, timeline}).
  const NativeWorker = window.Worker;
  window.Worker = class extends NativeWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(url, options);
      this.addEventListener('message', (m) => {
        const d = m.data as { kind?: string; n?: number; timeline?: number };
        if (d?.kind !== 'events') return;
        b.msgs += d.n ?? 0;
        b.timelineMsgs += d.timeline ?? 0;
      });
    }
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      this.addEventListener('message', (m) => {
        b.msgs++;
        if (typeof m.data === 'string' && m.data.startsWith('{"event":"timeline"')) b.timelineMsgs++;
      });
    }
  };
}
