// A fixed-capacity ring buffer: the timeline keeps the newest `capacity` events.

export class Ring<T> {
  private items: (T | undefined)[];
  private head = 0; // index of the oldest item
  private count = 0;
  dropped = 0;

  constructor(readonly capacity: number) {
    this.items = new Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count < this.capacity) {
      this.items[(this.head + this.count) % this.capacity] = item;
      this.count++;
    } else {
      this.items[this.head] = item;
      this.head = (this.head + 1) % this.capacity;
      this.dropped++;
    }
  }

  /** The i-th oldest item (0 = oldest). */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    return this.items[(this.head + i) % this.capacity];
  }

  last(): T | undefined {
    return this.at(this.count - 1);
  }

  /** An independent copy (the items themselves are shared: events are never mutated). */
  clone(): Ring<T> {
    const r = new Ring<T>(this.capacity);
    r.items = this.items.slice();
    r.head = this.head;
    r.count = this.count;
    r.dropped = this.dropped;
    return r;
  }

  clear(): void {
    this.items = new Array(this.capacity);
    this.head = 0;
    this.count = 0;
    this.dropped = 0;
  }

  /** First index whose key is >= k, assuming keys are (nearly) ascending. */
  lowerBound(k: number, key: (t: T) => number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (key(this.at(mid) as T) < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
