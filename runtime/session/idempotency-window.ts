/**
 * The server's memory of idempotency keys: a retried request with the same key runs once and
 * gets the first outcome. Records are scoped to a principal (another principal's key never
 * matches) and bounded per principal by count and age. Pure: the clock is passed in.
 */
export interface IdempotencyLimits {
  /** Completed records kept per principal. Default 10 000. */
  readonly maxKeysPerPrincipal: number;
  /** How long a completed record is kept. Default 600 000 ms (10 min). */
  readonly ttlMs: number;
}

export const defaultIdempotencyLimits: IdempotencyLimits = { maxKeysPerPrincipal: 10_000, ttlMs: 600_000 };

/** What a request ended with: the reply payload or the error fields. */
export type Outcome =
  | { readonly kind: "reply"; readonly payload: Uint8Array }
  | { readonly kind: "error"; readonly code: number; readonly message: string; readonly reason: string };

/** The request a key belongs to; a retry must match it exactly. */
export interface RequestFingerprint {
  /** Method path, plus the channel for publishes. */
  readonly target: string;
  /** Hash of the payload bytes. */
  readonly digest: number;
}

export type BeginResult =
  | { readonly kind: "run" }
  | { readonly kind: "done"; readonly outcome: Outcome }
  | { readonly kind: "wait"; readonly outcome: Promise<Outcome> }
  | { readonly kind: "conflict" };

type Keys = Map<string, Entry> & { completed: number };

interface Entry {
  readonly target: string;
  readonly digest: number;
  /** Set once completed; undefined while the first request runs. */
  outcome: Outcome | undefined;
  completedAt: number;
  waiters: ((o: Outcome) => void)[];
}

export class IdempotencyWindow {
  private readonly byPrincipal = new Map<string, Keys>();
  /** Records held, all principals together; for metrics. */
  size = 0;

  constructor(private readonly limits: IdempotencyLimits = defaultIdempotencyLimits) {}

  /** Registers a request. "run" means it is the first: run it, then call complete() or forget(). */
  begin(principal: string, key: string, request: RequestFingerprint, now: number): BeginResult {
    let keys = this.byPrincipal.get(principal);
    if (keys === undefined) this.byPrincipal.set(principal, (keys = Object.assign(new Map<string, Entry>(), { completed: 0 })));
    this.expire(keys, now);
    const e = keys.get(key);
    if (e === undefined) {
      keys.set(key, { target: request.target, digest: request.digest, outcome: undefined, completedAt: 0, waiters: [] });
      this.size++;
      return { kind: "run" };
    }
    if (e.target !== request.target || e.digest !== request.digest) return { kind: "conflict" };
    if (e.outcome !== undefined) return { kind: "done", outcome: e.outcome };
    return { kind: "wait", outcome: new Promise((resolve) => e.waiters.push(resolve)) };
  }

  /** Records the outcome of a request that ran, and answers the duplicates that waited. */
  complete(principal: string, key: string, outcome: Outcome, now: number): void {
    const keys = this.byPrincipal.get(principal);
    const e = keys?.get(key);
    if (keys === undefined || e === undefined || e.outcome !== undefined) return;
    // Move the record to the end so that the map stays ordered by completion time.
    keys.delete(key);
    keys.set(key, e);
    e.outcome = outcome;
    e.completedAt = now;
    keys.completed++;
    for (const w of e.waiters) w(outcome);
    e.waiters = [];
    this.evict(keys);
  }

  /**
   * Drops the record of a request that ended transiently (canceled, deadline, unavailable):
   * a retry must run it again. Waiting duplicates get this outcome.
   */
  forget(principal: string, key: string, outcome: Outcome): void {
    const keys = this.byPrincipal.get(principal);
    const e = keys?.get(key);
    if (keys === undefined || e === undefined || e.outcome !== undefined) return;
    keys.delete(key);
    this.size--;
    for (const w of e.waiters) w(outcome);
    if (keys.size === 0) this.byPrincipal.delete(principal);
  }

  private expire(keys: Keys, now: number): void {
    for (const [k, e] of keys) {
      if (e.outcome === undefined) continue; // running: never expired
      if (now - e.completedAt < this.limits.ttlMs) break; // completion order: the rest are newer
      keys.delete(k);
      keys.completed--;
      this.size--;
    }
  }

  private evict(keys: Keys): void {
    for (const [k, e] of keys) {
      if (keys.completed <= this.limits.maxKeysPerPrincipal) break;
      if (e.outcome === undefined) continue;
      keys.delete(k);
      keys.completed--;
      this.size--;
    }
  }
}
