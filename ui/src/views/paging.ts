// A filter box and a page of rows for lists that grow with the partition count: at 1,000+
// partitions a panel shows one page (and a count) instead of building a row for every one.

import { h, setText } from './dom';

export interface Paging {
  el: HTMLElement;
  /** The filter text, lower case ('' = none). */
  filter(): string;
  /** The rows of the current page of `matching` (of `total` before filtering); updates the count. */
  page<T>(matching: T[], total: number): T[];
}

export function paging(id: string, size: number, what: string, onChange: () => void): Paging {
  let start = 0;
  const input = h('input', { type: 'search', id: `${id}-filter`, placeholder: `filter ${what}…`, 'aria-label': `filter ${what}` });
  const prev = h('button', { id: `${id}-prev`, title: 'previous page' }, '‹');
  const next = h('button', { id: `${id}-next`, title: 'next page' }, '›');
  const count = h('span', { id: `${id}-count`, class: 'count' });
  const el = h('div', { class: 'paging' }, input, prev, next, count);
  input.addEventListener('input', () => { start = 0; onChange(); });
  prev.addEventListener('click', () => { start = Math.max(0, start - size); onChange(); });
  next.addEventListener('click', () => { start += size; onChange(); });
  return {
    el,
    filter: () => input.value.trim().toLowerCase(),
    page<T>(matching: T[], total: number): T[] {
      const hidden = total <= size && !input.value;
      if (el.hidden !== hidden) el.hidden = hidden;
      if (start >= matching.length) start = Math.max(0, Math.floor((matching.length - 1) / size) * size);
      const end = Math.min(matching.length, start + size);
      prev.disabled = start === 0;
      next.disabled = end >= matching.length;
      const of = matching.length === total ? `${total.toLocaleString('en')}` : `${matching.length.toLocaleString('en')} matching (of ${total.toLocaleString('en')})`;
      setText(count, matching.length ? `${start + 1}–${end} of ${of}` : `none of ${total.toLocaleString('en')}`);
      return matching.slice(start, end);
    },
  };
}
