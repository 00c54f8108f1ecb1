import {
  IdempotencyWindow,
  type IdempotencyLimits,
  type Outcome,
  type RequestFingerprint,
} from "../session/idempotency-window.js";

/**
 * Where exactly-once requests are remembered. The embedded store lives in one node's memory;
 * the Redis and NATS stores are shared, so that a client's retry on another node still gets
 * the first outcome instead of a second run.
 *
 * Records are scoped to a principal: another principal's key never matches. A record is
 * "running" from begin() until complete() or forget(); a running record whose lease ran out
 * (its node died) may be taken over by the next request with the same key.
 */
export interface IdempotencyStore {
  /**
   * Registers a request under (principal, key).
   * - "run": this request is the first (or took over an expired lease): run it, then call
   *   complete() or forget().
   * - "done": a request with the same key and fingerprint finished; here is its outcome.
   *   When the first one is still running, begin() waits for it (bounded by `signal`).
   * - "conflict": the key was used for a different request (other target or payload).
   * Rejects with the signal's reason when `signal` aborts while waiting.
   */
  begin(principal: string, key: string, request: RequestFingerprint, options: BeginOptions): Promise<StoreBeginResult>;
  /** Records the outcome of a request that ran; duplicates waiting in begin() receive it. */
  complete(principal: string, key: string, outcome: Outcome): Promise<void>;
  /**
   * Drops the record of a request that ended transiently (canceled, deadline, unavailable),
   * so that a retry runs it again. Duplicates waiting in begin() receive `outcome`.
   */
  forget(principal: string, key: string, outcome: Outcome): Promise<void>;
  /** Records held, when the store can tell cheaply (the embedded one); undefined otherwise. */
  readonly size?: number;
  close(): Promise<void>;
}

export interface BeginOptions {
  /**
   * How long the first request may run before another node may take its key over: the
   * call's deadline plus a margin. A shared store needs it because a node can die mid-call.
   */
  readonly leaseMs: number;
  /** Ends a wait for a running duplicate. */
  readonly signal?: AbortSignal | undefined;
}

export type StoreBeginResult =
  | { readonly kind: "run" }
  | { readonly kind: "done"; readonly outcome: Outcome }
  | { readonly kind: "conflict" };

/** The embedded store: one node's IdempotencyWindow behind the async interface. */
export function createMemoryIdempotencyStore(limits?: Partial<IdempotencyLimits> & { now?: () => number }): IdempotencyStore & { readonly window: IdempotencyWindow } {
  const now = limits?.now ?? Date.now;
  const window = new IdempotencyWindow({
    maxKeysPerPrincipal: limits?.maxKeysPerPrincipal ?? 10_000,
    ttlMs: limits?.ttlMs ?? 600_000,
  });
  return {
    window,
    get size() {
      return window.size;
    },
    begin(principal, key, request, options) {
      const b = window.begin(principal, key, request, now());
      switch (b.kind) {
        case "run":
        case "conflict":
          return Promise.resolve(b);
        case "done":
          return Promise.resolve(b);
        case "wait": {
          const signal = options.signal;
          if (signal === undefined) return b.outcome.then((outcome) => ({ kind: "done", outcome }));
          if (signal.aborted) return Promise.reject(signal.reason);
          return new Promise<StoreBeginResult>((resolve, reject) => {
            const onAbort = (): void => reject(signal.reason);
            signal.addEventListener("abort", onAbort, { once: true });
            void b.outcome.then((outcome) => {
              signal.removeEventListener("abort", onAbort);
              resolve({ kind: "done", outcome });
            });
          });
        }
      }
    },
    complete(principal, key, outcome) {
      window.complete(principal, key, outcome, now());
      return Promise.resolve();
    },
    forget(principal, key, outcome) {
      window.forget(principal, key, outcome);
      return Promise.resolve();
    },
    close() {
      return Promise.resolve();
    },
  };
}
