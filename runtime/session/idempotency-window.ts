import { Code } from "../errors/code.js";
import { ProtocastError } from "../errors/protocast-error.js";

/**
 * The server's memory of idempotency keys: a retried request with the same key runs once and
 * gets the first outcome. Records are scoped (a principal, or a session for anonymous ones):
 * another scope's key never matches. Pure: the clock is passed in, and whoever owns the window
 * calls sweep() on a timer so that records expire even when nobody calls again.
 */
export interface IdempotencyLimits {
  /** Completed records kept per scope; past it the scope's oldest completed record goes. Default 10 000. */
  readonly maxKeysPerPrincipal: number;
  /**
   * Records kept in total, running ones included. At the bound a new request evicts the oldest
   * completed record of any scope; when every record is running, the new request is refused
   * (RESOURCE_EXHAUSTED). Default 100 000: about 65 MB at the ~650 bytes a small record costs.
   */
  readonly maxRecords: number;
  /** How long a completed record is kept. Default 600 000 ms (10 min). */
  readonly ttlMs: number;
}

export const defaultIdempotencyLimits: IdempotencyLimits = { maxKeysPerPrincipal: 10_000, maxRecords: 100_000, ttlMs: 600_000 };

/** Fills in the defaults; throws INVALID_ARGUMENT naming the option and the value. */
export function resolveIdempotencyLimits(limits: Partial<IdempotencyLimits> = {}): IdempotencyLimits {
  const out = { ...defaultIdempotencyLimits, ...definedOnly(limits) };
  for (const name of ["maxKeysPerPrincipal", "maxRecords", "ttlMs"] as const) {
    const v = out[name];
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ProtocastError(Code.InvalidArgument, `idempotency option ${name} must be an integer >= 1, got ${String(v)}`);
    }
  }
  return out;
}

function definedOnly(limits: Partial<IdempotencyLimits>): Partial<IdempotencyLimits> {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

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
  | { readonly kind: "conflict" }
  /** maxRecords are held and all of them are running: nothing may be evicted. */
  | { readonly kind: "full" };

/** A scope's records, in completion order (running ones sit where they began). */
interface Scope {
  readonly id: string;
  readonly keys: Map<string, Entry>;
  completed: number;
}

interface Entry {
  readonly scope: Scope;
  readonly key: string;
  readonly target: string;
  readonly digest: number;
  /** Set once completed; undefined while the first request runs. */
  outcome: Outcome | undefined;
  completedAt: number;
  waiters: ((o: Outcome) => void)[];
}

/** Expired records removed inline per begin(): more than one begin() adds, so it keeps pace. */
const INLINE_SWEEP = 64;

export class IdempotencyWindow {
  readonly limits: IdempotencyLimits;
  private readonly scopes = new Map<string, Scope>();
  /**
   * Completed records of every scope, oldest completion first: expiry and the total bound
   * both take from the head, so neither walks the records that stay.
   */
  private readonly completions = new Set<Entry>();
  /** Latest completion time given out; keeps `completions` ordered if the clock steps back. */
  private lastCompletedAt = -Infinity;
  /** Records held, all scopes together; for metrics. */
  size = 0;

  constructor(limits: Partial<IdempotencyLimits> = {}) {
    this.limits = resolveIdempotencyLimits(limits);
  }

  /** Scopes holding at least one record (an empty one is deleted at once). */
  get scopeCount(): number {
    return this.scopes.size;
  }

  /** Registers a request. "run" means it is the first: run it, then call complete() or forget(). */
  begin(scopeId: string, key: string, request: RequestFingerprint, now: number): BeginResult {
    this.sweep(now, INLINE_SWEEP);
    let e = this.scopes.get(scopeId)?.keys.get(key);
    // The sweep may not have reached it yet; an expired record is never served.
    if (e?.outcome !== undefined && now - e.completedAt >= this.limits.ttlMs) {
      this.remove(e);
      e = undefined;
    }
    if (e === undefined) {
      if (this.size >= this.limits.maxRecords) {
        const oldest = this.completions.values().next();
        if (oldest.done === true) return { kind: "full" };
        this.remove(oldest.value);
      }
      let scope = this.scopes.get(scopeId);
      if (scope === undefined) this.scopes.set(scopeId, (scope = { id: scopeId, keys: new Map(), completed: 0 }));
      scope.keys.set(key, { scope, key, target: request.target, digest: request.digest, outcome: undefined, completedAt: 0, waiters: [] });
      this.size++;
      return { kind: "run" };
    }
    if (e.target !== request.target || e.digest !== request.digest) return { kind: "conflict" };
    if (e.outcome !== undefined) return { kind: "done", outcome: e.outcome };
    const running = e;
    return { kind: "wait", outcome: new Promise((resolve) => running.waiters.push(resolve)) };
  }

  /** Records the outcome of a request that ran, and answers the duplicates that waited. */
  complete(scopeId: string, key: string, outcome: Outcome, now: number): void {
    const scope = this.scopes.get(scopeId);
    const e = scope?.keys.get(key);
    if (scope === undefined || e === undefined || e.outcome !== undefined) return;
    // Move the record to the end so that the scope's map stays ordered by completion time.
    scope.keys.delete(key);
    scope.keys.set(key, e);
    e.outcome = outcome;
    e.completedAt = this.lastCompletedAt = Math.max(now, this.lastCompletedAt);
    scope.completed++;
    this.completions.add(e);
    for (const w of e.waiters) w(outcome);
    e.waiters = [];
    if (scope.completed > this.limits.maxKeysPerPrincipal) {
      for (const old of scope.keys.values()) {
        if (old.outcome === undefined) continue; // running: never evicted
        this.remove(old);
        break;
      }
    }
  }

  /**
   * Drops the record of a request that ended transiently (canceled, deadline, unavailable):
   * a retry must run it again. Waiting duplicates get this outcome.
   */
  forget(scopeId: string, key: string, outcome: Outcome): void {
    const e = this.scopes.get(scopeId)?.keys.get(key);
    if (e === undefined || e.outcome !== undefined) return;
    this.remove(e);
    for (const w of e.waiters) w(outcome);
  }

  /**
   * Removes completed records whose ttlMs has passed, oldest first, at most `budget` of them;
   * returns how many. The owner calls it on one timer for the whole window.
   */
  sweep(now: number, budget = Infinity): number {
    let removed = 0;
    for (const e of this.completions) {
      if (removed >= budget || now - e.completedAt < this.limits.ttlMs) break; // the rest are newer
      this.remove(e);
      removed++;
    }
    return removed;
  }

  /** Drops every record; duplicates still waiting get `outcome`. */
  clear(outcome: Outcome): void {
    for (const scope of this.scopes.values()) for (const e of scope.keys.values()) for (const w of e.waiters) w(outcome);
    this.scopes.clear();
    this.completions.clear();
    this.size = 0;
  }

  private remove(e: Entry): void {
    const scope = e.scope;
    if (scope.keys.get(e.key) !== e) return;
    scope.keys.delete(e.key);
    if (e.outcome !== undefined) {
      this.completions.delete(e);
      scope.completed--;
    }
    this.size--;
    // An empty scope goes at once: a principal that never calls again costs nothing.
    if (scope.keys.size === 0) this.scopes.delete(scope.id);
  }
}
