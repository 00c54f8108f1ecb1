/**
 * A bounded single-consumer queue exposed as an async iterator. Producers push; the one
 * reader awaits. end() finishes the iteration after queued items; fail() ends it with an error.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private items: T[] = [];
  private head = 0;
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private error: unknown;
  /** What the reader receives of each item, when that is not the item itself. */
  view: ((item: T) => T) | undefined;

  constructor(private readonly onReturn: () => void = () => undefined) {}

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.done) return;
    const w = this.waiting;
    if (w !== undefined) {
      this.waiting = undefined;
      w.resolve({ value: this.view === undefined ? item : this.view(item), done: false });
      return;
    }
    this.items.push(item);
  }

  /** Drops the oldest queued item. */
  shift(): void {
    if (this.head < this.items.length) this.head++;
    this.compact();
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    const w = this.waiting;
    if (w !== undefined && this.length === 0) {
      this.waiting = undefined;
      if (this.error !== undefined) w.reject(this.error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.error = error;
    this.end();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head++] as T;
      this.compact();
      return Promise.resolve({ value: this.view === undefined ? value : this.view(value), done: false });
    }
    if (this.done) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.items = [];
    this.head = 0;
    this.error = undefined;
    this.end();
    this.onReturn();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
