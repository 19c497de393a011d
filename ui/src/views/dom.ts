// Tiny DOM helpers: elements from tags, attributes and children; controls that obey read-only mode.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag: string, attrs: Record<string, string | number> = {}, ...children: (Node | string)[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/** A button that controls the lab: disabled for read-only viewers (see `syncControls`). */
export function control(label: string, onClick: () => void, attrs: Attrs = {}): HTMLButtonElement {
  return h('button', { 'data-control': '', onclick: onClick as EventListener, ...attrs }, label);
}

/** Disables every control when this viewer may not control the lab. */
export function syncControls(root: ParentNode, canControl: boolean): void {
  root.querySelectorAll<HTMLButtonElement | HTMLInputElement | HTMLSelectElement>('[data-control]').forEach((el) => {
    const own = el.dataset.off === '1';
    el.disabled = !canControl || own;
    if (!canControl) el.title = 'read-only: ask the instructor';
  });
}

export function section(id: string, title: string, ...children: Child[]): HTMLElement {
  return h('section', { id, class: 'panel' }, h('h2', {}, title), ...children);
}

export const fmtBytes = (b: number) => (b >= 1 << 30 ? `${(b / (1 << 30)).toFixed(1)} GB` : b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(0)} MB` : `${(b / 1024).toFixed(0)} kB`);

let toastBox: HTMLElement | null = null;
/** A short message in the corner (errors stay longer). */
export function toast(text: string, error = false): void {
  if (!toastBox) {
    toastBox = h('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastBox);
  }
  const t = h('div', { class: error ? 'toast error' : 'toast' }, text);
  toastBox.append(t);
  setTimeout(() => t.remove(), error ? 8000 : 3500);
}

/** Sets an element's text only when it changed (a write, even of the same text, costs a relayout). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Keyed rows: `parent` gets one element per item, in order; an item whose key (a string of what
 * it shows) is unchanged keeps the element built last time, so a panel redrawn every 250 ms
 * rebuilds only the rows that moved, and touches the parent only when the sequence changed.
 */
export class KeyedRows<T> {
  private built = new Map<string, { key: string; el: HTMLElement }>();
  private order = '';
  constructor(private id: (t: T) => string, private key: (t: T) => string, private build: (t: T) => HTMLElement) {}

  render(parent: HTMLElement, items: T[], extra: HTMLElement[] = []): void {
    const next = new Map<string, { key: string; el: HTMLElement }>();
    const ids = items.map(this.id);
    const els = items.map((t, i) => {
      const key = this.key(t);
      const old = this.built.get(ids[i]);
      const row = old && old.key === key ? old : { key, el: this.build(t) };
      next.set(ids[i], row);
      return row.el;
    });
    this.built = next;
    els.push(...extra);
    const order = ids.join('\n');
    if (order === this.order && parent.children.length === els.length) {
      // Same rows in the same order: swap only the rebuilt ones (re-inserting all of them would
      // lay out the whole list again).
      els.forEach((el, i) => {
        const cur = parent.children[i];
        if (cur !== el) cur.replaceWith(el);
      });
    } else parent.replaceChildren(...els);
    this.order = order;
  }
}
