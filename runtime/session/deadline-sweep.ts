/**
 * One timer for the deadlines of many holders (the server's sessions with running calls),
 * instead of one timer per deadline. A holder is watched from its first deadline until a
 * sweep finds it holds none; the timer is armed for the earliest deadline it knows of and
 * re-armed only when a new deadline comes earlier. Calls that finish before their deadline,
 * nearly all of them, cost no timer at all. Time and timers are injected: no I/O here.
 */

/** What the sweep needs of time: a clock and a one-shot timer. */
export interface SweepTimers {
  now(): number;
  /** Calls `fn` once after `ms`; returns a handle for cancel(). */
  schedule(fn: () => void, ms: number): unknown;
  cancel(handle: unknown): void;
}

/** Something that holds deadlines: it expires what is due when asked. */
export interface DeadlineHolder {
  /** Expires everything due at `now`; returns the earliest deadline it still holds, or Infinity. */
  expire(now: number): number;
}

export class DeadlineSweep {
  private readonly holders = new Set<DeadlineHolder>();
  private handle: unknown;
  /** When the armed timer fires; Infinity while none is armed. */
  private armedFor = Infinity;
  private closed = false;

  constructor(private readonly timers: SweepTimers) {}

  /** Holders watched (for tests and stats). */
  get size(): number {
    return this.holders.size;
  }

  /** `holder` holds a deadline at `at` (epoch ms, as the clock reads). */
  watch(holder: DeadlineHolder, at: number): void {
    if (this.closed) return;
    this.holders.add(holder);
    if (at < this.armedFor) this.arm(at);
  }

  /** Expires what is due now and arms the timer for the earliest deadline left. */
  sweep(): void {
    if (this.handle !== undefined) this.timers.cancel(this.handle);
    this.handle = undefined;
    this.armedFor = Infinity;
    const now = this.timers.now();
    let next = Infinity;
    for (const h of this.holders) {
      const n = h.expire(now);
      if (n === Infinity) this.holders.delete(h);
      else if (n < next) next = n;
    }
    // A holder may have gained an earlier deadline while expiring (watch() armed for it).
    if (next < this.armedFor) this.arm(next);
  }

  /** Stops: no timer stays armed, later deadlines are not watched. */
  close(): void {
    this.closed = true;
    if (this.handle !== undefined) this.timers.cancel(this.handle);
    this.handle = undefined;
    this.armedFor = Infinity;
    this.holders.clear();
  }

  private arm(at: number): void {
    if (this.closed) return;
    if (this.handle !== undefined) this.timers.cancel(this.handle);
    this.armedFor = at;
    this.handle = this.timers.schedule(() => {
      this.handle = undefined;
      this.sweep();
    }, Math.max(0, at - this.timers.now()));
  }
}
